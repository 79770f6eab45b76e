"""The one-sided tests behind the quality checks, vectorised over features.

* ``fisher_greater``: is the window's share of a count (missing values) larger than the reference's? Fisher's
  exact test, one-sided: exact at every count, so small windows and rare events need no separate rule.
* ``outside_range_pvalue``: are more window values outside the reference's [min, max] than chance allows?
  Under no change and for a continuous feature, the reference leaves a mass ``U ~ Beta(2, n - 1)`` outside
  [min, max] (mean ``2 / (n + 1)``), and the window's count outside is ``Binomial(m, U)``: a beta-binomial,
  exact and distribution-free. ``"binomial"`` tests against the mean ``2 / (n + 1)`` alone, ignoring the
  reference's own randomness (see ``docs/quality.md`` for when that matters).
* ``poisson_pvalue``: is a count of events unusually high (or low) for a Poisson mean?

The feature-wise functions take and return arrays (one entry per feature), without loops in Python.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import special, stats

FloatArray = npt.NDArray[np.float64]
RANGE_TESTS: tuple[str, ...] = ("betabinomial", "binomial")


def _clip(p: npt.ArrayLike) -> FloatArray:
    out: FloatArray = np.clip(np.asarray(p, dtype=np.float64), 0.0, 1.0)
    return out


def fisher_greater(
    x_window: npt.ArrayLike, n_window: npt.ArrayLike, x_reference: npt.ArrayLike, n_reference: npt.ArrayLike
) -> FloatArray:
    """One-sided p-value that ``x_window / n_window`` exceeds ``x_reference / n_reference``.

    Equal to ``scipy.stats.fisher_exact([[x_window, n_window - x_window], [x_reference, n_reference -
    x_reference]], alternative="greater").pvalue``: the upper tail of the hypergeometric distribution of the
    window's count given both margins.
    """
    xw, nw = np.asarray(x_window, dtype=np.int64), np.asarray(n_window, dtype=np.int64)
    xr, nr = np.asarray(x_reference, dtype=np.int64), np.asarray(n_reference, dtype=np.int64)
    return _clip(stats.hypergeom.sf(xw - 1, nw + nr, xw + xr, nw))


def outside_expected(n_reference: npt.ArrayLike, outside_reference: npt.ArrayLike = 2) -> FloatArray:
    """Expected share of new values outside what a reference of ``n`` values has seen: ``k / (n + 1)``.

    ``k = 2`` for a numeric [min, max] (the two spacings beyond the extreme order statistics); for new
    categories ``k = singletons + 1`` (see ``detectors/quality/checks.py``).
    """
    n = np.asarray(n_reference, dtype=np.float64)
    out: FloatArray = np.asarray(outside_reference, dtype=np.float64) / (n + 1.0)
    return out


def outside_range_pvalue(
    count: npt.ArrayLike,
    n_window: npt.ArrayLike,
    n_reference: npt.ArrayLike,
    outside_reference: npt.ArrayLike = 2,
    test: str = "betabinomial",
) -> FloatArray:
    """One-sided p-value ``P(K >= count)`` of ``count`` window values (of ``n_window``) outside the reference.

    ``betabinomial``: ``K ~ BetaBinomial(n_window, k, n + 1 - k)`` with ``k = outside_reference``; for a
    numeric feature (``k = 2``) this is the exact null of "window and reference are exchangeable draws of
    one continuous distribution". ``binomial``: ``K ~ Binomial(n_window, k / (n + 1))``, as
    ``scipy.stats.binomtest(count, n_window, k / (n + 1), alternative="greater")``.
    """
    c = np.asarray(count, dtype=np.int64)
    m = np.asarray(n_window, dtype=np.int64)
    n = np.asarray(n_reference, dtype=np.float64)
    k = np.asarray(outside_reference, dtype=np.float64)
    if test == "betabinomial":
        return betabinom_sf(c, m, k.astype(np.int64), n.astype(np.int64))
    if test == "binomial":
        return _clip(stats.binom.sf(c - 1, m, k / (n + 1.0)))
    raise ValueError(f"unknown range test {test!r}; expected one of {RANGE_TESTS}")


def betabinom_sf(
    count: npt.ArrayLike, n_window: npt.ArrayLike, a: npt.ArrayLike, n_reference: npt.ArrayLike
) -> FloatArray:
    """``P(K >= count)`` for ``K ~ BetaBinomial(n_window, a, n_reference + 1 - a)``, integer ``a`` in [1, n].

    In closed form, accurate far into the tail (scipy's ``betabinom.sf`` is ``1 - cdf`` and reaches 0 near
    1e-16): with ``K | U ~ Binomial(m, U)``, ``P(K >= c) = P(V <= U)`` for ``V ~ Beta(c, m - c + 1)``, and for
    integer ``a`` ``P(U >= v) = P(Binomial(n, v) <= a - 1)``, so

        P(K >= c) = sum_{i < a} C(n, i) B(c + i, m - c + 1 + n - i) / B(c, m - c + 1).

    For ``a = 1`` this is the rank formula ``C(m, c) / C(n + m, c)``: the chance that the ``c`` largest of
    the ``n + m`` values all belong to the window.
    """
    c, m, a_, n = np.broadcast_arrays(
        *(np.asarray(x, dtype=np.int64) for x in (count, n_window, a, n_reference))
    )
    out = np.ones(c.shape, dtype=np.float64)
    tail = (c >= 1) & (c <= m)
    out[c > m] = 0.0
    if not tail.any():
        return out
    ct, mt, at, nt = (x[tail].astype(np.float64) for x in (c, m, a_, n))
    i = np.arange(int(at.max()), dtype=np.float64)[None, :]
    ct, mt, at, nt = ct[:, None], mt[:, None], at[:, None], nt[:, None]
    log_choose = special.gammaln(nt + 1) - special.gammaln(i + 1) - special.gammaln(np.maximum(nt - i, 0) + 1)
    terms = log_choose + special.betaln(ct + i, mt - ct + 1 + nt - i) - special.betaln(ct, mt - ct + 1)
    terms = np.where(i < at, terms, -np.inf)
    out[tail] = np.exp(special.logsumexp(terms, axis=1))
    return _clip(out)


def poisson_pvalue(count: int, mean: float, direction: str) -> float:
    """One-sided Poisson p-value: ``P(X >= count)`` for ``"spike"``, ``P(X <= count)`` for ``"drop"``.

    ``mean = 0`` is a point mass at 0: any event is then infinitely unlikely (p = 0) and none is certain.
    """
    if direction == "spike":
        return float(np.clip(stats.poisson.sf(count - 1, mean), 0.0, 1.0)) if mean > 0 else float(count <= 0)
    if direction == "drop":
        return float(np.clip(stats.poisson.cdf(count, mean), 0.0, 1.0)) if mean > 0 else 1.0
    raise ValueError(f"direction must be 'spike' or 'drop', got {direction!r}")


def conditional_poisson_pvalue(
    count: int, duration: float, baseline_count: float, baseline_duration: float, direction: str
) -> float:
    """One-sided exact conditional test of two Poisson rates: ``count`` events in ``duration`` against
    ``baseline_count`` events in ``baseline_duration`` (the history).

    Given the total, the window's share of the events is ``Binomial(count + baseline_count, q)`` with
    ``q = duration / (duration + baseline_duration)`` when both rates are equal; ``"spike"`` gives
    ``P(X >= count)``, ``"drop"`` ``P(X <= count)``, through the regularised incomplete beta function so that
    ``baseline_count`` need not be an integer (it is the median rate times the history's duration). Equal to
    ``scipy.stats.binomtest`` and to statsmodels' ``test_poisson_2indep(method="exact-cond")`` for integer
    counts. Unlike a Poisson test against a known mean, it carries the baseline's own noise: with a history
    of twelve windows it is the right test when counts per window are small.
    """
    if baseline_count <= 0 or baseline_duration <= 0 or duration <= 0:
        raise ValueError("the conditional test needs a positive baseline count and durations")
    q = duration / (duration + baseline_duration)
    if direction == "spike":
        return float(np.clip(special.betainc(count, baseline_count + 1.0, q), 0.0, 1.0)) if count > 0 else 1.0
    if direction == "drop":
        return float(np.clip(special.betainc(baseline_count, count + 1.0, 1.0 - q), 0.0, 1.0))
    raise ValueError(f"direction must be 'spike' or 'drop', got {direction!r}")
