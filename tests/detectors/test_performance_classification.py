"""Classification counts: metrics equal to scikit-learn's, binned AUC, corrections, merges, JSON."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from detectors.base import InputError
from detectors.performance import (
    ClassificationCounts,
    accuracy,
    auc_bin_error_bound,
    classification_metrics,
    f1,
    log_loss,
    precision,
    recall,
    roc_auc,
)
from detectors.performance.classification import LOG_LOSS_EPS, metric_variance

LABELS = np.array(["cat", "dog", "eel", "fox"], dtype=object)


def _binary(
    rng: np.random.Generator, n: int, auc_shift: float = 1.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y = rng.choice(np.array(["no", "yes"], dtype=object), size=n, p=[0.7, 0.3])
    logit = rng.normal(0.0, 1.0, n) + auc_shift * (y == "yes") - 0.5
    proba = 1.0 / (1.0 + np.exp(-logit))
    pred = np.where(proba > 0.5, "yes", "no").astype(object)
    return y, pred, proba


def _json(data: dict[str, Any]) -> Any:
    return json.loads(json.dumps(data, allow_nan=False))


@pytest.mark.parametrize("seed", range(5))
def test_binary_metrics_equal_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y, pred, proba = _binary(rng, 3000)
    counts = ClassificationCounts.empty("yes").update(y, pred, proba)
    yb = (y == "yes").astype(int)
    assert counts.n_labelled == 3000
    assert accuracy(counts) == pytest.approx(skm.accuracy_score(y, pred), abs=1e-9)
    assert precision(counts) == pytest.approx(
        skm.precision_score(y, pred, pos_label="yes", zero_division=0), abs=1e-9
    )
    assert recall(counts) == pytest.approx(
        skm.recall_score(y, pred, pos_label="yes", zero_division=0), abs=1e-9
    )
    assert f1(counts) == pytest.approx(skm.f1_score(y, pred, pos_label="yes", zero_division=0), abs=1e-9)
    assert log_loss(counts) == pytest.approx(skm.log_loss(yb, y_proba=proba), abs=1e-9)
    tp, fp, tn, fn = counts.one_vs_rest()
    assert [[tn, fp], [fn, tp]] == skm.confusion_matrix(y, pred, labels=["no", "yes"]).tolist()


def test_log_loss_clips_like_sklearn_at_machine_epsilon() -> None:
    y = np.array(["yes", "no", "yes", "no"], dtype=object)
    proba = np.array([0.0, 1.0, 1.0, 0.0])  # two certain mistakes, two certain hits
    counts = ClassificationCounts.empty("yes").update(y, y, proba)
    assert log_loss(counts) == pytest.approx(skm.log_loss((y == "yes").astype(int), y_proba=proba), abs=1e-9)
    assert log_loss(counts) == pytest.approx(-math.log(LOG_LOSS_EPS) / 2, rel=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_multiclass_macro_metrics_equal_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 2000
    y = rng.choice(LABELS, size=n, p=[0.4, 0.3, 0.2, 0.1])
    # "fox" is never predicted (zero_division=0), "gnu" is predicted but never true
    pred = np.where(
        rng.random(n) < 0.6, y, rng.choice(np.array(["cat", "dog", "eel", "gnu"], dtype=object), n)
    )
    pred[pred == "fox"] = "cat"
    counts = ClassificationCounts.empty().update(y, pred)
    assert accuracy(counts) == pytest.approx(skm.accuracy_score(y, pred), abs=1e-9)
    for ours, theirs in ((precision, skm.precision_score), (recall, skm.recall_score), (f1, skm.f1_score)):
        assert ours(counts) == pytest.approx(theirs(y, pred, average="macro", zero_division=0), abs=1e-9)
    assert counts.labels == ("cat", "dog", "eel", "fox", "gnu")
    assert counts.matrix.tolist() == skm.confusion_matrix(y, pred, labels=list(counts.labels)).tolist()
    assert math.isnan(classification_metrics(counts)["roc_auc"])


def test_binary_with_more_labels_is_one_vs_rest() -> None:
    rng = np.random.default_rng(7)
    y = rng.choice(LABELS, size=500)
    pred = rng.choice(LABELS, size=500)
    counts = ClassificationCounts.empty("dog").update(y, pred)
    yb, pb = y == "dog", pred == "dog"
    assert precision(counts) == pytest.approx(skm.precision_score(yb, pb, zero_division=0), abs=1e-12)
    assert recall(counts) == pytest.approx(skm.recall_score(yb, pb, zero_division=0), abs=1e-12)
    assert f1(counts) == pytest.approx(skm.f1_score(yb, pb, zero_division=0), abs=1e-12)


def test_zero_division_gives_zero_and_empty_window_gives_nan() -> None:
    y = np.array(["no", "no", "yes"], dtype=object)
    pred = np.array(["no", "no", "no"], dtype=object)
    counts = ClassificationCounts.empty("yes").update(y, pred)
    assert precision(counts) == 0.0 == skm.precision_score(y, pred, pos_label="yes", zero_division=0)
    assert f1(counts) == 0.0
    empty = ClassificationCounts.empty("yes")
    assert all(math.isnan(v) for v in classification_metrics(empty).values())


def test_non_string_labels_are_strings() -> None:
    counts = ClassificationCounts.empty("1").update(np.array([0, 1, 1]), np.array([0, 1, 0]))
    assert counts.labels == ("0", "1")
    assert counts.one_vs_rest() == (1, 0, 1, 1)


@pytest.mark.parametrize("n", [1000, 10000])
@pytest.mark.parametrize("seed", range(4))
def test_binned_auc_within_its_bound_and_close_to_sklearn(n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    y, pred, proba = _binary(rng, n)
    counts = ClassificationCounts.empty("yes").update(y, pred, proba)
    exact = skm.roc_auc_score(y == "yes", proba)
    err = abs(roc_auc(counts) - exact)
    assert err <= auc_bin_error_bound(counts) + 1e-15
    # measured on these scores (logistic of a normal, 1000 bins): max 1.8e-4 at 1,000 rows, 2e-5 at 10,000
    assert err < (5e-4 if n == 1000 else 5e-5)


@pytest.mark.parametrize("seed", range(3))
def test_binned_auc_is_exact_when_scores_are_multiples_of_the_bin_width(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y, pred, proba = _binary(rng, 4000)
    for n_bins in (1000, 20):
        scores = np.round(proba * n_bins) / n_bins  # includes ties, 0.0 and 1.0
        scores[:3] = (0.0, 1.0, 1.0)
        counts = ClassificationCounts.empty("yes", n_bins=n_bins).update(y, pred, scores)
        assert roc_auc(counts) == pytest.approx(skm.roc_auc_score(y == "yes", scores), abs=1e-12)


def test_auc_is_nan_without_both_classes() -> None:
    y = np.array(["yes"] * 5, dtype=object)
    counts = ClassificationCounts.empty("yes").update(y, y, np.linspace(0, 1, 5))
    assert math.isnan(roc_auc(counts))
    assert math.isnan(auc_bin_error_bound(counts))


def test_nan_proba_rows_count_in_confusion_only() -> None:
    y = np.array(["yes", "no", "yes", "no"], dtype=object)
    proba = np.array([0.9, np.nan, 0.8, 0.3])
    counts = ClassificationCounts.empty("yes").update(y, y, proba)
    assert counts.n_labelled == 4 and counts.n_scored == 3
    keep = ~np.isnan(proba)
    assert log_loss(counts) == pytest.approx(skm.log_loss(y[keep] == "yes", y_proba=proba[keep]), abs=1e-12)


def test_remove_undoes_update_and_corrects_a_label() -> None:
    rng = np.random.default_rng(11)
    y, pred, proba = _binary(rng, 1000)
    base = ClassificationCounts.empty("yes").update(y[:600], pred[:600], proba[:600])
    both = base.update(y[600:], pred[600:], proba[600:])
    undone = both.remove(y[600:], pred[600:], proba[600:])
    assert undone.labels == base.labels
    assert np.array_equal(undone.matrix, base.matrix)
    assert np.array_equal(undone.hist, base.hist)
    assert undone.log_loss_sum == pytest.approx(base.log_loss_sum, rel=1e-12)

    # label of row 0 corrected: remove the old row, add the corrected one
    fixed_y = y.copy()
    fixed_y[0] = "no" if y[0] == "yes" else "yes"
    corrected = both.remove(y[:1], pred[:1], proba[:1]).update(fixed_y[:1], pred[:1], proba[:1])
    direct = ClassificationCounts.empty("yes").update(fixed_y, pred, proba)
    assert np.array_equal(corrected.matrix, direct.matrix)
    assert np.array_equal(corrected.hist, direct.hist)
    for name, value in classification_metrics(corrected).items():
        assert value == pytest.approx(classification_metrics(direct)[name], abs=1e-12)


def test_removing_what_was_never_added_raises() -> None:
    counts = ClassificationCounts.empty("yes").update(["yes"], ["yes"])
    with pytest.raises(InputError):
        counts.remove(["no"], ["yes"])


def test_removed_label_drops_out_of_macro_average() -> None:
    y = np.array(["a", "b", "c"], dtype=object)
    pred = np.array(["a", "b", "b"], dtype=object)
    counts = ClassificationCounts.empty().update(y, pred).remove(["c"], ["b"])
    assert counts.labels == ("a", "b", "c")
    assert precision(counts) == pytest.approx(
        skm.precision_score(y[:2], pred[:2], average="macro"), abs=1e-12
    )


def test_merge_equals_update_on_all_rows() -> None:
    rng = np.random.default_rng(5)
    y, pred, proba = _binary(rng, 900)
    a = ClassificationCounts.empty("yes").update(y[:400], pred[:400], proba[:400])
    b = ClassificationCounts.empty("yes").update(y[400:], pred[400:], proba[400:])
    whole = ClassificationCounts.empty("yes").update(y, pred, proba)
    merged = a.merge(b)
    assert np.array_equal(merged.matrix, whole.matrix) and np.array_equal(merged.hist, whole.hist)
    assert merged.log_loss_sum == pytest.approx(whole.log_loss_sum, rel=1e-12)
    with pytest.raises(InputError):
        a.merge(ClassificationCounts.empty("no"))


def test_json_round_trip_is_identical() -> None:
    rng = np.random.default_rng(2)
    y, pred, proba = _binary(rng, 500)
    counts = ClassificationCounts.empty("yes", n_bins=100).update(y, pred, proba)
    back = ClassificationCounts.from_dict(_json(counts.to_dict()))
    assert back.to_dict() == counts.to_dict()
    assert classification_metrics(back) == classification_metrics(counts)
    multi = ClassificationCounts.empty().update(LABELS, LABELS[::-1])
    assert ClassificationCounts.from_dict(_json(multi.to_dict())).to_dict() == multi.to_dict()


def test_update_leaves_inputs_and_self_unchanged() -> None:
    y = np.array(["yes", "no"], dtype=object)
    proba = np.array([0.7, 0.2])
    counts = ClassificationCounts.empty("yes")
    before = counts.to_dict()
    counts.update(y, y, proba)
    assert counts.to_dict() == before
    assert y.tolist() == ["yes", "no"] and proba.tolist() == [0.7, 0.2]
    with pytest.raises(ValueError):
        counts.matrix[0:1] = 1


@pytest.mark.parametrize(
    ("y_true", "y_pred", "proba"),
    [
        (["a", None], ["a", "a"], None),
        (["a", "b"], ["a"], None),
        (["yes", "no"], ["yes", "no"], [0.5, 1.5]),
        (["yes", "no"], ["yes", "no"], [0.5]),
        ([["a"]], [["a"]], None),
    ],
)
def test_bad_input_raises(y_true: Any, y_pred: Any, proba: Any) -> None:
    with pytest.raises(InputError):
        ClassificationCounts.empty("yes").update(y_true, y_pred, proba)


def test_proba_needs_a_positive_label() -> None:
    with pytest.raises(InputError):
        ClassificationCounts.empty().update(["a"], ["a"], [0.5])


def test_accuracy_variance_is_the_binomial_one() -> None:
    counts = ClassificationCounts.empty().update(["a"] * 80 + ["b"] * 20, ["a"] * 70 + ["b"] * 30)
    a = accuracy(counts)
    assert metric_variance(counts, "accuracy") == pytest.approx(a * (1 - a) / 100, rel=1e-12)


def test_delta_method_variance_matches_simulation() -> None:
    """The F1 and macro variances are the spread of the metric over repeated windows (within 15%)."""
    rng = np.random.default_rng(9)
    values: dict[str, list[float]] = {"f1": [], "precision": [], "recall": []}
    variances: dict[str, list[float]] = {m: [] for m in values}
    for _ in range(400):
        y = rng.choice(LABELS, size=1000, p=[0.4, 0.3, 0.2, 0.1])
        pred = np.where(rng.random(1000) < 0.7, y, rng.choice(LABELS, 1000))
        counts = ClassificationCounts.empty().update(y, pred)
        for m, seen in values.items():
            seen.append(classification_metrics(counts)[m])
            variances[m].append(metric_variance(counts, m))
    for m, seen in values.items():
        assert np.var(seen) == pytest.approx(np.mean(variances[m]), rel=0.15)


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(
        st.tuples(st.sampled_from(["a", "b", "c"]), st.sampled_from(["a", "b", "c"]), st.floats(0.0, 1.0)),
        min_size=1,
        max_size=60,
    ),
    seed=st.integers(0, 2**32 - 1),
)
def test_row_order_does_not_change_counts(rows: list[tuple[str, str, float]], seed: int) -> None:
    y = np.array([r[0] for r in rows], dtype=object)
    pred = np.array([r[1] for r in rows], dtype=object)
    proba = np.array([r[2] for r in rows])
    perm = np.random.default_rng(seed).permutation(len(rows))
    a = ClassificationCounts.empty("a").update(y, pred, proba)
    b = ClassificationCounts.empty("a").update(y[perm], pred[perm], proba[perm])
    assert np.array_equal(a.matrix, b.matrix) and np.array_equal(a.hist, b.hist) and a.labels == b.labels
    assert a.log_loss_sum == pytest.approx(b.log_loss_sum, rel=1e-12, abs=1e-12)
    if len(set(y == "a")) == 2:
        exact = skm.roc_auc_score(y == "a", proba)
        assert abs(roc_auc(a) - exact) <= auc_bin_error_bound(a) + 1e-12
