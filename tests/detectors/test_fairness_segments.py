"""``FairnessCounts.of_segments``: one batch cut into row segments, each counted as ``update`` would alone."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detectors.base import InputError
from detectors.fairness import FairnessCounts

VALUES = st.sampled_from(["a", "b", "c", "x&y", "z\\", "", None, float("nan")])


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
