"""Has the model got worse? One window's labelled performance against a reference ("performance").

A window is ``degraded`` when its watched metric is worse than the reference's by more than the tolerance
AND the difference is significant (one-sided, ``alpha`` = 0.01 by default):

* the tolerance says "big enough to act on": with large windows a test alone flags drops too small to
  matter; the test says "more than noise": with small windows the tolerance alone flags noise (at 200
  labels the standard error of an accuracy near 0.9 is 0.021, so a 0.05 drop is only ~2.4 sd);
* accuracy, and binary precision and recall, are proportions of rows: they get the **pooled two-proportion
  z-test** (H0: window rate = reference rate, H1: window rate lower). F1 and macro averages get a Wald z-test
  with delta-method variances, ROC AUC with DeLong variances (of the binned AUC), log loss, MAE, MAPE and
  RMSE (through the MSE) a Welch z-test on the per-row means. Window and reference are independent samples.

Defaults and why
----------------
=========================================  ===========  ======================================================
metric                                     tolerance    reason
=========================================  ===========  ======================================================
accuracy, precision, recall, f1, roc_auc   0.05 abs.    bounded in [0, 1]: "5 points worse" reads the same on
                                                        any model; smaller drops are rarely worth a retrain
log_loss, mae, rmse, mape                  0.10 rel.    unbounded, in the target's units: "10% worse than the
                                                        reference" is comparable across models
=========================================  ===========  ======================================================

``min_labelled`` = 200 labelled rows in the window (and in the reference): below it the z-tests' normal
approximation is poor for rates near 0 or 1 and the test has little power for a 0.05 drop.
``min_label_coverage`` = 0.3: labels (``n_labelled / n_predictions_in_window``) often arrive for a biased
subset (disputes, manual reviews, slow outcomes); with fewer than 30% of predictions labelled the window's
metric says little about the window. Either shortfall gives ``insufficient_data`` with a ``reason``, as
does a missing reference or a metric that is undefined (ROC AUC without both classes scored).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from detectors.base import ConfigError, InputError, finite_number, finite_or_none, json_safe
from detectors.performance import classification, regression
from detectors.performance.classification import ClassificationCounts
from detectors.performance.regression import RegressionSums

DETECTOR_NAME = "performance"
CLASSIFICATION = "classification"
REGRESSION = "regression"
ABSOLUTE = "absolute"
RELATIVE = "relative"

HIGHER_IS_BETTER: frozenset[str] = frozenset({"accuracy", "precision", "recall", "f1", "roc_auc"})
METRICS_BY_TASK: Mapping[str, tuple[str, ...]] = {
    CLASSIFICATION: classification.METRICS,
    REGRESSION: regression.METRICS,
}
DEFAULT_METRIC: Mapping[str, str] = {CLASSIFICATION: "accuracy", REGRESSION: "mae"}
ALL_METRICS: tuple[str, ...] = classification.METRICS + regression.METRICS


def default_tolerance(metric: str) -> tuple[float, str]:
    return (0.05, ABSOLUTE) if metric in HIGHER_IS_BETTER else (0.10, RELATIVE)


class PerformanceStatus(StrEnum):
    """``ok`` and ``insufficient_data`` carry the same values as ``detectors.base.Status``."""

    OK = "ok"
    DEGRADED = "degraded"
    INSUFFICIENT_DATA = "insufficient_data"


class Reason(StrEnum):
    """Why a window is ``insufficient_data``."""

    TOO_FEW_LABELS = "too_few_labels"
    LOW_LABEL_COVERAGE = "low_label_coverage"
    NO_REFERENCE = "no_reference"
    REFERENCE_TOO_SMALL = "reference_too_small"
    METRIC_UNDEFINED = "metric_undefined"


@dataclass(frozen=True)
class PerformanceConfig:
    """``metric`` None watches accuracy (classification) or MAE (regression); ``tolerance`` None takes the
    metric's default, ``tolerance_kind`` None its default kind ("absolute" or "relative" to the reference)."""

    metric: str | None = None
    tolerance: float | None = None
    tolerance_kind: str | None = None
    alpha: float = 0.01
    min_labelled: int = 200
    min_label_coverage: float = 0.3

    def __post_init__(self) -> None:
        if self.metric is not None and self.metric not in ALL_METRICS:
            raise ConfigError(f"metric must be one of {ALL_METRICS} or None, got {self.metric!r}")
        if self.tolerance is not None:
            tol = finite_number("tolerance", self.tolerance)
            if tol < 0:
                raise ConfigError(f"tolerance must be >= 0, got {tol!r}")
            object.__setattr__(self, "tolerance", tol)
        if self.tolerance_kind not in (None, ABSOLUTE, RELATIVE):
            raise ConfigError(
                f"tolerance_kind must be 'absolute', 'relative' or None, got {self.tolerance_kind!r}"
            )
        alpha = finite_number("alpha", self.alpha)
        if not 0.0 < alpha < 1.0:
            raise ConfigError(f"alpha must be in (0, 1), got {alpha!r}")
        object.__setattr__(self, "alpha", alpha)
        if (
            not isinstance(self.min_labelled, int)
            or isinstance(self.min_labelled, bool)
            or self.min_labelled < 2
        ):
            raise ConfigError(f"min_labelled must be an integer >= 2, got {self.min_labelled!r}")
        coverage = finite_number("min_label_coverage", self.min_label_coverage)
        if not 0.0 <= coverage <= 1.0:
            raise ConfigError(f"min_label_coverage must be in [0, 1], got {coverage!r}")
        object.__setattr__(self, "min_label_coverage", coverage)

    def watched(self, task: str) -> tuple[str, float, str]:
        """``(metric, tolerance, tolerance_kind)`` in force for a task."""
        metric = self.metric if self.metric is not None else DEFAULT_METRIC[task]
        if metric not in METRICS_BY_TASK[task]:
            raise ConfigError(f"metric {metric!r} is not a {task} metric ({METRICS_BY_TASK[task]})")
        tol, kind = default_tolerance(metric)
        return (
            metric,
            tol if self.tolerance is None else self.tolerance,
            kind if self.tolerance_kind is None else self.tolerance_kind,
        )


@dataclass(frozen=True)
class PerformanceResult:
    """One window's verdict.

    ``degradation`` is how much worse the window is than the reference, in the metric's units (positive:
    worse, whichever way the metric points); ``threshold`` is the degradation the tolerance allows (the
    tolerance itself, or tolerance × reference value when relative). ``p_value`` is the one-sided test's.
    """

    detector: str
    status: PerformanceStatus
    task: str
    metric: str
    value: float | None
    reference_value: float | None
    degradation: float | None
    threshold: float | None
    tolerance: float
    tolerance_kind: str
    test: str | None
    statistic: float | None
    p_value: float | None
    alpha: float
    metrics: Mapping[str, float | None]
    reference_metrics: Mapping[str, float | None] | None
    n_labelled: int
    n_reference_labelled: int | None
    n_predictions: int
    label_coverage: float | None
    reason: Reason | None
    config: Mapping[str, Any]

    @property
    def degraded(self) -> bool:
        return self.status == PerformanceStatus.DEGRADED

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = json_safe(asdict(self))
        return out


def _norm_sf(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def _task(counts: object) -> str:
    if isinstance(counts, ClassificationCounts):
        return CLASSIFICATION
    if isinstance(counts, RegressionSums):
        return REGRESSION
    raise InputError(
        f"window counts must be ClassificationCounts or RegressionSums, got {type(counts).__name__}"
    )


def _metrics(counts: ClassificationCounts | RegressionSums) -> dict[str, float]:
    if isinstance(counts, ClassificationCounts):
        return classification.classification_metrics(counts)
    return regression.regression_metrics(counts)


def _test(
    window: ClassificationCounts | RegressionSums,
    reference: ClassificationCounts | RegressionSums,
    metric: str,
) -> tuple[str, float, float]:
    """``(test name, z, one-sided p)`` for "the window is worse than the reference"."""
    if isinstance(window, ClassificationCounts) and isinstance(reference, ClassificationCounts):
        w, r = classification.proportion(window, metric), classification.proportion(reference, metric)
        if w is not None and r is not None:
            (xw, nw), (xr, nr) = w, r
            if nw == 0 or nr == 0:
                return "two_proportion_z", math.nan, math.nan
            pooled = (xw + xr) / (nw + nr)
            se = math.sqrt(pooled * (1.0 - pooled) * (1.0 / nw + 1.0 / nr))
            diff = xr / nr - xw / nw
            z = diff / se if se > 0 else (math.copysign(math.inf, diff) if diff else 0.0)
            return "two_proportion_z", z, _norm_sf(z)
        name = {"roc_auc": "delong_z", "log_loss": "welch_z"}.get(metric, "delta_method_z")
        est_w, est_r = _metrics(window)[metric], _metrics(reference)[metric]
        var_w = classification.metric_variance(window, metric)
        var_r = classification.metric_variance(reference, metric)
    elif isinstance(window, RegressionSums) and isinstance(reference, RegressionSums):
        name = "welch_z"
        est_w, var_w, _ = regression.compared_mean(window, metric)
        est_r, var_r, _ = regression.compared_mean(reference, metric)
    else:  # pragma: no cover - checked by the caller
        raise InputError("window and reference are of different tasks")
    diff = est_r - est_w if metric in HIGHER_IS_BETTER else est_w - est_r
    se = math.sqrt(var_w + var_r) if math.isfinite(var_w + var_r) else math.nan
    if not (math.isfinite(diff) and math.isfinite(se)):
        return name, math.nan, math.nan
    z = diff / se if se > 0 else (math.copysign(math.inf, diff) if diff else 0.0)
    return name, z, _norm_sf(z)


def evaluate_performance(
    window_counts: ClassificationCounts | RegressionSums,
    reference_counts: ClassificationCounts | RegressionSums | None,
    n_predictions_in_window: int,
    config: PerformanceConfig,
) -> PerformanceResult:
    task = _task(window_counts)
    if reference_counts is not None:
        if _task(reference_counts) != task:
            raise InputError("window and reference counts are of different tasks")
        if (
            isinstance(window_counts, ClassificationCounts)
            and isinstance(reference_counts, ClassificationCounts)
            and window_counts.positive_label != reference_counts.positive_label
        ):
            raise InputError("window and reference counts name different positive labels")
    if isinstance(n_predictions_in_window, bool) or not isinstance(n_predictions_in_window, int):
        raise InputError(f"n_predictions_in_window must be an integer, got {n_predictions_in_window!r}")
    if n_predictions_in_window < 0:
        raise InputError(f"n_predictions_in_window must be >= 0, got {n_predictions_in_window}")
    metric, tolerance, kind = config.watched(task)

    metrics = _metrics(window_counts)
    ref_metrics = _metrics(reference_counts) if reference_counts is not None else None
    n_labelled = window_counts.n_labelled
    n_ref = reference_counts.n_labelled if reference_counts is not None else None
    coverage = n_labelled / n_predictions_in_window if n_predictions_in_window else None
    value = metrics[metric]
    ref_value = ref_metrics[metric] if ref_metrics is not None else math.nan

    reason: Reason | None = None
    if n_labelled < config.min_labelled:
        reason = Reason.TOO_FEW_LABELS
    elif coverage is None or coverage < config.min_label_coverage:
        reason = Reason.LOW_LABEL_COVERAGE
    elif reference_counts is None:
        reason = Reason.NO_REFERENCE
    elif n_ref is not None and n_ref < config.min_labelled:
        reason = Reason.REFERENCE_TOO_SMALL
    elif not (math.isfinite(value) and math.isfinite(ref_value)):
        reason = Reason.METRIC_UNDEFINED

    degradation = threshold = z = p_value = None
    test: str | None = None
    status = PerformanceStatus.INSUFFICIENT_DATA
    if math.isfinite(value) and math.isfinite(ref_value):
        degradation = ref_value - value if metric in HIGHER_IS_BETTER else value - ref_value
        threshold = tolerance if kind == ABSOLUTE else tolerance * abs(ref_value)
    if reason is None and reference_counts is not None and degradation is not None and threshold is not None:
        test, z_value, p = _test(window_counts, reference_counts, metric)
        z, p_value = finite_or_none(z_value), (p if math.isfinite(p) else None)
        significant = p_value is not None and p_value < config.alpha
        status = (
            PerformanceStatus.DEGRADED if degradation > threshold and significant else PerformanceStatus.OK
        )

    return PerformanceResult(
        detector=DETECTOR_NAME,
        status=status,
        task=task,
        metric=metric,
        value=finite_or_none(value),
        reference_value=finite_or_none(ref_value),
        degradation=degradation,
        threshold=threshold,
        tolerance=tolerance,
        tolerance_kind=kind,
        test=test,
        statistic=z,
        p_value=p_value,
        alpha=config.alpha,
        metrics={k: finite_or_none(v) for k, v in metrics.items()},
        reference_metrics={k: finite_or_none(v) for k, v in ref_metrics.items()} if ref_metrics else None,
        n_labelled=n_labelled,
        n_reference_labelled=n_ref,
        n_predictions=n_predictions_in_window,
        label_coverage=coverage,
        reason=reason,
        config=asdict(config),
    )
