"""Doctor output: the per-goal answer, the on-screen table and the JSON report."""

from __future__ import annotations

from typing import Any

from .. import tables
from .checks import ALL_GOALS, CheckResult, exit_code, goal_verdicts, summary
from .facts import Facts, get

MARK = {"pass": "pass", "warn": "WARN", "fail": "FAIL", "skip": "skip"}


def format_goals(results: list[CheckResult], selected: tuple[str, ...] = ALL_GOALS) -> str:
    """One line per goal, first in the output: ready or not, and the checks that decide it. Goals outside
    ``selected`` (``--for``) are shown but marked as not deciding the exit code."""
    lines = ["goals" + ("" if selected == ALL_GOALS else f" (--for {','.join(selected)} decides the exit code)")]
    rows = []
    for v in goal_verdicts(results):
        state = "ready" if v.ready else "NOT READY"
        detail = (f": fix {', '.join(v.failed)}" if v.failed else "") + \
            (f" ({len(v.warned)} warning{'s' if len(v.warned) != 1 else ''}: {', '.join(v.warned)})"
             if v.warned else "")
        note = "" if v.goal in selected else "  [not asked for]"
        rows.append([v.goal, f"{state}{detail}{note}"])
    lines.extend("  " + line for line in tables.format_table(None, rows).splitlines())
    return "\n".join(lines)


def format_table(results: list[CheckResult], width: int = 120) -> str:
    """One row per check (category, check, status, found); the fix follows a non-passing row, indented."""
    cat_w = max(len("category"), *(len(r.category) for r in results))
    name_w = max(len("check"), *(len(r.name) for r in results))
    avail = max(40, width - (cat_w + name_w + 12))
    rows: list[list[str]] = []
    for r in results:
        rows.append([r.category, r.name, MARK[r.status], r.found])
        if r.fix and r.status != "pass":
            rows.append(["", "", "", "fix: " + r.fix])
    return tables.format_table(["category", "check", "status", "found / fix"], rows, wrap_last=avail)


def summary_line(results: list[CheckResult], seconds: float, source: str, collect_seconds: Any = None) -> str:
    counts = summary(results)
    parts = ", ".join(f"{counts[s]} {s}" for s in ("pass", "warn", "fail", "skip"))
    line = f"aipc doctor: {len(results)} checks ({parts}) in {seconds:.2f} s; facts: {source}"
    if isinstance(collect_seconds, (int, float)) and not isinstance(collect_seconds, bool):
        line += f" (gathered in {collect_seconds:.2f} s)"
    return line


def json_report(results: list[CheckResult], facts: Facts, seconds: float, source: str,
                selected: tuple[str, ...] = ALL_GOALS) -> dict[str, Any]:
    return {
        "schema": 1,
        "facts_source": source,
        "platform": get(facts, "host.platform", str),
        "collected_at": facts.get("collected_at"),
        "seconds": round(seconds, 3),
        "collect_seconds": facts.get("collect_seconds"),
        "summary": summary(results),
        "goals": {v.goal: v.to_json() for v in goal_verdicts(results)},
        "for": list(selected),
        "exit_code": exit_code(results, selected),
        "checks": [r.to_json() for r in results],
    }
