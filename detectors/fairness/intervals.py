"""Confidence intervals for proportions, their differences and their ratios, from counts.

* ``wilson_interval``: Wilson's score interval for one proportion, clipped to [0, 1]; equal to
  ``statsmodels.stats.proportion.proportion_confint(x, n, alpha, method="wilson")``.
* ``newcombe_difference``: Newcombe's hybrid score interval (his method 10) for ``p1 - p2``, built from the
  two Wilson intervals; equal to ``confint_proportions_2indep(..., compare="diff", method="newcomb")``.
* ``katz_ratio``: the log-ratio (Katz) interval for ``p1 / p2`` with 0.5 added to every count and total, so
  zero counts need no special case; equal to ``confint_proportions_2indep(..., compare="ratio",
  method="log-adjusted")`` (statsmodels' default for ratios).

``wilson_interval``, ``newcombe_difference`` and ``katz_ratio`` are vectorised over numpy arrays of counts
(and of confidence levels); ``wilson_arrays`` is ``wilson_interval`` at a given z. A proportion with no
trials has no interval: its bounds are NaN, and so are those of any difference or ratio it takes part in.

``z_scalar``, ``wilson_bounds``, ``newcombe_bounds`` and ``katz_bounds`` compute the same on Python numbers:
the same IEEE operations in the same order give the same bits (``+ - * /`` and the square root are
correctly rounded in both, and numpy's ``x ** 2`` is ``x * x``). ``katz_bounds`` still takes its logarithms
and exponentials from numpy: ``np.log`` and ``np.exp`` can differ from ``math.log`` and ``math.exp`` in the
last bit. The detector computes its intervals for many windows at once in ``batch``, with these operations
in this order on arrays.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import numpy.typing as npt
from scipy import special

FloatArray = npt.NDArray[np.float64]


def z_value(confidence: npt.ArrayLike) -> FloatArray:
    """The two-sided standard normal quantile of ``confidence`` (1.959964 for 0.95), elementwise.

    ``-ndtri(q)`` is what ``scipy.stats.norm.isf(q)`` computes, without its argument handling (~100x
    slower on a scalar, and called for every interval).
    """
    c = np.asarray(confidence, dtype=np.float64)
    if not np.all((c > 0.0) & (c < 1.0)):
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    z: FloatArray = -special.ndtri((1.0 - c) / 2.0)
    return z


@lru_cache(maxsize=256)
def z_scalar(confidence: float) -> float:
    """``z_value`` of one confidence level as a Python float, computed once per level."""
    return float(z_value(float(confidence)))


def _sqrt(x: float) -> float:
    return math.sqrt(x) if x >= 0.0 else math.nan  # NaN in, or a negative argument: NaN as numpy gives


def wilson_bounds(successes: float, trials: float, z: float) -> tuple[float, float]:
    """``wilson_interval`` of one proportion at ``z = z_scalar(confidence)``, bit for bit (counts < 2**53)."""
    if trials == 0:
        return math.nan, math.nan  # p = x / 0 and z2n = inf: numpy's center and bounds are NaN
    p = successes / trials
    z2n = z * z / trials
    denom = 1.0 + z2n
    center = (p + z2n / 2.0) / denom
    spread = p * (1.0 - p) / trials + z2n / (4.0 * trials)
    # the square root (NaN for a negative argument) and np.clip written out: this runs for every group
    # and metric of every window
    half = z * (math.sqrt(spread) if spread >= 0.0 else math.nan) / denom
    low, high = center - half, center + half
    return (
        0.0 if low < 0.0 else (1.0 if low > 1.0 else low),  # noqa: FURB136 - NaN and -0.0 as np.clip
        0.0 if high < 0.0 else (1.0 if high > 1.0 else high),  # noqa: FURB136
    )


def newcombe_bounds(
    successes1: float, trials1: float, successes2: float, trials2: float, z: float
) -> tuple[float, float]:
    """``newcombe_difference`` of one pair at ``z = z_scalar(confidence)``, bit for bit (counts < 2**53)."""
    if trials1 == 0 or trials2 == 0:
        return math.nan, math.nan
    low1, high1 = wilson_bounds(successes1, trials1, z)
    low2, high2 = wilson_bounds(successes2, trials2, z)
    p1, p2 = successes1 / trials1, successes2 / trials2
    diff = p1 - p2
    a, b, c, d = p1 - low1, high2 - p2, high1 - p1, p2 - low2
    return diff - _sqrt(a * a + b * b), diff + _sqrt(c * c + d * d)


def _floats(*arrays: npt.ArrayLike) -> list[FloatArray]:
    return [np.asarray(a, dtype=np.float64) for a in arrays]


def wilson_interval(
    successes: npt.ArrayLike, trials: npt.ArrayLike, confidence: npt.ArrayLike = 0.95
) -> tuple[FloatArray, FloatArray]:
    x, n = _floats(successes, trials)
    return wilson_arrays(x, n, z_value(confidence))


def wilson_arrays(
    successes: npt.ArrayLike, trials: npt.ArrayLike, z: float | FloatArray
) -> tuple[FloatArray, FloatArray]:
    """``wilson_interval`` at ``z = z_value(confidence)``, elementwise over broadcast arrays.

    Integer counts may be passed as they are: numpy divides them as float64, as Python divides ints.
    """
    x, n = np.asarray(successes), np.asarray(trials)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = x / n
        z2n = z * z / n
        denom = 1.0 + z2n
        center = (p + z2n / 2.0) / denom
        half = z * np.sqrt(p * (1.0 - p) / n + z2n / (4.0 * n)) / denom
    low: FloatArray = np.clip(center - half, 0.0, 1.0)
    high: FloatArray = np.clip(center + half, 0.0, 1.0)
    return low, high


def newcombe_difference(
    successes1: npt.ArrayLike,
    trials1: npt.ArrayLike,
    successes2: npt.ArrayLike,
    trials2: npt.ArrayLike,
    confidence: npt.ArrayLike = 0.95,
) -> tuple[FloatArray, FloatArray]:
    """Interval for ``p1 - p2`` (Newcombe 1998, method 10: the hybrid score interval)."""
    x1, n1, x2, n2 = _floats(successes1, trials1, successes2, trials2)
    low1, high1 = wilson_interval(x1, n1, confidence)
    low2, high2 = wilson_interval(x2, n2, confidence)
    with np.errstate(divide="ignore", invalid="ignore"):
        p1, p2 = x1 / n1, x2 / n2
    diff = p1 - p2
    low: FloatArray = diff - np.sqrt((p1 - low1) ** 2 + (high2 - p2) ** 2)
    high: FloatArray = diff + np.sqrt((high1 - p1) ** 2 + (p2 - low2) ** 2)
    return low, high


def katz_ratio(
    successes1: npt.ArrayLike,
    trials1: npt.ArrayLike,
    successes2: npt.ArrayLike,
    trials2: npt.ArrayLike,
    confidence: npt.ArrayLike = 0.95,
) -> tuple[FloatArray, FloatArray]:
    """Interval for ``p1 / p2``: ``exp(log r +- z * sqrt(1/x1 - 1/n1 + 1/x2 - 1/n2))`` on counts + 0.5.

    The half added to each count and total (statsmodels' ``log-adjusted``) keeps the interval finite when a
    group has no successes; the interval is then centred on the adjusted ratio, not on the raw one.
    """
    x1, n1, x2, n2 = _floats(successes1, trials1, successes2, trials2)
    x1, n1, x2, n2 = x1 + 0.5, n1 + 0.5, x2 + 0.5, n2 + 0.5
    z = z_value(confidence)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_ratio = np.log((x1 / n1) / (x2 / n2))
        half = z * np.sqrt(1.0 / x1 - 1.0 / n1 + 1.0 / x2 - 1.0 / n2)
    # a proportion with no trials (n = 0.5 after the adjustment) has no interval
    undefined = (n1 < 1.0) | (n2 < 1.0)
    low: FloatArray = np.where(undefined, np.nan, np.exp(log_ratio - half))
    high: FloatArray = np.where(undefined, np.nan, np.exp(log_ratio + half))
    return low, high


def katz_bounds(pairs: list[tuple[float, float, float, float]], zs: list[float]) -> list[tuple[float, float]]:
    """``katz_ratio`` of several pairs ``(x1, n1, x2, n2)``, each at its ``z``, bit for bit (counts < 2**53).

    Arithmetic in Python, the logarithms and exponentials in two numpy calls (numpy's ``log`` and ``exp``
    are what ``katz_ratio`` uses, and they give the same bits for an element whatever the array around it).
    """
    if not pairs:
        return []
    ratios: list[float] = []
    halves: list[float] = []
    for (x1, n1, x2, n2), z in zip(pairs, zs):
        a1, m1, a2, m2 = x1 + 0.5, n1 + 0.5, x2 + 0.5, n2 + 0.5
        ratios.append((a1 / m1) / (a2 / m2))
        halves.append(z * _sqrt(1.0 / a1 - 1.0 / m1 + 1.0 / a2 - 1.0 / m2))
    log_ratios: list[float] = np.log(np.array(ratios, dtype=np.float64)).tolist()
    ends = [lr - h for lr, h in zip(log_ratios, halves)] + [lr + h for lr, h in zip(log_ratios, halves)]
    bounds: list[float] = np.exp(np.array(ends, dtype=np.float64)).tolist()
    k = len(pairs)
    # a proportion with no trials (n = 0.5 after the adjustment) has no interval
    return [
        (math.nan, math.nan) if n1 + 0.5 < 1.0 or n2 + 0.5 < 1.0 else (bounds[i], bounds[k + i])
        for i, (_, n1, _, n2) in enumerate(pairs)
    ]
