"""Small file-system helpers: hashing (files, and whole trees with :func:`tree_snapshot`), atomic writes (temporary
path, then rename into place) and the folders aipc makes (:func:`claim_output_dir`, :func:`output_dir`,
:func:`mark_dir`, :func:`dir_problems`).

A folder aipc made holds ``aipc-folder.json`` (:data:`MARKER`): the kind of output (``tiny-model``, ``ort-home``,
``wheels``...) and, for folders aipc writes as a whole, every file's sha256. aipc writes only into a missing or empty
folder or into a folder it made before; it never replaces a folder holding a file it did not make (docs/safety.md).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from .errors import UsageError

_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of bytes."""
    return hashlib.sha256(data).hexdigest()


def sha256_text(text: str) -> str:
    return sha256_bytes(text.encode("utf-8"))


def tree_snapshot(root: Path) -> dict[str, str]:
    """Every entry under ``root`` (``root`` itself as ``"."``) as ``relative path -> "<kind> <mode> <content>"``.

    kind is ``d`` (directory), ``f`` (file, content = sha256 of its bytes), ``l`` (symlink, content = its
    target, never followed) or ``o`` (anything else); mode is the permission bits in octal. Two snapshots are equal
    only when no name, mode, link target or byte changed, so a build that writes into a tree is seen even when it
    runs as root (for whom missing write bits prove nothing). Paths use ``/`` on every platform.
    """
    root = Path(root)
    out: dict[str, str] = {}

    def entry(path: Path) -> str:
        st = path.lstat()
        mode = f"{stat.S_IMODE(st.st_mode):04o}"
        if stat.S_ISLNK(st.st_mode):
            return f"l {mode} {os.readlink(path)}"
        if stat.S_ISDIR(st.st_mode):
            return f"d {mode} -"
        if stat.S_ISREG(st.st_mode):
            return f"f {mode} {sha256_file(path)}"
        return f"o {mode} {stat.S_IFMT(st.st_mode):o}"

    out["."] = entry(root)
    for dirpath, dirnames, filenames in os.walk(root):  # os.walk does not follow directory symlinks
        base = Path(dirpath)
        for name in (*dirnames, *filenames):
            path = base / name
            out[path.relative_to(root).as_posix()] = entry(path)
    return out


def tree_digest(snapshot: dict[str, str]) -> str:
    """One sha256 over a :func:`tree_snapshot` (sorted, so independent of directory listing order)."""
    digest = hashlib.sha256()
    for rel in sorted(snapshot):
        digest.update(f"{rel}\0{snapshot[rel]}\n".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def tree_changes(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """What changed between two :func:`tree_snapshot` s, one ``"<added|removed|changed> <path>"`` line each."""
    lines = [f"added {p}" for p in sorted(after.keys() - before.keys())]
    lines += [f"removed {p}" for p in sorted(before.keys() - after.keys())]
    lines += [f"changed {p}" for p in sorted(before.keys() & after.keys()) if before[p] != after[p]]
    return lines


@contextlib.contextmanager
def atomic_path(dest: Path) -> Iterator[Path]:
    """Yield a temporary path next to ``dest``; on success rename it onto ``dest``, on failure remove it.

    Works for files and directories. An existing directory at ``dest`` is replaced only after the new one is
    complete, so a reader never sees a half-written result.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    tmp.rmdir()  # the caller creates a file or a directory at this path
    try:
        yield tmp
        if tmp.is_dir() and not tmp.is_symlink():
            old = None
            if dest.exists() or dest.is_symlink():
                old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
                _remove(old)
                os.replace(dest, old)
            os.replace(tmp, dest)
            if old is not None:
                _remove(old)
        elif tmp.exists() or tmp.is_symlink():
            os.replace(tmp, dest)
    finally:
        if tmp.exists() or tmp.is_symlink():
            _remove(tmp)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


def atomic_write_bytes(dest: Path, data: bytes) -> None:
    with atomic_path(dest) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(dest: Path, text: str) -> None:
    atomic_write_bytes(dest, text.encode("utf-8"))


def atomic_write_json(dest: Path, obj: Any) -> None:
    atomic_write_text(dest, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def atomic_copy(src: Path, dest: Path) -> None:
    """Copy a file so that ``dest`` is either absent, the old file, or the complete new copy."""
    with atomic_path(dest) as tmp:
        shutil.copy2(src, tmp)


# --- the folders aipc makes --------------------------------------------------------------------------------------

MARKER = "aipc-folder.json"
MARKER_SCHEMA = 1
Recognise = Callable[[Path], bool]


def folder_files(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` but the marker, as posix relative path -> sha256 (a symlink: ``link:<target>``)."""
    files: dict[str, str] = {}
    for root, dirs, names in os.walk(folder):
        base = Path(root)
        for name in [*names, *(d for d in dirs if (base / d).is_symlink())]:
            path = base / name
            rel = path.relative_to(folder).as_posix()
            if rel == MARKER:
                continue
            files[rel] = f"link:{os.readlink(path)}" if path.is_symlink() else sha256_file(path)
    return dict(sorted(files.items()))


def read_marker(folder: Path) -> dict[str, Any] | None:
    """The marker of a folder aipc made (None when there is none or it is not aipc's)."""
    try:
        data = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("kind"), str):
        return None
    return data


def mark_dir(folder: Path, kind: str, *, record_files: bool = True, **extra: Any) -> None:
    """Write ``folder``'s marker: it is a ``kind`` folder aipc made; with ``record_files``, every file's sha256 (the
    folder is written as a whole; :func:`dir_problems` re-checks it)."""
    data: dict[str, Any] = {"schema": MARKER_SCHEMA, "made_by": "aipc", "kind": kind, **extra}
    if record_files:
        data["files"] = folder_files(folder)
    atomic_write_json(folder / MARKER, data)


def dir_problems(folder: Path) -> list[str]:
    """What differs between ``folder`` and its marker's record: missing, changed and unrecorded files (empty when
    the folder is intact). A folder without a marker, or whose marker records no files, reports that."""
    marker = read_marker(folder)
    if marker is None:
        return [f"{folder} has no {MARKER}"]
    recorded = marker.get("files")
    if not isinstance(recorded, dict):
        return [f"{folder / MARKER} records no files"]
    current = folder_files(folder)
    problems = [f"{name}: missing" for name in recorded if name not in current]
    problems += [f"{name}: changed since aipc wrote it" for name, digest in current.items()
                 if name in recorded and recorded[name] != digest]
    problems += [f"{name}: not made by aipc" for name in current if name not in recorded]
    return problems


def _within(path: Path, other: Path) -> bool:
    """True when ``path`` is ``other`` or one of its parents."""
    return path == other or path in other.parents


def claim_output_dir(
    dest: Path, kind: str, *, force: bool = False, inputs: Iterable[Path] = (), replace: bool = True,
    recognise: Recognise | None = None, force_option: str | None = "--force",
) -> Path:
    """Check that aipc may write the ``kind`` output folder ``dest``; returns it as an absolute path.

    Allowed: a missing or empty folder, or one aipc made before (its :data:`MARKER`, or ``recognise(dest)`` for
    folders made before markers existed). ``replace`` (the folder is replaced as a whole) further needs every file
    in it to be one aipc recorded, unchanged (a changed one needs ``force``). A folder aipc made for another kind
    needs ``force``. Never allowed: the home folder, the current directory, an input, or a parent of any of them.
    Anything refused raises :class:`UsageError` naming the folder and the way out.
    """
    if str(dest) == "":
        dest = Path(".")
    absolute = Path(os.path.abspath(os.path.expanduser(dest)))
    real = absolute.resolve()
    fresh = "pass a new or empty folder"
    if real == Path.home().resolve():
        raise UsageError(f"output folder {absolute} is your home folder", hint=f"{fresh} (e.g. {absolute / kind})")
    cwd = Path.cwd().resolve()
    if _within(real, cwd):
        what = "the current directory" if real == cwd else f"a parent of the current directory {cwd}"
        raise UsageError(f"output folder {absolute} is {what}", hint=f"{fresh} (e.g. {cwd / kind})")
    for given in inputs:
        inp = Path(os.path.abspath(given)).resolve()
        if _within(real, inp):
            what = "the input" if real == inp else "a parent of the input"
            raise UsageError(f"output folder {absolute} is {what} {given}",
                             hint=f"{fresh}; aipc never writes over what it reads")
    if not (absolute.exists() or absolute.is_symlink()):
        return absolute
    if not absolute.is_dir():
        raise UsageError(f"output {absolute} exists and is not a folder", hint=f"{fresh}; aipc leaves the file alone")
    if replace and absolute.is_symlink():
        raise UsageError(f"output folder {absolute} is a symbolic link", hint=f"pass the folder it points to, {real}")
    if not any(absolute.iterdir()):
        return absolute
    marker = read_marker(absolute)
    if marker is None:
        if recognise is not None and recognise(absolute):
            return absolute
        raise UsageError(f"{absolute} is not empty and aipc did not make it (no {MARKER})",
                         hint=f"{fresh}; aipc never replaces a folder it did not make")
    way = f"pass {force_option} to replace it, or a fresh path" if force_option else "pass a fresh path"
    if marker["kind"] != kind and not force:
        raise UsageError(f"{absolute} is a {marker['kind']} folder aipc made, not a {kind} folder", hint=way)
    recorded = marker.get("files")
    if not replace or not isinstance(recorded, dict):
        return absolute
    current = folder_files(absolute)
    foreign = [name for name in current if name not in recorded]
    if foreign:
        more = f" (and {len(foreign) - 1} more)" if len(foreign) > 1 else ""
        raise UsageError(f"{absolute} holds {foreign[0]}{more}, which aipc did not make",
                         hint=f"move it out of {absolute}, or pass a fresh path")
    changed = [name for name, digest in current.items() if recorded.get(name) != digest]
    if changed and not force:
        raise UsageError(f"{absolute / changed[0]} was changed after aipc wrote it", hint=way)
    return absolute


@contextlib.contextmanager
def output_dir(
    dest: Path, kind: str, *, force: bool = False, inputs: Iterable[Path] = (), recognise: Recognise | None = None,
    force_option: str | None = "--force", **marker: Any,
) -> Iterator[Path]:
    """Claim ``dest`` (:func:`claim_output_dir`), yield an empty temporary folder next to it, then mark it (every
    file's sha256) and rename it onto ``dest``. On failure ``dest`` is untouched and the temporary folder removed."""
    dest = claim_output_dir(dest, kind, force=force, inputs=inputs, recognise=recognise, force_option=force_option)
    with atomic_path(dest) as tmp:
        tmp.mkdir()
        yield tmp
        mark_dir(tmp, kind, **marker)


def use_output_dir(
    dest: Path, kind: str, *, force: bool = False, inputs: Iterable[Path] = (), recognise: Recognise | None = None,
    force_option: str | None = "--force",
) -> Path:
    """Claim ``dest`` as a folder aipc writes into file by file (wheels/, a build workdir, bench results), create it
    and mark it as aipc's (no file record: its files change one by one); returns it as an absolute path."""
    dest = claim_output_dir(dest, kind, force=force, inputs=inputs, replace=False, recognise=recognise,
                            force_option=force_option)
    dest.mkdir(parents=True, exist_ok=True)
    marker = read_marker(dest)
    if marker is None or marker["kind"] != kind:
        mark_dir(dest, kind, record_files=False)
    return dest
