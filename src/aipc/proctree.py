"""Child processes that can be stopped as a whole: their own process group (POSIX) or process tree (Windows).

Used by the runner (a command's ``timeout``) and by ``aipc.runtimes.worker`` (worker timeouts): a converter, build or
worker that hangs is killed together with the processes it started.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from typing import Any


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
