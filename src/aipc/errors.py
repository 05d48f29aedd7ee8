"""Errors that aipc reports to the user as one clear line (no traceback)."""

from __future__ import annotations


class AipcError(Exception):
    """A problem the user can fix: the message says what is wrong, what was expected and how to fix it.

    The command-line interface prints ``aipc: error: <message>`` and exits with ``exit_code``.
    """

    exit_code = 1

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

    exit_code = 2


class PinsError(AipcError):
    """The pins file or a requested version combination is invalid or incompatible."""


class StepFailed(AipcError):
    """A planned command exited non-zero; the message names the command and its log file.

    ``last_line`` is the command's last non-empty output line ("" when there was none)."""

    def __init__(self, message: str, *, hint: str | None = None, last_line: str = "") -> None:
        self.last_line = last_line
        super().__init__(message, hint=hint)
