"""The binned, normalised Wasserstein distance against scipy (same bins) and Evidently (raw values)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from evidently.legacy.calculations.stattests.wasserstein_distance_norm import _wasserstein_distance_norm
from evidently.legacy.core import ColumnType
from scipy import stats

from detectors.base import ConfigError
from detectors.drift import FeatureDriftConfig, WindowSketch, build_profile, evaluate_drift
from detectors.drift.profile import NumericProfile
from detectors.drift.wasserstein import bin_positions, wasserstein_binned, wasserstein_norm


def _profile(values: np.ndarray, **kwargs: Any) -> NumericProfile:
    fp = build_profile({"x": values}, kinds={"x": "numeric"}, **kwargs).features["x"]
    assert isinstance(fp, NumericProfile)
    return fp


def _draw(rng: np.random.Generator, kind: str, n: int, shift: float = 0.0, scale: float = 1.0) -> np.ndarray:
    """``shift`` in units of the reference's sd (1 for normal and exponential, 3 for integers)."""
    if kind == "normal":
        return rng.normal(shift, scale, n)
    if kind == "exponential":
        return rng.exponential(scale, n) + shift
    if kind == "integers":
        return np.floor(rng.normal(5 + 3 * shift, 3 * scale, n))
    if kind == "lognormal":
        return rng.lognormal(0.0, 0.8 * scale, n) + 1.3 * shift
    raise ValueError(kind)


# --- the same bins: exactly scipy -----------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(25))
def test_binned_distance_equals_scipy_on_the_same_positions_and_weights(seed: int) -> None:
    rng = np.random.default_rng(seed)
    kind = ["normal", "exponential", "integers", "lognormal"][seed % 4]
    fp = _profile(
        _draw(rng, kind, int(rng.integers(50, 5000))), fine_bins=int(rng.choice([3, 20, 100])), coarse_bins=2
    )
    positions = bin_positions(fp.fine_edges, fp.minimum, fp.maximum)
    assert positions.size == fp.n_bins and np.all(np.diff(positions) > 0)
    window = _draw(
        rng, kind, int(rng.integers(1, 3000)), rng.choice([0.0, 0.2, 1.0, 5.0]), rng.choice([1, 2])
    )
    counts = fp.bin_counts(window)
    ours = wasserstein_binned(positions, fp.ref_counts, counts)
    theirs = stats.wasserstein_distance(u_values=positions, v_values=positions,
                                        u_weights=fp.ref_counts, v_weights=counts)  # fmt: skip
    assert ours == pytest.approx(theirs, rel=1e-12, abs=1e-12 * float(np.ptp(positions)))
    sd = max(fp.std or 0.0, 0.001)
    assert wasserstein_norm(positions, fp.ref_counts, counts, fp.std) == pytest.approx(ours / sd, rel=1e-15)


def test_positions_of_the_open_end_bins() -> None:
    assert bin_positions([1.0, 2.0, 4.0], 0.0, 10.0).tolist() == [0.5, 1.5, 3.0, 7.0]
    # the minimum on the first edge: the open bin sits on the edge (it is empty in the reference)
    assert bin_positions([1.0, 2.0], 1.0, 2.0).tolist() == [1.0, 1.5, 2.0]
    assert bin_positions([], 3.0, 3.0).tolist() == [3.0]
    fp = _profile(np.array([1.0, 1.0, 2.0, 2.0, 3.0, 3.0]))
    assert np.all(np.diff(bin_positions(fp.fine_edges, fp.minimum, fp.maximum)) > 0)


def test_normalisation_floor_and_errors() -> None:
    assert wasserstein_norm([0.0, 1.0], [1, 0], [0, 1], 0.0) == pytest.approx(1000.0)
    assert wasserstein_norm([0.0, 1.0], [1, 0], [0, 1], None) == pytest.approx(1000.0)
    assert wasserstein_norm([0.0, 1.0], [1, 1], [1, 1], 2.0) == 0.0
    with pytest.raises(ValueError):
        wasserstein_binned([0.0, 1.0], [0, 0], [1, 0])
    with pytest.raises(ValueError):
        wasserstein_binned([0.0, 1.0, 2.0], [1, 0], [1, 0])


# --- raw values: Evidently's wasserstein_distance_norm, within the binning error ------------------------
# Measured while choosing these tolerances (4 seeds; references of 1k, 5k and 20k rows; windows of 200, 1k
# and 10k rows; 100 fine bins): |binned - Evidently| for mean shifts up to 0.5 sd and sd x1 or x1.25 was at
# most 0.034 (normal), 0.036 (integers), 0.10 (exponential, sd x1.25); where Evidently's value is near its
# threshold (0.05-0.2) at most 0.029 for these three (median 0.003) and 0.11 for a log-normal (heavy tail:
# the open last bin sits midway between the 99th percentile and the maximum). Values beyond the reference
# range all sit in an open end bin, so large shifts are under-measured: 4-sd shifts by 1.4-1.7.

RAW_CASES = [
    (kind, n_ref, n_win, shift, scale)
    for kind in ("normal", "integers", "exponential")
    for n_ref, n_win in ((1000, 200), (5000, 1000), (5000, 5000))
    for shift in (0.0, 0.1, 0.25, 0.5)
    for scale in (1.0, 1.25)
]


def _evidently(ref: np.ndarray, window: np.ndarray) -> float:
    value, _ = _wasserstein_distance_norm(pd.Series(ref), pd.Series(window), ColumnType.Numerical, 0.1)
    return float(value)


def test_binned_distance_follows_evidently_on_raw_values() -> None:
    rng = np.random.default_rng(77)
    worst = worst_near = 0.0
    disagree = 0
    for kind, n_ref, n_win, shift, scale in RAW_CASES:
        ref = _draw(rng, kind, n_ref)
        window = _draw(rng, kind, n_win, shift, scale)
        profile = build_profile({"x": ref})
        sketch = WindowSketch.empty(profile).update({"x": window})
        score = evaluate_drift(profile, sketch, FeatureDriftConfig(numeric_effect="wasserstein")).score("x")
        ours, theirs = score.effect_value, _evidently(ref, window)
        assert ours == score.extra["wasserstein_norm"]
        error = abs(ours - theirs)
        assert error <= 0.12, (kind, n_ref, n_win, shift, scale, ours, theirs)
        worst = max(worst, error)
        if 0.05 <= theirs <= 0.2:
            assert error <= 0.04, (kind, n_ref, n_win, shift, scale, ours, theirs)
            worst_near = max(worst_near, error)
        disagree += (ours >= 0.1) != (theirs >= 0.1)
    assert disagree <= 3  # of 72 verdicts at Evidently's threshold
    assert worst_near > 0.0


def test_shifts_beyond_the_reference_range_are_under_measured() -> None:
    """The documented limitation: a 4-sd shift puts most of the window in the open last bin."""
    rng = np.random.default_rng(5)
    ref, window = rng.normal(size=5000), rng.normal(4.0, size=5000)
    fp = _profile(ref)
    ours = wasserstein_norm(bin_positions(fp.fine_edges, fp.minimum, fp.maximum), fp.ref_counts,
                            fp.bin_counts(window), fp.std)  # fmt: skip
    theirs = _evidently(ref, window)
    assert theirs == pytest.approx(4.0, abs=0.1)
    assert 2.0 < ours < theirs  # still far above any floor


# --- the numeric_effect option --------------------------------------------------------------------------


def test_wasserstein_gate_flags_what_clears_its_floor() -> None:
    rng = np.random.default_rng(8)
    ref = {"a": rng.normal(size=5000), "b": rng.normal(size=5000)}
    profile = build_profile(ref)
    # a: 0.3-sd shift (W ~0.3, PSI ~0.09); b: 0.07-sd shift (W ~0.07 under the 0.1 floor, KS significant)
    sketch = WindowSketch.empty(profile).update(
        {"a": rng.normal(0.3, size=20000), "b": rng.normal(0.07, size=20000)}
    )
    config = FeatureDriftConfig(numeric_effect="wasserstein")
    result = evaluate_drift(profile, sketch, config)
    assert result.drifted_features == ("a",)
    b = result.score("b")
    assert b.effect == "wasserstein_norm" and b.effect_value < 0.1 and b.p_adjusted < config.alpha
    assert b.extra["p_method"] == "asymptotic"  # not a candidate: its verdict cannot depend on the p-value
    lower = evaluate_drift(
        profile, sketch, FeatureDriftConfig(numeric_effect="wasserstein", wasserstein_floor=0.03)
    )
    assert lower.drifted_features == ("a", "b")
    assert lower.score("b").extra["p_method"] == "exact"


@pytest.mark.parametrize(
    ("field", "value"),
    [("numeric_effect", "kl"), ("numeric_effect", None), ("wasserstein_floor", -0.1),
     ("wasserstein_floor", float("nan")), ("wasserstein_floor", "0.1")],
)  # fmt: skip
def test_bad_wasserstein_config_raises_config_error_naming_the_field(field: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=field):
        FeatureDriftConfig(**{field: value})
