"""Contract of the fairness detector: chunking, merging, JSON round-trips, purity, config and input errors."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.base import ConfigError, InputError, OpsloopDetectorError, Status
from detectors.fairness import (
    DETECTOR_NAME,
    MISSING,
    FairnessConfig,
    FairnessCounts,
    FairnessStatus,
    evaluate_fairness,
)

CONFIG = FairnessConfig(attributes=("sex", "race"), intersections=(("sex", "race"),), min_group_size=50)


def _batch(rng: np.random.Generator, n: int) -> dict[str, Any]:
    y_true = (rng.random(n) < 0.4).astype(np.float64)
    y_true[rng.random(n) < 0.3] = np.nan
    return {
        "groups": {
            "sex": rng.choice(np.array(["f", "m", None], dtype=object), size=n, p=[0.48, 0.48, 0.04]),
            "race": rng.choice(
                np.array(["a", "b", "c", "rare"], dtype=object), size=n, p=[0.5, 0.3, 0.19, 0.01]
            ),
        },
        "y_pred": (rng.random(n) < 0.45).astype(np.int64),
        "y_true": y_true,
    }


def _part(batch: dict[str, Any], idx: np.ndarray) -> dict[str, Any]:
    return {
        "groups": {k: v[idx] for k, v in batch["groups"].items()},
        "y_pred": batch["y_pred"][idx],
        "y_true": batch["y_true"][idx],
    }


def _only_plain_types(value: Any) -> bool:
    """Exactly dict, list, str, int, float, bool or None: no numpy scalars, no enums (even str ones)."""
    if isinstance(value, dict):
        return all(type(k) is str and _only_plain_types(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_only_plain_types(v) for v in value)
    return value is None or type(value) in (str, int, float, bool)


def _json(obj: dict[str, Any]) -> Any:
    return json.loads(json.dumps(obj, allow_nan=False))


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(2024)


def test_ten_chunk_updates_equal_one_update(rng: np.random.Generator) -> None:
    batch = _batch(rng, 3000)
    whole = CONFIG.empty_counts().update(**batch)
    chunked = CONFIG.empty_counts()
    for idx in np.array_split(np.arange(3000), 10):
        chunked = chunked.update(**_part(batch, idx))
    assert chunked.to_dict() == whole.to_dict()
    assert evaluate_fairness(chunked, CONFIG).to_dict() == evaluate_fairness(whole, CONFIG).to_dict()


def test_chunks_that_miss_groups_still_add_up(rng: np.random.Generator) -> None:
    batch = _batch(rng, 1000)
    order = np.argsort(batch["groups"]["race"].astype(str), kind="stable")  # each chunk sees few groups
    chunked = CONFIG.empty_counts()
    for idx in np.array_split(order, 10):
        chunked = chunked.update(**_part(batch, idx))
    assert chunked.to_dict() == CONFIG.empty_counts().update(**batch).to_dict()


def test_merge_of_two_halves_equals_the_whole(rng: np.random.Generator) -> None:
    batch = _batch(rng, 1200)
    first = CONFIG.empty_counts().update(**_part(batch, np.arange(500)))
    second = CONFIG.empty_counts().update(**_part(batch, np.arange(500, 1200)))
    assert first.merge(second).to_dict() == CONFIG.empty_counts().update(**batch).to_dict()


def test_counts_survive_json_round_trip_with_identical_results(rng: np.random.Generator) -> None:
    counts = CONFIG.empty_counts().update(**_batch(rng, 2000))
    restored = FairnessCounts.from_dict(_json(counts.to_dict()))
    assert restored.to_dict() == counts.to_dict()
    assert evaluate_fairness(restored, CONFIG).to_dict() == evaluate_fairness(counts, CONFIG).to_dict()
    more = _batch(rng, 300)
    assert restored.update(**more).to_dict() == counts.update(**more).to_dict()


def test_counts_built_inside_are_what_the_checked_constructor_builds(rng: np.random.Generator) -> None:
    """Updates and merges skip the constructor's checks (their inputs are computed, not given): the objects
    must still be exactly what the checked constructor makes of the same values, and stay immutable."""
    from detectors.fairness.counts import GroupCounts

    empty = CONFIG.empty_counts()
    a = empty.update(**_part(_batch(rng, 400), np.arange(400)))
    b = empty.update(**_part(_batch(rng, 7), np.arange(7)))  # misses some groups
    for counts in (a, b, a.merge(b), b.merge(a), empty.merge(a), a.merge(empty), empty.merge(empty)):
        checked = FairnessCounts(counts.attributes, counts.intersections, counts.n_rows, counts.tables)
        assert list(checked.__dict__) == list(counts.__dict__)
        assert checked.tables.keys() == counts.tables.keys()
        for table in counts.tables.values():
            again = GroupCounts(table.groups, table.counts)
            assert type(table.groups) is tuple and table.groups == again.groups
            assert table.counts.dtype == np.int64 and np.array_equal(table.counts, again.counts)
            assert table.counts.shape == again.counts.shape and not table.counts.flags.writeable
    assert a.merge(b).n_rows == 407 and empty.merge(a).to_dict() == a.to_dict() == a.merge(empty).to_dict()


def test_differences_are_those_of_the_full_dict(rng: np.random.Generator) -> None:
    batch = _batch(rng, 3000)
    batch["y_pred"][batch["groups"]["sex"] == "f"] = 0  # a gap, so some differences are large
    result = evaluate_fairness(CONFIG.empty_counts().update(**batch), CONFIG)
    full = result.to_dict()["attributes"]
    expected = {attr: {m: d["value"] for m, d in af["difference"].items()} for attr, af in full.items()}
    assert result.differences() == expected
    assert any(v is not None and v > 0.3 for d in expected.values() for v in d.values())
    assert any(v is None for d in expected.values() for v in d.values())  # metrics without labels


def test_config_survives_json_round_trip() -> None:
    data = _json(CONFIG.to_dict())
    assert FairnessConfig(**data) == CONFIG


def test_result_to_dict_is_plain_json_and_deterministic(rng: np.random.Generator) -> None:
    counts = CONFIG.empty_counts().update(**_batch(rng, 1500))
    data = evaluate_fairness(counts, CONFIG).to_dict()
    assert _json(data) == data
    assert evaluate_fairness(counts, CONFIG).to_dict() == data
    assert data["detector"] == DETECTOR_NAME == "fairness.parity"
    assert data["status"] in {"ok", "alert"}
    sex = data["attributes"]["sex"]
    assert set(sex) >= {"overall", "by_group", "difference", "ratio", "gaps", "eligible", "label_coverage"}
    assert set(data["attributes"]) == {"sex", "race", "sex&race"}
    assert _only_plain_types(data)
    rare = data["attributes"]["race"]["by_group"]["rare"]
    assert rare["eligible"] is False and rare["selection_rate"]["interval"] is not None


def test_update_does_not_mutate_inputs(rng: np.random.Generator) -> None:
    batch = _batch(rng, 800)
    copies = {k: v.copy() for k, v in batch["groups"].items()}
    y_pred, y_true = batch["y_pred"].copy(), batch["y_true"].copy()
    empty = CONFIG.empty_counts()
    before = json.dumps(empty.to_dict())

    updated = empty.update(**batch)
    evaluate_fairness(updated, CONFIG)

    assert updated is not empty and json.dumps(empty.to_dict()) == before
    for k, v in batch["groups"].items():
        assert v.tolist() == copies[k].tolist()
    np.testing.assert_array_equal(batch["y_pred"], y_pred)
    np.testing.assert_array_equal(batch["y_true"], y_true)
    with pytest.raises(ValueError):
        updated.tables["sex"].counts[0, 0] = 7  # the state is read-only


def test_status_values_agree_with_the_shared_status() -> None:
    assert FairnessStatus.OK == Status.OK and FairnessStatus.INSUFFICIENT_DATA == Status.INSUFFICIENT_DATA


def test_too_little_data_is_a_status_not_an_exception(rng: np.random.Generator) -> None:
    assert evaluate_fairness(CONFIG.empty_counts(), CONFIG).status == FairnessStatus.INSUFFICIENT_DATA
    small = CONFIG.empty_counts().update(**_batch(rng, 60))  # every group below min_group_size = 50
    result = evaluate_fairness(small, CONFIG)
    assert result.status == FairnessStatus.INSUFFICIENT_DATA and result.alerts == ()
    gap = result.attributes["sex"].gaps["demographic_parity_difference"]
    assert gap.status == FairnessStatus.INSUFFICIENT_DATA and gap.value is None


def test_labels_missing_make_label_gaps_insufficient(rng: np.random.Generator) -> None:
    batch = _batch(rng, 2000)
    counts = CONFIG.empty_counts().update(batch["groups"], batch["y_pred"])  # no labels yet
    attr = evaluate_fairness(counts, CONFIG).attributes["sex"]
    assert attr.gaps["demographic_parity_difference"].status != FairnessStatus.INSUFFICIENT_DATA
    for name in ("equal_opportunity_difference", "equalized_odds_difference", "predictive_parity_difference"):
        assert attr.gaps[name].status == FairnessStatus.INSUFFICIENT_DATA
    assert attr.label_coverage == 0.0


def test_absent_attribute_counts_as_missing_and_none_is_missing() -> None:
    counts = FairnessCounts.empty(["sex", "age"], [("sex", "age")]).update(
        {"sex": np.array(["f", None, float("nan"), "m"], dtype=object)}, np.array([1, 0, 1, 1])
    )
    assert counts.tables["age"].groups == (MISSING,)
    assert counts.tables["sex"].groups == (MISSING, "f", "m")
    assert counts.tables["sex"].column("n").tolist() == [2, 1, 1]
    assert counts.tables["sex&age"].groups == (f"{MISSING}&{MISSING}", f"f&{MISSING}", f"m&{MISSING}")


def test_intersection_labels_never_collide() -> None:
    groups = {"a": np.array(["x&y", "x"], dtype=object), "b": np.array(["z", "y&z"], dtype=object)}
    table = FairnessCounts.empty(["a", "b"], [("a", "b")]).update(groups, np.array([1, 0])).tables["a&b"]
    assert len(table.groups) == 2 and table.column("n").tolist() == [1, 1]


def test_non_string_group_values_are_labelled_as_strings() -> None:
    counts = FairnessCounts.empty(["age"]).update({"age": np.array([30, 40, 30])}, np.array([1, 0, 0]))
    assert counts.tables["age"].groups == ("30", "40")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"attributes": ()}, "attributes"),
        ({"attributes": "sex"}, "attributes"),
        ({"attributes": ("sex", "sex")}, "attributes"),
        ({"attributes": ("a&b",)}, "attributes"),
        ({"attributes": ("",)}, "attributes"),
        ({"intersections": (("sex", "age"),)}, "intersections"),
        ({"intersections": (("sex", "sex"),)}, "intersections"),
        ({"intersections": (("sex", "race"), ("race", "sex"))}, "intersections"),
        ({"intersections": ("sex",)}, "intersections"),
        ({"min_group_size": 0}, "min_group_size"),
        ({"min_group_size": 10.5}, "min_group_size"),
        ({"min_group_size": True}, "min_group_size"),
        ({"confidence": 1.0}, "confidence"),
        ({"confidence": float("nan")}, "confidence"),
        ({"dp_difference_threshold": 1.5}, "dp_difference_threshold"),
        ({"dp_difference_threshold": -0.1}, "dp_difference_threshold"),
        ({"dp_ratio_threshold": 0.0}, "dp_ratio_threshold"),
        ({"dp_ratio_threshold": 1.2}, "dp_ratio_threshold"),
        ({"eo_difference_threshold": "0.1"}, "eo_difference_threshold"),
        ({"eodds_difference_threshold": 1.0}, "eodds_difference_threshold"),
        ({"predictive_parity_threshold": float("inf")}, "predictive_parity_threshold"),
        ({"min_label_coverage": 1.01}, "min_label_coverage"),
        ({"pairwise_correction": "holm"}, "pairwise_correction"),
    ],
)
def test_bad_config_raises_a_named_error(kwargs: dict[str, Any], field: str) -> None:
    args: dict[str, Any] = {"attributes": ("sex", "race")} | kwargs
    with pytest.raises(ConfigError, match=field):
        FairnessConfig(**args)


@pytest.mark.parametrize(
    ("y_pred", "y_true", "match"),
    [
        ([0, 1, 2], None, "y_pred"),
        ([0, 1, np.nan], None, "y_pred"),
        ([0, 1, 1], [0, 0.5, 1], "y_true"),
        ([0, 1, 1], [0, 1], "y_true"),
        ([[0, 1, 1]], None, "y_pred"),
    ],
)
def test_bad_input_raises_input_error(y_pred: Any, y_true: Any, match: str) -> None:
    counts = FairnessCounts.empty(["g"])
    with pytest.raises(InputError, match=match):
        counts.update({"g": np.array(["a", "b", "a"], dtype=object)}, np.asarray(y_pred), y_true)


def test_group_column_of_another_length_is_refused() -> None:
    with pytest.raises(InputError, match="'g'"):
        FairnessCounts.empty(["g"]).update({"g": np.array(["a", "b"], dtype=object)}, np.array([1, 0, 1]))


def test_counts_without_a_configured_attribute_are_refused() -> None:
    counts = FairnessCounts.empty(["sex"])
    with pytest.raises(OpsloopDetectorError, match="race"):
        evaluate_fairness(counts, FairnessConfig(attributes=("sex", "race")))


def test_merging_counts_of_other_attributes_is_refused() -> None:
    with pytest.raises(ConfigError):
        FairnessCounts.empty(["a"]).merge(FairnessCounts.empty(["b"]))


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 200))
def test_row_order_does_not_change_counts(seed: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    batch = _batch(rng, n)
    shuffled = _part(batch, rng.permutation(n))
    assert (
        CONFIG.empty_counts().update(**shuffled).to_dict() == CONFIG.empty_counts().update(**batch).to_dict()
    )


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 300))
def test_counts_are_consistent(seed: int, n: int) -> None:
    batch = _batch(np.random.default_rng(seed), n)
    counts = CONFIG.empty_counts().update(**batch)
    labelled = int((~np.isnan(batch["y_true"])).sum())
    for name in CONFIG.names:
        total = counts.tables[name].total().tolist()
        n_rows, n_pred_pos, n_labelled, tp, fp, tn, fn = total
        assert n_rows == n and n_labelled == labelled and tp + fp + tn + fn == labelled
        assert n_pred_pos == int(batch["y_pred"].sum())


def test_identical_groups_never_alert() -> None:
    """Two attributes carrying the same rows in different names: every gap is exactly zero."""
    rng = np.random.default_rng(9)
    n = 4000
    y_pred = (rng.random(n) < 0.5).astype(np.int64)
    y_true = (rng.random(n) < 0.5).astype(np.float64)
    g = np.array(["a", "b"] * (n // 2), dtype=object)
    y_pred[1::2], y_true[1::2] = y_pred[::2], y_true[::2]  # b repeats a row for row
    config = FairnessConfig(attributes=("g",))
    result = evaluate_fairness(config.empty_counts().update({"g": g}, y_pred, y_true), config)
    assert result.status == FairnessStatus.OK
    for gap in result.attributes["g"].gaps.values():
        assert gap.value == (1.0 if gap.kind == "ratio" else 0.0)
