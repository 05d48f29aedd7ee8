"""SIGINT and SIGTERM: stop the whole process tree, unwind (so temporary folders are removed), one line, exit 130/143.

The entry module installs :func:`install` before importing anything else, so an interrupt at any moment, imports
included, ends the same way:

1. the first signal sends SIGTERM to every process this one started, children and grandchildren alike (found
   through ``/proc`` or ``ps`` on POSIX; the tracked process trees on Windows), then raises :class:`Interrupted`
   (a ``KeyboardInterrupt``) in the main thread. Unwinding runs every ``finally``: the runner kills its command's
   process group, ``atomic_path`` removes its temporary path, exports and downloads remove ``.export-*`` and
   ``.incoming``;
2. :func:`finish` (called by the command line once unwound) kills whatever survived the SIGTERM and returns the
   one line and the exit code (:meth:`ExitCode.for_signal`: 130 for SIGINT, 143 for SIGTERM);
3. a second signal while that happens does not wait: it kills what is left and exits at once.

Only the standard library and :mod:`aipc.errors` are imported here (start-up must stay fast).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .errors import ExitCode

if TYPE_CHECKING:  # imported when needed: start-up must stay fast
    import subprocess

# (pid, start time) of the processes signalled by the first interrupt, to be killed if still alive at the end
_signalled: list[tuple[int, str]] = []
_tracked: weakref.WeakSet[subprocess.Popen[Any]] = weakref.WeakSet()
_state: dict[str, int] = {}


class Interrupted(KeyboardInterrupt):
    """Raised in the main thread by the first SIGINT or SIGTERM; ``signum`` says which."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(signal_name(signum))


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def handled_signals() -> list[int]:
    sigs: list[int] = [signal.SIGINT, signal.SIGTERM]
    brk = getattr(signal, "SIGBREAK", None)  # Windows: Ctrl-Break
    if brk is not None:
        sigs.append(brk)
    return sigs


def install() -> None:
    """Install the handler for SIGINT and SIGTERM (idempotent; only from the main thread)."""
    if _state.get("installed"):
        return
    with contextlib.suppress(ValueError):  # not the main thread (an embedding): leave the defaults
        for sig in handled_signals():
            signal.signal(sig, _handler)
        _state["installed"] = 1


@contextlib.contextmanager
def installed() -> Iterator[None]:
    """The handler for the duration of a block (``aipc.cli.main`` called in-process, e.g. by tests): installed when
    it is not yet, and the previous handlers and state restored afterwards. The entry module's
    :func:`install` stays for the process's life."""
    if _state.get("installed"):
        yield
        return
    previous: dict[int, Any] = {}
    with contextlib.suppress(ValueError):
        for sig in handled_signals():
            previous[sig] = signal.getsignal(sig)
    install()
    try:
        yield
    finally:
        if _state.get("installed"):
            with contextlib.suppress(ValueError, TypeError):
                for sig, handler in previous.items():
                    signal.signal(sig, handler)
            _state.clear()
            _signalled.clear()


def stopping() -> bool:
    """True once an interrupt arrived: nothing new should start (a thread still working must not start a process
    after the tree was stopped)."""
    return "signum" in _state


def track(proc: subprocess.Popen[Any]) -> subprocess.Popen[Any]:
    """Remember a child started in a group of its own (:func:`aipc.proc.new_group_kwargs`): on Windows it is
    how an interrupt finds the child's process tree (POSIX finds every descendant by itself)."""
    _tracked.add(proc)
    return proc


def _handler(signum: int, frame: Any) -> None:
    if "signum" in _state:  # a second signal: do not wait for the unwinding
        _kill_survivors(hard=True)
        line, code = message(_state["signum"])
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.write(line + "\n")
            sys.stderr.flush()
        os._exit(code)
    _state["signum"] = signum
    _terminate_descendants()
    raise Interrupted(signum)


def message(signum: int) -> tuple[str, int]:
    """The one line and the exit code for an interrupt by ``signum``."""
    how = "Ctrl-C" if signum == signal.SIGINT else signal_name(signum)
    name = signal_name(signum)
    what = f"interrupted by {name}" + (f" ({how})" if how != name else "")
    return (f"aipc: error: {what}; child processes were stopped and temporary files removed; fix: rerun the same "
            "command: completed steps are kept and resume", ExitCode.for_signal(signum))


def finish(exc: BaseException, signum: int | None = None) -> tuple[str, int]:
    """After unwinding from ``exc`` (an :class:`Interrupted` or a plain ``KeyboardInterrupt``; ``signum`` when the
    caller knows it): kill the processes that ignored the SIGTERM; return the one line and the exit code."""
    if signum is None:
        signum = exc.signum if isinstance(exc, Interrupted) else _state.get("signum", signal.SIGINT)
    _state.setdefault("signum", signum)
    _kill_survivors(hard=True)
    return message(signum)


# --- the process tree ------------------------------------------------------------------------------------------


def _terminate_descendants() -> None:
    if sys.platform.startswith("win"):
        from .proc import kill_tree

        for proc in list(_tracked):
            if proc.poll() is None:
                kill_tree(proc)
        return
    found = descendants(os.getpid())
    _signalled.extend(found)
    for pid, _start in found:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)


def _kill_survivors(*, hard: bool) -> None:
    if sys.platform.startswith("win"):
        _terminate_descendants()
        return
    # the first signal's snapshot (some were orphaned since) plus anything started afterwards
    current = descendants(os.getpid())
    for pid, start in [*_signalled, *current]:
        if _start_time(pid) == start:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL if hard else signal.SIGTERM)


def _start_time(pid: int) -> str | None:
    """A process's start time (from ``/proc``; "" where there is no ``/proc``), so a reused pid is never killed."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as fh:
            return fh.read().rsplit(")", 1)[1].split()[19]
    except FileNotFoundError:
        return None if os.path.isdir("/proc/self") else _ps_start(pid)
    except (OSError, IndexError):
        return None


def _ps_start(pid: int) -> str | None:
    try:
        os.kill(pid, 0)
    except OSError:
        return None
    return ""


def _parents() -> dict[int, int]:
    """pid -> parent pid of every process visible (``/proc``, else ``ps``)."""
    table: dict[int, int] = {}
    if os.path.isdir("/proc/self"):
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                with open(f"/proc/{name}/stat", encoding="utf-8", errors="replace") as fh:
                    table[int(name)] = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
        return table
    import subprocess

    try:
        out = subprocess.run(["ps", "-A", "-o", "pid=,ppid="], capture_output=True, text=True, timeout=5,
                             check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return table
    for line in out.splitlines():
        bits = line.split()
        if len(bits) == 2 and bits[0].isdigit() and bits[1].isdigit():
            table[int(bits[0])] = int(bits[1])
    return table


def descendants(root: int) -> list[tuple[int, str]]:
    """Every process below ``root`` (children first), each with its start time."""
    children: dict[int, list[int]] = {}
    for pid, ppid in _parents().items():
        children.setdefault(ppid, []).append(pid)
    found: list[tuple[int, str]] = []
    queue = list(children.get(root, []))
    while queue:
        pid = queue.pop(0)
        start = _start_time(pid)
        if start is not None:
            found.append((pid, start))
        queue.extend(children.get(pid, []))
    return found
