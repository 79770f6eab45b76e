"""Regression performance of one window from running sums, kept as targets arrive (and are corrected).

``RegressionSums`` keeps, over the labelled rows, with e = y_pred - y_true:

====================  =====================================================================
``n``                 labelled rows
``sum_abs_error``     sum |e|                  -> MAE  = sum |e| / n       (``mean_absolute_error``)
``sum_sq_error``      sum e**2                 -> RMSE = sqrt(sum e**2 / n) (``root_mean_squared_error``)
``sum_quartic_error`` sum e**4                 (the variance of e**2, for the RMSE test)
``n_zero_target``     rows with y_true == 0, left out of MAPE
``sum_ape``           sum |e| / |y_true| over rows with y_true != 0
``sum_sq_ape``        sum of its squares       -> MAPE = sum_ape / (n - n_zero_target)
====================  =====================================================================

MAPE is a fraction (0.1 is 10%), as in scikit-learn. Where every target is non-zero it equals
``mean_absolute_percentage_error`` (a non-zero target is divided by ``max(|y_true|, eps)`` as there). Where some are zero the two differ on purpose: sklearn divides by
``max(|y_true|, eps)`` with eps the float64 machine epsilon, so a single zero target with any error adds
~|e| * 4.5e15 / n and swamps the mean; here such rows are left out of MAPE (MAE and RMSE still count them)
and counted in ``n_zero_target``, so a reader can see how many rows MAPE ignores. MAPE of a window whose
targets are all zero is NaN.

Errors so large that a sum overflows float64 (|e| ** 4 past 1.8e308) are an ``InputError``.
Sums are float: ``remove`` subtracts a row's old contribution, which can leave rounding residue of the
order of 1e-16 times the sums (clamped at 0, and reset to exactly 0 when ``n`` returns to 0).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from detectors.base import InputError

SUMS_VERSION = 1
METRICS: tuple[str, ...] = ("mae", "rmse", "mape")
_EPS = float(np.finfo(np.float64).eps)
_FLOAT_FIELDS = ("sum_abs_error", "sum_sq_error", "sum_quartic_error", "sum_ape", "sum_sq_ape")


def _column(name: str, values: npt.ArrayLike) -> npt.NDArray[np.float64]:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name} must be numbers: {exc}") from None
    if arr.ndim != 1:
        raise InputError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise InputError(f"{name} must be finite: pass only labelled rows")
    return arr


@dataclass(frozen=True)
class RegressionSums:
    n: int = 0
    sum_abs_error: float = 0.0
    sum_sq_error: float = 0.0
    sum_quartic_error: float = 0.0
    n_zero_target: int = 0
    sum_ape: float = 0.0
    sum_sq_ape: float = 0.0

    def __post_init__(self) -> None:
        if self.n < 0 or not 0 <= self.n_zero_target <= self.n:
            raise InputError("counts must satisfy 0 <= n_zero_target <= n (was a row removed twice?)")
        for name in _FLOAT_FIELDS:
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise InputError(f"{name} must be finite and >= 0, got {value!r}")

    @property
    def n_labelled(self) -> int:
        return self.n

    @property
    def n_ape(self) -> int:
        return self.n - self.n_zero_target

    def update(self, y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> RegressionSums:
        return self._apply(y_true, y_pred, 1)

    def remove(self, y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> RegressionSums:
        """These sums less rows added before (a corrected target: remove the old row, update the new one)."""
        return self._apply(y_true, y_pred, -1)

    def merge(self, other: RegressionSums) -> RegressionSums:
        return RegressionSums(
            n=self.n + other.n,
            n_zero_target=self.n_zero_target + other.n_zero_target,
            **{f: getattr(self, f) + getattr(other, f) for f in _FLOAT_FIELDS},
        )

    def _apply(self, y_true: npt.ArrayLike, y_pred: npt.ArrayLike, sign: int) -> RegressionSums:
        t, p = _column("y_true", y_true), _column("y_pred", y_pred)
        if t.shape != p.shape:
            raise InputError(f"y_true has {t.size} rows, y_pred {p.size}")
        nonzero = t != 0.0
        with np.errstate(over="ignore"):
            abs_err = np.abs(p - t)
            sq = abs_err * abs_err
            # sklearn's divisor for the non-zero targets, so that tiny targets give the same (huge) values
            ape = abs_err[nonzero] / np.maximum(np.abs(t[nonzero]), _EPS)
            quartic = sq * sq
            sq_ape = ape * ape
        n = self.n + sign * t.size
        n_zero = self.n_zero_target + sign * int(t.size - nonzero.sum())
        if n < 0 or not 0 <= n_zero <= n:
            raise InputError("removing rows that were never added")
        with np.errstate(over="ignore"):
            sums = {
                "sum_abs_error": float(abs_err.sum()),
                "sum_sq_error": float(sq.sum()),
                "sum_quartic_error": float(quartic.sum()),
                "sum_ape": float(ape.sum()),
                "sum_sq_ape": float(sq_ape.sum()),
            }
        if not all(math.isfinite(v) for v in sums.values()):
            raise InputError("errors too large to sum in float64 (|error| ** 4 or (|error| / |y_true|) ** 2)")
        new = {f: 0.0 if n == 0 else max(getattr(self, f) + sign * sums[f], 0.0) for f in _FLOAT_FIELDS}
        if n - n_zero == 0:
            new["sum_ape"] = new["sum_sq_ape"] = 0.0
        return RegressionSums(n=n, n_zero_target=n_zero, **new)

    def to_dict(self) -> dict[str, Any]:
        return {"version": SUMS_VERSION, **asdict(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RegressionSums:
        if data.get("version") != SUMS_VERSION:
            raise InputError(f"unsupported regression sums (version {data.get('version')!r})")
        return cls(
            n=int(data["n"]),
            n_zero_target=int(data["n_zero_target"]),
            **{f: float(data[f]) for f in _FLOAT_FIELDS},
        )


def mae(sums: RegressionSums) -> float:
    return sums.sum_abs_error / sums.n if sums.n else math.nan


def rmse(sums: RegressionSums) -> float:
    return math.sqrt(sums.sum_sq_error / sums.n) if sums.n else math.nan


def mape(sums: RegressionSums) -> float:
    return sums.sum_ape / sums.n_ape if sums.n_ape else math.nan


def regression_metrics(sums: RegressionSums) -> dict[str, float]:
    return {"mae": mae(sums), "rmse": rmse(sums), "mape": mape(sums)}


def _mean_variance(total: float, total_sq: float, n: int) -> float:
    """Variance of the mean of n values from their sum and sum of squares (sample variance / n)."""
    if n < 2:
        return math.nan
    mean = total / n
    return max(total_sq / n - mean * mean, 0.0) * n / (n - 1) / n


def compared_mean(sums: RegressionSums, metric: str) -> tuple[float, float, int]:
    """The per-row mean that the degradation test compares, its variance, and its rows.

    MAE and MAPE are means of per-row values; RMSE is tested through the mean squared error (the RMSE is
    worse exactly when the MSE is), whose per-row values are e**2.
    """
    if metric == "mae":
        return mae(sums), _mean_variance(sums.sum_abs_error, sums.sum_sq_error, sums.n), sums.n
    if metric == "rmse":
        mse = sums.sum_sq_error / sums.n if sums.n else math.nan
        return mse, _mean_variance(sums.sum_sq_error, sums.sum_quartic_error, sums.n), sums.n
    if metric == "mape":
        return mape(sums), _mean_variance(sums.sum_ape, sums.sum_sq_ape, sums.n_ape), sums.n_ape
    raise InputError(f"unknown regression metric {metric!r}")
