"""The one table printer for terminal output: left-aligned columns two spaces apart, a rule under the header."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence


def format_table(header: Sequence[str] | None, rows: Sequence[Sequence[object]], *, rule: bool = True,
                 wrap_last: int | None = None) -> str:
    """Cells are ``str()``-ed; trailing blanks are stripped from every line. ``header`` None: no header and no rule.
    ``wrap_last``: wrap the last column at that many characters, continuation lines aligned under it."""
    head = [str(c) for c in header] if header is not None else None
    body = [[str(c) for c in row] for row in rows]
    table = ([head] if head is not None else []) + body
    if not table:
        return ""
    ncols = max(len(r) for r in table)
    table = [r + [""] * (ncols - len(r)) for r in table]
    wrapped: list[list[list[str]]] = []
    for n, r in enumerate(table):
        cells = [[c] for c in r]
        if wrap_last is not None and (head is None or n > 0):
            cells[-1] = textwrap.wrap(r[-1], max(10, wrap_last), break_long_words=False, break_on_hyphens=False) or [""]
        wrapped.append(cells)
    widths = [max(len(line) for cells in wrapped for line in cells[i]) for i in range(ncols)]
    lines: list[str] = []
    for n, cells in enumerate(wrapped):
        first = "  ".join(cells[i][0].ljust(widths[i]) for i in range(ncols)).rstrip()
        lines.append(first)
        indent = sum(widths[:-1]) + 2 * (ncols - 1)
        lines.extend((" " * indent + more).rstrip() for more in cells[-1][1:])
        if n == 0 and head is not None and rule:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)
