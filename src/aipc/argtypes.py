"""Command-line value types shared by every command, so bad input is refused at parse time, before any work.

Each ``type=`` function raises ``argparse.ArgumentTypeError`` ("aipc: error: argument --timeout: ...; fix: ...",
exit 2); the ``check_*`` functions raise :class:`UsageError` for values that come from elsewhere (a default, an
``AIPC_*`` variable). Output paths are checked for writability here; whether aipc may replace an output *folder*
is :func:`aipc.fsutil.claim_output_dir`'s decision.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from .errors import UsageError, os_reason


def _bad(text: str) -> argparse.ArgumentTypeError:
    return argparse.ArgumentTypeError(text)


# --- numbers ---------------------------------------------------------------------------------------------------


def check_seconds(value: float, option: str, *, allow_zero: bool = False) -> float:
    """``value`` as seconds: finite and positive (or zero when ``allow_zero``); else :class:`UsageError`."""
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        need = "zero or more" if allow_zero else "more than zero"
        raise UsageError(f"{option} {value:g} is not a number of seconds ({need}, finite)",
                         hint=f"pass e.g. {option} {'2' if allow_zero else '300'}")
    return float(value)


def _seconds(text: str, allow_zero: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _bad(f"{text!r} is not a number of seconds; fix: pass e.g. 300") from None
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        need = "zero or more" if allow_zero else "more than zero"
        raise _bad(f"{text} is not a number of seconds ({need}, finite); fix: pass e.g. {2 if allow_zero else 300}")
    return value


def seconds(text: str) -> float:
    """A timeout: finite and > 0 (``-1``, ``0``, ``nan``, ``inf`` are refused)."""
    return _seconds(text, allow_zero=False)


def count(text: str) -> int:
    """A number of things at once (workers, jobs): a whole number >= 1 (``0``, ``-1``, ``2.5`` are refused)."""
    try:
        value = int(text.strip())
    except ValueError:
        raise _bad(f"{text!r} is not a whole number; fix: pass e.g. 2") from None
    if value < 1:
        raise _bad(f"{value} is not a positive number; fix: pass 1 or more, e.g. 2")
    return value


def delay(text: str) -> float:
    """A delay or backoff: finite and >= 0 (0: no wait)."""
    return _seconds(text, allow_zero=True)


# --- lists -----------------------------------------------------------------------------------------------------


def comma_list(allowed: Sequence[str], what: str) -> Callable[[str], tuple[str, ...]]:
    """A non-empty comma-separated subset of ``allowed`` (duplicates dropped, order kept; ``""`` and ``",,"`` are
    refused rather than read as "all": leave the option out for all)."""

    def parse(text: str) -> tuple[str, ...]:
        items = tuple(dict.fromkeys(t.strip().lower() for t in text.split(",") if t.strip()))
        if not items:
            raise _bad(f"{text!r} names no {what}; fix: use a comma-separated list of {', '.join(allowed)}, or "
                       "leave the option out for all")
        bad = [t for t in items if t not in allowed]
        if bad:
            raise _bad(f"unknown {what} {', '.join(bad)}; fix: use one of {', '.join(allowed)}")
        return items

    parse.__name__ = f"{what} list"  # argparse names the type in some messages
    return parse


# --- paths -----------------------------------------------------------------------------------------------------


def _path(text: str, kind: str) -> Path:
    if not text.strip():
        raise _bad(f"an empty {kind} path; fix: pass a path")
    return Path(os.path.expanduser(text))


def existing_dir(text: str) -> Path:
    """A folder that must exist (an input, e.g. ``--wheels`` for verify/bench/smoke)."""
    path = _path(text, "folder")
    if not path.is_dir():
        what = "is not a folder" if path.exists() else "does not exist"
        raise _bad(f"{path} {what}; fix: pass an existing folder (or leave the option out for the default)")
    return path


def input_file(text: str) -> Path:
    """A file that must exist and be readable."""
    path = _path(text, "file")
    if path.is_dir():
        raise _bad(f"{path} is a folder, not a file; fix: pass a file")
    if not path.is_file():
        raise _bad(f"{path} does not exist; fix: pass an existing file")
    if not os.access(path, os.R_OK):
        raise _bad(f"{path} is not readable; fix: check its permissions")
    return path


def _cannot_write_in(folder: Path) -> str | None:
    """Why no file can be created in ``folder`` (read-only, permissions, a full disk...), or None. Really tried
    (a hidden probe file, removed at once): permission bits say nothing for root or on a read-only mount."""
    try:
        fd, name = tempfile.mkstemp(prefix=".aipc-probe-", dir=folder)
    except OSError as exc:
        return os_reason(exc)
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(name)
    return None


def output_problem(path: Path, *, folder: bool = False) -> str | None:
    """Why ``path`` cannot be written as an output file (``folder``: an output folder), or None.

    A file: not an existing folder, and its parent an existing folder aipc may write to (an atomic write creates
    a temporary file there). A folder: not an existing file, and its nearest existing parent a writable folder.
    """
    if not str(path).strip() and not folder:
        return "is empty"
    if folder:
        if path.exists() and not path.is_dir():
            return "exists and is not a folder"
        if path.is_dir():
            reason = _cannot_write_in(path)
            return f"is not writable ({reason})" if reason else None
        parent = path.parent
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        if not parent.is_dir():
            return f"cannot be made: {parent} is not a folder"
        reason = _cannot_write_in(parent)
        return f"cannot be made: {parent} is not writable ({reason})" if reason else None
    if path.is_dir():
        return "is a folder"
    parent = path.parent
    if not parent.exists():
        return f"is in a folder that does not exist ({parent})"
    if not parent.is_dir():
        return f"is in {parent}, which is not a folder"
    reason = _cannot_write_in(parent)
    return f"is in {parent}, which is not writable ({reason})" if reason else None


def output_file(text: str) -> Path:
    """An output file (``--json FILE``, ``--junit FILE``): see :func:`output_problem`."""
    path = _path(text, "output file")
    problem = output_problem(path)
    if problem:
        raise _bad(f"output file {path} {problem}; fix: pass a file path in an existing folder you can write to")
    return path


def output_dir(text: str) -> Path:
    """An output folder (``--out DIR``): see :func:`output_problem`. ``""`` stands for the current directory, which
    :func:`aipc.fsutil.claim_output_dir` refuses with its reason."""
    path = Path(os.path.expanduser(text))
    problem = output_problem(path, folder=True)
    if problem:
        raise _bad(f"output folder {path} {problem}; fix: pass a new folder in a place you can write to")
    return path


def check_outputs(outputs: dict[str, Path | None], inputs: dict[str, Path | None] | None = None, *,
                  folders: Iterable[str] = ()) -> None:
    """Refuse, before any work, an output that cannot be written or that is an input (or another output).

    ``outputs``/``inputs`` map an option name (``--json``) to its path (None: not given); the option names in
    ``folders`` are output folders. Raises :class:`UsageError` (exit 2) naming the option and the path.
    """
    folder_opts = set(folders)
    given_inputs: dict[str, str] = {}
    for option, path in (inputs or {}).items():
        if path is not None:
            given_inputs.setdefault(_identity(path), option)
    seen: dict[str, str] = {}
    for option, path in outputs.items():
        if path is None:
            continue
        problem = output_problem(path, folder=option in folder_opts)
        if problem:
            noun = "folder" if option in folder_opts else "file"
            raise UsageError(f"{option} {path}: the output {noun} {problem}",
                             hint=f"pass a {noun} path in an existing folder you can write to")
        key = _identity(path)
        if key in given_inputs:
            raise UsageError(f"{option} {path} is also the {given_inputs[key]} input; writing it would destroy the "
                             "input", hint=f"write {option} to another path")
        if key in seen:
            raise UsageError(f"{seen[key]} and {option} name the same file {path}", hint="give them different paths")
        seen[key] = option


def _identity(path: Path) -> str:
    """The same string for two spellings of one file (relative/absolute, symlinks, hard links, case on Windows)."""
    real = os.path.normcase(os.path.realpath(os.path.expanduser(path)))
    try:
        st = os.stat(real)
    except OSError:
        return real
    return f"inode {st.st_dev}:{st.st_ino}" if st.st_ino else real
