"""Oracles for the quality tests: scipy's Fisher and binomial tests, statsmodels' exact Poisson test, and the
beta-binomial against exact counting of rank arrangements and exact rational arithmetic."""

from __future__ import annotations

from fractions import Fraction
from itertools import combinations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from statsmodels.stats import rates

from detectors.quality.stats import (
    betabinom_sf,
    conditional_poisson_pvalue,
    fisher_greater,
    outside_expected,
    outside_range_pvalue,
    poisson_pvalue,
)

REL = 1e-9  # relative tolerance against scipy / statsmodels (same double-precision special functions)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 5000),
    st.integers(1, 50_000),
    st.floats(0.0, 1.0),
    st.floats(0.0, 1.0),
)
def test_fisher_greater_equals_scipy_fisher_exact(n_win: int, n_ref: int, a: float, b: float) -> None:
    x_win, x_ref = round(a * n_win), round(b * n_ref)
    table = [[x_win, n_win - x_win], [x_ref, n_ref - x_ref]]
    expected = stats.fisher_exact(table, alternative="greater").pvalue
    assert float(fisher_greater(x_win, n_win, x_ref, n_ref)) == pytest.approx(expected, rel=REL, abs=1e-300)


def test_fisher_greater_is_vectorised_and_near_the_z_test_at_large_counts() -> None:
    from statsmodels.stats.proportion import proportions_ztest

    xw, nw = np.array([20, 40, 60]), np.array([1000, 1000, 1000])
    xr, nr = np.array([400, 400, 400]), np.array([20_000, 20_000, 20_000])
    p = fisher_greater(xw, nw, xr, nr)
    for i in range(3):
        assert p[i] == pytest.approx(
            stats.fisher_exact(
                [[xw[i], nw[i] - xw[i]], [xr[i], nr[i] - xr[i]]], alternative="greater"
            ).pvalue,
            rel=REL,
        )
        # the pooled one-sided z-test is its large-sample approximation (anti-conservative in the far tail,
        # 8e-6 against Fisher's 7e-5 at 60 of 1,000): the same verdicts at the usual levels
        _, pz = proportions_ztest([xw[i], xr[i]], [nw[i], nr[i]], alternative="larger")
        for level in (0.05, 0.005):
            assert (p[i] < level) == (pz < level)


def _outside_by_enumeration(n: int, m: int, c: int) -> Fraction:
    """P(at least c of the m window values fall outside the reference's [min, max]) when the n + m values
    are exchangeable and distinct: every choice of the window's m ranks among n + m is equally likely."""
    hits = total = 0
    for window_ranks in combinations(range(n + m), m):
        ranks = set(window_ranks)
        ref = [r for r in range(n + m) if r not in ranks]
        lo, hi = ref[0], ref[-1]
        outside = sum(1 for r in window_ranks if r < lo or r > hi)
        hits += outside >= c
        total += 1
    return Fraction(hits, total)


@pytest.mark.parametrize(("n", "m"), [(2, 3), (3, 5), (5, 6), (8, 4), (4, 9)])
def test_betabinomial_range_test_is_the_exact_rank_null(n: int, m: int) -> None:
    for c in range(m + 2):
        exact = _outside_by_enumeration(n, m, c) if c <= m else Fraction(0)
        got = float(outside_range_pvalue(c, m, n, 2, "betabinomial"))
        assert got == pytest.approx(float(exact), rel=1e-12, abs=1e-15)
    # its mean is the order-statistics expectation 2 / (n + 1)
    mean = sum(float(_outside_by_enumeration(n, m, c)) for c in range(1, m + 1))
    assert mean / m == pytest.approx(float(outside_expected(n)), rel=1e-12)


def _betabinom_tail(c: int, m: int, a: int, b: int) -> Fraction:
    """``P(K >= c)`` in exact rationals: ``pmf(0) = prod_{j<a} (b + j) / (m + b + j)`` for integer ``a``,
    then ``pmf(k + 1) / pmf(k) = (m - k)(k + a) / ((k + 1)(m - k - 1 + b))``."""
    pmf = Fraction(1)
    for j in range(a):
        pmf *= Fraction(b + j, m + b + j)
    below = Fraction(0)
    for k in range(c):
        below += pmf
        pmf *= Fraction((m - k) * (k + a), (k + 1) * (m - k - 1 + b))
    return 1 - below


@pytest.mark.parametrize(
    ("c", "m", "a", "n"),
    [(36, 553, 1, 286), (34, 506, 4, 286), (3, 1000, 2, 20_000), (12, 1000, 2, 20_000), (1, 1, 1, 2),
     (40, 100, 7, 120), (0, 10, 2, 10), (10, 10, 2, 10)],
)  # fmt: skip
def test_betabinom_sf_against_exact_rationals(c: int, m: int, a: int, n: int) -> None:
    exact = _betabinom_tail(c, m, a, n + 1 - a)
    assert float(betabinom_sf(c, m, a, n)) == pytest.approx(float(exact), rel=1e-10, abs=1e-300)
    assert float(betabinom_sf(m + 1, m, a, n)) == 0.0


def test_betabinom_sf_matches_scipy_where_scipy_is_accurate() -> None:
    """scipy's ``betabinom.sf`` is ``1 - cdf`` (relative error ~1e-7 near 1e-7, 0 below ~1e-16); ours stays
    exact in the tail, so they are compared where scipy's value is large."""
    rng = np.random.default_rng(7)
    n = rng.integers(2, 400, size=300)
    m = rng.integers(1, 3000, size=300)
    a = np.minimum(rng.integers(1, 8, size=300), n)
    c = np.minimum(rng.integers(0, 30, size=300), m)
    ours = betabinom_sf(c, m, a, n)
    theirs = stats.betabinom.sf(c - 1, m, a, n + 1 - a)
    big = theirs > 1e-4
    assert big.sum() > 100
    np.testing.assert_allclose(ours[big], theirs[big], rtol=1e-6)
    # far in the tail scipy gives 0, ours a positive p-value
    assert float(betabinom_sf(30, 1000, 2, 20_000)) > 0.0 == stats.betabinom.sf(29, 1000, 2, 19_999)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 200), st.integers(1, 5000), st.integers(2, 100_000), st.integers(1, 20))
def test_binomial_range_test_equals_scipy_binomtest(count: int, m: int, n: int, k: int) -> None:
    count = min(count, m)
    k = min(k, n)
    expected = stats.binomtest(count, m, k / (n + 1), alternative="greater").pvalue
    got = float(outside_range_pvalue(count, m, n, k, "binomial"))
    assert got == pytest.approx(expected, rel=REL, abs=1e-300)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 500), st.integers(2, 5000), st.integers(1, 5))
def test_range_p_values_fall_with_the_count(m: int, n: int, k: int) -> None:
    k = min(k, n)
    counts = np.arange(m + 1)
    for test in ("betabinomial", "binomial"):
        p = outside_range_pvalue(counts, np.full(m + 1, m), np.full(m + 1, n), np.full(m + 1, k), test)
        assert p[0] == 1.0
        assert np.all(np.diff(p) <= 1e-12) and np.all((p >= 0) & (p <= 1))


def test_the_betabinomial_is_wider_than_the_binomial_in_the_upper_tail() -> None:
    """It carries the reference's own randomness: for a small reference and a large window the binomial
    calls "significant" counts the exact null finds ordinary."""
    m, n = 10_000, 500
    mean = m * 2 / (n + 1)  # ~40 values outside
    c = int(mean * 2)
    assert float(outside_range_pvalue(c, m, n, 2, "binomial")) < 1e-6
    assert float(outside_range_pvalue(c, m, n, 2, "betabinomial")) > 0.1


@pytest.mark.parametrize("mean", [0.5, 4.0, 25.0, 1000.0, 123_456.0])
def test_poisson_pvalue_equals_statsmodels_exact_test(mean: float) -> None:
    for count in {0, 1, int(mean / 3), int(mean), int(mean * 3) + 1, int(mean + 5 * mean**0.5) + 1}:
        up = rates.test_poisson(count, 1, mean, method="exact-c", alternative="larger").pvalue
        down = rates.test_poisson(count, 1, mean, method="exact-c", alternative="smaller").pvalue
        assert poisson_pvalue(count, mean, "spike") == pytest.approx(min(up, 1.0), rel=REL, abs=1e-300)
        assert poisson_pvalue(count, mean, "drop") == pytest.approx(min(down, 1.0), rel=REL, abs=1e-300)
        assert poisson_pvalue(count, mean, "spike") == pytest.approx(
            stats.poisson.sf(count - 1, mean), rel=REL
        )


def test_poisson_pvalue_at_mean_zero_and_bad_direction() -> None:
    assert poisson_pvalue(0, 0.0, "spike") == 1.0
    assert poisson_pvalue(3, 0.0, "spike") == 0.0
    assert poisson_pvalue(0, 0.0, "drop") == 1.0
    with pytest.raises(ValueError, match="direction"):
        poisson_pvalue(1, 1.0, "up")
    with pytest.raises(ValueError, match="range test"):
        outside_range_pvalue(1, 10, 10, 2, "normal")


@settings(max_examples=150, deadline=None)
@given(
    st.integers(0, 3000),
    st.floats(1.0, 3600.0),
    st.integers(1, 30_000),
    st.integers(1, 24),
)
def test_conditional_poisson_equals_statsmodels_exact_conditional_test(
    count: int, duration: float, history_count: int, windows: int
) -> None:
    history_duration = duration * windows
    for direction, alternative in (("spike", "larger"), ("drop", "smaller")):
        expected = rates.test_poisson_2indep(
            count, duration, history_count, history_duration, method="exact-cond", alternative=alternative
        ).pvalue
        got = conditional_poisson_pvalue(count, duration, history_count, history_duration, direction)
        assert got == pytest.approx(min(expected, 1.0), rel=1e-7, abs=1e-300)
        side = "greater" if direction == "spike" else "less"
        q = duration / (duration + history_duration)
        assert got == pytest.approx(
            stats.binomtest(count, count + history_count, q, alternative=side).pvalue, rel=1e-7, abs=1e-300
        )


def test_conditional_poisson_takes_a_fractional_baseline_count_and_tends_to_the_poisson_test() -> None:
    p_low = conditional_poisson_pvalue(10, 60.0, 36.0, 720.0, "spike")
    p_mid = conditional_poisson_pvalue(10, 60.0, 36.5, 720.0, "spike")
    p_high = conditional_poisson_pvalue(10, 60.0, 37.0, 720.0, "spike")
    assert p_low < p_mid < p_high  # a larger baseline makes 10 events less surprising
    # with a history a thousand times the window, the baseline is as good as known: the Poisson test
    long = conditional_poisson_pvalue(12, 1.0, 3000.0 * 1000, 1000.0 * 1000, "spike")
    assert long == pytest.approx(poisson_pvalue(12, 3.0, "spike"), rel=1e-3)
    with pytest.raises(ValueError, match="positive baseline"):
        conditional_poisson_pvalue(1, 1.0, 0.0, 10.0, "spike")
