"""Per-feature drift of one window against a reference profile ("drift.features").

Each feature gets a test (KS on fine bins for numeric, two-sample chi-square for categorical), its p-value is
adjusted over all tested features of the window (Bonferroni by default), and it is flagged when the adjusted
p-value is below ``alpha`` AND its PSI is at least a floor. The test answers "is this more than noise?", the
floor answers "is it big enough to act on?": with large windows the test alone flags shifts too small to
matter, with small windows the floor alone flags noise.

Choosing alpha (0.005)
----------------------
Bonferroni bounds the family-wise error: with ``alpha`` = 0.05 a window with no drift alarms with probability up
to 5 %, and the floors only remove part of that (measured: ~6 alarms per 1,000 windows of 1,000 rows with 20
numeric + 3 categorical features, all on categorical features, whose PSI noise at 1,000 rows sits above any
useful categorical floor). The goal is <= 5 per 1,000, so the family-wise level itself is 0.005. Power does not
suffer where it matters: at 5,000 rows a 0.25-sd shift has a KS p-value near 1e-20 and a 5-point category
move near 1e-9, far below 0.005 / 23.

Choosing the floors
-------------------
Under no drift, PSI on k bins is about ``chi2(k-1) / n_eff`` with ``n_eff = n*m / (n+m)`` (n window values,
m reference values): 10 coarse bins at n = 1,000 against m = 20,000 give a mean of ~0.009.

* Numeric (0.03): a 0.5-sd mean shift of a normal feature is PSI ~0.22 on deciles, a 0.25-sd shift ~0.06, a
  0.2-sd shift ~0.04. A floor of 0.05 sits too close to the 0.25-sd shift that must be caught in >= 95 % of
  5k-row windows; 0.03 keeps it clear and still mutes shifts below ~0.15 sd, which the KS test alone would
  flag at large windows. False alarms are left to the test (alpha above).
* Categorical (0.005): moving 5 percentage points of mass between categories (total variation 0.05) gives
  PSI >= 4 * 0.05**2 = 0.01 for any category mix (PSI is Jeffreys' divergence, and Pinsker bounds each KL
  by 2 * TV**2); the worst case is between two large categories (50/50 -> 55/45: PSI 0.0100). At 5,000 rows
  against 5,000 (n_eff = 2,500) the observed PSI of that worst case has sd ~0.004, so the floor sits at half
  of 0.01. Simulated with 23 features (Bonferroni over 23): the worst case is caught in 93% of windows (97%
  against a 20,000-row reference), 20% -> 25% of a 3-way mix and a 40/30 -> 35/35 move in 99%+; a floor of
  0.01 would catch 49% / 87-88%. An identical distribution must reach chi2 >= 12.5 on k-1 degrees of
  freedom to clear the floor, and the adjusted test (p < alpha / 23 per feature) limits it further (measured
  0.0-0.2% per categorical feature at 5k rows even at alpha = 0.05).
* At 1,000-row windows no categorical floor below ~0.015 binds, so the false-alarm rate there is set by the
  adjusted test: about ``alpha * categorical features / all features`` per window: 0.65% for 3 of 23 at
  alpha = 0.05 (hence alpha = 0.005 by default: ~0.07%).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from detectors.base import (
    CATEGORICAL,
    NUMERIC,
    ConfigError,
    DriftResult,
    FeatureScore,
    ProfileMismatchError,
    Status,
)
from detectors.drift.chisquare import chi2_two_sample
from detectors.drift.correction import CORRECTIONS, adjust
from detectors.drift.hellinger import hellinger
from detectors.drift.jensenshannon import jensenshannon
from detectors.drift.ks import ks_binned
from detectors.drift.profile import CategoricalProfile, NumericProfile, ReferenceProfile
from detectors.drift.psi import psi
from detectors.drift.sketch import CategoricalWindow, NumericWindow, WindowSketch

DETECTOR_NAME = "drift.features"
NUMERIC_TESTS = ("ks", "chi2")
CATEGORICAL_TESTS = ("chi2",)


@dataclass(frozen=True)
class FeatureDriftConfig:
    alpha: float = 0.005
    correction: str = "bonferroni"
    numeric_test: str = "ks"  # "chi2" tests the coarse bins instead
    categorical_test: str = "chi2"
    psi_floor_numeric: float = 0.03
    psi_floor_categorical: float = 0.005
    min_window_rows: int = 100
    min_reference_rows: int = 100
    dataset_drift_share: float = 0.0

    def __post_init__(self) -> None:
        for name in ("alpha", "psi_floor_numeric", "psi_floor_categorical", "dataset_drift_share"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not np.isfinite(value):
                raise ConfigError(f"{name} must be a finite number, got {value!r}")
        if not 0.0 < self.alpha < 1.0:
            raise ConfigError(f"alpha must be in (0, 1), got {self.alpha!r}")
        if self.psi_floor_numeric < 0 or self.psi_floor_categorical < 0:
            raise ConfigError("psi_floor_numeric and psi_floor_categorical must be >= 0")
        if not 0.0 <= self.dataset_drift_share < 1.0:
            raise ConfigError(f"dataset_drift_share must be in [0, 1), got {self.dataset_drift_share!r}")
        if self.correction not in CORRECTIONS:
            raise ConfigError(f"correction must be one of {CORRECTIONS}, got {self.correction!r}")
        if self.numeric_test not in NUMERIC_TESTS:
            raise ConfigError(f"numeric_test must be one of {NUMERIC_TESTS}, got {self.numeric_test!r}")
        if self.categorical_test not in CATEGORICAL_TESTS:
            raise ConfigError(
                f"categorical_test must be one of {CATEGORICAL_TESTS}, got {self.categorical_test!r}"
            )
        for name in ("min_window_rows", "min_reference_rows"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")


@dataclass(frozen=True)
class _Tested:
    """A feature's numbers before correction."""

    test: str
    statistic: float
    p_value: float
    psi: float
    floor: float
    extra: dict[str, Any]


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _numeric(fp: NumericProfile, win: NumericWindow, config: FeatureDriftConfig) -> _Tested:
    ref_coarse, win_coarse = fp.coarsen(fp.ref_counts), fp.coarsen(win.counts)
    extra: dict[str, Any]
    if config.numeric_test == "ks":
        ks = ks_binned(fp.ref_counts, win.counts)
        test, statistic, p_value, extra = "ks", ks.statistic, ks.p_value, {}
    else:
        chi = chi2_two_sample(ref_coarse, win_coarse)
        test, statistic, p_value, extra = "chi2", chi.statistic, chi.p_value, {"dof": chi.dof}
    extra |= {
        "js": jensenshannon(ref_coarse, win_coarse),
        "hellinger": hellinger(ref_coarse, win_coarse),
        "reference_mean": fp.mean,
        "reference_std": fp.std,
        "window_mean": win.mean,
        "window_std": win.std,
    }
    return _Tested(test, statistic, p_value, psi(ref_coarse, win_coarse), config.psi_floor_numeric, extra)


def _categorical(fp: CategoricalProfile, win: CategoricalWindow, config: FeatureDriftConfig) -> _Tested:
    # new categories share one extra bucket, empty in the reference
    ref = np.append(fp.bucket_counts(), 0)
    cur = np.append(win.counts, win.unseen_count)
    chi = chi2_two_sample(ref, cur)
    extra: dict[str, Any] = {
        "dof": chi.dof,
        "js": jensenshannon(ref, cur),
        "hellinger": hellinger(ref, cur),
        "unseen_count": win.unseen_count,
        "unseen_share": _rate(win.unseen_count, win.count),
        "unseen_categories": dict(sorted(win.unseen.items(), key=lambda kv: (-kv[1], kv[0]))),
    }
    return _Tested("chi2", chi.statistic, chi.p_value, psi(ref, cur), config.psi_floor_categorical, extra)


def evaluate_drift(
    profile: ReferenceProfile, sketch: WindowSketch, config: FeatureDriftConfig
) -> DriftResult:
    if sketch.profile.fingerprint != profile.fingerprint:
        raise ProfileMismatchError("the sketch was built for another reference profile")
    window_ok = sketch.n_rows >= config.min_window_rows and profile.n_rows >= config.min_reference_rows
    base: dict[str, dict[str, Any]] = {}
    tested: dict[str, _Tested] = {}
    for name, fp in profile.features.items():
        win = sketch.features[name]
        n_ref, n_win = fp.n, win.count
        kind = NUMERIC if isinstance(fp, NumericProfile) else CATEGORICAL
        base[name] = {
            "feature": name,
            "kind": kind,
            "n_reference": n_ref,
            "n_window": n_win,
            "missing_rate": _rate(win.missing, sketch.n_rows),
            "extra": {"reference_missing_rate": _rate(fp.missing, fp.n + fp.missing)},
        }
        if not (window_ok and n_ref >= config.min_reference_rows and n_win >= config.min_window_rows):
            continue
        if isinstance(fp, NumericProfile) and isinstance(win, NumericWindow):
            tested[name] = _numeric(fp, win, config)
        elif isinstance(fp, CategoricalProfile) and isinstance(win, CategoricalWindow):
            tested[name] = _categorical(fp, win, config)
        else:
            raise ProfileMismatchError(f"feature {name!r}: sketch and profile disagree on its kind")

    adjusted = dict(
        zip(tested, adjust([t.p_value for t in tested.values()], config.correction).tolist(), strict=True)
    )
    scores = []
    for name, fields in base.items():
        t = tested.get(name)
        if t is None:
            default_test = config.numeric_test if fields["kind"] == NUMERIC else config.categorical_test
            scores.append(
                FeatureScore(
                    **fields, status=Status.INSUFFICIENT_DATA, test=default_test, statistic=None,
                    p_value=None, p_adjusted=None, effect="psi", effect_value=None, drifted=False,
                )
            )  # fmt: skip
            continue
        drifted = adjusted[name] < config.alpha and t.psi >= t.floor
        fields["extra"] |= t.extra | {"psi_floor": t.floor}
        scores.append(
            FeatureScore(
                **fields, status=Status.DRIFT if drifted else Status.OK, test=t.test, statistic=t.statistic,
                p_value=t.p_value, p_adjusted=adjusted[name], effect="psi", effect_value=t.psi, drifted=drifted,
            )
        )  # fmt: skip

    drifted_features = tuple(s.feature for s in scores if s.drifted)
    share = len(drifted_features) / len(tested) if tested else None
    if share is None:
        status = Status.INSUFFICIENT_DATA
    else:
        status = Status.DRIFT if share > config.dataset_drift_share else Status.OK
    return DriftResult(
        detector=DETECTOR_NAME,
        status=status,
        share_drifted=share,
        drifted_features=drifted_features,
        scores=tuple(scores),
        n_window=sketch.n_rows,
        config=asdict(config),
        unknown_features=tuple(sorted(sketch.unknown_features)),
    )
