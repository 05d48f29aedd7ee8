"""Errors that aipc reports to the user as one clear line (no traceback), and the exit codes every command shares.

This module imports nothing but the standard library's ``enum`` and ``contextlib``: the entry module
(``aipc.__main__``) imports it before anything else, so even an interrupt during start-up ends with one line.
"""

from __future__ import annotations

import contextlib
import enum
import os
from collections.abc import Iterator


class ExitCode(enum.IntEnum):
    """The exit codes of every ``aipc`` command (README.md, "Exit codes", shows the same table)."""

    OK = 0  # everything asked for was done (skips included)
    FAILED = 1  # a step, check, row or target failed; or an integrity check refused a file
    USAGE = 2  # bad input: an option, a file or folder given, a pins file; nothing was started or lost
    UPDATES = 3  # aipc pins update --check: newer upstream releases can be pinned (--write would change files)
    INTERRUPTED = 130  # SIGINT (Ctrl-C); child processes and temporary folders were removed
    TERMINATED = 143  # SIGTERM; the same clean-up

    @staticmethod
    def for_signal(signum: int) -> int:
        """The shell's convention, 128 + the signal's number (SIGINT -> 130, SIGTERM -> 143)."""
        return 128 + int(signum)


EXIT_CODE_TABLE: tuple[tuple[ExitCode, str], ...] = (
    (ExitCode.OK, "success: every step, check, row or target passed or was skipped with its reason"),
    (ExitCode.FAILED, "a step, check, row or target failed (verify/smoke/bench/doctor/build/pins --check), or a "
                      "file failed an integrity check"),
    (ExitCode.USAGE, "bad input: an option, path, pins or facts file, or an output that cannot be written"),
    (ExitCode.UPDATES, "`pins update --check`: newer upstream releases can be pinned (`pins update --write` "
                       "would change files)"),
    (ExitCode.INTERRUPTED, "interrupted by SIGINT (Ctrl-C)"),
    (ExitCode.TERMINATED, "terminated by SIGTERM"),
)


class AipcError(Exception):
    """A problem the user can fix: the message says what is wrong, what was expected and how to fix it.

    The command-line interface prints ``aipc: error: <message>`` and exits with ``exit_code``.
    """

    exit_code: int = ExitCode.FAILED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(self.one_line())

    def one_line(self) -> str:
        text = self.message.rstrip(".")
        if self.hint:
            text += f"; fix: {self.hint}"
        return text


class UsageError(AipcError):
    """Bad command-line input (unknown path, device, platform...)."""

    exit_code = ExitCode.USAGE


class OutputError(UsageError):
    """An output (``--json FILE``, ``--out DIR``...) cannot be written: the path and the operating system's reason.

    Exit 2 (the path given is unusable). Raised after the results were printed when the failure happens late."""


def os_reason(exc: OSError) -> str:
    """``"Permission denied"`` / ``"Is a directory"``...: the operating system's words for ``exc``."""
    return exc.strerror or str(exc) or type(exc).__name__


def os_error_line(exc: OSError) -> str:
    """One line for an ``OSError``: the path(s) and the reason."""
    paths = [os.fsdecode(p) if isinstance(p, (str, bytes, os.PathLike)) else str(p)
             for p in (exc.filename, exc.filename2) if p is not None]
    where = " -> ".join(paths)
    return f"{where}: {os_reason(exc)}" if where else os_reason(exc)


@contextlib.contextmanager
def writing(path: object, what: str = "output", hint: str | None = None) -> Iterator[None]:
    """Turn an ``OSError`` raised while writing ``path`` into an :class:`OutputError` naming it and the reason."""
    try:
        yield
    except OSError as exc:
        detail = os_error_line(exc)
        raise OutputError(f"cannot write {what} {path} ({detail})",
                          hint=hint or "pass a path in a folder you can write to (not a folder, not read-only)"
                          ) from None


class PinsError(AipcError):
    """The pins file or a requested version combination is invalid or incompatible."""


class PinsFileError(PinsError, UsageError):
    """The pins file cannot be read or is invalid: bad input (exit 2). An incompatible pinned pair is a
    :class:`PinsError` (exit 1, what ``aipc pins --check`` reports)."""


class StepFailed(AipcError):
    """A planned command exited non-zero; the message names the command and its log file.

    ``last_line`` is the command's last non-empty output line ("" when there was none)."""

    def __init__(self, message: str, *, hint: str | None = None, last_line: str = "") -> None:
        self.last_line = last_line
        super().__init__(message, hint=hint)
