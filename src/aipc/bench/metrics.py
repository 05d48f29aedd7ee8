"""Per-run metrics from the raw token timestamps a worker records, per-cell summaries, the agreement with each
runtime's own benchmark, and the harness overhead.

Definitions (docs/upstream.md#anchors §3; docs/bench.md, "Metrics", repeats them):
- TTFT: request start -> first token, tokenization and prefill included;
- TPOT: mean gap between consecutive tokens after the first, ``(t_last - t_first) / (n - 1)``;
- decode tokens/s: ``1 / TPOT``;
- end-to-end tokens/s: ``n / (time the generate call returned - request start)``.

Workers report times in seconds relative to the request start; only this module turns them into metrics, so
every path is measured by the same code.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import AipcError
from .stats import Summary, measured, summarize

AGREEMENT_TOLERANCE = 0.05
# prefill checks (docs/bench.md, "TTFT: every run does its own prefill")
PREFILL_MIN_RATIO = 1.2  # a real prefill of >= PREFILL_MIN_PROMPT tokens takes longer than 1.2 decode steps
PREFILL_MIN_PROMPT = 16
REPEAT_FACTOR = 2.0  # a repeated prompt's TTFT below half the fastest measured (distinct-prompt) one: a prompt cache

# metric key -> (label, unit, higher is better)
METRICS: dict[str, tuple[str, str, bool]] = {
    "ttft_ms": ("time to first token", "ms", False),
    "tpot_ms": ("time per output token", "ms", False),
    "decode_tps": ("decode tokens/s", "tok/s", True),
    "e2e_tps": ("end-to-end tokens/s", "tok/s", True),
    "peak_rss_mib": ("peak process memory (RSS)", "MiB", False),
}


@dataclass(frozen=True)
class RunMetrics:
    ttft_ms: float
    tpot_ms: float
    decode_tps: float
    e2e_tps: float
    peak_rss_mib: float | None
    n_tokens: int

    def get(self, key: str) -> float | None:
        value: float | None = getattr(self, key)
        return value


def run_metrics(raw: Mapping[str, Any]) -> RunMetrics:
    """Metrics of one run from a worker's raw record (``token_times`` and ``end`` in seconds since the request)."""
    times = [float(t) for t in raw.get("token_times", [])]
    n = len(times)
    if n < 2:
        raise AipcError(f"a run produced {n} token(s); at least 2 are needed for a time per output token",
                        hint="use a generation length >= 2")
    if any(not math.isfinite(t) or t < 0 for t in times) or any(b < a for a, b in itertools.pairwise(times)):
        raise AipcError(f"token timestamps are not a non-decreasing list of times since the request: {times[:5]}...")
    end = float(raw.get("end", times[-1]))
    end = max(end, times[-1])
    span = times[-1] - times[0]
    tpot = span / (n - 1)
    rss = raw.get("peak_rss_bytes")
    return RunMetrics(
        ttft_ms=times[0] * 1000.0,
        tpot_ms=tpot * 1000.0,
        decode_tps=(n - 1) / span if span > 0 else math.inf,
        e2e_tps=n / end if end > 0 else math.inf,
        peak_rss_mib=float(rss) / (1 << 20) if isinstance(rss, (int, float)) else None,
        n_tokens=n,
    )


@dataclass(frozen=True)
class Agreement:
    """aipc's decode tokens/s against a runtime's own figure for the same runs."""

    reference: str  # "openvino_genai.PerfMetrics" | "onnxruntime-genai benchmark_e2e"
    aipc_decode_tps: float
    reference_decode_tps: float
    # the reference's other figures for the same runs, where it reports them (means over the measured runs)
    reference_extra: dict[str, float] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        return self.aipc_decode_tps / self.reference_decode_tps

    @property
    def within(self) -> bool:
        return abs(self.ratio - 1.0) <= AGREEMENT_TOLERANCE

    def to_json(self) -> dict[str, Any]:
        return {"reference": self.reference, "aipc_decode_tps": self.aipc_decode_tps,
                "reference_decode_tps": self.reference_decode_tps, "ratio": self.ratio,
                "tolerance": AGREEMENT_TOLERANCE, "within_tolerance": self.within,
                "reference_extra": dict(self.reference_extra)}


@dataclass(frozen=True)
class CellResult:
    prompt_tokens: int
    gen_tokens: int
    prompt_tokens_actual: int
    runs: list[RunMetrics]  # measured runs only (warm-ups excluded)
    warmup_runs: int
    summary: dict[str, Summary]
    agreement: Agreement | None
    outside_ms: Summary | None
    outside_values: tuple[float, ...] = ()
    prompts: str = "distinct"  # "distinct": a new prompt every run; "same": one prompt repeated (older workers)
    repeat_ttft_ms: float | None = None  # TTFT of the last measured prompt sent again (not a measured run)
    prompts_sha256: str | None = None  # digest of the cell's prompt texts: equal across runtimes with one tokenizer

    @property
    def prefill_check(self) -> str | None:
        return prefill_suspicion(self.prompt_tokens_actual, self.prompts, [r.ttft_ms for r in self.runs],
                                 [r.tpot_ms for r in self.runs], self.repeat_ttft_ms)

    def to_json(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "gen_tokens": self.gen_tokens,
            "prompt_tokens_actual": self.prompt_tokens_actual,
            "prompts": self.prompts,
            "prompts_sha256": self.prompts_sha256,
            "repeat_ttft_ms": self.repeat_ttft_ms,
            "prefill_check": self.prefill_check,
            "warmup_runs": self.warmup_runs,
            "runs": [{k: getattr(r, k) for k in (*METRICS, "n_tokens")} for r in self.runs],
            "summary": {k: s.to_json() for k, s in self.summary.items()},
            "agreement": self.agreement.to_json() if self.agreement else None,
            "outside_generation_ms": self.outside_ms.to_json() if self.outside_ms else None,
        }


def cell_result(raw_cell: Mapping[str, Any], warmup: int) -> CellResult:
    """Summaries of one grid cell from the worker's raw runs (warm-ups listed first, excluded here)."""
    raw_runs = list(raw_cell.get("runs", []))
    kept = measured(raw_runs, warmup)
    runs = [run_metrics(r) for r in kept]
    gen = int(raw_cell["gen_tokens"])
    short = [r.n_tokens for r in runs if r.n_tokens != gen]
    if short:
        raise AipcError(f"runs produced {short} tokens instead of the requested {gen}")
    summary: dict[str, Summary] = {}
    for key in METRICS:
        values = [v for r in runs if (v := r.get(key)) is not None]
        if values:
            summary[key] = summarize(values)
    agreement = _agreement(kept, runs)
    outside = [float(r["outside_s"]) * 1000.0 for r in kept if isinstance(r.get("outside_s"), (int, float))]
    return CellResult(
        prompt_tokens=int(raw_cell["prompt_tokens"]),
        gen_tokens=gen,
        prompt_tokens_actual=int(raw_cell.get("prompt_tokens_actual", raw_cell["prompt_tokens"])),
        runs=runs,
        warmup_runs=warmup,
        summary=summary,
        agreement=agreement,
        outside_ms=summarize(outside) if outside else None,
        outside_values=tuple(outside),
        prompts=str(raw_cell.get("prompts") or "same"),
        prompts_sha256=str(raw_cell["prompts_sha256"]) if raw_cell.get("prompts_sha256") else None,
        repeat_ttft_ms=float(rep) * 1000.0 if isinstance(rep := raw_cell.get("repeat_ttft_s"), (int, float)) else None,
    )


def prefill_suspicion(prompt_tokens: int, prompts: str, ttft_ms: Sequence[float], tpot_ms: Sequence[float],
                      repeat_ttft_ms: float | None = None) -> str | None:
    """Why a cell's TTFT looks like a prompt- or prefix-cache hit rather than a prefill, or None.

    Both rules use each metric's fastest run, the one least disturbed by other work on the machine (on a loaded
    machine a single preempted run or an inflated median TPOT would otherwise look like a cache effect):
    - TTFT about equal to TPOT: the first token cost one decode step, so the prompt was not processed;
    - a repeated prompt (the worker's repeat probe) much faster than every measured prompt: the runtime caches
      prompts, so measured runs that repeated one prompt were hits (only a note when each run had its own prompt).
    """
    if not ttft_ms or not tpot_ms:
        return None
    best_ttft, best_tpot = min(ttft_ms), min(tpot_ms)
    why = []
    if prompt_tokens >= PREFILL_MIN_PROMPT and best_tpot > 0 and best_ttft < PREFILL_MIN_RATIO * best_tpot:
        why.append(f"the fastest TTFT {best_ttft:.3g} ms is within {PREFILL_MIN_RATIO:g}x the fastest TPOT "
                   f"{best_tpot:.3g} ms for a {prompt_tokens}-token prompt")
    if repeat_ttft_ms is not None and repeat_ttft_ms * REPEAT_FACTOR < best_ttft:
        hit = (f"a repeated prompt took {repeat_ttft_ms:.3g} ms to its first token, every new one "
               f"{best_ttft:.3g} ms or more")
        if prompts == "distinct" and not why:
            return f"prompt cache seen, measured runs unaffected (each had its own prompt): {hit}"
        why.append(hit)
    return "prefix-cache suspicion: " + "; ".join(why) if why else None


def _agreement(raw_runs: Sequence[Mapping[str, Any]], runs: Sequence[RunMetrics]) -> Agreement | None:
    """Mean of per-run decode tokens/s, aipc's against the reference's, over the same measured runs."""
    refs = [r.get("reference") for r in raw_runs]
    if not refs or any(not isinstance(ref, Mapping) or not isinstance(ref.get("decode_tps"), (int, float))
                       for ref in refs):
        return None
    names = {str(ref["name"]) for ref in refs if isinstance(ref, Mapping)}
    if len(names) != 1:
        raise AipcError(f"runs of one cell name different references: {sorted(names)}")
    maps = [ref for ref in refs if isinstance(ref, Mapping)]
    ref_tps = [float(ref["decode_tps"]) for ref in maps]
    extra = {}
    for key in sorted({k for ref in maps for k in ref} - {"name", "decode_tps"}):
        values = [ref.get(key) for ref in maps]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            extra[key] = summarize([float(v) for v in values if isinstance(v, (int, float))]).mean
    return Agreement(names.pop(), summarize([r.decode_tps for r in runs]).mean, summarize(ref_tps).mean, extra)


@dataclass(frozen=True)
class Overhead:
    """The harness's own cost inside one target's worker, reported next to its results.

    The cost of starting a worker (subprocess + JSON exchange) is measured separately with a no-op worker per
    venv (:func:`aipc.bench.run.measure_spawn`); it is paid once per target and lies outside every measured run.
    """

    outside_ms: Summary | None  # per run: worker time outside the generate call (bookkeeping, memory reads)
    callback_us: float | None  # per token: cost of the timestamping callback itself
    tpot_ms: float | None  # the fastest median TPOT of the target, which the callback cost is compared with

    @property
    def callback_share(self) -> float | None:
        if self.callback_us is None or not self.tpot_ms:
            return None
        return self.callback_us / (self.tpot_ms * 1000.0)

    def to_json(self) -> dict[str, Any]:
        return {
            "outside_generation_ms": self.outside_ms.to_json() if self.outside_ms else None,
            "callback_us_per_token": self.callback_us,
            "tpot_ms": self.tpot_ms,
            "callback_share_of_tpot": self.callback_share,
        }


def overhead(cells: Sequence[CellResult], callback_us: float | None) -> Overhead:
    outside = [v for c in cells for v in c.outside_values]
    tpots = [c.summary["tpot_ms"].median for c in cells if "tpot_ms" in c.summary]
    return Overhead(
        outside_ms=summarize(outside) if outside else None,
        callback_us=callback_us,
        tpot_ms=min(tpots) if tpots else None,
    )
