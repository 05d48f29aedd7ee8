"""Step 1, fetch: clone ONNX Runtime and onnxruntime-genai at their pinned tags and verify the commits.

- A clone goes into a temporary directory next to its destination and is renamed into place only after its
  commit was verified, so an interrupted or refused fetch leaves nothing half-done behind.
- A checkout already at the pinned commit is kept (idempotent); one at another commit is replaced.
- Transient network errors (DNS, timeouts, resets, HTTP 5xx...) are retried a bounded number of times with
  exponential backoff; other git errors (unknown tag, unknown repository) fail at once.
- ``--ort-source/--genai-source/--source`` use existing checkouts instead: they must exist, and when they are git
  repositories their commit must be the pinned one. ``--offline`` refuses to clone from a network URL.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

from ..errors import AipcError, UsageError
from ..fsutil import atomic_path
from ..pins import SourcePin
from ..proc import Output, run

TRANSIENT_MARKERS = (
    "could not resolve host",
    "temporary failure in name resolution",
    "failed to connect",
    "connection timed out",
    "operation timed out",
    "timed out",
    "connection reset",
    "connection refused",
    "network is unreachable",
    "early eof",
    "the remote end hung up unexpectedly",
    "rpc failed",
    "unexpected disconnect",
    "transfer closed",
    "gnutls_handshake",
    "ssl_connect",
    "ssl_read",
    "the requested url returned error: 5",
    "http/2 stream",
    "502 bad gateway",
    "503 service unavailable",
    "504 gateway",
)
NETWORK_PREFIXES = ("http://", "https://", "ssh://", "git://", "git@")


GitRunner = Callable[[Sequence[str], Path | None], Output]
Echo = Callable[[str], None]


def run_git(args: Sequence[str], cwd: Path | None = None) -> Output:
    """``git ARGS`` (found on PATH at call time), output captured; ``Output.last_line`` is git's own reason."""
    exe = shutil.which("git")
    if exe is None:
        raise AipcError("git is not on PATH", hint="install Git (aipc doctor lists missing build tools)")
    return run([exe, *args], cwd=cwd, env={"GIT_TERMINAL_PROMPT": "0"}, timeout=None)


def is_transient(result: Output) -> bool:
    text = (result.stderr + "\n" + result.stdout).lower()
    return any(marker in text for marker in TRANSIENT_MARKERS)


def is_network_url(repo: str) -> bool:
    return repo.startswith(NETWORK_PREFIXES)


def clone_argv(repo: str, tag: str, dest: str | PurePath) -> list[str]:
    return ["git", "-c", "advice.detachedHead=false", "clone", "--depth", "1", "--branch", tag, repo, str(dest)]


def rev_parse_argv(checkout: str | PurePath) -> list[str]:
    return ["git", "-C", str(checkout), "rev-parse", "HEAD"]


@dataclass(frozen=True)
class SourceSpec:
    """One upstream to fetch: its pin, where to clone from, where it goes, or an existing checkout."""

    label: str  # "ONNX Runtime" | "onnxruntime-genai"
    option: str  # the command-line option that names an existing checkout, for messages
    pin: SourcePin
    repo: str
    dest: Path
    local: Path | None = None


@dataclass(frozen=True)
class FetchResult:
    name: str
    path: Path
    repo: str
    tag: str
    commit: str | None
    verified: bool
    action: str  # "cloned" | "kept" | "local"

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "path": str(self.path), "repo": self.repo, "tag": self.tag,
                "commit": self.commit, "verified": self.verified, "action": self.action}


def is_git_checkout(path: Path) -> bool:
    return (path / ".git").exists()


def head_commit(path: Path, git: GitRunner = run_git) -> str:
    result = git(["rev-parse", "HEAD"], path)
    if result.returncode != 0:
        raise AipcError(f"cannot read the commit of {path} ({result.last_line()})",
                        hint=f"check that {path} is an intact git checkout")
    return result.stdout.strip()


def _refuse_commit(spec: SourceSpec, where: str, actual: str) -> AipcError:
    return AipcError(
        f"{spec.label} {where} is at commit {actual}, but the pins say {spec.pin.tag} = {spec.pin.commit}",
        hint=f"check out {spec.pin.tag} ({spec.pin.commit[:12]}), or fix the commit in the pins file if the tag "
             "was moved upstream",
    )


def _with_retries(args: Sequence[str], cwd: Path | None, *, what: str, retries: int, backoff: float,
                  git: GitRunner, sleep: Callable[[float], None], echo: Echo, cleanup: Path | None = None
                  ) -> Output:
    for attempt in range(1, retries + 1):
        result = git(args, cwd)
        if result.returncode == 0:
            return result
        if cleanup is not None and (cleanup.exists() or cleanup.is_symlink()):
            shutil.rmtree(cleanup, ignore_errors=True)
        if not is_transient(result) or attempt == retries:
            tries = f" after {attempt} attempts" if attempt > 1 else ""
            raise AipcError(
                f"{what} failed{tries}: {result.last_line()}",
                hint="check the repository URL, the tag in the pins file and network access"
                if not is_transient(result) else "the network looks unreliable; try again later or use a local "
                "checkout (--ort-source/--genai-source) or a local git repository (--ort-repo/--genai-repo)",
            )
        delay = backoff * (2 ** (attempt - 1))
        echo(f"[aipc]   transient git error ({result.last_line()}); retry {attempt}/{retries - 1} in {delay:.1f} s")
        sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def fetch_source(spec: SourceSpec, *, offline: bool = False, retries: int = 4, backoff: float = 2.0,
                 git: GitRunner = run_git, sleep: Callable[[float], None] = time.sleep,
                 echo: Echo = lambda s: None) -> FetchResult:
    """Make ``spec`` available at the pinned commit (see the module docstring)."""
    pin = spec.pin
    if spec.local is not None:
        local = spec.local
        if not local.exists():
            raise UsageError(f"{spec.label} source directory {local} does not exist",
                             hint=f"pass an existing checkout with {spec.option}, or leave it out to clone "
                                  f"{pin.tag}")
        if not local.is_dir():
            raise UsageError(f"{spec.label} source {local} is not a directory",
                             hint=f"pass the checkout's root directory with {spec.option}")
        if is_git_checkout(local):
            actual = head_commit(local, git)
            if actual != pin.commit:
                raise _refuse_commit(spec, f"checkout {local}", actual)
            echo(f"[aipc]   {spec.label}: using {local} at {actual[:12]} (verified)")
            return FetchResult(pin.name, local, str(local), pin.tag, actual, True, "local")
        echo(f"[aipc]   {spec.label}: using {local}: not a git repository, commit NOT verified")
        return FetchResult(pin.name, local, str(local), pin.tag, None, False, "local")

    dest = spec.dest
    if is_git_checkout(dest):
        actual = head_commit(dest, git)
        if actual == pin.commit:
            echo(f"[aipc]   {spec.label}: {dest} already at {pin.tag} ({actual[:12]})")
            return FetchResult(pin.name, dest, spec.repo, pin.tag, actual, True, "kept")
        echo(f"[aipc]   {spec.label}: {dest} is at {actual[:12]}, not {pin.commit[:12]}: cloning again")
    elif dest.exists() and any(dest.iterdir()):
        raise AipcError(f"{dest} exists but is not a git checkout of {spec.label}",
                        hint=f"remove {dest}, or point {spec.option} at it to use it as it is")
    if offline and is_network_url(spec.repo):
        raise UsageError(
            f"offline: refusing to clone {spec.label} from {spec.repo}",
            hint=f"pass an existing checkout with {spec.option} or a local git repository with "
                 f"{spec.option.replace('source', 'repo')}",
        )
    if not is_network_url(spec.repo) and "://" not in spec.repo and not Path(spec.repo).exists():
        raise UsageError(f"{spec.label} repository {spec.repo} does not exist",
                         hint="pass an existing local git repository or a git URL")
    with atomic_path(dest) as tmp:
        argv = clone_argv(spec.repo, pin.tag, tmp)
        _with_retries(argv[1:], dest.parent, what=f"git clone {spec.repo} at {pin.tag}", retries=retries,
                      backoff=backoff, git=git, sleep=sleep, echo=echo, cleanup=tmp)
        actual = head_commit(tmp, git)
        if actual != pin.commit:
            raise _refuse_commit(spec, f"tag {pin.tag} of {spec.repo}", actual)
    echo(f"[aipc]   {spec.label}: cloned {spec.repo} {pin.tag} into {dest} ({actual[:12]}, verified)")
    return FetchResult(pin.name, dest, spec.repo, pin.tag, actual, True, "cloned")
