"""Doctor output: the per-goal answer, the on-screen table and the JSON report."""

from __future__ import annotations

import textwrap
from typing import Any

from .checks import ALL_GOALS, GOALS, CheckResult, exit_code, goal_verdicts, summary
from .facts import Facts, get

MARK = {"pass": "pass", "warn": "WARN", "fail": "FAIL", "skip": "skip"}


def format_goals(results: list[CheckResult], selected: tuple[str, ...] = ALL_GOALS) -> str:
    """One line per goal, first in the output: ready or not, and the checks that decide it. Goals outside
    ``selected`` (``--for``) are shown but marked as not deciding the exit code."""
    width = max(len(g) for g in GOALS)
    lines = ["goals" + ("" if selected == ALL_GOALS else f" (--for {','.join(selected)} decides the exit code)")]
    for v in goal_verdicts(results):
        state = "ready" if v.ready else "NOT READY"
        detail = (f": fix {', '.join(v.failed)}" if v.failed else "") + \
            (f" ({len(v.warned)} warning{'s' if len(v.warned) != 1 else ''}: {', '.join(v.warned)})"
             if v.warned else "")
        note = "" if v.goal in selected else "  [not asked for]"
        lines.append(f"  {v.goal:<{width}}  {state}{detail}{note}")
    return "\n".join(lines)


def format_table(results: list[CheckResult], width: int = 120) -> str:
    """One row per check (category, check, status, found); the fix follows a non-passing row, indented."""
    cat_w = max(len("category"), *(len(r.category) for r in results))
    name_w = max(len("check"), *(len(r.name) for r in results))
    head = f"{'category':<{cat_w}}  {'check':<{name_w}}  status  found / fix"
    lines = [head, "-" * min(width, max(len(head), 80))]
    indent = " " * (cat_w + name_w + 12)
    avail = max(40, width - len(indent))
    for r in results:
        found = textwrap.wrap(r.found, avail) or [""]
        lines.append(f"{r.category:<{cat_w}}  {r.name:<{name_w}}  {MARK[r.status]:<6}  {found[0]}")
        lines.extend(indent + more for more in found[1:])
        if r.fix and r.status != "pass":
            fix = textwrap.wrap("fix: " + r.fix, avail, break_long_words=False, break_on_hyphens=False)
            lines.extend(indent + part for part in fix)
    return "\n".join(lines)


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
