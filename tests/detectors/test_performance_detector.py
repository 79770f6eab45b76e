"""The degradation rule: statuses, reasons, the tests' calibration and power, config errors, JSON."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from scipy import stats

from detectors.base import ConfigError, InputError
from detectors.performance import (
    ClassificationCounts,
    PerformanceConfig,
    PerformanceStatus,
    Reason,
    RegressionSums,
    evaluate_performance,
)

OK, DEGRADED, INSUFFICIENT = (
    PerformanceStatus.OK,
    PerformanceStatus.DEGRADED,
    PerformanceStatus.INSUFFICIENT_DATA,
)


def _window(rng: np.random.Generator, n: int, acc: float, shift: float = 1.5) -> ClassificationCounts:
    y = rng.choice(np.array(["no", "yes"], dtype=object), size=n, p=[0.6, 0.4])
    right = rng.random(n) < acc
    pred = np.where(right, y, np.where(y == "yes", "no", "yes")).astype(object)
    proba = 1.0 / (1.0 + np.exp(-(rng.normal(0, 1, n) + shift * (y == "yes") - shift / 2)))
    return ClassificationCounts.empty("yes").update(y, pred, proba)


def _regression(rng: np.random.Generator, n: int, noise: float) -> RegressionSums:
    y = rng.lognormal(3.0, 0.3, n)
    return RegressionSums().update(y, y + rng.normal(0, noise, n))


def _json(result: Any) -> Any:
    return json.loads(json.dumps(result.to_dict(), allow_nan=False))


def test_a_clear_accuracy_drop_is_degraded_and_reported() -> None:
    rng = np.random.default_rng(0)
    ref, win = _window(rng, 5000, 0.90), _window(rng, 1000, 0.80)
    result = evaluate_performance(win, ref, 2000, PerformanceConfig())
    assert result.status == DEGRADED and result.degraded
    assert result.detector == "performance" and result.task == "classification"
    assert result.metric == "accuracy" and result.test == "two_proportion_z"
    assert result.tolerance == 0.05 and result.tolerance_kind == "absolute" and result.threshold == 0.05
    assert result.degradation == pytest.approx(result.reference_value - result.value)
    assert result.label_coverage == 0.5 and result.n_labelled == 1000 and result.n_reference_labelled == 5000
    assert result.p_value is not None and result.p_value < 1e-10
    data = _json(result)
    assert data["status"] == "degraded" and data["reason"] is None
    assert set(data["metrics"]) == {"accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"}


def test_two_proportion_z_equals_the_textbook_pooled_test() -> None:
    ref = ClassificationCounts.empty().update(["a"] * 1000, ["a"] * 900 + ["b"] * 100)
    win = ClassificationCounts.empty().update(["a"] * 400, ["a"] * 330 + ["b"] * 70)
    result = evaluate_performance(win, ref, 400, PerformanceConfig())
    p1, p2, pooled = 0.9, 330 / 400, 1230 / 1400
    z = (p1 - p2) / math.sqrt(pooled * (1 - pooled) * (1 / 1000 + 1 / 400))
    assert result.statistic == pytest.approx(z, rel=1e-12)
    assert result.p_value == pytest.approx(stats.norm.sf(z), rel=1e-9)
    assert result.status == DEGRADED  # 7.5 points worse, z = 3.8


def test_a_drop_within_tolerance_is_ok_even_when_significant() -> None:
    rng = np.random.default_rng(1)
    ref, win = _window(rng, 50000, 0.90), _window(rng, 50000, 0.88)
    result = evaluate_performance(win, ref, 50000, PerformanceConfig())
    assert result.p_value is not None and result.p_value < 0.01
    assert result.status == OK


def test_a_large_but_noisy_drop_is_ok() -> None:
    ref = ClassificationCounts.empty().update(["a"] * 200, ["a"] * 180 + ["b"] * 20)
    win = ClassificationCounts.empty().update(["a"] * 200, ["a"] * 168 + ["b"] * 32)  # 6 points worse
    result = evaluate_performance(win, ref, 200, PerformanceConfig())
    assert result.degradation == pytest.approx(0.06) and result.p_value is not None and result.p_value > 0.01
    assert result.status == OK


def test_an_improvement_is_ok() -> None:
    rng = np.random.default_rng(2)
    result = evaluate_performance(
        _window(rng, 2000, 0.95), _window(rng, 2000, 0.80), 2000, PerformanceConfig()
    )
    assert result.status == OK and result.degradation is not None and result.degradation < 0


@pytest.fixture(scope="module")
def unchanged_pairs() -> list[tuple[ClassificationCounts, ClassificationCounts]]:
    rng = np.random.default_rng(3)
    return [(_window(rng, 1000, 0.85), _window(rng, 5000, 0.85)) for _ in range(300)]


@pytest.mark.parametrize("metric", ["accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"])
def test_false_alarm_rate_without_tolerance_is_about_alpha(
    metric: str, unchanged_pairs: list[tuple[ClassificationCounts, ClassificationCounts]]
) -> None:
    """With tolerance 0 the rule is the bare one-sided test: under no change it fires ~alpha of the time."""
    config = PerformanceConfig(metric=metric, tolerance=0.0, alpha=0.05)
    fired = sum(evaluate_performance(win, ref, 1000, config).degraded for win, ref in unchanged_pairs)
    # expected 15 (5% of 300; measured 4.2-6.0% over 1,000 pairs per metric); 30 is 3.9 sd above
    assert fired <= 30


@pytest.mark.parametrize(
    ("metric", "good", "bad"),
    [("f1", 0.9, 0.75), ("precision", 0.9, 0.75), ("roc_auc", 2.0, 0.8), ("log_loss", 2.0, 0.8)],
)
def test_other_classification_metrics_detect_a_clear_drop(metric: str, good: float, bad: float) -> None:
    rng = np.random.default_rng(4)
    if metric in ("roc_auc", "log_loss"):
        ref, win = _window(rng, 5000, 0.9, shift=good), _window(rng, 2000, 0.9, shift=bad)
    else:
        ref, win = _window(rng, 5000, good), _window(rng, 2000, bad)
    result = evaluate_performance(win, ref, 2000, PerformanceConfig(metric=metric))
    assert result.status == DEGRADED, result.to_dict()


def test_macro_metrics_for_multiclass_use_the_delta_method() -> None:
    rng = np.random.default_rng(5)
    labels = np.array(list("abcd"), dtype=object)

    def counts(n: int, acc: float) -> ClassificationCounts:
        y = rng.choice(labels, n)
        return ClassificationCounts.empty().update(y, np.where(rng.random(n) < acc, y, rng.choice(labels, n)))

    result = evaluate_performance(counts(1000, 0.7), counts(5000, 0.9), 1000, PerformanceConfig(metric="f1"))
    assert result.test == "delta_method_z" and result.status == DEGRADED


def test_regression_degrades_on_relative_mae() -> None:
    rng = np.random.default_rng(6)
    ref = _regression(rng, 5000, 2.0)
    result = evaluate_performance(_regression(rng, 1000, 3.0), ref, 1000, PerformanceConfig())
    assert result.metric == "mae" and result.tolerance_kind == "relative" and result.test == "welch_z"
    assert result.threshold == pytest.approx(0.1 * result.reference_value)
    assert result.status == DEGRADED
    same = evaluate_performance(_regression(rng, 1000, 2.0), ref, 1000, PerformanceConfig())
    assert same.status == OK
    for metric in ("rmse", "mape"):
        assert evaluate_performance(
            _regression(rng, 1000, 3.0), ref, 1000, PerformanceConfig(metric=metric)
        ).degraded


@pytest.mark.parametrize(
    ("n_window", "n_predictions", "reference", "reason"),
    [
        (150, 300, True, Reason.TOO_FEW_LABELS),
        (250, 1000, True, Reason.LOW_LABEL_COVERAGE),
        (250, 0, True, Reason.LOW_LABEL_COVERAGE),
        (250, 500, False, Reason.NO_REFERENCE),
    ],
)
def test_too_little_data_is_a_status(
    n_window: int, n_predictions: int, reference: bool, reason: Reason
) -> None:
    rng = np.random.default_rng(7)
    ref = _window(rng, 1000, 0.9) if reference else None
    result = evaluate_performance(_window(rng, n_window, 0.5), ref, n_predictions, PerformanceConfig())
    assert result.status == INSUFFICIENT and result.reason == reason
    assert result.value is not None  # the window's metrics are still reported
    _json(result)


def test_small_reference_and_undefined_metric_are_insufficient() -> None:
    rng = np.random.default_rng(8)
    small = evaluate_performance(_window(rng, 500, 0.5), _window(rng, 100, 0.9), 500, PerformanceConfig())
    assert small.status == INSUFFICIENT and small.reason == Reason.REFERENCE_TOO_SMALL
    no_proba = ClassificationCounts.empty("yes").update(["yes", "no"] * 150, ["yes", "no"] * 150)
    undefined = evaluate_performance(no_proba, no_proba, 300, PerformanceConfig(metric="roc_auc"))
    assert undefined.status == INSUFFICIENT and undefined.reason == Reason.METRIC_UNDEFINED
    assert _json(undefined)["value"] is None


def test_label_coverage_can_be_lowered() -> None:
    rng = np.random.default_rng(9)
    ref, win = _window(rng, 5000, 0.9), _window(rng, 1000, 0.7)
    assert evaluate_performance(win, ref, 10000, PerformanceConfig()).reason == Reason.LOW_LABEL_COVERAGE
    assert evaluate_performance(win, ref, 10000, PerformanceConfig(min_label_coverage=0.05)).degraded


@pytest.mark.parametrize(
    "kwargs",
    [
        {"metric": "auc"},
        {"tolerance": -0.1},
        {"tolerance": math.nan},
        {"tolerance_kind": "percent"},
        {"alpha": 0.0},
        {"alpha": True},
        {"min_labelled": 1},
        {"min_labelled": 200.0},
        {"min_label_coverage": 1.5},
    ],
)
def test_bad_config_raises(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        PerformanceConfig(**kwargs)


def test_metric_of_the_wrong_task_and_mixed_counts_raise() -> None:
    rng = np.random.default_rng(10)
    with pytest.raises(ConfigError):
        evaluate_performance(_regression(rng, 300, 1.0), None, 300, PerformanceConfig(metric="accuracy"))
    with pytest.raises(InputError):
        evaluate_performance(_regression(rng, 300, 1.0), _window(rng, 300, 0.9), 300, PerformanceConfig())
    with pytest.raises(InputError):
        evaluate_performance(
            _window(rng, 300, 0.9), ClassificationCounts.empty("no"), 300, PerformanceConfig()
        )
    with pytest.raises(InputError):
        evaluate_performance(_window(rng, 300, 0.9), None, -1, PerformanceConfig())


def test_evaluation_is_deterministic_and_leaves_counts_unchanged() -> None:
    rng = np.random.default_rng(11)
    ref, win = _window(rng, 2000, 0.9), _window(rng, 800, 0.84)
    before = (ref.to_dict(), win.to_dict())
    a = evaluate_performance(win, ref, 1000, PerformanceConfig())
    b = evaluate_performance(win, ref, 1000, PerformanceConfig())
    assert a == b and _json(a) == _json(b)
    assert (ref.to_dict(), win.to_dict()) == before
