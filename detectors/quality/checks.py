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

``evaluate_quality_many`` judges the windows one batch of events closes (a sliding window closes ~10) in one
pass, each result equal to ``evaluate_quality`` of its window alone; ``evaluate_quality`` is that pass over
one window. A result's ``features`` are built when first read: the worker reads them only when a window
alerts.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, ItemsView, Iterable, Iterator, Mapping, Sequence, ValuesView
from dataclasses import asdict, dataclass, field
from itertools import accumulate, chain
from math import isfinite
from operator import attrgetter, itemgetter
from typing import Any

import numpy as np
import numpy.typing as npt

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
from detectors.drift.sketch import CategoricalWindow, NumericWindow, StackedSketches, WindowSketch
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
_new_result = fast_constructor(QualityResult)


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
        missing = sketch.missing_count(name)
        if config.type_errors_counted_as_missing and count > missing:
            raise InputError(
                f"type_errors[{name!r}] = {count} exceeds the window's {missing} missing values, but "
                "type_errors_counted_as_missing is set (the stream counts a wrong-typed value as missing)"
            )
        out[name] = int(count)
    return out


_INSUFFICIENT = QualityStatus.INSUFFICIENT_DATA
_ALERT = QualityStatus.ALERT
_OK = QualityStatus.OK
# statuses as codes in arrays: 0 ok, 1 alert (a True in an alert mask), 2 insufficient data
_STATUSES = (_OK, _ALERT, _INSUFFICIENT)
_CODE_INSUFFICIENT = 2
_TRUNCATED = "truncated profile: categories beyond max_categories pool into __other__"
_NEW_COLUMN_EXTRA = "not in the profile"

# a window's status codes (feature, check), p-values and adjusted p-values (feature, test), as lists
_State = tuple[list[list[int]], list[list[float]], list[list[float]]]
IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


def _top_unseen(unseen: Mapping[str, int]) -> dict[str, int]:
    if not unseen:
        return {}
    return dict(sorted(unseen.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_REPORTED_CATEGORIES])


def _getter(keys: Sequence[Any]) -> Callable[[Any], tuple[Any, ...]]:
    """``operator.itemgetter(*keys)`` that always returns a tuple (itemgetter of one key returns the item)."""
    if len(keys) > 1:
        return itemgetter(*keys)
    if keys:
        get = itemgetter(keys[0])
        return lambda obj: (get(obj),)
    return lambda obj: ()


_missing_of = attrgetter("missing")
_count_of = attrgetter("count")
_below_of = attrgetter("below")
_above_of = attrgetter("above")
_unseen_of = attrgetter("unseen_count")
_counts_of = attrgetter("counts")


def _ints(values: Iterable[Any], size: int) -> IntArray:
    return np.fromiter(values, dtype=np.int64, count=size)


@dataclass(frozen=True, eq=False)
class _Plan:
    """What the checks need of a profile, per feature in profile order: built once per profile."""

    names: tuple[str, ...]
    index: dict[str, int]
    profiles: tuple[Any, ...]  # FeatureProfile
    window_types: list[type | None]  # the window class each profile asks for (None: neither kind)
    windows_of: Callable[[Any], tuple[Any, ...]]  # sketch.features -> windows in profile order
    numeric_of: Callable[[Any], tuple[Any, ...]]  # windows in profile order -> the numeric ones
    categorical_of: Callable[[Any], tuple[Any, ...]]
    n_numeric: int
    n_categorical: int
    # range_counts' columns (outside, then values; each numeric then categorical) into profile order;
    # None when the profile lists its numeric features first
    order: npt.NDArray[np.intp] | None
    ref_missing: IntArray
    ref_rows: IntArray
    expected_missing: FloatArray  # NaN without reference rows (never tested then)
    n: IntArray
    k: IntArray  # the range test's k: 2 for a numeric range, Good-Turing's singletons + 1 for categories
    ks: tuple[int, ...]  # the same, as ints
    range_known: BoolArray  # a numeric feature with a min and max; a categorical one not truncated
    singletons: tuple[int, ...]

    @classmethod
    def build(cls, profile: ReferenceProfile) -> _Plan:
        names = tuple(profile.features)
        profiles = tuple(profile.features.values())
        types: list[type | None] = []
        ref_missing, ref_rows, n, ks, known, singletons = [], [], [], [], [], []
        for fp in profiles:
            k, ones, ok = 0, 0, False
            if isinstance(fp, NumericProfile):
                types.append(NumericWindow)
                k, ok = 2, fp.minimum is not None and fp.maximum is not None
            elif isinstance(fp, CategoricalProfile):
                types.append(CategoricalWindow)
                ones = int(np.count_nonzero(fp.ref_counts == 1))
                # below n keeps the beta-binomial proper (b = n + 1 - k >= 1)
                k, ok = min(ones + 1, max(fp.n, 1)), not fp.truncated
            else:
                types.append(None)
            ref_missing.append(fp.missing)
            ref_rows.append(fp.n + fp.missing)
            n.append(fp.n)
            ks.append(k)
            known.append(ok)
            singletons.append(ones)
        numeric = [i for i, t in enumerate(types) if t is NumericWindow]
        categorical = [i for i, t in enumerate(types) if t is CategoricalWindow]
        order = np.argsort(np.array(numeric + categorical, dtype=np.intp))
        in_order = np.array_equal(order, np.arange(order.size))
        rows = np.array(ref_rows, dtype=np.int64)
        missing = np.array(ref_missing, dtype=np.int64)
        with np.errstate(divide="ignore", invalid="ignore"):
            expected = missing / rows
        return cls(
            names=names,
            index={name: i for i, name in enumerate(names)},
            profiles=profiles,
            window_types=types,
            windows_of=_getter(names),
            numeric_of=_getter(numeric),
            categorical_of=_getter(categorical),
            n_numeric=len(numeric),
            n_categorical=len(categorical),
            order=None if in_order else np.concatenate([order, order + order.size]),
            ref_missing=missing,
            ref_rows=rows,
            expected_missing=np.where(rows > 0, expected, np.nan),
            n=np.array(n, dtype=np.int64),
            k=np.array(ks, dtype=np.int64),
            ks=tuple(ks),
            range_known=np.array(known, dtype=bool),
            singletons=tuple(singletons),
        )

    def windows(self, features: Mapping[str, Any]) -> tuple[Any, ...]:
        """A sketch's windows in profile order; ``ProfileMismatchError`` (or ``KeyError``) as the per-feature
        loop raised them, at the first feature in profile order whose window is missing or of another kind."""
        try:
            wins = self.windows_of(features)
            if list(map(type, wins)) == self.window_types:
                return wins
        except KeyError:
            pass
        for name, fp in zip(self.names, self.profiles, strict=True):
            win = features[name]
            if not (
                (isinstance(fp, NumericProfile) and isinstance(win, NumericWindow))
                or (isinstance(fp, CategoricalProfile) and isinstance(win, CategoricalWindow))
            ):
                raise ProfileMismatchError(f"feature {name!r}: sketch and profile disagree on its kind")
        return tuple(features[name] for name in self.names)  # subclasses of the window classes

    def stacked_counts(self, st: StackedSketches) -> tuple[IntArray, IntArray, IntArray]:
        """Per window and feature (profile order) its missing values, the values outside the reference and the
        non-missing values they are counted among: what ``range_counts`` and the windows' ``missing`` give,
        read from the packed arrays of all the windows at once."""
        # the stacks hold the numeric features, then the categorical ones, each in profile order
        missing = np.concatenate([st.missing, st.cat_missing], axis=1)
        outside = np.concatenate([st.below + st.above, st.unseen_count], axis=1)
        values = np.concatenate([st.count, st.cat_count], axis=1)
        if self.order is not None:
            order = self.order[: len(self.names)]
            missing, outside, values = missing[:, order], outside[:, order], values[:, order]
        return missing, outside, values

    def range_counts(self, windows: list[tuple[Any, ...]]) -> tuple[IntArray, IntArray]:
        """Per window and feature: the values outside the reference (out of range / out of domain) and the
        non-missing values they are counted among, read from every window in a few calls."""
        n_windows = len(windows)
        outside: list[IntArray] = []
        values: list[IntArray] = []
        if self.n_numeric:
            wins = list(chain.from_iterable(map(self.numeric_of, windows)))
            size, shape = len(wins), (n_windows, self.n_numeric)
            values.append(_ints(map(_count_of, wins), size).reshape(shape))
            below, above = _ints(map(_below_of, wins), size), _ints(map(_above_of, wins), size)
            outside.append((below + above).reshape(shape))
        if self.n_categorical:
            wins = list(chain.from_iterable(map(self.categorical_of, windows)))
            unseen = _ints(map(_unseen_of, wins), len(wins))
            arrays = list(map(_counts_of, wins))
            sizes = list(map(len, arrays))
            if min(sizes) > 0:  # CategoricalWindow.count: the sums of all the windows' counts in one call
                seen = np.add.reduceat(np.concatenate(arrays), list(accumulate(sizes[:-1], initial=0)))
            else:  # reduceat cannot sum an empty run
                seen = np.array([a.sum() for a in arrays], dtype=np.int64)
            values.append((seen + unseen).reshape(n_windows, self.n_categorical))
            outside.append(unseen.reshape(n_windows, self.n_categorical))
        if not values:
            empty = np.zeros((n_windows, 0), dtype=np.int64)
            return empty, empty
        both = np.concatenate(outside + values, axis=1)
        if self.order is not None:
            both = both[:, self.order]
        n_features = len(self.names)
        return both[:, :n_features], both[:, n_features:]


class _LazyWindows(Sequence[tuple[Any, ...]]):
    """Each sketch's windows in profile order, built on first read (``_Batch.feature`` reads them)."""

    __slots__ = ("_built", "_plan", "_sketches")

    def __init__(self, plan: _Plan, sketches: Sequence[WindowSketch]) -> None:
        self._plan, self._sketches = plan, sketches
        self._built: dict[int, tuple[Any, ...]] = {}

    def __len__(self) -> int:
        return len(self._sketches)

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        raise TypeError("read one window at a time: iterating would build every window")

    def __getitem__(self, w: Any) -> Any:
        if not isinstance(w, int):
            raise TypeError("one window at a time")
        got = self._built.get(w)
        if got is None:
            got = self._built[w] = self._plan.windows(self._sketches[w].features)
        return got


# Profiles are immutable, so their plans are built once and live as long as the profile does (drift keeps
# its stacks the same way); the profile itself is untouched.
_PLANS: weakref.WeakKeyDictionary[ReferenceProfile, _Plan] = weakref.WeakKeyDictionary()


def _plan(profile: ReferenceProfile) -> _Plan:
    plan = _PLANS.get(profile)
    if plan is None:
        plan = _PLANS[profile] = _Plan.build(profile)
    return plan


class _Batch:
    """The windows of one ``evaluate_quality_many`` call: every check's status, decided on arrays of all
    windows and features at once, and what each window's ``FeatureQuality`` objects are built from when
    first read (``_Features``).

    A check alerts only when its test is significant AND it passes its floor, and the floors need no test:
    the tests run at once only for the windows with a check past its floor (all of that window's tests, so
    its family is whole). Any other window cannot alert, and its tests run when its features are first
    read. Either way a window's tests are those the per-feature loop ran for it, with the same results.
    """

    __slots__ = (
        "_codes", "adjusted", "alert_a", "alert_b", "alert_c", "config", "done", "errors", "missing",
        "outside", "p_values", "plan", "row_counts", "rows", "tested_a", "tested_b", "values", "window_ok",
        "windows",
    )  # fmt: skip

    def __init__(
        self,
        plan: _Plan,
        config: QualityConfig,
        windows: Sequence[tuple[Any, ...]],
        row_list: list[Any],
        errors: list[dict[str, int]],
        counts: tuple[IntArray, IntArray, IntArray] | None = None,
    ) -> None:
        """``counts``: the (window, feature) missing, outside and values counts when the caller read them from
        packed sketches; otherwise they are read from ``windows``."""
        self.plan, self.config, self.windows, self.rows, self.errors = plan, config, windows, row_list, errors
        n_windows, n_features = len(windows), len(plan.names)
        rows = self.row_counts = np.array(row_list, dtype=np.int64)
        if counts is None:
            flat = list(chain.from_iterable(windows))
            missing = _ints(map(_missing_of, flat), len(flat)).reshape(n_windows, n_features)
            outside, values = plan.range_counts(list(windows))
        else:
            missing, outside, values = counts
        type_errors = None
        if any(errors):
            type_errors = np.zeros((n_windows, n_features), dtype=np.int64)
            for w, found in enumerate(errors):
                for name, count in found.items():
                    type_errors[w, plan.index[name]] = count
            if config.type_errors_counted_as_missing:
                missing = missing - type_errors
        self.missing = missing
        self.outside, self.values = outside, values

        # (window, feature) masks: tested (in the family), past the floor, alerting; None for none at all
        self.window_ok = window_ok = (rows >= config.min_window_rows)[:, None]
        self.tested_a = tested_a = window_ok & (plan.ref_rows >= config.min_reference_rows)
        self.tested_b = tested_b = (
            window_ok & (values >= 1) & (plan.range_known & (plan.n >= config.min_reference_rows))
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            floor_a = tested_a & (missing / rows[:, None] - plan.expected_missing >= config.missing_floor)
            floor_b = tested_b & (outside / values >= config.range_floor)
            self.alert_c = None if type_errors is None else (
                window_ok & (type_errors / rows[:, None] >= config.type_error_floor)
            )  # fmt: skip
        self.p_values: FloatArray | None = None  # (window, feature, test): missing, range; NaN: not tested
        self.adjusted: FloatArray | None = None
        self.done = np.zeros(n_windows, dtype=bool)  # windows whose tests have run
        self._codes: npt.NDArray[np.int8] | None = None
        self.alert_a: BoolArray | None = None
        self.alert_b: BoolArray | None = None
        may_alert = (floor_a | floor_b).any(axis=1)
        if may_alert.any():
            self.test(np.flatnonzero(may_alert))
            assert self.adjusted is not None
            self.alert_a = floor_a & (self.adjusted[:, :, 0] < config.alpha)
            self.alert_b = floor_b & (self.adjusted[:, :, 1] < config.alpha)

    def alerting(self) -> list[list[int]]:
        """Per window, the features with an alerting check."""
        alert = None
        for mask in (self.alert_a, self.alert_b, self.alert_c):
            if mask is not None:
                alert = mask if alert is None else alert | mask
        if alert is None or not alert.any():
            return [[] for _ in range(len(self.windows))]
        return [np.flatnonzero(row).tolist() for row in alert]

    def codes(self) -> npt.NDArray[np.int8]:
        """Status codes (window, feature, check) of missing_rate, the range check, type_errors."""
        if self._codes is None:
            codes = np.empty((len(self.windows), len(self.plan.names), 3), dtype=np.int8)
            for i, (tested, alert) in enumerate(
                ((self.tested_a, self.alert_a), (self.tested_b, self.alert_b), (self.window_ok, self.alert_c))
            ):
                codes[:, :, i] = np.where(tested, 0 if alert is None else alert, _CODE_INSUFFICIENT)
            self._codes = codes
        return self._codes

    def test(self, at: npt.NDArray[np.intp]) -> None:
        """Run the tests of windows ``at``: each kind in one call for all of them, then each window's family
        corrected on its own, as the per-feature loop ran them for each window alone."""
        plan, config = self.plan, self.config
        if self.p_values is None or self.adjusted is None:
            self.p_values = np.full((len(self.windows), len(plan.names), 2), np.nan)
            self.adjusted = self.p_values.copy()
        p_values, adjusted = self.p_values, self.adjusted
        tested_a, tested_b = self.tested_a[at], self.tested_b[at]
        i_a, f_a = np.nonzero(tested_a)  # i: which of the windows at
        w_a = at[i_a]
        p_a = p_values[w_a, f_a, 0] = _fisher(
            self.missing[w_a, f_a], self.row_counts[w_a], plan.ref_missing[f_a], plan.ref_rows[f_a]
        )
        i_b, f_b = np.nonzero(tested_b)
        w_b = at[i_b]
        p_b = p_values[w_b, f_b, 1] = _range(
            self.outside[w_b, f_b], self.values[w_b, f_b], plan.n[f_b], plan.k[f_b], i_b, at.size,
            config.range_test,
        )  # fmt: skip
        # one family per window, in the per-feature loop's order: each feature's missing_rate, then its range
        if config.correction == "bonferroni":  # as detectors.drift.correction.bonferroni: p times its size
            size = tested_a.sum(axis=1) + tested_b.sum(axis=1)
            adjusted[w_a, f_a, 0] = np.minimum(p_a * size[i_a], 1.0)
            adjusted[w_b, f_b, 1] = np.minimum(p_b * size[i_b], 1.0)
        else:
            for w in at.tolist():
                family = np.stack([self.tested_a[w], self.tested_b[w]], axis=1)  # (feature, test)
                if family.any():
                    adjusted[w][family] = adjust(p_values[w][family], config.correction)
        self.done[at] = True

    def state(self, w: int) -> _State:
        """Window ``w``'s status codes and p-values as Python values. Its tests run first if they have not,
        with those of every other window still waiting: one reader of features often reads all windows'."""
        if not self.done[w]:
            self.test(np.flatnonzero(~self.done))
        assert self.p_values is not None and self.adjusted is not None
        return self.codes()[w].tolist(), self.p_values[w].tolist(), self.adjusted[w].tolist()

    def feature(self, w: int, f: int, state: _State) -> FeatureQuality:
        """Feature ``f`` of window ``w``: the objects, fields and values the per-feature loop built (the
        numbers are taken from the window's own fields, as that loop took them)."""
        plan, config = self.plan, self.config
        name, fp, win = plan.names[f], plan.profiles[f], self.windows[w][f]
        rows = self.rows[w]
        te = self.errors[w].get(name, 0)
        excluded = te if config.type_errors_counted_as_missing else 0
        code_a, code_b, code_c = state[0][f]
        p_a: float | None
        p_b: float | None
        q_a: float | None
        q_b: float | None
        p_a, p_b = state[1][f]
        q_a, q_b = state[2][f]
        range_floor, range_test = config.range_floor, config.range_test

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
        if code_a == _CODE_INSUFFICIENT:
            p_a = q_a = None
        else:
            assert value is not None and expected is not None
            extra["increase"] = value - expected
            extra["absent"] = missing == rows
        a = _new_check(MISSING_RATE, name, _STATUSES[code_a], value, expected, missing, rows, "fisher", p_a,
                       q_a, config.missing_floor, extra)  # fmt: skip

        # out_of_range / out_of_domain
        if code_b == _CODE_INSUFFICIENT:
            p_b = q_b = None
        if isinstance(fp, NumericProfile):
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
            b = _new_check(OUT_OF_RANGE, name, _STATUSES[code_b], count / m if m else None,
                           2.0 / (fp.n + 1.0), count, m, range_test, p_b, q_b, range_floor,
                           extra)  # fmt: skip
        else:
            kind = CATEGORICAL
            count, m = win.unseen_count, win.count
            extra = {
                "unseen_categories": _top_unseen(win.unseen),
                "unseen_untracked": win.unseen_untracked,
                "reference_singletons": plan.singletons[f],
            }
            if fp.truncated:
                extra["reason"] = _TRUNCATED
                b = _new_check(OUT_OF_DOMAIN, name, _INSUFFICIENT, None, None, None, m, None, None, None,
                               range_floor, extra)  # fmt: skip
            else:
                b = _new_check(OUT_OF_DOMAIN, name, _STATUSES[code_b], count / m if m else None,
                               plan.ks[f] / (fp.n + 1.0), count, m, range_test, p_b, q_b, range_floor,
                               extra)  # fmt: skip

        # type_errors
        c = _new_check(TYPE_ERRORS, name, _STATUSES[code_c], te / rows if rows else None, 0.0, te, rows, None,
                       None, None, config.type_error_floor, {})  # fmt: skip

        sa, sb, sc = a.status, b.status, c.status
        if sa is _ALERT or sb is _ALERT or sc is _ALERT:
            status = _ALERT
        elif sa is _INSUFFICIENT and sb is _INSUFFICIENT and sc is _INSUFFICIENT:
            status = _INSUFFICIENT
        else:
            status = _OK
        return _new_feature_quality(name, kind, status, {a.check: a, b.check: b, c.check: c})


class _Features(Mapping[str, FeatureQuality]):
    """``QualityResult.features`` of one window, built feature by feature when first read.

    The worker reads a window's verdict and problems, and its features only when it alerts: most windows
    never need their ~3 checks per feature. Reads as the dict it stands for (profile order, ``==``,
    ``repr``); a built feature is kept, so reading it again gives the same object, and pickles as that
    dict.
    """

    __slots__ = ("_all", "_at", "_batch", "_built", "_state")

    def __init__(self, batch: _Batch, at: int) -> None:
        self._batch = batch
        self._at = at
        self._built: dict[str, FeatureQuality] = {}  # in the order read
        self._all: dict[str, FeatureQuality] | None = None  # every feature, in profile order
        self._state: _State | None = None

    def __getitem__(self, name: str) -> FeatureQuality:
        fq = self._built.get(name)
        if fq is None:
            batch = self._batch
            f = batch.plan.index[name]  # KeyError, as the dict
            if self._state is None:
                self._state = batch.state(self._at)
            fq = self._built[name] = batch.feature(self._at, f, self._state)
        return fq

    def __iter__(self) -> Iterator[str]:
        return iter(self._batch.plan.names)

    def __len__(self) -> int:
        return len(self._batch.plan.names)

    def __contains__(self, name: object) -> bool:
        return name in self._batch.plan.index

    def _whole(self) -> dict[str, FeatureQuality]:
        """Every feature (built now if not yet), in profile order: the dict this mapping stands for. Kept,
        so not to be changed by the caller."""
        if self._all is None:
            self._all = {name: self[name] for name in self._batch.plan.names}
        return self._all

    # whole-mapping reads build every feature anyway: through the dict, without a call per key
    def items(self) -> ItemsView[str, FeatureQuality]:
        return self._whole().items()

    def values(self) -> ValuesView[FeatureQuality]:
        return self._whole().values()

    def __repr__(self) -> str:
        return repr(self._whole())

    def __reduce__(self) -> tuple[Any, ...]:
        return dict, (dict(self._whole()),)


def evaluate_quality(
    profile: ReferenceProfile,
    sketch: WindowSketch,
    type_errors: Mapping[str, int] | None = None,
    config: QualityConfig | None = None,
) -> QualityResult:
    """Every check of one closed window; ``type_errors`` maps a feature to its wrong-typed values (absent: 0)."""
    return evaluate_quality_many(profile, [sketch], [type_errors], config)[0]


def evaluate_quality_many(
    profile: ReferenceProfile,
    sketches: Sequence[WindowSketch],
    type_errors_list: Sequence[Mapping[str, int] | None] | None = None,
    config: QualityConfig | None = None,
) -> list[QualityResult]:
    """``evaluate_quality`` of each window (``type_errors_list``: one mapping or None per window; None for
    none in any), each result equal to that window's alone, bit for bit.

    A sliding window closes ~10 windows per batch of events, and judging them one by one was mostly Python
    per feature. Here the counts of all windows and features are read into arrays and decided together
    (``_Batch``); each kind of test runs in one call (both are elementwise; the beta-binomial sums each
    window's rows to that window's width, see ``stats.range_pvalues``) and each window's family is
    corrected on its own. Only a window's problems are built at once: its ``features`` when first read.
    """
    config = config if config is not None else QualityConfig()
    sketches = list(sketches)
    n_windows = len(sketches)
    errors_given = [None] * n_windows if type_errors_list is None else list(type_errors_list)
    if len(errors_given) != n_windows:
        raise InputError(f"type_errors_list has {len(errors_given)} entries for {n_windows} sketches")
    if not n_windows:
        return []
    plan = _plan(profile)
    fingerprint = profile.fingerprint
    errors: list[dict[str, int]] = []
    for sketch, type_errors in zip(sketches, errors_given, strict=True):
        if sketch.profile.fingerprint != fingerprint:
            raise ProfileMismatchError("the sketch was built for another reference profile")
        errors.append(_validated_type_errors(profile, sketch, type_errors, config) if type_errors else {})
    row_list = [sketch.n_rows for sketch in sketches]
    windows: Sequence[tuple[Any, ...]]
    if None not in plan.window_types and all(sketch.is_packed for sketch in sketches):
        # the counts straight from the packed arrays (the worker's windows): a window's per-feature windows
        # are built only if one of its features is read, as an alerting window's problems are
        stacked = StackedSketches.of(profile, sketches)
        windows = _LazyWindows(plan, sketches)
        batch = _Batch(plan, config, windows, row_list, errors, plan.stacked_counts(stacked))
    else:
        windows = [plan.windows(sketch.features) for sketch in sketches]
        batch = _Batch(plan, config, windows, row_list, errors)

    names = plan.names
    min_rows, new_columns_alert = config.min_window_rows, config.new_columns_alert
    unset = (None,) * 8  # value, expected, count, n, test, p_value, p_adjusted, floor
    out: list[QualityResult] = []
    for w, (sketch, alerting) in enumerate(zip(sketches, batch.alerting(), strict=True)):
        features = _Features(batch, w)
        problems: list[Check] = []
        for f in alerting:  # the alerting features' checks are the problems, in profile order
            problems.extend(c for c in features[names[f]].checks.values() if c.status is _ALERT)
        rows = sketch.n_rows
        ok = rows >= min_rows
        new_status = (_ALERT if new_columns_alert else _OK) if ok else _INSUFFICIENT
        new_columns: tuple[Check, ...] = ()
        warnings: tuple[Check, ...] = ()
        if sketch.unknown_features:
            new_columns = tuple(
                _new_check(NEW_COLUMN, name, new_status, *unset, {"reason": _NEW_COLUMN_EXTRA})
                for name in sorted(sketch.unknown_features)
            )
            if ok:
                if new_status is _ALERT:
                    problems.extend(new_columns)
                else:
                    warnings = new_columns
        if problems:
            status = _ALERT
        # every feature is insufficient data exactly when the window is too small (its type_errors check
        # is tested whenever the window is large enough), or when there is no feature
        elif not ok or not names:
            status = _INSUFFICIENT
        else:
            status = _OK
        out.append(_new_result(DETECTOR_NAME, status, rows, features, new_columns, tuple(problems), warnings,
                               config.to_dict()))  # fmt: skip
    return out


def _fisher(
    x_window: IntArray, n_window: IntArray, x_reference: IntArray, n_reference: IntArray
) -> FloatArray:
    """``stats.fisher_pvalues`` of the rows, without handing it those whose answer is certain (its own test
    for them: margins valid, and no missing value in the window or none outside it in the reference)."""
    out = np.ones(x_window.size)
    certain = (
        (x_window >= 0) & (x_window <= n_window) & (x_reference >= 0) & (x_reference <= n_reference)
        & (n_window + n_reference > 0) & ((x_window == 0) | (x_reference == n_reference))
    )  # fmt: skip
    todo = np.flatnonzero(~certain)
    if todo.size:
        args = zip(*(x[todo].tolist() for x in (x_window, n_window, x_reference, n_reference)), strict=True)
        out[todo] = fisher_pvalues(list(args))
    return out


def _range(
    count: IntArray,
    n_window: IntArray,
    n_reference: IntArray,
    outside_reference: IntArray,
    window: npt.NDArray[np.intp],
    n_windows: int,
    test: str,
) -> FloatArray:
    """``stats.range_pvalues`` of the rows (``window``: the window of each, of ``n_windows``), without those
    whose answer is certain (its own test: a count of 0), and, for the beta-binomial, in one call per width:
    it sums each row to the largest ``k`` of the rows in its call, so the rows of windows of one width go
    together and each is summed as in its window's own call."""
    out = np.ones(count.size)
    binomial = test == "binomial"
    certain = (count == 0) & (n_window >= 0)
    if binomial:
        certain &= (n_reference >= 0) & (outside_reference >= 0) & (outside_reference <= n_reference + 1)
    todo = np.flatnonzero(~certain)
    if not todo.size:
        return out
    c, m, n, k = count[todo], n_window[todo], n_reference[todo], outside_reference[todo]
    args = list(zip(c.tolist(), m.tolist(), n.tolist(), k.tolist(), strict=True))
    if binomial or n_windows == 1:  # elementwise, or one window
        out[todo] = range_pvalues(args, test)
        return out
    summed = (c >= 1) & (c <= m)  # the rows betabinom_sf sums, over i < k
    width = np.zeros(n_windows, dtype=np.int64)
    np.maximum.at(width, window[todo][summed], k[summed])
    of_row = width[window[todo]].tolist()
    for value in sorted(set(of_row)):
        group = [i for i, x in enumerate(of_row) if x == value]
        out[todo[group]] = range_pvalues([args[i] for i in group], test)
    return out
