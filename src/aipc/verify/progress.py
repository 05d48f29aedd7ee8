"""A simple live progress display (stdlib only).

On a terminal one status line is redrawn in place (row n/N, path, API, precision, phase, elapsed seconds) by a
small ticker thread, and each finished row is printed as one permanent line. Elsewhere (CI logs, pipes) only the
permanent lines are printed, plus notes such as venv creation.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import TextIO

from .report import Row

_MARK = {"pass": "PASS", "fail": "FAIL", "skip": "SKIP"}


class Progress:
    def __init__(self, stream: TextIO | None, *, live: bool | None = None, interval: float = 0.2) -> None:
        self.stream = stream
        self.live = bool(stream is not None and (live if live is not None else stream.isatty()))
        self.interval = interval
        self.total = 0
        self.index = 0
        self.row: Row | None = None
        self.phase_text = ""
        self.t0 = time.monotonic()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._rows: list[Row] = []

    def begin(self, rows: Sequence[Row]) -> None:
        self._rows = list(rows)
        self.total = len(rows)
        self._write_line(f"[aipc] verify: {self.total} checks")
        if self.live:
            self._thread = threading.Thread(target=self._tick, daemon=True)
            self._thread.start()

    def start(self, row: Row, phase: str) -> None:
        with self._lock:
            if row is not self.row:
                self.row = row
                self.index = self._rows.index(row) + 1 if row in self._rows else self.index + 1
                self.t0 = time.monotonic()
            self.phase_text = phase

    def phase(self, text: str) -> None:
        with self._lock:
            self.phase_text = text

    def note(self, text: str) -> None:
        """A message from a long step (venv creation, export, its heartbeat): shown as the phase, logged when not
        live. A command line (``$ ...``) is logged only: the phase says what is being done, not how."""
        text = text.removeprefix("[aipc] ").strip()
        with self._lock:
            if not text.startswith("$ "):
                self.phase_text = text
        if not self.live:
            self._write_line(f"[aipc]   {text}")

    def done(self, row: Row) -> None:
        secs = row.seconds
        line = (f"[aipc] [{self.index}/{self.total}] {_MARK.get(row.status, row.status)} {row.path} {row.api} "
                f"{row.precision} {row.device or '-'} ({secs:.2f} s)" + (f": {row.reason}" if row.reason else ""))
        self._write_line(line)

    def end(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
            self._clear()

    # -------------------------------------------------------------------------------------------------------
    def _status(self) -> str:
        row = self.row
        if row is None:
            return ""
        elapsed = time.monotonic() - self.t0
        return (f"[aipc] [{self.index}/{self.total}] {row.path} {row.api} {row.precision}: {self.phase_text} "
                f"{elapsed:5.1f} s")

    def _tick(self) -> None:
        while not self._stop.wait(self.interval):
            with self._lock:
                text = self._status()
                if self.stream is not None and text:
                    self.stream.write("\r\x1b[2K" + text[:150])
                    self.stream.flush()

    def _clear(self) -> None:
        if self.stream is not None:
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
