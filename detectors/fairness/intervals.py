"""Confidence intervals for proportions, their differences and their ratios, from counts.

* ``wilson_interval``: Wilson's score interval for one proportion, clipped to [0, 1]; equal to
  ``statsmodels.stats.proportion.proportion_confint(x, n, alpha, method="wilson")``.
* ``newcombe_difference``: Newcombe's hybrid score interval (his method 10) for ``p1 - p2``, built from the
  two Wilson intervals; equal to ``confint_proportions_2indep(..., compare="diff", method="newcomb")``.
* ``katz_ratio``: the log-ratio (Katz) interval for ``p1 / p2`` with 0.5 added to every count and total, so
  zero counts need no special case; equal to ``confint_proportions_2indep(..., compare="ratio",
  method="log-adjusted")`` (statsmodels' default for ratios).

All functions are vectorised over numpy arrays of counts (and of confidence levels). A proportion with no trials has no interval: its
bounds are NaN, and so are those of any difference or ratio it takes part in.
"""

from __future__ import annotations

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


def _floats(*arrays: npt.ArrayLike) -> list[FloatArray]:
    return [np.asarray(a, dtype=np.float64) for a in arrays]


def wilson_interval(
    successes: npt.ArrayLike, trials: npt.ArrayLike, confidence: npt.ArrayLike = 0.95
) -> tuple[FloatArray, FloatArray]:
    x, n = _floats(successes, trials)
    z = z_value(confidence)
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
