"""Inter-process locks (``filelock``) around what two aipc runs could otherwise corrupt: the cache's venvs, models
and exports, each wheels/ folder and each build workdir.

Every lock file lives in ``<aipc cache>/locks/`` (named after what it guards, plus a hash of its absolute path), so
aipc leaves no lock files in a user's folders. A run that finds a lock taken says once ``waiting for <what> held by
pid N`` and waits up to ``AIPC_LOCK_TIMEOUT`` seconds (default 3600: a build step can hold its workdir for long),
then stops with one line. Locks are re-entrant within one process (the same lock object is reused).
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import math
import os
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from .errors import AipcError, UsageError
from .fsutil import Recognise, use_output_dir
from .log import LOG
from .settings import cache_dir, env, mark_cache

DEFAULT_TIMEOUT = 3600.0
TIMEOUT_ENV = "AIPC_LOCK_TIMEOUT"

_locks: dict[str, FileLock] = {}
_guard = threading.Lock()


def lock_timeout() -> float:
    """Seconds to wait for a lock: ``$AIPC_LOCK_TIMEOUT`` (positive and finite), else :data:`DEFAULT_TIMEOUT`."""
    text = env(TIMEOUT_ENV)
    if not text:
        return DEFAULT_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise UsageError(f"{TIMEOUT_ENV}={text!r} is not a positive number of seconds",
                         hint=f"set {TIMEOUT_ENV} to e.g. 600, or unset it")
    return value


def lock_file(kind: str, target: Path, cache: Path | None = None) -> Path:
    """The lock file guarding ``target`` (a folder or a name) of ``kind``, in ``<cache>/locks/``."""
    key = os.path.normcase(os.path.abspath(target))  # one lock per folder, however its name is spelled
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(key).name)[:40] or "root"
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:12]
    return (cache or cache_dir()) / "locks" / f"{kind}-{slug}-{digest}.lock"


def _owner_file(lock: Path) -> Path:
    return lock.with_suffix(".owner")


def _owner(lock: Path) -> str:
    try:
        text = _owner_file(lock).read_text(encoding="utf-8").strip()
    except OSError:
        return "pid ?"
    return text or "pid ?"


@contextlib.contextmanager
def hold(kind: str, target: Path, what: str, *, cache: Path | None = None, timeout: float | None = None,
         echo: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the lock on ``target`` (described to the user as ``what``) while the block runs."""
    path = lock_file(kind, target, cache)
    if not path.parent.is_dir():  # the first lock in this cache: tag the cache for backup tools
        mark_cache(path.parent.parent)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _guard:
        lock = _locks.setdefault(str(path), FileLock(path, thread_local=False))
    wait = lock_timeout() if timeout is None else timeout
    say = echo or LOG
    try:
        lock.acquire(timeout=0)
    except Timeout:
        held_by = _owner(path)
        if wait <= 0:  # do not wait (aipc cache --clean): say who holds it
            raise AipcError(f"{what} is in use by {held_by} (lock {path})",
                            hint="let that run finish (or stop it), then run again") from None
        say(f"[aipc] waiting for {what} held by {held_by} (up to {wait:g} s; lock {path})")
        try:
            lock.acquire(timeout=wait)
        except Timeout:
            raise AipcError(f"{what} is still held by {_owner(path)} after {wait:g} s (lock {path})",
                            hint=f"let that run finish or stop it, then run again (or raise {TIMEOUT_ENV})") from None
    try:
        if lock.lock_counter == 1:
            _owner_file(path).write_text(f"pid {os.getpid()}\n", encoding="utf-8")
        yield
    finally:
        lock.release()


# --- users of a cache (aipc cache --clean refuses to remove a cache another process is using) -------------------

CLEAN = "clean"  # the lock kind of a cache being cleaned
_users: dict[str, FileLock] = {}
_registering = threading.Lock()


def _users_dir(cache: Path) -> Path:
    return cache / "locks" / "users"


def use_cache(cache: Path | None = None) -> None:
    """Register this process as a user of ``cache`` until it exits (once per process and cache): a lock file of its
    own in ``<cache>/locks/users/``, held for the process's life (the OS releases it at exit, even on a crash).
    Registering takes the cache's ``clean`` lock for a moment, so a run started while ``aipc cache --clean`` works
    waits for it to finish."""
    root = Path(os.path.abspath(cache or cache_dir()))
    key = os.path.normcase(str(root))
    with _registering:  # one thread registers; the others (verify's concurrent tasks) find it done
        with _guard:
            if key in _users:
                return
        with hold(CLEAN, root, f"the cache {root} (being cleaned)", cache=root):
            users = _users_dir(root)
            users.mkdir(parents=True, exist_ok=True)
            lock = FileLock(users / f"pid-{os.getpid()}.lock", thread_local=False)
            try:
                lock.acquire(timeout=0)  # this process's own file: never held by another live process
            except Timeout:  # best effort: registering must never stop the run itself
                return
            with _guard:
                if not _users:
                    atexit.register(_leave_caches)
                _users[key] = lock


def _leave_caches() -> None:
    """At exit: release and remove this process's user files (a crash leaves them; they are stale then, and
    :func:`cache_users` removes them)."""
    with _guard:
        for lock in _users.values():
            with contextlib.suppress(OSError):
                lock.release(force=True)
                Path(lock.lock_file).unlink()
        _users.clear()


def cache_users(cache: Path, *, prune: bool = True) -> list[str]:
    """The other processes using ``cache`` now (``pid N``); stale entries (their process gone) are removed unless
    ``prune`` is False."""
    found = []
    key = os.path.normcase(str(Path(os.path.abspath(cache))))
    mine = _users.get(key)
    for path in sorted(_users_dir(cache).glob("pid-*.lock")) if _users_dir(cache).is_dir() else []:
        if mine is not None and os.path.abspath(mine.lock_file) == os.path.abspath(path):
            continue  # this process (e.g. a test that made a venv, then cleans)
        probe = FileLock(path, thread_local=False)
        try:
            probe.acquire(timeout=0)
        except Timeout:
            found.append(path.stem.replace("pid-", "pid "))
            continue
        probe.release()
        if prune:
            with contextlib.suppress(OSError):
                path.unlink()
    return found


def has_state_dir(folder: Path) -> bool:
    """A build workdir made before folders carried fsutil.MARKER: it holds the runner's ``state/`` folder."""
    return (folder / "state").is_dir()


@contextlib.contextmanager
def build_workdir(path: Path, kind: str = "build-workdir", *, recognise: Recognise | None = has_state_dir,
                  echo: Callable[[str], None] | None = None) -> Iterator[Path]:
    """Claim a build workdir (new, empty, or aipc's: fsutil.use_output_dir) and hold its lock while the block runs;
    yields its absolute path. Two builds in one workdir never run at once: the second waits."""
    path = use_output_dir(path, kind, recognise=recognise)
    with hold("workdir", path, f"the build workdir {path}", echo=echo):
        yield path
