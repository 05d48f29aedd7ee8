"""``aipc check-upstream``: build the real onnxruntime-genai offline against the official ORT release, then verify it.

The demonstration of issue 10 (``nox -s upstream``, run by CI after the tests). Given a folder holding unmodified
upstream trees (``onnxruntime-genai/``, ``onnxruntime/`` with the public headers, ``deps/`` with genai's CMake
dependencies), it:

1. snapshots the three trees (names, modes, link targets, bytes; :func:`aipc.fsutil.tree_snapshot`);
2. runs ``aipc build --genai-source <genai> --ort-release pypi --ort-source <onnxruntime> --deps-dir <deps>
   --offline --jobs N --generator ninja --ccache off`` into a workdir outside the trees (each command a subprocess,
   as a user would type it; without ``PYTHONDONTWRITEBYTECODE``, which would hide bytecode written into a tree);
3. checks every ``.ninja_log`` of that build: never more than N jobs at once (:mod:`aipc.wheelbuild.ninjalog`);
4. checks the genai wheel's ELF files carry no RUNPATH/RPATH outside ``$ORIGIN`` (:mod:`aipc.wheelbuild.wheelcheck`);
5. moves the build's ORT_HOME away and runs ``aipc verify --paths genai --wheels <wheels>`` (the genai wheel and
   the matching ORT wheel): both genai rows must pass and the fp32 ids must equal the tiny model's golden ids;
6. puts ORT_HOME back, snapshots the trees again: nothing may have changed.

Every finding is printed, the figures go to ``<workdir>/check-upstream.json``, and the exit code is 1 when any
check failed. When the upstream folder does not exist the check prints ``skip: <reason>`` and exits 0 (CI machines
without the trees); a folder that exists but lacks one of the trees is an error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import AipcError, ExitCode, UsageError
from ..fsutil import atomic_write_json, tree_changes, tree_digest, tree_snapshot
from ..proc import display, stream
from ..settings import Option, add_options
from ..wheelhouse import WheelInfo
from .ninjalog import log_max_overlap
from .wheelcheck import check_wheel

DEFAULT_UPSTREAM = Path("..") / "shared" / "upstream"
DEFAULT_WORKDIR = Path(".aipc") / "upstream"
_C = ("check-upstream",)
OPTIONS: tuple[Option, ...] = (
    Option("upstream", "--upstream", "AIPC_UPSTREAM", "folder holding onnxruntime-genai/, onnxruntime/ (headers) and "
           "deps/ (default: ../shared/upstream)", metavar="DIR", commands=_C),
    Option("workdir", "--workdir", "AIPC_UPSTREAM_WORKDIR", "where the build, wheels and reports go (default: "
           "./.aipc/upstream)", parse=Path, default=DEFAULT_WORKDIR, metavar="DIR", commands=_C),
    Option("jobs", "--jobs", "AIPC_UPSTREAM_JOBS", "compile jobs (default: 2)", parse=int, default=2, metavar="N",
           commands=_C),
)
TREES = ("onnxruntime-genai", "onnxruntime", "deps")
REPORT = "check-upstream.json"
GENAI_DISTS = ("onnxruntime-genai", "onnxruntime-genai-directml")  # canonical names (packaging)
ORT_DISTS = ("onnxruntime", "onnxruntime-directml")

Echo = Callable[[str], None]


def _echo(line: str) -> None:
    print(line, flush=True)


@dataclass(frozen=True)
class Upstream:
    """The three unmodified upstream trees the check builds from."""

    root: Path

    @property
    def genai(self) -> Path:
        return self.root / "onnxruntime-genai"

    @property
    def ort(self) -> Path:
        return self.root / "onnxruntime"

    @property
    def deps(self) -> Path:
        return self.root / "deps"

    def trees(self) -> dict[str, Path]:
        return {"onnxruntime-genai": self.genai, "onnxruntime": self.ort, "deps": self.deps}


def locate_upstream(root: Path) -> Upstream | None:
    """The trees under ``root``; None when ``root`` does not exist (the only reason to skip the check)."""
    if not root.exists():
        return None
    if not root.is_dir():
        raise UsageError(f"upstream folder {root} is not a folder",
                         hint="pass --upstream DIR holding onnxruntime-genai/, onnxruntime/ and deps/")
    missing = [name for name in TREES if not (root / name).is_dir()]
    if missing:
        raise UsageError(f"upstream folder {root} has no {', '.join(m + '/' for m in missing)}",
                         hint="pass --upstream DIR holding onnxruntime-genai/, onnxruntime/ and deps/")
    return Upstream(root)


def check_workdir(workdir: Path, upstream: Upstream) -> None:
    """The build must happen outside every source tree (and not around one: the tree would be rebuilt into)."""
    work = workdir.resolve()
    for name, tree in upstream.trees().items():
        t = tree.resolve()
        if work == t or t in work.parents or work in t.parents:
            raise UsageError(f"workdir {workdir} overlaps the upstream tree {name} ({tree})",
                             hint="pass a --workdir outside the upstream folder")


def build_argv(python: str, upstream: Upstream, workdir: Path, wheels: Path, jobs: int) -> list[str]:
    """The ``aipc build`` command of the real-upstream route (issue 10), as a user would type it."""
    return [python, "-m", "aipc", "build",
            "--genai-source", str(upstream.genai),
            "--ort-release", "pypi", "--ort-source", str(upstream.ort),
            "--deps-dir", str(upstream.deps), "--offline",
            "--jobs", str(jobs), "--generator", "ninja", "--ccache", "off",
            "--workdir", str(workdir), "--wheels", str(wheels)]


def verify_argv(python: str, wheels: Path, json_out: Path, junit: Path) -> list[str]:
    return [python, "-m", "aipc", "verify", "--paths", "genai", "--wheels", str(wheels),
            "--json", str(json_out), "--junit", str(junit)]


# --- the checks (pure functions over what the build and verify left behind) ---------------------------------


def overlap_findings(logs: Sequence[Path], jobs: int) -> tuple[list[str], list[dict[str, Any]]]:
    """Problems (empty = fine) and figures for the Ninja logs of a build run with ``--jobs jobs``."""
    if not logs:
        return ["no .ninja_log under the build workdir: the genai build did not run with Ninja"], []
    problems, figures = [], []
    for log in logs:
        found = log_max_overlap(log)
        figures.append({"log": str(log), "max_overlap": found.jobs, "at_ms": found.at_ms, "run": found.run})
        if found.jobs > jobs:
            problems.append(f"{log}: {found.jobs} jobs ran at once (--jobs {jobs}) at {found.at_ms} ms: "
                            + ", ".join(found.running))
    return problems, figures


def verify_findings(report: dict[str, Any], golden: list[int] | None) -> list[str]:
    """Problems in ``verify.json``: both genai rows (fp32, int4) pass, and fp32's ids equal the golden ids."""
    rows = [r for r in report.get("results", []) if r.get("path") == "genai"]
    problems = []
    for precision in ("fp32", "int4"):
        row = next((r for r in rows if r.get("precision") == precision), None)
        if row is None:
            problems.append(f"verify reported no genai {precision} row")
        elif row.get("status") != "pass":
            problems.append(f"genai {precision}: {row.get('status')}: {row.get('reason', '')}".rstrip(": "))
    fp32 = next((r for r in rows if r.get("precision") == "fp32"), None)
    if golden is None:
        problems.append("no golden ids for the model verify used (golden.json missing)")
    elif fp32 is not None and [int(t) for t in fp32.get("tokens", [])] != [int(t) for t in golden]:
        problems.append(f"genai fp32 ids {fp32.get('tokens')} differ from the golden ids {golden}")
    return problems


def read_golden(report: dict[str, Any]) -> list[int] | None:
    """The golden ids of the model verify ran (its ``golden.json``), None when there is none."""
    model = report.get("model")
    if not model:
        return None
    path = Path(model) / "golden.json"
    try:
        return [int(t) for t in json.loads(path.read_text(encoding="utf-8"))["golden"]]
    except (OSError, KeyError, TypeError, ValueError):
        return None


def runpath_findings(wheel: Path) -> tuple[list[str], dict[str, Any]]:
    """Problems and figures for the ELF files in ``wheel``: no RUNPATH/RPATH entry outside ``$ORIGIN``
    (:func:`aipc.wheelbuild.wheelcheck.check_wheel`, the check the wheels step refuses a wheel with)."""
    report = check_wheel(wheel)
    problems = [f"{wheel.name}: {member} has RUNPATH/RPATH entries outside $ORIGIN: "
                + ", ".join(e or "'' (the current directory)" for e in entries)
                for member, entries in report.dirty.items()]
    if not report.elf:
        problems.append(f"{wheel.name} holds no ELF file")
    return problems, {"elf_files": report.elf}


def find_wheel(wheels: Path, dists: Sequence[str]) -> Path | None:
    found = sorted((p for p in wheels.glob("*.whl") if WheelInfo.from_path(p).name in dists),
                   key=lambda p: p.stat().st_mtime, reverse=True)
    return found[0] if found else None


def ninja_logs(build_workdir: Path) -> list[Path]:
    return sorted(build_workdir.rglob(".ninja_log"))


class MovedAway:
    """Rename a folder out of the way for a ``with`` block and always put it back (``verify`` must not see it)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.away = path.with_name(f"{path.name}.moved-away")

    def restore_leftover(self) -> None:
        """An earlier run killed inside the block left the folder renamed: put it back first."""
        if self.away.exists() and not self.path.exists():
            os.replace(self.away, self.path)

    def __enter__(self) -> Path:
        self.restore_leftover()
        if not self.path.is_dir():
            raise AipcError(f"the build left no ORT_HOME at {self.path}",
                            hint="check the build log under the workdir's logs/")
        os.replace(self.path, self.away)
        return self.away

    def __exit__(self, *exc: object) -> None:
        if self.away.exists() and not self.path.exists():
            os.replace(self.away, self.path)


# --- the whole check ------------------------------------------------------------------------------------------


@dataclass
class CheckResult:
    problems: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)


def _run(argv: list[str], echo: Echo, env: Mapping[str, str | None] | None = None) -> tuple[int, float]:
    """Run a child with its output (stdout and stderr) on this process's stdout, in a group of its own that an
    interrupt stops as a whole (:func:`aipc.proc.stream`)."""
    echo("[check-upstream] $ " + display(argv))
    try:
        done = stream(argv, cwd=None, env=env, log=sys.stdout)
    except OSError as exc:
        raise AipcError(f"cannot start {argv[0]} ({exc.strerror or exc})", hint="pass an existing --python") from None
    return done.returncode, done.seconds


def _step_seconds(build_workdir: Path) -> dict[str, float]:
    out = {}
    for stamp in sorted((build_workdir / "state").glob("*.stamp.json")):
        try:
            out[stamp.name.removesuffix(".stamp.json")] = round(float(json.loads(stamp.read_text())["seconds"]), 1)
        except (OSError, KeyError, TypeError, ValueError):
            continue
    return out


def check_upstream(upstream: Upstream, workdir: Path, *, jobs: int = 2, python: str = sys.executable,
                   echo: Echo = _echo) -> CheckResult:
    res = CheckResult()
    build_dir, wheels = workdir / "build", workdir / "wheels"
    workdir.mkdir(parents=True, exist_ok=True)
    MovedAway(build_dir / "ort_home").restore_leftover()

    echo(f"[check-upstream] hashing the source trees under {upstream.root}")
    before = {name: tree_snapshot(path) for name, path in upstream.trees().items()}
    res.figures["trees_before"] = {name: tree_digest(s) for name, s in before.items()}

    # as on a machine where Python writes bytecode (this variable would hide a build.py that does so into a tree)
    env: dict[str, str | None] = {"PYTHONDONTWRITEBYTECODE": None}
    rc, seconds = _run(build_argv(python, upstream, build_dir, wheels, jobs), echo, env)
    res.figures["build_seconds"] = round(seconds, 1)
    res.figures["build_steps_seconds"] = _step_seconds(build_dir)
    if rc != 0:
        res.problems.append(f"aipc build exited {rc} (logs under {build_dir / 'logs'})")
    else:
        problems, figures = overlap_findings(ninja_logs(build_dir), jobs)
        res.problems += problems
        res.figures["ninja"] = figures
        genai_wheel, ort_wheel = find_wheel(wheels, GENAI_DISTS), find_wheel(wheels, ORT_DISTS)
        res.figures["wheels"] = [w.name for w in (genai_wheel, ort_wheel) if w is not None]
        if genai_wheel is None or ort_wheel is None:
            res.problems.append(f"{wheels} lacks the {'genai' if genai_wheel is None else 'ORT'} wheel")
        if genai_wheel is not None:
            problems, res.figures["runpath"] = runpath_findings(genai_wheel)
            res.problems += problems
        if genai_wheel is not None and ort_wheel is not None:
            json_out, junit = workdir / "verify.json", workdir / "verify.xml"
            json_out.unlink(missing_ok=True)
            with MovedAway(build_dir / "ort_home") as away:
                echo(f"[check-upstream] ORT_HOME moved to {away} while verify runs")
                rc, seconds = _run(verify_argv(python, wheels, json_out, junit), echo)
            res.figures["verify_seconds"] = round(seconds, 1)
            if not json_out.is_file():
                res.problems.append(f"aipc verify exited {rc} and wrote no {json_out}")
            else:
                report = json.loads(json_out.read_text(encoding="utf-8"))
                res.figures["verify_rows"] = [
                    {k: r.get(k) for k in ("path", "precision", "status", "device", "tokens", "reason")}
                    for r in report.get("results", [])]
                res.problems += verify_findings(report, read_golden(report))

    after = {name: tree_snapshot(path) for name, path in upstream.trees().items()}
    res.figures["trees_after"] = {name: tree_digest(s) for name, s in after.items()}
    for name in before:
        changes = tree_changes(before[name], after[name])
        if changes:
            shown = "; ".join(changes[:5]) + (f"; ... {len(changes) - 5} more" if len(changes) > 5 else "")
            res.problems.append(f"the build changed the source tree {name}: {shown}")
    return res


def format_result(res: CheckResult, jobs: int) -> list[str]:
    f = res.figures
    lines = [f"build: {f.get('build_seconds', '?')} s (steps: "
             + ", ".join(f"{k} {v} s" for k, v in f.get("build_steps_seconds", {}).items()) + ")"]
    for n in f.get("ninja", []):
        lines.append(f"ninja: at most {n['max_overlap']} jobs at once for --jobs {jobs} ({n['log']})")
    if f.get("wheels"):
        lines.append("wheels: " + ", ".join(f["wheels"]))
    rp = f.get("runpath")
    if rp:
        lines.append("runpath: " + "; ".join(f"{k}: {':'.join(v) or 'none'}" for k, v in rp["elf_files"].items()))
    for row in f.get("verify_rows", []):
        lines.append(f"verify: {row['path']} {row['precision']} {row['status']} on {row['device'] or '-'}: "
                     f"{row['reason']}")
    if "verify_seconds" in f:
        lines.append(f"verify: {f['verify_seconds']} s (ORT_HOME moved away)")
    for name, digest in f.get("trees_before", {}).items():
        after = f.get("trees_after", {}).get(name)
        lines.append(f"tree {name}: {digest[:16]} -> {(after or '?')[:16]} "
                     f"{'unchanged' if after == digest else 'CHANGED'}")
    return lines


def _cmd_check(args: argparse.Namespace) -> int:
    root = Path(args.upstream or DEFAULT_UPSTREAM)
    upstream = locate_upstream(root)
    if upstream is None:
        print(f"skip: {root} is absent (the real upstream trees onnxruntime-genai/, onnxruntime/, deps/); "
              "nothing to build", flush=True)
        return ExitCode.OK
    if args.jobs < 1:
        raise UsageError(f"--jobs {args.jobs} must be at least 1", hint="use --jobs 2 on a 2-core machine")
    workdir = Path(os.path.abspath(args.workdir))
    check_workdir(workdir, upstream)
    res = check_upstream(Upstream(Path(os.path.abspath(upstream.root))), workdir, jobs=args.jobs)
    atomic_write_json(workdir / REPORT, {"problems": res.problems, **res.figures})
    for line in format_result(res, args.jobs):
        print(f"[check-upstream] {line}", flush=True)
    if res.problems:
        for p in res.problems:
            print(f"[check-upstream] FAIL: {p}", flush=True)
        raise AipcError(f"the real upstream check failed ({len(res.problems)} problem(s), listed above; "
                        f"figures in {workdir / REPORT})", hint="fix the first problem listed and rerun")
    print(f"[check-upstream] pass: real genai built offline against the ORT release, verified; "
          f"figures in {workdir / REPORT}", flush=True)
    return ExitCode.OK


def register_cli(sub: argparse._SubParsersAction[Any]) -> None:
    help_text = ("build the real onnxruntime-genai offline against the official ORT release (aipc build) and "
                 "verify it (aipc verify --paths genai), checking jobs, RUNPATH and that no source tree changed")
    p = sub.add_parser("check-upstream", help=help_text, description=help_text + ". Skipped (exit 0) when the "
                       "upstream folder does not exist.")
    add_options(p, OPTIONS, "check-upstream")
    p.set_defaults(func=_cmd_check)
