"""``FairnessCounts.of_segments``: one batch cut into row segments, each counted as ``update`` would alone."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detectors.base import ConfigError, InputError
from detectors.fairness import FairnessCounts

# "a" and "a!": an intersection's groups come in code order ("a" before "a!"), which is not their sorted
# order as labels ("a!&b" before "a&b")
VALUES = st.sampled_from(["a", "a!", "b", "c", "x&y", "z\\", "", None, float("nan")])


@st.composite
def batches(draw: st.DrawFn) -> dict[str, Any]:
    rows = draw(st.integers(0, 40))
    attributes = ("sex", "race", "age")[: draw(st.integers(1, 3))]
    groups: dict[str, np.ndarray] = {}
    for name in attributes:
        if draw(st.integers(0, 5)) == 0:
            continue  # absent: every row in the MISSING group
        groups[name] = np.array(draw(st.lists(VALUES, min_size=rows, max_size=rows)), dtype=object)
    pairs = list(itertools.combinations(attributes, 2))
    intersections = draw(st.lists(st.sampled_from(pairs), unique=True, max_size=2)) if pairs else []
    y_pred = np.array(draw(st.lists(st.integers(0, 1), min_size=rows, max_size=rows)), dtype=np.int64)
    y_true = None
    if draw(st.booleans()):
        y_true = np.array(draw(st.lists(st.sampled_from([0.0, 1.0, np.nan]), min_size=rows, max_size=rows)))
    cuts = sorted(draw(st.lists(st.integers(0, rows), min_size=1, max_size=8)))
    return {"attributes": attributes, "intersections": intersections, "groups": groups, "y_pred": y_pred,
            "y_true": y_true, "bounds": cuts}  # fmt: skip


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=batches())
def test_each_segment_equals_an_update_with_its_rows_alone(batch: dict[str, Any]) -> None:
    empty = FairnessCounts.empty(batch["attributes"], batch["intersections"])
    bounds, y_true = batch["bounds"], batch["y_true"]
    parts = empty.of_segments(batch["groups"], batch["y_pred"], bounds, y_true)
    assert len(parts) == len(bounds) - 1
    for part, a, b in zip(parts, bounds[:-1], bounds[1:], strict=True):
        want = empty.update(
            {name: col[a:b] for name, col in batch["groups"].items()},
            batch["y_pred"][a:b],
            None if y_true is None else y_true[a:b],
        )
        assert part.to_dict() == want.to_dict()
        for table in part.tables.values():
            assert table.counts.dtype == np.int64 and not table.counts.flags.writeable
        # and it merges as the checked constructor's counts do
        assert part.merge(want).to_dict() == want.merge(want).to_dict()


def test_bad_bounds_and_columns_are_refused() -> None:
    empty = FairnessCounts.empty(["sex"])
    groups = {"sex": np.array(["f", "m", "f"], dtype=object)}
    for bounds in ([0, 4], [2, 1], []):
        with pytest.raises(InputError, match="bounds"):
            empty.of_segments(groups, np.array([0, 1, 1]), bounds)
    with pytest.raises(InputError, match="'sex' has 3 rows"):
        empty.of_segments(groups, np.array([0, 1]), [0, 2])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=batches(), k=st.integers(1, 6), data=st.data())
def test_merge_runs_equals_folding_the_segments(batch: dict[str, Any], k: int, data: st.DataObject) -> None:
    """A sliding window's counts: each run of ``k`` panes equals merging them one by one, groups and their
    order included (panes missing a group, intersections whose groups are not in sorted order, empty panes)."""
    empty = FairnessCounts.empty(batch["attributes"], batch["intersections"])
    panes = empty.of_segments(batch["groups"], batch["y_pred"], batch["bounds"], batch["y_true"])
    if len(panes) < k:
        assert FairnessCounts.merge_runs(panes, k, []) == []
        return
    ends = sorted(data.draw(st.sets(st.integers(k - 1, len(panes) - 1), min_size=1)))
    got = FairnessCounts.merge_runs(panes, k, ends)
    for j, window in zip(ends, got, strict=True):
        want = panes[j + 1 - k]
        for p in panes[j + 2 - k : j + 1]:
            want = want.merge(p)
        assert window.to_dict() == want.to_dict()
        assert window.n_rows == want.n_rows
        for table in window.tables.values():
            assert table.counts.dtype == np.int64 and not table.counts.flags.writeable


def test_merge_runs_refuses_mixed_attributes_and_missing_runs() -> None:
    a = FairnessCounts.empty(["sex"]).update({"sex": np.array(["f"], dtype=object)}, [1])
    b = FairnessCounts.empty(["race"]).update({"race": np.array(["x"], dtype=object)}, [0])
    with pytest.raises(ConfigError, match="different attributes"):
        FairnessCounts.merge_runs([a, b], 2, [1])
    with pytest.raises(ValueError, match="every end"):
        FairnessCounts.merge_runs([a, a], 2, [0])
