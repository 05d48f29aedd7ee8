"""Plan, then run: steps are data (commands with argv, cwd and env); one runner executes them.

- :class:`Command` is one process to start. ``cwd`` is a string so that a Windows plan made on Linux keeps its
  Windows paths.
- :class:`Step` groups commands with the inputs that determine them (its fingerprint) and the outputs it
  promises. A step may also carry an in-process Python ``action`` (e.g. staging), in which case ``commands``
  holds the equivalent ``aipc ...`` command line, so ``aipc plan`` still shows it.
- :class:`Runner` skips a step whose fingerprint is unchanged and whose outputs are still what it recorded
  (idempotent and resumable: the stamp is written only after every command succeeded, with each output's digest;
  a step that runs removes its stamp first, so an interrupted forced run is never "up to date"), logs each command
  with its duration and keeps each step's output in ``<log_dir>/<step>.log``. Each step is a :func:`aipc.log.group`
  (folded in GitHub Actions). Commands run through :func:`aipc.proc.stream` (own process group, timeout, the tree
  killed on interrupt) with a :class:`aipc.heartbeat.Heartbeat` labelled with the step's description, so a long
  step reports its elapsed time and counts (pip's packages, ninja's ``[n/N]``) while it runs.
- :func:`run_once` runs a step logged the same way, without a stamp (for callers that keep their own record).

Fingerprints and stamps are :mod:`aipc.stamps`' (paths under the work directory and aipc's package folder written
as ``${WORKDIR}``/``${AIPC}``, so a moved work directory stays up to date; version-1 stamps are migrated, not
invalidated). An output's digest (:func:`output_digest`): a file's sha256 (a symlink's target is followed); a
folder aipc made (``fsutil.MARKER``) is re-checked file by file against its marker; any other folder only has to
exist.
"""

from __future__ import annotations

import json
import os
import shlex
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from .errors import AipcError, StepFailed
from .heartbeat import Heartbeat
from .log import LOG, Echo, group
from .proc import describe_returncode, display, is_windows, stream
from .stamps import Stamp, changed_output, digests, fingerprint, legacy_fingerprint, output_digest, output_key

__all__ = ["Command", "Echo", "Runner", "Step", "StepResult", "execute", "format_plan", "output_digest",
           "plan_json", "run_once"]



@dataclass(frozen=True)
class Command:
    argv: tuple[str, ...]
    cwd: str
    env: Mapping[str, str] = field(default_factory=dict)
    # seconds before the command and every process it started are killed (a hang becomes a StepFailed)
    timeout: float | None = None

    @classmethod
    def make(
        cls, argv: Sequence[str | os.PathLike[str]], cwd: str | os.PathLike[str], env: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> Command:
        return cls(tuple(os.fspath(a) for a in argv), os.fspath(cwd), dict(env or {}), timeout)

    def to_json(self) -> dict[str, Any]:
        return {"argv": list(self.argv), "cwd": self.cwd, "env": dict(sorted(self.env.items()))}

    def display(self, platform: str | None = None) -> str:
        """The command as it can be pasted into ``platform``'s shell (:func:`aipc.proc.display`; None: this host)."""
        return display(self.argv, platform)


@dataclass
class Step:
    name: str
    description: str
    commands: list[Command]
    inputs: Mapping[str, Any] = field(default_factory=dict)
    outputs: list[Path] = field(default_factory=list)
    action: Callable[[], None] | None = None
    # the outputs as they are once the step ran (e.g. a wheel whose name the build decides); default: ``outputs``
    find_outputs: Callable[[], list[Path]] | None = None

    def label(self, index: int = 0) -> str:
        """What the step is doing, as progress shows it: its description (``[i/n]`` for one of several commands)."""
        text = self.description or self.name
        return text if len(self.commands) <= 1 else f"{text} [{index + 1}/{len(self.commands)}]"

    def material(self) -> dict[str, Any]:
        return {"inputs": self.inputs, "commands": [c.to_json() for c in self.commands]}

    def fingerprint(self, roots: Mapping[str, Path] | None = None) -> str:
        """The step's fingerprint, paths under ``roots`` made portable (:func:`aipc.stamps.fingerprint`)."""
        return fingerprint(self.material(), roots)

    def legacy_fingerprint(self) -> str:
        """The fingerprint version-1 stamps hold (absolute paths); only to migrate them."""
        return legacy_fingerprint(self.material())

    def plan_entries(self) -> list[dict[str, Any]]:
        """One JSON object per command: ``name``, ``argv``, ``cwd``, ``env`` (and the step's description)."""
        entries = []
        for i, cmd in enumerate(self.commands):
            name = self.name if len(self.commands) == 1 else f"{self.name}[{i + 1}]"
            entries.append({"name": name, "step": self.name, "description": self.description, **cmd.to_json()})
        return entries


@dataclass(frozen=True)
class StepResult:
    name: str
    status: str  # "ran" | "skipped"
    seconds: float
    log: Path | None


def default_roots(state_dir: Path) -> dict[str, Path]:
    """What a runner's fingerprints and stamps write as ``${NAME}``: the work directory (the state folder's parent)
    and aipc's own package folder, so a work directory moved, copied, or used from another checkout is up to date."""
    return {"WORKDIR": Path(state_dir).parent, "AIPC": Path(__file__).resolve().parent}


class Runner:
    """Executes steps; see the module docstring. ``roots``: see :func:`default_roots`."""

    def __init__(self, state_dir: Path, log_dir: Path, *, force: bool = False, echo: Echo | None = None,
                 roots: Mapping[str, Path] | None = None) -> None:
        self.state_dir = Path(state_dir)
        self.log_dir = Path(log_dir)
        self.force = force
        self.echo = echo or LOG
        self.roots = dict(roots) if roots is not None else default_roots(self.state_dir)

    def stamp_path(self, step: Step) -> Path:
        return self.state_dir / f"{step.name}.stamp.json"

    def is_current(self, step: Step) -> bool:
        """The step's stamp holds its fingerprint and its outputs are as recorded. A version-1 stamp (before
        portable fingerprints) whose old fingerprint matches and whose outputs exist is migrated: rewritten as
        version 2 with the outputs' digests taken now (:mod:`aipc.stamps`; an ORT rebuild costs hours)."""
        if self.force:
            return False
        stamp = Stamp(self.stamp_path(step))
        state = stamp.matches(step.fingerprint(self.roots), legacy=step.legacy_fingerprint())
        if state is None:
            return False
        data = stamp.read() or {}
        recorded = data.get("digests")
        legacy = state == "legacy"
        if not legacy and not isinstance(recorded, dict):
            return False
        changed = changed_output(recorded if isinstance(recorded, dict) else None, step.outputs, self.roots,
                                 legacy=legacy)
        if changed is not None:
            self.echo(f"[aipc] {step.name}: {changed} is missing or changed since the step ran; running it again")
            return False
        if legacy:
            outputs = [str(o) for o in data.get("outputs", [])] or [str(o) for o in step.outputs]
            self._write_stamp(step, outputs, float(data.get("seconds") or 0.0))
            self.echo(f"[aipc] {step.name}: stamp migrated to version 2 (outputs exist, digests taken now)")
        return True

    def _write_stamp(self, step: Step, outputs: Sequence[str | os.PathLike[str]], seconds: float) -> None:
        Stamp(self.stamp_path(step)).write(
            step.fingerprint(self.roots), outputs=[output_key(o, self.roots) for o in outputs],
            digests=digests(outputs, self.roots), seconds=seconds)

    def run(self, step: Step) -> StepResult:
        if self.is_current(step):
            self.echo(f"[aipc] {step.name}: up to date, skipped (inputs unchanged, outputs as recorded)")
            return StepResult(step.name, "skipped", 0.0, None)
        Stamp(self.stamp_path(step)).remove()  # an interrupted run must not leave the old stamp behind
        with group(self.echo, f"{step.name}: {step.description}"):
            seconds, log_path = execute(step, self.log_dir, self.echo)
            outputs = step.find_outputs() if step.find_outputs is not None else step.outputs
            self._write_stamp(step, outputs, seconds)
            self.echo(f"[aipc] {step.name}: finished in {seconds:.1f} s (log: {log_path})")
        return StepResult(step.name, "ran", seconds, log_path)


def execute(step: Step, log_dir: Path, echo: Echo) -> tuple[float, Path]:
    """Run ``step``'s action or commands with its log in ``<log_dir>/<step>.log``; no stamp. Returns the seconds
    it took and the log's path; raises :class:`StepFailed` (or the action's :class:`AipcError`)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{step.name}.log"
    start = time.monotonic()
    with log_path.open("w", encoding="utf-8") as log:
        log.write(f"# step {step.name}: {step.description}\n")
        if step.action is not None:
            t0 = time.monotonic()
            echo(f"[aipc]   $ {step.commands[0].display() if step.commands else step.name} (in-process)")
            log.flush()
            try:
                with Heartbeat(step.label(), echo):
                    step.action()
            except AipcError as exc:  # the reason is in the step's log too, not only on the terminal
                log.write(f"# failed: {exc.one_line()}\n")
                raise
            echo(f"[aipc]   done in {time.monotonic() - t0:.1f} s")
        else:
            for i, cmd in enumerate(step.commands):
                _run_command(step, cmd, log, log_path, echo, step.label(i))
    return time.monotonic() - start, log_path


def run_once(step: Step, log_dir: Path, echo: Echo | None = None) -> StepResult:
    """Run ``step`` now, logged like a runner's step, without a stamp (its caller keeps its own record: exports,
    the tiny model). Replaces ``Runner(..., force=True)`` used as a logger."""
    say = echo or LOG
    with group(say, f"{step.name}: {step.description}"):
        seconds, log_path = execute(step, Path(log_dir), say)
        say(f"[aipc] {step.name}: finished in {seconds:.1f} s (log: {log_path})")
    return StepResult(step.name, "ran", seconds, log_path)


def _run_command(step: Step, cmd: Command, log: TextIO, log_path: Path, echo: Echo, label: str) -> None:
    echo(f"[aipc]   $ {cmd.display()}  (cwd {cmd.cwd})")
    log.write(f"\n$ {cmd.display()}\n# cwd {cmd.cwd}\n# env {json.dumps(dict(cmd.env), sort_keys=True)}\n")
    log.flush()
    try:
        res = stream(cmd.argv, cwd=cmd.cwd, env=cmd.env, log=log, timeout=cmd.timeout,
                     heartbeat=Heartbeat(label, echo))
    except (FileNotFoundError, NotADirectoryError) as exc:
        if not Path(cmd.cwd).is_dir():
            raise StepFailed(f"step {step.name}: working directory {cmd.cwd} does not exist") from None
        raise StepFailed(
            f"step {step.name}: cannot start {cmd.argv[0]!r} in {cmd.cwd} ({exc.strerror})",
            hint="check that the program exists (aipc doctor lists missing build tools)",
        ) from None
    except OSError as exc:
        raise StepFailed(f"step {step.name}: cannot start {cmd.argv[0]!r} in {cmd.cwd} ({exc.strerror or exc})",
                         hint="check that the program exists and may be executed") from None
    except BaseException:
        log.write("\n# interrupted\n")
        raise
    rc, seconds = res.returncode, res.seconds
    log.write(f"# exit {rc} after {seconds:.1f} s\n")
    log.flush()
    echo(f"[aipc]   exit {rc} in {seconds:.1f} s")
    if rc != 0:
        tail = res.last_line()
        stopped = "hit its timeout and was stopped with its child processes"
        what = stopped if res.timed_out else f"exited with {describe_returncode(rc)}"
        raise StepFailed(
            f"step {step.name}: `{cmd.display()}` {what} after {seconds:.1f} s"
            + (f" (last line: {tail.strip()[:200]})" if tail else "")
            + f"; full log: {log_path}",
            last_line=tail.strip(),
        )


def plan_json(steps: Iterable[Step]) -> list[dict[str, Any]]:
    return [entry for step in steps for entry in step.plan_entries()]


def format_plan(steps: Iterable[Step], platform: str | None = None) -> str:
    """The plan as text; each command as it can be pasted into ``platform``'s shell (None: this host)."""
    lines = []
    quote = (lambda v: v) if is_windows(platform) else shlex.quote
    for step in steps:
        lines.append(f"# {step.name}: {step.description}")
        for cmd in step.commands:
            lines.append(f"  cwd: {cmd.cwd}")
            if cmd.env:
                lines.append("  env: " + " ".join(f"{k}={quote(v)}" for k, v in sorted(cmd.env.items())))
            lines.append(f"  $ {cmd.display(platform)}")
    return "\n".join(lines)
