"""`aipc bench compare` with statistics: Mann-Whitney U and a bootstrap interval of the median ratio on the per-run
samples, a verdict only when significant and beyond the threshold calibrated from A/A runs."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import pytest

from aipc.bench.stats import MIN_RUNS, bootstrap_ratio, difference, mann_whitney
from aipc.errors import AipcError

DATA = Path(__file__).resolve().parent / "data"


# --- the statistic -----------------------------------------------------------------------------------------------

def brute_p(u: float, m: int, n: int) -> float:
    """Two-sided exact p of U by enumerating every way to pick which m of the m + n ranks are A's."""
    us = []
    for ranks in itertools.combinations(range(m + n), m):
        mine = set(ranks)
        us.append(sum(1 for i in ranks for j in range(m + n) if j not in mine and i > j))
    low = sum(x <= u for x in us) / len(us)
    high = sum(x >= u for x in us) / len(us)
    return min(1.0, 2 * min(low, high))


def test_mann_whitney_exact_values() -> None:
    # no overlap, 5 + 5: U = 0, exact two-sided p = 2 / C(10, 5) = 2 / 252
    assert mann_whitney([1, 2, 3, 4, 5], [6, 7, 8, 9, 10]) == (0.0, pytest.approx(2 / 252))
    # interleaved: U = 10 of 25; two-sided p from the exact distribution, counted here by brute force
    assert mann_whitney([1, 2, 3, 4, 5], [1.5, 2.5, 3.5, 4.5, 5.5]) == (10.0, pytest.approx(brute_p(10, 5, 5)))
    assert brute_p(10, 5, 5) == pytest.approx(174 / 252)
    a, b = [3.0, 7.0, 8.0, 9.5], [1.0, 2.0, 4.0, 5.0, 6.0, 10.0]
    u, p = mann_whitney(a, b)
    assert u == sum(x > y for x in a for y in b) == 17 and p == pytest.approx(brute_p(17, 4, 6))
    # 3 + 3 without overlap: the smallest p there is, 2 / 20 = 0.1 (not significant at 0.05)
    assert mann_whitney([1, 2, 3], [4, 5, 6])[1] == pytest.approx(0.1)
    with pytest.raises(AipcError):
        mann_whitney([], [1.0])


def test_mann_whitney_with_ties_uses_the_corrected_normal_approximation() -> None:
    u, p = mann_whitney([1.0] * 5, [1.0] * 5)
    assert (u, p) == (12.5, 1.0)  # identical samples: no evidence at all
    u, p = mann_whitney([1.0, 1.0, 2.0, 2.0, 3.0], [4.0, 4.0, 5.0, 5.0, 6.0])
    assert u == 0.0 and p < 0.02


def test_bootstrap_interval_is_deterministic_and_brackets_the_ratio() -> None:
    rng = random.Random(1)
    a = [10 + rng.gauss(0, 0.5) for _ in range(9)]
    b = [12 + rng.gauss(0, 0.5) for _ in range(9)]
    low, high = bootstrap_ratio(a, b)
    assert (low, high) == bootstrap_ratio(a, b)  # fixed seed: the same files always give the same answer
    assert low < 1.2 < high and low > 1.0


def test_identical_samples_are_the_same() -> None:
    a = [5.1, 5.0, 5.3, 4.9, 5.2, 5.0]
    d = difference(a, list(a), higher_is_better=False, threshold=0.05)
    assert d.verdict == "same" and d.ratio == 1.0 and d.p_value == 1.0
    assert d.label().startswith("same (±")


def test_a_clear_shift_is_significant_and_directed() -> None:
    a = [10.0, 10.2, 9.9, 10.1, 10.3, 9.8]
    slower = [x * 1.5 for x in a]
    worse = difference(a, slower, higher_is_better=False, threshold=0.1)  # a time: higher is worse
    assert worse.verdict == "worse" and worse.ratio == pytest.approx(1.5) and worse.p_value < 0.01
    assert worse.label() == "B worse (+50 %)"
    assert difference(a, slower, higher_is_better=True, threshold=0.1).verdict == "better"  # a rate
    assert difference(slower, a, higher_is_better=False, threshold=0.1).verdict == "better"


def test_a_significant_shift_below_the_threshold_is_the_same() -> None:
    a = [10.0, 10.2, 9.9, 10.1, 10.3, 9.8]
    b = [x * 1.1 for x in a]
    d = difference(a, b, higher_is_better=False, threshold=0.2)
    assert d.p_value < 0.05 and d.verdict == "same"
    assert difference(a, b, higher_is_better=False, threshold=0.05).verdict == "worse"
    # the threshold is symmetric on the log scale: 1.25x slower and 1/1.25 faster are equally far
    c = [x / 1.3 for x in a]
    assert difference(a, c, higher_is_better=False, threshold=0.25).verdict == "better"


def test_overlapping_noise_is_the_same() -> None:
    a = [10.0, 14.0, 9.0, 12.0, 11.0, 13.0]
    b = [11.0, 13.5, 9.5, 12.5, 10.5, 15.0]
    d = difference(a, b, higher_is_better=False, threshold=0.0)
    assert d.verdict == "same" and d.p_value > 0.05


def test_too_few_runs_give_no_verdict_and_say_so() -> None:
    a, b = [1.0, 1.1, 1.05], [3.0, 3.1, 3.05]
    d = difference(a, b, higher_is_better=False, threshold=0.0)
    assert d.verdict == "same" and "too few runs (3 and 3" in d.label() and str(MIN_RUNS) in d.note
