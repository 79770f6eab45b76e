"""Fairness of one window over its sensitive attributes ("fairness.parity").

For each attribute (and each configured intersection) the window's ``FairnessCounts`` give every group's
selection rate, true and false positive rates, precision and accuracy, each with a Wilson interval, and for
each metric the fairlearn ``difference`` (max - min) and ``ratio`` (min / max) over the *eligible* groups.
Five gaps can alert: demographic parity difference and ratio, equal opportunity difference, equalized odds
difference and predictive parity difference.

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
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from detectors.base import AlertStatus, ConfigError, InputError, fast_constructor, finite_number, json_safe
from detectors.fairness import intervals
from detectors.fairness.counts import (
    COLUMNS,
    INTERSECTION_SEPARATOR,
    N_LABELLED,
    FairnessCounts,
    GroupCounts,
    N,
    intersection_name,
)
from detectors.fairness.parity import (
    FALSE_POSITIVE_RATE,
    LABEL_METRICS,
    METRICS,
    PRECISION,
    SELECTION_RATE,
    TRUE_POSITIVE_RATE,
)

DETECTOR_NAME = "fairness.parity"
PAIRWISE_CORRECTIONS: tuple[str, ...] = ("bonferroni", "none")
HIGHER_IS_WORSE: frozenset[str] = frozenset({FALSE_POSITIVE_RATE})

Interval = tuple[float, float]


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
    detector: str
    status: FairnessStatus
    attributes: Mapping[str, AttributeFairness]
    alerts: tuple[FairnessAlert, ...]
    n_window: int
    config: Mapping[str, Any]

    def differences(self) -> dict[str, dict[str, float | None]]:
        """Per attribute, each metric's difference between its groups: ``to_dict()``'s
        ``attributes.<attribute>.difference.<metric>.value``, without building the rest of it (the stream keeps
        these in every window row)."""
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


# one window builds some fifty group metrics, disparities and gaps: built field by field (~13 % of the work)
_new_group_metric = fast_constructor(GroupMetric)
_new_disparity = fast_constructor(Disparity)
_new_gap = fast_constructor(Gap)


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


_IS_LABEL: tuple[bool, ...] = tuple(m in LABEL_METRICS for m in METRICS)


def _metric_rows(rows: list[list[int]]) -> list[list[tuple[int, int, float]]]:
    """``parity.metric_table`` on Python numbers: per metric, per group, ``(successes, trials, value)``.

    For a handful of groups numpy's per-call cost is most of the time; the values are the same bits: the
    quotient of two ints below 2**53 is correctly rounded, as numpy's of the same ints as float64.
    """
    out: list[list[tuple[int, int, float]]] = [[] for _ in METRICS]
    nan, inf = math.nan, math.inf
    for n, n_pred_pos, labelled, tp, fp, tn, fn in rows:  # the order of COLUMNS
        cells = ((n_pred_pos, n), (tp, tp + fn), (fp, fp + tn), (tp, tp + fp), (tp + tn, labelled))
        for i, (x, t) in enumerate(cells):  # the order of METRICS
            if t:
                value = x / t
            elif labelled and _IS_LABEL[i]:
                value = 0.0  # scikit-learn's 0/0 for a group with labelled rows, none in this denominator
            else:
                value = nan if x == 0 else inf
            out[i].append((x, t, value))
    return out


def _bounds(low: float, high: float) -> Interval | None:
    return (low, high) if math.isfinite(low) and math.isfinite(high) else None


def _disparities(
    groups: tuple[str, ...], rows: list[list[int]], config: FairnessConfig
) -> dict[str, Disparity]:
    """Every metric of one attribute, in Python arithmetic on the few groups (``rows``: their counts).

    The same operations, in the same order, as the numpy formulation it replaces (``parity.metric_table``,
    then ``intervals.wilson_interval`` / ``newcombe_difference`` / ``katz_ratio`` over metrics x groups),
    so the same values bit for bit; ``tests/detectors/test_fairness_fast.py`` holds it to that.
    """
    total = [sum(column) for column in zip(*rows)] if rows else [0] * len(COLUMNS)
    overall = [_finite(cells[0][2]) for cells in _metric_rows([total])]
    if not groups:  # an empty window
        return {m: _no_groups(m, overall[i]) for i, m in enumerate(METRICS)}

    min_size = config.min_group_size
    coverage = float(config.min_label_coverage)
    covered = [row[N_LABELLED] >= coverage * row[N] for row in rows]
    confidence = float(config.confidence)
    z = intervals.z_scalar(confidence)
    bonferroni = config.pairwise_correction == "bonferroni"
    wilson, isfinite, isnan, inf = intervals.wilson_bounds, math.isfinite, math.isnan, math.inf

    parts = []
    katz_pairs: list[tuple[int, int, int, int]] = []
    katz_z: list[float] = []
    for i, cells in enumerate(_metric_rows(rows)):
        label_metric = _IS_LABEL[i]
        by_group: dict[str, GroupMetric] = {}
        eligible: list[str] = []
        # the extremes as numpy's argmin / argmax over the values with the others masked by +-inf (the
        # first lowest and the last highest, ``parity.extremes``'s ties), of the eligible groups and of
        # the groups with a value (not NaN; successes without trials give +inf, and index 0 stays the
        # lowest when every value is +inf). A masked group never moves an extreme that is used.
        lo = hi = all_lo = all_hi = 0
        any_value = False
        min_eligible = min_all = inf
        max_eligible = max_all = -inf
        for j, (g, (s, n, value), c) in enumerate(zip(groups, cells, covered)):
            if n:
                low, high = wilson(s, n, z)
                interval = (low, high) if isfinite(low) and isfinite(high) else None
            else:
                interval = None  # no trials: NaN bounds
            if isnan(value):
                by_group[g] = _new_group_metric(None, s, n, interval, False)
                continue
            any_value = True
            if value < min_all:
                all_lo, min_all = j, value
            if value >= max_all:
                all_hi, max_all = j, value
            e = n >= min_size and (c or not label_metric)
            if e:
                eligible.append(g)
                if value < min_eligible:
                    lo, min_eligible = j, value
                if value >= max_eligible:
                    hi, max_eligible = j, value
            by_group[g] = _new_group_metric(value if isfinite(value) else None, s, n, interval, e)

        n_eligible = len(eligible)
        if n_eligible >= 2:
            pair_conf = (
                1.0 - (1.0 - confidence) / (n_eligible * (n_eligible - 1) // 2) if bonferroni else confidence
            )
            z_pair = intervals.z_scalar(pair_conf)
            (s_lo, n_lo, v_lo), (s_hi, n_hi, v_hi) = cells[lo], cells[hi]
            d_low, d_high = intervals.newcombe_bounds(s_hi, n_hi, s_lo, n_lo, z_pair)
            katz_pairs.append((s_lo, n_lo, s_hi, n_hi))
            katz_z.append(z_pair)
            tested = (
                groups[lo],
                groups[hi],
                v_hi - v_lo,
                _bounds(d_low, d_high),
                _ratio(v_lo, v_hi),
                pair_conf,
            )
        else:
            tested = None
        if any_value:
            v_lo, v_hi = cells[all_lo][2], cells[all_hi][2]
            all_groups = (v_hi - v_lo, _ratio(v_lo, v_hi))
        else:
            all_groups = None
        parts.append((METRICS[i], overall[i], by_group, tuple(eligible), tested, all_groups))

    ratio_bounds = iter(intervals.katz_bounds(katz_pairs, katz_z))
    out: dict[str, Disparity] = {}
    for metric, over, by_group, eligible, tested, all_groups in parts:
        if tested is None:
            lowest = highest = diff = diff_interval = ratio = ratio_interval = pair_confidence = None
        else:
            lowest, highest, diff, diff_interval, ratio, pair_confidence = tested
            ratio_interval = _bounds(*next(ratio_bounds))
        diff_all, ratio_all = all_groups if all_groups else (None, None)
        out[metric] = _new_disparity(
            metric,
            over,
            by_group,
            eligible,
            lowest,
            highest,
            diff,
            diff_interval,
            ratio,
            ratio_interval,
            pair_confidence,
            diff_all,
            ratio_all,
        )
    return out


def _no_groups(metric: str, overall: float | None) -> Disparity:
    return _new_disparity(metric, overall, {}, (), None, None, None, None, None, None, None, None, None)


def _ratio(low: float, high: float) -> float | None:
    """``min / max`` as fairlearn gives it: undefined (None) for 0 / 0."""
    return float(low / high) if high != 0.0 else None


def _status(alert: bool, tested: bool) -> FairnessStatus:
    if alert:
        return FairnessStatus.ALERT
    return FairnessStatus.OK if tested else FairnessStatus.INSUFFICIENT_DATA


def _ratio_gap(spec: GapSpec, d: Disparity, threshold: float) -> Gap:
    testable = d.testable
    interval = d.ratio_interval if testable else None
    alert = interval is not None and interval[1] < threshold
    worst, best = d.worst_best()
    status = _status(alert, testable)
    return _new_gap(spec.name, d.metric, spec.kind, d.ratio, interval, threshold, status, worst, best)


def _difference_gap(spec: GapSpec, parts: list[Disparity], threshold: float) -> Gap:
    tested: list[tuple[Disparity, Interval]] = []
    for d in parts:
        if d.testable and d.difference_interval is not None:
            tested.append((d, d.difference_interval))
    if not tested:
        status = FairnessStatus.INSUFFICIENT_DATA
        return _new_gap(spec.name, parts[0].metric, spec.kind, None, None, threshold, status, None, None)
    # the largest lower and upper bounds and the largest gap, each the first of equals (as max() keeps)
    by_low, (low, high) = tested[0]
    by_value, value = by_low, by_low.difference or 0.0
    for d, (d_low, d_high) in tested[1:]:
        if d_low > low:
            low, by_low = d_low, d
        high = max(high, d_high)
        if (d.difference or 0.0) > value:
            value, by_value = d.difference or 0.0, d
    complete = len(tested) == len(parts)
    # a difference of two rates is at most 1: the upper bound when one of the rates cannot be tested
    if not complete:
        high = 1.0
    alert = low > threshold
    # the deciding rate: the one whose interval clears the threshold by most, else the larger gap
    driver = by_low if alert else by_value
    worst, best = driver.worst_best()
    status = _status(alert, complete)
    return _new_gap(spec.name, driver.metric, spec.kind, value, (low, high), threshold, status, worst, best)


def _gap(spec: GapSpec, metrics: Mapping[str, Disparity], config: FairnessConfig) -> Gap:
    threshold = float(getattr(config, spec.threshold_field))
    if spec.kind == "ratio":
        return _ratio_gap(spec, metrics[spec.metrics[0]], threshold)
    return _difference_gap(spec, [metrics[m] for m in spec.metrics], threshold)


def _combine(statuses: list[FairnessStatus]) -> FairnessStatus:
    if FairnessStatus.ALERT in statuses:
        return FairnessStatus.ALERT
    if statuses and all(s == FairnessStatus.INSUFFICIENT_DATA for s in statuses):
        return FairnessStatus.INSUFFICIENT_DATA
    return FairnessStatus.OK


def _attribute(name: str, table: GroupCounts, config: FairnessConfig) -> AttributeFairness:
    groups = table.groups
    rows: list[list[int]] = table.counts.tolist()
    metrics = _disparities(groups, rows, config)
    gaps = {spec.name: _gap(spec, metrics, config) for spec in GAPS}
    n = [row[N] for row in rows]
    return AttributeFairness(
        attribute=name,
        status=_combine([g.status for g in gaps.values()]),
        groups=groups,
        group_n=dict(zip(groups, n)),
        group_labelled=dict(zip(groups, [row[N_LABELLED] for row in rows])),
        eligible=tuple(g for g, size in zip(groups, n) if size >= config.min_group_size),
        metrics=metrics,
        gaps=gaps,
    )


def evaluate_fairness(counts: FairnessCounts, config: FairnessConfig) -> FairnessResult:
    """One window's verdict over every attribute and intersection of ``config``."""
    missing = [name for name in config.names if name not in counts.tables]
    if missing:
        raise InputError(f"the counts do not track {missing}; build them with config.empty_counts()")
    attributes = {name: _attribute(name, counts.tables[name], config) for name in config.names}
    alerts = tuple(
        FairnessAlert(
            attribute=name,
            metric=gap.name,
            based_on=gap.metric,
            worst=gap.worst or "",
            best=gap.best or "",
            value=gap.value,
            interval=gap.interval or (math.nan, math.nan),
            threshold=gap.threshold,
        )
        for name, attr in attributes.items()
        for gap in attr.gaps.values()
        if gap.status == FairnessStatus.ALERT
    )
    return FairnessResult(
        detector=DETECTOR_NAME,
        status=_combine([a.status for a in attributes.values()]),
        attributes=attributes,
        alerts=alerts,
        n_window=counts.n_rows,
        config=config.to_dict(),
    )
