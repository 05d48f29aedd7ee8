"""Renderings of a bench document: summary CSV, per-run CSV, Markdown, and the console table."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

from ..tables import format_table
from .metrics import AGREEMENT_TOLERANCE, METRICS

STATS = ("mean", "median", "q1", "q3", "stdev", "p90")
ID_COLUMNS = ("path", "api", "device", "device_used", "precision", "status", "prompt_tokens", "gen_tokens")


def _cells(doc: dict[str, Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any] | None]]:
    for t in doc["targets"]:
        if t["cells"]:
            for c in t["cells"]:
                yield t, c
        else:
            yield t, None


def summary_csv(doc: dict[str, Any]) -> str:
    """One row per target x grid cell (non-passing targets: one row with their reason)."""
    cols = [*ID_COLUMNS, "prompt_tokens_actual", "load_s"]
    cols += [f"{m}_{s}" for m in METRICS for s in STATS]
    cols += ["reference", "reference_decode_tps", "agreement_ratio", "peak_rss_mib", "driver_version", "reason"]
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=cols, lineterminator="\n")
    w.writeheader()
    for t, c in _cells(doc):
        row: dict[str, Any] = {k: t.get(k) for k in ("path", "api", "device", "device_used", "precision", "status")}
        row.update(load_s=_num(t.get("load_s")), peak_rss_mib=_num(t["memory"].get("peak_rss_mib")),
                   driver_version=t.get("driver_version") or "", reason=t.get("reason", ""))
        if c is not None:
            row.update(prompt_tokens=c["prompt_tokens"], gen_tokens=c["gen_tokens"],
                       prompt_tokens_actual=c["prompt_tokens_actual"])
            for m in METRICS:
                s = c["summary"].get(m)
                for st in STATS:
                    row[f"{m}_{st}"] = _num(s.get(st)) if s else ""
            a = c.get("agreement")
            if a:
                row.update(reference=a["reference"], reference_decode_tps=_num(a["reference_decode_tps"]),
                           agreement_ratio=_num(a["ratio"]))
        w.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return out.getvalue()


def runs_csv(doc: dict[str, Any]) -> str:
    """One row per measured run (warm-ups are not in the document's runs)."""
    cols = ["path", "api", "device", "precision", "prompt_tokens", "gen_tokens", "run", *METRICS, "n_tokens"]
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=cols, lineterminator="\n")
    w.writeheader()
    for t, c in _cells(doc):
        if c is None:
            continue
        for i, r in enumerate(c["runs"]):
            row = {k: t[k] for k in ("path", "api", "device", "precision")}
            row.update(prompt_tokens=c["prompt_tokens"], gen_tokens=c["gen_tokens"], run=i + 1)
            row.update({m: "" if r.get(m) is None else _num(r[m]) for m in METRICS})
            row["n_tokens"] = r["n_tokens"]
            w.writerow(row)
    return out.getvalue()


def _num(v: Any) -> Any:
    if isinstance(v, float):
        return f"{v:.6g}"
    return "" if v is None else v


def _fmt(v: float | None, digits: int = 2) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def agreement_lines(doc: dict[str, Any]) -> list[str]:
    """The 5 % agreement lines: aipc's decode tokens/s against each runtime's own figure for the same runs."""
    lines = []
    for t, c in _cells(doc):
        a = c.get("agreement") if c else None
        if not a or c is None:
            continue
        verdict = "OK" if abs(a["ratio"] - 1) <= AGREEMENT_TOLERANCE else "OUTSIDE"
        # the per-token time aipc's gaps carry beyond the runtime's own figure (loop, callback, clock reads)
        extra_us = (1.0 / a["aipc_decode_tps"] - 1.0 / a["reference_decode_tps"]) * 1e6
        lines.append(
            f"{t['path']}/{t['api']}/{t['device']} {c['prompt_tokens']}x{c['gen_tokens']}: aipc "
            f"{a['aipc_decode_tps']:.1f} tok/s vs {a['reference']} {a['reference_decode_tps']:.1f} tok/s, "
            f"ratio {a['ratio']:.3f} ({verdict}, tolerance ±{AGREEMENT_TOLERANCE * 100:.0f} %; "
            f"{extra_us:+.2f} us/token)"
            + (f"; its TTFT {ex['ttft_ms']:.3f} ms vs aipc {c['summary']['ttft_ms']['mean']:.3f} ms (mean)"
               if "ttft_ms" in (ex := a.get("reference_extra") or {}) else ""))
    return lines


def prefill_lines(doc: dict[str, Any]) -> list[str]:
    """Per passing target how its runs' prompts were made (the worker's note) and any prefix-cache suspicion."""
    lines = []
    for t in doc["targets"]:
        if t["status"] != "pass":
            continue
        name = f"{t['path']}/{t['api']}/{t['device']}"
        lines.append(f"{name}: {t.get('prefill') or 'not recorded (an older bench repeated one prompt every run)'}")
        for c in t["cells"]:
            if c.get("prefill_check"):
                lines.append(f"{name} {c['prompt_tokens']}x{c['gen_tokens']}: {c['prefill_check']}")
    return lines


def overhead_lines(doc: dict[str, Any]) -> list[str]:
    lines = []
    h = doc.get("harness", {})
    spawn = h.get("spawn_ms") or {}
    for venv, s in sorted(spawn.items()):
        lines.append(f"worker spawn + JSON exchange, no-op worker in venv {venv}: median {s['median']:.1f} ms "
                     f"(n={s['n']}), once per target, not inside any measured run")
    for t in doc["targets"]:
        o = t.get("overhead") or {}
        parts = []
        out = o.get("outside_generation_ms")
        if out:
            parts.append(f"outside generation {out['median']:.3f} ms/run")
        if o.get("callback_us_per_token") is not None:
            share = o.get("callback_share_of_tpot")
            parts.append(f"callback {o['callback_us_per_token']:.2f} us/token"
                         + (f" ({share * 100:.2f} % of TPOT)" if share is not None else ""))
        if parts:
            lines.append(f"{t['path']}/{t['api']}/{t['device']}: " + ", ".join(parts))
    if h.get("wall_s") is not None and h.get("worker_s") is not None:
        lines.append(f"bench wall time {h['wall_s']:.1f} s, of which inside workers {h['worker_s']:.1f} s "
                     f"(venvs/exports/orchestration {h['wall_s'] - h['worker_s']:.1f} s)")
    return lines


def table_rows(doc: dict[str, Any]) -> list[list[str]]:
    rows = [["path", "api", "device", "prec", "status", "PxG", "load s", "TTFT ms", "TPOT ms", "decode tok/s",
             "e2e tok/s", "RSS MiB", "ref ratio", "reason"]]
    for t, c in _cells(doc):
        row = [t["path"], t["api"], t.get("device_used") or t["device"], t["precision"], t["status"]]
        if c is None:
            row += ["-"] * 8 + [t["reason"]]
        else:
            s = c["summary"]

            def med(key: str, digits: int = 2, s: dict[str, Any] = s) -> str:
                return _fmt(s[key]["median"], digits) if key in s else "-"

            dec = s["decode_tps"]
            row += [f"{c['prompt_tokens']}x{c['gen_tokens']}", _fmt(t.get("load_s"), 2), med("ttft_ms", 3),
                    med("tpot_ms", 3), f"{dec['median']:.1f} ({dec['q1']:.0f}-{dec['q3']:.0f})", med("e2e_tps", 1),
                    _fmt(t["memory"].get("peak_rss_mib"), 0),
                    _fmt(c["agreement"]["ratio"], 3) if c.get("agreement") else "-", t["reason"]]
        rows.append(row)
    return rows


def text_table(rows: list[list[str]]) -> str:
    """``rows[0]`` is the header (no rule under it): :func:`aipc.tables.format_table`."""
    return format_table(rows[0], rows[1:], rule=False)


def markdown(doc: dict[str, Any], charts: list[str] | None = None, chart_note: str = "") -> str:
    m = doc["machine"]
    s = doc["settings"]
    out = ["# aipc bench", ""]
    out.append(f"- machine: {m.get('os', '?')} {m.get('os_release', '')}, CPU {m.get('cpu', '?')} "
               f"({m.get('cpu_count', '?')} logical), RAM {m.get('memory_gib', '?')} GiB, Python {m.get('python')}")
    if m.get("power"):
        out.append(f"- power: {m['power']}")
    out.append(f"- model: {doc['model'].get('path')} ({doc['model'].get('kind')})")
    grid = ", ".join(f"{p}x{g}" for p, g in s["grid"])
    out.append(f"- method: {s['warmup']} warm-up run(s) excluded, {s['repetitions']} measured runs per cell, grid "
               f"{grid} (prompt x generated tokens), greedy, seed {s['seed']}")
    out += ["", "Medians of the measured runs; decode tok/s also shows the interquartile range (q1-q3), as the charts "
            "do for every metric.", ""]
    rows = table_rows(doc)
    out.append("| " + " | ".join(rows[0]) + " |")
    out.append("|" + "---|" * len(rows[0]))
    for r in rows[1:]:
        out.append("| " + " | ".join(cell.replace("|", "\\|") for cell in r) + " |")
    out += ["", "## Prefill (how each run's TTFT includes its own prefill)", ""]
    out += [f"- {line}" for line in prefill_lines(doc)] or ["- no target passed"]
    agree = agreement_lines(doc)
    out += ["", "## Agreement with the runtimes' own benchmarks", ""]
    out += [f"- {line}" for line in agree] or ["- no target with a reference measurement ran"]
    out += ["", "## Harness overhead", ""]
    out += [f"- {line}" for line in overhead_lines(doc)] or ["- not measured"]
    out += ["", "## Versions and drivers", ""]
    for t in doc["targets"]:
        if not t["versions"] and not t.get("device_name"):
            continue
        vers = ", ".join(f"{k} {v}" for k, v in sorted(t["versions"].items())) or "-"
        out.append(f"- {t['path']}/{t['api']}/{t['device']}: {vers}; device {t.get('device_name') or '-'}, "
                   f"driver {t.get('driver_version') or '-'}; memory note: {t['memory']['note'] or '-'}")
    out += ["", "## Charts", ""]
    if charts:
        out += [f"![{c}]({c})" for c in charts]
    out.append(chart_note or "")
    return "\n".join(out).rstrip() + "\n"
