"""Classification performance of one window from counts, kept as labels arrive (and are corrected).

``ClassificationCounts`` keeps, over the labelled rows of a window:

* a k×k confusion matrix (rows: true label, columns: predicted label) over a sorted label vocabulary that
  grows as labels are seen. Labels are strings; other values are ``str()``-ed (so ``1`` is ``"1"``, and
  ``1.0`` is ``"1.0"``: encode them consistently); a missing label (``None``, NaN) is an ``InputError``;
* for a binary model (``positive_label`` set) with a positive-class probability: the sum of per-row log
  losses and of their squares, and a histogram of the probability per true class over ``n_bins``
  equal-width bins [j / n_bins, (j + 1) / n_bins) and one more slot for exactly 1.0. Rows whose probability
  is NaN count in the confusion matrix only.

Metrics, equal to scikit-learn's on the same rows (the oracle tests check 1e-9):

===============  =========================================================  ==================================
metric           binary (``positive_label`` set)                            multiclass (no positive label)
===============  =========================================================  ==================================
``accuracy``     ``accuracy_score``                                         same
``precision``    ``precision_score(pos_label=p, zero_division=0)``          ``average="macro"``
``recall``       ``recall_score(pos_label=p, zero_division=0)``             ``average="macro"``
``f1``           ``f1_score(pos_label=p, zero_division=0)``                 ``average="macro"``
``roc_auc``      binned, see below                                          not kept (NaN)
``log_loss``     ``log_loss(y_true == p, proba)``                           not kept (NaN)
===============  =========================================================  ==================================

Binary metrics are one-vs-rest on the positive label: with two labels they are sklearn's ``pos_label``
metrics, with more they are those of ``y == p``. Macro averages run over the labels present in the window's
labels or predictions (sklearn's ``unique_labels``), so a label whose rows were all removed drops out.
``zero_division=0``: a precision with no predicted positives, or a recall with no actual positives, is 0.
A metric of an empty window is NaN.

Log loss clips probabilities to [eps, 1 - eps] with eps the float64 machine epsilon (2.2e-16), as
scikit-learn >= 1.5 does (older versions clipped at 1e-15).

Binned ROC AUC
--------------
AUC is the Mann–Whitney statistic: the share of (positive, negative) pairs where the positive scores higher,
ties counting half. From the histograms it is computed as if all scores within a bin were tied:

    AUC = sum_b pos[b] * (neg[b' < b] + neg[b] / 2) / (P * N)

A score s goes to slot ``floor(s * n_bins + 1e-9)`` (1.0 to slot ``n_bins``, its own), so a score that is a
multiple of the bin width (up to float rounding) starts its own bin: when every score is such a multiple, distinct
scores fall in distinct bins and the binned AUC *is* the exact AUC (equal to sklearn's ``roc_auc_score``
up to float rounding, 1e-12 in the tests). Otherwise the only error comes from pairs sharing a bin, which
count half instead of 0 or 1, so ``|binned - exact| <= auc_bin_error_bound(counts) =
sum_b pos[b] * neg[b] / (2 P N)``; on continuous scores the measured error is far below that bound (see
docs/performance.md for figures).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from detectors.base import InputError

COUNTS_VERSION = 1
DEFAULT_N_BINS = 1000
LOG_LOSS_EPS = float(np.finfo(np.float64).eps)
BIN_SNAP = 1e-9  # a score within 1e-9 bin widths below an edge belongs to the bin above
METRICS: tuple[str, ...] = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss")

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


def _frozen(arr: IntArray) -> IntArray:
    arr.flags.writeable = False
    return arr


def _label(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        raise InputError("labels must not be missing (None or NaN): pass only labelled rows")
    return value if isinstance(value, str) else str(value)


def _label_values(name: str, column: npt.ArrayLike) -> list[Any]:
    arr = np.asarray(column, dtype=object)
    if arr.ndim != 1:
        raise InputError(f"{name} must be one-dimensional, got shape {arr.shape}")
    out: list[Any] = arr.tolist()
    return out


def _proba(proba: npt.ArrayLike, n: int) -> FloatArray:
    try:
        arr = np.asarray(proba, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"proba must be numbers: {exc}") from None
    if arr.shape != (n,):
        raise InputError(f"proba must be one probability per row ({n}), got shape {arr.shape}")
    scored = arr[~np.isnan(arr)]
    if ((scored < 0.0) | (scored > 1.0)).any():
        raise InputError("proba must lie in [0, 1] (NaN for rows without a probability)")
    return arr


def score_bins(scores: FloatArray, n_bins: int) -> IntArray:
    """Slot of each score in [0, 1]: ``n_bins`` equal-width bins, then one for 1.0 (see the module notes)."""
    bins = np.floor(scores * n_bins + BIN_SNAP).astype(np.int64)
    out: IntArray = np.clip(bins, 0, n_bins)
    return out


@dataclass(frozen=True, eq=False)
class ClassificationCounts:
    """Counts of a window's labelled rows. Build with ``empty()``, then ``update`` / ``remove`` / ``merge``."""

    labels: tuple[str, ...] = ()
    confusion: IntArray | None = None  # (k, k), rows true, columns predicted; None: zeros
    positive_label: str | None = None
    n_bins: int = DEFAULT_N_BINS
    n_scored: int = 0  # labelled rows with a probability
    log_loss_sum: float = 0.0
    log_loss_sq_sum: float = 0.0
    score_hist: IntArray | None = None  # (2, n_bins + 1): row 0 negatives, row 1 positives; None: zeros

    def __post_init__(self) -> None:
        labels = tuple(self.labels)
        k = len(labels)
        if list(labels) != sorted(set(labels)) or not all(isinstance(x, str) for x in labels):
            raise InputError("labels must be distinct strings in sorted order")
        if self.positive_label is not None and not isinstance(self.positive_label, str):
            raise InputError(f"positive_label must be a string, got {self.positive_label!r}")
        if not isinstance(self.n_bins, int) or isinstance(self.n_bins, bool) or self.n_bins < 1:
            raise InputError(f"n_bins must be an integer >= 1, got {self.n_bins!r}")
        conf = np.zeros((k, k), np.int64) if self.confusion is None else np.array(self.confusion, np.int64)
        slots = self.n_bins + 1
        hist = (
            np.zeros((2, slots), np.int64) if self.score_hist is None else np.array(self.score_hist, np.int64)
        )
        if conf.shape != (k, k) or hist.shape != (2, slots):
            raise InputError(f"confusion must be {k}x{k} and score_hist 2x{slots}")
        if (conf < 0).any() or (hist < 0).any() or self.n_scored < 0:
            raise InputError("counts must be >= 0 (was a row removed that was never added?)")
        if int(hist.sum()) != self.n_scored or self.n_scored > int(conf.sum()):
            raise InputError("n_scored must equal the histogram total and not exceed the labelled rows")
        if self.positive_label is None and self.n_scored:
            raise InputError("probabilities are kept only for a binary model (positive_label set)")
        if not (math.isfinite(self.log_loss_sum) and math.isfinite(self.log_loss_sq_sum)):
            raise InputError("log loss sums must be finite")
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "confusion", _frozen(conf))
        object.__setattr__(self, "score_hist", _frozen(hist))

    @classmethod
    def empty(cls, positive_label: str | None = None, n_bins: int = DEFAULT_N_BINS) -> ClassificationCounts:
        """Counts of a binary model when ``positive_label`` is given, of a multiclass model otherwise."""
        return cls(positive_label=positive_label, n_bins=n_bins)

    @property
    def is_binary(self) -> bool:
        return self.positive_label is not None

    @property
    def matrix(self) -> IntArray:
        assert self.confusion is not None  # set by __post_init__
        return self.confusion

    @property
    def hist(self) -> IntArray:
        assert self.score_hist is not None  # set by __post_init__
        return self.score_hist

    @property
    def n_labelled(self) -> int:
        return int(self.matrix.sum())

    @property
    def n_correct(self) -> int:
        return int(np.trace(self.matrix))

    def one_vs_rest(self) -> tuple[int, int, int, int]:
        """``(tp, fp, tn, fn)`` for the positive label (binary models only)."""
        if self.positive_label is None:
            raise InputError("tp/fp/tn/fn need a positive_label")
        c = self.matrix
        if self.positive_label not in self.labels:
            return 0, 0, int(c.sum()), 0
        q = self.labels.index(self.positive_label)
        tp = int(c[q, q])
        fp = int(c[:, q].sum()) - tp
        fn = int(c[q, :].sum()) - tp
        return tp, fp, int(c.sum()) - tp - fp - fn, fn

    # -- changes -------------------------------------------------------------------------------------

    def update(
        self, y_true: npt.ArrayLike, y_pred: npt.ArrayLike, proba: npt.ArrayLike | None = None
    ) -> ClassificationCounts:
        """These counts plus the labelled rows given. O(rows); never mutates ``self`` or the inputs."""
        return self._apply(y_true, y_pred, proba, sign=1)

    def remove(
        self, y_true: npt.ArrayLike, y_pred: npt.ArrayLike, proba: npt.ArrayLike | None = None
    ) -> ClassificationCounts:
        """These counts less rows added before (a corrected label: remove the old row, update the new one).

        Raises ``InputError`` if a count would go below zero.
        """
        return self._apply(y_true, y_pred, proba, sign=-1)

    def merge(self, other: ClassificationCounts) -> ClassificationCounts:
        if (other.positive_label, other.n_bins) != (self.positive_label, self.n_bins):
            raise InputError("can merge only counts of the same positive_label and n_bins")
        labels = tuple(sorted(set(self.labels) | set(other.labels)))
        return ClassificationCounts(
            labels=labels,
            confusion=self._reindexed(labels) + other._reindexed(labels),
            positive_label=self.positive_label,
            n_bins=self.n_bins,
            n_scored=self.n_scored + other.n_scored,
            log_loss_sum=self.log_loss_sum + other.log_loss_sum,
            log_loss_sq_sum=self.log_loss_sq_sum + other.log_loss_sq_sum,
            score_hist=self.hist + other.hist,
        )

    def _reindexed(self, labels: tuple[str, ...]) -> IntArray:
        if labels == self.labels:
            return self.matrix.copy()
        pos = [labels.index(x) for x in self.labels]
        out = np.zeros((len(labels), len(labels)), np.int64)
        out[np.ix_(pos, pos)] = self.matrix
        return out

    def _apply(
        self, y_true: npt.ArrayLike, y_pred: npt.ArrayLike, proba: npt.ArrayLike | None, sign: int
    ) -> ClassificationCounts:
        true_values = _label_values("y_true", y_true)
        pred_values = _label_values("y_pred", y_pred)
        n = len(true_values)
        if len(pred_values) != n:
            raise InputError(f"y_true has {n} rows, y_pred {len(pred_values)}")
        # hashing the Python objects: one str() per distinct value, not per row
        distinct = {v: _label(v) for v in dict.fromkeys(true_values + pred_values)}
        labels = tuple(sorted(set(self.labels) | set(distinct.values())))
        index = {label: i for i, label in enumerate(labels)}
        code_of = {v: index[label] for v, label in distinct.items()}
        k = len(labels)
        t = np.fromiter(map(code_of.__getitem__, true_values), dtype=np.int64, count=n)
        p = np.fromiter(map(code_of.__getitem__, pred_values), dtype=np.int64, count=n)
        delta = np.bincount(t * k + p, minlength=k * k).reshape(k, k)
        confusion = self._reindexed(labels) + sign * delta

        n_scored, ll_sum, ll_sq, hist = self.n_scored, self.log_loss_sum, self.log_loss_sq_sum, self.hist
        if proba is not None:
            if self.positive_label is None:
                raise InputError(
                    "proba is kept only for a binary model: build the counts with a positive_label"
                )
            prob = _proba(proba, n)
            scored = ~np.isnan(prob)
            s = prob[scored]
            is_pos = t[scored] == index.get(self.positive_label, -1)
            clipped = np.clip(np.where(is_pos, s, 1.0 - s), LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS)
            losses = -np.log(clipped)
            n_scored += sign * int(s.size)
            ll_sum += sign * float(losses.sum())
            ll_sq += sign * float((losses * losses).sum())
            if n_scored == 0:  # all scored rows gone: no float residue
                ll_sum = ll_sq = 0.0
            b = score_bins(s, self.n_bins)
            slots = self.n_bins + 1
            hist = hist + sign * np.bincount(is_pos * slots + b, minlength=2 * slots).reshape(2, slots)
        return ClassificationCounts(
            labels=labels,
            confusion=confusion,
            positive_label=self.positive_label,
            n_bins=self.n_bins,
            n_scored=n_scored,
            log_loss_sum=ll_sum,
            log_loss_sq_sum=max(ll_sq, 0.0),
            score_hist=hist,
        )

    # -- JSON ----------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        nonzero = np.flatnonzero(self.hist.sum(axis=0))
        return {
            "version": COUNTS_VERSION,
            "labels": list(self.labels),
            "confusion": self.matrix.tolist(),
            "positive_label": self.positive_label,
            "n_bins": self.n_bins,
            "n_scored": self.n_scored,
            "log_loss_sum": self.log_loss_sum,
            "log_loss_sq_sum": self.log_loss_sq_sum,
            # sparse: [bin, negatives, positives] for the bins that hold a score
            "score_bins": [[int(b), int(self.hist[0, b]), int(self.hist[1, b])] for b in nonzero],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ClassificationCounts:
        if data.get("version") != COUNTS_VERSION:
            raise InputError(f"unsupported classification counts (version {data.get('version')!r})")
        n_bins = int(data["n_bins"])
        labels = tuple(data["labels"])
        hist = np.zeros((2, n_bins + 1), np.int64)
        for b, neg, pos in data["score_bins"]:
            if not 0 <= int(b) <= n_bins:
                raise InputError(f"score bin {b!r} outside 0..{n_bins}")
            hist[:, int(b)] = (int(neg), int(pos))
        return cls(
            labels=labels,
            confusion=np.array(data["confusion"], np.int64).reshape(len(labels), len(labels)),
            positive_label=data["positive_label"],
            n_bins=n_bins,
            n_scored=int(data["n_scored"]),
            log_loss_sum=float(data["log_loss_sum"]),
            log_loss_sq_sum=float(data["log_loss_sq_sum"]),
            score_hist=hist,
        )


# -- metrics ---------------------------------------------------------------------------------------------


def _ratio(num: float, den: float) -> float:
    return num / den if den else 0.0  # zero_division=0


def _present(c: IntArray) -> npt.NDArray[np.bool_]:
    present: npt.NDArray[np.bool_] = (c.sum(axis=0) + c.sum(axis=1)) > 0
    return present


def accuracy(counts: ClassificationCounts) -> float:
    n = counts.n_labelled
    return counts.n_correct / n if n else math.nan


def _macro(counts: ClassificationCounts, kind: str) -> float:
    c = counts.matrix
    present = _present(c)
    if not present.any():
        return math.nan
    tp = np.diag(c).astype(np.float64)
    den = {"precision": c.sum(axis=0), "recall": c.sum(axis=1), "f1": c.sum(axis=0) + c.sum(axis=1)}[kind]
    num = 2.0 * tp if kind == "f1" else tp
    per_label = np.divide(num, den, out=np.zeros_like(tp), where=den > 0)
    return float(per_label[present].mean())


def precision(counts: ClassificationCounts) -> float:
    if counts.n_labelled == 0:
        return math.nan
    if counts.is_binary:
        tp, fp, _, _ = counts.one_vs_rest()
        return _ratio(tp, tp + fp)
    return _macro(counts, "precision")


def recall(counts: ClassificationCounts) -> float:
    if counts.n_labelled == 0:
        return math.nan
    if counts.is_binary:
        tp, _, _, fn = counts.one_vs_rest()
        return _ratio(tp, tp + fn)
    return _macro(counts, "recall")


def f1(counts: ClassificationCounts) -> float:
    if counts.n_labelled == 0:
        return math.nan
    if counts.is_binary:
        tp, fp, _, fn = counts.one_vs_rest()
        return _ratio(2 * tp, 2 * tp + fp + fn)
    return _macro(counts, "f1")


def log_loss(counts: ClassificationCounts) -> float:
    return counts.log_loss_sum / counts.n_scored if counts.n_scored else math.nan


def _auc_parts(counts: ClassificationCounts) -> tuple[FloatArray, FloatArray, FloatArray, float, float]:
    neg = counts.hist[0].astype(np.float64)
    pos = counts.hist[1].astype(np.float64)
    neg_below = np.cumsum(neg) - neg
    return neg, pos, neg_below, float(neg.sum()), float(pos.sum())


def roc_auc(counts: ClassificationCounts) -> float:
    """Binned ROC AUC; NaN without both a scored positive and a scored negative."""
    neg, pos, neg_below, n_neg, n_pos = _auc_parts(counts)
    if n_neg == 0 or n_pos == 0:
        return math.nan
    # twice the Mann-Whitney U is an integer: exact in float64 up to 2**53
    twice_u = float(np.dot(pos, 2.0 * neg_below + neg))
    return twice_u / (2.0 * n_pos * n_neg)


def auc_bin_error_bound(counts: ClassificationCounts) -> float:
    """Largest possible ``|binned AUC - exact AUC|``: half the share of pairs that share a bin."""
    neg, pos, _, n_neg, n_pos = _auc_parts(counts)
    if n_neg == 0 or n_pos == 0:
        return math.nan
    return float(np.dot(pos, neg)) / (2.0 * n_pos * n_neg)


def classification_metrics(counts: ClassificationCounts) -> dict[str, float]:
    """Every metric of ``METRICS`` (NaN where undefined: an empty window, AUC without both classes ...)."""
    return {
        "accuracy": accuracy(counts),
        "precision": precision(counts),
        "recall": recall(counts),
        "f1": f1(counts),
        "roc_auc": roc_auc(counts) if counts.is_binary else math.nan,
        "log_loss": log_loss(counts) if counts.is_binary else math.nan,
    }


# -- sampling variances, for the degradation test --------------------------------------------------------


def proportion(counts: ClassificationCounts, metric: str) -> tuple[int, int] | None:
    """``(successes, trials)`` when the metric is a plain proportion of rows, else None.

    accuracy is correct / labelled; binary precision is tp / predicted positive, binary recall tp / actual
    positive. Macro averages and F1 are not proportions.
    """
    if metric == "accuracy":
        return counts.n_correct, counts.n_labelled
    if counts.is_binary and metric in ("precision", "recall"):
        tp, fp, _, fn = counts.one_vs_rest()
        return tp, tp + (fp if metric == "precision" else fn)
    return None


def _gradient(counts: ClassificationCounts, metric: str) -> FloatArray:
    """d metric / d count of each confusion cell (zero where a zero_division branch holds the metric)."""
    c = counts.matrix.astype(np.float64)
    k = c.shape[0]
    eye = np.eye(k)
    if metric == "accuracy":
        n = c.sum()
        out: FloatArray = (eye - np.trace(c) / n) / n
        return out
    col, row, tp = c.sum(axis=0), c.sum(axis=1), np.diag(c)
    if counts.is_binary:
        if counts.positive_label not in counts.labels:
            return np.zeros((k, k))
        q = counts.labels.index(counts.positive_label)
        chosen = np.zeros(k, dtype=bool)
        chosen[q] = True
    else:
        chosen = _present(counts.matrix)
    grad = np.zeros((k, k))
    for q in np.flatnonzero(chosen).tolist():
        if metric == "precision" and col[q] > 0:
            grad[:, q] += (eye[:, q] - tp[q] / col[q]) / col[q]
        elif metric == "recall" and row[q] > 0:
            grad[q, :] += (eye[q, :] - tp[q] / row[q]) / row[q]
        elif metric == "f1" and row[q] + col[q] > 0:
            d = row[q] + col[q]
            f = 2.0 * tp[q] / d
            grad[q, q] += 2.0 / d
            grad[q, :] -= f / d
            grad[:, q] -= f / d
    return grad / max(int(chosen.sum()), 1)


def metric_variance(counts: ClassificationCounts, metric: str) -> float:
    """Large-sample variance of a metric of these counts (NaN where undefined).

    Confusion-matrix metrics: the delta method under a multinomial on the cells. The metrics are ratios of
    counts (homogeneous of degree 0), so the variance is ``sum_ij C_ij * (d metric / d C_ij)**2``; for
    accuracy that is ``a (1 - a) / n``. ROC AUC: DeLong's variance with the binned placements. Log loss:
    the sample variance of per-row losses over the rows.
    """
    if metric in ("accuracy", "precision", "recall", "f1"):
        if counts.n_labelled == 0:
            return math.nan
        g = _gradient(counts, metric)
        return float((counts.matrix * g * g).sum())
    if metric == "log_loss":
        n = counts.n_scored
        if n < 2:
            return math.nan
        mean = counts.log_loss_sum / n
        return max(counts.log_loss_sq_sum / n - mean * mean, 0.0) * n / (n - 1) / n
    if metric == "roc_auc":
        neg, pos, neg_below, n_neg, n_pos = _auc_parts(counts)
        if n_neg < 2 or n_pos < 2:
            return math.nan
        auc = roc_auc(counts)
        v10 = (neg_below + 0.5 * neg) / n_neg  # per positive in bin b: share of negatives it beats
        pos_above = n_pos - np.cumsum(pos)
        v01 = (pos_above + 0.5 * pos) / n_pos  # per negative in bin b: share of positives above it
        s10 = float(np.dot(pos, (v10 - auc) ** 2)) / (n_pos - 1)
        s01 = float(np.dot(neg, (v01 - auc) ** 2)) / (n_neg - 1)
        return s10 / n_pos + s01 / n_neg
    raise InputError(f"unknown classification metric {metric!r}")
