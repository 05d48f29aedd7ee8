#!/usr/bin/env python3
"""Benchmark the installers (aipc.installer): seconds to create each runtime venv (genai, openvino, npu) in an empty
aipc cache with pip and with uv, and whether both venvs hold the same packages (``pip list --format=freeze``).

    python scripts/bench_venvs.py                              # uv and pip, every runtime, temporary caches
    python scripts/bench_venvs.py --wheels DIR                 # aipc's wheels (the npu path needs its Linux wheel)
    python scripts/bench_venvs.py --installers pip --runtimes genai

Package caches: pip's and uv's own caches are used as they are. Before the timed passes, one untimed pass per
installer fills its package cache (``--no-warm-up`` skips it), so the figures compare warm package caches; each
timed pass gets a fresh, empty ``AIPC_CACHE`` (no venv is reused). Passes run one after another, so the figures on a
shared machine are rough: the printed CPU load average says how busy it was.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from aipc.errors import AipcError  # noqa: E402
from aipc.installer import select  # noqa: E402
from aipc.runtimes import RUNTIMES  # noqa: E402
from aipc.runtimes.base import RuntimeSkipped  # noqa: E402
from aipc.venvs import ensure_venv, venvs_root  # noqa: E402


def make_all(installer: str, runtimes: list[str], wheels: Path, cache: Path) -> dict[str, tuple[float, Path | None]]:
    inst = select(installer)
    out: dict[str, tuple[float, Path | None]] = {}
    for rt in (r for r in RUNTIMES if r.name in runtimes):
        try:
            spec = rt.venv_spec(wheels, cache)
        except RuntimeSkipped as exc:
            print(f"[bench] {rt.name}: skip: {exc}", flush=True)
            continue
        t0 = time.monotonic()
        try:
            py = ensure_venv(spec, venvs_root(cache), echo=lambda _s: None, installer=inst)
        except AipcError as exc:
            print(f"[bench] {rt.name} ({installer}): failed: {exc.one_line()}", flush=True)
            out[rt.name] = (time.monotonic() - t0, None)
            continue
        out[rt.name] = (time.monotonic() - t0, py)
        print(f"[bench] {rt.name} ({installer}, {cache.name}): {out[rt.name][0]:.1f} s", flush=True)
    return out


def freeze(python: Path) -> set[str]:
    out = subprocess.run([str(python), "-m", "pip", "list", "--format=freeze", "--disable-pip-version-check"],
                         capture_output=True, text=True, check=False)
    return {line.strip().lower() for line in out.stdout.splitlines() if line.strip()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--installers", default="uv,pip", help="comma list of uv, pip (default: both)")
    ap.add_argument("--runtimes", default="genai,openvino,npu", help="comma list (default: all)")
    ap.add_argument("--wheels", type=Path, default=ROOT / "wheels", help="aipc's wheels folder (default ./wheels)")
    ap.add_argument("--no-warm-up", action="store_true", help="no untimed pass to fill the package caches first")
    ap.add_argument("--keep", type=Path, help="keep the caches under this folder (default: temporary, deleted)")
    args = ap.parse_args()
    installers = [i for i in args.installers.split(",") if i]
    runtimes = [r for r in args.runtimes.split(",") if r]
    base = Path(tempfile.mkdtemp(prefix="aipc-bench-venvs-", dir=args.keep))
    print(f"[bench] caches under {base}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", flush=True)
    timed: dict[str, dict[str, tuple[float, Path | None]]] = {}
    warm: dict[str, dict[str, tuple[float, Path | None]]] = {}
    try:
        for name in installers:
            if not args.no_warm_up:
                warm[name] = make_all(name, runtimes, args.wheels, base / f"{name}-warm-up")
            timed[name] = make_all(name, runtimes, args.wheels, base / f"{name}-timed")
        print(f"\nload average {os.getloadavg()[0]:.1f}; seconds to create each venv in an empty aipc cache, "
              + ("package caches warm (warm-up pass in brackets)" if warm else "package caches as they were"))
        head = "".join(f"{n:>22}" for n in installers)
        print(f"{'runtime':10}{head}" + ("   pip/uv" if len(installers) == 2 else ""))
        same_all = True
        for rt in runtimes:
            cells = []
            for n in installers:
                sec, py = timed.get(n, {}).get(rt, (float("nan"), None))
                first = warm.get(n, {}).get(rt)
                cells.append(f"{sec:8.1f}" + (f" ({first[0]:6.1f})" if first else "") + ("" if py else " FAIL"))
            ratio = ""
            if installers == ["uv", "pip"] or installers == ["pip", "uv"]:
                u, p = timed["uv"].get(rt, (0.0, None)), timed["pip"].get(rt, (0.0, None))
                if u[1] and p[1]:
                    ratio = f"{p[0] / u[0]:9.1f}x"
                    differ = freeze(u[1]) ^ freeze(p[1])
                    same_all &= not differ
                    ratio += "  same packages" if not differ else f"  DIFFER: {sorted(differ)}"
            print(f"{rt:10}" + "".join(f"{c:>22}" for c in cells) + ratio)
        total = {n: sum(s for s, _ in timed[n].values()) for n in installers}
        print(f"{'total':10}" + "".join(f"{total[n]:8.1f}".rjust(22) for n in installers))
        return 0 if same_all else 1
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
