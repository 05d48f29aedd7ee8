"""Summary statistics over repeated runs: warm-up runs excluded, then mean / median / stdev / p90.

Conventions (fixed, documented in docs/bench.md, "Method"):
- ``stdev`` is the sample standard deviation (n - 1 in the denominator), 0.0 for a single value;
- ``p90`` is the linear-interpolation percentile (the default of numpy and of Python's
  ``statistics.quantiles(method="inclusive")``): the value at rank ``0.9 * (n - 1)`` between the sorted values.
"""

from __future__ import annotations

import math
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
