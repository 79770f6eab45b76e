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
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt

from detectors.base import ConfigError, InputError, json_safe
from detectors.fairness import intervals
from detectors.fairness.counts import (
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
    metric_table,
)

DETECTOR_NAME = "fairness.parity"
PAIRWISE_CORRECTIONS: tuple[str, ...] = ("bonferroni", "none")
HIGHER_IS_WORSE: frozenset[str] = frozenset({FALSE_POSITIVE_RATE})

Interval = tuple[float, float]
FloatArray = npt.NDArray[np.float64]
IndexArray = npt.NDArray[np.intp]
BoolArray = npt.NDArray[np.bool_]


class FairnessStatus(StrEnum):
    """``ok`` and ``insufficient_data`` carry the same values as ``detectors.base.Status``."""

    OK = "ok"
    ALERT = "alert"
    INSUFFICIENT_DATA = "insufficient_data"


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


def _number(name: str, value: object) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, got {value!r}")
    return float(value)


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
        if not 0.0 < _number("confidence", self.confidence) < 1.0:
            raise ConfigError(f"confidence must be in (0, 1), got {self.confidence!r}")
        for spec in GAPS:
            value = _number(spec.threshold_field, getattr(self, spec.threshold_field))
            ok = 0.0 < value <= 1.0 if spec.kind == "ratio" else 0.0 <= value < 1.0
            if not ok:
                bounds = "(0, 1]" if spec.kind == "ratio" else "[0, 1)"
                raise ConfigError(f"{spec.threshold_field} must be in {bounds}, got {value!r}")
        if not 0.0 <= _number("min_label_coverage", self.min_label_coverage) <= 1.0:
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
        out: dict[str, Any] = json_safe(asdict(self))
        return out


@dataclass(frozen=True)
class GroupMetric:
    """One metric of one group: ``value = successes / n`` (fairlearn's value) and its Wilson interval."""

    value: float | None
    successes: int
    n: int
    interval: Interval | None
    eligible: bool

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = json_safe(asdict(self))
        return out


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
        out: dict[str, Any] = json_safe(asdict(self))
        out["status"] = self.status.value  # a StrEnum is a str, which json_safe passes through as it is
        return out


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
            "value": json_safe(self.value),
            "interval": json_safe(self.interval),
            "threshold": json_safe(self.threshold),
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
        by_group: dict[str, Any] = {}
        for g in self.groups:
            n, labelled = self.group_n[g], self.group_labelled[g]
            entry: dict[str, Any] = {
                "n": n,
                "n_labelled": labelled,
                "label_coverage": labelled / n if n else None,
                "eligible": g in self.eligible,
            }
            for name, d in self.metrics.items():
                entry[name] = d.by_group[g].to_dict()
            by_group[g] = entry

        def _gap(d: Disparity, kind: str) -> dict[str, Any]:
            out: dict[str, Any] = json_safe(
                {
                    "value": getattr(d, kind),
                    "interval": getattr(d, f"{kind}_interval"),
                    "lowest": d.lowest,
                    "highest": d.highest,
                    "eligible": d.eligible,
                    "pair_confidence": d.pair_confidence,
                    "all_groups": getattr(d, f"{kind}_all_groups"),
                }
            )
            return out

        return {
            "attribute": self.attribute,
            "status": self.status.value,
            "n": self.n,
            "n_labelled": self.n_labelled,
            "label_coverage": json_safe(self.label_coverage),
            "eligible": list(self.eligible),
            "overall": {name: json_safe(d.overall) for name, d in self.metrics.items()},
            "by_group": by_group,
            "difference": {name: _gap(d, "difference") for name, d in self.metrics.items()},
            "ratio": {name: _gap(d, "ratio") for name, d in self.metrics.items()},
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

    def to_dict(self) -> dict[str, Any]:
        return {
            "detector": self.detector,
            "status": self.status.value,
            "n_window": int(self.n_window),
            "attributes": {name: a.to_dict() for name, a in self.attributes.items()},
            "alerts": [a.to_dict() for a in self.alerts],
            "config": json_safe(self.config),
        }


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _interval(low: float, high: float) -> Interval | None:
    return (float(low), float(high)) if math.isfinite(low) and math.isfinite(high) else None


def _extreme_rows(values: FloatArray, mask: BoolArray) -> tuple[IndexArray, IndexArray]:
    """Per row, the index of the lowest and of the highest masked value (``parity.extremes``'s ties)."""
    k = values.shape[1]
    lows = np.argmin(np.where(mask, values, np.inf), axis=1)
    highs = k - 1 - np.argmax(np.where(mask, values, -np.inf)[:, ::-1], axis=1)
    return lows, highs


def _disparities(table: GroupCounts, config: FairnessConfig) -> dict[str, Disparity]:
    """Every metric of one attribute at once: one numpy call per step for all metrics and groups."""
    counts = table.counts
    x, t, v = metric_table(counts)  # metrics x groups
    overall = metric_table(table.total())[2][:, 0]
    if not table.groups:  # an empty window
        return {m: _no_groups(m, _finite(float(overall[i]))) for i, m in enumerate(METRICS)}

    n = counts[:, N]
    covered = counts[:, N_LABELLED] >= config.min_label_coverage * n
    is_label = np.array([m in LABEL_METRICS for m in METRICS])[:, None]
    has_value = ~np.isnan(v)
    eligible = (t >= config.min_group_size) & has_value & (~is_label | covered[None, :])
    low, high = intervals.wilson_interval(x, t, config.confidence)

    n_eligible = eligible.sum(axis=1)
    pairs = np.maximum(n_eligible * (n_eligible - 1) // 2, 1)
    if config.pairwise_correction == "bonferroni":
        pair_conf = 1.0 - (1.0 - config.confidence) / pairs
    else:
        pair_conf = np.full(len(METRICS), config.confidence)
    rows = np.arange(len(METRICS))
    lo, hi = _extreme_rows(v, eligible)
    x_lo, t_lo, x_hi, t_hi = x[rows, lo], t[rows, lo], x[rows, hi], t[rows, hi]
    d_low, d_high = intervals.newcombe_difference(x_hi, t_hi, x_lo, t_lo, pair_conf)
    r_low, r_high = intervals.katz_ratio(x_lo, t_lo, x_hi, t_hi, pair_conf)
    v_lo, v_hi = v[rows, lo], v[rows, hi]
    all_lo, all_hi = _extreme_rows(v, has_value)
    all_min, all_max = v[rows, all_lo], v[rows, all_hi]

    groups = table.groups
    out: dict[str, Disparity] = {}
    for i, metric in enumerate(METRICS):
        values, lows, highs = v[i].tolist(), low[i].tolist(), high[i].tolist()
        successes, trials, elig = x[i].tolist(), t[i].tolist(), eligible[i].tolist()
        by_group = {
            g: GroupMetric(_finite(values[j]), successes[j], trials[j], _interval(lows[j], highs[j]), elig[j])
            for j, g in enumerate(groups)
        }
        testable = bool(n_eligible[i] >= 2)
        any_value = bool(has_value[i].any())
        out[metric] = Disparity(
            metric=metric,
            overall=_finite(float(overall[i])),
            by_group=by_group,
            eligible=tuple(g for g, e in zip(groups, elig) if e),
            lowest=groups[lo[i]] if testable else None,
            highest=groups[hi[i]] if testable else None,
            difference=float(v_hi[i] - v_lo[i]) if testable else None,
            difference_interval=_interval(d_low[i], d_high[i]) if testable else None,
            ratio=_ratio(v_lo[i], v_hi[i]) if testable else None,
            ratio_interval=_interval(r_low[i], r_high[i]) if testable else None,
            pair_confidence=float(pair_conf[i]) if testable else None,
            difference_all_groups=float(all_max[i] - all_min[i]) if any_value else None,
            ratio_all_groups=_ratio(all_min[i], all_max[i]) if any_value else None,
        )
    return out


def _no_groups(metric: str, overall: float | None) -> Disparity:
    return Disparity(metric, overall, {}, (), None, None, None, None, None, None, None, None, None)


def _ratio(low: float, high: float) -> float | None:
    """``min / max`` as fairlearn gives it: undefined (None) for 0 / 0."""
    return float(low / high) if high != 0.0 else None


def _status(alert: bool, tested: bool) -> FairnessStatus:
    if alert:
        return FairnessStatus.ALERT
    return FairnessStatus.OK if tested else FairnessStatus.INSUFFICIENT_DATA


def _ratio_gap(spec: GapSpec, d: Disparity, threshold: float) -> Gap:
    interval = d.ratio_interval if d.testable else None
    alert = interval is not None and interval[1] < threshold
    worst, best = d.worst_best()
    status = _status(alert, d.testable)
    return Gap(spec.name, d.metric, spec.kind, d.ratio, interval, threshold, status, worst, best)


def _difference_gap(spec: GapSpec, parts: list[Disparity], threshold: float) -> Gap:
    tested: list[tuple[Disparity, Interval]] = []
    for d in parts:
        if d.testable and d.difference_interval is not None:
            tested.append((d, d.difference_interval))
    if not tested:
        status = FairnessStatus.INSUFFICIENT_DATA
        return Gap(spec.name, parts[0].metric, spec.kind, None, None, threshold, status, None, None)
    low = max(interval[0] for _, interval in tested)
    # a difference of two rates is at most 1: the upper bound when one of the rates cannot be tested
    high = max(interval[1] for _, interval in tested) if len(tested) == len(parts) else 1.0
    alert = low > threshold
    # the deciding rate: the one whose interval clears the threshold by most, else the larger gap
    if alert:
        driver = max(tested, key=lambda pair: pair[1][0])[0]
    else:
        driver = max(tested, key=lambda pair: pair[0].difference or 0.0)[0]
    value = max(d.difference or 0.0 for d, _ in tested)
    worst, best = driver.worst_best()
    status = _status(alert, len(tested) == len(parts))
    return Gap(spec.name, driver.metric, spec.kind, value, (low, high), threshold, status, worst, best)


def _gap(spec: GapSpec, metrics: Mapping[str, Disparity], config: FairnessConfig) -> Gap:
    threshold = float(getattr(config, spec.threshold_field))
    parts = [metrics[m] for m in spec.metrics]
    if spec.kind == "ratio":
        return _ratio_gap(spec, parts[0], threshold)
    return _difference_gap(spec, parts, threshold)


def _combine(statuses: list[FairnessStatus]) -> FairnessStatus:
    if FairnessStatus.ALERT in statuses:
        return FairnessStatus.ALERT
    if statuses and all(s == FairnessStatus.INSUFFICIENT_DATA for s in statuses):
        return FairnessStatus.INSUFFICIENT_DATA
    return FairnessStatus.OK


def _attribute(name: str, table: GroupCounts, config: FairnessConfig) -> AttributeFairness:
    metrics = _disparities(table, config)
    gaps = {spec.name: _gap(spec, metrics, config) for spec in GAPS}
    n = table.counts[:, N]
    return AttributeFairness(
        attribute=name,
        status=_combine([g.status for g in gaps.values()]),
        groups=table.groups,
        group_n=dict(zip(table.groups, n.tolist())),
        group_labelled=dict(zip(table.groups, table.counts[:, N_LABELLED].tolist())),
        eligible=tuple(g for g, size in zip(table.groups, n.tolist()) if size >= config.min_group_size),
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
