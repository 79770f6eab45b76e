"""The data side of a retrain job: export the training window, split it in time, call the user's entry point,
score predictions and decide challenger vs champion. No Kafka and no MLflow here.

The training window is the most recent labelled predictions of a model (``predictions_log``), newest first up to
a limit, returned oldest first as a DataFrame of feature columns plus ``label``. The held-out data is the most
recent part of that window (a time-ordered split, never random): it is the data most like what the next
version will serve.
"""

from __future__ import annotations

import importlib
import math
import numbers
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import numpy as np
import pandas as pd
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from storage.models import PredictionLog

LABEL = "label"
Task = Literal["classification", "regression"]


class TrainingError(Exception):
    """The job cannot train: bad entry point, too little data, an estimator without ``predict``."""


@dataclass(frozen=True)
class TrainingData:
    """A model's labelled window, oldest first: feature columns plus ``label``."""

    frame: pd.DataFrame
    task: Task
    features: tuple[str, ...]
    first_at: datetime | None
    last_at: datetime | None
    versions: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.frame)


def _is_number(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _column(values: list[Any]) -> pd.Series:
    """Numbers become float64 (so a column never flips between long and double in a model signature), bools stay
    bool when complete, anything else is an object column with None for missing values."""
    present = [v for v in values if v is not None]
    if present and all(_is_number(v) for v in present):
        return pd.Series([float(v) if v is not None else np.nan for v in values], dtype="float64")
    if present and len(present) == len(values) and all(isinstance(v, bool) for v in present):
        return pd.Series(values, dtype="bool")
    return pd.Series([v if v is None or isinstance(v, str) else str(v) for v in values], dtype="object")


def frame_from_rows(features: Sequence[dict[str, Any]], labels: Sequence[Any] | None = None) -> pd.DataFrame:
    """Feature dicts (as logged) to a DataFrame with one column per feature name (sorted), plus ``label``."""
    names = sorted({k for row in features for k in row})
    if LABEL in names:
        raise TrainingError(f"a feature is named {LABEL!r}, which is the label column's name")
    data = {name: _column([row.get(name) for row in features]) for name in names}
    frame = pd.DataFrame(data, index=pd.RangeIndex(len(features)))
    if labels is not None:
        frame[LABEL] = list(labels)
    return frame


def export_window(session: Session, model: str, *, limit: int = 5000, model_version: str | None = None,
                  task: Task | Literal["auto"] = "auto") -> TrainingData:
    """The last ``limit`` labelled predictions of ``model`` (of every version, or only ``model_version``), by
    event time newest first, returned oldest first."""
    q = (select(PredictionLog.features, PredictionLog.y_true, PredictionLog.y_true_value, PredictionLog.occurred_at,
                PredictionLog.model_version)
         .where(PredictionLog.model == model,
                or_(PredictionLog.y_true.is_not(None), PredictionLog.y_true_value.is_not(None)))
         .order_by(PredictionLog.occurred_at.desc(), PredictionLog.id.desc()).limit(limit))
    if model_version is not None:
        q = q.where(PredictionLog.model_version == model_version)
    rows = list(reversed(session.execute(q).all()))
    if task == "auto":
        task = "regression" if rows and all(r.y_true is None for r in rows) else "classification"
    if task == "regression":
        rows = [r for r in rows if r.y_true_value is not None]
        labels: list[Any] = [float(r.y_true_value) for r in rows]
    else:
        rows = [r for r in rows if r.y_true is not None]
        labels = [r.y_true for r in rows]
    frame = frame_from_rows([dict(r.features) for r in rows], labels)
    return TrainingData(frame=frame, task=task, features=tuple(c for c in frame.columns if c != LABEL),
                        first_at=rows[0].occurred_at if rows else None, last_at=rows[-1].occurred_at if rows else None,
                        versions=dict(Counter(r.model_version for r in rows)))


def time_split(frame: pd.DataFrame, holdout_fraction: float = 0.2) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split an oldest-first frame: the most recent ``holdout_fraction`` (at least one row) is held out."""
    if not 0 < holdout_fraction < 1:
        raise TrainingError(f"holdout fraction must be in (0, 1), got {holdout_fraction}")
    n = len(frame)
    n_holdout = max(1, math.ceil(n * holdout_fraction))
    if n - n_holdout < 1:
        raise TrainingError(f"{n} rows cannot be split into training and held-out data")
    cut = n - n_holdout
    return frame.iloc[:cut].reset_index(drop=True), frame.iloc[cut:].reset_index(drop=True)


# --- the user's entry point -----------------------------------------------------------------------------------


EntryPoint = Callable[[pd.DataFrame, dict[str, Any]], Any]


def load_entrypoint(spec: str) -> EntryPoint:
    """``package.module:function`` to the function."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise TrainingError(f"entry point must look like 'package.module:function', got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise TrainingError(f"cannot import {module_name!r} for entry point {spec!r}: {exc}") from exc
    fn = module
    for part in attr.split("."):
        fn = getattr(fn, part, None)  # type: ignore[assignment]
        if fn is None:
            raise TrainingError(f"{module_name!r} has no attribute {attr!r}")
    if not callable(fn):
        raise TrainingError(f"entry point {spec!r} is not callable")
    return fn  # type: ignore[return-value]


def fit(fn: EntryPoint, train: pd.DataFrame, params: dict[str, Any]) -> Any:
    """Call ``fn(train_df, params)`` on a copy and check it returned something that predicts."""
    estimator = fn(train.copy(), dict(params))
    if not callable(getattr(estimator, "predict", None)):
        raise TrainingError(f"the entry point returned {type(estimator).__name__}, which has no predict()")
    return estimator


# --- metrics and the promotion rule ---------------------------------------------------------------------------


def as_labels(values: Any) -> np.ndarray:
    """Predictions as the strings labels are stored as (``1`` -> "1", ``1.0`` -> "1", ``True`` -> "true")."""
    arr = values.to_numpy() if hasattr(values, "to_numpy") else np.asarray(values)
    if arr.ndim > 1:
        arr = arr[:, 0] if arr.shape[1] == 1 else arr.reshape(len(arr), -1)[:, 0]

    def one(v: Any) -> str:
        if isinstance(v, (bool, np.bool_)):
            return "true" if v else "false"
        if isinstance(v, (float, np.floating)) and float(v).is_integer():
            return str(int(v))
        return str(v)

    return np.array([one(v) for v in arr], dtype=object)


def _values(values: Any) -> np.ndarray:
    arr = values.to_numpy() if hasattr(values, "to_numpy") else np.asarray(values)
    return arr.reshape(len(arr), -1)[:, 0].astype("float64") if arr.ndim > 1 else arr.astype("float64")


@dataclass(frozen=True)
class Metric:
    name: str
    task: Task
    higher_is_better: bool
    fn: Callable[[np.ndarray, np.ndarray], float]


def _accuracy(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean(y == p))


def _balanced_accuracy(y: np.ndarray, p: np.ndarray) -> float:
    classes = np.unique(y)
    return float(np.mean([np.mean(p[y == c] == c) for c in classes]))


def _f1_macro(y: np.ndarray, p: np.ndarray) -> float:
    scores = []
    for c in np.unique(np.concatenate([y, p])):
        tp = np.sum((p == c) & (y == c))
        fp = np.sum((p == c) & (y != c))
        fn = np.sum((p != c) & (y == c))
        scores.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores))


METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("accuracy", "classification", True, _accuracy),
    Metric("balanced_accuracy", "classification", True, _balanced_accuracy),
    Metric("f1_macro", "classification", True, _f1_macro),
    Metric("mae", "regression", False, lambda y, p: float(np.mean(np.abs(y - p)))),
    Metric("rmse", "regression", False, lambda y, p: float(np.sqrt(np.mean((y - p) ** 2)))),
    Metric("r2", "regression", True,
           lambda y, p: float(1 - np.sum((y - p) ** 2) / np.sum((y - np.mean(y)) ** 2))
           if np.sum((y - np.mean(y)) ** 2) > 0 else float("nan")),
)}
DEFAULT_METRIC: dict[Task, str] = {"classification": "accuracy", "regression": "mae"}


def metric_for(task: Task, name: str | None = None) -> Metric:
    metric = METRICS.get(name or DEFAULT_METRIC[task])
    if metric is None:
        raise TrainingError(f"unknown metric {name!r}; known: {', '.join(sorted(METRICS))}")
    if metric.task != task:
        raise TrainingError(f"metric {metric.name!r} is for {metric.task}, but the data is {task}")
    return metric


def score(metric: Metric, y_true: Any, y_pred: Any) -> float:
    if metric.task == "classification":
        return metric.fn(as_labels(y_true), as_labels(y_pred))
    return metric.fn(_values(y_true), _values(y_pred))


@dataclass(frozen=True)
class Verdict:
    promote: bool
    reason: str


def judge(metric: Metric, challenger: float, champion: float | None, margin: float = 0.0) -> Verdict:
    """Promote only when the challenger beats the champion by more than ``margin`` (0: strictly better)."""
    if champion is None:
        return Verdict(True, "no champion yet: the first version becomes champion")
    if math.isnan(challenger):
        return Verdict(False, f"challenger {metric.name} is not a number")
    if math.isnan(champion):
        return Verdict(True, f"champion {metric.name} is not a number on the held-out data")
    gain = challenger - champion if metric.higher_is_better else champion - challenger
    direction = "higher" if metric.higher_is_better else "lower"
    if gain > margin:
        return Verdict(True, f"challenger {metric.name} {challenger:.4f} vs champion {champion:.4f}: better by "
                             f"{gain:.4f} > margin {margin:g} ({direction} is better)")
    return Verdict(False, f"challenger {metric.name} {challenger:.4f} vs champion {champion:.4f}: not better by more "
                          f"than margin {margin:g} (gain {gain:.4f}, {direction} is better)")
