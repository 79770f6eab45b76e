"""Feature drift: reference profiles, window sketches, binned tests and the per-feature detector."""

from __future__ import annotations

from detectors.drift.chisquare import ChiSquareResult, chi2_two_sample
from detectors.drift.correction import adjust, benjamini_hochberg, bonferroni
from detectors.drift.features import (
    DETECTOR_NAME,
    DriftVerdict,
    FeatureDriftConfig,
    evaluate_drift,
    evaluate_drift_many,
    judge_drift_many,
)
from detectors.drift.hellinger import hellinger
from detectors.drift.jensenshannon import jensenshannon
from detectors.drift.ks import KSResult, ks_binned, ks_pvalue, ks_pvalue_asymptotic, ks_statistic
from detectors.drift.profile import (
    OTHER,
    CategoricalProfile,
    NumericProfile,
    ReferenceProfile,
    build_profile,
)
from detectors.drift.psi import psi
from detectors.drift.sketch import CategoricalWindow, NumericWindow, WindowSketch
from detectors.drift.wasserstein import bin_positions, wasserstein_binned, wasserstein_norm

__all__ = [
    "DETECTOR_NAME",
    "OTHER",
    "CategoricalProfile",
    "CategoricalWindow",
    "ChiSquareResult",
    "DriftVerdict",
    "FeatureDriftConfig",
    "KSResult",
    "NumericProfile",
    "NumericWindow",
    "ReferenceProfile",
    "WindowSketch",
    "adjust",
    "benjamini_hochberg",
    "bin_positions",
    "bonferroni",
    "build_profile",
    "chi2_two_sample",
    "evaluate_drift",
    "evaluate_drift_many",
    "hellinger",
    "jensenshannon",
    "judge_drift_many",
    "ks_binned",
    "ks_pvalue",
    "ks_pvalue_asymptotic",
    "ks_statistic",
    "psi",
    "wasserstein_binned",
    "wasserstein_norm",
]
