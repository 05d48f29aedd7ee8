"""Read Ninja's ``.ninja_log`` and measure how many jobs really ran at once.

Format (Ninja's ``src/build_log.cc``, log versions 5 to 7): a ``# ninja log vN`` header, then one line per output
written when its edge finishes: ``start_ms <TAB> end_ms <TAB> mtime <TAB> output <TAB> command_hash``. ``start_ms``
and ``end_ms`` count from the start of *that* Ninja invocation, and the log is appended to by every invocation, so
it is split into runs first: within one run edges are logged as they finish, so ``end_ms`` never decreases; a
decrease starts a new run. An edge with several outputs writes one line per output with the same times and hash;
it counts as one job.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import AipcError


@dataclass(frozen=True)
class Job:
    start_ms: int
    end_ms: int
    output: str
    command_hash: str


@dataclass(frozen=True)
class Overlap:
    """The most jobs running at the same time in one run, and when (ms after that run started)."""

    jobs: int
    at_ms: int
    run: int  # index of the run in the log (0 = oldest)
    running: tuple[str, ...]  # one output of each job running then


def parse_ninja_log(text: str, source: str = ".ninja_log") -> list[list[Job]]:
    """The jobs of each Ninja run in the log, oldest run first (see the module docstring)."""
    lines = text.splitlines()
    if not lines or not lines[0].startswith("# ninja log v"):
        raise AipcError(f"{source} is not a Ninja log (no '# ninja log vN' header)",
                        hint="pass the .ninja_log of a Ninja build directory")
    version = lines[0].removeprefix("# ninja log v").strip()
    if version not in ("5", "6", "7"):
        raise AipcError(f"{source} has Ninja log version {version}; aipc reads versions 5 to 7",
                        hint="check the Ninja version that wrote it")
    runs: list[list[Job]] = []
    seen: set[tuple[int, int, int, str]] = set()
    current: list[Job] = []
    last_end = -1
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 5:
            raise AipcError(f"{source} line {number} has {len(parts)} fields, expected 5: {line[:80]!r}",
                            hint="the log is damaged; delete it and rebuild")
        try:
            start, end = int(parts[0]), int(parts[1])
        except ValueError:
            raise AipcError(f"{source} line {number}: start/end are not integers: {line[:80]!r}",
                            hint="the log is damaged; delete it and rebuild") from None
        if end < last_end:  # a new invocation of Ninja
            runs.append(current)
            current = []
        last_end = end
        key = (len(runs), start, end, parts[4])
        if key in seen:  # another output of the same edge
            continue
        seen.add(key)
        current.append(Job(start, end, parts[3], parts[4]))
    if current:
        runs.append(current)
    return runs


def max_overlap(jobs: list[Job], run: int = 0) -> Overlap:
    """The largest number of jobs whose [start, end) intervals overlap (a job ending at t is not running at t)."""
    events = sorted([(j.start_ms, 1, i) for i, j in enumerate(jobs)] + [(j.end_ms, -1, i) for i, j in enumerate(jobs)],
                    key=lambda e: (e[0], e[1]))  # at equal times, ends (-1) before starts (+1)
    running: set[int] = set()
    best = Overlap(0, 0, run, ())
    for t, delta, i in events:
        if delta < 0:
            running.discard(i)
            continue
        if jobs[i].end_ms == jobs[i].start_ms:  # a zero-length job (phony, restat) never runs alongside another
            continue
        running.add(i)
        if len(running) > best.jobs:
            best = Overlap(len(running), t, run, tuple(sorted(jobs[k].output for k in running)))
    return best


def log_max_overlap(path: Path) -> Overlap:
    """The largest overlap over every run recorded in the Ninja log at ``path``."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise AipcError(f"cannot read Ninja log {path}: {exc.strerror or exc}",
                        hint="build with the Ninja generator first") from None
    runs = parse_ninja_log(text, str(path))
    best = Overlap(0, 0, 0, ())
    for index, jobs in enumerate(runs):
        found = max_overlap(jobs, index)
        if found.jobs > best.jobs:
            best = found
    return best
