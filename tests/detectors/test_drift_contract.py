"""Contract of the drift detector: round-trips, purity, chunking, config errors, too little data."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from detectors.base import ConfigError, InputError, OpsloopDetectorError, ProfileMismatchError, Status
from detectors.drift import (
    OTHER,
    FeatureDriftConfig,
    ReferenceProfile,
    WindowSketch,
    build_profile,
    evaluate_drift,
)
from detectors.drift.sketch import MAX_TRACKED_UNSEEN

CATS = np.array(["a", "b", "c", None], dtype=object)


def _columns(rng: np.random.Generator, n: int, shift: float = 0.0) -> dict[str, np.ndarray]:
    x = rng.normal(shift, 1.0, size=n)
    x[rng.random(n) < 0.1] = np.nan
    return {
        "x": x,
        "y": rng.exponential(size=n),
        "c": rng.choice(CATS, p=[0.5, 0.3, 0.15, 0.05], size=n),
        "flag": rng.choice(np.array(["true", "false"], dtype=object), size=n),
    }


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(42)


@pytest.fixture
def profile(rng: np.random.Generator) -> ReferenceProfile:
    return build_profile(_columns(rng, 3000))


def _json(obj: dict[str, Any]) -> Any:
    return json.loads(json.dumps(obj, allow_nan=False))


def _same_sketch(a: WindowSketch, b: WindowSketch) -> None:
    da, db = a.to_dict(), b.to_dict()
    for name in da["features"]:
        fa, fb = da["features"][name], db["features"][name]
        for key in ("sum", "sum_sq"):  # float sums: the last bits follow the order of additions
            if key in fa:
                assert fa.pop(key) == pytest.approx(fb.pop(key), rel=1e-12)
    assert da == db


def test_profile_and_sketch_survive_json_round_trip_with_identical_results(
    profile: ReferenceProfile, rng: np.random.Generator
) -> None:
    window = _columns(rng, 1500, shift=0.3)
    window["c"][:7] = "brand-new"
    sketch = WindowSketch.empty(profile).update(window)
    config = FeatureDriftConfig()

    profile2 = ReferenceProfile.from_dict(_json(profile.to_dict()))
    sketch2 = WindowSketch.from_dict(_json(sketch.to_dict()), profile2)

    assert profile2.fingerprint == profile.fingerprint
    assert (
        evaluate_drift(profile2, sketch2, config).to_dict()
        == evaluate_drift(profile, sketch, config).to_dict()
    )
    # the restored sketch keeps accumulating like the original
    more = _columns(rng, 500)
    _same_sketch(sketch2.update(more), sketch.update(more))


def test_result_to_dict_is_plain_json(profile: ReferenceProfile, rng: np.random.Generator) -> None:
    result = evaluate_drift(
        profile, WindowSketch.empty(profile).update(_columns(rng, 500)), FeatureDriftConfig()
    )
    data = result.to_dict()
    assert _json(data) == data
    assert data["detector"] == "drift.features"
    assert data["status"] in {"ok", "drift"}


def test_update_does_not_mutate_inputs(profile: ReferenceProfile, rng: np.random.Generator) -> None:
    window = _columns(rng, 800)
    copies = {name: col.copy() for name, col in window.items()}
    empty = WindowSketch.empty(profile)
    before = json.dumps(empty.to_dict())
    profile_before = json.dumps(profile.to_dict())

    updated = empty.update(window)

    assert updated is not empty
    assert json.dumps(empty.to_dict()) == before
    assert json.dumps(profile.to_dict()) == profile_before
    for name, col in window.items():
        np.testing.assert_array_equal(col, copies[name])
    assert updated.n_rows == 800


def test_ten_chunk_updates_equal_one_update(profile: ReferenceProfile, rng: np.random.Generator) -> None:
    window = _columns(rng, 2000, shift=0.2)
    window["c"][::97] = "unseen-1"
    window["c"][::131] = "unseen-2"
    whole = WindowSketch.empty(profile).update(window)
    chunked = WindowSketch.empty(profile)
    for part in np.array_split(np.arange(2000), 10):
        chunked = chunked.update({name: col[part] for name, col in window.items()})
    _same_sketch(chunked, whole)
    config = FeatureDriftConfig()
    a, b = evaluate_drift(profile, chunked, config), evaluate_drift(profile, whole, config)
    assert [s.statistic for s in a.scores] == [s.statistic for s in b.scores]
    assert [s.effect_value for s in a.scores] == [s.effect_value for s in b.scores]


def test_merge_of_two_halves_equals_the_whole(profile: ReferenceProfile, rng: np.random.Generator) -> None:
    window = _columns(rng, 1000)
    first = WindowSketch.empty(profile).update({n: c[:400] for n, c in window.items()})
    second = WindowSketch.empty(profile).update({n: c[400:] for n, c in window.items()})
    _same_sketch(first.merge(second), WindowSketch.empty(profile).update(window))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("alpha", 0.0),
        ("alpha", 1.5),
        ("alpha", float("nan")),
        ("correction", "holm"),
        ("numeric_test", "anderson"),
        ("categorical_test", "g-test"),
        ("psi_floor_numeric", -0.1),
        ("psi_floor_categorical", float("inf")),
        ("min_window_rows", 0),
        ("min_reference_rows", 10.5),
        ("dataset_drift_share", 1.0),
    ],
)
def test_bad_config_raises_config_error_naming_the_field(field: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=field):
        FeatureDriftConfig(**{field: value})


def test_config_error_is_a_value_error() -> None:
    assert issubclass(ConfigError, OpsloopDetectorError)
    assert issubclass(OpsloopDetectorError, ValueError)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"fine_bins": 1},
        {"coarse_bins": 0},
        {"coarse_bins": 200},
        {"max_categories": 0},
        {"kinds": {"x": "text"}},
    ],
)
def test_bad_profile_settings_raise_config_error(kwargs: dict[str, Any], rng: np.random.Generator) -> None:
    with pytest.raises(ConfigError):
        build_profile(_columns(rng, 100), **kwargs)


def test_columns_of_different_lengths_raise_input_error(profile: ReferenceProfile) -> None:
    with pytest.raises(InputError):
        WindowSketch.empty(profile).update({"x": np.zeros(3), "y": np.zeros(4)})


def test_sketch_of_another_profile_is_refused(profile: ReferenceProfile, rng: np.random.Generator) -> None:
    other = build_profile(_columns(rng, 300))
    sketch = WindowSketch.empty(other).update(_columns(rng, 300))
    with pytest.raises(ProfileMismatchError):
        evaluate_drift(profile, sketch, FeatureDriftConfig())
    with pytest.raises(ProfileMismatchError):
        WindowSketch.from_dict(sketch.to_dict(), profile)


def test_tiny_window_gives_insufficient_data(profile: ReferenceProfile, rng: np.random.Generator) -> None:
    result = evaluate_drift(
        profile, WindowSketch.empty(profile).update(_columns(rng, 99, shift=5.0)), FeatureDriftConfig()
    )
    assert result.status == Status.INSUFFICIENT_DATA
    assert result.share_drifted is None
    assert result.drifted_features == ()
    assert all(s.status == Status.INSUFFICIENT_DATA and s.p_value is None for s in result.scores)


def test_empty_window_and_tiny_reference_give_insufficient_data(rng: np.random.Generator) -> None:
    small = build_profile(_columns(rng, 50))
    config = FeatureDriftConfig()
    assert evaluate_drift(small, WindowSketch.empty(small), config).status == Status.INSUFFICIENT_DATA
    window = WindowSketch.empty(small).update(_columns(rng, 500))
    assert evaluate_drift(small, window, config).status == Status.INSUFFICIENT_DATA


def test_feature_without_reference_values_is_insufficient_alone(rng: np.random.Generator) -> None:
    ref = _columns(rng, 1000)
    ref["x"] = np.full(1000, np.nan)
    profile = build_profile(ref)
    result = evaluate_drift(
        profile, WindowSketch.empty(profile).update(_columns(rng, 1000)), FeatureDriftConfig()
    )
    assert result.score("x").status == Status.INSUFFICIENT_DATA
    assert result.score("y").status == Status.OK
    assert result.status == Status.OK


def test_absent_features_count_as_missing_and_extra_ones_are_reported(
    profile: ReferenceProfile, rng: np.random.Generator
) -> None:
    window = _columns(rng, 300)
    del window["y"]
    window["surprise"] = np.ones(300)
    sketch = WindowSketch.empty(profile).update(window)
    assert sketch.unknown_features == frozenset({"surprise"})
    result = evaluate_drift(profile, sketch, FeatureDriftConfig())
    assert result.score("y").missing_rate == 1.0
    assert result.score("y").status == Status.INSUFFICIENT_DATA
    assert result.unknown_features == ("surprise",)


def test_a_strong_shift_is_flagged_on_that_feature_only(profile: ReferenceProfile) -> None:
    rng = np.random.default_rng(9)
    window = _columns(rng, 2000)
    window["y"] = window["y"] + 1.0
    result = evaluate_drift(profile, WindowSketch.empty(profile).update(window), FeatureDriftConfig())
    assert result.status == Status.DRIFT
    assert result.drifted_features == ("y",)
    assert result.share_drifted == pytest.approx(1 / 4)


def test_dataset_drift_share_sets_the_window_status(profile: ReferenceProfile) -> None:
    window = _columns(np.random.default_rng(9), 2000)
    window["y"] = window["y"] + 1.0
    sketch = WindowSketch.empty(profile).update(window)
    result = evaluate_drift(profile, sketch, FeatureDriftConfig(dataset_drift_share=0.5))
    assert result.drifted_features == ("y",)
    assert result.status == Status.OK


def test_unseen_categories_are_reported_and_counted(
    profile: ReferenceProfile, rng: np.random.Generator
) -> None:
    window = _columns(rng, 1000)
    window["c"][:200] = "zeta"
    window["c"][200:230] = "omega"
    score = evaluate_drift(profile, WindowSketch.empty(profile).update(window), FeatureDriftConfig()).score(
        "c"
    )
    assert score.extra["unseen_categories"] == {"zeta": 200, "omega": 30}
    assert score.extra["unseen_count"] == 230
    assert score.drifted


def test_unseen_names_are_tracked_up_to_a_cap(profile: ReferenceProfile) -> None:
    n = MAX_TRACKED_UNSEEN + 50
    window = {"c": np.array([f"new-{i:04d}" for i in range(n)], dtype=object)}
    feature = WindowSketch.empty(profile).update(window).features["c"]
    assert len(feature.unseen) == MAX_TRACKED_UNSEEN  # type: ignore[union-attr]
    assert feature.unseen_count == n  # type: ignore[union-attr]


def test_truncated_profile_pools_the_tail_into_other(rng: np.random.Generator) -> None:
    ref = np.array([f"k{i}" for i in rng.integers(0, 50, size=5000)], dtype=object)
    profile = build_profile({"c": ref}, max_categories=10)
    fp = profile.features["c"]
    assert len(fp.categories) == 10  # type: ignore[union-attr]
    assert fp.n_buckets == 11  # type: ignore[union-attr]
    window = np.array([f"k{i}" for i in rng.integers(0, 50, size=2000)], dtype=object)
    sketch = WindowSketch.empty(profile).update({"c": window})
    result = evaluate_drift(profile, sketch, FeatureDriftConfig())
    assert result.score("c").extra["unseen_count"] == 0
    assert result.status == Status.OK
    assert OTHER == "__other__"


def test_kinds_override_inference(rng: np.random.Generator) -> None:
    cols = {"code": rng.integers(0, 3, size=500).astype(np.float64)}
    assert build_profile(cols).kinds == {"code": "numeric"}
    as_text = {"code": cols["code"].astype(str).astype(object)}
    assert build_profile(as_text, kinds={"code": "categorical"}).kinds == {"code": "categorical"}
