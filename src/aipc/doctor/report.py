"""Doctor output: the on-screen table and the JSON report."""

from __future__ import annotations

import textwrap
from typing import Any

from .checks import CheckResult, exit_code, summary
from .facts import Facts, get

MARK = {"pass": "pass", "warn": "WARN", "fail": "FAIL", "skip": "skip"}


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
    if isinstance(collect_seconds, (int, float)):
        line += f" (gathered in {collect_seconds:.2f} s)"
    return line


def json_report(results: list[CheckResult], facts: Facts, seconds: float, source: str) -> dict[str, Any]:
    return {
        "schema": 1,
        "facts_source": source,
        "platform": get(facts, "host.platform", str),
        "collected_at": facts.get("collected_at"),
        "seconds": round(seconds, 3),
        "collect_seconds": facts.get("collect_seconds"),
        "summary": summary(results),
        "exit_code": exit_code(results),
        "checks": [r.to_json() for r in results],
    }
