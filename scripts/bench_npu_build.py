#!/usr/bin/env python3
"""Benchmark ``aipc build-npu``: wheel build time cold and with the build cache warm, and the wheel size next to
upstream's Windows wheel (intel_npu_acceleration_library-1.4.0-cp3xx-win_amd64.whl, 41.1 MB; docs/upstream.md#npu
section 1).

    python scripts/bench_npu_build.py                   # in a temporary build dir (deleted afterwards)
    python scripts/bench_npu_build.py --build-dir DIR   # keep DIR (a second call starts warm)
    python scripts/bench_npu_build.py --no-pip-cache    # cold downloads bypass pip's HTTP cache

Runs, each as ``python -m aipc build-npu`` in a subprocess (so interpreter start-up and aipc's import count):
1. cold: empty build dir: sdist download + sha256, unpack, build venv (scikit-build-core, cmake, ninja, openvino
   2024.4.0), compile, package, checks, wheels/ entry;
2. cold compile: build venv and sdist kept, CMake build directory deleted (a fresh compile of the native backend);
3. warm: ``--force`` with the CMake build directory kept (incremental: nothing to compile, packaging only);
4. up to date: no option; every step skipped (inputs unchanged).
Per-step seconds come from the runner's stamps (``<build>/state/*.stamp.json``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

UPSTREAM_WINDOWS_WHEEL_MB = 41.1
STEPS = ("npu-sdist", "npu-unpack", "npu-build-venv", "npu-wheel", "npu-collect")


def run(label: str, build: Path, wheels: Path, extra: list[str], env: dict[str, str]) -> dict[str, Any]:
    argv = [sys.executable, "-m", "aipc", "build-npu", "--build-dir", str(build), "--wheels", str(wheels), *extra]
    before = {s: _stamp_mtime(build, s) for s in STEPS}
    print(f"[bench] {label}: aipc build-npu {' '.join(extra)}", flush=True)
    t0 = time.monotonic()
    proc = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-3000:])
        raise SystemExit(f"[bench] {label}: aipc build-npu failed with exit code {proc.returncode}")
    steps = {}
    for s in STEPS:
        stamp = build / "state" / f"{s}.stamp.json"
        if stamp.is_file() and _stamp_mtime(build, s) != before[s]:
            steps[s] = round(float(json.loads(stamp.read_text())["seconds"]), 2)
        else:
            steps[s] = "skipped"
    wheel = Path(proc.stdout.strip())
    return {"label": label, "wall_seconds": round(wall, 2), "steps": steps, "wheel": str(wheel),
            "sha256": hashlib.sha256(wheel.read_bytes()).hexdigest()}


def _stamp_mtime(build: Path, step: str) -> float | None:
    stamp = build / "state" / f"{step}.stamp.json"
    return stamp.stat().st_mtime_ns if stamp.is_file() else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build-dir", type=Path, default=None, help="build dir to use and keep (default: temporary)")
    ap.add_argument("--no-pip-cache", action="store_true", help="PIP_NO_CACHE_DIR=1 for the cold run")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures as JSON")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="aipc-bench-npu-"))
    build = args.build_dir.absolute() if args.build_dir else tmp / "build"
    wheels = tmp / "wheels"
    env = dict(os.environ)
    results = []
    try:
        cold_env = dict(env, PIP_NO_CACHE_DIR="1") if args.no_pip_cache else env
        results.append(run("cold", build, wheels, [], cold_env))
        shutil.rmtree(build / "cmake", ignore_errors=True)
        results.append(run("cold compile", build, wheels, ["--force"], env))
        results.append(run("warm (--force, CMake cache kept)", build, wheels, ["--force"], env))
        results.append(run("up to date", build, wheels, [], env))
        wheel = Path(results[-1]["wheel"])
        size_mb = wheel.stat().st_size / 1e6
        print()
        print(f"{'run':<34} {'wall s':>7}  " + "  ".join(f"{s:>14}" for s in STEPS))
        for r in results:
            cells = "  ".join(f"{r['steps'][s]!s:>14}" for s in STEPS)
            print(f"{r['label']:<34} {r['wall_seconds']:>7.1f}  {cells}")
        print()
        print(f"wheel: {wheel.name}")
        print(f"  aipc (py3-none, one wheel for CPython >= 3.10): {size_mb:6.1f} MB")
        print(f"  upstream win_amd64 (one per CPython 3.8-3.12):  {UPSTREAM_WINDOWS_WHEEL_MB:6.1f} MB "
              f"(aipc's is {size_mb / UPSTREAM_WINDOWS_WHEEL_MB:.0%} of it)")
        shas = {r["sha256"] for r in results}
        print(f"  byte-identical across the cold, fresh-compile and warm builds: {'yes' if len(shas) == 1 else 'NO'}"
              f" (sha256 {results[0]['sha256'][:16]}...)")
        if args.json:
            args.json.write_text(json.dumps({"runs": results, "wheel_mb": round(size_mb, 2),
                                             "upstream_windows_wheel_mb": UPSTREAM_WINDOWS_WHEEL_MB}, indent=2))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
