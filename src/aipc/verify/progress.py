"""verify's live progress (stdlib only), safe to call from the threads its tasks run on.

verify's tasks (venvs, the tiny model, exports, smoke batches) run concurrently, so progress is about tasks, not
one current row: on a terminal one status line is redrawn in place by a small ticker thread (checks finished,
then every running task with its elapsed seconds and its last message), and each finished row is printed as one
permanent line (``[n/N]``: the row's place in the plan, whatever order rows finish in). Elsewhere (CI logs, pipes)
the permanent lines only: each task's start, its messages prefixed with the task, and its end when it took a
second or more. Every write holds one lock, so lines from different threads never mix.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TextIO

from .report import Row

_MARK = {"pass": "PASS", "fail": "FAIL", "skip": "SKIP"}
# a task this short is not worth an end line in logs
QUIET_SECONDS = 1.0


@dataclass
class _Active:
    """A running task; :meth:`say` is its echo (a bound method of an object with ``live``: a heartbeat on a live
    display redraws through it, :func:`aipc.heartbeat.is_live`)."""

    label: str
    t0: float
    progress: Progress
    last: str = ""

    @property
    def live(self) -> bool:
        return self.progress.live

    def say(self, text: str) -> None:
        text = text.removeprefix("[aipc]").strip()
        if not text.startswith("$ "):  # the status says what is being done, not the command line
            with self.progress._lock:
                self.last = text
        if not self.progress.live:
            self.progress._write_line(f"[aipc]   [{self.label}] {text}")


class Progress:
    def __init__(self, stream: TextIO | None, *, live: bool | None = None, interval: float = 0.2) -> None:
        self.stream = stream
        self.live = bool(stream is not None and (live if live is not None else stream.isatty()))
        self.interval = interval
        self.total = 0
        self.finished = 0
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._rows: list[Row] = []
        self._active: dict[int, _Active] = {}
        self._next = 0

    def begin(self, rows: Sequence[Row]) -> None:
        self._rows = list(rows)
        self.total = len(rows)
        self._write_line(f"[aipc] verify: {self.total} checks")
        if self.live:
            self._thread = threading.Thread(target=self._tick, daemon=True, name="aipc-progress")
            self._thread.start()

    @contextlib.contextmanager
    def task(self, label: str) -> Iterator[Callable[[str], None]]:
        """A running task shown on the status line while the block runs; yields its echo (messages prefixed with
        the task's label in logs, shown as its last message on the terminal)."""
        with self._lock:
            self._next += 1
            key = self._next
            active = self._active[key] = _Active(label, time.monotonic(), self)
        if not self.live:
            self._write_line(f"[aipc]   {label} ...")
        try:
            yield active.say
        finally:
            with self._lock:
                self._active.pop(key, None)
            took = time.monotonic() - active.t0
            if not self.live and took >= QUIET_SECONDS:
                self._write_line(f"[aipc]   {label}: {took:.1f} s")

    def note(self, text: str) -> None:
        """A message of no particular task: logged when not live."""
        text = text.removeprefix("[aipc]").strip()
        if not self.live:
            self._write_line(f"[aipc]   {text}")

    phase = note  # HostProbe's "probing OpenVINO devices"

    def done(self, row: Row) -> None:
        index = next((i for i, r in enumerate(self._rows) if r is row), -1) + 1
        with self._lock:
            self.finished += 1
        line = (f"[aipc] [{index or '?'}/{self.total}] {_MARK.get(row.status, row.status)} {row.path} {row.api} "
                f"{row.precision} {row.device or '-'} ({row.seconds:.2f} s)" + (f": {row.reason}" if row.reason
                                                                                 else ""))
        self._write_line(line)

    def end(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
            self._clear()

    # -------------------------------------------------------------------------------------------------------
    def status(self) -> str:
        """The status line: checks finished, then each running task, its elapsed seconds and last message."""
        with self._lock:
            now = time.monotonic()
            running = [f"{a.label} {now - a.t0:.0f} s" + (f" ({a.last[:40]})" if a.last else "")
                       for a in self._active.values()]
            text = f"[aipc] {self.finished}/{self.total} checks done"
        return text + ("; running: " + ", ".join(running) if running else "")

    def _tick(self) -> None:
        while not self._stop.wait(self.interval):
            text = self.status()
            with self._lock:
                if self.stream is not None:
                    self.stream.write("\r\x1b[2K" + text[:150])
                    self.stream.flush()

    def _clear(self) -> None:
        if self.stream is not None:
            with self._lock:
                self.stream.write("\r\x1b[2K")
                self.stream.flush()

    def _write_line(self, text: str) -> None:
        if self.stream is None:
            return
        with self._lock:
            if self.live:
                self.stream.write("\r\x1b[2K")
            self.stream.write(text + "\n")
            self.stream.flush()
