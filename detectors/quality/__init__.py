"""Data quality and volume: missing values, out-of-range values, type and schema violations, volume changes.

``checks`` evaluates closed windows against their reference profile (``evaluate_quality`` for one,
``evaluate_quality_many`` for the several a batch of events closes); ``volume`` watches the event rate of
closed windows (``VolumeMonitor``); ``stats`` holds the one-sided tests. Pure functions and values: no I/O,
no clock. Defaults and their reasons are in ``docs/quality.md``.
"""

from __future__ import annotations

from detectors.quality.checks import (
    CHECKS,
    DETECTOR_NAME,
    FEATURE_ABSENT,
    MISSING_RATE,
    NEW_COLUMN,
    OUT_OF_DOMAIN,
    OUT_OF_RANGE,
    TYPE_ERRORS,
    Check,
    FeatureQuality,
    QualityConfig,
    QualityResult,
    QualityStatus,
    evaluate_quality,
    evaluate_quality_many,
)
from detectors.quality.stats import (
    betabinom_sf,
    conditional_poisson_pvalue,
    fisher_greater,
    outside_expected,
    outside_range_pvalue,
    poisson_pvalue,
)
from detectors.quality.volume import (
    DETECTOR_NAME as VOLUME_DETECTOR_NAME,
)
from detectors.quality.volume import (
    DROP,
    SPIKE,
    VOLUME_TESTS,
    VolumeConfig,
    VolumeMonitor,
    VolumeResult,
    volume_verdict,
)

__all__ = [
    "CHECKS",
    "DETECTOR_NAME",
    "DROP",
    "FEATURE_ABSENT",
    "MISSING_RATE",
    "NEW_COLUMN",
    "OUT_OF_DOMAIN",
    "OUT_OF_RANGE",
    "SPIKE",
    "TYPE_ERRORS",
    "VOLUME_DETECTOR_NAME",
    "VOLUME_TESTS",
    "Check",
    "FeatureQuality",
    "QualityConfig",
    "QualityResult",
    "QualityStatus",
    "VolumeConfig",
    "VolumeMonitor",
    "VolumeResult",
    "betabinom_sf",
    "conditional_poisson_pvalue",
    "evaluate_quality",
    "evaluate_quality_many",
    "fisher_greater",
    "outside_expected",
    "outside_range_pvalue",
    "poisson_pvalue",
    "volume_verdict",
]
