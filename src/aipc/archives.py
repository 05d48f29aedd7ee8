"""Extracting tar and zip archives safely: the one helper every extraction in aipc uses.

Every member is checked before anything is written: its name must be a relative path that stays inside the
destination on every platform (no ``..``, no absolute or drive path, no backslash, which Windows reads as a
separator, no ``:``, no NUL), it must be a regular file or a folder (no symbolic or hard link, no device, no FIFO),
and optionally it must lie under one top folder and the archive's total size must stay under a limit. Tar archives
are then extracted with ``filter="data"`` (no setuid/setgid bits, no write bit for others, no foreign owners); on a
Python without extraction filters the same is done by hand.
"""

from __future__ import annotations

import copy
import os
import re
import stat
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

from .errors import AipcError

_DRIVE = re.compile(r"^[A-Za-z]:")
DEFAULT_HINT = "use the genuine archive (members must be relative paths inside their folder, without links)"


class ArchiveError(AipcError):
    """An archive that cannot be read or holds a member that would land outside its folder (exit 1: the step that
    obtained it failed)."""


def check_member_name(name: str, *, top: str | None = None, archive: str = "archive",
                      hint: str = DEFAULT_HINT) -> PurePosixPath:
    """The member's relative path, or :class:`ArchiveError` when ``name`` could land outside the destination on
    POSIX or Windows (``..``, ``/x``, ``\\x``, ``C:x``, ``\\\\server\\share``, a backslash, a ``:``, NUL, empty) or
    outside ``top``."""

    def refuse(reason: str) -> ArchiveError:
        return ArchiveError(f"{archive}: member {name!r} {reason}; nothing was extracted", hint=hint)

    if "\x00" in name:
        raise refuse("contains a NUL character")
    if name.startswith(("/", "\\")) or _DRIVE.match(name):
        raise refuse("is an absolute path or a drive path (it lies outside the extraction folder)")
    if "\\" in name:
        raise refuse("contains a backslash, a path separator on Windows (it may lie outside the extraction folder)")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if not parts:
        raise refuse("has an empty name")
    if ".." in parts:
        raise refuse("climbs with '..' (it lies outside the extraction folder)")
    if any(":" in p for p in parts):
        raise refuse("contains ':' (a drive or an alternate data stream on Windows)")
    if top is not None and parts[0] != top:
        raise refuse(f"lies outside the archive's top folder {top}/")
    return PurePosixPath(*parts)


def safe_extract(archive: Path, dest: Path, *, top: str | None = None, max_bytes: int | None = None,
                 what: str | None = None, hint: str = DEFAULT_HINT) -> list[str]:
    """Check every member of the tar or zip ``archive`` (see the module docstring), then extract it into ``dest``
    (created when missing). Returns the relative paths of the files extracted. Nothing is extracted when one
    member is refused. ``what`` names the archive in messages (default: its path)."""
    archive = Path(archive)
    label = what or str(archive)
    try:
        if zipfile.is_zipfile(archive):
            return _extract_zip(archive, Path(dest), top, max_bytes, label, hint)
        if tarfile.is_tarfile(archive):
            return _extract_tar(archive, Path(dest), top, max_bytes, label, hint)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, ValueError) as exc:
        raise ArchiveError(f"{label}: cannot read the archive ({exc})", hint=hint) from None
    except FileNotFoundError:
        raise ArchiveError(f"{label} does not exist", hint=hint) from None
    raise ArchiveError(f"{label} is not a tar or zip archive", hint=hint)


def _too_big(label: str, total: int, max_bytes: int, hint: str) -> ArchiveError:
    return ArchiveError(f"{label}: the members add up to {total} bytes, larger than the limit of {max_bytes}",
                        hint=hint)


def _extract_tar(archive: Path, dest: Path, top: str | None, max_bytes: int | None, label: str,
                 hint: str) -> list[str]:
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
        files: list[str] = []
        total = 0
        for m in members:
            rel = check_member_name(m.name, top=top, archive=label, hint=hint)
            if m.issym() or m.islnk():
                raise ArchiveError(f"{label}: member {m.name!r} is a link (to {m.linkname!r}); nothing was extracted",
                                   hint=hint)
            if not (m.isfile() or m.isdir()):
                raise ArchiveError(f"{label}: member {m.name!r} is a device or special file, not a regular file or "
                                   "folder; nothing was extracted", hint=hint)
            if m.isfile():
                files.append(str(rel))
                total += m.size
        if max_bytes is not None and total > max_bytes:
            raise _too_big(label, total, max_bytes, hint)
        dest.mkdir(parents=True, exist_ok=True)
        if hasattr(tarfile, "data_filter"):
            tar.extractall(dest, members=members, filter="data")
        else:  # pragma: no cover - Pythons without extraction filters (before 3.8.17 / 3.11.4)
            tar.extractall(dest, members=[_sanitized(m) for m in members])
    return files


def _sanitized(member: tarfile.TarInfo) -> tarfile.TarInfo:
    """What ``filter="data"`` does for the members :func:`check_member_name` lets through."""
    m = copy.copy(member)
    m.mode = (m.mode & 0o755) | (0o700 if m.isdir() else 0o600)
    m.uid, m.gid, m.uname, m.gname = os.getuid(), os.getgid(), "", ""  # type: ignore[attr-defined,unused-ignore]
    return m


def _extract_zip(archive: Path, dest: Path, top: str | None, max_bytes: int | None, label: str,
                 hint: str) -> list[str]:
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        files: list[str] = []
        total = 0
        for info in infos:
            rel = check_member_name(info.filename, top=top, archive=label, hint=hint)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise ArchiveError(f"{label}: member {info.filename!r} is a link; nothing was extracted", hint=hint)
            if stat.S_IFMT(mode) and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                raise ArchiveError(f"{label}: member {info.filename!r} is a device or special file; nothing was "
                                   "extracted", hint=hint)
            if not info.is_dir():
                files.append(str(rel))
                total += info.file_size
        if max_bytes is not None and total > max_bytes:
            raise _too_big(label, total, max_bytes, hint)
        dest.mkdir(parents=True, exist_ok=True)
        zf.extractall(dest, members=infos)
    return files
