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
from dataclasses import asdict, dataclass, field
from math import isfinite
from typing import Any

import numpy as np

from detectors.base import (
    CATEGORICAL,
    NUMERIC,
    AlertStatus,
    ConfigError,
    FeatureKind,
    InputError,
    ProfileMismatchError,
    fast_constructor,
    finite_number,
    int_at_least,
    json_safe,
)
from detectors.drift.correction import CORRECTIONS, adjust
from detectors.drift.profile import CategoricalProfile, NumericProfile, ReferenceProfile
from detectors.drift.sketch import CategoricalWindow, NumericWindow, WindowSketch
from detectors.quality.stats import RANGE_TESTS, fisher_pvalues, range_pvalues

DETECTOR_NAME = "quality.data"

MISSING_RATE = "missing_rate"
OUT_OF_RANGE = "out_of_range"
OUT_OF_DOMAIN = "out_of_domain"
TYPE_ERRORS = "type_errors"
FEATURE_ABSENT = "feature_absent"
NEW_COLUMN = "new_column"
CHECKS: tuple[str, ...] = (MISSING_RATE, OUT_OF_RANGE, OUT_OF_DOMAIN, TYPE_ERRORS, FEATURE_ABSENT, NEW_COLUMN)
MAX_REPORTED_CATEGORIES = 10


QualityStatus = AlertStatus  # the shared verdict of alerting detectors (detectors.base)




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
        int_at_least("min_window_rows", self.min_window_rows, 1)
        int_at_least("min_reference_rows", self.min_reference_rows, 2)

    def to_dict(self) -> dict[str, Any]:
        # every window's result carries it: made once per config (fields are plain, immutable values), copied
        cached: dict[str, Any] | None = self.__dict__.get("_as_dict")
        if cached is None:
            cached = json_safe(asdict(self))
            object.__setattr__(self, "_as_dict", cached)
        return dict(cached)


_NOT_PLAIN = object()


def _plain_dict(value: Mapping[str, Any]) -> Any:
    """``json_safe(value)`` for a dict of the values checks hold (``str`` keys; ``str``, ``int``, ``bool``,
    None, ``float`` or such a dict as values, exactly those types), as a new dict; ``_NOT_PLAIN`` for
    anything else, which the caller hands to ``json_safe`` (numpy scalars, other mappings, sequences, enums,
    subclasses)."""
    if type(value) is not dict:
        return _NOT_PLAIN
    out = value.copy()
    for k, v in value.items():
        t = type(v)
        if t is float:
            if not isfinite(v):
                out[k] = None
        elif t is dict:
            v = _plain_dict(v)
            if v is _NOT_PLAIN:
                return _NOT_PLAIN
            out[k] = v
        elif not (t is int or t is str or v is None or t is bool):
            return _NOT_PLAIN
        if type(k) is not str:
            return _NOT_PLAIN
    return out


def _is_plain(*values: Any) -> bool:
    """Every value is a ``str``, ``int``, ``bool``, None or finite ``float`` (exactly those types): what
    ``json_safe`` returns unchanged."""
    for v in values:
        t = type(v)
        if t is float:
            if not isfinite(v):
                return False
        elif not (t is int or t is str or v is None or t is bool):
            return False
    return True


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
        out: dict[str, Any] = {
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
        if _is_plain(*out.values()):
            return out
        safe: dict[str, Any] = json_safe(out)
        return safe

    def to_dict(self) -> dict[str, Any]:
        # built directly where every value is plain (the checks evaluate_quality makes), as
        # json_safe(asdict(self)) would; anything else (numpy scalars, NaN, other mappings, ...) goes that way
        status, value, expected, count, n = self.status, self.value, self.expected, self.count, self.n
        p_value, p_adjusted, floor, check, feature, test = (
            self.p_value, self.p_adjusted, self.floor, self.check, self.feature, self.test
        )  # fmt: skip
        if type(status) is QualityStatus and _is_plain(
            value, expected, count, n, p_value, p_adjusted, floor, check, feature, test
        ):
            extra = _plain_dict(self.extra)
            if extra is not _NOT_PLAIN:
                return {
                    "check": check,
                    "feature": feature,
                    "status": status._value_,
                    "value": value,
                    "expected": expected,
                    "count": count,
                    "n": n,
                    "test": test,
                    "p_value": p_value,
                    "p_adjusted": p_adjusted,
                    "floor": floor,
                    "extra": extra,
                }
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
        status = self.status
        return {
            "feature": self.feature,
            "kind": self.kind,
            "status": status._value_ if type(status) is QualityStatus else status.value,
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
            "config": _config_dict(self.config),
        }


def _config_dict(config: Mapping[str, Any]) -> Any:
    out = _plain_dict(config)
    return json_safe(config) if out is _NOT_PLAIN else out


# a window of 23 features builds 69 checks: built field by field (~2.5x faster than the frozen __init__)
_new_check = fast_constructor(Check)
_new_feature_quality = fast_constructor(FeatureQuality)


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


# A check whose test is still to run is built at once (status insufficient_data, no p-values), not yet seen
# by anyone: once all of a window's tests of one kind have run in one call and the family is corrected,
# its status and p-values are filled in (same keys, so the __dict__ keeps its field order). Built once.
_INSUFFICIENT = QualityStatus.INSUFFICIENT_DATA
_ALERT = QualityStatus.ALERT
_OK = QualityStatus.OK
_TRUNCATED = "truncated profile: categories beyond max_categories pool into __other__"


def _top_unseen(unseen: Mapping[str, int]) -> dict[str, int]:
    if not unseen:
        return {}
    return dict(sorted(unseen.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_REPORTED_CATEGORIES])


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
    errors = _validated_type_errors(profile, sketch, type_errors, config) if type_errors else {}
    rows = sketch.n_rows
    window_ok = rows >= config.min_window_rows
    min_reference = config.min_reference_rows
    counted = config.type_errors_counted_as_missing
    missing_floor, range_floor, range_test = config.missing_floor, config.range_floor, config.range_test
    type_error_floor = config.type_error_floor
    new_check = _new_check

    checks: list[tuple[str, FeatureKind, Check, Check, Check]] = []
    # the tests to run, one list per kind, and the family in the order it is corrected: (check, passes its
    # floor, 0 for Fisher's test or 1 for the range test, index in that test's list)
    fisher_args: list[tuple[int, int, int, int]] = []
    range_args: list[tuple[int, int, int, int]] = []
    family: list[tuple[Check, bool, int, int]] = []
    windows = sketch.features
    for name, fp in profile.features.items():
        win = windows[name]
        te = errors.get(name, 0)
        excluded = te if counted else 0

        # missing_rate
        missing = win.missing - excluded
        ref_missing = fp.missing
        ref_rows = fp.n + ref_missing
        value = missing / rows if rows else None
        expected = ref_missing / ref_rows if ref_rows else None
        extra: dict[str, Any] = {
            "reference_missing": ref_missing,
            "reference_rows": ref_rows,
            "type_errors_excluded": excluded,
        }
        a = new_check(MISSING_RATE, name, _INSUFFICIENT, value, expected, missing, rows, "fisher", None, None,
                      missing_floor, extra)  # fmt: skip
        if window_ok and ref_rows >= min_reference:
            assert value is not None and expected is not None
            increase = value - expected
            extra["increase"] = increase
            extra["absent"] = missing == rows
            family.append((a, increase >= missing_floor, 0, len(fisher_args)))
            fisher_args.append((missing, rows, ref_missing, ref_rows))

        # out_of_range / out_of_domain
        if isinstance(fp, NumericProfile) and isinstance(win, NumericWindow):
            kind = NUMERIC
            count, m = win.below + win.above, win.count
            extra = {
                "below": win.below,
                "above": win.above,
                "reference_min": fp.minimum,
                "reference_max": fp.maximum,
                "window_min": win.minimum if m else None,
                "window_max": win.maximum if m else None,
            }
            b = new_check(OUT_OF_RANGE, name, _INSUFFICIENT, count / m if m else None, 2.0 / (fp.n + 1.0),
                          count, m, range_test, None, None, range_floor, extra)  # fmt: skip
            known_range = fp.minimum is not None and fp.maximum is not None
            if m >= 1 and window_ok and known_range and fp.n >= min_reference:
                family.append((b, count / m >= range_floor, 1, len(range_args)))
                range_args.append((count, m, fp.n, 2))
        elif isinstance(fp, CategoricalProfile) and isinstance(win, CategoricalWindow):
            kind = CATEGORICAL
            count, m = win.unseen_count, win.count
            singletons = int(np.count_nonzero(fp.ref_counts == 1))
            extra = {
                "unseen_categories": _top_unseen(win.unseen),
                "unseen_untracked": win.unseen_untracked,
                "reference_singletons": singletons,
            }
            if fp.truncated:
                extra["reason"] = _TRUNCATED
                b = new_check(OUT_OF_DOMAIN, name, _INSUFFICIENT, None, None, None, m, None, None, None,
                              range_floor, extra)  # fmt: skip
            else:
                # below n keeps the beta-binomial proper (b = n + 1 - k >= 1)
                k = min(singletons + 1, max(fp.n, 1))
                b = new_check(OUT_OF_DOMAIN, name, _INSUFFICIENT, count / m if m else None, k / (fp.n + 1.0),
                              count, m, range_test, None, None, range_floor, extra)  # fmt: skip
                if m >= 1 and window_ok and fp.n >= min_reference:
                    family.append((b, count / m >= range_floor, 1, len(range_args)))
                    range_args.append((count, m, fp.n, k))
        else:
            raise ProfileMismatchError(f"feature {name!r}: sketch and profile disagree on its kind")

        # type_errors
        value = te / rows if rows else None
        if not window_ok or value is None:
            status = _INSUFFICIENT
        else:
            status = _ALERT if value >= type_error_floor else _OK
        c = new_check(TYPE_ERRORS, name, status, value, 0.0, te, rows, None, None, None, type_error_floor, {})
        checks.append((name, kind, a, b, c))

    if family:
        tested = (fisher_pvalues(fisher_args), range_pvalues(range_args, range_test))
        p_values = [tested[test][i] for _, _, test, i in family]
        adjusted = adjust(p_values, config.correction).tolist()
        alpha = config.alpha
        for (check, passes, _, _), p, q in zip(family, p_values, adjusted, strict=True):
            state = check.__dict__
            state["status"] = _ALERT if q < alpha and passes else _OK
            state["p_value"] = p
            state["p_adjusted"] = q

    features: dict[str, FeatureQuality] = {}
    problems: list[Check] = []
    for name, kind, a, b, c in checks:
        sa, sb, sc = a.status, b.status, c.status
        if sa is _ALERT or sb is _ALERT or sc is _ALERT:
            status = _ALERT
            problems.extend(x for x in (a, b, c) if x.status is _ALERT)
        elif sa is _INSUFFICIENT and sb is _INSUFFICIENT and sc is _INSUFFICIENT:
            status = _INSUFFICIENT
        else:
            status = _OK
        features[name] = _new_feature_quality(name, kind, status, {a.check: a, b.check: b, c.check: c})

    new_status = (_ALERT if config.new_columns_alert else _OK) if window_ok else _INSUFFICIENT
    unset = (None,) * 8  # value, expected, count, n, test, p_value, p_adjusted, floor
    new_columns = tuple(
        new_check(NEW_COLUMN, name, new_status, *unset, {"reason": "not in the profile"})
        for name in sorted(sketch.unknown_features)
    )
    warnings: list[Check] = []
    if window_ok:
        if new_status is _ALERT:
            problems.extend(new_columns)
        else:
            warnings.extend(new_columns)

    if problems:
        status = _ALERT
    elif not window_ok or all(f.status is _INSUFFICIENT for f in features.values()):
        status = _INSUFFICIENT
    else:
        status = _OK
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
