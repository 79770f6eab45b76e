"""Performance once labels arrive: incremental counts per window, metrics equal to scikit-learn's, and the
degradation rule of a window against a reference ("performance")."""

from __future__ import annotations

from detectors.performance.classification import (
    ClassificationCounts,
    accuracy,
    auc_bin_error_bound,
    classification_metrics,
    f1,
    log_loss,
    precision,
    recall,
    roc_auc,
)
from detectors.performance.detector import (
    DETECTOR_NAME,
    PerformanceConfig,
    PerformanceResult,
    PerformanceStatus,
    Reason,
    evaluate_performance,
)
from detectors.performance.regression import RegressionSums, mae, mape, regression_metrics, rmse

__all__ = [
    "DETECTOR_NAME",
    "ClassificationCounts",
    "PerformanceConfig",
    "PerformanceResult",
    "PerformanceStatus",
    "Reason",
    "RegressionSums",
    "accuracy",
    "auc_bin_error_bound",
    "classification_metrics",
    "evaluate_performance",
    "f1",
    "log_loss",
    "mae",
    "mape",
    "precision",
    "recall",
    "regression_metrics",
    "rmse",
    "roc_auc",
]
