"""``aipc bench compare A.json B.json``: ratios B / A per target, grid cell and metric."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import AipcError
from .metrics import METRICS
from .report import text_table
from .schema import load

Key = tuple[str, str, str, str, int, int]  # path, api, device, precision, prompt, gen


@dataclass(frozen=True)
class Comparison:
    rows: list[tuple[Key, dict[str, tuple[float, float, float]]]]  # metric -> (a, b, b/a)
    only_a: list[str]
    only_b: list[str]
    machine_differs: bool


def _index(doc: dict[str, Any]) -> dict[Key, dict[str, Any]]:
    out: dict[Key, dict[str, Any]] = {}
    for t in doc["targets"]:
        if t["status"] != "pass":
            continue
        for c in t["cells"]:
            out[(t["path"], t["api"], t["device"], t["precision"], c["prompt_tokens"], c["gen_tokens"])] = c
    return out


def _label(k: Key) -> str:
    return f"{k[0]}/{k[1]}/{k[2]}/{k[3]} {k[4]}x{k[5]}"


def compare_docs(a: dict[str, Any], b: dict[str, Any], names: tuple[str, str] = ("A", "B")) -> Comparison:
    ia, ib = _index(a), _index(b)
    common = [k for k in ia if k in ib]
    if not common:
        raise AipcError(
            f"{names[0]} and {names[1]} have no passing target and grid cell in common "
            f"({names[0]}: {', '.join(sorted(map(_label, ia))) or 'none'}; "
            f"{names[1]}: {', '.join(sorted(map(_label, ib))) or 'none'})",
            hint="compare runs of the same paths, devices, precisions and grid",
        )
    rows = []
    for k in common:
        metrics: dict[str, tuple[float, float, float]] = {}
        for m in METRICS:
            sa, sb = ia[k]["summary"].get(m), ib[k]["summary"].get(m)
            if sa and sb and sa["mean"] > 0:
                metrics[m] = (sa["mean"], sb["mean"], sb["mean"] / sa["mean"])
        rows.append((k, metrics))
    machine_keys = ("os", "os_release", "cpu")
    differs = any(a["machine"].get(x) != b["machine"].get(x) for x in machine_keys)
    return Comparison(rows, sorted(_label(k) for k in ia if k not in ib), sorted(_label(k) for k in ib if k not in ia),
                      differs)


def format_comparison(cmp: Comparison, names: tuple[str, str]) -> str:
    table = [["target", "PxG", "metric", names[0], names[1], "B/A", "verdict"]]
    for k, metrics in cmp.rows:
        for m, (va, vb, ratio) in metrics.items():
            _label_m, unit, higher = METRICS[m]
            better = ratio > 1.0 if higher else ratio < 1.0
            verdict = "same" if abs(ratio - 1.0) < 0.02 else ("B better" if better else "B worse")
            table.append([f"{k[0]}/{k[1]}/{k[2]}/{k[3]}", f"{k[4]}x{k[5]}", f"{m} ({unit})", _num(va),
                          _num(vb), f"{ratio:.3f}", verdict])
    lines = [f"A = {names[0]}", f"B = {names[1]}", "ratios are B / A of the means over measured runs", "",
             text_table(table)]
    for label, only in (("only in A", cmp.only_a), ("only in B", cmp.only_b)):
        if only:
            lines.append(f"{label} (not compared): {', '.join(only)}")
    if cmp.machine_differs:
        lines.append("note: A and B were measured on different machines or operating systems")
    return "\n".join(lines)


def _num(v: float) -> str:
    return f"{v:,.1f}" if abs(v) >= 1000 else f"{v:.4g}"


def compare_files(a: Path, b: Path) -> str:
    da, db = load(a), load(b)
    names = (str(a), str(b))
    return format_comparison(compare_docs(da, db, names), names)
