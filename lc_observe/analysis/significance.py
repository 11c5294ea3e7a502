"""Significance tests for anomaly detection, with the standard library only.

- `two_proportion_test`: two-proportion z-test (pooled variance) for rates.
- `mann_whitney_u`: Mann-Whitney U with the normal approximation (tie-corrected), for
  medians and other location shifts.
- `welch_test`: Welch's z-test on two means (large-sample normal approximation).
- `bootstrap_quantile_ratio`: bootstrap standard error of ``log(q_recent / q_baseline)``
  for a quantile such as the p95, turned into a z-test (continuous p-values, no floor
  of ``1 / resamples``, so a multiple-testing correction can still pass).
- `holm` / `benjamini_hochberg`: adjusted p-values for many tests at once.

Every test returns a p-value in ``[0, 1]``; ``alternative="greater"`` asks whether the
recent sample is larger than the baseline.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Literal

Alternative = Literal["greater", "two-sided"]


def normal_sf(z: float) -> float:
    """P(Z >= z) for a standard normal Z."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def _p_from_z(z: float, alternative: Alternative) -> float:
    if alternative == "greater":
        return normal_sf(z)
    return min(1.0, 2.0 * normal_sf(abs(z)))


def _log_comb(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def fisher_exact(
    x0: int, n0: int, x1: int, n1: int, alternative: Alternative = "two-sided"
) -> float:
    """Fisher's exact test of ``x0 / n0`` against ``x1 / n1`` (hypergeometric, conditional
    on the total count): exact for small counts, where the z-test is too eager.

    >>> round(fisher_exact(0, 158, 5, 64, "greater"), 4)
    0.0018
    """
    total, successes = n0 + n1, x0 + x1
    low, high = max(0, successes - n0), min(successes, n1)
    log_denominator = _log_comb(total, successes)

    def probability(k: int) -> float:
        return math.exp(_log_comb(n1, k) + _log_comb(n0, successes - k) - log_denominator)

    if alternative == "greater":
        return min(1.0, math.fsum(probability(k) for k in range(x1, high + 1)))
    observed = probability(x1) * (1 + 1e-7)
    return min(1.0, math.fsum(p for p in map(probability, range(low, high + 1)) if p <= observed))


def two_proportion_test(
    x0: int, n0: int, x1: int, n1: int, alternative: Alternative = "two-sided"
) -> float:
    """p-value that the rate ``x1 / n1`` differs from (or, "greater", exceeds) ``x0 / n0``.

    The pooled two-proportion z-test when every expected cell count is at least 10 (the
    usual condition for the normal approximation); `fisher_exact` otherwise.

    >>> round(two_proportion_test(10, 100, 40, 100), 6)
    1e-06
    >>> two_proportion_test(5, 100, 5, 100)
    1.0
    """
    if n0 <= 0 or n1 <= 0:
        raise ValueError("two_proportion_test needs n0 > 0 and n1 > 0")
    successes, failures = x0 + x1, n0 + n1 - x0 - x1
    smallest = min(successes, failures) * min(n0, n1) / (n0 + n1)
    if smallest < 10:
        return fisher_exact(x0, n0, x1, n1, alternative)
    pooled = (x0 + x1) / (n0 + n1)
    variance = pooled * (1.0 - pooled) * (1.0 / n0 + 1.0 / n1)
    diff = x1 / n1 - x0 / n0
    if variance <= 0.0:  # both rates 0 or both 1: no evidence of a change
        return 1.0 if diff == 0 else 0.0
    return _p_from_z(diff / math.sqrt(variance), alternative)


def _ranks(values: Sequence[float]) -> tuple[list[float], float]:
    """Average ranks (1-based) of ``values`` and the tie term ``sum(t^3 - t)``."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    ties = 0.0
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        average = (i + j) / 2.0 + 1.0
        for k in range(i, j + 1):
            ranks[order[k]] = average
        t = j - i + 1
        ties += t**3 - t
        i = j + 1
    return ranks, ties


def mann_whitney_u(
    baseline: Sequence[float], recent: Sequence[float], alternative: Alternative = "greater"
) -> float:
    """Mann-Whitney U test, normal approximation with tie correction and continuity
    correction: p-value that ``recent`` tends to be larger than ``baseline``.

    >>> mann_whitney_u([1, 2, 3] * 20, [4, 5, 6] * 20) < 1e-9
    True
    >>> mann_whitney_u([1, 2, 3] * 20, [1, 2, 3] * 20) > 0.4
    True
    """
    n0, n1 = len(baseline), len(recent)
    if n0 == 0 or n1 == 0:
        raise ValueError("mann_whitney_u needs two non-empty samples")
    ranks, ties = _ranks([*baseline, *recent])
    u1 = sum(ranks[n0:]) - n1 * (n1 + 1) / 2.0
    mean = n0 * n1 / 2.0
    n = n0 + n1
    variance = n0 * n1 / 12.0 * ((n + 1) - ties / (n * (n - 1)))
    if variance <= 0.0:
        return 1.0
    delta = u1 - mean
    if alternative == "greater":
        z = (delta - 0.5) / math.sqrt(variance)
    else:
        z = (abs(delta) - 0.5) / math.sqrt(variance)
        return min(1.0, 2.0 * normal_sf(max(z, 0.0)))
    return normal_sf(z)


def welch_test(
    baseline: Sequence[float], recent: Sequence[float], alternative: Alternative = "greater"
) -> float:
    """p-value that the mean of ``recent`` exceeds (or differs from) the mean of ``baseline``:
    Welch's statistic against the normal distribution (the samples are large by the time
    this is asked: anomaly detection requires a minimum sample size first)."""
    n0, n1 = len(baseline), len(recent)
    if n0 < 2 or n1 < 2:
        raise ValueError("welch_test needs at least two values in each sample")
    m0, m1 = math.fsum(baseline) / n0, math.fsum(recent) / n1
    v0 = math.fsum((x - m0) ** 2 for x in baseline) / (n0 - 1)
    v1 = math.fsum((x - m1) ** 2 for x in recent) / (n1 - 1)
    se = math.sqrt(v0 / n0 + v1 / n1)
    if se == 0.0:
        return 1.0 if m1 == m0 or (alternative == "greater" and m1 < m0) else 0.0
    return _p_from_z((m1 - m0) / se, alternative)


def quantile(sorted_values: Sequence[float], q: float) -> float:
    """Linearly interpolated quantile of ascending values (as `storage.stats.percentile`)."""
    position = q * (len(sorted_values) - 1)
    low = math.floor(position)
    if low + 1 >= len(sorted_values):
        return float(sorted_values[-1])
    fraction = position - low
    return float(sorted_values[low] + (sorted_values[low + 1] - sorted_values[low]) * fraction)


def bootstrap_quantile_ratio(
    baseline: Sequence[float],
    recent: Sequence[float],
    q: float = 0.95,
    *,
    resamples: int = 200,
    rng: random.Random | None = None,
    max_sample: int = 2_000,
) -> float:
    """p-value that the ``q`` quantile of ``recent`` exceeds that of ``baseline``.

    Each window is resampled with replacement ``resamples`` times; the spread of
    ``log(q_recent / q_baseline)`` over the resamples estimates its standard error and
    ``z = log(observed ratio) / se`` is read against the normal distribution.  Samples
    larger than ``max_sample`` are subsampled first (a bounded cost per group).
    Values must be positive (latencies, TTFTs).
    """
    rng = rng or random.Random(0)
    b = [float(v) for v in baseline if v > 0]
    r = [float(v) for v in recent if v > 0]
    if len(b) < 2 or len(r) < 2:
        raise ValueError("bootstrap_quantile_ratio needs at least two positive values each")
    if len(b) > max_sample:
        b = rng.sample(b, max_sample)
    if len(r) > max_sample:
        r = rng.sample(r, max_sample)
    observed = math.log(quantile(sorted(r), q) / quantile(sorted(b), q))
    logs = []
    for _ in range(resamples):
        qb = quantile(sorted(rng.choices(b, k=len(b))), q)
        qr = quantile(sorted(rng.choices(r, k=len(r))), q)
        logs.append(math.log(qr / qb))
    mean = math.fsum(logs) / len(logs)
    se = math.sqrt(math.fsum((x - mean) ** 2 for x in logs) / (len(logs) - 1))
    if se == 0.0:
        return 0.0 if observed > 0 else 1.0
    return normal_sf(observed / se)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (family-wise error rate), in the input order.

    >>> holm([0.25, 0.5, 0.125])
    [0.5, 0.5, 0.375]
    """
    m = len(p_values)
    order = sorted(range(m), key=p_values.__getitem__)
    adjusted = [0.0] * m
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (false discovery rate), in the input order.

    >>> benjamini_hochberg([0.25, 0.5, 0.125])
    [0.375, 0.5, 0.375]
    """
    m = len(p_values)
    order = sorted(range(m), key=p_values.__getitem__, reverse=True)
    adjusted = [0.0] * m
    running = 1.0
    for position, index in enumerate(order):
        rank = m - position
        running = min(running, p_values[index] * m / rank)
        adjusted[index] = min(1.0, running)
    return adjusted
