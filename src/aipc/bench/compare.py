"""``aipc bench compare A.json B.json``: per target, grid cell and metric, B against A on the per-run samples.

A difference is reported ("B better" / "B worse") only when it is significant (Mann-Whitney U on the measured runs,
and a bootstrap interval of the median ratio that excludes 1) and beyond that metric's threshold, which is calibrated
per metric from A/A runs (runs of the same code: docs/bench.md, "Threshold"); anything else is "same (±x %)", x being
how far the interval reaches. :func:`calibrate` measures the A/A noise of a set of files, per metric.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ..errors import AipcError, UsageError
from .metrics import METRICS
from .report import text_table
from .schema import load as load_file
from .stats import ALPHA, Difference, difference

Key = tuple[str, str, str, str, int, int]  # path, api, device, precision, prompt, gen

# per-run metrics compared; peak RSS where the runs carry it (Linux: VmHWM reset before each run; Windows: the
# process's peak so far, which cannot be reset: still each side's high-water mark)
COMPARED = ("ttft_ms", "tpot_ms", "decode_tps", "e2e_tps", "peak_rss_mib")

# The default thresholds, one per metric (a fraction off 1, log-symmetric: 1.25 = ±125 %). Calibrated by
# `aipc bench calibrate tests/data/bench-aa/run*.json` (six runs of the same code on the shared 2-core VM aipc is
# developed on, load average 6-9): per metric, the largest significant A/A median ratio plus 25 %, rounded up to the
# next 5 % (at least 5 %). Largest A/A differences there: TTFT 99.6 %, TPOT and decode tok/s 723.5 % (sub-millisecond
# steps of the tiny model whose 2 threads wait for each other on a loaded machine), e2e tok/s 417.9 %, peak RSS 0.6 %.
# tests/test_bench_compare.py recomputes them from those files: a stale value fails it. On another machine calibrate
# your own (docs/bench.md, "Threshold").
THRESHOLDS: Mapping[str, float] = MappingProxyType({
    "ttft_ms": 1.25,
    "tpot_ms": 9.05,
    "decode_tps": 9.05,
    "e2e_tps": 5.25,
    "peak_rss_mib": 0.05,
})
MARGIN = 1.25
STEP = 0.05  # suggestions are rounded up to a multiple of this, and are at least this
BUSY_LOAD_PER_CORE = 1.0  # a file recorded with more runnable tasks per CPU than this: compare notes it
_PROMPTS = {"same": "one prompt repeated", "distinct": "a new prompt every run"}
_USAGE = "pass one percentage for every metric (e.g. 25) and/or METRIC=PCT overrides (e.g. ttft_ms=30,peak_rss_mib=5)"


def parse_thresholds(text: str, base: Mapping[str, float] = THRESHOLDS) -> dict[str, float]:
    """``--threshold``: a percentage for every metric (``25``), ``metric=percent`` overrides of ``base``
    (``ttft_ms=30,peak_rss_mib=5``), or both (``50,ttft_ms=30``: the number first sets all, the overrides win); the
    result is fractions per metric (25 -> 0.25)."""
    out = dict(base)
    overrides: dict[str, float] = {}
    bare = 0
    parts = [x.strip() for x in text.split(",")]
    if not any(parts):
        raise UsageError(f"threshold {text!r} is empty", hint=_USAGE)
    for part in parts:
        name, eq, value = part.partition("=")
        name, value = (name.strip(), value.strip()) if eq else ("", name.strip())
        if eq and name not in COMPARED:
            raise UsageError(f"threshold {part!r}: {name or '(nothing)'!r} is not a compared metric",
                             hint=f"use one of {', '.join(COMPARED)}")
        if not eq:
            bare += 1
        try:
            pct = float(value.rstrip("%").strip())
        except ValueError:
            raise UsageError(f"threshold {part!r} is not a percentage" if part else f"threshold {text!r} has an "
                             "empty item", hint=_USAGE) from None
        if not math.isfinite(pct) or pct < 0:
            raise UsageError(f"threshold {part!r} is not a percentage >= 0", hint=_USAGE)
        if name:
            if name in overrides:
                raise UsageError(f"threshold {text!r} sets {name} twice", hint="give each metric once")
            overrides[name] = pct / 100.0
        else:
            out = dict.fromkeys(COMPARED, pct / 100.0)
    if bare > 1:
        raise UsageError(f"threshold {text!r} has {bare} percentages for every metric", hint=_USAGE)
    return out | overrides


def thresholds(value: float | Mapping[str, float]) -> dict[str, float]:
    """Per-metric thresholds from one fraction for all metrics or a (partial) table over the defaults."""
    if isinstance(value, (int, float)):
        return dict.fromkeys(COMPARED, float(value))
    return {**THRESHOLDS, **value}


def show_thresholds(table: Mapping[str, float]) -> str:
    """``ttft_ms ±125 %, tpot_ms ±905 %, ...`` in COMPARED order."""
    return ", ".join(f"{m} ±{table[m] * 100:.0f} %" for m in COMPARED if m in table)


@dataclass(frozen=True)
class Comparison:
    rows: list[tuple[Key, dict[str, Difference]]]
    only_a: list[str]
    only_b: list[str]
    machine_differs: bool
    notes: list[str]
    thresholds: dict[str, float]
    loads: tuple[str, str] = ("", "")


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


def samples(cell: dict[str, Any], metric: str) -> list[float]:
    return [float(v) for r in cell["runs"] if isinstance(v := r.get(metric), (int, float)) and math.isfinite(v)]


def compare_docs(a: dict[str, Any], b: dict[str, Any], names: tuple[str, str] = ("A", "B"),
                 threshold: float | Mapping[str, float] = THRESHOLDS) -> Comparison:
    """B against A; ``threshold``: one fraction for every metric, or per metric (missing ones: the defaults)."""
    table = thresholds(threshold)
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
    notes: list[str] = []
    for k in common:
        metrics: dict[str, Difference] = {}
        for m in COMPARED:
            sa, sb = samples(ia[k], m), samples(ib[k], m)
            if sa and sb and min(sa) > 0:
                metrics[m] = difference(sa, sb, higher_is_better=METRICS[m][2], threshold=table[m])
        rows.append((k, metrics))
        sent = [_PROMPTS.get(str(x.get("prompts")), str(x.get("prompts"))) for x in (ia[k], ib[k])]
        if sent[0] != sent[1]:
            notes.append(f"{_label(k)}: TTFT not comparable: A sent {sent[0]}, B {sent[1]} (a repeated prompt can "
                         "skip its prefill)")
    for side, doc in zip("AB", (a, b), strict=True):
        if (busy := load_per_core(doc)) is not None and busy > BUSY_LOAD_PER_CORE:
            notes.append(f"{side} was recorded on a busy machine ({busy:.1f} runnable tasks per CPU, above "
                         f"{BUSY_LOAD_PER_CORE:g}): its timings carry other jobs' noise (still judged at the "
                         "thresholds)")
    machine_keys = ("os", "os_release", "cpu")
    differs = any(a["machine"].get(x) != b["machine"].get(x) for x in machine_keys)
    return Comparison(rows, sorted(_label(k) for k in ia if k not in ib), sorted(_label(k) for k in ib if k not in ia),
                      differs, notes, table, (load(a), load(b)))


def load(doc: dict[str, Any]) -> str:
    """The machine's load during a run ("5.6 -> 4.1 on 2 CPUs"), "" when not recorded."""
    start, end = doc["machine"].get("load_avg"), doc.get("harness", {}).get("load_avg_end")
    if start is None and end is None:
        return ""
    span = " -> ".join(f"{v:g}" for v in (start, end) if isinstance(v, (int, float)))
    return f"load average {span} on {doc['machine'].get('cpu_count', '?')} CPUs"


def load_per_core(doc: dict[str, Any]) -> float | None:
    """The higher of the load averages at the start and the end of a run, per CPU; None when not recorded."""
    loads = [v for v in (doc["machine"].get("load_avg"), doc.get("harness", {}).get("load_avg_end"))
             if isinstance(v, (int, float)) and math.isfinite(v)]
    cpus = doc["machine"].get("cpu_count")
    if not loads or not isinstance(cpus, int) or cpus < 1:
        return None
    return max(loads) / cpus


def format_comparison(cmp: Comparison, names: tuple[str, str]) -> str:
    table = [["target", "PxG", "metric", "A median", "B median", "B/A", f"{int((1 - ALPHA) * 100)} % interval", "p",
              "verdict"]]
    for k, metrics in cmp.rows:
        for m, d in metrics.items():
            unit = METRICS[m][1]
            table.append([f"{k[0]}/{k[1]}/{k[2]}/{k[3]}", f"{k[4]}x{k[5]}", f"{m} ({unit})",
                          _num(d.median_a), _num(d.median_b), f"{d.ratio:.3f}", f"{d.low:.3f}-{d.high:.3f}",
                          f"{d.p_value:.3f}", d.label()])
    lines = [f"A = {names[0]}", f"B = {names[1]}",
             f"B/A: ratio of the medians over the measured runs; verdict only when Mann-Whitney p < {ALPHA:g}, the "
             "bootstrap interval excludes 1 and the ratio is beyond the metric's threshold (else same, ±: how far "
             "the interval reaches)",
             f"thresholds (--threshold; default: calibrated from A/A runs): {show_thresholds(cmp.thresholds)}", "",
             text_table(table)]
    for label, only in (("only in A", cmp.only_a), ("only in B", cmp.only_b)):
        if only:
            lines.append(f"{label} (not compared): {', '.join(only)}")
    lines += [f"note: {n}" for n in cmp.notes]
    if any(cmp.loads):
        lines.append(f"machine load: A {cmp.loads[0] or 'not recorded'}; B {cmp.loads[1] or 'not recorded'} "
                     "(other work on the cores is the main noise between runs)")
    if cmp.machine_differs:
        lines.append("note: A and B were measured on different machines or operating systems")
    return "\n".join(lines)


def _num(v: float) -> str:
    return f"{v:,.1f}" if abs(v) >= 1000 else f"{v:.4g}"


def compare_files(a: Path, b: Path, threshold: float | Mapping[str, float] = THRESHOLDS) -> str:
    da, db = load_file(a), load_file(b)
    names = (str(a), str(b))
    return format_comparison(compare_docs(da, db, names, threshold), names)


def suggest(largest: float) -> float:
    """A threshold for a metric whose largest significant A/A difference is ``largest``: plus a quarter (a margin
    for pairs not yet seen), rounded up to the next 5 %, at least 5 %."""
    return max(STEP, math.ceil(round(MARGIN * largest / STEP, 9)) * STEP)


@dataclass(frozen=True)
class Calibration:
    """The A/A noise of runs of the same code: per metric, the largest significant median ratio between two of them
    (a fraction off 1, log-symmetric: the smallest threshold that gives these files no verdict), and the verdicts
    the current thresholds give."""

    largest: dict[str, float]  # metric -> largest significant |ratio - 1| (log-symmetric) over all pairs and cells
    verdicts: list[str]  # "better"/"worse" verdicts at the given thresholds (none expected for A/A)
    pairs: int

    def suggested(self) -> dict[str, float]:
        """Per metric: :func:`suggest` of its largest A/A difference."""
        return {m: round(suggest(v), 6) for m, v in self.largest.items()}


def calibrate(docs: Sequence[dict[str, Any]], names: Sequence[str],
              threshold: float | Mapping[str, float] = THRESHOLDS) -> Calibration:
    if len(docs) < 2:
        raise AipcError(f"calibration needs at least two bench.json files of the same code, got {len(docs)}")
    largest: dict[str, float] = {}
    verdicts: list[str] = []
    pairs = 0
    for (na, a), (nb, b) in itertools.combinations(zip(names, docs, strict=True), 2):
        pairs += 1
        for k, metrics in compare_docs(a, b, (na, nb), threshold).rows:
            for m, d in metrics.items():
                largest.setdefault(m, 0.0)
                if d.significant:
                    largest[m] = max(largest[m], math.expm1(abs(math.log(d.ratio))))
                if d.verdict != "same":
                    verdicts.append(f"{na} vs {nb}: {_label(k)} {m}: {d.label()}")
    return Calibration({m: largest[m] for m in COMPARED if m in largest}, verdicts, pairs)


def calibrate_files(files: Sequence[Path], threshold: float | Mapping[str, float] = THRESHOLDS) -> str:
    docs = [load_file(f) for f in files]
    cal = calibrate(docs, [str(f) for f in files], threshold)
    now = thresholds(threshold)
    suggested = cal.suggested()
    table = [["metric", "largest A/A difference", "suggested threshold", "threshold now"]]
    table += [[m, f"{v * 100:.1f} %", f"±{suggested[m] * 100:.0f} %", f"±{now[m] * 100:.0f} %"]
              for m, v in cal.largest.items()]
    lines = [f"A/A calibration over {len(files)} files ({cal.pairs} pairs): per metric, the largest significant "
             f"median ratio off 1 and the suggested threshold (that + {(MARGIN - 1) * 100:.0f} %, rounded up to "
             f"{STEP * 100:.0f} %, at least {STEP * 100:.0f} %)", "", text_table(table), "",
             "pass the suggestion as --threshold or AIPC_BENCH_THRESHOLD: "
             + ",".join(f"{m}={suggested[m] * 100:.0f}" for m in cal.largest)]
    busy = [f"{f}: {per:.1f} per CPU" for f, d in zip(files, docs, strict=True)
            if (per := load_per_core(d)) is not None and per > BUSY_LOAD_PER_CORE]
    if busy:
        lines.append(f"note: recorded on a busy machine (load average per CPU above {BUSY_LOAD_PER_CORE:g}): "
                     f"{'; '.join(busy)}; these thresholds cover that noise, a quiet machine needs smaller ones")
    lines += [f"verdict between runs of the same code (should be none): {v}" for v in cal.verdicts] or \
        ["no better/worse verdict between these runs at the current thresholds"]
    return "\n".join(lines)
