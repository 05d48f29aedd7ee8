"""Subprocess helper for collectors: every command has a timeout, and nothing raises."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

DEFAULT_TIMEOUT = 15.0


@dataclass(frozen=True)
class Output:
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


def describe_returncode(code: int | None) -> str:
    """Exit codes as humans search for them: negative = signal on POSIX, NTSTATUS in hex on Windows."""
    if code is None:
        return "none"
    if code < 0:
        return f"{code} (killed by signal {-code})"
    if code >= 0xC0000000:
        return f"{code} (0x{code:08X})"
    return str(code)


def run(
    argv: Sequence[str], timeout: float = DEFAULT_TIMEOUT, env: Mapping[str, str] | None = None,
) -> Output:
    args = tuple(str(a) for a in argv)
    full_env = None
    if env is not None:
        full_env = dict(os.environ)
        full_env.update(env)
    try:
        proc = subprocess.run(
            args, capture_output=True, text=True, encoding="utf-8", errors="replace", timeout=timeout,
            stdin=subprocess.DEVNULL, env=full_env, check=False,
        )
    except FileNotFoundError:
        return Output(None, "", "", f"not found: {args[0]}")
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode("utf-8", "replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        return Output(None, out, "", f"timeout after {timeout:g} s")
    except OSError as exc:
        return Output(None, "", "", f"cannot run {args[0]}: {exc}")
    return Output(proc.returncode, proc.stdout, proc.stderr)
