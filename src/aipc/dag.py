"""A small dependency-graph executor: tasks with dependencies run on threads as soon as their inputs are ready.

Each task mostly waits on a subprocess (a ``pip install``, a converter, a worker), so threads are enough; what they
wait on is what uses the CPU. Rules:

- a task starts when every dependency has finished; ``heavy`` tasks (CPU-bound subprocesses) are bounded by
  ``workers`` running at once, light ones (a quick probe, an install that mostly waits on I/O) are not. Among the
  ready heavy tasks the one heading the longest chain of work still to do starts first (``estimate``: a task's
  expected seconds; the chain counts the dependents known so far), then the first added;
- a task that raises fails with that exception; every task depending on it (directly or not) is never started:
  it is *blocked* with the root failure, and its ``on_blocked`` callback gets that exception (so a caller turns it
  into its own reason). Nothing waits forever on a failed input;
- a running task may add tasks (e.g. once a device is known, the exports it needs); adding a key that exists
  returns the existing task, so a shared input (one venv, one export) runs once;
- each task's duration is measured around it; ``own`` may replace it by a clock measured elsewhere (a worker's own,
  inside its process). :meth:`Dag.critical_path` is the longest chain of dependent tasks by those durations. The
  CPU seconds of the commands a task ran (its subprocesses, POSIX) are recorded too: what bounds a run on few cores;
- threads are daemons: an interrupt (Ctrl-C, raised in the main thread while it waits) stops new starts, gives the
  running tasks a moment to unwind (their process trees are killed by :mod:`aipc.interrupts`) and never hangs the
  exit.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .proc import thread_cpu_seconds

PENDING, RUNNING, DONE, FAILED, BLOCKED = "pending", "running", "done", "failed", "blocked"
# seconds an interrupted run waits for its running tasks to unwind (their processes are already being killed)
UNWIND_SECONDS = 5.0


def default_workers() -> int:
    """Heavy tasks at once by default: every CPU (at least 1)."""
    return max(1, os.cpu_count() or 1)


@dataclass
class Task:
    key: str
    fn: Callable[[], Any]
    deps: tuple[str, ...] = ()
    heavy: bool = True
    own: Callable[[Any], float | None] | None = None  # the task's own clock, from its result (None: measured)
    estimate: float = 1.0  # expected seconds, for the order in which ready heavy tasks start
    on_blocked: Callable[[BaseException], None] | None = None
    state: str = PENDING
    result: Any = None
    error: BaseException | None = None  # the failure (FAILED) or the root failure (BLOCKED)
    cause: str = ""  # BLOCKED: key of the failed task
    started: float = 0.0  # monotonic seconds since the run began
    seconds: float = 0.0  # measured around fn
    own_seconds: float | None = None
    cpu_seconds: float | None = None  # CPU of the commands it ran (aipc.proc.thread_cpu_seconds; None: unmeasured)
    order: int = 0

    @property
    def finished(self) -> bool:
        return self.state in (DONE, FAILED, BLOCKED)

    @property
    def weight(self) -> float:
        """The duration used for sums and the critical path: the task's own clock when it has one."""
        return self.own_seconds if self.own_seconds is not None else self.seconds


@dataclass
class Dag:
    workers: int = field(default_factory=default_workers)
    tasks: dict[str, Task] = field(default_factory=dict)
    unwind: float = UNWIND_SECONDS  # seconds an interrupted run waits for its running tasks

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError(f"workers must be at least 1, not {self.workers}")
        self._cond = threading.Condition()
        self._stopping = False
        self._t0 = time.monotonic()
        self._running_heavy = 0
        self.max_heavy = 0  # the most heavy tasks seen running at once (tests and figures)

    # ----------------------------------------------------------------------------------------------------------
    def add(self, key: str, fn: Callable[[], Any], deps: Iterable[str] = (), *, heavy: bool = True,
            own: Callable[[Any], float | None] | None = None, estimate: float = 1.0,
            on_blocked: Callable[[BaseException], None] | None = None) -> Task:
        """Add a task (before or while running); an existing ``key`` returns that task unchanged."""
        with self._cond:
            if key in self.tasks:
                return self.tasks[key]
            deps = tuple(dict.fromkeys(deps))
            missing = [d for d in deps if d not in self.tasks]
            if missing:
                raise KeyError(f"task {key!r} depends on unknown task(s): {', '.join(missing)}")
            task = Task(key, fn, deps, heavy, own, estimate, on_blocked, order=len(self.tasks))
            self.tasks[key] = task
            self._cond.notify_all()
            return task

    def run(self) -> None:
        """Run every task (and the ones they add) to the end: done, failed or blocked. Task failures never raise
        here; an interrupt does, after the running tasks had a moment to unwind."""
        self._t0 = time.monotonic()
        try:
            with self._cond:
                while True:
                    self._block_dependents()
                    self._start_ready()
                    if all(t.finished for t in self.tasks.values()):
                        return
                    self._cond.wait(timeout=0.5)
        except BaseException:
            self._stop()
            raise

    def _stop(self) -> None:
        with self._cond:
            self._stopping = True
            deadline = time.monotonic() + self.unwind
            while any(t.state == RUNNING for t in self.tasks.values()):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(timeout=min(left, 0.2))

    def _block_dependents(self) -> None:
        changed = True
        while changed:
            changed = False
            for task in self.tasks.values():
                if task.state != PENDING:
                    continue
                bad = next((self.tasks[d] for d in task.deps if self.tasks[d].state in (FAILED, BLOCKED)), None)
                if bad is None:
                    continue
                task.state = BLOCKED
                task.error = bad.error
                task.cause = bad.key if bad.state == FAILED else bad.cause
                changed = True
                if task.on_blocked is not None and task.error is not None:
                    try:
                        task.on_blocked(task.error)
                    except Exception as exc:  # a callback's bug must not stop the run
                        task.error = exc

    def _chains(self) -> dict[str, float]:
        """Per task: its estimate plus the longest chain of estimates among the tasks that depend on it."""
        dependents: dict[str, list[str]] = {k: [] for k in self.tasks}
        for task in self.tasks.values():
            for dep in task.deps:
                dependents[dep].append(task.key)
        chain: dict[str, float] = {}

        def longest(key: str) -> float:
            if key not in chain:
                chain[key] = self.tasks[key].estimate + max((longest(d) for d in dependents[key]), default=0.0)
            return chain[key]

        for key in self.tasks:
            longest(key)
        return chain

    def _start_ready(self) -> None:
        chain = self._chains()
        for task in sorted(self.tasks.values(), key=lambda t: (-chain[t.key], t.order)):
            if self._stopping:
                return
            if task.state != PENDING or not all(self.tasks[d].state == DONE for d in task.deps):
                continue
            if task.heavy:
                if self._running_heavy >= self.workers:
                    continue
                self._running_heavy += 1
                self.max_heavy = max(self.max_heavy, self._running_heavy)
            task.state = RUNNING
            task.started = time.monotonic() - self._t0
            threading.Thread(target=self._run_task, args=(task,), name=f"dag:{task.key}", daemon=True).start()

    def _run_task(self, task: Task) -> None:
        t0, c0 = time.monotonic(), thread_cpu_seconds()
        result: Any = None
        error: BaseException | None = None
        try:
            result = task.fn()
        except BaseException as exc:  # the task's failure is its dependents' reason, whatever it is
            error = exc
        seconds = time.monotonic() - t0
        cpu = thread_cpu_seconds() - c0 if hasattr(os, "wait4") else None
        own = None
        if error is None and task.own is not None:
            try:
                own = task.own(result)
            except Exception:
                own = None
        with self._cond:
            task.seconds = seconds
            task.own_seconds = own
            task.cpu_seconds = cpu
            task.result, task.error = result, error
            task.state = DONE if error is None else FAILED
            if task.heavy:
                self._running_heavy -= 1
            self._cond.notify_all()

    # ----------------------------------------------------------------------------------------------------------
    def critical_path(self) -> tuple[float, list[str]]:
        """The longest chain of dependent finished tasks by :attr:`Task.weight` (seconds, keys first to last)."""
        best: dict[str, tuple[float, list[str]]] = {}

        def longest(key: str) -> tuple[float, list[str]]:
            if key not in best:
                task = self.tasks[key]
                before = max((longest(d) for d in task.deps), key=lambda x: x[0], default=(0.0, []))
                weight = task.weight if task.state in (DONE, FAILED) else 0.0
                best[key] = (before[0] + weight, [*before[1], key])
            return best[key]

        paths = [longest(k) for k in self.tasks]
        return max(paths, key=lambda x: x[0], default=(0.0, []))

    def total(self) -> float:
        """The sum of every task's duration (:attr:`Task.weight`)."""
        return sum(t.weight for t in self.tasks.values() if t.state in (DONE, FAILED))
