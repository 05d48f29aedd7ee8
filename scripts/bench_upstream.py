#!/usr/bin/env python3
"""Benchmark the real-upstream genai build (issue 10): what ``ENABLE_TESTS=OFF`` saves, and what a no-op rerun costs.

    python scripts/bench_upstream.py                        # ../shared/upstream, a temporary workdir (deleted)
    python scripts/bench_upstream.py --upstream DIR --workdir DIR --jobs 2 --json bench-upstream.json

Measured in one run, on the same machine, one after the other (nothing else of this script runs meanwhile):
1. ``aipc build --genai-source <genai> --ort-release pypi --ort-source <onnxruntime> --deps-dir <deps> --offline
   --jobs N --generator ninja --ccache off`` in a fresh workdir: genai compiled with ``ENABLE_TESTS=OFF``;
2. the same ``aipc build`` again: every step up to date (the no-op rerun);
3. genai's own ``build.py`` with exactly the command aipc ran (taken from ``aipc plan --json``: same venv, ORT_HOME,
   dependency folders, ``CMAKE_BUILD_PARALLEL_LEVEL``) but genai's default ``ENABLE_TESTS`` (tests compiled) and
   its own build directory in the workdir;
4. that ``build.py`` command again, nothing changed (genai's rerun: CMake reconfigure plus a no-op Ninja).
Compile time is the span of the build's own Ninja run (first job start to last job end, from ``.ninja_log``), so
venv creation and staging are not counted; the step's wall time is shown too. Not run in CI (about 15 minutes on
2 cores); the figures it printed are in docs/build.md (section "Real upstream build").
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from aipc.wheelbuild.ninjalog import parse_ninja_log
from aipc.wheelbuild.upstream import DEFAULT_UPSTREAM, build_argv, locate_upstream


def run(label: str, argv: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None,
        log: Path) -> float:
    print(f"[bench] {label}: {' '.join(argv)}", flush=True)
    t0 = time.monotonic()
    with log.open("w", encoding="utf-8") as fh:
        proc = subprocess.run(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT,
                              check=False)
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-30:]
        sys.stderr.write("\n".join(tail) + "\n")
        raise SystemExit(f"[bench] {label} failed with exit code {proc.returncode} (log: {log})")
    print(f"[bench] {label}: {wall:.1f} s", flush=True)
    return wall


def ninja_span(build_dir: Path) -> float:
    """Seconds of the first Ninja run recorded under ``build_dir`` (its compile, from ``.ninja_log``)."""
    logs = sorted(build_dir.rglob(".ninja_log"))
    if not logs:
        raise SystemExit(f"[bench] no .ninja_log under {build_dir}")
    spans = []
    for log in logs:
        runs = parse_ninja_log(log.read_text(encoding="utf-8", errors="replace"), str(log))
        if runs and runs[0]:
            spans.append((max(j.end_ms for j in runs[0]) - min(j.start_ms for j in runs[0])) / 1000)
    return max(spans)


def genai_command(build: list[str]) -> dict[str, Any]:
    """The build-genai command aipc runs, from ``aipc plan --json`` with the same settings."""
    plan = build.copy()
    plan[plan.index("build")] = "plan"
    out = subprocess.run([*plan, "--json", "--steps", "build-genai"], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"[bench] aipc plan failed: {out.stderr.strip()}")
    for cmd in json.loads(out.stdout):
        if any(Path(a).name == "build.py" for a in cmd["argv"]):
            return dict(cmd)
    raise SystemExit("[bench] aipc plan shows no build.py command for build-genai")


def default_tests_variant(argv: list[str], build_dir: Path) -> list[str]:
    """genai's build.py command with its default ENABLE_TESTS and ``--build_dir build_dir``."""
    out, i = [], 0
    while i < len(argv):
        a = argv[i]
        if a == "--build_dir":
            i += 2
            continue
        if a.startswith("ENABLE_TESTS=") or a == "-DENABLE_TESTS=OFF":
            i += 1
            continue
        out.append(a)
        i += 1
    return [*out, "--build_dir", str(build_dir)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--upstream", type=Path, default=Path(os.environ.get("AIPC_UPSTREAM") or DEFAULT_UPSTREAM))
    ap.add_argument("--workdir", type=Path, default=None, help="keep everything here (default: temporary)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None, help="also write the figures as JSON")
    args = ap.parse_args()
    upstream = locate_upstream(args.upstream.absolute())
    if upstream is None:
        print(f"skip: {args.upstream} is absent; nothing to benchmark")
        return 0
    tmp = None if args.workdir else Path(tempfile.mkdtemp(prefix="aipc-bench-upstream-"))
    work = (args.workdir or tmp).absolute()  # type: ignore[union-attr]
    work.mkdir(parents=True, exist_ok=True)
    logs = work / "bench-logs"
    logs.mkdir(exist_ok=True)
    try:
        build = build_argv(sys.executable, upstream, work / "build", work / "wheels", args.jobs)
        f: dict[str, Any] = {"jobs": args.jobs, "cpus": os.cpu_count()}
        f["aipc_build_wall"] = run("aipc build (ENABLE_TESTS=OFF), fresh", build, log=logs / "1-aipc-build.log")
        stamp = work / "build" / "state" / "build-genai.stamp.json"
        f["aipc_genai_step"] = float(json.loads(stamp.read_text())["seconds"]) if stamp.is_file() else None
        f["compile_tests_off"] = ninja_span(work / "build")
        f["aipc_noop_rerun"] = run("aipc build, no-op rerun", build, log=logs / "2-aipc-rerun.log")
        cmd = genai_command(build)
        genai_build = work / "genai-default-build"
        argv = default_tests_variant(cmd["argv"], genai_build)
        env = dict(os.environ, **{k: os.path.expandvars(v) for k, v in cmd["env"].items()})  # the plan's $PATH
        f["genai_default_wall"] = run("genai build.py, default ENABLE_TESTS (tests compiled)", argv,
                                      cwd=Path(cmd["cwd"]), env=env, log=logs / "3-genai-default.log")
        f["compile_tests_default"] = ninja_span(genai_build)
        f["genai_rerun"] = run("genai build.py, rerun", argv, cwd=Path(cmd["cwd"]), env=env,
                               log=logs / "4-genai-rerun.log")
        f["ratio_compile_off_vs_default"] = f["compile_tests_off"] / f["compile_tests_default"]
        f["ratio_noop_aipc_vs_genai_rerun"] = f["aipc_noop_rerun"] / f["genai_rerun"]
        print(f"\n[bench] genai compile (Ninja span, --jobs {args.jobs}, {f['cpus']} CPUs):")
        print(f"[bench]   ENABLE_TESTS=OFF (aipc)        {f['compile_tests_off']:8.1f} s   "
              f"(build-genai step {f['aipc_genai_step'] or 0:.1f} s, whole aipc build {f['aipc_build_wall']:.1f} s)")
        print(f"[bench]   genai default (tests compiled) {f['compile_tests_default']:8.1f} s   "
              f"(build.py wall {f['genai_default_wall']:.1f} s)")
        print(f"[bench]   ratio OFF / default            {f['ratio_compile_off_vs_default']:8.2f}")
        print("[bench] rerun with nothing changed:")
        print(f"[bench]   aipc build (every step skipped) {f['aipc_noop_rerun']:7.2f} s")
        print(f"[bench]   genai build.py rerun            {f['genai_rerun']:7.2f} s")
        print(f"[bench]   ratio aipc / build.py           {f['ratio_noop_aipc_vs_genai_rerun']:7.2f}")
        if args.json:
            args.json.write_text(json.dumps(f, indent=2) + "\n", encoding="utf-8")
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
