"""Progress that never goes silent: a long child process is reported while it runs, not only when it ends.

A :class:`Heartbeat` watches one child's output lines (fed by :func:`aipc.proc.stream`) and a timer thread. It says
what is being done (the step's label, e.g. ``venv openvino: installing optimum-intel``), the time elapsed and, where
the output tells, a count, read by small pluggable :class:`Counter` parsers:

- pip: ``Collecting``/``Downloading`` lines, ``Installing collected packages: ...``, ``Successfully installed``;
- uv: ``Resolved/Prepared/Installed N packages`` and its `` + name==version`` lines;
- ninja: ``[n/N]``; CMake's generated makefiles: ``[ nn%]``.

Where it goes: on a terminal (an :class:`aipc.log.Log` writing to a TTY outside CI, or a live display such as
verify's) the status is redrawn in place about every second; in logs, pipes and CI (``CI``/``GITHUB_ACTIONS`` set)
one new line is printed every ``AIPC_PROGRESS_INTERVAL`` seconds (:func:`aipc.settings.progress_interval`, default
10, so a CI log never waits more than that for a line)::

    [aipc]   ... venv openvino: installing optimum-intel and 2 more: 45 s, 37 packages collected, 12 downloaded
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from .log import Log

Echo = Callable[[str], None]
PREFIX = "[aipc]   ... "
# how often a live (redrawn in place) status is refreshed, at most
LIVE_INTERVAL = 1.0


class Counter(Protocol):
    """A parser of a child's output lines: ``feed`` each line, ``summary`` says what it counted ("" for nothing)."""

    def feed(self, line: str) -> None: ...

    def summary(self) -> str: ...


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


class PipCounter:
    """pip's ``install``/``wheel``/``download`` output."""

    COLLECTING = re.compile(r"^\s*Collecting\s+\S")
    DOWNLOADING = re.compile(r"^\s*Downloading\s+\S")
    SATISFIED = re.compile(r"^\s*Requirement already satisfied:")
    INSTALLING = re.compile(r"^\s*Installing collected packages:\s*(.*)$")
    INSTALLED = re.compile(r"^\s*Successfully installed\s+(.*)$")

    def __init__(self) -> None:
        self.collected = self.downloaded = self.satisfied = 0
        self.installing: int | None = None
        self.installed: int | None = None

    def feed(self, line: str) -> None:
        if self.COLLECTING.match(line):
            self.collected += 1
        elif self.DOWNLOADING.match(line):
            self.downloaded += 1
        elif self.SATISFIED.match(line):
            self.satisfied += 1
        elif m := self.INSTALLING.match(line):
            self.installing = len([p for p in m.group(1).split(",") if p.strip()])
        elif m := self.INSTALLED.match(line):
            self.installed = len(m.group(1).split())

    def summary(self) -> str:
        if self.installed is not None:
            return f"{_plural(self.installed, 'package')} installed"
        if self.installing is not None:
            return f"installing {_plural(self.installing, 'package')}"
        parts = []
        if self.collected:
            parts.append(f"{_plural(self.collected, 'package')} collected")
        if self.downloaded:
            parts.append(f"{self.downloaded} downloaded")
        if self.satisfied:
            parts.append(f"{self.satisfied} already there")
        return ", ".join(parts)


class UvCounter:
    """uv's ``pip install``/``venv`` output (its summary lines and one `` + name==version`` line per package)."""

    TOTAL = re.compile(r"^\s*(Resolved|Prepared|Installed|Uninstalled|Audited)\s+(\d+)\s+packages?\b")
    ADDED = re.compile(r"^\s*\+\s+\S+")

    def __init__(self) -> None:
        self.last: tuple[str, int] | None = None
        self.added = 0

    def feed(self, line: str) -> None:
        if m := self.TOTAL.match(line):
            self.last = (m.group(1).lower(), int(m.group(2)))
        elif self.ADDED.match(line):
            self.added += 1

    def summary(self) -> str:
        if self.added:
            return f"{_plural(self.added, 'package')} installed"
        if self.last is not None:
            verb, n = self.last
            return f"{_plural(n, 'package')} {verb}"
        return ""


class NinjaCounter:
    """ninja's ``[n/N] <what>`` lines: the last one seen."""

    STEP = re.compile(r"^\s*\[(\d+)/(\d+)\]")

    def __init__(self) -> None:
        self.done: int | None = None
        self.total: int | None = None

    def feed(self, line: str) -> None:
        if m := self.STEP.match(line):
            self.done, self.total = int(m.group(1)), int(m.group(2))

    def summary(self) -> str:
        return "" if self.done is None else f"step {self.done}/{self.total}"


class CMakeCounter:
    """The ``[ nn%]`` of CMake's generated makefiles (and of ``cmake --build`` with them)."""

    PERCENT = re.compile(r"^\s*\[\s*(\d{1,3})%\]")

    def __init__(self) -> None:
        self.percent: int | None = None

    def feed(self, line: str) -> None:
        if m := self.PERCENT.match(line):
            self.percent = int(m.group(1))

    def summary(self) -> str:
        return "" if self.percent is None else f"{self.percent} %"


def default_counters() -> list[Counter]:
    """A fresh set of every known parser (cheap: one anchored regex each per line)."""
    return [PipCounter(), UvCounter(), NinjaCounter(), CMakeCounter()]


def is_live(echo: Echo) -> bool:
    """True when ``echo`` redraws a status in place: a :class:`Log` on a terminal outside CI, or the bound method of
    a live display (an object whose ``live`` attribute is True, such as verify's progress)."""
    if isinstance(echo, Log):
        return echo.is_live()
    return getattr(getattr(echo, "__self__", None), "live", None) is True


class Heartbeat:
    """See the module docstring. ``interval``: seconds between lines when not live (None:
    :func:`aipc.settings.progress_interval`); ``live`` None: :func:`is_live` of ``echo``."""

    def __init__(self, label: str, echo: Echo | None = None, *, interval: float | None = None,
                 live: bool | None = None, counters: Sequence[Counter] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        from .log import LOG
        from .settings import progress_interval

        self.label = label
        self.echo: Echo = echo if echo is not None else LOG
        self.interval = progress_interval() if interval is None else interval
        self.live = is_live(self.echo) if live is None else live
        self.counters = list(default_counters() if counters is None else counters)
        self.clock = clock
        self.lines = 0
        self.beats = 0
        self._t0 = clock()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def feed(self, line: str) -> None:
        """One line of the child's output."""
        with self._lock:
            self.lines += 1
            for counter in self.counters:
                counter.feed(line)

    def summary(self) -> str:
        with self._lock:
            return ", ".join(s for s in (c.summary() for c in self.counters) if s)

    def status(self) -> str:
        """``<label>: <elapsed> s[, <counts>]``."""
        counts = self.summary()
        return f"{self.label}: {self.clock() - self._t0:.0f} s" + (f", {counts}" if counts else "")

    def start(self) -> Heartbeat:
        self._t0 = self.clock()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat {self.label}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        if self.live and isinstance(self.echo, Log):
            self.echo.clear_status()

    def __enter__(self) -> Heartbeat:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        every = min(LIVE_INTERVAL, self.interval) if self.live else self.interval
        while not self._stop.wait(every):
            self.beat()

    def beat(self) -> None:
        """Say the status now (the timer calls this every interval)."""
        self.beats += 1
        text = PREFIX + self.status()
        if self.live and isinstance(self.echo, Log):
            self.echo.status(text)
        else:
            self.echo(text)
