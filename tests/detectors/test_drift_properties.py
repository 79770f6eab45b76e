"""Invariants of the drift detector, checked with hypothesis."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.base import Status
from detectors.drift import FeatureDriftConfig, WindowSketch, build_profile, evaluate_drift, ks_statistic, psi
from detectors.drift.profile import NumericProfile

CATS = np.array(["red", "green", "blue", "teal", None], dtype=object)
FLOAT_MOMENTS = ("reference_mean", "reference_std", "window_mean", "window_std")


def _columns(rng: np.random.Generator, n: int, shift: float = 0.0) -> dict[str, np.ndarray]:
    x = rng.normal(shift, 1.0, size=n)
    x[rng.random(n) < 0.05] = np.nan
    return {
        "x": x,
        "k": rng.integers(0, 6, size=n).astype(np.float64),
        "c": rng.choice(CATS, p=[0.4, 0.3, 0.15, 0.1, 0.05], size=n),
    }


def _without_moments(score: dict[str, Any]) -> dict[str, Any]:
    extra = {k: v for k, v in score["extra"].items() if k not in FLOAT_MOMENTS}
    return {**score, "extra": extra}


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(100, 3000), shift=st.floats(0.0, 1.0))
def test_shuffling_window_rows_never_changes_a_score(seed: int, n: int, shift: float) -> None:
    rng = np.random.default_rng(seed)
    profile = build_profile(_columns(rng, 2000))
    window = _columns(rng, n, shift)
    order = rng.permutation(n)
    shuffled = {name: col[order] for name, col in window.items()}
    config = FeatureDriftConfig()
    a = evaluate_drift(profile, WindowSketch.empty(profile).update(window), config).to_dict()
    b = evaluate_drift(profile, WindowSketch.empty(profile).update(shuffled), config).to_dict()
    # window mean and std come from float sums, whose last bits follow the row order
    for sa, sb in zip(a.pop("scores"), b.pop("scores"), strict=True):
        assert _without_moments(sa) == _without_moments(sb)
        for key in FLOAT_MOMENTS:
            if key in sa["extra"]:
                assert sa["extra"][key] == pytest.approx(sb["extra"][key], rel=1e-9, abs=1e-12)
    assert a == b


numeric_values = st.one_of(
    st.floats(min_value=-1e6, max_value=1e6),
    st.sampled_from([0.0, 1.0, 2.0, np.nan]),
)
category_values = st.sampled_from(["a", "b", "c", "true", "false", None])


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(st.tuples(numeric_values, category_values), min_size=1, max_size=400),
    min_rows=st.integers(1, 50),
)
def test_a_window_identical_to_the_reference_never_alerts(
    rows: list[tuple[float, str | None]], min_rows: int
) -> None:
    columns = {
        "x": np.array([r[0] for r in rows], dtype=np.float64),
        "c": np.array([r[1] for r in rows], dtype=object),
    }
    profile = build_profile(columns)
    config = FeatureDriftConfig(min_window_rows=min_rows, min_reference_rows=min_rows)
    result = evaluate_drift(profile, WindowSketch.empty(profile).update(columns), config)
    assert result.status != Status.DRIFT
    for score in result.scores:
        assert not score.drifted
        if score.status == Status.OK:
            assert score.statistic == 0.0
            assert score.effect_value == 0.0
            assert score.p_value == 1.0


_SAMPLE = np.random.default_rng(2024).normal(size=5000)
_PROFILE = build_profile({"x": _SAMPLE})


def _shifted_scores(shift: float) -> tuple[float, float]:
    fp = _PROFILE.features["x"]
    assert isinstance(fp, NumericProfile)
    counts = fp.bin_counts(_SAMPLE + shift)
    return ks_statistic(fp.ref_counts, counts), psi(fp.coarsen(fp.ref_counts), fp.coarsen(counts))


@settings(max_examples=80, deadline=None)
@given(small=st.floats(0.0, 3.0), extra=st.floats(0.0, 3.0), direction=st.sampled_from([1.0, -1.0]))
def test_a_larger_mean_shift_never_lowers_ks(small: float, extra: float, direction: float) -> None:
    """Exact for any shifts: shifting the reference sample right lowers its CDF at every edge."""
    assert _shifted_scores(direction * (small + extra))[0] >= _shifted_scores(direction * small)[0]


@settings(max_examples=80, deadline=None)
@given(small=st.floats(0.0, 1.5), extra=st.floats(0.05, 0.5), direction=st.sampled_from([1.0, -1.0]))
def test_a_larger_mean_shift_never_lowers_psi(small: float, extra: float, direction: float) -> None:
    """PSI of a shifted sample is monotone at the resolution of 0.05 sd, not point by point: a single
    value crossing into a sparse bin can lower it. Measured over 30 seeded samples and shifts up to 1.5 sd
    on a 0.002-sd grid, the longest non-monotone stretch was 0.026 sd at n = 1,000 and 0.006 sd at 5,000;
    beyond ~2 sd, when the window empties the low bins, smoothing makes it jumpier still."""
    assert _shifted_scores(direction * (small + extra))[1] >= _shifted_scores(direction * small)[1]
