"""Data quality of one window against its reference profile ("quality.data").

Per feature, three checks; per window, the schema. Each check reports the window's share, the share expected
under no change, the counts behind them and, where a test applies, its p-value before and after correction.

* ``missing_rate``: the window's share of missing values against the reference's. Flagged when Fisher's
  exact one-sided test says the share rose (adjusted p < ``alpha``) AND it rose by at least
  ``missing_floor`` (absolute, 0.05 = 5 percentage points). When the flagged window is missing the feature
  in every row, the problem is reported as ``feature_absent`` (a dropped column) instead.
* ``out_of_range`` (numeric): the share of non-missing values strictly below the reference minimum or above
  its maximum (``NumericWindow.below`` / ``above``). Expected under no change: ``2 / (n + 1)`` for a
  reference of ``n`` values. Flagged when the one-sided test (beta-binomial by default, see ``stats``) is
  significant AND the share is at least ``range_floor`` (0.01).
* ``out_of_domain`` (categorical): the share of non-missing values whose category the reference never had
  (``CategoricalWindow.unseen_count``). Expected under no change: ``(f1 + 1) / (n + 1)`` with ``f1`` the
  reference categories seen exactly once (Good-Turing's estimate of the unseen mass, plus one as for the
  numeric range); same test and floor as ``out_of_range``. Not available for a truncated profile (new
  categories pool into ``__other__`` there).
* ``type_errors``: values of the wrong type, counted by the stream, per window row. Flagged at
  ``type_error_floor`` (0.01) without a test: a wrong type is a producer's bug, never sampling noise.
* schema, per window: ``feature_absent`` (above) and ``new_column`` for each of ``sketch.unknown_features``.
  The sketch knows new columns by name only (not in how many rows), so a single stray event would be enough:
  new columns are ``warnings`` (not alerts) unless ``new_columns_alert``.

The p-values of ``missing_rate`` and ``out_of_range`` / ``out_of_domain`` form one family per window,
corrected together (Bonferroni by default) with the helper drift uses. The reasons for each default are in
``docs/quality.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import Any

import numpy as np

from detectors.base import (
    CATEGORICAL,
    NUMERIC,
    ConfigError,
    FeatureKind,
    InputError,
    ProfileMismatchError,
    finite_number,
    json_safe,
)
from detectors.drift.correction import CORRECTIONS, adjust
from detectors.drift.profile import CategoricalProfile, NumericProfile, ReferenceProfile
from detectors.drift.sketch import CategoricalWindow, NumericWindow, WindowSketch
from detectors.quality.stats import RANGE_TESTS, fisher_greater, outside_range_pvalue

DETECTOR_NAME = "quality.data"

MISSING_RATE = "missing_rate"
OUT_OF_RANGE = "out_of_range"
OUT_OF_DOMAIN = "out_of_domain"
TYPE_ERRORS = "type_errors"
FEATURE_ABSENT = "feature_absent"
NEW_COLUMN = "new_column"
CHECKS: tuple[str, ...] = (MISSING_RATE, OUT_OF_RANGE, OUT_OF_DOMAIN, TYPE_ERRORS, FEATURE_ABSENT, NEW_COLUMN)
MAX_REPORTED_CATEGORIES = 10


class QualityStatus(StrEnum):
    """``ok`` and ``insufficient_data`` carry the same values as ``detectors.base.Status``."""

    OK = "ok"
    ALERT = "alert"
    INSUFFICIENT_DATA = "insufficient_data"


def _integer(name: str, value: object, minimum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


@dataclass(frozen=True)
class QualityConfig:
    """When a quality check alerts; validated at construction (``ConfigError`` names the field)."""

    alpha: float = 0.005
    correction: str = "bonferroni"
    missing_floor: float = 0.05  # absolute increase of the missing share
    range_floor: float = 0.01  # share of values out of range / out of domain
    range_test: str = "betabinomial"
    type_error_floor: float = 0.01  # share of window rows with a wrong-typed value
    type_errors_counted_as_missing: bool = True  # the stream also counts a wrong-typed value as missing
    new_columns_alert: bool = False
    min_window_rows: int = 100
    min_reference_rows: int = 100

    def __post_init__(self) -> None:
        if not 0.0 < finite_number("alpha", self.alpha) < 1.0:
            raise ConfigError(f"alpha must be in (0, 1), got {self.alpha!r}")
        if self.correction not in CORRECTIONS:
            raise ConfigError(f"correction must be one of {CORRECTIONS}, got {self.correction!r}")
        if not 0.0 <= finite_number("missing_floor", self.missing_floor) < 1.0:
            raise ConfigError(f"missing_floor must be in [0, 1), got {self.missing_floor!r}")
        if not 0.0 <= finite_number("range_floor", self.range_floor) <= 1.0:
            raise ConfigError(f"range_floor must be in [0, 1], got {self.range_floor!r}")
        if self.range_test not in RANGE_TESTS:
            raise ConfigError(f"range_test must be one of {RANGE_TESTS}, got {self.range_test!r}")
        if not 0.0 < finite_number("type_error_floor", self.type_error_floor) <= 1.0:
            raise ConfigError(
                f"type_error_floor must be in (0, 1] (0 would flag every window), got {self.type_error_floor!r}"
            )
        for name in ("type_errors_counted_as_missing", "new_columns_alert"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be true or false, got {getattr(self, name)!r}")
        _integer("min_window_rows", self.min_window_rows, 1)
        _integer("min_reference_rows", self.min_reference_rows, 2)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = json_safe(asdict(self))
        return out


@dataclass(frozen=True)
class Check:
    """One check of one feature (or one new column) in one window.

    ``value`` is the window's share (missing values per row, values out of range per non-missing value,
    wrong-typed values per row; None for a new column, whose rows the sketch does not count), ``expected`` the share expected under no change,
    ``count`` / ``n`` the counts behind ``value``. ``floor`` is the configured floor: for ``missing_rate``
    on the increase ``value - expected``, elsewhere on ``value``. ``test`` names the test (None when the
    check has none); ``p_adjusted`` is after the window's correction.
    """

    check: str
    feature: str
    status: QualityStatus
    value: float | None
    expected: float | None
    count: int | None
    n: int | None
    test: str | None = None
    p_value: float | None = None
    p_adjusted: float | None = None
    floor: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def flagged(self) -> bool:
        return self.status == QualityStatus.ALERT

    @property
    def problem_check(self) -> str:
        """The name a flagged check is reported under: ``feature_absent`` for an all-missing feature."""
        return FEATURE_ABSENT if self.check == MISSING_RATE and self.extra.get("absent") else self.check

    def problem(self) -> dict[str, Any]:
        """The short form listed in ``QualityResult.problems`` / ``warnings``."""
        out: dict[str, Any] = json_safe(
            {
                "check": self.problem_check,
                "feature": self.feature,
                "value": self.value,
                "expected": self.expected,
                "count": self.count,
                "n": self.n,
                "p_value": self.p_value,
                "p_adjusted": self.p_adjusted,
                "floor": self.floor,
            }
        )
        return out

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = json_safe(asdict(self))
        out["status"] = self.status.value
        return out


@dataclass(frozen=True)
class FeatureQuality:
    """A feature's checks, keyed by check name: ``missing_rate``, ``out_of_range`` (numeric) or
    ``out_of_domain`` (categorical), ``type_errors``."""

    feature: str
    kind: FeatureKind
    status: QualityStatus
    checks: Mapping[str, Check]

    def to_dict(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "kind": self.kind,
            "status": self.status.value,
            "checks": {name: c.to_dict() for name, c in self.checks.items()},
        }


@dataclass(frozen=True)
class QualityResult:
    """One window's verdict: ``alert`` when ``problems`` is not empty."""

    detector: str
    status: QualityStatus
    n_window: int
    features: Mapping[str, FeatureQuality]
    new_columns: tuple[Check, ...]
    problems: tuple[Check, ...]
    warnings: tuple[Check, ...]
    config: Mapping[str, Any]

    def feature(self, name: str) -> FeatureQuality:
        return self.features[name]

    @property
    def absent_features(self) -> tuple[str, ...]:
        return tuple(c.feature for c in self.problems if c.problem_check == FEATURE_ABSENT)

    def to_dict(self) -> dict[str, Any]:
        return {
            "detector": self.detector,
            "status": self.status.value,
            "n_window": int(self.n_window),
            "problems": [c.problem() for c in self.problems],
            "warnings": [c.problem() for c in self.warnings],
            "absent_features": list(self.absent_features),
            "new_columns": [c.feature for c in self.new_columns],
            "features": {name: f.to_dict() for name, f in self.features.items()},
            "config": json_safe(self.config),
        }


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass(frozen=True)
class _Pending:
    """A check whose test is still to run (all of a window's tests of one kind run in one vectorised call),
    then to be corrected with the window's family."""

    check: Check
    passes_floor: bool
    args: tuple[int, int, int, int]  # fisher: x_win, n_win, x_ref, n_ref; range: count, m, n, k


def _missing(
    name: str,
    fp: NumericProfile | CategoricalProfile,
    missing: int,
    type_errors_excluded: int,
    rows: int,
    config: QualityConfig,
) -> Check | _Pending:
    ref_rows = fp.n + fp.missing
    value, expected = _share(missing, rows), _share(fp.missing, ref_rows)
    extra: dict[str, Any] = {
        "reference_missing": fp.missing,
        "reference_rows": ref_rows,
        "type_errors_excluded": type_errors_excluded,
    }
    base = Check(MISSING_RATE, name, QualityStatus.INSUFFICIENT_DATA, value, expected, missing, rows,
                 test="fisher", floor=config.missing_floor, extra=extra)  # fmt: skip
    if rows < config.min_window_rows or ref_rows < config.min_reference_rows:
        return base
    assert value is not None and expected is not None
    extra |= {"increase": value - expected, "absent": missing == rows}
    args = (missing, rows, fp.missing, ref_rows)
    return _Pending(replace(base, extra=extra), value - expected >= config.missing_floor, args)


def _numeric_range(
    name: str, fp: NumericProfile, win: NumericWindow, rows: int, config: QualityConfig
) -> Check | _Pending:
    count, m = win.below + win.above, win.count
    extra: dict[str, Any] = {
        "below": win.below,
        "above": win.above,
        "reference_min": fp.minimum,
        "reference_max": fp.maximum,
        "window_min": win.minimum if m else None,
        "window_max": win.maximum if m else None,
    }
    expected = 2.0 / (fp.n + 1.0)
    base = Check(OUT_OF_RANGE, name, QualityStatus.INSUFFICIENT_DATA, _share(count, m), expected, count, m,
                 test=config.range_test, floor=config.range_floor, extra=extra)  # fmt: skip
    if (
        m < 1
        or rows < config.min_window_rows
        or fp.minimum is None
        or fp.maximum is None
        or fp.n < config.min_reference_rows
    ):
        return base
    return _Pending(base, count / m >= config.range_floor, (count, m, fp.n, 2))


def _categorical_domain(
    name: str, fp: CategoricalProfile, win: CategoricalWindow, rows: int, config: QualityConfig
) -> Check | _Pending:
    count, m = win.unseen_count, win.count
    singletons = int(np.count_nonzero(fp.ref_counts == 1))
    k = min(singletons + 1, max(fp.n, 1))  # below n keeps the beta-binomial proper (b = n + 1 - k >= 1)
    top = sorted(win.unseen.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_REPORTED_CATEGORIES]
    extra: dict[str, Any] = {
        "unseen_categories": dict(top),
        "unseen_untracked": win.unseen_untracked,
        "reference_singletons": singletons,
    }
    if fp.truncated:
        extra["reason"] = "truncated profile: categories beyond max_categories pool into __other__"
        return Check(OUT_OF_DOMAIN, name, QualityStatus.INSUFFICIENT_DATA, None, None, None, m,
                     test=None, floor=config.range_floor, extra=extra)  # fmt: skip
    expected = k / (fp.n + 1.0)
    base = Check(OUT_OF_DOMAIN, name, QualityStatus.INSUFFICIENT_DATA, _share(count, m), expected, count, m,
                 test=config.range_test, floor=config.range_floor, extra=extra)  # fmt: skip
    if m < 1 or rows < config.min_window_rows or fp.n < config.min_reference_rows:
        return base
    return _Pending(base, count / m >= config.range_floor, (count, m, fp.n, k))


def _type_errors(name: str, errors: int, rows: int, config: QualityConfig) -> Check:
    value = _share(errors, rows)
    if rows < config.min_window_rows or value is None:
        status = QualityStatus.INSUFFICIENT_DATA
    else:
        status = QualityStatus.ALERT if value >= config.type_error_floor else QualityStatus.OK
    return Check(TYPE_ERRORS, name, status, value, 0.0, errors, rows, floor=config.type_error_floor)


def _validated_type_errors(
    profile: ReferenceProfile, sketch: WindowSketch, type_errors: Mapping[str, int], config: QualityConfig
) -> dict[str, int]:
    unknown = sorted(set(type_errors) - set(profile.features))
    if unknown:
        raise InputError(f"type_errors names features the profile does not have: {unknown}")
    out: dict[str, int] = {}
    for name, count in type_errors.items():
        if (
            not isinstance(count, (int, np.integer))
            or isinstance(count, bool)
            or not 0 <= count <= sketch.n_rows
        ):
            raise InputError(
                f"type_errors[{name!r}] must be an integer in [0, {sketch.n_rows}], got {count!r}"
            )
        missing = sketch.features[name].missing
        if config.type_errors_counted_as_missing and count > missing:
            raise InputError(
                f"type_errors[{name!r}] = {count} exceeds the window's {missing} missing values, but "
                "type_errors_counted_as_missing is set (the stream counts a wrong-typed value as missing)"
            )
        out[name] = int(count)
    return out


def _run_tests(pending: list[_Pending], config: QualityConfig) -> list[float]:
    """Every pending test's p-value, in order: one call for the Fisher tests, one for the range tests."""
    out = [1.0] * len(pending)
    missing = [i for i, item in enumerate(pending) if item.check.check == MISSING_RATE]
    ranges = [i for i, item in enumerate(pending) if item.check.check != MISSING_RATE]
    if missing:
        args = np.array([pending[i].args for i in missing], dtype=np.int64).T
        for i, p in zip(missing, fisher_greater(*args).tolist(), strict=True):
            out[i] = float(p)
    if ranges:
        args = np.array([pending[i].args for i in ranges], dtype=np.int64).T
        for i, p in zip(ranges, outside_range_pvalue(*args, test=config.range_test).tolist(), strict=True):
            out[i] = float(p)
    return out


def _combine(checks: list[Check]) -> QualityStatus:
    if any(c.flagged for c in checks):
        return QualityStatus.ALERT
    if checks and all(c.status == QualityStatus.INSUFFICIENT_DATA for c in checks):
        return QualityStatus.INSUFFICIENT_DATA
    return QualityStatus.OK


def evaluate_quality(
    profile: ReferenceProfile,
    sketch: WindowSketch,
    type_errors: Mapping[str, int] | None = None,
    config: QualityConfig | None = None,
) -> QualityResult:
    """Every check of one closed window; ``type_errors`` maps a feature to its wrong-typed values (absent: 0)."""
    config = config if config is not None else QualityConfig()
    if sketch.profile.fingerprint != profile.fingerprint:
        raise ProfileMismatchError("the sketch was built for another reference profile")
    errors = _validated_type_errors(profile, sketch, type_errors or {}, config)
    rows = sketch.n_rows

    per_feature: dict[str, list[Check | _Pending]] = {}
    kinds: dict[str, FeatureKind] = {}
    for name, fp in profile.features.items():
        win = sketch.features[name]
        te = errors.get(name, 0)
        excluded = te if config.type_errors_counted_as_missing else 0
        items: list[Check | _Pending] = [_missing(name, fp, win.missing - excluded, excluded, rows, config)]
        if isinstance(fp, NumericProfile) and isinstance(win, NumericWindow):
            kinds[name] = NUMERIC
            items.append(_numeric_range(name, fp, win, rows, config))
        elif isinstance(fp, CategoricalProfile) and isinstance(win, CategoricalWindow):
            kinds[name] = CATEGORICAL
            items.append(_categorical_domain(name, fp, win, rows, config))
        else:
            raise ProfileMismatchError(f"feature {name!r}: sketch and profile disagree on its kind")
        items.append(_type_errors(name, te, rows, config))
        per_feature[name] = items

    pending = [item for items in per_feature.values() for item in items if isinstance(item, _Pending)]
    p_values = _run_tests(pending, config)
    adjusted = adjust(p_values, config.correction).tolist()
    decided = {
        (item.check.feature, item.check.check): replace(
            item.check,
            p_value=p,
            p_adjusted=q,
            status=QualityStatus.ALERT if q < config.alpha and item.passes_floor else QualityStatus.OK,
        )
        for item, p, q in zip(pending, p_values, adjusted, strict=True)
    }

    features: dict[str, FeatureQuality] = {}
    problems: list[Check] = []
    for name, items in per_feature.items():
        checks = [decided[(i.check.feature, i.check.check)] if isinstance(i, _Pending) else i for i in items]
        features[name] = FeatureQuality(name, kinds[name], _combine(checks), {c.check: c for c in checks})
        problems.extend(c for c in checks if c.flagged)

    window_ok = rows >= config.min_window_rows
    new_status = QualityStatus.ALERT if config.new_columns_alert else QualityStatus.OK
    new_columns = tuple(
        Check(NEW_COLUMN, name, new_status, None, None, None, None, extra={"reason": "not in the profile"})
        for name in sorted(sketch.unknown_features)
    )
    warnings: list[Check] = []
    if window_ok:
        problems.extend(c for c in new_columns if c.flagged)
        warnings.extend(c for c in new_columns if not c.flagged)
    else:
        new_columns = tuple(replace(c, status=QualityStatus.INSUFFICIENT_DATA) for c in new_columns)

    if problems:
        status = QualityStatus.ALERT
    elif not window_ok or all(f.status == QualityStatus.INSUFFICIENT_DATA for f in features.values()):
        status = QualityStatus.INSUFFICIENT_DATA
    else:
        status = QualityStatus.OK
    return QualityResult(
        detector=DETECTOR_NAME,
        status=status,
        n_window=rows,
        features=features,
        new_columns=new_columns,
        problems=tuple(problems),
        warnings=tuple(warnings),
        config=config.to_dict(),
    )
