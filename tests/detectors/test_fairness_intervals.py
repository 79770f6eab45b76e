"""Interval oracles: Wilson, Newcombe and Katz equal statsmodels' implementations to 1e-9."""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

from detectors.fairness.intervals import katz_ratio, newcombe_difference, wilson_interval, z_value

CASES = [(0, 1), (1, 1), (0, 5), (5, 5), (3, 7), (1, 30), (15, 30), (29, 30), (0, 100), (37, 100), (412, 1000),
         (999, 1000), (5000, 10000), (3, 100000)]  # fmt: skip
CONFIDENCES = [0.8, 0.9, 0.95, 0.99, 0.999]


@pytest.mark.parametrize("confidence", CONFIDENCES)
def test_wilson_equals_statsmodels(confidence: float) -> None:
    x = np.array([c[0] for c in CASES])
    n = np.array([c[1] for c in CASES])
    low, high = wilson_interval(x, n, confidence)
    for i, (xi, ni) in enumerate(CASES):
        exp_low, exp_high = proportion_confint(xi, ni, alpha=1 - confidence, method="wilson")
        assert low[i] == pytest.approx(exp_low, abs=1e-9)
        assert high[i] == pytest.approx(exp_high, abs=1e-9)


def test_wilson_on_random_counts_equals_statsmodels() -> None:
    rng = np.random.default_rng(3)
    n = rng.integers(1, 5000, size=500)
    x = rng.binomial(n, rng.random(500))
    low, high = wilson_interval(x, n)
    exp_low, exp_high = proportion_confint(x, n, alpha=0.05, method="wilson")
    np.testing.assert_allclose(low, exp_low, rtol=0, atol=1e-9)
    np.testing.assert_allclose(high, exp_high, rtol=0, atol=1e-9)


def test_wilson_has_no_interval_without_trials() -> None:
    low, high = wilson_interval([0, 1], [0, 2])
    assert np.isnan(low[0]) and np.isnan(high[0])
    assert np.isfinite(low[1]) and np.isfinite(high[1])


@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.995])
def test_newcombe_and_katz_equal_statsmodels(confidence: float) -> None:
    rng = np.random.default_rng(11)
    pairs = [(a, b) for a in CASES for b in CASES[::3]]
    for _ in range(100):
        n1, n2 = rng.integers(1, 3000, size=2)
        pairs.append(((int(rng.integers(0, n1 + 1)), int(n1)), (int(rng.integers(0, n2 + 1)), int(n2))))
    x1, n1, x2, n2 = (np.array(v) for v in zip(*[(a[0], a[1], b[0], b[1]) for a, b in pairs]))
    d_low, d_high = newcombe_difference(x1, n1, x2, n2, confidence)
    r_low, r_high = katz_ratio(x1, n1, x2, n2, confidence)
    alpha = 1 - confidence
    for i in range(len(pairs)):
        args = (int(x1[i]), int(n1[i]), int(x2[i]), int(n2[i]))
        exp = confint_proportions_2indep(*args, method="newcomb", compare="diff", alpha=alpha)
        assert (d_low[i], d_high[i]) == pytest.approx(exp, abs=1e-9), args
        exp = confint_proportions_2indep(*args, method="log-adjusted", compare="ratio", alpha=alpha)
        assert (r_low[i], r_high[i]) == pytest.approx(exp, abs=1e-9, rel=1e-9), args


def test_vectorised_confidence_equals_one_at_a_time() -> None:
    conf = np.array([0.9, 0.95, 0.999])
    low, high = newcombe_difference([30, 30, 30], [100, 100, 100], [50, 50, 50], [120, 120, 120], conf)
    for i, c in enumerate(conf):
        one = newcombe_difference(30, 100, 50, 120, float(c))
        assert (low[i], high[i]) == (float(one[0]), float(one[1]))
    assert z_value(0.95) == pytest.approx(1.959963984540054, abs=1e-12)


@pytest.mark.parametrize("confidence", [0.0, 1.0, -0.5, 1.5])
def test_confidence_outside_the_unit_interval_is_refused(confidence: float) -> None:
    with pytest.raises(ValueError, match="confidence"):
        z_value(confidence)


def test_newcombe_covers_the_true_difference_about_as_often_as_promised() -> None:
    rng = np.random.default_rng(5)
    p1, p2, n1, n2, reps = 0.3, 0.45, 150, 400, 4000
    x1, x2 = rng.binomial(n1, p1, size=reps), rng.binomial(n2, p2, size=reps)
    low, high = newcombe_difference(x1, n1, x2, n2, 0.95)
    coverage = np.mean((low <= p1 - p2) & (p1 - p2 <= high))
    assert 0.93 <= coverage <= 0.97
    r_low, r_high = katz_ratio(x1, n1, x2, n2, 0.95)
    coverage = np.mean((r_low <= p1 / p2) & (p1 / p2 <= r_high))
    assert 0.93 <= coverage <= 0.97
