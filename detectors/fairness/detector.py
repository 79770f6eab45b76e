"""Fairness of one window over its sensitive attributes ("fairness.parity").

For each attribute (and each configured intersection) the window's ``FairnessCounts`` give every group's
selection rate, true and false positive rates, precision and accuracy, each with a Wilson interval, and for
each metric the fairlearn ``difference`` (max - min) and ``ratio`` (min / max) over the *eligible* groups.
Five gaps can alert: demographic parity difference and ratio, equal opportunity difference, equalized odds
difference and predictive parity difference.

``evaluate_fairness_many`` judges several windows at once (a sliding window closes ~10 per batch of events):
their numbers come from one pass of numpy arrays (``batch``), each window's result equals its own
``evaluate_fairness``, and a result builds its per-group objects only when they are read.

When a gap alerts
-----------------
A gap alerts only when its whole confidence interval lies beyond its threshold: the lower bound of a
difference above the threshold, the upper bound of a ratio below it. A point estimate over the threshold is
not enough: with every group's true selection rate at 0.5, a group of 30 differs from a large group by
>= 0.1 in about a third of windows (exactly 36%: ``2 * P(Binomial(30, 0.5) <= 12)``).

* Difference interval: Newcombe's hybrid score interval for the two extreme groups (``lowest``,
  ``highest``), built from their Wilson intervals.
* Ratio interval: the log-ratio (Katz) interval with 0.5 added to each count and total (statsmodels'
  ``log-adjusted``), for ``lowest / highest``.
* The extremes are chosen by looking at the data, so a gap's interval is built at a Bonferroni-adjusted
  confidence over the ``k (k - 1) / 2`` pairs of eligible groups (``pairwise_correction="bonferroni"``):
  then it covers every pair's gap at once, the chosen one included. With two groups nothing changes.
* Equalized odds is over the threshold when either the true or the false positive rate gap is, so its
  interval is ``[max of the two lower bounds, max of the two upper bounds]`` (1.0 when a rate cannot be
  tested) and it alerts when either component's interval clears the threshold.

Who counts
----------
A group is *eligible* for a metric when the count the metric is a proportion of (rows for the selection
rate, labelled positives for the true positive rate, labelled negatives for the false positive rate,
labelled positive predictions for precision, labelled rows for accuracy) reaches ``min_group_size``, and,
for label metrics, when at least ``min_label_coverage`` of the group's rows have a label (labels that
arrive for a small, selected share of a group say little about the rest). Groups below are reported with
their values and intervals and never alert. ``min_group_size = 100``: a Wilson interval at p = 0.5 is
+-0.10 wide at ~90 members (+-0.05 at ~380), so below 100 a single group's noise alone is as large as the
default 0.1 gap threshold.

Worst and best group: positive is the favourable outcome, so for the selection rate, true positive rate,
precision and accuracy the lower value is the worse one; for the false positive rate (an error rate) the
higher value is.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from functools import cached_property
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import numpy.typing as npt

from detectors.base import AlertStatus, ConfigError, InputError, fast_constructor, finite_number, json_safe
from detectors.fairness.batch import SegmentArrays
from detectors.fairness.counts import (
    INTERSECTION_SEPARATOR,
    N_LABELLED,
    FairnessCounts,
    N,
    intersection_name,
)
from detectors.fairness.parity import (
    FALSE_POSITIVE_RATE,
    METRICS,
    PRECISION,
    SELECTION_RATE,
    TRUE_POSITIVE_RATE,
)

DETECTOR_NAME = "fairness.parity"
PAIRWISE_CORRECTIONS: tuple[str, ...] = ("bonferroni", "none")
HIGHER_IS_WORSE: frozenset[str] = frozenset({FALSE_POSITIVE_RATE})

Interval = tuple[float, float]
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


FairnessStatus = AlertStatus  # the shared verdict of alerting detectors (detectors.base)


@dataclass(frozen=True)
class GapSpec:
    name: str
    metrics: tuple[str, ...]  # equalized odds is the worse of two metrics' differences
    kind: str  # "difference" alerts above its threshold, "ratio" below
    threshold_field: str


GAPS: tuple[GapSpec, ...] = (
    GapSpec("demographic_parity_difference", (SELECTION_RATE,), "difference", "dp_difference_threshold"),
    GapSpec("demographic_parity_ratio", (SELECTION_RATE,), "ratio", "dp_ratio_threshold"),
    GapSpec("equal_opportunity_difference", (TRUE_POSITIVE_RATE,), "difference", "eo_difference_threshold"),
    GapSpec(
        "equalized_odds_difference",
        (TRUE_POSITIVE_RATE, FALSE_POSITIVE_RATE),
        "difference",
        "eodds_difference_threshold",
    ),
    GapSpec("predictive_parity_difference", (PRECISION,), "difference", "predictive_parity_threshold"),
)


def _plain(value: Any) -> Any:
    """``json_safe(value)``, without its chain of ``isinstance`` checks for the common exact types."""
    if value is None:
        return None
    kind = type(value)
    if kind is float:
        return value if math.isfinite(value) else None
    if kind is str or kind is int or kind is bool:
        return value
    return json_safe(value)


def _plain_pair(value: Any) -> Any:
    """``json_safe`` of an interval: None, or a tuple of two numbers as a list."""
    if value is None:
        return None
    if type(value) is tuple and len(value) == 2:
        low, high = value
        if type(low) is float and type(high) is float:
            return [low if math.isfinite(low) else None, high if math.isfinite(high) else None]
        return [_plain(low), _plain(high)]
    return json_safe(value)


def _plain_names(names: Any) -> Any:
    """``json_safe`` of a tuple of group names: a list."""
    if type(names) is tuple:
        return [g if type(g) is str else _plain(g) for g in names]
    return json_safe(names)


def _plain_deep(value: Any) -> Any:
    """``json_safe(value)`` through dicts, lists and tuples, with ``_plain``'s shortcuts at the leaves."""
    kind = type(value)
    if kind is dict:
        return {k if type(k) is str else str(k): _plain_deep(v) for k, v in value.items()}
    if kind is list or kind is tuple:
        return [_plain_deep(v) for v in value]
    return _plain(value)


@dataclass(frozen=True)
class FairnessConfig:
    """What to watch and when to alert; validated at construction (``ConfigError`` names the field).

    Lists are accepted for ``attributes`` and ``intersections`` (as JSON gives them) and kept as tuples.
    The defaults and their reasons are in ``docs/fairness.md``.
    """

    attributes: tuple[str, ...]
    intersections: tuple[tuple[str, str], ...] = ()
    min_group_size: int = 100
    confidence: float = 0.95
    dp_difference_threshold: float = 0.1
    dp_ratio_threshold: float = 0.8  # the four-fifths rule
    eo_difference_threshold: float = 0.1
    eodds_difference_threshold: float = 0.1
    predictive_parity_threshold: float = 0.1
    min_label_coverage: float = 0.5
    pairwise_correction: str = "bonferroni"

    def __post_init__(self) -> None:
        if isinstance(self.attributes, str):
            raise ConfigError(f"attributes must be a sequence of names, got the string {self.attributes!r}")
        attributes = tuple(self.attributes)
        object.__setattr__(self, "attributes", attributes)
        if not attributes:
            raise ConfigError("attributes must name at least one sensitive attribute")
        for a in attributes:
            if not isinstance(a, str) or not a or INTERSECTION_SEPARATOR in a:
                raise ConfigError(
                    f"attributes: {a!r} must be a non-empty string without {INTERSECTION_SEPARATOR!r}"
                )
        if len(set(attributes)) != len(attributes):
            raise ConfigError(f"attributes must be distinct, got {attributes!r}")
        try:
            pairs = tuple((a, b) for a, b in self.intersections)
        except (TypeError, ValueError):
            raise ConfigError(
                f"intersections must be pairs of attributes, got {self.intersections!r}"
            ) from None
        object.__setattr__(self, "intersections", pairs)
        seen: set[frozenset[str]] = set()
        for a, b in pairs:
            if a not in attributes or b not in attributes or a == b:
                raise ConfigError(f"intersections: {(a, b)!r} must pair two distinct declared attributes")
            if frozenset((a, b)) in seen:
                raise ConfigError(f"intersections: {(a, b)!r} is declared twice")
            seen.add(frozenset((a, b)))
        if (
            not isinstance(self.min_group_size, int)
            or isinstance(self.min_group_size, bool)
            or self.min_group_size < 1
        ):
            raise ConfigError(f"min_group_size must be an integer >= 1, got {self.min_group_size!r}")
        if not 0.0 < finite_number("confidence", self.confidence) < 1.0:
            raise ConfigError(f"confidence must be in (0, 1), got {self.confidence!r}")
        for spec in GAPS:
            value = finite_number(spec.threshold_field, getattr(self, spec.threshold_field))
            ok = 0.0 < value <= 1.0 if spec.kind == "ratio" else 0.0 <= value < 1.0
            if not ok:
                bounds = "(0, 1]" if spec.kind == "ratio" else "[0, 1)"
                raise ConfigError(f"{spec.threshold_field} must be in {bounds}, got {value!r}")
        if not 0.0 <= finite_number("min_label_coverage", self.min_label_coverage) <= 1.0:
            raise ConfigError(f"min_label_coverage must be in [0, 1], got {self.min_label_coverage!r}")
        if self.pairwise_correction not in PAIRWISE_CORRECTIONS:
            raise ConfigError(
                f"pairwise_correction must be one of {PAIRWISE_CORRECTIONS}, got {self.pairwise_correction!r}"
            )

    @property
    def names(self) -> tuple[str, ...]:
        """The attributes, then the intersections as ``"a&b"``: what gets evaluated."""
        return self.attributes + tuple(intersection_name(a, b) for a, b in self.intersections)

    def empty_counts(self) -> FairnessCounts:
        return FairnessCounts.empty(self.attributes, self.intersections)

    def to_dict(self) -> dict[str, Any]:
        # json_safe(asdict(self)), field by field: asdict deep-copies every value first, which cost more
        # than all the rest of a window's JSON
        return {name: _plain_deep(getattr(self, name)) for name in _CONFIG_FIELDS}


_CONFIG_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(FairnessConfig))


@dataclass(frozen=True)
class GroupMetric:
    """One metric of one group: ``value = successes / n`` (fairlearn's value) and its Wilson interval."""

    value: float | None
    successes: int
    n: int
    interval: Interval | None
    eligible: bool

    def to_dict(self) -> dict[str, Any]:
        # json_safe(asdict(self)), built directly; the common exact types inline (a window has dozens)
        value, successes, n, interval, eligible = (
            self.value,
            self.successes,
            self.n,
            self.interval,
            self.eligible,
        )
        return {
            "value": (value if math.isfinite(value) else None) if type(value) is float else _plain(value),
            "successes": successes if type(successes) is int else _plain(successes),
            "n": n if type(n) is int else _plain(n),
            "interval": _plain_pair(interval),
            "eligible": eligible if type(eligible) is bool else _plain(eligible),
        }


@dataclass(frozen=True)
class Disparity:
    """One metric over the groups of an attribute.

    ``difference`` and ``ratio`` are over the eligible groups (None with fewer than two), their intervals
    at ``pair_confidence``; ``difference_all_groups`` and ``ratio_all_groups`` are fairlearn's, over every
    group that has a value, eligible or not.
    """

    metric: str
    overall: float | None
    by_group: Mapping[str, GroupMetric]
    eligible: tuple[str, ...]
    lowest: str | None
    highest: str | None
    difference: float | None
    difference_interval: Interval | None
    ratio: float | None
    ratio_interval: Interval | None
    pair_confidence: float | None
    difference_all_groups: float | None
    ratio_all_groups: float | None

    @property
    def testable(self) -> bool:
        return len(self.eligible) >= 2

    def worst_best(self) -> tuple[str | None, str | None]:
        if self.metric in HIGHER_IS_WORSE:
            return self.highest, self.lowest
        return self.lowest, self.highest


@dataclass(frozen=True)
class Gap:
    """One named fairness gap of one attribute against its threshold."""

    name: str
    metric: str  # the metric the gap is taken on; for equalized odds, the deciding rate
    kind: str
    value: float | None
    interval: Interval | None
    threshold: float
    status: FairnessStatus
    worst: str | None
    best: str | None

    def to_dict(self) -> dict[str, Any]:
        return {  # json_safe(asdict(self)), built directly, with the status as a plain str
            "name": _plain(self.name),
            "metric": _plain(self.metric),
            "kind": _plain(self.kind),
            "value": _plain(self.value),
            "interval": _plain_pair(self.interval),
            "threshold": _plain(self.threshold),
            "status": self.status.value,
            "worst": _plain(self.worst),
            "best": _plain(self.best),
        }


@dataclass(frozen=True)
class FairnessAlert:
    attribute: str
    metric: str  # the gap's name, e.g. "demographic_parity_difference"
    based_on: str  # the group metric, e.g. "selection_rate"
    worst: str
    best: str
    value: float | None
    interval: Interval
    threshold: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "attribute": self.attribute,
            "metric": self.metric,
            "based_on": self.based_on,
            "groups": {"worst": self.worst, "best": self.best},
            "value": _plain(self.value),
            "interval": _plain_pair(self.interval),
            "threshold": _plain(self.threshold),
        }


@dataclass(frozen=True)
class AttributeFairness:
    attribute: str
    status: FairnessStatus
    groups: tuple[str, ...]
    group_n: Mapping[str, int]
    group_labelled: Mapping[str, int]
    eligible: tuple[str, ...]  # groups with at least min_group_size rows
    metrics: Mapping[str, Disparity]
    gaps: Mapping[str, Gap]

    @property
    def n(self) -> int:
        return sum(self.group_n.values())

    @property
    def n_labelled(self) -> int:
        return sum(self.group_labelled.values())

    @property
    def label_coverage(self) -> float | None:
        return self.n_labelled / self.n if self.n else None

    def to_dict(self) -> dict[str, Any]:
        metrics = self.metrics
        eligible = set(self.eligible)
        by_group: dict[str, Any] = {}
        for g in self.groups:
            n, labelled = self.group_n[g], self.group_labelled[g]
            entry: dict[str, Any] = {
                "n": n,
                "n_labelled": labelled,
                "label_coverage": labelled / n if n else None,
                "eligible": g in eligible,
            }
            for name, d in metrics.items():
                entry[name] = d.by_group[g].to_dict()
            by_group[g] = entry

        difference: dict[str, Any] = {}
        ratio: dict[str, Any] = {}
        for name, d in metrics.items():  # json_safe of each {value, interval, ...}, built directly
            lowest, highest = _plain(d.lowest), _plain(d.highest)
            pair_confidence = _plain(d.pair_confidence)
            eligible_groups = _plain_names(d.eligible)
            difference[name] = {
                "value": _plain(d.difference),
                "interval": _plain_pair(d.difference_interval),
                "lowest": lowest,
                "highest": highest,
                "eligible": eligible_groups,
                "pair_confidence": pair_confidence,
                "all_groups": _plain(d.difference_all_groups),
            }
            ratio[name] = {
                "value": _plain(d.ratio),
                "interval": _plain_pair(d.ratio_interval),
                "lowest": lowest,
                "highest": highest,
                "eligible": list(eligible_groups),  # a list of its own
                "pair_confidence": pair_confidence,
                "all_groups": _plain(d.ratio_all_groups),
            }
        return {
            "attribute": self.attribute,
            "status": self.status.value,
            "n": self.n,
            "n_labelled": self.n_labelled,
            "label_coverage": _plain(self.label_coverage),
            "eligible": list(self.eligible),
            "overall": {name: _plain(d.overall) for name, d in metrics.items()},
            "by_group": by_group,
            "difference": difference,
            "ratio": ratio,
            "gaps": {name: gap.to_dict() for name, gap in self.gaps.items()},
        }


@dataclass(frozen=True)
class FairnessResult:
    """One window's verdict.

    A result of ``evaluate_fairness_many`` (and so of ``evaluate_fairness``) builds ``attributes`` and
    ``config`` on first access, from its batch's arrays: the stream reads ``status``, ``alerts`` and
    ``differences()`` of every window and the rest only of an alerting one, and building the per-group
    objects was most of a window's cost. Once built, the result is what the constructor makes of the same
    values (same ``__dict__``); ``differences()`` of an unbuilt result reads the arrays directly.
    """

    detector: str
    status: FairnessStatus
    attributes: Mapping[str, AttributeFairness]
    alerts: tuple[FairnessAlert, ...]
    n_window: int
    config: Mapping[str, Any]

    if not TYPE_CHECKING:  # hidden from mypy, which would take every misspelt attribute for a lazy one

        def __getattr__(self, name: str) -> Any:
            # only reached for a name missing from __dict__: on an unbuilt result, a field built lazily
            lazy = self.__dict__.get("_lazy")
            if lazy is None or name not in _LAZY_FIELDS:
                raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
            _build(self, *lazy)
            return self.__dict__[name]

    def __getstate__(self) -> dict[str, Any]:
        # pickled and copied as the built result, without its batch's arrays
        return {name: getattr(self, name) for name in _RESULT_FIELDS}

    def differences(self) -> dict[str, dict[str, float | None]]:
        """Per attribute, each metric's difference between its groups: ``to_dict()``'s
        ``attributes.<attribute>.difference.<metric>.value``, without building the rest of it (the stream keeps
        these in every window row)."""
        lazy = self.__dict__.get("_lazy")
        if lazy is not None:
            batch, window = lazy
            out: dict[str, dict[str, float | None]] = batch.differences(window)
            return out
        return {
            name: {metric: _plain(d.difference) for metric, d in a.metrics.items()}
            for name, a in self.attributes.items()
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "detector": self.detector,
            "status": self.status.value,
            "n_window": int(self.n_window),
            "attributes": {name: a.to_dict() for name, a in self.attributes.items()},
            "alerts": [a.to_dict() for a in self.alerts],
            "config": _plain_deep(self.config),
        }


_RESULT_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(FairnessResult))
_LAZY_FIELDS: frozenset[str] = frozenset({"attributes", "config"})


def _build(result: FairnessResult, batch: _Batch, window: int) -> None:
    """Fill an unbuilt result's lazy fields and drop its batch: then its ``__dict__`` is the constructor's."""
    state = result.__dict__
    built = {"attributes": batch.attributes(window), "config": batch.config.to_dict()}
    values = {name: state[name] if name in state else built[name] for name in _RESULT_FIELDS}
    state.clear()
    state.update(values)


# a window has some fifty group metrics, disparities and gaps: built field by field (~13 % of the work)
_new_group_metric = fast_constructor(GroupMetric)
_new_disparity = fast_constructor(Disparity)
_new_gap = fast_constructor(Gap)

_METRIC_INDEX: dict[str, int] = {m: i for i, m in enumerate(METRICS)}
_K = len(METRICS)
# verdicts as small ints in the arrays
_OK, _ALERT, _INSUFFICIENT = 0, 1, 2
_STATUS_OF: tuple[FairnessStatus, ...] = (
    FairnessStatus.OK,
    FairnessStatus.ALERT,
    FairnessStatus.INSUFFICIENT_DATA,
)
_RATIO_GAPS: list[int] = [j for j, spec in enumerate(GAPS) if spec.kind == "ratio"]
_DIFFERENCE_GAPS: list[int] = [j for j, spec in enumerate(GAPS) if spec.kind == "difference"]
# the difference gaps' metrics, gap after gap: each part's gap and metric, and where each gap's parts start
_PARTS: list[tuple[int, int]] = [(j, _METRIC_INDEX[m]) for j in _DIFFERENCE_GAPS for m in GAPS[j].metrics]
_PART_GAP: IntArray = np.array([j for j, _ in _PARTS])
_PART_METRIC: IntArray = np.array([m for _, m in _PARTS])
_PART_STARTS: IntArray = np.flatnonzero(np.diff(_PART_GAP, prepend=-1))


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _bounds(low: float, high: float) -> Interval | None:
    return (low, high) if math.isfinite(low) and math.isfinite(high) else None


def _ratio(low: float, high: float) -> float | None:
    """``min / max`` as fairlearn gives it: undefined (None) for 0 / 0."""
    return float(low / high) if high != 0.0 else None


def _no_groups(metric: str, overall: float | None) -> Disparity:
    return _new_disparity(metric, overall, {}, (), None, None, None, None, None, None, None, None, None)


def _code(alert: BoolArray, decided: BoolArray) -> IntArray:
    """Verdicts as ``_STATUS_OF`` indices: an alert, else ok when decided, else insufficient data."""
    code: IntArray = np.where(alert, _ALERT, np.where(decided, _OK, _INSUFFICIENT))
    return code


def _any(flags: BoolArray) -> BoolArray:
    """Per row: is any flag set?"""
    out: BoolArray = np.logical_or.reduce(flags, axis=1)
    return out


def _verdicts(a: SegmentArrays, thresholds: FloatArray) -> tuple[BoolArray, BoolArray]:
    """Per segment and gap (in the order of ``GAPS``): does it alert, and is it decided (tested in full)?

    A ratio gap alerts when its interval's upper bound is below the threshold. A difference gap alerts when
    the largest lower bound of its metrics' difference intervals is above the threshold, which is when any
    of them is (equalized odds: either rate); it is decided when every metric has an interval.
    """
    alert = np.empty((a.testable.shape[0], len(GAPS)), dtype=bool)
    decided = np.empty(alert.shape, dtype=bool)
    has_interval = a.testable & np.isfinite(a.difference_low) & np.isfinite(a.difference_high)
    tested = has_interval[:, _PART_METRIC]
    clears = tested & (a.difference_low[:, _PART_METRIC] > thresholds[_PART_GAP])
    alert[:, _DIFFERENCE_GAPS] = np.logical_or.reduceat(clears, _PART_STARTS, axis=1)
    decided[:, _DIFFERENCE_GAPS] = np.logical_and.reduceat(tested, _PART_STARTS, axis=1)
    for j in _RATIO_GAPS:
        m = _METRIC_INDEX[GAPS[j].metrics[0]]
        testable, upper = a.testable[:, m], a.ratio_high[:, m]
        alert[:, j] = testable & np.isfinite(a.ratio_low[:, m]) & np.isfinite(upper) & (upper < thresholds[j])
        decided[:, j] = testable
    return alert, decided


class _Lists(NamedTuple):
    """The per-metric arrays and verdicts of a batch as Python lists, ``[segment][metric or gap]``."""

    testable: list[list[bool]]
    has_interval: list[list[bool]]
    lowest: list[list[int]]
    highest: list[list[int]]
    value_lowest: list[list[float]]
    value_highest: list[list[float]]
    difference: list[list[float]]
    difference_low: list[list[float]]
    difference_high: list[list[float]]
    ratio_low: list[list[float]]
    ratio_high: list[list[float]]
    pair_confidence: list[list[float]]
    gap_code: list[list[int]]
    attribute_code: list[int]


class _Batch:
    """The arrays of one ``evaluate_fairness_many`` call, shared by its results until they are built.
    Segment ``s`` is name ``s % len(names)`` of window ``s // len(names)``."""

    def __init__(
        self, counts_list: Sequence[FairnessCounts], config: FairnessConfig, names: tuple[str, ...]
    ) -> None:
        self.config = config
        self.names = names
        tables = [counts.tables[name] for counts in counts_list for name in names]
        self.arrays = a = SegmentArrays(
            tables,
            min_group_size=config.min_group_size,
            min_label_coverage=float(config.min_label_coverage),
            confidence=float(config.confidence),
            bonferroni=config.pairwise_correction == "bonferroni",
        )
        self.thresholds = [float(getattr(config, spec.threshold_field)) for spec in GAPS]
        alert, decided = _verdicts(a, np.array(self.thresholds))
        self.gap_code = _code(alert, decided)
        # an attribute (a window) alerts when any of its gaps (attributes) does, and has insufficient data
        # when all of them have
        alert, decided = _any(alert), _any(decided)
        self.attribute_code = _code(alert, decided)
        per_window = (-1, len(names))
        window_code = _code(_any(alert.reshape(per_window)), _any(decided.reshape(per_window)))
        self.window_code: list[int] = window_code.tolist()
        self.alerting: list[list[int]] = np.argwhere(self.gap_code == _ALERT).tolist()  # by segment, then gap

    @cached_property
    def lists(self) -> _Lists:
        a = self.arrays
        has_interval = a.testable & np.isfinite(a.difference_low) & np.isfinite(a.difference_high)
        return _Lists(
            a.testable.tolist(), has_interval.tolist(), a.ends[0].tolist(), a.ends[1].tolist(),
            a.ends_value[0].tolist(), a.ends_value[1].tolist(), a.difference.tolist(),
            a.difference_low.tolist(), a.difference_high.tolist(), a.ratio_low.tolist(), a.ratio_high.tolist(),
            a.pair_confidence.tolist(), self.gap_code.tolist(), self.attribute_code.tolist(),
        )  # fmt: skip

    @cached_property
    def _differences(self) -> list[list[float | None]]:
        testable: list[list[bool]] = self.arrays.testable.tolist()
        difference: list[list[float]] = self.arrays.difference.tolist()
        return [[d if t else None for d, t in zip(ds, ts)] for ds, ts in zip(difference, testable)]

    def result(self, window: int, counts: FairnessCounts, alerting: list[tuple[int, int]]) -> FairnessResult:
        result = object.__new__(FairnessResult)
        result.__dict__.update(
            detector=DETECTOR_NAME,
            status=_STATUS_OF[self.window_code[window]],
            alerts=tuple(self.alert(s, j) for s, j in alerting),
            n_window=counts.n_rows,
            _lazy=(self, window),
        )
        return result

    def alert(self, s: int, j: int) -> FairnessAlert:
        gap = self.gap(s, j)
        return FairnessAlert(
            attribute=self.names[s % len(self.names)],
            metric=gap.name,
            based_on=gap.metric,
            worst=gap.worst or "",
            best=gap.best or "",
            value=gap.value,
            interval=gap.interval or (math.nan, math.nan),
            threshold=gap.threshold,
        )

    def differences(self, window: int) -> dict[str, dict[str, float | None]]:
        rows, s0 = self._differences, window * len(self.names)
        return {name: dict(zip(METRICS, rows[s])) for s, name in enumerate(self.names, s0)}

    def _worst_best(self, s: int, m: int) -> tuple[str, str]:
        groups = self.arrays.tables[s].groups
        lowest, highest = groups[self.lists.lowest[s][m]], groups[self.lists.highest[s][m]]
        return (highest, lowest) if METRICS[m] in HIGHER_IS_WORSE else (lowest, highest)

    def gap(self, s: int, j: int) -> Gap:
        """Gap ``j`` of segment ``s``: the verdict from the arrays, the numbers picked as the docstring says."""
        lists, spec, threshold = self.lists, GAPS[j], self.thresholds[j]
        status = _STATUS_OF[lists.gap_code[s][j]]
        if spec.kind == "ratio":
            m = _METRIC_INDEX[spec.metrics[0]]
            if not lists.testable[s][m]:
                return _new_gap(spec.name, METRICS[m], spec.kind, None, None, threshold, status, None, None)
            value = _ratio(lists.value_lowest[s][m], lists.value_highest[s][m])
            interval = _bounds(lists.ratio_low[s][m], lists.ratio_high[s][m])
            worst, best = self._worst_best(s, m)
            return _new_gap(spec.name, METRICS[m], spec.kind, value, interval, threshold, status, worst, best)
        parts = [_METRIC_INDEX[metric] for metric in spec.metrics]
        tested = [m for m in parts if lists.has_interval[s][m]]
        if not tested:
            return _new_gap(spec.name, spec.metrics[0], spec.kind, None, None, threshold, status, None, None)
        lows, highs, differences = lists.difference_low[s], lists.difference_high[s], lists.difference[s]
        # the largest lower and upper bounds and the largest gap, each the first of equals (as max() keeps)
        by_low = by_value = tested[0]
        low, high, value = lows[by_low], highs[by_low], differences[by_low] or 0.0
        for m in tested[1:]:
            if lows[m] > low:
                low, by_low = lows[m], m
            high = max(high, highs[m])
            if (differences[m] or 0.0) > value:
                value, by_value = differences[m] or 0.0, m
        if len(tested) < len(parts):
            high = 1.0  # a difference of two rates is at most 1: the bound when one cannot be tested
        # the deciding rate: the one whose interval clears the threshold by most, else the larger gap
        worst, best = self._worst_best(s, by_low if status is FairnessStatus.ALERT else by_value)
        metric = METRICS[by_low if status is FairnessStatus.ALERT else by_value]
        return _new_gap(spec.name, metric, spec.kind, value, (low, high), threshold, status, worst, best)

    def attributes(self, window: int) -> dict[str, AttributeFairness]:
        """The window's per-attribute objects, from the arrays sliced to the window, then made lists."""
        a, lists, names = self.arrays, self.lists, self.names
        s0 = window * len(names)
        mine = slice(s0, s0 + len(names))
        w_low, w_high = a.group_intervals
        successes, trials = a.successes_trials[:, :, :_K], a.successes_trials[:, :, _K:]
        # [attribute][metric][group]: a metric's groups are read one after the other
        per_group = [
            x[mine].transpose(0, 2, 1).tolist() for x in (a.values, successes, trials, a.eligible, w_low, w_high)
        ]
        overall = a.overall[mine].tolist()
        min_size = self.config.min_group_size
        out: dict[str, AttributeFairness] = {}
        for i, name in enumerate(names):
            s = s0 + i
            table = a.tables[s]
            groups = table.groups
            metrics: dict[str, Disparity] = {}
            for m, metric in enumerate(METRICS):
                over = _finite(overall[i][m])
                if groups:
                    metrics[metric] = self._disparity(s, m, groups, over, *(x[i][m] for x in per_group))
                else:  # an empty window
                    metrics[metric] = _no_groups(metric, over)
            rows: list[list[int]] = table.counts.tolist()
            n = [row[N] for row in rows]
            out[name] = AttributeFairness(
                attribute=name,
                status=_STATUS_OF[lists.attribute_code[s]],
                groups=groups,
                group_n=dict(zip(groups, n)),
                group_labelled=dict(zip(groups, [row[N_LABELLED] for row in rows])),
                eligible=tuple(g for g, size in zip(groups, n) if size >= min_size),
                metrics=metrics,
                gaps={spec.name: self.gap(s, j) for j, spec in enumerate(GAPS)},
            )
        return out

    def _disparity(
        self,
        s: int,
        m: int,
        groups: tuple[str, ...],
        overall: float | None,
        values: list[float],
        successes: list[int],
        trials: list[int],
        eligible: list[bool],
        lows: list[float],
        highs: list[float],
    ) -> Disparity:
        """Metric ``m`` of segment ``s``; the lists are over its groups (and the padding after them)."""
        isfinite, isnan, inf = math.isfinite, math.isnan, math.inf
        by_group: dict[str, GroupMetric] = {}
        eligible_groups: list[str] = []
        # fairlearn's extremes over every group with a value (not NaN; successes without trials give +inf,
        # and index 0 stays the lowest when every value is +inf): the first lowest, the last highest
        all_lo = all_hi = 0
        any_value = False
        min_all, max_all = inf, -inf
        columns = zip(groups, values, successes, trials, eligible, lows, highs)
        for j, (g, value, x, n, e, low, high) in enumerate(columns):
            interval = (low, high) if isfinite(low) and isfinite(high) else None  # no trials: NaN bounds
            if isnan(value):
                by_group[g] = _new_group_metric(None, x, n, interval, False)
                continue
            any_value = True
            if value < min_all:
                all_lo, min_all = j, value
            if value >= max_all:
                all_hi, max_all = j, value
            if e:
                eligible_groups.append(g)
            by_group[g] = _new_group_metric(value if isfinite(value) else None, x, n, interval, e)
        lists = self.lists
        # lowest, highest, difference and its interval, ratio and its interval, pair confidence
        tested: tuple[str | None, str | None, float | None, Interval | None, float | None, Interval | None,
                      float | None]  # fmt: skip
        if lists.testable[s][m]:
            tested = (
                groups[lists.lowest[s][m]],
                groups[lists.highest[s][m]],
                lists.difference[s][m],
                _bounds(lists.difference_low[s][m], lists.difference_high[s][m]),
                _ratio(lists.value_lowest[s][m], lists.value_highest[s][m]),
                _bounds(lists.ratio_low[s][m], lists.ratio_high[s][m]),
                lists.pair_confidence[s][m],
            )
        else:
            tested = (None,) * 7
        all_groups: tuple[float | None, float | None]
        if any_value:
            v_lo, v_hi = values[all_lo], values[all_hi]
            all_groups = (v_hi - v_lo, _ratio(v_lo, v_hi))
        else:
            all_groups = (None, None)
        return _new_disparity(METRICS[m], overall, by_group, tuple(eligible_groups), *tested, *all_groups)


def evaluate_fairness(counts: FairnessCounts, config: FairnessConfig) -> FairnessResult:
    """One window's verdict over every attribute and intersection of ``config``."""
    return evaluate_fairness_many([counts], config)[0]


def evaluate_fairness_many(
    counts_list: Sequence[FairnessCounts], config: FairnessConfig
) -> list[FairnessResult]:
    """``evaluate_fairness`` of each window, the numbers of all of them in one pass of numpy arrays.

    A sliding window closes ~10 windows per batch of events; one pass over their stacked groups costs
    little more than one window's. Each result equals ``evaluate_fairness`` of that window alone, bit for
    bit (every number is taken elementwise; tests/detectors/test_fairness_many.py), and builds its
    per-group objects only when they are read (``FairnessResult``).
    """
    names = config.names
    counts_list = list(counts_list)  # read twice
    for counts in counts_list:
        missing = [name for name in names if name not in counts.tables]
        if missing:
            raise InputError(f"the counts do not track {missing}; build them with config.empty_counts()")
    if not counts_list:
        return []
    batch = _Batch(counts_list, config, names)
    alerting: list[list[tuple[int, int]]] = [[] for _ in counts_list]
    for s, j in batch.alerting:
        alerting[s // len(names)].append((s, j))
    return [batch.result(w, counts, alerting[w]) for w, counts in enumerate(counts_list)]
