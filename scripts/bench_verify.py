#!/usr/bin/env python3
"""Benchmark ``aipc verify`` as a user's first and second run, for the pip and uv installers side by side.

For each installer (``AIPC_INSTALLER``), in a fresh temporary aipc cache (``AIPC_CACHE``) and working folder (so
``./wheels`` starts empty, as in a fresh clone):

- **cold**: ``aipc verify --build-npu`` (what ``nox`` runs): every venv, aipc's tiny model, every export and the NPU
  wheel are made, then every smoke runs. pip's and uv's own package caches are left as they are (warm on a machine
  that installed these packages before: the goals assume it);
- **warm**: the same command again: everything is reused, only the smokes (and the checks) run.

For each run it prints the wall time (around the process), verify's own figures from ``verify.json`` (its wall
time against the sum and the critical path of its tasks, smokes counted by the workers' own clocks; the CPU seconds
of every command the tasks ran), where the time went per kind of task, and what bounds the run: CPU seconds / cores
and the critical path. Goals (issue 15, 2 cores, package cache warm): cold <= 90 s, warm <= 8 s, wall / critical
path <= 1.15. The load average before and after each run is printed: other work on the machine slows every figure.

    python scripts/bench_verify.py                        # pip and uv, cold + warm each
    python scripts/bench_verify.py --installers uv        # one installer
    python scripts/bench_verify.py --warm-runs 3          # more warm runs (the best one is the figure)
    python scripts/bench_verify.py --no-build-npu         # no NPU wheel build (the npu path is then a skip)
    python scripts/bench_verify.py --keep                 # keep the temporary caches (their path is printed)
    python scripts/bench_verify.py --json figures.json    # the figures as JSON too
    python scripts/bench_verify.py -- --paths genai,openvino   # arguments for aipc verify

Run it from a checkout whose environment has aipc installed (``pip install -e .``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

GOALS = {"cold": 90.0, "warm": 8.0, "ratio": 1.15}
KINDS = (("prepare", "NPU wheel build"), ("venv", "venvs"), ("model", "tiny model"), ("devices", "device probes"),
         ("export", "exports"), ("smoke", "smokes"))


def children_cpu() -> float:
    use = resource.getrusage(resource.RUSAGE_CHILDREN)
    return use.ru_utime + use.ru_stime


def run_verify(installer: str, cache: Path, work: Path, label: str, args: argparse.Namespace) -> dict[str, Any]:
    env = dict(os.environ, AIPC_CACHE=str(cache), AIPC_INSTALLER=installer)
    env.pop("AIPC_WHEELS", None)  # ./wheels of the fresh working folder
    out = work / f"{label}.json"
    argv = [sys.executable, "-m", "aipc", "verify", "--json", str(out), "--junit", str(work / f"{label}.xml")]
    if args.build_npu:
        argv.append("--build-npu")
    argv += args.extra
    print(f"[bench] {installer} {label}: {' '.join(argv[1:])}  (AIPC_CACHE={cache})", flush=True)
    load0 = os.getloadavg()[0]
    cpu0, t0 = children_cpu(), time.monotonic()
    proc = subprocess.run(argv, cwd=work, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, check=False)
    wall, cpu = time.monotonic() - t0, children_cpu() - cpu0
    load1 = os.getloadavg()[0]
    log = work / f"{label}.log"
    log.write_text(proc.stdout, encoding="utf-8")
    data: dict[str, Any] = json.loads(out.read_text(encoding="utf-8")) if out.is_file() else {}
    if proc.returncode != 0 or not data:
        print("\n".join(proc.stdout.splitlines()[-15:]))
    return {"installer": installer, "label": label, "exit_code": proc.returncode, "wall": wall,
            "process_cpu": cpu, "load": (load0, load1), "data": data, "log": str(log)}


def breakdown(data: dict[str, Any]) -> list[str]:
    """Per kind of task: count, seconds (summed; smokes by their own clocks) and CPU seconds."""
    tasks: dict[str, Any] = data.get("tasks") or {}
    parts = []
    for kind, name in KINDS:
        mine = [t for k, t in tasks.items() if k.split(":", 1)[0] == kind and t["state"] in ("done", "failed")]
        if not mine:
            continue
        secs = sum(t["own_seconds"] if t.get("own_seconds") is not None else t["seconds"] for t in mine)
        cpu = sum(t.get("cpu_seconds") or 0.0 for t in mine)
        parts.append(f"{name} {secs:.1f} s (CPU {cpu:.1f} s, {len(mine)} task{'s' if len(mine) > 1 else ''})")
    return parts


def chain(data: dict[str, Any]) -> str:
    tasks: dict[str, Any] = data.get("tasks") or {}
    bits = []
    for key in data.get("critical_path") or []:
        t = tasks.get(key, {})
        secs = t.get("own_seconds") if t.get("own_seconds") is not None else t.get("seconds", 0.0)
        bits.append(f"{key} {secs:.1f}")
    return " -> ".join(bits)


def report(res: dict[str, Any], cores: int) -> dict[str, Any]:
    data = res["data"]
    crit = float(data.get("critical_path_seconds") or 0.0)
    inner = float(data.get("seconds") or 0.0)
    cpu = float(data.get("cpu_seconds") or 0.0)
    ratio = inner / crit if crit else float("nan")
    goal = GOALS["cold" if res["label"] == "cold" else "warm"]
    fig = {"installer": res["installer"], "run": res["label"], "wall": round(res["wall"], 1),
           "verify_wall": round(inner, 1), "critical_path": round(crit, 1), "wall_over_critical": round(ratio, 2),
           "tasks_sum": round(float(data.get("tasks_seconds") or 0.0), 1), "task_cpu": round(cpu, 1),
           "process_cpu": round(res["process_cpu"], 1), "cpu_bound": round(res["process_cpu"] / cores, 1),
           "load": [round(x, 1) for x in res["load"]], "summary": data.get("summary"), "exit_code": res["exit_code"],
           "goal": goal, "met": res["wall"] <= goal, "ratio_met": ratio <= GOALS["ratio"]}
    print(f"[bench] {res['installer']} {res['label']}: wall {res['wall']:.1f} s (goal <= {goal:g} s: "
          f"{'met' if fig['met'] else 'MISSED'}), exit {res['exit_code']}, {data.get('summary')}, load average "
          f"{res['load'][0]:.1f} -> {res['load'][1]:.1f} on {cores} cores")
    print(f"[bench]   verify wall {inner:.1f} s = {ratio:.2f} x the critical path {crit:.1f} s (goal <= "
          f"{GOALS['ratio']:g}: {'met' if fig['ratio_met'] else 'MISSED'}); tasks summed {fig['tasks_sum']:.1f} s")
    print(f"[bench]   critical path: {chain(data)}")
    print(f"[bench]   where the time went: {'; '.join(breakdown(data))}")
    print(f"[bench]   CPU: {res['process_cpu']:.1f} s for the whole process tree (the tasks' commands "
          f"{cpu:.1f} s): at least {fig['cpu_bound']:.1f} s on {cores} cores; the critical path needs {crit:.1f} s")
    if not fig["met"]:
        bound = "CPU" if fig["cpu_bound"] >= crit else "the critical path"
        print(f"[bench]   goal missed: the run is bounded by {bound} (max of CPU/cores {fig['cpu_bound']:.1f} s and "
              f"critical path {crit:.1f} s); the rest ({res['wall'] - max(fig['cpu_bound'], crit):.1f} s) is "
              "waiting for the CPU others use, start-up and aipc's own work")
    return fig


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--installers", default="pip,uv", help="comma-separated: pip,uv (default both)")
    ap.add_argument("--warm-runs", type=int, default=1, help="warm runs after each cold one (default 1)")
    ap.add_argument("--no-build-npu", dest="build_npu", action="store_false",
                    help="do not build the NPU wheel (nox passes --build-npu)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary caches and logs")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    ap.add_argument("extra", nargs="*", help="arguments for aipc verify (after --)")
    args = ap.parse_args()
    installers = [i.strip() for i in args.installers.split(",") if i.strip()]
    if not installers or any(i not in ("pip", "uv") for i in installers) or args.warm_runs < 1:
        ap.error("--installers takes pip and/or uv; --warm-runs at least 1")
    cores = os.cpu_count() or 1
    tmp = Path(tempfile.mkdtemp(prefix="aipc-bench-verify-"))
    figures: list[dict[str, Any]] = []
    try:
        for installer in installers:
            cache, work = tmp / installer / "cache", tmp / installer / "work"
            work.mkdir(parents=True)
            figures.append(report(run_verify(installer, cache, work, "cold", args), cores))
            warm = [report(run_verify(installer, cache, work, f"warm{i + 1}", args), cores)
                    for i in range(args.warm_runs)]
            best = min(warm, key=lambda f: f["wall"])
            figures.append(dict(best, run="warm"))
        print(f"\n[bench] summary ({cores} cores; goals: cold <= {GOALS['cold']:g} s, warm <= {GOALS['warm']:g} s, "
              f"wall/critical path <= {GOALS['ratio']:g}; load average = other work on the machine)")
        head = ("installer", "run", "wall s", "critical s", "wall/crit", "tasks sum s", "CPU s", "CPU/cores s",
                "load", "result")
        rows = [(f["installer"], f["run"], f"{f['wall']:.1f}", f"{f['critical_path']:.1f}",
                 f"{f['wall_over_critical']:.2f}", f"{f['tasks_sum']:.1f}", f"{f['process_cpu']:.1f}",
                 f"{f['cpu_bound']:.1f}", f"{f['load'][0]:.1f}-{f['load'][1]:.1f}",
                 ("met" if f["met"] else "MISSED") + ("" if f["ratio_met"] else ", ratio MISSED")
                 + ("" if f["exit_code"] == 0 else f", exit {f['exit_code']}")) for f in figures]
        widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
        for r in [head, *rows]:
            print("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)))
        if args.json is not None:
            args.json.write_text(json.dumps(figures, indent=2), encoding="utf-8")
        return 0 if all(f["exit_code"] == 0 for f in figures) else 1
    finally:
        if args.keep:
            print(f"[bench] kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
