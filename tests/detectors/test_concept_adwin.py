"""ADWIN: the same detections as river's, chunking, JSON round-trips mid-stream, config errors."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from itertools import pairwise
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.base import ConfigError, InputError
from detectors.concept import adwin
from detectors.concept.adwin import AdwinConfig, AdwinState


def abrupt(rng: np.random.Generator) -> np.ndarray:
    """Bernoulli error stream: rate 0.1, then 0.4 from index 2000."""
    return np.r_[rng.random(2000) < 0.1, rng.random(8000) < 0.4].astype(np.float64)


def gradual(rng: np.random.Generator) -> np.ndarray:
    """Rate 0.1 for 2000 items, rising linearly to 0.4 over 3000, then 0.4."""
    rate = np.r_[np.full(2000, 0.1), np.linspace(0.1, 0.4, 3000), np.full(5000, 0.4)]
    return (rng.random(rate.size) < rate).astype(np.float64)


def no_change(rng: np.random.Generator) -> np.ndarray:
    return (rng.random(20000) < 0.1).astype(np.float64)


def real_valued(rng: np.random.Generator) -> np.ndarray:
    """Losses with a mean shift and a variance change: float sums, not integers."""
    return np.r_[rng.gamma(2.0, 0.5, 3000), rng.gamma(2.0, 0.7, 3000), rng.normal(1.0, 2.0, 3000)]


STREAMS: dict[str, Callable[[np.random.Generator], np.ndarray]] = {
    "abrupt": abrupt,
    "gradual": gradual,
    "no_change": no_change,
    "real_valued": real_valued,
}
CONFIGS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "eager": {"delta": 0.05, "clock": 1, "max_buckets": 3, "min_window_length": 10, "grace_period": 50},
}


def _river(values: np.ndarray, **params: Any) -> tuple[list[int], Any]:
    from river import drift

    detector = drift.ADWIN(**params)
    found = []
    for i, x in enumerate(values.tolist()):
        detector.update(x)
        if detector.drift_detected:
            found.append(i)
    return found, detector


def _chunks(values: np.ndarray, sizes: Iterator[int]) -> Iterator[np.ndarray]:
    start = 0
    while start < values.size:
        size = next(sizes)
        yield values[start : start + size]
        start += size


def _run_chunked(state: AdwinState, values: np.ndarray, sizes: Iterator[int]) -> tuple[AdwinState, list[int]]:
    found, offset = [], 0
    for chunk in _chunks(values, sizes):
        state, hits = adwin.update(state, chunk)
        found += [offset + i for i in hits]
        offset += chunk.size
    return state, found


@pytest.mark.parametrize("config_name", sorted(CONFIGS))
@pytest.mark.parametrize("stream", sorted(STREAMS))
@pytest.mark.parametrize("seed", range(3))
def test_detections_equal_river_exactly(stream: str, seed: int, config_name: str) -> None:
    pytest.importorskip("river", reason="river is the oracle (dev extra)")
    values = STREAMS[stream](np.random.default_rng(seed))
    params = CONFIGS[config_name]
    expected, theirs = _river(values, **params)
    state, found = adwin.update(adwin.init_state(AdwinConfig(**params)), values)
    assert found == expected  # exact indices, not a tolerance
    # the window after the last item is river's to the bit: same buckets, same float operations
    assert state.width == theirs.width
    assert state.total == theirs.total
    assert state.sum_sq_dev == theirs.variance  # river's "variance" is the sum of squared deviations
    assert state.mean == theirs.estimation


def test_known_detections_of_the_seeded_streams() -> None:
    """Pinned so a change shows even where river is not installed (river 0.26.1 gives the same)."""
    rng = np.random.default_rng(0)
    _, found = adwin.update(adwin.init_state(), abrupt(rng))
    assert len(found) == 1 and 2000 < found[0] < 2200
    _, none = adwin.update(adwin.init_state(), no_change(np.random.default_rng(0)))
    assert none == []


def test_window_statistics_follow_river_step_by_step() -> None:
    # the submodule itself: `import river` alone does not load river.drift (the test failed run on its own)
    drift = pytest.importorskip("river.drift", reason="river is the oracle (dev extra)")
    values = real_valued(np.random.default_rng(5))[2500:4000]
    theirs = drift.ADWIN(clock=4)
    state = adwin.init_state(AdwinConfig(clock=4))
    for x in values:
        theirs.update(float(x))
        state, _ = adwin.update(state, [x])
        assert (state.width, state.total, state.sum_sq_dev) == (theirs.width, theirs.total, theirs.variance)
    assert state.variance == pytest.approx(values[-state.width :].var(), rel=1e-9)


@pytest.mark.parametrize("stream", sorted(STREAMS))
def test_chunked_updates_equal_one_big_update(stream: str) -> None:
    values = STREAMS[stream](np.random.default_rng(1))[:6000]
    whole, expected = adwin.update(adwin.init_state(), values)
    rng = np.random.default_rng(2)
    sizes = iter(rng.integers(0, 400, size=10_000).tolist())  # zero-length batches included
    chunked, found = _run_chunked(adwin.init_state(), values, sizes)
    assert found == expected
    assert chunked.to_dict() == whole.to_dict()


def test_one_at_a_time_equals_one_big_update() -> None:
    values = abrupt(np.random.default_rng(3))[:3000]
    whole, expected = adwin.update(adwin.init_state(), values)
    single, found = _run_chunked(adwin.init_state(), values, iter([1] * values.size))
    assert found == expected and single.to_dict() == whole.to_dict()


def test_json_round_trip_mid_stream_continues_identically() -> None:
    values = gradual(np.random.default_rng(4))
    _, expected = adwin.update(adwin.init_state(), values)
    state, found, offset = adwin.init_state(), [], 0
    for chunk in np.array_split(values, 37):
        state = AdwinState.from_dict(json.loads(json.dumps(state.to_dict(), allow_nan=False)))
        state, hits = adwin.update(state, chunk)
        found += [offset + i for i in hits]
        offset += chunk.size
    assert found == expected
    assert state.n_seen == values.size and state.n_detections == len(expected)


def test_detection_on_the_last_item_of_a_batch_restarts_on_the_next() -> None:
    values = abrupt(np.random.default_rng(0))
    _, expected = adwin.update(adwin.init_state(), values)
    cut = expected[0] + 1
    state, _ = adwin.update(adwin.init_state(), values[:cut])
    assert state.reset_pending
    data = json.loads(json.dumps(state.to_dict()))
    state = AdwinState.from_dict(data)
    state, later = adwin.update(state, values[cut:])
    assert [cut + i for i in later] == expected[1:]
    assert not state.reset_pending


def test_update_leaves_state_and_input_unchanged() -> None:
    values = np.r_[np.zeros(500), np.ones(500)]
    state, _ = adwin.update(adwin.init_state(), values[:100])
    before = state.to_dict()
    adwin.update(state, values[100:])
    assert state.to_dict() == before
    assert values.sum() == 500


def test_empty_batch_changes_nothing() -> None:
    state, _ = adwin.update(adwin.init_state(), np.arange(50.0))
    again, found = adwin.update(state, np.array([]))
    assert found == [] and again == state


@pytest.mark.parametrize(
    "kwargs",
    [
        {"delta": 0.0},
        {"delta": 1.0},
        {"delta": "0.1"},
        {"clock": 0},
        {"clock": 2.0},
        {"max_buckets": 0},
        {"min_window_length": 0},
        {"grace_period": -1},
        {"grace_period": True},
    ],
)
def test_bad_config_raises(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        AdwinConfig(**kwargs)


@pytest.mark.parametrize("values", [[1.0, float("nan")], [[1.0, 2.0]], ["a"], [float("inf")]])
def test_bad_values_raise(values: Any) -> None:
    with pytest.raises(InputError):
        adwin.update(adwin.init_state(), values)


def test_corrupt_state_is_refused() -> None:
    state, _ = adwin.update(adwin.init_state(), np.arange(100.0))
    data = state.to_dict()
    with pytest.raises(InputError):
        AdwinState.from_dict({**data, "width": data["width"] + 1})
    with pytest.raises(InputError):
        AdwinState.from_dict({**data, "version": 0})
    with pytest.raises(InputError):
        AdwinState.from_dict({**data, "bucket_totals": data["bucket_totals"][:-1]})


@settings(max_examples=40, deadline=None)
@given(
    values=st.lists(st.sampled_from([0.0, 1.0, 0.5, 3.0]), min_size=0, max_size=600),
    cuts=st.lists(st.integers(0, 600), max_size=8),
)
def test_any_split_of_a_stream_gives_the_same_detections(values: list[float], cuts: list[int]) -> None:
    arr = np.array(values)
    whole, expected = adwin.update(adwin.init_state(AdwinConfig(clock=1, grace_period=5)), arr)
    state, found = adwin.init_state(AdwinConfig(clock=1, grace_period=5)), []
    bounds = sorted({0, arr.size, *(c for c in cuts if c <= arr.size)})
    for lo, hi in pairwise(bounds):
        state, hits = adwin.update(state, arr[lo:hi])
        found += [lo + i for i in hits]
    assert found == expected and state.to_dict() == whole.to_dict()
