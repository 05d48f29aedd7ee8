"""verify's outputs: the table, ``verify.json``, JUnit XML, and the exit-code rule."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .. import tables
from ..errors import ExitCode
from ..fsutil import atomic_write_json, atomic_write_text

COLUMNS = ("path", "api", "device", "precision", "status", "tokens", "seconds", "reason")


@dataclass
class Row:
    """One verified combination (path, API, precision) and its outcome."""

    path: str
    api: str
    precision: str
    status: str = "skip"
    device: str = ""
    n_tokens: int = 0
    tokens: list[int] = field(default_factory=list)
    seconds: float = 0.0  # wall time of the smoke worker (subprocess start to exit)
    reason: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.path} {self.api} {self.precision}"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def exit_code(rows: Sequence[Row]) -> int:
    """Non-zero if and only if a row failed (a skip is neither a pass nor a failure)."""
    return ExitCode.FAILED if any(r.status == "fail" for r in rows) else ExitCode.OK


def summary(rows: Sequence[Row]) -> dict[str, int]:
    return {s: sum(1 for r in rows if r.status == s) for s in ("pass", "fail", "skip")}


def format_table(rows: Sequence[Row], *, width: int = 100) -> str:
    cells = []
    for r in rows:
        reason = r.reason if len(r.reason) <= width else r.reason[: width - 1] + "…"
        cells.append([r.path, r.api, r.device or "-", r.precision, r.status, str(r.n_tokens), f"{r.seconds:.2f}",
                      reason])
    lines = tables.format_table(COLUMNS, cells).splitlines()
    s = summary(rows)
    lines.append(f"{s['pass']} passed, {s['fail']} failed, {s['skip']} skipped")
    return "\n".join(lines)


def write_json(path: Path, rows: Sequence[Row], meta: dict[str, Any]) -> None:
    atomic_write_json(path, {
        "schema": 1,
        **meta,
        "summary": summary(rows),
        "exit_code": exit_code(rows),
        "results": [r.to_json() for r in rows],
    })


def junit_xml(rows: Sequence[Row], *, suite: str = "aipc.verify", seconds: float | None = None) -> str:
    s = summary(rows)
    root = ET.Element("testsuites")
    ts = ET.SubElement(root, "testsuite", {
        "name": suite, "tests": str(len(rows)), "failures": str(s["fail"]), "errors": "0", "skipped": str(s["skip"]),
        "time": f"{seconds if seconds is not None else sum(r.seconds for r in rows):.3f}",
    })
    for r in rows:
        case = ET.SubElement(ts, "testcase", {
            "classname": f"{suite}.{r.path}", "name": f"{r.api} {r.precision} {r.device or '-'}",
            "time": f"{r.seconds:.3f}",
        })
        if r.status == "fail":
            ET.SubElement(case, "failure", {"message": r.reason, "type": "fail"}).text = r.reason
        elif r.status == "skip":
            ET.SubElement(case, "skipped", {"message": r.reason})
        ET.SubElement(case, "system-out").text = f"tokens={r.tokens} reason={r.reason}"
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(path: Path, rows: Sequence[Row], seconds: float | None = None) -> None:
    atomic_write_text(path, junit_xml(rows, seconds=seconds))
