"""Group metrics and their disparities from counts, with fairlearn's definitions and edge cases.

Every metric is a proportion ``successes / trials`` of the counts kept by ``FairnessCounts``:

=======================  ======================  =================================  =========================
metric                   successes               trials                             fairlearn / sklearn
=======================  ======================  =================================  =========================
``selection_rate``       ``n_pred_pos``          ``n`` (all rows)                   ``selection_rate``
``true_positive_rate``   ``tp``                  ``tp + fn`` (labelled positives)   ``true_positive_rate``
``false_positive_rate``  ``fp``                  ``fp + tn`` (labelled negatives)   ``false_positive_rate``
``precision``            ``tp``                  ``tp + fp`` (labelled pred. pos.)  ``precision_score``
``accuracy``             ``tp + tn``             ``n_labelled``                     ``accuracy_score``
=======================  ======================  =================================  =========================

Label-based metrics count only rows whose label has arrived: they equal fairlearn run on the labelled rows.

Zero trials, as fairlearn 0.15 / scikit-learn 1.9 give them (checked by the oracle tests):

* a group with labelled rows but no labelled positives has a true positive rate of **0.0** (fairlearn's
  ``confusion_matrix(normalize="true")`` turns 0/0 into 0); likewise the false positive rate of a group with
  no labelled negatives, and the precision of a group with no labelled positive predictions
  (``precision_score``'s default ``zero_division="warn"`` returns 0.0);
* a group with no labelled row at all has no value (NaN) for the label metrics: it is absent from
  fairlearn's frame over the labelled rows;
* ``difference`` is ``max - min`` and ``ratio`` is ``min / max`` over the groups that have a value (pandas
  skips NaN), ``ratio`` is NaN when ``max`` is 0 (0/0), and one group gives a difference of 0 and a ratio
  of 1 (NaN if its value is 0). No group with a value gives NaN for both.

``equalized_odds_difference`` is fairlearn's default ``agg="worst_case"``: the larger of the true and false
positive rate differences. ``equal_opportunity_difference`` is the true positive rate difference and
``predictive_parity_difference`` the precision difference.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from detectors.fairness.counts import FN, FP, N_LABELLED, N_PRED_POS, TN, TP, GroupCounts, N

SELECTION_RATE = "selection_rate"
TRUE_POSITIVE_RATE = "true_positive_rate"
FALSE_POSITIVE_RATE = "false_positive_rate"
PRECISION = "precision"
ACCURACY = "accuracy"
METRICS: tuple[str, ...] = (SELECTION_RATE, TRUE_POSITIVE_RATE, FALSE_POSITIVE_RATE, PRECISION, ACCURACY)
LABEL_METRICS: frozenset[str] = frozenset({TRUE_POSITIVE_RATE, FALSE_POSITIVE_RATE, PRECISION, ACCURACY})

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, eq=False)
class MetricCounts:
    """One metric of every group (in the order of the table's groups), as a proportion."""

    metric: str
    successes: IntArray
    trials: IntArray
    values: FloatArray  # fairlearn's value: successes / trials, with the zero-trial conventions above


# every metric's successes and trials are sums of COLUMNS counts: ``counts @ _WEIGHTS`` gives all ten at once
# (successes in the order of METRICS, then trials), exactly (integer arithmetic)
_SUCCESSES = ((N_PRED_POS,), (TP,), (FP,), (TP,), (TP, TN))
_TRIALS = ((N,), (TP, FN), (FP, TN), (TP, FP), (N_LABELLED,))


def _weights() -> IntArray:
    weights = np.zeros((7, 2 * len(METRICS)), dtype=np.int64)
    for m, (successes, trials) in enumerate(zip(_SUCCESSES, _TRIALS)):
        weights[list(successes), m] = 1
        weights[list(trials), len(METRICS) + m] = 1
    return weights


_WEIGHTS = _weights()
_IS_LABEL: BoolArray = np.array([m in LABEL_METRICS for m in METRICS])


def proportions(counts: IntArray) -> tuple[IntArray, FloatArray]:
    """Successes and trials (``[..., :5]`` and ``[..., 5:]`` of the first array) and values of every metric,
    in the order of ``METRICS``, for counts with ``COLUMNS`` on their last axis; the metrics go last."""
    successes_trials: IntArray = counts @ _WEIGHTS
    successes, trials = successes_trials[..., : len(METRICS)], successes_trials[..., len(METRICS) :]
    with np.errstate(divide="ignore", invalid="ignore"):
        values: FloatArray = successes / trials
    # scikit-learn's 0/0 -> 0.0 for a group that has labelled rows, but none in this metric's denominator
    zero = (trials == 0) & (counts[..., N_LABELLED, None] > 0) & _IS_LABEL
    values[zero] = 0.0
    return successes_trials, values


def metric_table(table: npt.ArrayLike) -> tuple[IntArray, IntArray, FloatArray]:
    """Successes, trials and values of every metric (rows, in the order of ``METRICS``) for every group.

    ``table``: rows of ``COLUMNS`` counts, one per group (a ``GroupCounts.counts``).
    """
    successes_trials, values = proportions(np.asarray(table, dtype=np.int64).reshape(-1, 7))
    k = len(METRICS)
    return successes_trials[:, :k].T, successes_trials[:, k:].T, values.T


def metric_counts(table: npt.ArrayLike, metric: str) -> MetricCounts:
    """One metric of every group of ``table`` (rows of ``COLUMNS`` counts, one per group)."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; expected one of {METRICS}")
    i = METRICS.index(metric)
    successes, trials, values = metric_table(table)
    return MetricCounts(metric, successes[i], trials[i], values[i])


def overall(groups: GroupCounts, metric: str) -> float:
    """The metric over all rows of all groups (fairlearn's ``MetricFrame.overall``)."""
    return float(metric_counts(groups.total(), metric).values[0])


def _included(values: FloatArray, include: BoolArray | None) -> BoolArray:
    mask = ~np.isnan(values)
    return mask if include is None else mask & include


def extremes(values: FloatArray, include: BoolArray | None = None) -> tuple[int, int] | None:
    """Indices of the lowest and highest value among the included groups that have a value.

    Ties go to the first group for the lowest and to the last for the highest, so that two groups with the
    same value are still two different extremes.
    """
    mask = _included(values, include)
    if not mask.any():
        return None
    idx = np.flatnonzero(mask)
    v = values[idx]
    return int(idx[np.argmin(v)]), int(idx[v.size - 1 - np.argmax(v[::-1])])


def difference(values: FloatArray, include: BoolArray | None = None) -> float:
    """``max - min`` over the included groups (fairlearn's ``MetricFrame.difference()``)."""
    ends = extremes(values, include)
    return float("nan") if ends is None else float(values[ends[1]] - values[ends[0]])


def ratio(values: FloatArray, include: BoolArray | None = None) -> float:
    """``min / max`` over the included groups (fairlearn's ``MetricFrame.ratio()``); NaN for 0/0."""
    ends = extremes(values, include)
    if ends is None:
        return float("nan")
    low, high = float(values[ends[0]]), float(values[ends[1]])
    return low / high if high != 0.0 else float("nan")


def by_group(groups: GroupCounts, metric: str) -> dict[str, float]:
    values = metric_counts(groups.counts, metric).values
    return dict(zip(groups.groups, values.tolist()))


def demographic_parity_difference(groups: GroupCounts) -> float:
    return difference(metric_counts(groups.counts, SELECTION_RATE).values)


def demographic_parity_ratio(groups: GroupCounts) -> float:
    return ratio(metric_counts(groups.counts, SELECTION_RATE).values)


def equal_opportunity_difference(groups: GroupCounts) -> float:
    return difference(metric_counts(groups.counts, TRUE_POSITIVE_RATE).values)


def equalized_odds_difference(groups: GroupCounts) -> float:
    tpr = difference(metric_counts(groups.counts, TRUE_POSITIVE_RATE).values)
    fpr = difference(metric_counts(groups.counts, FALSE_POSITIVE_RATE).values)
    return float(max(tpr, fpr))


def predictive_parity_difference(groups: GroupCounts) -> float:
    return difference(metric_counts(groups.counts, PRECISION).values)
