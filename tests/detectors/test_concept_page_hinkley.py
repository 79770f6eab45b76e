"""Page–Hinkley: the same detections as river's, chunking, JSON round-trips mid-stream, config errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from itertools import pairwise
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.base import ConfigError, InputError
from detectors.concept import page_hinkley
from detectors.concept.page_hinkley import PageHinkleyConfig, PageHinkleyState


def _abrupt(rng: np.random.Generator) -> np.ndarray:
    """Bernoulli error stream: rate 0.1, then 0.4 from index 2000."""
    return np.r_[rng.random(2000) < 0.1, rng.random(8000) < 0.4].astype(np.float64)


def _gradual(rng: np.random.Generator) -> np.ndarray:
    rate = np.r_[np.full(2000, 0.1), np.linspace(0.1, 0.4, 3000), np.full(5000, 0.4)]
    return (rng.random(rate.size) < rate).astype(np.float64)


def _no_change(rng: np.random.Generator) -> np.ndarray:
    return (rng.random(20000) < 0.1).astype(np.float64)


def _real_valued(rng: np.random.Generator) -> np.ndarray:
    return np.r_[rng.gamma(2.0, 0.5, 3000), rng.gamma(2.0, 0.7, 3000), rng.normal(1.0, 2.0, 3000)]


def _falling(rng: np.random.Generator) -> np.ndarray:
    """Error rate 0.4, then 0.1 from index 3000 (a fix shipped): for mode "down"."""
    return np.r_[rng.random(3000) < 0.4, rng.random(5000) < 0.1].astype(np.float64)


STREAMS: dict[str, Callable[[np.random.Generator], np.ndarray]] = {
    "abrupt": _abrupt,
    "gradual": _gradual,
    "no_change": _no_change,
    "real_valued": _real_valued,
    "falling": _falling,
}
CONFIGS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "up": {"mode": "up"},
    "down": {"mode": "down", "threshold": 20.0},
    "custom": {"min_instances": 100, "delta": 0.05, "threshold": 10.0, "alpha": 0.999},
}


def _river(values: np.ndarray, **params: Any) -> tuple[list[int], Any]:
    from river import drift

    detector = drift.PageHinkley(**params)
    found = []
    for i, x in enumerate(values.tolist()):
        detector.update(x)
        if detector.drift_detected:
            found.append(i)
    return found, detector


@pytest.mark.parametrize("config_name", sorted(CONFIGS))
@pytest.mark.parametrize("stream", sorted(STREAMS))
@pytest.mark.parametrize("seed", range(3))
def test_detections_equal_river_exactly(stream: str, seed: int, config_name: str) -> None:
    pytest.importorskip("river", reason="river is the oracle (dev extra)")
    values = STREAMS[stream](np.random.default_rng(seed))
    params = CONFIGS[config_name]
    expected, theirs = _river(values, **params)
    state, found = page_hinkley.update(page_hinkley.init_state(PageHinkleyConfig(**params)), values)
    assert found == expected  # exact indices, not a tolerance
    assert state.mean == theirs._x_mean.get() and state.n == theirs._x_mean.n
    assert (state.sum_increase, state.sum_decrease) == (theirs._sum_increase, theirs._sum_decrease)


def test_known_detections_of_the_seeded_streams() -> None:
    """Pinned so a change shows even where river is not installed (river 0.26.1 gives the same)."""
    _, found = page_hinkley.update(page_hinkley.init_state(), STREAMS["abrupt"](np.random.default_rng(0)))
    assert found == [2084]
    config = PageHinkleyConfig(mode="down")
    _, down = page_hinkley.update(page_hinkley.init_state(config), _falling(np.random.default_rng(0)))
    assert len(down) >= 1 and 3000 < down[0] < 3400


@pytest.mark.parametrize("stream", sorted(STREAMS))
def test_chunked_and_json_round_tripped_updates_equal_one_big_update(stream: str) -> None:
    values = STREAMS[stream](np.random.default_rng(1))
    whole, expected = page_hinkley.update(page_hinkley.init_state(), values)
    rng = np.random.default_rng(2)
    state, found, start = page_hinkley.init_state(), [], 0
    while start < values.size:
        size = int(rng.integers(0, 500))
        state = PageHinkleyState.from_dict(json.loads(json.dumps(state.to_dict(), allow_nan=False)))
        state, hits = page_hinkley.update(state, values[start : start + size])
        found += [start + i for i in hits]
        start += size
    assert found == expected
    assert state.to_dict() == whole.to_dict()


def test_fresh_state_round_trips_with_infinite_minimum() -> None:
    state = page_hinkley.init_state()
    data = json.loads(json.dumps(state.to_dict(), allow_nan=False))
    assert data["min_increase"] is None
    assert PageHinkleyState.from_dict(data) == state


def test_detection_on_the_last_item_of_a_batch_restarts_on_the_next() -> None:
    values = STREAMS["gradual"](np.random.default_rng(0))
    _, expected = page_hinkley.update(page_hinkley.init_state(), values)
    cut = expected[0] + 1
    state, _ = page_hinkley.update(page_hinkley.init_state(), values[:cut])
    assert state.reset_pending
    state, later = page_hinkley.update(PageHinkleyState.from_dict(state.to_dict()), values[cut:])
    assert [cut + i for i in later] == expected[1:]
    assert state.n_detections == len(expected)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_instances": 0},
        {"delta": -0.1},
        {"threshold": 0.0},
        {"alpha": 0.0},
        {"alpha": 1.5},
        {"alpha": float("nan")},
        {"mode": "sideways"},
    ],
)
def test_bad_config_raises(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        PageHinkleyConfig(**kwargs)


@pytest.mark.parametrize("values", [[1.0, float("nan")], [[1.0]], ["x"]])
def test_bad_values_raise(values: Any) -> None:
    with pytest.raises(InputError):
        page_hinkley.update(page_hinkley.init_state(), values)


def test_update_leaves_state_unchanged() -> None:
    state, _ = page_hinkley.update(page_hinkley.init_state(), np.ones(10))
    before = state.to_dict()
    page_hinkley.update(state, np.zeros(100))
    assert state.to_dict() == before


@settings(max_examples=40, deadline=None)
@given(
    values=st.lists(st.sampled_from([0.0, 1.0, 5.0, -2.0]), max_size=400),
    cuts=st.lists(st.integers(0, 400), max_size=8),
)
def test_any_split_of_a_stream_gives_the_same_detections(values: list[float], cuts: list[int]) -> None:
    arr = np.array(values)
    config = PageHinkleyConfig(min_instances=5, threshold=5.0)
    whole, expected = page_hinkley.update(page_hinkley.init_state(config), arr)
    state, found = page_hinkley.init_state(config), []
    bounds = sorted({0, arr.size, *(c for c in cuts if c <= arr.size)})
    for lo, hi in pairwise(bounds):
        state, hits = page_hinkley.update(state, arr[lo:hi])
        found += [lo + i for i in hits]
    assert found == expected and state.to_dict() == whole.to_dict()
