"""``NumericWindow.below`` / ``above``: values outside the reference's [min, max], counted in the sketch."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.drift import NumericWindow, ReferenceProfile, WindowSketch, build_profile, evaluate_drift
from detectors.drift.features import FeatureDriftConfig


def _json(obj: dict[str, Any]) -> Any:
    return json.loads(json.dumps(obj, allow_nan=False))


# x spans exactly [0, 10]; c is categorical. Immutable, so shared (also by the hypothesis test).
PROFILE = build_profile(
    {"x": np.linspace(0.0, 10.0, 501), "c": np.array(["a", "b"] * 250 + ["a"], dtype=object)}
)


@pytest.fixture
def profile() -> ReferenceProfile:
    return PROFILE


def test_values_strictly_outside_the_reference_range_are_counted(profile: ReferenceProfile) -> None:
    window = np.array([-1.0, 0.0, 5.0, 10.0, 10.5, 11.0, np.nan, np.inf, -np.inf])
    sketch = WindowSketch.empty(profile).update({"x": window, "c": np.array(["a"] * 9, dtype=object)})
    win = sketch.features["x"]
    assert isinstance(win, NumericWindow)
    # the reference's own min (0.0) and max (10.0) are inside; non-finite values are missing, not outside
    assert (win.below, win.above) == (1, 2)
    assert win.missing == 3 and win.count == 6


def test_a_profile_without_min_and_max_counts_nothing_outside() -> None:
    profile = build_profile({"x": np.full(200, np.nan)})
    sketch = WindowSketch.empty(profile).update({"x": np.array([1.0, -1e9, 1e9])})
    win = sketch.features["x"]
    assert isinstance(win, NumericWindow)
    assert profile.features["x"].minimum is None
    assert (win.below, win.above) == (0, 0)


def test_an_absent_column_counts_nothing_outside(profile: ReferenceProfile) -> None:
    sketch = WindowSketch.empty(profile).update({"c": np.array(["a"] * 5, dtype=object)})
    win = sketch.features["x"]
    assert isinstance(win, NumericWindow)
    assert (win.below, win.above, win.missing) == (0, 0, 5)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.floats(min_value=-50, max_value=60, allow_nan=False), min_size=1, max_size=60),
    st.integers(min_value=1, max_value=59),
)
def test_chunked_updates_and_merges_add_up(values: list[float], cut: int) -> None:
    profile = PROFILE
    x = np.array(values)
    cut = min(cut, x.size)
    cats = np.array(["a"] * x.size, dtype=object)
    whole = WindowSketch.empty(profile).update({"x": x, "c": cats})
    chunked = (
        WindowSketch.empty(profile)
        .update({"x": x[:cut], "c": cats[:cut]})
        .update({"x": x[cut:], "c": cats[cut:]})
    )
    merged = (
        WindowSketch.empty(profile)
        .update({"x": x[:cut], "c": cats[:cut]})
        .merge(WindowSketch.empty(profile).update({"x": x[cut:], "c": cats[cut:]}))
    )
    for sketch in (whole, chunked, merged):
        win = sketch.features["x"]
        assert isinstance(win, NumericWindow)
        assert win.below == int(np.count_nonzero(x < 0.0))
        assert win.above == int(np.count_nonzero(x > 10.0))


def test_round_trip_keeps_the_counts(profile: ReferenceProfile) -> None:
    x = np.array([-3.0, 4.0, 12.0, 13.0])
    sketch = WindowSketch.empty(profile).update({"x": x, "c": np.array(["b"] * 4, dtype=object)})
    data = _json(sketch.to_dict())
    assert (data["features"]["x"]["below"], data["features"]["x"]["above"]) == (1, 2)
    again = WindowSketch.from_dict(data, profile)
    assert again.to_dict() == sketch.to_dict()


def test_a_sketch_stored_before_below_and_above_existed_still_loads(profile: ReferenceProfile) -> None:
    """States written by older versions have no ``below`` / ``above``: they load as 0 and keep counting."""
    x = np.array([-3.0, 4.0, 12.0])
    cats = np.array(["b"] * 3, dtype=object)
    sketch = WindowSketch.empty(profile).update({"x": x, "c": cats})
    old = _json(sketch.to_dict())
    for key in ("below", "above"):
        del old["features"]["x"][key]
    loaded = WindowSketch.from_dict(old, profile)
    win = loaded.features["x"]
    assert isinstance(win, NumericWindow)
    assert (win.below, win.above, win.count) == (0, 0, 3)
    # the drift verdict does not use them: identical to the sketch's
    config = FeatureDriftConfig(min_window_rows=1, min_reference_rows=1)
    assert (
        evaluate_drift(profile, loaded, config).to_dict() == evaluate_drift(profile, sketch, config).to_dict()
    )
    more = loaded.update({"x": np.array([20.0]), "c": np.array(["a"], dtype=object)}).features["x"]
    assert isinstance(more, NumericWindow)
    assert (more.below, more.above, more.count) == (0, 1, 4)
    # an old bare NumericWindow dict loads too
    bare = {"counts": [0] * profile.features["x"].n_bins, "missing": 0, "count": 0, "sum": 0.0,
            "sum_sq": 0.0, "min": None, "max": None}  # fmt: skip
    assert (NumericWindow.from_dict(bare).below, NumericWindow.from_dict(bare).above) == (0, 0)
