"""Packed sketches: a merge of two sketches equals, feature by feature and to the bit, the per-feature
``NumericWindow.add`` / ``CategoricalWindow.add`` it replaces, whichever form (packed or per-feature windows)
each side is in."""

from __future__ import annotations

import functools
import struct
from typing import Any
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detectors.base import ProfileMismatchError, Status
from detectors.drift import (
    FeatureDriftConfig,
    ReferenceProfile,
    WindowSketch,
    build_profile,
    evaluate_drift_many,
)
from detectors.drift import sketch as sketch_module
from detectors.drift.sketch import CategoricalWindow, FeatureWindow, NumericWindow

Columns = dict[str, np.ndarray]

WINDOW_NUMBERS = st.one_of(
    st.sampled_from([0.0, -0.0, 1.0, 2.5, -3.0, np.nan, np.inf, -1e6, 1e6]),
    st.floats(min_value=-1e3, max_value=1e3),
)
WINDOW_CATEGORIES = st.sampled_from(["a", "b", "c", "d", "new1", "new2", "new3", "new4", None])


@st.composite
def profiles(draw: st.DrawFn) -> ReferenceProfile:
    """Numeric and categorical features in any order (the packed layout groups them by kind)."""
    rows = draw(st.integers(2, 40))
    kinds = draw(st.lists(st.sampled_from(["numeric", "categorical"]), min_size=1, max_size=5))
    columns: dict[str, Any] = {}
    for i, kind in enumerate(kinds):
        if kind == "numeric":
            values = draw(st.lists(st.floats(-50, 50) | st.just(np.nan), min_size=rows, max_size=rows))
            columns[f"f{i}"] = np.array(values, dtype=np.float64)
        else:
            values = draw(st.lists(st.sampled_from(["a", "b", "c", "d", None]), min_size=rows, max_size=rows))
            columns[f"f{i}"] = np.array(values, dtype=object)
    fine_bins = draw(st.integers(2, 10))
    return build_profile(
        columns,
        kinds=dict(zip(columns, kinds, strict=True)),
        fine_bins=fine_bins,
        coarse_bins=draw(st.integers(2, fine_bins)),
        max_categories=draw(st.integers(1, 5)),
    )


@st.composite
def batches(draw: st.DrawFn, profile: ReferenceProfile) -> Columns:
    rows = draw(st.integers(0, 30))
    columns: Columns = {}
    for name, fp in profile.features.items():
        if draw(st.integers(0, 5)) == 0:
            continue  # absent: every row counts as missing
        strategy = WINDOW_NUMBERS if fp.kind == "numeric" else WINDOW_CATEGORIES
        dtype = np.float64 if fp.kind == "numeric" else object
        columns[name] = np.array(draw(st.lists(strategy, min_size=rows, max_size=rows)), dtype=dtype)
    if not columns:
        columns["stray"] = np.zeros(rows)
    return columns


def _bits(x: float) -> bytes:
    return struct.pack("<d", x)  # tells -0.0 from 0.0


def _assert_same_window(got: FeatureWindow, want: FeatureWindow) -> None:
    assert type(got) is type(want)
    assert got.counts.dtype == np.int64 and not got.counts.flags.writeable
    assert got.counts.tolist() == want.counts.tolist()
    if isinstance(got, NumericWindow):
        assert isinstance(want, NumericWindow)
        assert (got.missing, got.count, got.below, got.above) == (
            want.missing,
            want.count,
            want.below,
            want.above,
        )
        for field in ("total", "total_sq", "minimum", "maximum"):
            assert _bits(getattr(got, field)) == _bits(getattr(want, field)), field
    else:
        assert isinstance(want, CategoricalWindow)
        assert (got.missing, got.unseen_untracked) == (want.missing, want.unseen_untracked)
        assert dict(got.unseen) == dict(want.unseen)


def _oracle_merge(a: WindowSketch, b: WindowSketch) -> dict[str, FeatureWindow]:
    """What ``merge`` computed before sketches were packed: each feature's own ``add``."""
    return {name: w.add(b.features[name]) for name, w in a.features.items()}  # type: ignore[arg-type]


def _unpacked(sketch: WindowSketch) -> WindowSketch:
    """The same sketch held as per-feature windows (as ``from_dict`` builds it)."""
    return WindowSketch.from_dict(sketch.to_dict(), sketch.profile)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), profile=profiles(), tracked=st.sampled_from([1, 2, 100]), forms=st.integers(0, 3))
def test_merge_equals_the_per_feature_add(
    data: st.DataObject, profile: ReferenceProfile, tracked: int, forms: int
) -> None:
    with mock.patch.object(sketch_module, "MAX_TRACKED_UNSEEN", tracked):  # exercises untracked names
        first = data.draw(batches(profile))
        a = WindowSketch.of_segments(profile, first, [0, len(next(iter(first.values())))])[0]
        second = data.draw(batches(profile))
        b = WindowSketch.of_segments(profile, second, [0, len(next(iter(second.values())))])[0]
        # each side packed (of_segments) or as per-feature windows (from_dict)
        left = _unpacked(a) if forms & 1 else a
        right = _unpacked(b) if forms & 2 else b
        want = _oracle_merge(_unpacked(a), _unpacked(b))
        merged = left.merge(right)
    assert merged.n_rows == a.n_rows + b.n_rows
    assert merged.unknown_features == a.unknown_features | b.unknown_features
    assert list(merged.features) == list(profile.features)  # profile order, kinds interleaved
    for name, window in merged.features.items():
        _assert_same_window(window, want[name])
    # the stored form, written straight from the packed arrays, is each window's own to_dict, and loads back
    stored = merged.to_dict()
    assert stored["features"] == {name: w.to_dict() for name, w in want.items()}
    assert WindowSketch.from_dict(stored, profile).to_dict() == stored


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), profile=profiles())
def test_a_chain_of_merges_equals_the_chain_of_adds(data: st.DataObject, profile: ReferenceProfile) -> None:
    """As a sliding window merges: sketches that are themselves merges, merged again."""
    columns = data.draw(batches(profile))
    rows = len(next(iter(columns.values())))
    cuts = sorted(data.draw(st.lists(st.integers(0, rows), max_size=6)))
    parts = WindowSketch.of_segments(profile, columns, [0, *cuts, rows])
    merged = functools.reduce(WindowSketch.merge, parts)
    want = functools.reduce(
        lambda acc, p: {n: w.add(p.features[n]) for n, w in acc.items()},  # type: ignore[arg-type]
        [_unpacked(p) for p in parts[1:]],
        dict(_unpacked(parts[0]).features),
    )
    for name, window in merged.features.items():
        _assert_same_window(window, want[name])


def test_merging_keeps_the_earlier_extreme_on_ties() -> None:
    """-0.0 and 0.0 compare equal: the window's own minimum and maximum stay, as ``NumericWindow.add``."""
    profile = build_profile({"x": np.array([-1.0, 0.0, 1.0])})
    neg, pos = (WindowSketch.of_segments(profile, {"x": np.array([v])}, [0, 1])[0] for v in (-0.0, 0.0))
    for a, b in ((neg, pos), (pos, neg)):
        got, want = a.merge(b).features["x"], a.features["x"].add(b.features["x"])  # type: ignore[arg-type]
        _assert_same_window(got, want)


def test_a_window_of_the_wrong_kind_is_refused() -> None:
    profile = build_profile({"x": np.arange(10.0), "c": np.array(list("ababababab"), dtype=object)})
    good = WindowSketch.empty(profile)
    features = dict(good.features)
    features["x"] = CategoricalWindow(counts=np.zeros(2, dtype=np.int64))
    bad = WindowSketch(profile=profile, n_rows=0, features=features)
    with pytest.raises(ProfileMismatchError, match="'x'"):
        good.merge(bad)
    with pytest.raises(ProfileMismatchError, match="'x'"):
        bad.merge(good)


def test_a_merge_stays_packed_until_its_windows_are_read() -> None:
    rng = np.random.default_rng(3)
    profile = build_profile({"x": rng.normal(size=500), "c": rng.choice(["a", "b"], size=500).astype(object)})
    a, b = WindowSketch.of_segments(
        profile, {"x": rng.normal(size=40), "c": np.array(["a", "z"] * 20)}, [0, 20, 40]
    )
    merged = a.merge(b)
    stored = merged.to_dict()
    assert merged._features is None  # packed until someone reads its windows
    assert stored == _unpacked(merged).to_dict()
    assert merged.features["c"].unseen == {"z": 20}
    assert a.features["x"].count + b.features["x"].count == merged.features["x"].count == 40


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), profile=profiles())
def test_drift_reads_the_packed_counts_as_the_windows_hold_them(
    data: st.DataObject, profile: ReferenceProfile
) -> None:
    """evaluate_drift takes counts, moments and unseen names from the packed arrays (StackedSketches):
    each score reports what the window's own per-feature window says."""
    columns = data.draw(batches(profile))
    rows = len(next(iter(columns.values())))
    cuts = sorted(data.draw(st.lists(st.integers(0, rows), max_size=3)))
    parts = WindowSketch.of_segments(profile, columns, [0, *cuts, rows])
    config = FeatureDriftConfig(min_window_rows=1, min_reference_rows=1)
    results = evaluate_drift_many(profile, parts, config)
    for part, result in zip(parts, results, strict=True):
        windows = _unpacked(part).features
        for score in result.scores:
            win = windows[score.feature]
            assert score.n_window == win.count
            assert score.missing_rate == (win.missing / part.n_rows if part.n_rows else None)
            if score.status == Status.INSUFFICIENT_DATA:
                continue
            if isinstance(win, NumericWindow):
                for key, want in (("window_mean", win.mean), ("window_std", win.std)):
                    got = score.extra[key]
                    assert (got is None and want is None) or _bits(got) == _bits(want), key
            else:
                assert score.extra["unseen_count"] == win.unseen_count
                assert score.extra["unseen_categories"] == dict(win.unseen)
                assert score.extra["unseen_share"] == (win.unseen_count / win.count if win.count else None)


def test_which_unseen_names_stay_tracked_does_not_depend_on_their_order() -> None:
    """Found by hypothesis: past the tracking limit, a merge kept the names in the order the other side's
    mapping held them, and a stored sketch loads them sorted by name, so a restarted worker named other
    categories than one that had not restarted. Names now enter most frequent first, then by name."""
    profile = build_profile({"f": np.array(["a"] * 10, dtype=object)}, {"f": "categorical"})
    left = WindowSketch.of_segments(profile, {"f": np.array(["c"], dtype=object)}, [0, 1])[0]
    right = WindowSketch.of_segments(profile, {"f": np.array(["a", "a", "b", "d", "d"], dtype=object)}, [0, 5])[0]
    with mock.patch.object(sketch_module, "MAX_TRACKED_UNSEEN", 2):
        fresh = left.merge(right).features["f"]
        restarted = _unpacked(left).merge(_unpacked(right)).features["f"]
        by_feature = _unpacked(left).features["f"].add(right.features["f"])  # type: ignore[arg-type]
    for window in (fresh, restarted, by_feature):
        assert dict(window.unseen) == {"c": 1, "d": 2} and window.unseen_untracked == 1  # type: ignore[union-attr]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), profile=profiles())
def test_missing_count_reads_the_packed_counts(data: st.DataObject, profile: ReferenceProfile) -> None:
    columns = data.draw(batches(profile))
    sketch = WindowSketch.of_segments(profile, columns, [0, len(next(iter(columns.values())))])[0]
    got = {name: sketch.missing_count(name) for name in profile.features}
    assert sketch.is_packed  # read without building the per-feature windows
    assert got == {name: w.missing for name, w in sketch.features.items()}
    assert {name: _unpacked(sketch).missing_count(name) for name in profile.features} == got
    with pytest.raises(KeyError):
        WindowSketch.of_segments(profile, columns, [0, 0])[0].missing_count("no such feature")
