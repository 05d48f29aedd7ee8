"""Plan, then run: steps are data (commands with argv, cwd and env); one runner executes them.

- :class:`Command` is one process to start. ``cwd`` is a string so that a Windows plan made on Linux keeps its
  Windows paths.
- :class:`Step` groups commands with the inputs that determine them (its fingerprint) and the outputs it
  promises. A step may also carry an in-process Python ``action`` (e.g. staging), in which case ``commands``
  holds the equivalent ``aipc ...`` command line, so ``aipc plan`` still shows it.
- :class:`Runner` skips a step whose fingerprint is unchanged and whose outputs are still what it recorded
  (idempotent and resumable: the stamp is written only after every command succeeded, with each output's digest;
  a step that runs removes its stamp first, so an interrupted forced run is never "up to date"), logs each command
  with its duration and keeps each step's output in ``<log_dir>/<step>.log``.

An output's digest (:func:`output_digest`): a file's sha256 (a symlink's target is followed); a folder aipc made
(``fsutil.MARKER``) is re-checked file by file against its marker; any other folder only has to exist.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from . import interrupts
from .errors import AipcError, StepFailed
from .fsutil import MARKER, atomic_write_json, dir_problems, sha256_file, sha256_text
from .proc import kill_tree, new_group_kwargs

Echo = Callable[[str], None]


def stderr_echo(line: str) -> None:
    """The default echo: one line to stderr, flushed."""
    print(line, file=sys.stderr, flush=True)


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

    def display(self) -> str:
        return " ".join(_quote(a) for a in self.argv)


def _quote(arg: str) -> str:
    if arg and all(c.isalnum() or c in "-_./\\:=,+@%" for c in arg):
        return arg
    return '"' + arg.replace('"', '\\"') + '"'


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

    def fingerprint(self) -> str:
        material = {"inputs": self.inputs, "commands": [c.to_json() for c in self.commands]}
        return sha256_text(json.dumps(material, sort_keys=True, default=str))

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


def output_digest(path: Path) -> str | None:
    """What a stamp records of one output (see the module docstring); None when it is missing or broken."""
    try:
        if path.is_dir():
            if (path / MARKER).is_file():
                return "dir:" + sha256_file(path / MARKER) if not dir_problems(path) else None
            return "dir"
        if path.is_file():
            return sha256_file(path)
    except OSError:
        return None
    return None


class Runner:
    """Executes steps; see the module docstring."""

    def __init__(self, state_dir: Path, log_dir: Path, *, force: bool = False, echo: Echo | None = None) -> None:
        self.state_dir = Path(state_dir)
        self.log_dir = Path(log_dir)
        self.force = force
        self.echo = echo or stderr_echo

    def stamp_path(self, step: Step) -> Path:
        return self.state_dir / f"{step.name}.stamp.json"

    def is_current(self, step: Step) -> bool:
        stamp = self.stamp_path(step)
        if self.force or not stamp.is_file():
            return False
        try:
            data = json.loads(stamp.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        if not isinstance(data, dict) or data.get("fingerprint") != step.fingerprint():
            return False
        recorded = data.get("digests")
        if not isinstance(recorded, dict):  # a stamp from before outputs were hashed: run again
            return False
        for out in step.outputs:
            digest = output_digest(Path(out))
            if digest is None or recorded.get(str(out)) != digest:
                self.echo(f"[aipc] {step.name}: {out} is missing or changed since the step ran; running it again")
                return False
        return True

    def run(self, step: Step) -> StepResult:
        if self.is_current(step):
            self.echo(f"[aipc] {step.name}: up to date, skipped (inputs unchanged, outputs as recorded)")
            return StepResult(step.name, "skipped", 0.0, None)
        self.stamp_path(step).unlink(missing_ok=True)  # an interrupted run must not leave the old stamp behind
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{step.name}.log"
        start = time.monotonic()
        self.echo(f"[aipc] {step.name}: {step.description}")
        with log_path.open("w", encoding="utf-8") as log:
            log.write(f"# step {step.name}: {step.description}\n")
            if step.action is not None:
                t0 = time.monotonic()
                self.echo(f"[aipc]   $ {step.commands[0].display() if step.commands else step.name} (in-process)")
                log.flush()
                try:
                    step.action()
                except AipcError as exc:  # the reason is in the step's log too, not only on the terminal
                    log.write(f"# failed: {exc.one_line()}\n")
                    raise
                self.echo(f"[aipc]   done in {time.monotonic() - t0:.1f} s")
            else:
                for cmd in step.commands:
                    self._run_command(step, cmd, log, log_path)
        seconds = time.monotonic() - start
        self.state_dir.mkdir(parents=True, exist_ok=True)
        outputs = step.find_outputs() if step.find_outputs is not None else step.outputs
        digests = {str(o): output_digest(Path(o)) for o in outputs}
        atomic_write_json(
            self.stamp_path(step),
            {"fingerprint": step.fingerprint(), "outputs": [str(o) for o in outputs], "digests": digests,
             "seconds": seconds},
        )
        self.echo(f"[aipc] {step.name}: finished in {seconds:.1f} s (log: {log_path})")
        return StepResult(step.name, "ran", seconds, log_path)

    def _run_command(self, step: Step, cmd: Command, log: TextIO, log_path: Path) -> None:
        env = dict(os.environ)
        env.update(cmd.env)
        self.echo(f"[aipc]   $ {cmd.display()}  (cwd {cmd.cwd})")
        log.write(f"\n$ {cmd.display()}\n# cwd {cmd.cwd}\n# env {json.dumps(dict(cmd.env), sort_keys=True)}\n")
        log.flush()
        t0 = time.monotonic()
        try:
            proc = subprocess.Popen(
                list(cmd.argv), cwd=cmd.cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, text=True, errors="replace", **new_group_kwargs(),
            )
        except FileNotFoundError as exc:
            raise StepFailed(
                f"step {step.name}: cannot start {cmd.argv[0]!r} in {cmd.cwd} ({exc.strerror})",
                hint="check that the program exists (aipc doctor lists missing build tools)",
            ) from None
        except NotADirectoryError:
            raise StepFailed(f"step {step.name}: working directory {cmd.cwd} does not exist") from None
        interrupts.track(proc)  # Windows: how an interrupt finds this process tree
        expired = threading.Event()
        watchdog = None
        if cmd.timeout is not None:
            def expire() -> None:
                expired.set()
                kill_tree(proc)

            watchdog = threading.Timer(cmd.timeout, expire)
            watchdog.daemon = True
            watchdog.start()
        last: list[str] = []
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                log.write(line)
                log.flush()  # the log follows the build as it prints, not in 8 KiB blocks
                last = ([*last, line.rstrip()])[-5:]
            rc = proc.wait()
        except BaseException:
            kill_tree(proc)
            proc.wait()
            log.write("\n# interrupted\n")
            raise
        finally:
            if watchdog is not None:
                watchdog.cancel()
        seconds = time.monotonic() - t0
        log.write(f"# exit {rc} after {seconds:.1f} s\n")
        log.flush()
        self.echo(f"[aipc]   exit {rc} in {seconds:.1f} s")
        if rc != 0:
            tail = next((ln for ln in reversed(last) if ln.strip()), "")
            stopped = "hit its timeout and was stopped with its child processes"
            what = stopped if expired.is_set() else f"exited with {rc}"
            raise StepFailed(
                f"step {step.name}: `{cmd.display()}` {what} after {seconds:.1f} s"
                + (f" (last line: {tail.strip()[:200]})" if tail else "")
                + f"; full log: {log_path}",
                last_line=tail.strip(),
            )


def plan_json(steps: Iterable[Step]) -> list[dict[str, Any]]:
    return [entry for step in steps for entry in step.plan_entries()]


def format_plan(steps: Iterable[Step]) -> str:
    lines = []
    for step in steps:
        lines.append(f"# {step.name}: {step.description}")
        for cmd in step.commands:
            lines.append(f"  cwd: {cmd.cwd}")
            if cmd.env:
                lines.append("  env: " + " ".join(f"{k}={v}" for k, v in sorted(cmd.env.items())))
            lines.append(f"  $ {cmd.display()}")
    return "\n".join(lines)
