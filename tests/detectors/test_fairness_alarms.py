"""Statistical behaviour: planted biases alert and name the group; noise and small groups do not."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.fairness import FairnessConfig, FairnessCounts, FairnessStatus, evaluate_fairness

pytestmark = pytest.mark.filterwarnings("error")  # the detector itself must not warn (no 0/0 warnings)


def _two_groups(
    rng: np.random.Generator, n_per_group: int, rate_a: float, rate_b: float
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    g = np.repeat(np.array(["a", "b"], dtype=object), n_per_group)
    rate = np.where(g == "a", rate_a, rate_b)
    return {"group": g}, (rng.random(g.size) < rate).astype(np.int64)


def test_planted_selection_bias_alerts_naming_group_and_metric() -> None:
    config = FairnessConfig(attributes=("group",))
    groups, y_pred = _two_groups(np.random.default_rng(1), 1000, 0.6, 0.3)  # 2,000 rows
    result = evaluate_fairness(config.empty_counts().update(groups, y_pred), config)

    assert result.status == FairnessStatus.ALERT
    by_metric = {a.metric: a for a in result.alerts}
    assert set(by_metric) == {"demographic_parity_difference", "demographic_parity_ratio"}
    dp = by_metric["demographic_parity_difference"]
    assert (dp.attribute, dp.based_on, dp.worst, dp.best) == ("group", "selection_rate", "b", "a")
    assert dp.interval[0] > 0.1 and dp.interval[0] <= dp.value <= dp.interval[1]
    assert dp.value == pytest.approx(0.3, abs=0.06)
    ratio = by_metric["demographic_parity_ratio"]
    assert ratio.worst == "b" and ratio.interval[1] < 0.8 and ratio.value == pytest.approx(0.5, abs=0.1)
    assert result.to_dict()["alerts"][0]["groups"] == {"worst": "b", "best": "a"}


def test_no_bias_alerts_in_at_most_two_of_200_windows() -> None:
    config = FairnessConfig(attributes=("group",))
    rng = np.random.default_rng(20240601)
    alerting = 0
    for _ in range(200):
        groups, y_pred = _two_groups(rng, 2000, 0.5, 0.5)
        y_true = (rng.random(y_pred.size) < 0.5).astype(np.float64)
        y_true[rng.random(y_pred.size) < 0.2] = np.nan
        result = evaluate_fairness(config.empty_counts().update(groups, y_pred, y_true), config)
        assert result.status != FairnessStatus.INSUFFICIENT_DATA
        alerting += result.status == FairnessStatus.ALERT
    assert alerting <= 2


def test_a_tiny_group_with_an_extreme_rate_never_alerts() -> None:
    config = FairnessConfig(attributes=("group",))
    rng = np.random.default_rng(3)
    for _ in range(50):
        g = np.array(["a"] * 1000 + ["b"] * 1000 + ["tiny"] * 5, dtype=object)
        y_pred = (rng.random(g.size) < 0.5).astype(np.int64)
        y_pred[g == "tiny"] = 1
        y_true = y_pred.astype(np.float64)  # tiny's TPR and precision are 1.0 as well
        result = evaluate_fairness(config.empty_counts().update({"group": g}, y_pred, y_true), config)
        assert all("tiny" not in (a.worst, a.best) for a in result.alerts)
        tiny = result.attributes["group"].metrics["selection_rate"].by_group["tiny"]
        assert tiny.value == 1.0 and tiny.n == 5 and not tiny.eligible and tiny.interval is not None
        assert "tiny" not in result.attributes["group"].eligible


def test_the_same_extreme_group_alerts_once_it_is_large_enough() -> None:
    config = FairnessConfig(attributes=("group",))
    rng = np.random.default_rng(4)
    g = np.array(["a"] * 1000 + ["b"] * 1000 + ["c"] * 150, dtype=object)
    y_pred = (rng.random(g.size) < 0.5).astype(np.int64)
    y_pred[g == "c"] = 1
    result = evaluate_fairness(config.empty_counts().update({"group": g}, y_pred), config)
    dp = next(a for a in result.alerts if a.metric == "demographic_parity_difference")
    assert dp.best == "c"


def test_a_gap_at_the_threshold_rarely_alerts_and_one_beyond_it_needs_rows() -> None:
    """The interval must clear the threshold: a true gap of exactly 0.1 alerts in about 2.5% of windows (one
    side of a 95% interval); a true gap of 0.15 is found in most windows of 5,000 rows per group, and in few
    of 150."""
    config = FairnessConfig(attributes=("group",))
    rng = np.random.default_rng(8)

    def alerts(n: int, rate_b: float, windows: int) -> int:
        results = (evaluate_fairness(config.empty_counts().update(*_two_groups(rng, n, 0.55, rate_b)), config)
                   for _ in range(windows))  # fmt: skip
        return sum(r.status == FairnessStatus.ALERT for r in results)

    assert alerts(5000, 0.45, 200) <= 12  # expected ~5; comparing the point estimate would give ~100
    assert alerts(5000, 0.40, 20) >= 18
    assert alerts(150, 0.40, 20) <= 10


def _labelled_world(
    rng: np.random.Generator, n: int, tpr: dict[str, float], fpr: dict[str, float], coverage: float
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    g = np.repeat(np.array(list(tpr), dtype=object), n)
    y = (rng.random(g.size) < 0.5).astype(np.float64)
    p_pos = np.where(y == 1, [tpr[v] for v in g], [fpr[v] for v in g])
    y_pred = (rng.random(g.size) < p_pos).astype(np.int64)
    y[rng.random(g.size) >= coverage] = np.nan
    return {"group": g}, y_pred, y


def test_planted_true_positive_rate_gap_alerts_only_with_enough_labels() -> None:
    config = FairnessConfig(attributes=("group",))
    rng = np.random.default_rng(12)
    world = _labelled_world(rng, 3000, tpr={"a": 0.8, "b": 0.55}, fpr={"a": 0.2, "b": 0.2}, coverage=0.8)
    result = evaluate_fairness(config.empty_counts().update(*world), config)
    metrics = {a.metric: a for a in result.alerts}
    assert {"equal_opportunity_difference", "equalized_odds_difference"} <= set(metrics)
    eo = metrics["equal_opportunity_difference"]
    assert (eo.based_on, eo.worst, eo.best) == ("true_positive_rate", "b", "a")
    assert metrics["equalized_odds_difference"].based_on == "true_positive_rate"
    coverage = result.to_dict()["attributes"]["group"]["label_coverage"]
    assert coverage == pytest.approx(0.8, abs=0.03)

    sparse = _labelled_world(rng, 3000, tpr={"a": 0.8, "b": 0.55}, fpr={"a": 0.2, "b": 0.2}, coverage=0.3)
    attr = evaluate_fairness(config.empty_counts().update(*sparse), config).attributes["group"]
    assert attr.gaps["equal_opportunity_difference"].status == FairnessStatus.INSUFFICIENT_DATA
    assert attr.metrics["true_positive_rate"].by_group["b"].value is not None  # still reported


def test_false_positive_rate_gap_alerts_through_equalized_odds() -> None:
    config = FairnessConfig(attributes=("group",))
    world = _labelled_world(
        np.random.default_rng(13), 3000, tpr={"a": 0.7, "b": 0.7}, fpr={"a": 0.1, "b": 0.3}, coverage=1.0
    )
    result = evaluate_fairness(config.empty_counts().update(*world), config)
    eodds = next(a for a in result.alerts if a.metric == "equalized_odds_difference")
    # the higher false positive rate is the worse one
    assert (eodds.based_on, eodds.worst, eodds.best) == ("false_positive_rate", "b", "a")
    assert not any(a.metric == "equal_opportunity_difference" for a in result.alerts)


def test_intersection_reveals_a_bias_its_attributes_hide() -> None:
    """Selection is biased against (f, y) and (m, x) only: each attribute alone is balanced."""
    rng = np.random.default_rng(21)
    n = 8000
    sex = rng.choice(np.array(["f", "m"], dtype=object), size=n)
    race = rng.choice(np.array(["x", "y"], dtype=object), size=n)
    disadvantaged = (sex == "f") == (race == "y")
    y_pred = (rng.random(n) < np.where(disadvantaged, 0.3, 0.6)).astype(np.int64)
    config = FairnessConfig(attributes=("sex", "race"), intersections=(("sex", "race"),))
    result = evaluate_fairness(config.empty_counts().update({"sex": sex, "race": race}, y_pred), config)
    assert {a.attribute for a in result.alerts} == {"sex&race"}
    dp = next(a for a in result.alerts if a.metric == "demographic_parity_difference")
    assert dp.worst in {"f&y", "m&x"} and dp.best in {"f&x", "m&y"}


def test_many_equal_groups_do_not_alert_thanks_to_the_pairwise_correction() -> None:
    """20 groups of 120 at the same rate: the extreme pair is chosen by noise, the correction accounts for it."""
    rng = np.random.default_rng(33)
    config = FairnessConfig(attributes=("g",), dp_difference_threshold=0.05)
    labels = np.array([f"g{i:02d}" for i in range(20)], dtype=object)
    corrected = uncorrected = 0
    for _ in range(100):
        g = np.repeat(labels, 120)
        counts = FairnessCounts.empty(["g"]).update({"g": g}, (rng.random(g.size) < 0.5).astype(np.int64))
        corrected += evaluate_fairness(counts, config).status == FairnessStatus.ALERT
        loose = FairnessConfig(attributes=("g",), dp_difference_threshold=0.05, pairwise_correction="none")
        uncorrected += evaluate_fairness(counts, loose).status == FairnessStatus.ALERT
    assert corrected <= 2
    assert uncorrected > corrected
