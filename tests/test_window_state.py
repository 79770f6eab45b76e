"""Window state in memory: sliding windows equal merging their panes, and JSON round trips."""

from __future__ import annotations

import copy
import functools
from datetime import UTC, datetime, timedelta
from unittest import mock

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.base import ProfileMismatchError
from detectors.drift import WindowSketch, build_profile
from detectors.drift import sketch as sketch_module
from detectors.fairness import FairnessCounts
from storage.db import json_dumps
from streams.window_state import WindowAcc, merge_runs

RNG = np.random.default_rng(5)
PROFILE = build_profile({"x": RNG.normal(size=2000), "c": RNG.choice(["a", "b", "c"], 2000).astype(object)})
PRED = build_profile({"label": RNG.choice(["0", "1"], 2000).astype(object)})
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def pane(index: int, seed: int, rows: int = 50, *, pred: bool = True) -> WindowAcc:
    rng = np.random.default_rng(seed)
    w = WindowAcc(index)
    x = rng.normal(size=rows)
    x[rng.random(rows) < 0.1] = np.nan
    # "z0".."z2": names the reference never saw, more of them in some panes than in others
    c = rng.choice(["a", "b", *[f"z{i}" for i in range(int(rng.integers(0, 4)))]], rows).astype(object)
    w.sketch = WindowSketch.empty(PROFILE).update({"x": x, "c": c})
    if pred:
        w.pred = WindowSketch.empty(PRED).update({"label": rng.choice(["0", "1"], rows).astype(object)})
    # small panes miss some groups, and the intersection's groups come in code order ("f" before "f!"), which
    # is not their sorted order ("f!&a" before "f&a")
    groups = {"g": rng.choice(["f", "f!", "m"][: int(rng.integers(1, 4))], rows).astype(object),
              "h": rng.choice(["b", "a|b", "a"], rows).astype(object)}
    w.fair = FairnessCounts.empty(["g", "h"], [("g", "h")]).update(groups, rng.integers(0, 2, rows))
    w.type_errors = {name: 1 for name in ("x", "c") if rng.random() < 0.3}
    w.n = rows
    w.add_times(T0 + timedelta(seconds=index * 10), T0 + timedelta(seconds=index * 10 + 9))
    return w


def naive(panes: list[WindowAcc]) -> WindowAcc:
    return functools.reduce(lambda a, b: a.merge(b), panes[1:], panes[0])


def same(a: WindowAcc, b: WindowAcc) -> None:
    """The same window to the bit: merge_runs adds the float sums in the order merge does."""
    assert a.to_dict() == b.to_dict()
    for got, want in ((a.sketch, b.sketch), (a.pred, b.pred)):
        assert (got is None) == (want is None)
        if got is not None and want is not None:
            assert got.to_dict() == want.to_dict()  # the readable per-feature form as well
            assert got._packed_form().floats.tobytes() == want._packed_form().floats.tobytes()  # -0.0 too


@settings(max_examples=60, deadline=None)
@given(k=st.integers(1, 10), n_panes=st.integers(1, 30), data=st.data())
def test_merge_runs_equals_folding_the_panes(k: int, n_panes: int, data: st.DataObject) -> None:
    without_pred = data.draw(st.sets(st.integers(0, n_panes - 1), max_size=2)) if n_panes > 1 else set()
    ends = sorted(data.draw(st.sets(st.integers(k - 1, n_panes - 1), max_size=12))) if n_panes >= k else []
    # a limit of 2 tracked names: merges past it count the rest as untracked
    with mock.patch.object(sketch_module, "MAX_TRACKED_UNSEEN", data.draw(st.sampled_from([2, 100]))):
        panes = [pane(i, seed=i, rows=data.draw(st.integers(1, 40)), pred=i not in without_pred)
                 for i in range(n_panes)]
        got = merge_runs(panes, k, ends)
        wants = [naive(panes[j + 1 - k : j + 1]) for j in ends]
    assert len(got) == len(ends)
    for j, window, want in zip(ends, got, wants, strict=True):
        assert window.index == j + 1 - k
        same(window, want)


def test_merge_runs_refuses_runs_it_does_not_have() -> None:
    panes = [pane(i, seed=i) for i in range(3)]
    for bad in ([1], [3], [-1]):
        with pytest.raises(ValueError, match="every end"):
            merge_runs(panes, 3, bad)
    assert merge_runs(panes, 3, []) == []


def test_merge_runs_leaves_its_panes_as_they_were() -> None:
    panes = [pane(i, seed=20 + i) for i in range(6)]
    before = [copy.deepcopy(p.to_dict()) for p in panes]
    for p in panes:
        p.touch()
    merge_runs(panes, 3, [2, 3, 4, 5])
    assert [p.to_dict() for p in panes] == before


def test_windows_of_bare_sketches_equal_their_folds() -> None:
    sketches = [p.sketch for p in (pane(i, seed=10 + i) for i in range(9))]
    got = WindowSketch.merge_runs(sketches, 4, [3, 5, 8])  # type: ignore[arg-type]
    for j, window in zip([3, 5, 8], got, strict=True):
        want = functools.reduce(WindowSketch.merge, sketches[j - 3 : j + 1])  # type: ignore[arg-type]
        assert window.n_rows == want.n_rows and window.to_dict() == want.to_dict()


def test_window_round_trips_through_json_and_loads_the_old_layouts() -> None:
    w = pane(3, seed=1)
    stored = orjson.loads(json_dumps(w.to_dict()))  # as the state column writes and reads it
    assert "packed" in stored["sketch"] and "packed" in stored["pred_sketch"]
    back = WindowAcc.from_dict(stored, PROFILE, PRED)
    assert back.to_dict() == w.to_dict()
    same(back, w)
    # the per-feature layout that versions before the packed form stored
    old = dict(stored, sketch=w.sketch.to_dict(), pred_sketch=w.pred.to_dict())  # type: ignore[union-attr]
    assert "packed" not in old["sketch"]
    same(WindowAcc.from_dict(orjson.loads(json_dumps(old)), PROFILE, PRED), w)
    old.pop("pred_sketch")  # states saved before prediction drift existed
    legacy = WindowAcc.from_dict(old, PROFILE, PRED)
    assert legacy.pred is None and legacy.n == w.n and legacy.sketch is not None
    assert legacy.sketch.to_dict() == w.sketch.to_dict()  # type: ignore[union-attr]


def test_an_empty_feature_stores_its_infinite_extremes() -> None:
    """A pane where a numeric feature had no value yet keeps +-inf extremes: JSON has no infinity."""
    sketch = WindowSketch.empty(PROFILE).update({"c": np.array(["a", "b"], dtype=object)})
    stored = orjson.loads(json_dumps(sketch.to_packed_dict()))
    assert "-inf" in stored["packed"]["floats"]
    back = WindowSketch.from_dict(stored, PROFILE)
    assert back.features["x"].minimum == np.inf and back.features["x"].maximum == -np.inf
    assert back.to_dict() == sketch.to_dict()
    # merging the loaded pane takes the other side's extremes
    full = WindowSketch.empty(PROFILE).update({"x": np.array([-1.5, 2.0]), "c": np.array(["a", "b"], dtype=object)})
    assert back.merge(full).to_dict() == sketch.merge(full).to_dict()
    assert back.merge(full).features["x"].minimum == -1.5


@pytest.mark.parametrize("damage", ["short ints", "long floats", "unseen maps", "negative"])
def test_a_damaged_packed_sketch_is_refused(damage: str) -> None:
    stored = copy.deepcopy(pane(0, seed=8).sketch.to_packed_dict())  # type: ignore[union-attr]
    packed = stored["packed"]
    if damage == "short ints":
        packed["ints"].pop()
    elif damage == "long floats":
        packed["floats"].append(0.0)
    elif damage == "unseen maps":
        packed["unseen"].append({})
    else:
        packed["ints"][0] = -1
    with pytest.raises(ProfileMismatchError, match="packed sketch"):
        WindowSketch.from_dict(stored, PROFILE)


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
