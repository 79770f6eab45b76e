"""Contract of the data-quality detector: config errors, input errors, result shape, each check's numbers."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from detectors.base import ConfigError, InputError, ProfileMismatchError
from detectors.drift import ReferenceProfile, WindowSketch, build_profile
from detectors.drift.correction import adjust
from detectors.quality import (
    FEATURE_ABSENT,
    MISSING_RATE,
    NEW_COLUMN,
    OUT_OF_DOMAIN,
    OUT_OF_RANGE,
    TYPE_ERRORS,
    QualityConfig,
    QualityResult,
    QualityStatus,
    evaluate_quality,
    fisher_greater,
    outside_range_pvalue,
)

CATS = np.array(["a", "b", "c"], dtype=object)


def _columns(rng: np.random.Generator, n: int, missing: float = 0.02) -> dict[str, np.ndarray]:
    x = rng.normal(size=n)
    x[rng.random(n) < missing] = np.nan
    c = rng.choice(CATS, p=[0.5, 0.3, 0.2], size=n)
    return {"x": x, "y": rng.uniform(0.0, 1.0, size=n), "c": c}


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(2024)


@pytest.fixture
def profile(rng: np.random.Generator) -> ReferenceProfile:
    return build_profile(_columns(rng, 5000))


def _evaluate(
    profile: ReferenceProfile,
    columns: dict[str, np.ndarray],
    type_errors: dict[str, int] | None = None,
    **config: Any,
) -> QualityResult:
    sketch = WindowSketch.empty(profile).update(columns)
    return evaluate_quality(profile, sketch, type_errors or {}, QualityConfig(**config))


def _json(obj: dict[str, Any]) -> Any:
    return json.loads(json.dumps(obj, allow_nan=False))


# --- config -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("alpha", 0.0, "alpha must be in"),
        ("alpha", 1.0, "alpha must be in"),
        ("alpha", float("nan"), "alpha must be a finite number"),
        ("alpha", "0.01", "alpha must be a finite number"),
        ("correction", "holm", "correction must be one of"),
        ("missing_floor", -0.1, "missing_floor must be in"),
        ("missing_floor", 1.0, "missing_floor must be in"),
        ("range_floor", 1.5, "range_floor must be in"),
        ("range_test", "ks", "range_test must be one of"),
        ("type_error_floor", 0.0, "type_error_floor must be in"),
        ("type_error_floor", True, "type_error_floor must be a finite number"),
        ("new_columns_alert", 1, "new_columns_alert must be true or false"),
        ("type_errors_counted_as_missing", "yes", "type_errors_counted_as_missing must be true or false"),
        ("min_window_rows", 0, "min_window_rows must be an integer >= 1"),
        ("min_reference_rows", 1, "min_reference_rows must be an integer >= 2"),
        ("min_reference_rows", 100.0, "min_reference_rows must be an integer >= 2"),
    ],
)
def test_bad_config_values_are_refused_naming_the_field(field: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        QualityConfig(**{field: value})


def test_config_defaults_and_dict() -> None:
    config = QualityConfig()
    assert _json(config.to_dict()) == {
        "alpha": 0.005,
        "correction": "bonferroni",
        "missing_floor": 0.05,
        "range_floor": 0.01,
        "range_test": "betabinomial",
        "type_error_floor": 0.01,
        "type_errors_counted_as_missing": True,
        "new_columns_alert": False,
        "min_window_rows": 100,
        "min_reference_rows": 100,
    }
    assert QualityConfig(**config.to_dict()) == config


# --- inputs -------------------------------------------------------------------------------------------------


def test_sketch_of_another_profile_is_refused(profile: ReferenceProfile, rng: np.random.Generator) -> None:
    other = build_profile(_columns(rng, 500))
    with pytest.raises(ProfileMismatchError):
        evaluate_quality(profile, WindowSketch.empty(other).update(_columns(rng, 200)), {}, QualityConfig())


@pytest.mark.parametrize(
    ("type_errors", "message"),
    [
        ({"nope": 1}, "features the profile does not have"),
        ({"x": -1}, "must be an integer in"),
        ({"x": 2.0}, "must be an integer in"),
        ({"x": 10_000}, "must be an integer in"),
        ({"y": 1}, "exceeds the window's 0 missing values"),
    ],
)
def test_bad_type_error_counts_are_refused(
    profile: ReferenceProfile, rng: np.random.Generator, type_errors: dict[str, Any], message: str
) -> None:
    with pytest.raises(InputError, match=message):
        _evaluate(profile, _columns(rng, 500), type_errors)


def test_type_errors_beyond_missing_are_accepted_when_not_counted_as_missing(
    profile: ReferenceProfile, rng: np.random.Generator
) -> None:
    result = _evaluate(profile, _columns(rng, 500), {"y": 10}, type_errors_counted_as_missing=False)
    assert [(p.problem_check, p.feature) for p in result.problems] == [(TYPE_ERRORS, "y")]


# --- result shape -------------------------------------------------------------------------------------------


def test_quiet_window_result_is_plain_json_with_every_check(
    profile: ReferenceProfile, rng: np.random.Generator
) -> None:
    result = _evaluate(profile, _columns(rng, 1000))
    assert result.status == QualityStatus.OK
    data = result.to_dict()
    assert _json(data) == data
    assert data["detector"] == "quality.data"
    assert data["status"] == "ok" and data["problems"] == [] and data["warnings"] == []
    assert list(data["features"]) == ["x", "y", "c"]
    assert set(data["features"]["x"]["checks"]) == {MISSING_RATE, OUT_OF_RANGE, TYPE_ERRORS}
    assert set(data["features"]["c"]["checks"]) == {MISSING_RATE, OUT_OF_DOMAIN, TYPE_ERRORS}
    check = data["features"]["x"]["checks"][MISSING_RATE]
    assert set(check) == {
        "check", "feature", "status", "value", "expected", "count", "n", "test",
        "p_value", "p_adjusted", "floor", "extra",
    }  # fmt: skip
    assert check["status"] == "ok" and check["test"] == "fisher"


def test_missing_rate_numbers_are_fisher_against_the_reference(
    profile: ReferenceProfile, rng: np.random.Generator
) -> None:
    window = _columns(rng, 1000)
    window["x"][:100] = np.nan
    result = _evaluate(profile, window)
    fp = profile.features["x"]
    check = result.feature("x").checks[MISSING_RATE]
    missing = int(np.count_nonzero(np.isnan(window["x"])))
    assert (check.count, check.n) == (missing, 1000)
    assert check.value == missing / 1000
    assert check.expected == fp.missing / (fp.n + fp.missing)
    assert check.p_value == pytest.approx(float(fisher_greater(missing, 1000, fp.missing, fp.n + fp.missing)))
    assert check.extra["increase"] == pytest.approx(check.value - check.expected)
    assert check.flagged
    assert [p.problem() for p in result.problems] == [
        {
            "check": MISSING_RATE, "feature": "x", "value": check.value, "expected": check.expected,
            "count": missing, "n": 1000, "p_value": check.p_value, "p_adjusted": check.p_adjusted,
            "floor": 0.05,
        }
    ]  # fmt: skip


def test_one_correction_family_per_window(profile: ReferenceProfile, rng: np.random.Generator) -> None:
    """Missing-rate and range p-values of all features are adjusted together: 2 per feature here."""
    for correction in ("bonferroni", "bh"):
        result = _evaluate(profile, _columns(rng, 800), correction=correction)
        tested = [c for f in result.features.values() for c in f.checks.values() if c.p_value is not None]
        assert len(tested) == 6
        expected = adjust([c.p_value for c in tested], correction)
        assert [c.p_adjusted for c in tested] == pytest.approx(expected.tolist())


def test_out_of_range_counts_both_sides_against_two_over_n_plus_one(
    profile: ReferenceProfile, rng: np.random.Generator
) -> None:
    fp = profile.features["y"]
    window = _columns(rng, 1000)
    window["y"][:20] = fp.maximum * 10
    window["y"][20:25] = -1.0
    result = _evaluate(profile, window)
    check = result.feature("y").checks[OUT_OF_RANGE]
    assert (check.extra["above"], check.extra["below"], check.count, check.n) == (20, 5, 25, 1000)
    assert check.expected == pytest.approx(2 / (fp.n + 1))
    assert check.p_value == pytest.approx(float(outside_range_pvalue(25, 1000, fp.n, 2)))
    assert check.extra["reference_max"] == fp.maximum and check.extra["window_max"] == fp.maximum * 10
    assert check.flagged
    assert [(p.problem_check, p.feature) for p in result.problems] == [(OUT_OF_RANGE, "y")]


def test_out_of_range_below_the_floor_is_not_flagged(
    profile: ReferenceProfile, rng: np.random.Generator
) -> None:
    fp = profile.features["y"]
    window = _columns(rng, 10_000)
    window["y"][:50] = fp.maximum + 1.0  # 0.5 %: highly significant, below the 1 % floor
    result = _evaluate(profile, window)
    check = result.feature("y").checks[OUT_OF_RANGE]
    assert check.p_adjusted is not None and check.p_adjusted < 1e-6
    assert not check.flagged and result.status == QualityStatus.OK
    assert _evaluate(profile, window, range_floor=0.001).feature("y").checks[OUT_OF_RANGE].flagged


def test_new_categories_are_out_of_domain_with_good_turing_expectation(rng: np.random.Generator) -> None:
    ref = {"c": rng.choice(CATS, size=3000)}
    ref["c"][:3] = np.array(["rare1", "rare2", "rare3"], dtype=object)  # three singletons
    profile = build_profile(ref)
    window = {"c": rng.choice(CATS, size=1000)}
    window["c"][:30] = "brand-new"
    window["c"][30:35] = "other-new"
    result = evaluate_quality(profile, WindowSketch.empty(profile).update(window), {}, QualityConfig())
    check = result.feature("c").checks[OUT_OF_DOMAIN]
    assert (check.count, check.n) == (35, 1000)
    assert check.extra["reference_singletons"] == 3
    assert check.expected == pytest.approx(4 / 3001)
    assert check.extra["unseen_categories"] == {"brand-new": 30, "other-new": 5}
    assert check.p_value == pytest.approx(float(outside_range_pvalue(35, 1000, 3000, 4)))
    assert [(p.problem_check, p.feature) for p in result.problems] == [(OUT_OF_DOMAIN, "c")]


def test_a_truncated_profile_cannot_tell_new_categories(rng: np.random.Generator) -> None:
    names = np.array([f"v{i}" for i in range(50)], dtype=object)
    profile = build_profile({"c": rng.choice(names, size=4000)}, max_categories=10)
    window = {"c": np.array(["never-seen"] * 500, dtype=object)}
    result = evaluate_quality(profile, WindowSketch.empty(profile).update(window), {}, QualityConfig())
    check = result.feature("c").checks[OUT_OF_DOMAIN]
    assert check.status == QualityStatus.INSUFFICIENT_DATA
    assert "truncated" in check.extra["reason"]


def test_type_errors_flag_at_the_floor_without_a_test(
    profile: ReferenceProfile, rng: np.random.Generator
) -> None:
    window = _columns(rng, 1000, missing=0.0)
    window["x"][:10] = np.nan  # the stream turns the 10 wrong-typed values into missing
    result = _evaluate(profile, window, {"x": 10})
    check = result.feature("x").checks[TYPE_ERRORS]
    assert (check.value, check.count, check.n, check.p_value, check.floor) == (0.01, 10, 1000, None, 0.01)
    assert check.flagged
    # the 10 are not counted again as missing values
    assert result.feature("x").checks[MISSING_RATE].count == 0
    assert result.feature("x").checks[MISSING_RATE].extra["type_errors_excluded"] == 10
    window["x"][:10] = np.random.default_rng(0).normal(size=10)
    window["x"][:9] = np.nan
    assert not _evaluate(profile, window, {"x": 9}).feature("x").checks[TYPE_ERRORS].flagged


def test_a_column_of_the_wrong_type_is_a_type_error_not_an_absent_feature(
    profile: ReferenceProfile, rng: np.random.Generator
) -> None:
    window = _columns(rng, 500)
    window["x"] = np.full(500, np.nan)  # every value was a string
    result = _evaluate(profile, window, {"x": 500})
    assert [(p.problem_check, p.feature) for p in result.problems] == [(TYPE_ERRORS, "x")]
    assert result.absent_features == ()


def test_a_dropped_column_is_feature_absent(profile: ReferenceProfile, rng: np.random.Generator) -> None:
    window = _columns(rng, 500)
    del window["c"]
    result = _evaluate(profile, window)
    assert result.status == QualityStatus.ALERT
    assert [(p.problem_check, p.feature) for p in result.problems] == [(FEATURE_ABSENT, "c")]
    assert result.absent_features == ("c",)
    problem = result.to_dict()["problems"][0]
    assert problem["check"] == FEATURE_ABSENT and problem["value"] == 1.0 and problem["count"] == 500
    # its missing_rate check keeps its own name in the per-feature view
    assert result.feature("c").checks[MISSING_RATE].extra["absent"] is True
    assert result.feature("c").checks[OUT_OF_DOMAIN].status == QualityStatus.INSUFFICIENT_DATA


def test_new_columns_warn_by_default_and_alert_when_configured(
    profile: ReferenceProfile, rng: np.random.Generator
) -> None:
    window = _columns(rng, 500) | {"extra": np.zeros(500), "another": np.zeros(500)}
    result = _evaluate(profile, window)
    assert result.status == QualityStatus.OK and result.problems == ()
    assert [(w.check, w.feature) for w in result.warnings] == [(NEW_COLUMN, "another"), (NEW_COLUMN, "extra")]
    assert result.to_dict()["new_columns"] == ["another", "extra"]
    strict = _evaluate(profile, window, new_columns_alert=True)
    assert strict.status == QualityStatus.ALERT and strict.warnings == ()
    assert [(p.check, p.feature) for p in strict.problems] == [(NEW_COLUMN, "another"), (NEW_COLUMN, "extra")]


def test_fewer_missing_values_never_flag(profile: ReferenceProfile, rng: np.random.Generator) -> None:
    result = _evaluate(profile, _columns(rng, 5000, missing=0.0), missing_floor=0.0)
    check = result.feature("x").checks[MISSING_RATE]
    assert check.value == 0.0 and check.p_value == 1.0 and not check.flagged


def test_a_significant_missing_increase_below_the_floor_is_not_flagged(
    profile: ReferenceProfile, rng: np.random.Generator
) -> None:
    window = _columns(rng, 20_000, missing=0.04)  # +2 points over the reference's 2 %
    check = _evaluate(profile, window).feature("x").checks[MISSING_RATE]
    assert check.p_adjusted is not None and check.p_adjusted < 1e-6
    assert not check.flagged
    assert _evaluate(profile, window, missing_floor=0.01).feature("x").checks[MISSING_RATE].flagged


def test_a_small_window_is_insufficient_data_and_never_alerts(
    profile: ReferenceProfile, rng: np.random.Generator
) -> None:
    window = _columns(rng, 50)
    del window["c"]
    window["new"] = np.zeros(50)
    result = _evaluate(profile, window, {"x": 1})
    assert result.status == QualityStatus.INSUFFICIENT_DATA
    assert result.problems == () and result.warnings == ()
    assert all(
        c.status == QualityStatus.INSUFFICIENT_DATA
        for f in result.features.values()
        for c in f.checks.values()
    )
    assert result.new_columns[0].status == QualityStatus.INSUFFICIENT_DATA
    # the numbers are still there
    assert result.feature("c").checks[MISSING_RATE].value == 1.0
    assert _evaluate(profile, window, {"x": 1}, min_window_rows=50).status == QualityStatus.ALERT


def test_a_feature_with_too_small_a_reference_is_not_tested(rng: np.random.Generator) -> None:
    x = np.full(1000, np.nan)
    x[:50] = rng.normal(size=50)  # 50 values: below min_reference_rows for the range test
    profile = build_profile({"x": x, "y": rng.normal(size=1000)})
    window = {"x": np.full(500, 1e6), "y": rng.normal(size=500)}
    result = evaluate_quality(profile, WindowSketch.empty(profile).update(window), {}, QualityConfig())
    assert result.feature("x").checks[OUT_OF_RANGE].status == QualityStatus.INSUFFICIENT_DATA
    assert result.feature("x").checks[MISSING_RATE].status == QualityStatus.OK  # 1,000 reference rows
    assert result.status == QualityStatus.OK


def test_a_feature_missing_from_the_whole_reference_cannot_be_absent(rng: np.random.Generator) -> None:
    profile = build_profile({"x": np.full(500, np.nan), "y": rng.normal(size=500)})
    window = {"y": rng.normal(size=300)}
    result = evaluate_quality(profile, WindowSketch.empty(profile).update(window), {}, QualityConfig())
    assert result.status == QualityStatus.OK
    assert result.feature("x").checks[OUT_OF_RANGE].status == QualityStatus.INSUFFICIENT_DATA


def test_evaluation_does_not_change_its_inputs(profile: ReferenceProfile, rng: np.random.Generator) -> None:
    sketch = WindowSketch.empty(profile).update(_columns(rng, 300))
    before = (json.dumps(sketch.to_dict()), json.dumps(profile.to_dict()))
    evaluate_quality(profile, sketch, {"x": 1}, QualityConfig())
    assert (json.dumps(sketch.to_dict()), json.dumps(profile.to_dict())) == before
