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
``fisher_pvalues`` and ``range_pvalues`` are the forms ``evaluate_quality_many`` calls (once per batch of
windows; the beta-binomial rows grouped by width, see ``range_pvalues``): lists in,
lists out, equal bit for bit to the array functions, but without calling scipy for the tests whose answer
is certain (no missing value in the window, no value out of range) and, for Fisher's test and the binomial
one, remembering the p-values of counts seen before (both are elementwise, so a p-value depends on its own
counts only; Fisher's costs ~45 us per feature at 10,000 reference rows, and a sliding window sees the
same counts again and again).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

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
    out[tail] = _betabinom_tail(*(x[tail].astype(np.float64) for x in (c, m, a_, n)))
    return _clip(out)


def _betabinom_tail(c: FloatArray, m: FloatArray, a: FloatArray, n: FloatArray) -> FloatArray:
    """``betabinom_sf`` (before clipping) of rows with ``1 <= c <= m``, as 1-d float arrays; each row's sum
    runs over ``i < a``, padded with -inf to the largest ``a``."""
    i = np.arange(int(a.max()), dtype=np.float64)[None, :]
    ct, mt, at, nt = c[:, None], m[:, None], a[:, None], n[:, None]
    log_choose = special.gammaln(nt + 1) - special.gammaln(i + 1) - special.gammaln(np.maximum(nt - i, 0) + 1)
    terms = log_choose + special.betaln(ct + i, mt - ct + 1 + nt - i) - special.betaln(ct, mt - ct + 1)
    terms = np.where(i < at, terms, -np.inf)
    out: FloatArray = np.exp(_logsumexp_rows(terms))
    return out


def _logsumexp_rows(a: FloatArray) -> FloatArray:
    """``scipy.special.logsumexp(a, axis=1)`` of a 2-d float array, bit for bit, without its array-API
    overhead (~100 us a call, as much as the rest of ``betabinom_sf``).

    scipy (1.17) takes each row's maximum out of the sum: ``log1p(s / m) + log(m) + max`` with ``m`` the
    number of entries equal to the maximum and ``s`` the sum of ``exp(x - max)`` over the others; these are
    the same operations in the same order. Where the maximum is finite, ``s >= 0`` and ``m >= 1``, scipy's
    other branches (``s == 0``, negative signs, infinite results) change nothing; a result that is not
    finite (a row without a finite maximum, an overflow) goes to scipy itself. Checked against scipy in
    ``tests/detectors/test_quality_fast.py``.
    """
    if a.ndim != 2 or a.shape[1] == 0 or a.dtype != np.float64:
        return np.asarray(special.logsumexp(a, axis=1), dtype=np.float64)
    with np.errstate(all="ignore"):
        a_max = np.max(a, axis=1, keepdims=True)
        i_max = a == a_max
        m = np.sum(i_max, axis=1, keepdims=True, dtype=np.float64)
        s = np.sum(np.exp(np.where(i_max, -np.inf, a) - a_max), axis=1, keepdims=True, dtype=np.float64)
        out = np.log1p(s / m) + np.log(m) + a_max
    if not np.isfinite(out).all():
        return np.asarray(special.logsumexp(a, axis=1), dtype=np.float64)
    result: FloatArray = out[:, 0]
    return result


def poisson_pvalue(count: int, mean: float, direction: str) -> float:
    """One-sided Poisson p-value: ``P(X >= count)`` for ``"spike"``, ``P(X <= count)`` for ``"drop"``.

    ``mean = 0`` is a point mass at 0: any event is then infinitely unlikely (p = 0) and none is certain.
    """
    if direction == "spike":
        return float(np.clip(stats.poisson.sf(count - 1, mean), 0.0, 1.0)) if mean > 0 else float(count <= 0)
    if direction == "drop":
        return float(np.clip(stats.poisson.cdf(count, mean), 0.0, 1.0)) if mean > 0 else 1.0
    raise ValueError(f"direction must be 'spike' or 'drop', got {direction!r}")


def _unit(p: float) -> float:
    """``float(np.clip(p, 0.0, 1.0))`` for one value (NaN stays NaN), without numpy's ~3 us per call: the
    volume test runs once per closed window and pane."""
    v = float(p)
    return 0.0 if v < 0.0 else min(v, 1.0)


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
        return _unit(special.betainc(count, baseline_count + 1.0, q)) if count > 0 else 1.0
    if direction == "drop":
        return _unit(special.betainc(baseline_count, count + 1.0, 1.0 - q))
    raise ValueError(f"direction must be 'spike' or 'drop', got {direction!r}")


# --- per-window forms: lists of counts in, lists of Python floats out --------------------------------------

_MEMO_SIZE = 16_384  # entries per test; ~2 MB at most
_Memo = dict[tuple[int, ...], float]
_fisher_memo: _Memo = {}  # (x_window, n_window, x_reference, n_reference)
_binomial_memo: _Memo = {}  # (count, n_window, n_reference, outside_reference, 0)
_betabinomial_memo: _Memo = {}  # (count, n_window, n_reference, outside_reference, width)
_memo_lock = threading.Lock()


def clear_caches() -> None:
    """Forget the remembered p-values (for benchmarks and tests; results never depend on them)."""
    with _memo_lock:
        _fisher_memo.clear()
        _binomial_memo.clear()
        _betabinomial_memo.clear()


def _remember(memo: _Memo, keys: Sequence[tuple[int, ...]], ps: Sequence[float]) -> None:
    with _memo_lock:
        if len(memo) + len(keys) > _MEMO_SIZE:
            memo.clear()
        memo.update(zip(keys, ps, strict=True))


def _as_key(args: Sequence[int]) -> tuple[int, int, int, int] | None:
    """The four counts as plain ints, or None when one is not an integer (then no shortcut applies)."""
    if len(args) != 4:
        return None
    a, b, c, d = args
    if type(a) is int and type(b) is int and type(c) is int and type(d) is int:
        return a, b, c, d
    if all(isinstance(x, (int, np.integer)) for x in args):
        return int(a), int(b), int(c), int(d)
    return None


def fisher_pvalues(args: Sequence[Sequence[int]]) -> list[float]:
    """``fisher_greater(*np.array(args, dtype=np.int64).T).tolist()`` for ``(x_window, n_window,
    x_reference, n_reference)`` per test (counts that fit in int64, as a sketch's do), bit for bit.

    With both margins valid (``0 <= x <= n``, ``n_window + n_reference > 0``), no missing value in the
    window (``x_window = 0``) or none outside it in the reference (``x_reference = n_reference``) puts the
    window's count at or below the least it can be: ``hypergeom.sf`` returns exactly 1 there without
    computing. The others are looked up, then computed in one call.
    """
    out = [1.0] * len(args)
    todo: list[int] = []
    keys: list[tuple[int, int, int, int] | None] = []
    for i, row in enumerate(args):
        key = _as_key(row)
        keys.append(key)
        if key is None:
            todo.append(i)
            continue
        xw, nw, xr, nr = key
        if 0 <= xw <= nw and 0 <= xr <= nr and nw + nr > 0 and (xw == 0 or xr == nr):
            continue
        p = _fisher_memo.get(key)
        if p is None:
            todo.append(i)
        else:
            out[i] = p
    if todo:
        ps = [float(p) for p in fisher_greater(*np.array([args[i] for i in todo], dtype=np.int64).T).tolist()]
        remembered: list[tuple[int, ...]] = []
        values: list[float] = []
        for i, p in zip(todo, ps, strict=True):
            out[i] = p
            if (key := keys[i]) is not None:
                remembered.append(key)
                values.append(p)
        _remember(_fisher_memo, remembered, values)
    return out


def range_pvalues(args: Sequence[Sequence[int]], test: str = "betabinomial") -> list[float]:
    """``outside_range_pvalue(*np.array(args, dtype=np.int64).T, test=test).tolist()`` for ``(count,
    n_window, n_reference, outside_reference)`` per test (counts that fit in int64, as a sketch's do), bit
    for bit.

    A count of 0 (with ``n_window >= 0``) is certain under both tests: p = 1 without computing. The others
    are remembered. The binomial test is elementwise. ``betabinom_sf`` sums each row over ``i < a`` padded
    to the largest ``a`` of the rows it computes (those with a count between 1 and ``n_window``), and the
    padding's length can move the sum's rounding: its p-values are remembered under that width too, and
    computed, when one is new, in one call with all of those rows, in their order, exactly as the array
    function would.
    """
    if test not in RANGE_TESTS:
        raise ValueError(f"unknown range test {test!r}; expected one of {RANGE_TESTS}")
    out = [1.0] * len(args)
    binomial = test == "binomial"
    keys: list[tuple[int, int, int, int] | None] = []
    rest: list[int] = []  # rows with a test to compute
    for i, row in enumerate(args):
        key = _as_key(row)
        keys.append(key)
        if key is not None:
            c, m, n, k = key
            if c == 0 and m >= 0 and (not binomial or (n >= 0 and 0 <= k <= n + 1)):
                continue
        rest.append(i)
    if not rest:
        return out
    known = [key for i in rest if (key := keys[i]) is not None]
    if len(known) < len(rest):  # counts that are not integers: no shortcut
        c, m, n, k = np.array([args[i] for i in rest], dtype=np.int64).T
        ps = outside_range_pvalue(c, m, n, k, test=test).tolist()
        for i, p in zip(rest, ps, strict=True):
            out[i] = float(p)
        return out

    if binomial:
        memo, width = _binomial_memo, 0
    else:  # how far betabinom_sf sums: the largest a of the rows it computes
        memo = _betabinomial_memo
        width = max((k for c, m, _, k in known if 1 <= c <= m), default=0)
    found = [memo.get((*key, width)) for key in known]
    for i, p in zip(rest, found, strict=True):
        if p is not None:
            out[i] = p
    if None not in found:
        return out
    if binomial:  # elementwise: only the new ones
        todo = [(i, key) for i, key, p in zip(rest, known, found, strict=True) if p is None]
    else:  # every row in one call, so that each is summed to the same width
        todo = list(zip(rest, known, strict=True))
    if not binomial and all(1 <= c <= m for _, (c, m, _, _) in todo):
        # every row is one betabinom_sf computes: the same values, as floats, without its masks
        c, m, n, k = np.array([key for _, key in todo], dtype=np.float64).T
        ps = _clip(_betabinom_tail(c, m, k, n)).tolist()
    else:
        c, m, n, k = np.array([key for _, key in todo], dtype=np.int64).T
        ps = outside_range_pvalue(c, m, n, k, test=test).tolist()
    for (i, _), p in zip(todo, ps, strict=True):
        out[i] = float(p)
    _remember(memo, [(*key, width) for _, key in todo], [float(p) for p in ps])
    return out
