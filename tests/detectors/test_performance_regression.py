"""Regression sums: MAE, RMSE and MAPE equal to scikit-learn's; corrections, merges, JSON."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from detectors.base import InputError
from detectors.performance import RegressionSums, mae, mape, regression_metrics, rmse
from detectors.performance.regression import compared_mean


def _data(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    y = rng.lognormal(3.0, 0.5, n)
    return y, y + rng.normal(0.0, 4.0, n)


@pytest.mark.parametrize("seed", range(5))
def test_metrics_equal_sklearn(seed: int) -> None:
    y, pred = _data(np.random.default_rng(seed), 5000)
    sums = RegressionSums().update(y, pred)
    assert mae(sums) == pytest.approx(skm.mean_absolute_error(y, pred), abs=1e-9)
    assert rmse(sums) == pytest.approx(skm.root_mean_squared_error(y, pred), abs=1e-9)
    assert mape(sums) == pytest.approx(skm.mean_absolute_percentage_error(y, pred), abs=1e-9)
    assert sums.n_zero_target == 0


def test_zero_targets_are_left_out_of_mape_only() -> None:
    y = np.array([0.0, 10.0, 20.0, 0.0])
    pred = np.array([1.0, 11.0, 18.0, 0.0])
    sums = RegressionSums().update(y, pred)
    assert sums.n_zero_target == 2
    assert mape(sums) == pytest.approx(skm.mean_absolute_percentage_error(y[1:3], pred[1:3]), abs=1e-12)
    assert mae(sums) == pytest.approx(skm.mean_absolute_error(y, pred), abs=1e-12)
    # sklearn divides by machine epsilon instead: one zero target with an error of 1 swamps the mean
    assert skm.mean_absolute_percentage_error(y, pred) > 1e14
    assert math.isnan(mape(RegressionSums().update([0.0], [1.0])))


def test_remove_merge_and_json_round_trip() -> None:
    rng = np.random.default_rng(4)
    y, pred = _data(rng, 1000)
    a = RegressionSums().update(y[:300], pred[:300])
    b = RegressionSums().update(y[300:], pred[300:])
    whole = RegressionSums().update(y, pred)
    for name, value in regression_metrics(a.merge(b)).items():
        assert value == pytest.approx(regression_metrics(whole)[name], rel=1e-12)
    undone = whole.remove(y[300:], pred[300:])
    for name, value in regression_metrics(undone).items():
        assert value == pytest.approx(regression_metrics(a)[name], rel=1e-9)
    assert whole.remove(y, pred) == RegressionSums()
    back = RegressionSums.from_dict(json.loads(json.dumps(whole.to_dict(), allow_nan=False)))
    assert back == whole
    # a corrected target: remove the old row, add the new one
    fixed = y.copy()
    fixed[0] += 5.0
    corrected = whole.remove(y[:1], pred[:1]).update(fixed[:1], pred[:1])
    assert mae(corrected) == pytest.approx(skm.mean_absolute_error(fixed, pred), rel=1e-12)


def test_bad_input_raises() -> None:
    with pytest.raises(InputError):
        RegressionSums().update([1.0, np.nan], [1.0, 2.0])
    with pytest.raises(InputError):
        RegressionSums().update([1.0, 2.0], [1.0])
    with pytest.raises(InputError):
        RegressionSums().remove([1.0], [1.0])
    with pytest.raises(InputError):
        RegressionSums.from_dict({"version": 99})


def test_empty_sums_give_nan() -> None:
    assert all(math.isnan(v) for v in regression_metrics(RegressionSums()).values())


def test_compared_means_and_their_variances() -> None:
    rng = np.random.default_rng(1)
    y, pred = _data(rng, 2000)
    sums = RegressionSums().update(y, pred)
    e = np.abs(pred - y)
    for metric, per_row in (("mae", e), ("rmse", e**2), ("mape", e / np.abs(y))):
        mean, var, n = compared_mean(sums, metric)
        assert mean == pytest.approx(per_row.mean(), rel=1e-12)
        assert var == pytest.approx(per_row.var(ddof=1) / n, rel=1e-9)


@settings(max_examples=50, deadline=None)
@given(
    rows=st.lists(
        st.tuples(st.floats(-1e3, 1e3, allow_nan=False), st.floats(-1e3, 1e3, allow_nan=False)),
        min_size=1,
        max_size=50,
    ),
    seed=st.integers(0, 2**32 - 1),
)
def test_row_order_does_not_change_metrics(rows: list[tuple[float, float]], seed: int) -> None:
    y = np.array([r[0] for r in rows])
    pred = np.array([r[1] for r in rows])
    perm = np.random.default_rng(seed).permutation(len(rows))
    a = regression_metrics(RegressionSums().update(y, pred))
    b = regression_metrics(RegressionSums().update(y[perm], pred[perm]))
    assert a == pytest.approx(b, rel=1e-9, abs=1e-9, nan_ok=True)
    if (y != 0).all():
        assert a["mape"] == pytest.approx(skm.mean_absolute_percentage_error(y, pred), rel=1e-9)
