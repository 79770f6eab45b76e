"""Fairness over time: group metrics, their gaps with confidence intervals, and the parity detector.

Counts are kept incrementally per window (``counts``); metrics, differences and ratios follow fairlearn's
definitions (``parity``); intervals are Wilson, Newcombe and Katz (``intervals``); ``detector`` decides, from
the numbers ``batch`` computes for many windows at once.
"""

from __future__ import annotations

from detectors.fairness.counts import COLUMNS, MISSING, FairnessCounts, GroupCounts, intersection_name
from detectors.fairness.detector import (
    DETECTOR_NAME,
    GAPS,
    AttributeFairness,
    Disparity,
    FairnessAlert,
    FairnessConfig,
    FairnessResult,
    FairnessStatus,
    Gap,
    GroupMetric,
    evaluate_fairness,
    evaluate_fairness_many,
)
from detectors.fairness.intervals import katz_ratio, newcombe_difference, wilson_interval
from detectors.fairness.parity import (
    METRICS,
    demographic_parity_difference,
    demographic_parity_ratio,
    equal_opportunity_difference,
    equalized_odds_difference,
    metric_counts,
    predictive_parity_difference,
)

__all__ = [
    "COLUMNS",
    "DETECTOR_NAME",
    "GAPS",
    "METRICS",
    "MISSING",
    "AttributeFairness",
    "Disparity",
    "FairnessAlert",
    "FairnessConfig",
    "FairnessCounts",
    "FairnessResult",
    "FairnessStatus",
    "Gap",
    "GroupCounts",
    "GroupMetric",
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equal_opportunity_difference",
    "equalized_odds_difference",
    "evaluate_fairness",
    "evaluate_fairness_many",
    "intersection_name",
    "katz_ratio",
    "metric_counts",
    "newcombe_difference",
    "predictive_parity_difference",
    "wilson_interval",
]
