"""Read Ninja's ``.ninja_log`` and measure how many jobs really ran at once.

Format (Ninja's ``src/build_log.cc``, log versions 5 to 7): a ``# ninja log vN`` header, then one line per output:
``start_ms <TAB> end_ms <TAB> mtime <TAB> output <TAB> command_hash``. ``start_ms`` and ``end_ms`` count from the
start of *that* Ninja invocation, and every invocation adds to the same log (genai's build.py runs Ninja twice: the
libraries, then the ``PyPackageBuild`` wheel target), so the lines are first split into runs:

- version 7 (Ninja 1.12+, the pinned 1.13): ``mtime`` is the wall-clock time (ns) the command started, so
  ``mtime/1e6 - start_ms`` is the wall-clock start of its Ninja run, the same (within a few ms) for every line of
  one run. Lines are grouped by it; a gap over :data:`RUN_GAP_MS` starts another run. This holds even after Ninja
  rewrites ("recompacts") the log, which keeps only each output's newest line, in no particular order: a rerun's
  ``cmake.verify_globs`` line then sits among the first build's lines, with times of another run. (A line whose
  output a ``restat`` rule left untouched keeps an older mtime and forms a run of its own: it can only lower a count.)
- versions 5 and 6: lines are appended as edges finish, so ``end_ms`` never decreases within a run; a decrease starts
  a new run (not valid for a recompacted log).

An edge with several outputs writes one line per output with the same times and hash; it counts as one job.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import AipcError

RUN_GAP_MS = 200  # lines of one Ninja run agree on their run's wall-clock start within a few ms


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
    rows: list[tuple[int, int, int, str, str]] = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 5:
            raise AipcError(f"{source} line {number} has {len(parts)} fields, expected 5: {line[:80]!r}",
                            hint="the log is damaged; delete it and rebuild")
        try:
            start, end, mtime = int(parts[0]), int(parts[1]), int(parts[2])
        except ValueError:
            raise AipcError(f"{source} line {number}: start/end/mtime are not integers: {line[:80]!r}",
                            hint="the log is damaged; delete it and rebuild") from None
        rows.append((start, end, mtime, parts[3], parts[4]))
    groups = _runs_by_start(rows) if version == "7" else _runs_by_end(rows)
    runs = []
    for group in groups:
        seen: set[tuple[int, int, str]] = set()
        jobs = []
        for start, end, _mtime, output, cmd_hash in group:
            if (start, end, cmd_hash) in seen:  # another output of the same edge
                continue
            seen.add((start, end, cmd_hash))
            jobs.append(Job(start, end, output, cmd_hash))
        runs.append(jobs)
    return runs


def _runs_by_start(rows: list[tuple[int, int, int, str, str]]) -> list[list[tuple[int, int, int, str, str]]]:
    """Version 7: group by the run's wall-clock start, ``mtime`` (ns, the command's start) minus ``start_ms``."""
    keyed = sorted(((r[2] // 1_000_000 - r[0], i) for i, r in enumerate(rows)))
    groups: list[list[tuple[int, int, int, str, str]]] = []
    last: int | None = None
    for origin, i in keyed:
        if last is None or origin - last > RUN_GAP_MS:
            groups.append([])
        groups[-1].append(rows[i])
        last = origin
    return groups


def _runs_by_end(rows: list[tuple[int, int, int, str, str]]) -> list[list[tuple[int, int, int, str, str]]]:
    """Versions 5 and 6: a new run starts where ``end_ms`` decreases (lines are appended as edges finish)."""
    groups: list[list[tuple[int, int, int, str, str]]] = []
    last_end = -1
    for row in rows:
        if not groups or row[1] < last_end:
            groups.append([])
        groups[-1].append(row)
        last_end = row[1]
    return groups


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
