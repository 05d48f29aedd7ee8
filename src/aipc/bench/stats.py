"""Summary statistics over repeated runs (warm-up runs excluded: mean / median / quartiles / stdev / p90) and the
comparison of two sets of runs (Mann-Whitney U and a bootstrap interval of the median ratio).

Conventions (fixed, documented in docs/bench.md, "Method" and "Compare two runs"):
- ``stdev`` is the sample standard deviation (n - 1 in the denominator), 0.0 for a single value;
- ``p90``, ``q1`` and ``q3`` are linear-interpolation percentiles (the default of numpy and of Python's
  ``statistics.quantiles(method="inclusive")``): the value at rank ``q * (n - 1)`` between the sorted values.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import random
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Any, TypeVar

from ..errors import AipcError

T = TypeVar("T")


@dataclass(frozen=True)
class Summary:
    n: int
    mean: float
    median: float
    stdev: float
    p90: float
    min: float
    max: float
    q1: float  # 25th percentile: with q3, the interquartile range the charts draw as error bars
    q3: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (``q`` in [0, 100]), interpolated between the closest ranks: one cut point of
    :func:`statistics.quantiles` with ``method="inclusive"`` (numpy's default "linear"). ``q`` is taken to 1/10000
    (``99.99``); a single value is its own percentile."""
    if not values:
        raise AipcError("percentile of an empty list")
    if not 0.0 <= q <= 100.0:
        raise AipcError(f"percentile {q} is outside [0, 100]")
    share = Fraction(q / 100.0).limit_denominator(10_000)  # q/100 = k/n: the k-th of n - 1 cut points
    if len(values) == 1 or share in (0, 1):
        return float(min(values) if share == 0 else max(values))
    cuts = statistics.quantiles(values, n=share.denominator, method="inclusive")
    return cuts[share.numerator - 1]


def summarize(values: Sequence[float]) -> Summary:
    """Statistics of already-measured values (warm-ups removed by :func:`measured`)."""
    vals = [float(v) for v in values]
    if not vals:
        raise AipcError("no measured runs to summarize", hint="use at least one repetition after the warm-up runs")
    if any(not math.isfinite(v) for v in vals):
        raise AipcError(f"non-finite value among measured runs: {vals}")
    return Summary(
        n=len(vals),
        mean=statistics.fmean(vals),
        median=statistics.median(vals),
        stdev=statistics.stdev(vals) if len(vals) > 1 else 0.0,
        p90=percentile(vals, 90.0),
        min=min(vals),
        max=max(vals),
        q1=percentile(vals, 25.0),
        q3=percentile(vals, 75.0),
    )


def measured(runs: Sequence[T], warmup: int) -> list[T]:
    """The runs that count: the first ``warmup`` runs are excluded."""
    if warmup < 0:
        raise AipcError(f"warm-up count {warmup} is negative")
    if warmup >= len(runs):
        raise AipcError(
            f"{len(runs)} run(s) but {warmup} warm-up run(s) to exclude: nothing left to measure",
            hint="use more repetitions than warm-up runs",
        )
    return list(runs[warmup:])


# --- comparing two sets of runs -------------------------------------------------------------------------------------

MIN_RUNS = 5  # fewer runs on either side: never a verdict (Mann-Whitney cannot reach p < 0.05 below 4 + 4)
ALPHA = 0.05  # two-sided significance level of the Mann-Whitney test and 1 - the bootstrap interval's confidence
BOOTSTRAP = 2000  # resamples of the bootstrap interval
SEED = 20261129  # the bootstrap's fixed seed: the same files always give the same interval and verdict
EXACT_MAX = 400  # exact Mann-Whitney distribution up to n_a * n_b = 400 without ties, else the normal approximation


@functools.cache
def _u_counts(m: int, n: int) -> tuple[int, ...]:
    """How many of the C(m + n, m) orderings of m values of A and n of B give U = 0, 1, ..., m * n (U: pairs where
    the A value is the larger)."""
    if m == 0 or n == 0:
        return (1,)
    with_a_last = _u_counts(m - 1, n)  # the largest value is from A: it beats all n values of B
    with_b_last = _u_counts(m, n - 1)
    out = [0] * (m * n + 1)
    for u, k in enumerate(with_a_last):
        out[u + n] += k
    for u, k in enumerate(with_b_last):
        out[u] += k
    return tuple(out)


def mann_whitney(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """Mann-Whitney U of ``a`` against ``b`` (ties count one half) and its two-sided p-value: exact without ties
    for small samples, else the normal approximation with tie and continuity corrections."""
    if not a or not b:
        raise AipcError("Mann-Whitney U needs at least one value on each side")
    m, n = len(a), len(b)
    u = sum(1.0 if x > y else 0.5 if x == y else 0.0 for x in a for y in b)
    values = [*a, *b]
    tied = len(set(values)) < len(values)
    if not tied and m * n <= EXACT_MAX:
        counts = _u_counts(m, n)
        total = sum(counts)
        k = int(u)
        low, high = sum(counts[: k + 1]), sum(counts[k:])
        return u, min(1.0, 2.0 * min(low, high) / total)
    mean = m * n / 2.0
    groups: dict[float, int] = {}
    for v in values:
        groups[v] = groups.get(v, 0) + 1
    size = m + n
    tie_term = sum(t ** 3 - t for t in groups.values()) / (size * (size - 1))
    var = m * n / 12.0 * ((size + 1) - tie_term)
    if var <= 0:
        return u, 1.0
    z = max(0.0, abs(u - mean) - 0.5) / math.sqrt(var)
    return u, min(1.0, math.erfc(z / math.sqrt(2.0)))


@functools.lru_cache(maxsize=4096)
def _resampled_medians(values: tuple[float, ...], resamples: int, seed: int) -> tuple[float, ...]:
    """Medians of ``resamples`` resamples (with replacement) of ``values``: deterministic for a seed, so a sample
    compared several times (``aipc bench calibrate``) is resampled once."""
    rng = random.Random(seed)
    n = len(values)
    return tuple(statistics.median(rng.choices(values, k=n)) for _ in range(resamples))


def bootstrap_ratio(a: Sequence[float], b: Sequence[float], confidence: float = 1.0 - ALPHA,
                    resamples: int = BOOTSTRAP, seed: int = SEED) -> tuple[float, float]:
    """Percentile bootstrap interval of ``median(b) / median(a)``: both samples resampled with replacement,
    independently (each with its own fixed seed: deterministic)."""
    if not a or not b:
        raise AipcError("a bootstrap interval needs at least one value on each side")
    ma = _resampled_medians(tuple(float(x) for x in a), resamples, seed)
    mb = _resampled_medians(tuple(float(x) for x in b), resamples, seed + 1)
    ratios = [y / x for x, y in zip(ma, mb, strict=True) if x > 0]
    if not ratios:
        raise AipcError("the median of A is zero: a ratio to it is undefined")
    tail = (1.0 - confidence) / 2.0 * 100.0
    return percentile(ratios, tail), percentile(ratios, 100.0 - tail)


@dataclass(frozen=True)
class Difference:
    """B against A for one metric: the median ratio, its bootstrap interval, the Mann-Whitney p-value, the verdict."""

    median_a: float
    median_b: float
    ratio: float  # median(B) / median(A)
    low: float  # bootstrap interval of the ratio
    high: float
    p_value: float
    verdict: str  # "better" | "worse" | "same"
    note: str = ""

    @property
    def spread_pct(self) -> float:
        """The interval's farthest bound from 1, in percent: B is within ± this of A (at the interval's confidence)."""
        return max(abs(self.low - 1.0), abs(self.high - 1.0)) * 100.0

    @property
    def significant(self) -> bool:
        return self.p_value < ALPHA and (self.low > 1.0 or self.high < 1.0) and not self.note

    def at(self, threshold: float, higher_is_better: bool) -> Difference:
        """This difference judged at another threshold."""
        return dataclasses.replace(self, verdict=_verdict(self.ratio, self.significant, threshold, higher_is_better))

    def label(self) -> str:
        if self.verdict == "same":
            return f"same (±{self.spread_pct:.0f} %)" + (f"; {self.note}" if self.note else "")
        return f"B {self.verdict} ({(self.ratio - 1.0) * 100.0:+.0f} %)"


def difference(a: Sequence[float], b: Sequence[float], *, higher_is_better: bool, threshold: float,
               alpha: float = ALPHA, min_runs: int = MIN_RUNS) -> Difference:
    """Compare per-run samples: a verdict only when the Mann-Whitney test is significant at ``alpha``, the bootstrap
    interval of the median ratio excludes 1, and the ratio is beyond ``threshold`` (a fraction: 0.2 = 20 %, on the
    log scale, so 1.25 and 0.8 are equally far); anything else is "same"."""
    if threshold < 0:
        raise AipcError(f"threshold {threshold} is negative")
    ma, mb = statistics.median(a), statistics.median(b)
    if ma <= 0:
        raise AipcError("the median of A is not positive: a ratio to it is undefined")
    ratio = mb / ma
    low, high = bootstrap_ratio(a, b, 1.0 - alpha)
    _, p = mann_whitney(a, b)
    if min(len(a), len(b)) < min_runs:
        return Difference(ma, mb, ratio, low, high, p, "same", f"too few runs ({len(a)} and {len(b)}; a verdict needs "
                                                         f"{min_runs} on each side)")
    significant = p < alpha and (low > 1.0 or high < 1.0)
    return Difference(ma, mb, ratio, low, high, p, _verdict(ratio, significant, threshold, higher_is_better))


def _verdict(ratio: float, significant: bool, threshold: float, higher_is_better: bool) -> str:
    if not significant or abs(math.log(ratio)) <= math.log1p(threshold):
        return "same"
    better = ratio > 1.0 if higher_is_better else ratio < 1.0
    return "better" if better else "worse"
