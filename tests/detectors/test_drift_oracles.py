"""Oracle tests: the binned statistics against scipy and Evidently on the same data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from evidently.legacy.calculations.stattests.chisquare_stattest import _chi_stat_test
from evidently.legacy.calculations.stattests.hellinger_distance import _hellinger_distance
from evidently.legacy.calculations.stattests.psi import _psi
from evidently.legacy.core import ColumnType
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.spatial import distance

from detectors.drift import (
    FeatureDriftConfig,
    WindowSketch,
    benjamini_hochberg,
    bonferroni,
    build_profile,
    chi2_two_sample,
    evaluate_drift,
    hellinger,
    jensenshannon,
    ks_binned,
    psi,
)
from detectors.drift.profile import NumericProfile

counts_pair = st.integers(2, 12).flatmap(
    lambda k: st.tuples(
        st.lists(st.integers(0, 400), min_size=k, max_size=k).filter(lambda c: sum(c) > 0),
        st.lists(st.integers(0, 400), min_size=k, max_size=k).filter(lambda c: sum(c) > 0),
    )
)


def _labels(counts: list[int]) -> pd.Series:
    return pd.Series(np.repeat(np.arange(len(counts)), counts))


# --- chi-square -----------------------------------------------------------------------------------------


@given(counts_pair)
def test_chi2_equals_scipy_chi2_contingency(pair: tuple[list[int], list[int]]) -> None:
    ref, win = np.array(pair[0]), np.array(pair[1])
    ours = chi2_two_sample(ref, win)
    table = np.vstack([ref, win])
    table = table[:, table.sum(axis=0) > 0]
    expected = stats.chi2_contingency(table, correction=False)
    assert ours.statistic == pytest.approx(expected.statistic, rel=1e-9, abs=1e-9)
    assert ours.p_value == pytest.approx(expected.pvalue, abs=1e-9)
    assert ours.dof == expected.dof


def test_two_sample_chi2_does_not_over_alarm_like_evidently_goodness_of_fit() -> None:
    """Same data, no drift, small reference: Evidently's chisquare (reference proportions taken as exact)
    rejects far more often than its 5% level; the two-sample test stays near 5%."""
    rng = np.random.default_rng(7)
    cats = np.array(["a", "b", "c", "d"], dtype=object)
    p = [0.4, 0.3, 0.2, 0.1]
    ours = theirs = 0
    reps = 100
    for _ in range(reps):
        ref = rng.choice(cats, p=p, size=500)
        win = rng.choice(cats, p=p, size=5000)
        p_theirs, _ = _chi_stat_test(pd.Series(ref), pd.Series(win), ColumnType.Categorical, 0.05)
        theirs += p_theirs < 0.05
        ref_counts = [(ref == c).sum() for c in cats]
        win_counts = [(win == c).sum() for c in cats]
        ours += chi2_two_sample(ref_counts, win_counts).p_value < 0.05
    assert theirs >= 40
    assert ours <= 12


# --- KS -------------------------------------------------------------------------------------------------

_INT_REF = np.random.default_rng(11).integers(0, 30, size=3000).astype(np.float64)
_INT_PROFILE = build_profile({"x": _INT_REF})


def test_integer_reference_edges_separate_every_value() -> None:
    fp = _INT_PROFILE.features["x"]
    assert isinstance(fp, NumericProfile)
    bins = np.searchsorted(fp.fine_edges, np.arange(30.0), side="right")
    assert len(np.unique(bins)) == 30


@settings(max_examples=60, deadline=None)
@given(
    weights=st.lists(st.integers(0, 20), min_size=30, max_size=30).filter(lambda w: sum(w) > 0),
    size=st.integers(1, 4000),
    seed=st.integers(0, 2**32 - 1),
)
def test_ks_on_few_distinct_values_equals_scipy(weights: list[int], size: int, seed: int) -> None:
    w = np.array(weights, dtype=np.float64)
    window = np.random.default_rng(seed).choice(30, p=w / w.sum(), size=size).astype(np.float64)
    fp = _INT_PROFILE.features["x"]
    assert isinstance(fp, NumericProfile)
    ours = ks_binned(fp.ref_counts, fp.bin_counts(window))
    exact = stats.ks_2samp(_INT_REF, window, method="asymp")
    assert ours.statistic == exact.statistic
    assert ours.p_value == pytest.approx(exact.pvalue, abs=1e-9)


@given(st.lists(st.integers(0, 29), min_size=1, max_size=300))
def test_ks_on_small_integer_windows_equals_scipy(values: list[int]) -> None:
    window = np.array(values, dtype=np.float64)
    fp = _INT_PROFILE.features["x"]
    assert isinstance(fp, NumericProfile)
    ours = ks_binned(fp.ref_counts, fp.bin_counts(window))
    exact = stats.ks_2samp(_INT_REF, window, method="asymp")
    assert ours.statistic == exact.statistic
    assert ours.p_value == pytest.approx(exact.pvalue, abs=1e-9)


def test_ks_on_continuous_data_is_close_to_exact_and_never_above() -> None:
    """Binned D can only miss the maximum inside a fine bin, so ``0 <= D_exact - D_binned <= max bin mass``
    on either side. Measured over 360 seeded cases (reference 1k-20k, window 200-5k; no shift, shifts up to
    0.9 sd, scale changes, an exponential window), with 100 fine bins: max gap 0.010, mean 0.002-0.004."""
    rng = np.random.default_rng(5)
    worst = 0.0
    for n_ref in (1000, 5000, 20000):
        for n_win in (200, 1000, 5000):
            for case in range(4):
                ref = rng.normal(size=n_ref)
                window = [
                    rng.normal(size=n_win),
                    rng.normal(0.9 * rng.random(), size=n_win),
                    rng.normal(0.0, 1.0 + rng.random(), size=n_win),
                    rng.exponential(size=n_win),
                ][case]
                fp = build_profile({"x": ref}).features["x"]
                assert isinstance(fp, NumericProfile)
                win_counts = fp.bin_counts(window)
                gap = stats.ks_2samp(ref, window).statistic - ks_binned(fp.ref_counts, win_counts).statistic
                bound = max((fp.ref_counts / n_ref).max(), (win_counts / n_win).max())
                assert -1e-12 <= gap <= bound + 1e-12
                worst = max(worst, gap)
    assert worst <= 0.02


# --- PSI, Jensen-Shannon, Hellinger ----------------------------------------------------------------------


@given(counts_pair)
def test_psi_equals_evidently_on_the_same_bins(pair: tuple[list[int], list[int]]) -> None:
    ref, win = pair
    theirs, _ = _psi(_labels(ref), _labels(win), ColumnType.Categorical, 0.1)
    assert psi(ref, win) == pytest.approx(theirs, rel=1e-9, abs=1e-12)


def test_psi_smoothing_below_evidently_epsilon_matches() -> None:
    """A non-zero proportion under 0.0001 switches Evidently's smoothing to min / 1e6."""
    ref = [5000, 5000, 5000, 5000]
    win = [0, 1, 14999, 5000]
    theirs, _ = _psi(_labels(ref), _labels(win), ColumnType.Categorical, 0.1)
    assert psi(ref, win) == pytest.approx(theirs, rel=1e-12)


@pytest.mark.parametrize("shift", [0.0, 0.3, 1.0, 4.0])
def test_numeric_psi_equals_evidently_on_coarse_bin_labels(shift: float) -> None:
    """Evidently's own numeric binning differs (Sturges on both samples), so we hand it our coarse bins as
    category labels, which its categorical branch bins one-to-one."""
    rng = np.random.default_rng(3)
    ref, window = rng.normal(size=5000), rng.normal(shift, size=2000)
    profile = build_profile({"x": ref})
    fp = profile.features["x"]
    assert isinstance(fp, NumericProfile)

    def coarse(values: np.ndarray) -> pd.Series:
        return pd.Series(fp.coarse_of_fine[np.searchsorted(fp.fine_edges, values, side="right")])

    theirs, _ = _psi(coarse(ref), coarse(window), ColumnType.Categorical, 0.1)
    sketch = WindowSketch.empty(profile).update({"x": window})
    result = evaluate_drift(profile, sketch, FeatureDriftConfig())
    assert result.score("x").effect_value == pytest.approx(theirs, rel=1e-9, abs=1e-12)


def test_categorical_psi_and_hellinger_equal_evidently_on_raw_categories() -> None:
    rng = np.random.default_rng(4)
    ref = rng.choice(np.array(["a", "b", "c", "d"], dtype=object), p=[0.4, 0.3, 0.2, 0.1], size=5000)
    window = rng.choice(np.array(["a", "b", "c", "new"], dtype=object), p=[0.3, 0.3, 0.3, 0.1], size=3000)
    profile = build_profile({"c": ref})
    score = evaluate_drift(profile, WindowSketch.empty(profile).update({"c": window}), FeatureDriftConfig())
    score_c = score.score("c")
    psi_theirs, _ = _psi(pd.Series(ref), pd.Series(window), ColumnType.Categorical, 0.1)
    hel_theirs, _ = _hellinger_distance(pd.Series(ref), pd.Series(window), ColumnType.Categorical, 0.1)
    assert score_c.effect_value == pytest.approx(psi_theirs, rel=1e-9)
    assert score_c.extra["hellinger"] == pytest.approx(hel_theirs, rel=1e-9)
    assert score_c.extra["unseen_categories"] == {"new": int((window == "new").sum())}


@given(counts_pair)
def test_jensenshannon_equals_scipy(pair: tuple[list[int], list[int]]) -> None:
    ref, win = np.array(pair[0], dtype=float), np.array(pair[1], dtype=float)
    expected = distance.jensenshannon(ref / ref.sum(), win / win.sum())
    assert jensenshannon(ref, win) == pytest.approx(expected, rel=1e-9, abs=1e-7)


@given(counts_pair)
def test_hellinger_is_a_bounded_distance(pair: tuple[list[int], list[int]]) -> None:
    ref, win = pair
    h = hellinger(ref, win)
    assert 0.0 <= h <= 1.0
    assert hellinger(ref, ref) == pytest.approx(0.0, abs=1e-7)


# --- corrections ----------------------------------------------------------------------------------------

p_values = st.lists(st.floats(0.0, 1.0), min_size=1, max_size=60)


@given(p_values)
def test_bh_equals_scipy_false_discovery_control(ps: list[float]) -> None:
    expected = stats.false_discovery_control(ps, method="bh")
    np.testing.assert_allclose(benjamini_hochberg(ps), expected, rtol=1e-12, atol=1e-15)


@given(p_values)
def test_bonferroni_multiplies_by_the_family_size_and_caps_at_one(ps: list[float]) -> None:
    np.testing.assert_allclose(bonferroni(ps), np.minimum(np.array(ps) * len(ps), 1.0))
