"""Window state in memory: sliding aggregation equals merging the last panes, and JSON round trips."""

from __future__ import annotations

import copy
import functools
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.drift import WindowSketch, build_profile
from detectors.fairness import FairnessCounts
from streams.window_state import SlidingAggregate, WindowAcc

RNG = np.random.default_rng(5)
PROFILE = build_profile({"x": RNG.normal(size=2000), "c": RNG.choice(["a", "b", "c"], 2000).astype(object)})
PRED = build_profile({"label": RNG.choice(["0", "1"], 2000).astype(object)})
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def pane(index: int, seed: int, rows: int = 50) -> WindowAcc:
    rng = np.random.default_rng(seed)
    w = WindowAcc(index)
    w.sketch = WindowSketch.empty(PROFILE).update(
        {"x": rng.normal(size=rows), "c": rng.choice(["a", "b", "z"], rows).astype(object)})
    w.pred = WindowSketch.empty(PRED).update({"label": rng.choice(["0", "1"], rows).astype(object)})
    w.fair = FairnessCounts.empty(["g"]).update({"g": rng.choice(["m", "f"], rows).astype(object)},
                                                rng.integers(0, 2, rows))
    w.type_errors = {"x": int(rng.integers(0, 3))}
    w.n = rows
    w.add_times(T0 + timedelta(seconds=index * 10), T0 + timedelta(seconds=index * 10 + 9))
    return w


def naive(panes: list[WindowAcc]) -> WindowAcc:
    return functools.reduce(lambda a, b: a.merge(b), panes[1:], panes[0])


def same(a: WindowAcc, b: WindowAcc) -> None:
    da, db = copy.deepcopy(a.to_dict()), copy.deepcopy(b.to_dict())  # to_dict is cached: never mutate it
    for side in (da, db):
        for key in ("sketch",):
            for f in side[key]["features"].values():
                # float sums of the same numbers in another order may differ in the last bits
                f.pop("sum", None), f.pop("sum_sq", None)
    assert da == db


@settings(max_examples=40, deadline=None)
@given(k=st.integers(1, 10), n_panes=st.integers(1, 40), restart_at=st.integers(0, 40))
def test_sliding_aggregate_equals_merging_the_last_k_panes(k: int, n_panes: int, restart_at: int) -> None:
    agg: SlidingAggregate[WindowAcc] = SlidingAggregate(k)
    panes = [pane(i, seed=i) for i in range(n_panes)]
    for i, p in enumerate(panes):
        if i == restart_at:  # a restarted worker rebuilds the aggregate from the stored ring
            agg = SlidingAggregate(k, [WindowAcc.from_dict(q.to_dict(), PROFILE, PRED) for q in agg.panes])
        got = agg.push(p)
        if i + 1 < k:
            assert got is None
            continue
        want = naive(panes[i + 1 - k:i + 1])
        assert got is not None and agg.panes[0].index == i + 1 - k
        same(got, want)
        assert [q.index for q in agg.panes] == list(range(i + 1 - k, i + 1))


def test_window_round_trips_through_json_and_loads_the_old_layout() -> None:
    w = pane(3, seed=1)
    back = WindowAcc.from_dict(w.to_dict(), PROFILE, PRED)
    assert back.to_dict() == w.to_dict()
    old = dict(w.to_dict())
    old.pop("pred_sketch")  # states saved before prediction drift existed
    legacy = WindowAcc.from_dict(old, PROFILE, PRED)
    assert legacy.pred is None and legacy.n == w.n and legacy.sketch is not None
    assert legacy.sketch.to_dict() == w.sketch.to_dict()  # type: ignore[union-attr]


def test_the_cached_json_is_rebuilt_after_a_change() -> None:
    w = pane(0, seed=2)
    before = w.to_dict()
    w.n += 1
    w.touch()
    assert w.to_dict()["n"] == before["n"] + 1


def test_merging_never_changes_its_inputs() -> None:
    a, b = pane(0, seed=3), pane(1, seed=4)
    da, db = copy.deepcopy(a.to_dict()), copy.deepcopy(b.to_dict())
    a.touch(), b.touch()
    a.merge(b)
    assert a.to_dict() == da and b.to_dict() == db


@pytest.mark.parametrize("k", [1, 3])
def test_fewer_panes_than_k_give_no_window(k: int) -> None:
    agg: SlidingAggregate[WindowAcc] = SlidingAggregate(k)
    results = [agg.push(pane(i, seed=i)) for i in range(k - 1)]
    assert results == [None] * (k - 1)


def test_sliding_aggregate_works_on_bare_sketches_too() -> None:
    agg: SlidingAggregate[WindowSketch] = SlidingAggregate(4)
    sketches = [p.sketch for p in (pane(i, seed=10 + i) for i in range(9))]
    for i, sk in enumerate(sketches):
        got = agg.push(sk)  # type: ignore[arg-type]
        if i >= 3:
            want = functools.reduce(WindowSketch.merge, sketches[i - 3:i + 1])  # type: ignore[arg-type]
            assert got is not None and got.n_rows == want.n_rows
            for name, f in want.features.items():
                assert (got.features[name].counts == f.counts).all()
