"""The numbers behind many windows' fairness at once, as numpy arrays (``evaluate_fairness_many``).

A *segment* is one attribute (or intersection) of one window. Each segment's groups are padded to the
batch's largest segment; the padding has no rows, so it has no value and is never eligible. Per-group
arrays are ``(segment, group, metric)``, per-metric arrays ``(segment, metric)``, the metrics in the order
of ``parity.METRICS``.

Why arrays: a sliding window closes ~10 windows per batch, each with a few attributes of a few groups, and
one window's per-group Python cost more than numpy's per-call overhead over all of them. Every number is
taken elementwise, by the same IEEE operations in the same order as the scalar formulas it replaces
(``intervals.wilson_bounds``, ``newcombe_bounds``, ``katz_bounds``), so a window's
numbers have the same bits whatever else is in the batch: ``+ - * /`` and the square root are correctly
rounded, and numpy's ``log`` and ``exp`` give an element of a contiguous array the same bits wherever it
sits (``katz_bounds`` relied on that already).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property, lru_cache

import numpy as np
import numpy.typing as npt

from detectors.fairness import intervals
from detectors.fairness.counts import COLUMNS, N_LABELLED, GroupCounts, N
from detectors.fairness.parity import LABEL_METRICS, METRICS, proportions

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

K = len(METRICS)
# label metrics need the group's label coverage to be eligible; the selection rate does not
_NOT_LABEL: BoolArray = np.array([m not in LABEL_METRICS for m in METRICS])


def _padded(tables: Sequence[GroupCounts], width: int) -> IntArray:
    """The tables' counts as ``(segment, group, COLUMNS)``, zero rows after each table's own groups."""
    sizes = [len(t.groups) for t in tables]
    rows = np.concatenate([t.counts for t in tables])
    if all(k == width for k in sizes):  # the usual case: every window saw the same groups
        return rows.reshape(len(tables), width, len(COLUMNS))
    shift, start = [], 0
    for s, k in enumerate(sizes):
        shift.append(s * width - start)
        start += k
    out = np.zeros((len(tables) * width, len(COLUMNS)), dtype=np.int64)
    out[np.repeat(shift, sizes) + np.arange(start)] = rows
    return out.reshape(len(tables), width, len(COLUMNS))


@lru_cache(maxsize=64)
def _pair_tables(most: int, confidence: float, bonferroni: bool) -> tuple[FloatArray, FloatArray]:
    """Per number of eligible groups ``k`` (the index, up to ``most``): the confidence of each pair,
    Bonferroni over ``k (k - 1) / 2`` pairs, and its z; NaN below two groups. Computed once per largest
    number of eligible groups (bounded by the rows over ``min_group_size``), looked up per metric."""
    pair = np.full(most + 1, np.nan)
    z = np.full(most + 1, np.nan)
    for k in range(2, most + 1):
        pair[k] = 1.0 - (1.0 - confidence) / (k * (k - 1) // 2) if bonferroni else confidence
        z[k] = intervals.z_scalar(float(pair[k]))
    pair.flags.writeable = z.flags.writeable = False
    return pair, z


class SegmentArrays:
    """Per group: each metric's successes and trials (``successes_trials[..., :K]`` and ``[..., K:]``),
    value and eligibility. Per metric: the eligible groups' lowest and highest (``ends[0]``, ``ends[1]``: the
    first lowest and the last highest, as ``parity.extremes``), their values, difference, the pair
    confidence and, at it, Newcombe's interval of the difference and Katz's of the ratio.

    Entries of a metric with fewer than two eligible groups (``testable`` False) are meaningless: readers
    mask them. The groups' own Wilson intervals and the overall values are only needed to build a result's
    objects, so they are computed on first use (``group_intervals``, ``overall``), for the whole batch.
    """

    def __init__(
        self,
        tables: Sequence[GroupCounts],
        *,
        min_group_size: int,
        min_label_coverage: float,
        confidence: float,
        bonferroni: bool,
    ) -> None:
        self.tables = tables
        self.confidence = confidence
        n_segments = len(tables)
        width = max([1, *(len(t.groups) for t in tables)])  # one column at least: argmin needs one
        self.counts = counts = _padded(tables, width)
        self.successes_trials, self.values = successes_trials, values = proportions(counts)

        covered = counts[:, :, N_LABELLED] >= min_label_coverage * counts[:, :, N]
        eligible = (successes_trials[:, :, K:] >= min_group_size) & (covered[:, :, None] | _NOT_LABEL)
        self.eligible: BoolArray = eligible
        n_eligible = eligible.sum(axis=1)
        self.testable: BoolArray = n_eligible >= 2
        # eligible values are finite (at least one trial); the others are masked out of the extremes
        ends = np.empty((2, n_segments, K), dtype=np.intp)
        np.where(eligible, values, np.inf).argmin(axis=1, out=ends[0])
        np.where(eligible, values, -np.inf)[:, ::-1].argmax(axis=1, out=ends[1])
        np.subtract(width - 1, ends[1], out=ends[1])
        self.ends: IntArray = ends
        # the ends' successes and trials, from their flat positions in successes_trials
        at = (ends + np.arange(0, n_segments * width, width)[:, None]) * (2 * K) + np.arange(K)
        flat = successes_trials.reshape(-1)
        x, n = flat[at], flat[at + K]
        pair, z_of = _pair_tables(int(n_eligible.max()), confidence, bonferroni)
        self.pair_confidence: FloatArray = pair[n_eligible]
        z = z_of[n_eligible]

        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # untestable: masked by readers
            p = x / n
            self.ends_value: FloatArray = p
            self.difference: FloatArray = p[1] - p[0]
            # Newcombe for highest - lowest: intervals.newcombe_bounds(x_hi, n_hi, x_lo, n_lo, z)
            w_low, w_high = intervals.wilson_arrays(x, n, z)
            below, above = p - w_low, w_high - p  # [lowest, highest] of each
            below *= below
            above *= above
            self.difference_low: FloatArray = self.difference - np.sqrt(below[1] + above[0])
            self.difference_high: FloatArray = self.difference + np.sqrt(above[1] + below[0])
            # Katz for lowest / highest: intervals.katz_bounds([(x_lo, n_lo, x_hi, n_hi)], [z]); eligible
            # groups have trials, so its undefined case (no trials) does not arise
            adjusted_x, adjusted_n = x + 0.5, n + 0.5
            rate = adjusted_x / adjusted_n
            inverse_x, inverse_n = 1.0 / adjusted_x, 1.0 / adjusted_n
            half = z * np.sqrt(inverse_x[0] - inverse_n[0] + inverse_x[1] - inverse_n[1])
            log_ratio = np.log(rate[0] / rate[1])
            self.ratio_low: FloatArray = np.exp(log_ratio - half)
            self.ratio_high: FloatArray = np.exp(log_ratio + half)

    @cached_property
    def group_intervals(self) -> tuple[FloatArray, FloatArray]:
        """Every group's Wilson interval of every metric at the configured confidence (NaN without trials)."""
        successes, trials = self.successes_trials[:, :, :K], self.successes_trials[:, :, K:]
        return intervals.wilson_arrays(successes, trials, intervals.z_scalar(self.confidence))

    @cached_property
    def overall(self) -> FloatArray:
        """Each metric over all rows of a segment: ``(segment, metric)``."""
        return proportions(self.counts.sum(axis=1))[1]  # padding rows are zeros
