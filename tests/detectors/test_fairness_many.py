"""``evaluate_fairness_many``: each window's result equals ``evaluate_fairness`` of that window alone.

The oracle is ``_reference_evaluate_fairness`` below: the pre-batching ``evaluate_fairness`` (scalar Python
per group and metric, every object built at once), kept verbatim. Results are compared exactly: status,
alerts, ``differences()``, ``to_dict()`` as JSON strings (float bits, int vs float, key order) and every
field of every nested object with its type and, for floats, its bits.

Windows come from rows (``FairnessCounts.update``, with and without labels, groups of very different sizes,
absent attributes, intersections) and from count tables (empty tables, empty groups, and counts no update
would make: successes without trials, more successes than trials), under varied configs.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import pickle
from collections.abc import Mapping
from enum import Enum
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.base import InputError, fast_constructor
from detectors.fairness import (
    DETECTOR_NAME,
    GAPS,
    METRICS,
    AttributeFairness,
    Disparity,
    FairnessAlert,
    FairnessConfig,
    FairnessCounts,
    FairnessResult,
    FairnessStatus,
    Gap,
    GroupCounts,
    GroupMetric,
    evaluate_fairness,
    evaluate_fairness_many,
    intervals,
)
from detectors.fairness.counts import COLUMNS, N_LABELLED, N
from detectors.fairness.detector import GapSpec, Interval
from detectors.fairness.parity import LABEL_METRICS

# --- the oracle -----------------------------------------------------------------------------------------
# The pre-batching evaluate_fairness and the private helpers it needs, kept verbatim (only renamed) as the
# independent reference. It uses intervals' scalar functions (z_scalar, wilson_bounds, newcombe_bounds,
# katz_bounds), which the batching left as they were.

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


def _reference_evaluate_fairness(counts: FairnessCounts, config: FairnessConfig) -> FairnessResult:
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


# --- comparison ---------------------------------------------------------------------------------------


def _snapshot(obj: Any) -> Any:
    """Every dataclass field of a result, with exact types (``float.hex`` for floats), as JSON data."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        fields = [[f.name, _snapshot(getattr(obj, f.name))] for f in dataclasses.fields(obj)]
        return {"dataclass": type(obj).__name__, "fields": fields}
    if isinstance(obj, Enum):
        return {"enum": type(obj).__name__, "value": obj.value}
    if isinstance(obj, dict):
        return {"dict": type(obj).__name__, "items": [[_snapshot(k), _snapshot(v)] for k, v in obj.items()]}
    if isinstance(obj, (tuple, list)):
        return {type(obj).__name__: [_snapshot(v) for v in obj]}
    if type(obj) is float:
        return {"float": obj.hex()}
    if obj is None or type(obj) in (bool, int, str):
        return {type(obj).__name__: obj}
    raise TypeError(f"unexpected type in a fairness result: {type(obj)!r}")


def _dumps(data: Any) -> str:
    return json.dumps(data, allow_nan=False)


def _assert_same(result: FairnessResult, reference: FairnessResult) -> None:
    """The stream's reads first (they must not build the per-group objects), then everything."""
    assert type(result) is FairnessResult
    assert result.status is reference.status
    assert _snapshot(result.alerts) == _snapshot(reference.alerts)
    assert _dumps([a.to_dict() for a in result.alerts]) == _dumps([a.to_dict() for a in reference.alerts])
    assert _dumps(result.differences()) == _dumps(reference.differences())
    assert type(result.n_window) is int and result.n_window == reference.n_window
    assert "attributes" not in vars(result)  # still unbuilt
    assert _dumps(result.to_dict()) == _dumps(reference.to_dict())
    assert _snapshot(result) == _snapshot(reference)
    assert list(vars(result)) == list(vars(reference))  # built: the constructor's __dict__, nothing else
    assert _dumps(result.differences()) == _dumps(reference.differences())


def _check_batch(counts_list: list[FairnessCounts], config: FairnessConfig) -> list[FairnessResult]:
    results = evaluate_fairness_many(counts_list, config)
    assert len(results) == len(counts_list)
    for result, counts in zip(results, counts_list):
        _assert_same(result, _reference_evaluate_fairness(counts, config))
    return results


# --- inputs -------------------------------------------------------------------------------------------

VALUES: dict[str, list[Any]] = {
    "sex": ["f", "m", "x", None],
    "age": ["18-30", "31-50", "51+", "65+", "90+"],
    "region": [f"r{i}" for i in range(9)],
}


def _config(rng: np.random.Generator, attributes: tuple[str, ...], intersections: Any) -> FairnessConfig:
    kwargs: dict[str, Any] = {"attributes": attributes, "intersections": intersections}
    if rng.random() < 0.25:
        return FairnessConfig(**kwargs)  # the defaults, as the stream uses them
    kwargs["min_group_size"] = int(rng.choice([1, 2, 5, 30, 100, 400]))
    kwargs["confidence"] = float(rng.choice([0.5, 0.8, 0.9, 0.95, 0.99, 0.999]))
    kwargs["dp_difference_threshold"] = float(rng.choice([0.0, 0.02, 0.1, 0.3]))
    kwargs["dp_ratio_threshold"] = float(rng.choice([0.5, 0.8, 0.95, 1.0]))
    kwargs["eo_difference_threshold"] = float(rng.choice([0.0, 0.05, 0.1]))
    kwargs["eodds_difference_threshold"] = float(rng.choice([0.0, 0.05, 0.1, 0.5]))
    kwargs["predictive_parity_threshold"] = float(rng.choice([0.0, 0.05, 0.1]))
    kwargs["min_label_coverage"] = float(rng.choice([0.0, 0.3, 0.5, 1.0]))
    kwargs["pairwise_correction"] = str(rng.choice(["bonferroni", "none"]))
    return FairnessConfig(**kwargs)


def _window_from_rows(rng: np.random.Generator, config: FairnessConfig) -> FairnessCounts:
    """Rows as the stream sees them, added in a few updates: skewed groups, a biased group, some labels."""
    n = int(rng.choice([0, 1, 3, 20, 150, 1000, 1000, 5000]))
    groups: dict[str, np.ndarray] = {}
    for a in config.attributes:
        if rng.random() < 0.05:
            continue  # absent from the batch: its rows count as missing
        values = np.array(VALUES[a][: int(rng.integers(1, len(VALUES[a]) + 1))], dtype=object)
        p = rng.dirichlet(np.full(values.size, float(rng.choice([0.2, 1.0, 5.0]))))
        groups[a] = rng.choice(values, size=n, p=p)
    rate = np.full(n, rng.uniform(0.0, 1.0))
    if n and groups and rng.random() < 0.6:  # a group selected at another rate, so that gaps alert
        column = next(iter(groups.values()))
        rate[column == column[0]] = rng.uniform(0.0, 1.0)
    y_pred = (rng.random(n) < rate).astype(np.int64)
    labels = str(rng.choice(["none", "none", "all", "some"]))
    y_true = None
    if labels != "none":
        agree = rng.uniform(0.3, 1.0)  # labels that follow the predictions, more for some rows
        y_true = np.where(rng.random(n) < agree, y_pred, rng.random(n) < 0.5).astype(np.float64)
        if labels == "some":
            y_true[rng.random(n) < rng.uniform(0.0, 1.0)] = np.nan
    counts = config.empty_counts()
    for part in np.array_split(np.arange(n), int(rng.integers(1, 4))):
        chunk = {a: g[part] for a, g in groups.items()}
        counts = counts.update(chunk, y_pred[part], None if y_true is None else y_true[part])
    return counts


def _row(rng: np.random.Generator) -> list[int]:
    """One group's COLUMNS counts: mostly consistent, sometimes what no update makes."""
    kind = rng.choice(["consistent"] * 6 + ["empty", "arbitrary"])
    if kind == "empty":
        return [0] * len(COLUMNS)
    if kind == "arbitrary":  # e.g. successes without trials, more successes than trials
        return rng.integers(0, 4, size=len(COLUMNS)).tolist()
    n = int(rng.choice([1, 2, 5, 40, 120, 800, 20000]))
    labelled = int(rng.binomial(n, rng.choice([0.0, 0.4, 1.0])))
    pred, true = rng.random(labelled) < rng.uniform(0, 1), rng.random(labelled) < rng.uniform(0, 1)
    tp, fp = int((pred & true).sum()), int((pred & ~true).sum())
    tn, fn = int((~pred & ~true).sum()), int((~pred & true).sum())
    return [n, tp + fp + int(rng.binomial(n - labelled, rng.uniform(0, 1))), labelled, tp, fp, tn, fn]


def _window_from_tables(rng: np.random.Generator, config: FairnessConfig) -> FairnessCounts:
    tables = {}
    for name in config.names:
        k = int(rng.choice([0, 1, 2, 3, 5, 8]))
        groups = sorted(f"g{int(i)}" for i in rng.choice(30, size=k, replace=False))
        rows = [_row(rng) for _ in groups]
        if k >= 2 and rng.random() < 0.3:
            rows[-1] = list(rows[0])  # tied groups
        tables[name] = GroupCounts(tuple(groups), np.array(rows, dtype=np.int64).reshape(k, len(COLUMNS)))
    n_rows = max(int(t.counts[:, N].sum()) for t in tables.values())
    return FairnessCounts(config.attributes, config.intersections, n_rows, tables)


def _case(seed: int) -> tuple[list[FairnessCounts], FairnessConfig]:
    rng = np.random.default_rng(seed)
    attributes = tuple(VALUES)[: int(rng.integers(1, 4))]
    intersections = [(attributes[0], attributes[-1])] if len(attributes) >= 2 and rng.random() < 0.4 else []
    config = _config(rng, attributes, intersections)
    make = _window_from_rows if rng.random() < 0.6 else _window_from_tables
    return [make(rng, config) for _ in range(int(rng.integers(1, 13)))], config


CASES = range(60)


# --- tests --------------------------------------------------------------------------------------------


def test_the_cases_cover_the_edges() -> None:
    """Alerts of every gap, untestable metrics, empty windows and groups, labelled and unlabelled."""
    alerts: set[str] = set()
    statuses: set[FairnessStatus] = set()
    empty_tables = empty_groups = labelled = unlabelled = 0
    for seed in CASES:
        counts_list, config = _case(seed)
        for counts in counts_list:
            result = _reference_evaluate_fairness(counts, config)
            alerts |= {a.metric for a in result.alerts}
            statuses.add(result.status)
            tables = [counts.tables[name] for name in config.names]
            empty_tables += any(not t.groups for t in tables)
            empty_groups += any((t.counts[:, N] == 0).any() for t in tables)
            has_labels = any(t.counts[:, N_LABELLED].any() for t in tables)
            labelled += has_labels
            unlabelled += not has_labels
    assert alerts == {spec.name for spec in GAPS}
    assert statuses == set(FairnessStatus)
    assert min(empty_tables, empty_groups, labelled, unlabelled) >= 5


@pytest.mark.parametrize("seed", CASES)
def test_each_window_equals_its_own_evaluation(seed: int) -> None:
    _check_batch(*_case(seed))


@settings(max_examples=80)
@given(
    st.lists(  # windows of one attribute and its few groups, every count small: many ties and edge cases
        st.lists(st.lists(st.integers(0, 6), min_size=7, max_size=7), min_size=0, max_size=4),
        min_size=1,
        max_size=5,
    ),
    st.sampled_from([1, 2, 3]),
    st.sampled_from([0.0, 0.5, 1.0]),
    st.sampled_from([0.5, 0.95]),
    st.sampled_from(["bonferroni", "none"]),
)
def test_small_arbitrary_counts_equal_their_own_evaluation(
    windows: list[list[list[int]]], min_group_size: int, coverage: float, confidence: float, correction: str
) -> None:
    config = FairnessConfig(
        attributes=("g",), min_group_size=min_group_size, min_label_coverage=coverage, confidence=confidence,
        dp_difference_threshold=0.0, eo_difference_threshold=0.0, pairwise_correction=correction,
    )  # fmt: skip
    counts_list = []
    for rows in windows:
        groups = tuple(f"g{i}" for i in range(len(rows)))
        table = GroupCounts(groups, np.array(rows, dtype=np.int64).reshape(len(rows), len(COLUMNS)))
        counts_list.append(FairnessCounts(("g",), (), sum(r[N] for r in rows), {"g": table}))
    _check_batch(counts_list, config)


@pytest.mark.parametrize("n_attributes", [2, 3])
def test_the_streams_windows_equal_their_own_evaluation(n_attributes: int) -> None:
    """As the worker closes them: 1,000 events, predictions only, updates of 100, the default config."""
    rng = np.random.default_rng(n_attributes)
    attributes = tuple(VALUES)[:n_attributes]
    config = FairnessConfig(attributes=attributes)
    counts_list = []
    for i in range(10):
        groups = {a: rng.choice(np.array(VALUES[a], dtype=object), size=1000) for a in attributes}
        y_pred = (rng.random(1000) < np.where(groups["sex"] == "f", 0.15 + 0.15 * (i % 3), 0.4)).astype(np.int64)
        counts = config.empty_counts()
        for part in np.array_split(np.arange(1000), 10):
            counts = counts.update({a: g[part] for a, g in groups.items()}, y_pred[part])
        counts_list.append(counts)
    results = _check_batch(counts_list, config)
    assert any(r.alerts for r in results) and not all(r.alerts for r in results)


@pytest.mark.parametrize("seed", range(0, 60, 6))
def test_a_window_does_not_depend_on_its_batch(seed: int) -> None:
    counts_list, config = _case(seed)
    expected = [_snapshot(r) for r in evaluate_fairness_many(counts_list, config)]
    assert expected == [_snapshot(evaluate_fairness(c, config)) for c in counts_list]  # each alone
    order = np.random.default_rng(seed).permutation(len(counts_list))
    shuffled = evaluate_fairness_many([counts_list[i] for i in order], config)
    assert [_snapshot(r) for r in shuffled] == [expected[i] for i in order]
    others, _ = _case(seed + 1000)  # other windows of the same declaration, around and between
    others = [c for c in others if c.attributes == config.attributes and c.intersections == config.intersections]
    mixed = others + [c for pair in zip(counts_list, counts_list) for c in pair] + others
    mixed_results = evaluate_fairness_many(mixed, config)[len(others) : len(others) + 2 * len(counts_list)]
    assert [_snapshot(r) for r in mixed_results] == [e for e in expected for _ in range(2)]


def _reads(result: FairnessResult, first: str, other: FairnessResult) -> dict[str, Any]:
    """Every reader's view of a result, the read named ``first`` first, then the others."""
    reads = {
        "attributes": lambda: _snapshot(result.attributes),
        "config": lambda: _snapshot(result.config),
        "to_dict": lambda: _dumps(result.to_dict()),
        "differences": lambda: _dumps(result.differences()),
        "alerts": lambda: _snapshot(result.alerts),
        "pickle": lambda: _snapshot(pickle.loads(pickle.dumps(result))),
        "copy": lambda: _snapshot(copy.copy(result)),
        "deepcopy": lambda: _snapshot(copy.deepcopy(result)),
        "replace": lambda: _snapshot(dataclasses.replace(result)),
        "asdict": lambda: _snapshot(dataclasses.asdict(result)),
        "repr": lambda: repr(result),
        "eq": lambda: result == other,
    }
    seen = {first: reads.pop(first)()}
    return seen | {name: read() for name, read in reads.items()} | {"all": _snapshot(result)}


READS = ["attributes", "config", "to_dict", "differences", "alerts", "pickle", "copy", "deepcopy", "replace",
         "asdict", "repr", "eq"]  # fmt: skip


@pytest.mark.parametrize("first", READS)
def test_reading_in_any_order_gives_the_same_result(first: str) -> None:
    counts_list, config = _case(3)
    eager = _reference_evaluate_fairness(counts_list[-1], config)
    expected = _reads(eager, "attributes", eager)
    assert _reads(evaluate_fairness_many(counts_list, config)[-1], first, eager) == expected


def test_built_results_equal_the_constructors_and_build_alone() -> None:
    counts_list, config = _case(5)
    results = evaluate_fairness_many(counts_list * 3, config)
    first = results[0]
    reference = _reference_evaluate_fairness(counts_list[0], config)
    assert first == reference and reference == first and repr(first) == repr(reference)
    assert all("attributes" not in vars(r) for r in results[1:])  # building one builds no other
    assert "_lazy" not in vars(first)  # nor keeps its batch
    rebuilt = FairnessResult(**{f.name: getattr(first, f.name) for f in dataclasses.fields(first)})
    assert rebuilt == first and list(vars(rebuilt).items()) == list(vars(first).items())
    with pytest.raises(dataclasses.FrozenInstanceError):
        results[1].attributes = {}  # type: ignore[misc]
    with pytest.raises(AttributeError, match="no_such_field"):
        _ = results[1].no_such_field  # type: ignore[attr-defined]
    assert not hasattr(results[1], "_build") and "attributes" not in vars(results[1])


def test_mutating_one_output_leaves_the_others_intact() -> None:
    counts_list, config = _case(7)
    results = evaluate_fairness_many(counts_list * 2, config)
    expected = _dumps(results[0].to_dict())
    data = results[0].to_dict()
    data["config"]["attributes"].append("tampered")
    results[0].differences()[config.names[0]]["selection_rate"] = -1.0
    assert _dumps(results[len(counts_list)].to_dict()) == expected == _dumps(results[0].to_dict())


def test_no_windows_and_untracked_attributes() -> None:
    config = FairnessConfig(attributes=("sex", "race"))
    assert evaluate_fairness_many([], config) == []
    good, bad = config.empty_counts(), FairnessCounts.empty(["sex"])
    with pytest.raises(InputError) as single:
        evaluate_fairness(bad, config)
    with pytest.raises(InputError) as many:
        evaluate_fairness_many([good, bad, good], config)
    assert str(many.value) == str(single.value) == (
        "the counts do not track ['race']; build them with config.empty_counts()"
    )
