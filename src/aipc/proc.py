"""The one process layer: run a command and capture it, stream one to a log, describe exit codes, kill a tree.

- :func:`run` captures a short command's output (probes, ``git``, version queries). It never raises: a program that
  is missing, hangs or cannot start becomes an :class:`Output` whose ``error`` says so.
- :func:`stream` runs a long command (a build step, a worker, a ``pip install``) with its output written line by line
  to a log. The child runs in a group of its own (:func:`new_group_kwargs`) and is registered with
  :func:`aipc.interrupts.track`; on timeout, on Ctrl-C/SIGTERM and on any other exception while it runs, the whole
  tree is killed (:func:`kill_tree`) before the exception goes on. A :class:`aipc.heartbeat.Heartbeat` given to it
  sees every line and reports the step while it runs (progress never goes silent).
- :func:`describe_returncode` is how every exit code is shown (signal names on POSIX, NTSTATUS in hex on Windows).
- :func:`display` renders an argv so it can be pasted into the target's shell: ``shlex.join`` for POSIX shells,
  ``subprocess.list2cmdline`` for Windows plans.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from . import interrupts

if TYPE_CHECKING:
    from .heartbeat import Heartbeat

DEFAULT_TIMEOUT = 15.0
TAIL_LINES = 20


@dataclass(frozen=True)
class Output:
    """A finished short command. Positional order (returncode, stdout, stderr) as the result types it replaced."""

    returncode: int | None  # None: did not run (not found, timeout)
    stdout: str
    stderr: str
    error: str | None = None  # "timeout after 15 s", "not found: ...", ...

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.error is None

    def reason(self) -> str:
        """One line saying why the command did not give a result."""
        if self.error:
            return self.error
        tail = [ln for ln in (self.stderr or self.stdout).splitlines() if ln.strip()]
        last = tail[-1].strip() if tail else "no output"
        return f"exit code {describe_returncode(self.returncode)}: {last}"

    def last_line(self) -> str:
        """The program's own reason: its ``fatal:``/``error:`` lines (joined), else its last non-empty line. A failed
        ``git checkout`` ends with advice ("...and retry with 'git restore --source=HEAD :/'") that hides the error
        above it."""
        if self.error:
            return self.error
        lines = [ln.strip() for ln in (self.stderr or self.stdout).splitlines() if ln.strip()]
        errors = [ln for ln in lines if ln.lower().startswith(("fatal:", "error:"))]
        if errors:
            text = " | ".join(errors)
            return text if len(text) <= 500 else text[:497] + "..."
        return lines[-1] if lines else f"exit {self.returncode}"


def describe_returncode(code: int | None) -> str:
    """Exit codes as people search for them: ``-11 (killed by signal 11, SIGSEGV)`` on POSIX, NTSTATUS crashes in hex
    on Windows (``3221225477 (0xC0000005)``, an access violation), anything else as the number."""
    if code is None:
        return "none"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            return f"{code} (killed by signal {-code})"
        return f"{code} (killed by signal {-code}, {name})"
    if code >= 0xC0000000:
        return f"{code} (0x{code:08X})"
    return str(code)


def _environment(env: Mapping[str, str | None] | None) -> dict[str, str] | None:
    """This process's environment with ``env`` applied (a None value removes the variable); None: inherit it."""
    if env is None:
        return None
    full = dict(os.environ)
    for key, value in env.items():
        if value is None:
            full.pop(key, None)
        else:
            full[key] = value
    return full


def run(
    argv: Sequence[str | os.PathLike[str]] | str, *, timeout: float | None = DEFAULT_TIMEOUT,
    env: Mapping[str, str] | None = None, cwd: str | os.PathLike[str] | None = None,
) -> Output:
    """Run ``argv`` with its output captured (UTF-8, undecodable bytes replaced); never raises. ``env`` is added to
    this process's environment. A ``str`` is a raw Windows command line, passed on unquoted (``cmd /s /c`` has
    quoting rules of its own that ``list2cmdline`` does not follow)."""
    args: str | list[str] = argv if isinstance(argv, str) else [os.fspath(a) for a in argv]
    program = args.split(" ", 1)[0] if isinstance(args, str) else args[0]
    try:
        proc = subprocess.run(
            args, capture_output=True, text=True, encoding="utf-8", errors="replace", timeout=timeout,
            stdin=subprocess.DEVNULL, env=_environment(env), cwd=cwd, check=False,
        )
    except FileNotFoundError as exc:
        if cwd is not None and exc.filename is not None and os.fspath(exc.filename) == os.fspath(cwd):
            return Output(None, "", "", f"working directory {os.fspath(cwd)} does not exist")
        return Output(None, "", "", f"not found: {program}")
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode("utf-8", "replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        return Output(None, out, "", f"timeout after {timeout:g} s")
    except OSError as exc:
        return Output(None, "", "", f"cannot run {program}: {exc.strerror or exc}")
    return Output(proc.returncode, proc.stdout, proc.stderr)


@dataclass(frozen=True)
class Streamed:
    """A finished streamed command: its exit code, duration, last non-empty lines, and whether its timeout hit."""

    returncode: int
    seconds: float
    tail: tuple[str, ...]
    timed_out: bool
    cpu_seconds: float | None = None  # user + system CPU of the command and its waited-for descendants (POSIX)

    def last_line(self) -> str:
        return self.tail[-1] if self.tail else ""


def stream(
    argv: Sequence[str | os.PathLike[str]], *, cwd: str | os.PathLike[str] | None,
    env: Mapping[str, str | None] | None,
    log: TextIO, timeout: float | None = None, tail: int = TAIL_LINES, heartbeat: Heartbeat | None = None,
    started: Callable[[subprocess.Popen[str]], None] | None = None,
) -> Streamed:
    """Run ``argv`` with stdout and stderr written to ``log`` line by line (flushed per line, so the log follows the
    command as it prints); see the module docstring. ``env`` is applied to this process's environment (a None value
    removes a variable).

    Raises ``OSError`` (``FileNotFoundError``: program or ``cwd`` missing; ``InterruptedError``: an interrupt
    arrived, nothing new starts) when the command cannot start; whatever
    interrupts the wait (``KeyboardInterrupt``/:class:`aipc.interrupts.Interrupted` included) propagates after the
    process tree was killed. ``heartbeat`` is fed every line and runs (its timer) while the command does.
    ``started`` is given the process once it runs (a caller on another thread may need to stop it: :func:`kill_tree`).
    """
    if interrupts.stopping():  # e.g. a task thread falling back to a new worker while Ctrl-C unwinds the run
        raise InterruptedError(f"interrupted: {os.fspath(argv[0])} is not started")
    proc = subprocess.Popen(
        [os.fspath(a) for a in argv], cwd=cwd, env=_environment(env), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True, errors="replace", **new_group_kwargs(),
    )
    interrupts.track(proc)  # Windows: how an interrupt finds this process tree
    if started is not None:
        started(proc)
    t0 = time.monotonic()
    expired = threading.Event()
    watchdog = None
    if timeout is not None:
        def expire() -> None:
            expired.set()
            kill_tree(proc)

        watchdog = threading.Timer(timeout, expire)
        watchdog.daemon = True
        watchdog.start()
    last: list[str] = []
    if heartbeat is not None:
        heartbeat.start()
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            log.flush()
            if line.strip():
                last = [*last, line.rstrip()][-tail:]
                if heartbeat is not None:
                    heartbeat.feed(line)
        rc, cpu = _reap(proc)
    except BaseException:
        kill_tree(proc)
        proc.wait()
        raise
    finally:
        if heartbeat is not None:
            heartbeat.stop()
        if watchdog is not None:
            watchdog.cancel()
        if proc.stdout is not None:
            proc.stdout.close()
    return Streamed(rc, time.monotonic() - t0, tuple(last), expired.is_set(), cpu)


_cpu = threading.local()


def thread_cpu_seconds() -> float:
    """CPU seconds (user + system) used by the commands :func:`stream` ran from this thread so far, their waited-for
    descendants included (POSIX ``wait4``; 0 where it is not measured). A caller takes the difference around its
    work: verify's tasks each run on a thread of their own (:mod:`aipc.dag`)."""
    return float(getattr(_cpu, "seconds", 0.0))


def charge_thread_cpu(seconds: float) -> None:
    """Add CPU seconds measured elsewhere (a process another thread waited for on this thread's behalf) to
    :func:`thread_cpu_seconds`."""
    _cpu.seconds = thread_cpu_seconds() + seconds


def _reap(proc: subprocess.Popen[Any]) -> tuple[int, float | None]:
    """Wait for ``proc``; with ``os.wait4`` (POSIX) also its CPU seconds, added to :func:`thread_cpu_seconds`."""
    wait4 = getattr(os, "wait4", None)
    if wait4 is None:
        return proc.wait(), None
    try:
        _pid, status, usage = wait4(proc.pid, 0)
    except ChildProcessError:  # reaped elsewhere: the exit code is Popen's to tell
        return proc.wait(), None
    proc.returncode = os.waitstatus_to_exitcode(status)
    cpu = usage.ru_utime + usage.ru_stime
    _cpu.seconds = thread_cpu_seconds() + cpu
    return proc.returncode, cpu


def new_group_kwargs(platform: str = sys.platform) -> dict[str, Any]:
    """``Popen`` keyword arguments that put the child in a group of its own, so :func:`kill_tree` reaches it all."""
    if platform.startswith("win"):
        return {"creationflags": getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0x200)}
    return {"start_new_session": True}


def kill_tree(proc: subprocess.Popen[Any], *, platform: str = sys.platform,
              run: Callable[..., subprocess.CompletedProcess[Any]] = subprocess.run) -> None:
    """Kill a child started with :func:`new_group_kwargs` and its children: the process group on POSIX, the
    process tree (``taskkill /T``) on Windows; the child alone when that fails."""
    try:
        if platform.startswith("win"):
            done = run(["taskkill", "/T", "/F", "/PID", str(proc.pid)], stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=30, check=False)
            if done.returncode != 0:
                proc.kill()
        else:
            os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, OSError, subprocess.TimeoutExpired):
        with contextlib.suppress(OSError):
            proc.kill()


def is_windows(platform: str | None = None) -> bool:
    """``platform`` is a target name (``windows``/``linux``) or a ``sys.platform`` value; None: this host."""
    return (platform or sys.platform).lower().startswith("win")


def display(argv: Sequence[str | os.PathLike[str]], platform: str | None = None) -> str:
    """``argv`` as one line that means the same when pasted into the target's shell: POSIX quoting (``shlex.join``:
    ``echo 'a$HOME b'``) or the Windows C runtime's rules (``subprocess.list2cmdline``: ``echo "a$HOME b"``).
    ``platform``: ``windows``/``linux`` or a ``sys.platform`` value; None means this host."""
    args = [os.fspath(a) for a in argv]
    return subprocess.list2cmdline(args) if is_windows(platform) else shlex.join(args)
