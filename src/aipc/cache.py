"""``aipc cache``: what aipc's cache holds (``--info``) and removing it (``--clean``), safely.

The cache (:func:`aipc.settings.cache_dir`) has one folder per part: ``venvs`` (each runtime's venv and its
install log), ``models`` (the tiny model), ``exports``, ``npu-build`` (the NPU wheel build), ``logs``,
``constraints`` (generated constraint files) and ``locks``. ``--info`` lists each part with its size and path, the
test suite's cache (``AIPC_TEST_CACHE``, default ``<cache>/test-cache``) and a ``.nox`` folder of the project in
the current directory or above, with the total.

``--clean`` removes only what aipc recognisably made (docs/safety.md):

- a venv holding ``aipc-venv.json`` (and its ``<name>.install.log``); the tiny model and an export holding
  ``aipc-folder.json`` or their older stamps (``aipc-tiny.json``, ``aipc-export.json``), and none of them holding a
  file their marker does not record; the NPU build folder with its marker or its ``state/`` folder; ``*.log`` in
  ``logs/``; ``*.txt`` in ``constraints/``;
- never anything else: an unrecognised entry is kept and named; ``locks/`` is kept (a lock file another run waits
  on must stay) and so is the cache folder with its ``CACHEDIR.TAG``. ``.nox`` is nox's and never touched;
- the cache folder must carry aipc's ``CACHEDIR.TAG`` or be the default location, so a mistyped ``AIPC_CACHE``
  (``AIPC_CACHE=~``) is refused, not cleaned;
- before anything is removed, every lock of what is removed is taken without waiting, and so is the cache's
  ``clean`` lock, which every run using the cache takes briefly (:func:`aipc.locks.use_cache`) while it registers
  as a user of the cache: when a lock is held or another aipc process is using the cache (a running verify, bench
  or export), nothing is removed and the error names it (exit 1). A new run waits until the clean is over.

``--dry-run`` lists what ``--clean`` would remove and frees nothing. There is no confirmation prompt: the command
only ever removes what aipc makes again on its next run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from . import locks
from .errors import AipcError
from .fsutil import MARKER, dir_problems, read_marker
from .heartbeat import Heartbeat
from .settings import CACHEDIR_TAG, cache_dir, default_cache_dir, test_cache_dir
from .tables import format_table
from .venvs import MARKER as VENV_MARKER
from .venvs import install_log

NPU_BUILD = "npu-build"  # aipc.npu.build.default_build_dir() is <cache>/npu-build
EXPORT_STAMP = "aipc-export.json"  # aipc.runtimes.export.STAMP
TINY_STAMP = "aipc-tiny.json"  # aipc.runtimes.tinymodel.STAMP
Echo = Callable[[str], None]


@dataclass
class Entry:
    """One thing in a part of the cache: removable (aipc's, with the lock that guards it) or kept (and why)."""

    path: Path
    size: int
    lock: tuple[str, Path] | None = None  # (kind, target) of aipc.locks.hold
    extra: tuple[Path, ...] = ()  # removed with it (a venv's install log)
    kept: str = ""  # why it is not removed; "" when it is


@dataclass
class Part:
    name: str
    path: Path
    what: str
    entries: list[Entry] = field(default_factory=list)

    @property
    def size(self) -> int:
        return sum(e.size for e in self.entries)


def tree_size(path: Path) -> int:
    """Bytes of the files under ``path`` (symlinks not followed; each inode counted once); 0 when missing."""
    try:
        st = path.lstat()
    except OSError:
        return 0
    if not path.is_dir() or path.is_symlink():
        return st.st_size
    total, seen = 0, set()
    for root, dirs, files in os.walk(path):
        for name in [*files, *dirs]:
            try:
                s = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            if (s.st_dev, s.st_ino) in seen or (name in dirs and not os.path.islink(os.path.join(root, name))):
                continue
            seen.add((s.st_dev, s.st_ino))
            total += s.st_size
    return total


def human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def _children(folder: Path) -> list[Path]:
    try:
        return sorted(folder.iterdir())
    except OSError:
        return []


def _foreign(folder: Path) -> str:
    """Why a folder aipc wrote as a whole must be kept: a file its marker does not record ("" when none)."""
    marker = read_marker(folder)
    if marker is None or not isinstance(marker.get("files"), dict):
        return ""
    strangers = [p for p in dir_problems(folder) if p.endswith(": not made by aipc")]
    return f"holds {strangers[0].removesuffix(': not made by aipc')}, which aipc did not make" if strangers else ""


def _folders(part: Path, lock_kind: str, stamp: str) -> list[Entry]:
    out = []
    for child in _children(part):
        size = tree_size(child)
        if child.is_symlink() or not child.is_dir():
            out.append(Entry(child, size, kept="not a folder aipc made"))
        elif read_marker(child) is None and not (child / stamp).is_file():
            out.append(Entry(child, size, kept=f"no {MARKER} nor {stamp}: not recognisably aipc's"))
        else:
            out.append(Entry(child, size, (lock_kind, child), kept=_foreign(child)))
    return out


def _venvs(part: Path) -> list[Entry]:
    out: list[Entry] = []
    logs: set[Path] = set()
    for child in _children(part):
        if child.is_dir() and not child.is_symlink():
            log = install_log(child)
            if (child / VENV_MARKER).is_file():
                extra = (log,) if log.is_file() else ()
                logs.update(extra)
                out.append(Entry(child, tree_size(child) + sum(tree_size(x) for x in extra), ("venv", child), extra))
            else:
                out.append(Entry(child, tree_size(child), kept=f"no {VENV_MARKER}: not a finished venv of aipc's"))
    for child in _children(part):
        if child in logs or (child.is_dir() and not child.is_symlink()):
            continue
        if child.name.endswith(".install.log") and child.is_file() and not child.is_symlink():
            out.append(Entry(child, tree_size(child)))  # the log of a venv no longer there
        else:
            out.append(Entry(child, tree_size(child), kept="not a venv or an install log of aipc's"))
    return out


def _files(part: Path, suffix: str) -> list[Entry]:
    return [Entry(p, tree_size(p)) if p.is_file() and not p.is_symlink() and p.name.endswith(suffix)
            else Entry(p, tree_size(p), kept=f"not a {suffix} file aipc wrote") for p in _children(part)]


def _npu_build(folder: Path) -> list[Entry]:
    if not (folder.exists() or folder.is_symlink()):
        return []
    marker = read_marker(folder)
    if folder.is_dir() and not folder.is_symlink() and (marker is not None or locks.has_state_dir(folder)):
        # build_workdir's lock lives in the default cache's locks/ (aipc.npu.build)
        return [Entry(folder, tree_size(folder), ("workdir", folder))]
    return [Entry(folder, tree_size(folder), kept=f"no {MARKER} nor state/: not recognisably aipc's")]


def parts(root: Path) -> list[Part]:
    """The parts of the cache ``root`` (missing ones with no entries), in the order ``--info`` prints them."""
    return [
        Part("venvs", root / "venvs", "each runtime's venv and its install log",
             _venvs(root / "venvs")),
        Part("models", root / "models", "aipc's tiny Phi-3", _folders(root / "models", "model", TINY_STAMP)),
        Part("exports", root / "exports", "converted models (genai, OpenVINO)",
             _folders(root / "exports", "export", EXPORT_STAMP)),
        Part("npu build", root / NPU_BUILD, "the NPU wheel build (sdist, build venv, CMake tree)",
             _npu_build(root / NPU_BUILD)),
        Part("logs", root / "logs", "export and tiny-model logs", _files(root / "logs", ".log")),
        Part("constraints", root / "constraints", "generated pip constraints", _files(root / "constraints", ".txt")),
        Part("locks", root / "locks", "lock files (kept: another run may wait on one)",
             [Entry(root / "locks", tree_size(root / "locks"), kept="locks are kept")]
             if (root / "locks").exists() else []),
    ]


def find_nox(start: Path | None = None) -> Path | None:
    """The ``.nox`` folder of the project in ``start`` (default: the current directory) or a folder above it."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / ".nox").is_dir() and (folder / "noxfile.py").is_file():
            return folder / ".nox"
    return None


def is_aipc_cache(root: Path) -> bool:
    """``root`` carries aipc's ``CACHEDIR.TAG``, or is the default cache location (made before the tag existed)."""
    try:
        tag = (root / CACHEDIR_TAG).read_text(encoding="utf-8", errors="replace")
    except OSError:
        tag = ""
    if "created by aipc" in tag:
        return True
    return root.resolve() == default_cache_dir().resolve()


# --- --info --------------------------------------------------------------------------------------------------


def info(root: Path | None = None, *, test_cache: Path | None = None, nox: Path | None = None) -> str:
    """The text of ``aipc cache --info``."""
    root = (root or cache_dir()).resolve()
    test_root = (test_cache or test_cache_dir()).resolve()
    rows: list[list[object]] = []
    total = 0
    for part in parts(root):
        kept = [e for e in part.entries if e.kept]
        note = part.what + (f"; {len(kept)} kept by --clean" if kept and part.name != "locks" else "")
        total += part.size
        rows.append([part.name, human(part.size) if part.entries else "-", str(part.path), note])
    inside = test_root == root / "test-cache"
    test_size = tree_size(test_root)
    rows.append(["test cache", human(test_size) if test_root.exists() else "-", str(test_root),
                 "the test suite's cache (AIPC_TEST_CACHE), same layout; --clean --test-cache cleans it"])
    if inside:
        total += test_size
    lines = [f"aipc cache: {root}" + ("" if root.exists() else " (does not exist yet)"),
             format_table(["part", "size", "path", "what"], rows),
             f"total: {human(total)} in {root}" + (" (test cache included)" if inside else "")]
    nox_dir = nox if nox is not None else find_nox()
    if nox_dir is not None:
        lines.append(f"nox's session venvs: {human(tree_size(nox_dir))} in {nox_dir} (nox's own folder: aipc never "
                     "removes it; delete it yourself, nox makes it again)")
    if not inside:
        lines.append(f"test cache: {human(test_size)} in {test_root} (not in the total)")
    return "\n".join(lines)


# --- --clean -------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _locked(root: Path, entries: list[Entry]) -> Iterator[None]:
    """Every lock of ``entries`` and the cache's clean lock, taken without waiting; no other process may be a user
    of the cache. Raises :class:`AipcError` (nothing removed) otherwise."""
    with contextlib.ExitStack() as stack:
        try:
            _take_locks(stack, root, entries)
        except AipcError as exc:
            raise AipcError(f"{exc.message}; nothing was removed", hint=exc.hint) from None
        yield


def _take_locks(stack: contextlib.ExitStack[bool | None], root: Path, entries: list[Entry]) -> None:
    stack.enter_context(locks.hold(locks.CLEAN, root, f"the cache {root}", cache=root, timeout=0))
    users = locks.cache_users(root)
    if users:
        raise AipcError(f"the cache {root} is in use by {', '.join(users)} (a verify, bench, export or build is "
                        "running)", hint="let it finish (or stop it), then run aipc cache --clean again")
    for entry in entries:
        if entry.lock is not None:
            kind, target = entry.lock
            where = None if kind == "workdir" else root  # build_workdir locks in the default cache
            stack.enter_context(locks.hold(kind, target, f"{entry.path}", cache=where, timeout=0))


def clean(root: Path | None = None, *, dry_run: bool = False, echo: Echo = print) -> tuple[int, int]:
    """Remove what aipc made in the cache ``root`` (see the module docstring); returns (entries, bytes) removed (or
    that would be, with ``dry_run``). Raises :class:`AipcError` when the cache is not aipc's or is in use."""
    root = (root or cache_dir()).resolve()
    if not root.exists():
        echo(f"aipc cache: {root} does not exist: nothing to clean")
        return 0, 0
    if not is_aipc_cache(root):
        raise AipcError(f"{root} has no {CACHEDIR_TAG} written by aipc and is not the default cache folder, so aipc "
                        "will not clean it", hint="check AIPC_CACHE (it must name aipc's cache folder)")
    found = [e for p in parts(root) for e in p.entries]
    todo = [e for e in found if not e.kept]
    for entry in found:
        if entry.kept and entry.path.name != "locks":
            echo(f"[aipc] keep {entry.path}: {entry.kept}")
    if dry_run:
        for entry in todo:
            echo(f"[aipc] would remove {entry.path} ({human(entry.size)})")
        users = locks.cache_users(root, prune=False)
        if users:
            echo(f"[aipc] the cache is in use by {', '.join(users)} now: --clean would remove nothing until it ends")
        return len(todo), sum(e.size for e in todo)
    with _locked(root, todo):
        for entry in todo:
            for path in (entry.path, *entry.extra):
                if path.is_dir() and not path.is_symlink():
                    with Heartbeat(f"removing {path}", echo):
                        shutil.rmtree(path)
                else:
                    path.unlink(missing_ok=True)
            echo(f"[aipc] removed {entry.path} ({human(entry.size)})")
    return len(todo), sum(e.size for e in todo)
