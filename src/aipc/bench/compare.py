"""``aipc bench compare A.json B.json``: per target, grid cell and metric, B against A on the per-run samples.

A difference is reported ("B better" / "B worse") only when it is significant (Mann-Whitney U on the measured runs,
and a bootstrap interval of the median ratio that excludes 1) and beyond the threshold, which is calibrated from
A/A runs (two runs of the same code: docs/bench.md, "Compare two runs"); anything else is "same (±x %)", x being how
far the interval reaches. :func:`calibrate` measures the A/A noise of a set of files.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import AipcError
from .metrics import METRICS
from .report import text_table
from .schema import load as load_file
from .stats import ALPHA, Difference, difference

Key = tuple[str, str, str, str, int, int]  # path, api, device, precision, prompt, gen

# The default threshold, calibrated by `aipc bench calibrate tests/data/bench-aa/run*.json` (six runs of the same
# code on the shared 2-core VM aipc is developed on, load average 6-9): the largest significant A/A median ratio
# (7.2x, decode tok/s) plus 25 %, i.e. 10.05x. On a quiet machine calibrate your own (docs/bench.md, "Threshold");
# tests/test_bench_compare.py keeps this value above the recorded A/A noise.
THRESHOLD = 9.05
MARGIN = 1.25
_PROMPTS = {"same": "one prompt repeated", "distinct": "a new prompt every run"}
COMPARED = ("ttft_ms", "tpot_ms", "decode_tps", "e2e_tps")  # per-run metrics (peak RSS is per target on Windows)


@dataclass(frozen=True)
class Comparison:
    rows: list[tuple[Key, dict[str, Difference]]]
    only_a: list[str]
    only_b: list[str]
    machine_differs: bool
    notes: list[str]
    threshold: float
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
                 threshold: float = THRESHOLD) -> Comparison:
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
                metrics[m] = difference(sa, sb, higher_is_better=METRICS[m][2], threshold=threshold)
        rows.append((k, metrics))
        sent = [_PROMPTS.get(str(x.get("prompts")), str(x.get("prompts"))) for x in (ia[k], ib[k])]
        if sent[0] != sent[1]:
            notes.append(f"{_label(k)}: TTFT not comparable: A sent {sent[0]}, B {sent[1]} (a repeated prompt can "
                         "skip its prefill)")
    machine_keys = ("os", "os_release", "cpu")
    differs = any(a["machine"].get(x) != b["machine"].get(x) for x in machine_keys)
    return Comparison(rows, sorted(_label(k) for k in ia if k not in ib), sorted(_label(k) for k in ib if k not in ia),
                      differs, notes, threshold, (load(a), load(b)))


def load(doc: dict[str, Any]) -> str:
    """The machine's load during a run ("5.6 -> 4.1 on 2 CPUs"), "" when not recorded."""
    start, end = doc["machine"].get("load_avg"), doc.get("harness", {}).get("load_avg_end")
    if start is None and end is None:
        return ""
    span = " -> ".join(f"{v:g}" for v in (start, end) if isinstance(v, (int, float)))
    return f"load average {span} on {doc['machine'].get('cpu_count', '?')} CPUs"


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
             f"bootstrap interval excludes 1 and the ratio is beyond ±{cmp.threshold * 100:.0f} % (else same, ±: "
             "how far the interval reaches)", "", text_table(table)]
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


def compare_files(a: Path, b: Path, threshold: float = THRESHOLD) -> str:
    da, db = load_file(a), load_file(b)
    names = (str(a), str(b))
    return format_comparison(compare_docs(da, db, names, threshold), names)


@dataclass(frozen=True)
class Calibration:
    """The A/A noise of runs of the same code: per metric, the largest significant median ratio between two of them
    (a fraction off 1, log-symmetric: the smallest threshold that gives these files no verdict), and the verdicts
    the current threshold gives."""

    largest: dict[str, float]  # metric -> largest significant |ratio - 1| (log-symmetric) over all pairs and cells
    verdicts: list[str]  # "better"/"worse" verdicts at the given threshold (none expected for A/A)
    pairs: int

    def suggested(self) -> float:
        """The largest A/A difference of any metric plus a quarter (a margin for pairs not yet seen), rounded up to
        the next 5 %."""
        worst = max(self.largest.values(), default=0.0)
        return math.ceil(round(MARGIN * worst * 20.0, 9)) / 20.0


def calibrate(docs: Sequence[dict[str, Any]], names: Sequence[str], threshold: float = THRESHOLD) -> Calibration:
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
    return Calibration(largest, verdicts, pairs)


def calibrate_files(files: Sequence[Path], threshold: float = THRESHOLD) -> str:
    docs = [load_file(f) for f in files]
    cal = calibrate(docs, [str(f) for f in files], threshold)
    lines = [f"A/A calibration over {len(files)} files ({cal.pairs} pairs), threshold now ±{threshold * 100:.0f} %:"]
    lines += [f"  {m}: largest significant median ratio off 1 by {v * 100:.1f} %"
              for m, v in sorted(cal.largest.items())]
    lines.append(f"suggested threshold (the largest + {(MARGIN - 1) * 100:.0f} %, rounded up to 5 %): "
                 f"±{cal.suggested() * 100:.0f} % (pass it as --threshold or AIPC_BENCH_THRESHOLD)")
    lines += [f"verdict between runs of the same code (should be none): {v}" for v in cal.verdicts] or \
        ["no better/worse verdict between these runs at the current threshold"]
    return "\n".join(lines)
