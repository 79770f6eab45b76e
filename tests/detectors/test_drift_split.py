"""``WindowSketch.of_segments``: one batch cut into row segments, each sketched as ``update`` would alone."""

from __future__ import annotations

import functools
import itertools
from typing import Any
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detectors.base import InputError
from detectors.drift import ReferenceProfile, WindowSketch, build_profile
from detectors.drift import sketch as sketch_module

Columns = dict[str, np.ndarray]

NUMERIC_REFERENCE = st.one_of(
    st.sampled_from([0.0, 1.0, 2.0, 2.5, -3.0, np.nan]),  # few distinct values, ties on the edges
    st.floats(min_value=-100, max_value=100),
)
NUMERIC_WINDOW = st.one_of(
    st.sampled_from([0.0, 1.0, 2.0, 2.5, -3.0, np.nan, np.inf, -np.inf, -0.0]),
    st.sampled_from([-1e6, 1e6, 150.0, -150.0]),  # beyond the reference's range
    st.floats(min_value=-1e3, max_value=1e3),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
)
REFERENCE_CATEGORIES = st.sampled_from(["a", "b", "c", "d", "e", None])
WINDOW_CATEGORIES = st.sampled_from(
    ["a", "b", "c", "d", "e", "new1", "new2", "new3", "z", "", None, float("nan")]
)


@st.composite
def profiles(draw: st.DrawFn) -> ReferenceProfile:
    rows = draw(st.integers(1, 60))
    n_numeric = draw(st.integers(0, 3))
    n_categorical = draw(st.integers(0 if n_numeric else 1, 2))
    columns: dict[str, Any] = {}
    for i in range(n_numeric):
        if draw(st.booleans()):
            values = draw(st.lists(NUMERIC_REFERENCE, min_size=rows, max_size=rows))
        else:
            values = [np.nan] * rows  # no min / max: nothing counts as outside
        columns[f"x{i}"] = np.array(values, dtype=np.float64)
    for i in range(n_categorical):
        values = draw(st.lists(REFERENCE_CATEGORIES, min_size=rows, max_size=rows))
        columns[f"c{i}"] = np.array(values, dtype=object)
    fine_bins = draw(st.integers(2, 12))
    return build_profile(
        columns,
        kinds={name: "numeric" if name.startswith("x") else "categorical" for name in columns},
        fine_bins=fine_bins,
        coarse_bins=draw(st.integers(2, fine_bins)),
        max_categories=draw(st.integers(1, 6)),  # small: often a truncated profile with __other__
    )


@st.composite
def batches(draw: st.DrawFn, profile: ReferenceProfile) -> Columns:
    rows = draw(st.integers(0, 80))
    columns: Columns = {}
    for name, fp in profile.features.items():
        if draw(st.integers(0, 9)) == 0:
            continue  # an absent column counts as missing
        if fp.kind == "numeric":
            columns[name] = np.array(
                draw(st.lists(NUMERIC_WINDOW, min_size=rows, max_size=rows)), dtype=np.float64
            )
        else:
            columns[name] = np.array(
                draw(st.lists(WINDOW_CATEGORIES, min_size=rows, max_size=rows)), dtype=object
            )
    if draw(st.booleans()):
        columns["stray"] = np.zeros(rows)  # a feature the profile does not know
    if not columns:
        columns["stray"] = np.zeros(rows)
    return columns


@st.composite
def bounds_for(draw: st.DrawFn, rows: int, cover: bool = False) -> list[int]:
    cuts = draw(st.lists(st.integers(0, rows), min_size=0 if cover else 1, max_size=8))
    return sorted([0, *cuts, rows] if cover else cuts)


def _segment(columns: Columns, a: int, b: int) -> Columns:
    return {name: col[a:b] for name, col in columns.items()}


def _rows(columns: Columns) -> int:
    return len(next(iter(columns.values())))


def _without_sums(d: dict[str, Any]) -> dict[str, Any]:
    features = {
        name: {k: v for k, v in fd.items() if k not in ("sum", "sum_sq")}
        for name, fd in d["features"].items()
    }
    return {**d, "features": features}


def _assert_sums_close(a: dict[str, Any], b: dict[str, Any], columns: Columns) -> None:
    """Sums of the same finite values in another order: their difference is bounded by the rounding of
    the terms' magnitudes, not of the result (``[3e38, 1.0, -3e38]`` sums to 0 or 1 by order)."""
    for name, fa in a["features"].items():
        if "sum" not in fa:
            continue  # categorical
        values = np.asarray(columns.get(name, np.zeros(0)), dtype=np.float64)
        values = values[np.isfinite(values)]
        with np.errstate(over="ignore"):
            scale = {"sum": np.abs(values).sum(), "sum_sq": (values * values).sum()}
        for key in ("sum", "sum_sq"):
            bound = 4 * np.finfo(np.float64).eps * (len(values) + 1) * scale[key]
            got, want = fa[key], b["features"][name][key]
            assert got == want or abs(got - want) <= bound, (name, key, got, want, bound)  # inf: both


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), profile=profiles(), tracked=st.sampled_from([1, 2, 100]))
def test_each_segment_equals_an_update_with_its_rows_alone(
    data: st.DataObject, profile: ReferenceProfile, tracked: int
) -> None:
    columns = data.draw(batches(profile))
    bounds = data.draw(bounds_for(_rows(columns)))
    # a low tracking limit exercises the untracked unseen names on small batches
    with mock.patch.object(sketch_module, "MAX_TRACKED_UNSEEN", tracked):
        parts = WindowSketch.of_segments(profile, columns, bounds)
        expected = [
            WindowSketch.empty(profile).update(_segment(columns, a, b)) for a, b in itertools.pairwise(bounds)
        ]
    assert len(parts) == len(bounds) - 1
    for part, want, a, b in zip(parts, expected, bounds[:-1], bounds[1:], strict=True):
        assert part.n_rows == b - a
        assert part.unknown_features == want.unknown_features
        # bit-identical, float sums included: the same numpy reductions over the same values
        assert part.to_dict() == want.to_dict()
        for window in part.features.values():
            assert window.counts.dtype == np.int64
            assert not window.counts.flags.writeable


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), profile=profiles())
def test_merged_segments_equal_one_update_of_the_batch(
    data: st.DataObject, profile: ReferenceProfile
) -> None:
    columns = data.draw(batches(profile))
    bounds = data.draw(bounds_for(_rows(columns), cover=True))
    parts = WindowSketch.of_segments(profile, columns, bounds)
    merged = functools.reduce(WindowSketch.merge, parts, WindowSketch.empty(profile)).to_dict()
    whole = WindowSketch.empty(profile).update(columns).to_dict()
    # counts exact; the sums of the parts add up in another order than the sum of the whole
    assert _without_sums(merged) == _without_sums(whole)
    _assert_sums_close(merged, whole, columns)


def _bench_like(rng: np.random.Generator, rows: int) -> Columns:
    cols: Columns = {f"n{i:02d}": rng.normal(0.5 * i, 1 + 0.25 * i, rows) for i in range(20)}
    cols["n03"][rng.random(rows) < 0.1] = np.nan
    cols["country"] = rng.choice(np.array(["de", "fr", "us", "in", "br", None], dtype=object), rows)
    cols["pair"] = rng.choice(np.array(["yes", "no"], dtype=object), rows)
    return cols


@pytest.mark.parametrize(
    "rows, bounds", [(500, [0, 100, 200, 300, 400, 500]), (20_000, [0, 7, 9_000, 20_000])]
)
def test_long_segments_sum_to_the_bit(rows: int, bounds: list[int]) -> None:
    """Runs longer than numpy's pairwise-sum blocks (128) and than its buffer (8192) still match."""
    rng = np.random.default_rng(7)
    profile = build_profile(_bench_like(rng, 5000))
    batch = _bench_like(rng, rows)
    batch["n05"] = batch["n05"] * 1e12 + 1.0  # large magnitudes: any reassociation would show
    parts = WindowSketch.of_segments(profile, batch, bounds)
    for part, a, b in zip(parts, bounds[:-1], bounds[1:], strict=True):
        assert part.to_dict() == WindowSketch.empty(profile).update(_segment(batch, a, b)).to_dict()


def test_empty_segments_and_ignored_rows() -> None:
    rng = np.random.default_rng(3)
    profile = build_profile(_bench_like(rng, 1000))
    batch = _bench_like(rng, 50)
    parts = WindowSketch.of_segments(profile, batch, [5, 5, 20, 20, 20, 45])
    assert [p.n_rows for p in parts] == [0, 15, 0, 0, 25]
    empty = WindowSketch.empty(profile).update(_segment(batch, 0, 0)).to_dict()
    for i in (0, 2, 3):
        assert parts[i].to_dict() == empty
    assert parts[1].to_dict() == WindowSketch.empty(profile).update(_segment(batch, 5, 20)).to_dict()
    assert WindowSketch.of_segments(profile, batch, [30]) == []
    # a zero-row batch
    assert [p.n_rows for p in WindowSketch.of_segments(profile, _segment(batch, 0, 0), [0, 0])] == [0]


@pytest.mark.parametrize(
    "bounds", [[], [0, 60], [-1, 10], [0, 20, 10], [[0, 10]], [0.0, 10.0], [True, False], "abc"]
)
def test_bad_bounds_are_rejected(bounds: Any) -> None:
    profile = build_profile({"x": np.arange(10.0)})
    with pytest.raises(ValueError, match="bounds"):
        WindowSketch.of_segments(profile, {"x": np.arange(50.0)}, bounds)


def test_bad_columns_are_rejected_as_update_rejects_them() -> None:
    profile = build_profile({"x": np.arange(10.0), "c": np.array(["a", "b"] * 5, dtype=object)})
    with pytest.raises(InputError, match="'x' is numeric"):
        WindowSketch.of_segments(profile, {"x": np.array(["a", "b"], dtype=object)}, [0, 1, 2])
    with pytest.raises(InputError, match="differ in length"):
        WindowSketch.of_segments(profile, {"x": np.arange(3.0), "c": np.array(["a"], dtype=object)}, [0, 1])


def test_segments_round_trip_and_merge_into_a_running_window() -> None:
    rng = np.random.default_rng(11)
    profile = build_profile(_bench_like(rng, 1000))
    first, second = _bench_like(rng, 300), _bench_like(rng, 300)
    running = WindowSketch.empty(profile).update(first)
    parts = WindowSketch.of_segments(profile, second, [0, 120, 300])
    for part in parts:
        assert WindowSketch.from_dict(part.to_dict(), profile).to_dict() == part.to_dict()
    merged = running.merge(parts[0]).merge(parts[1]).to_dict()
    want = running.update(second).to_dict()
    assert _without_sums(merged) == _without_sums(want)
    both = {k: np.concatenate([first[k], second[k]]) for k in first if first[k].dtype != object}
    _assert_sums_close(merged, want, both)
