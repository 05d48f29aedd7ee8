#!/usr/bin/env python3
"""Benchmark ``aipc verify``: wall time cold (fresh venvs in a temporary AIPC_CACHE) and warm (venvs, tiny model
and exports reused), per-path smoke seconds, and the orchestration overhead = verify wall - sum of smoke seconds,
as a percentage of the smoke time. Targets (issue "nox -s verify"): warm <= 30 s, overhead <= 20 %.

    python scripts/bench_verify.py                 # cold + warm in a temporary cache (deleted afterwards)
    python scripts/bench_verify.py --cache DIR     # use DIR as AIPC_CACHE (kept; a second call measures warm twice)
    python scripts/bench_verify.py --no-pip-cache  # cold installs download every wheel again (PIP_NO_CACHE_DIR)
    python scripts/bench_verify.py --nox           # time `nox -s verify` itself

Extra arguments after ``--`` go to ``aipc verify`` (e.g. ``-- --paths genai,openvino``). The timing is taken
around the ``python -m aipc verify`` process, so it includes interpreter start-up and aipc's own import.
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

ROOT = Path(__file__).resolve().parents[1]
WARM_TARGET = 30.0
OVERHEAD_TARGET = 20.0


def run_verify(cache: Path, work: Path, label: str, extra: list[str], no_pip_cache: bool,
               use_nox: bool = False) -> dict[str, Any]:
    env = dict(os.environ, AIPC_CACHE=str(cache))
    if no_pip_cache:
        env["PIP_NO_CACHE_DIR"] = "1"
    out = work / f"{label}.json"
    argv = [sys.executable, "-m", "aipc", "verify", "--json", str(out), "--junit", str(work / f"{label}.xml"), *extra]
    cwd = work
    if use_nox:  # the same through `nox -s verify` (adds nox's session venv and `pip install -e .` of aipc)
        argv = [sys.executable, "-m", "nox", "-s", "verify", "--", *argv[4:]]
        cwd = ROOT
    print(f"[bench] {label}: {' '.join(argv[1:])}  (AIPC_CACHE={cache})", flush=True)
    t0 = time.monotonic()
    proc = subprocess.run(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, check=False)
    wall = time.monotonic() - t0
    (work / f"{label}.log").write_text(proc.stdout, encoding="utf-8")
    if proc.returncode != 0:
        print("\n".join(proc.stdout.splitlines()[-20:]))
    data = json.loads(out.read_text(encoding="utf-8")) if out.is_file() else {"results": []}
    per_path: dict[str, float] = {}
    for r in data.get("results", []):
        per_path[r["path"]] = per_path.get(r["path"], 0.0) + float(r.get("seconds") or 0.0)
    return {"label": label, "exit_code": proc.returncode, "wall": wall,
            "smoke": float(data.get("smoke_seconds") or 0.0), "per_path": per_path,
            "setup": data.get("setup_seconds", {}), "summary": data.get("summary", {}),
            "log": str(work / f"{label}.log")}


def report(res: dict[str, Any]) -> None:
    overhead = res["wall"] - res["smoke"]
    pct = 100.0 * overhead / res["smoke"] if res["smoke"] > 0 else float("inf")
    print(f"[bench] {res['label']}: verify wall {res['wall']:.1f} s, exit {res['exit_code']}, {res['summary']}")
    print(f"[bench]   smoke seconds {res['smoke']:.2f} (" + ", ".join(f"{p} {s:.2f}" for p, s in
                                                             res["per_path"].items()) + ")")
    print(f"[bench]   overhead {overhead:.2f} s = {pct:.1f} % of smoke time; setup inside it (tiny model includes "
          "the genai venv when cold): " + ", ".join(f"{k} {v:.1f} s" for k, v in res["setup"].items()))
    res["overhead"], res["overhead_pct"] = overhead, pct


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, default=None, help="AIPC_CACHE to use and keep (default: a temporary one)")
    ap.add_argument("--no-pip-cache", action="store_true", help="cold installs bypass pip's download cache")
    ap.add_argument("--nox", action="store_true", help="run `nox -s verify` instead of `python -m aipc verify`")
    ap.add_argument("--warm-runs", type=int, default=1, help="warm runs after the cold one (default 1)")
    ap.add_argument("extra", nargs="*", help="arguments for aipc verify (after --)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="aipc-bench-verify-"))
    cache = args.cache or tmp / "cache"
    work = tmp / "work"
    work.mkdir()
    try:
        results = [run_verify(cache, work, "cold", args.extra, args.no_pip_cache, args.nox)]
        report(results[0])
        for i in range(args.warm_runs):
            results.append(run_verify(cache, work, f"warm{i + 1}" if args.warm_runs > 1 else "warm", args.extra,
                                      False, args.nox))
            report(results[-1])
        warm = results[-1]
        print(f"[bench] summary: cold {results[0]['wall']:.1f} s; warm {warm['wall']:.1f} s (target <= "
              f"{WARM_TARGET:g} s: {'met' if warm['wall'] <= WARM_TARGET else 'MISSED'}); warm overhead "
              f"{warm['overhead_pct']:.1f} % (target <= {OVERHEAD_TARGET:g} %: "
              f"{'met' if warm['overhead_pct'] <= OVERHEAD_TARGET else 'MISSED'})")
        print(json.dumps({r["label"]: {k: r[k] for k in ("wall", "smoke", "overhead", "overhead_pct", "per_path",
                                                          "exit_code")} for r in results}, indent=2))
        return 0 if all(r["exit_code"] == 0 for r in results) else 1
    finally:
        if args.cache is None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
