"""Training entry points for the retrain tests: ``fn(train_df, params) -> fitted estimator``."""

from __future__ import annotations

import json
import os
import time
from typing import Any

import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler


def train_logreg(train_df: pd.DataFrame, params: dict[str, Any]) -> Pipeline:
    """Scaled numbers and one-hot categories into a logistic regression.

    params: ``C``; ``sleep_s`` (sleep before fitting, so a test can kill the runner mid-job); ``record`` (a file
    to append ``{"start", "end"}`` to, so a test can check jobs never overlap); ``features`` (use only these).
    """
    start = time.time()
    if params.get("sleep_s"):
        time.sleep(float(params["sleep_s"]))
    x = train_df.drop(columns=["label"])
    if params.get("features"):
        x = x[list(params["features"])]
    numeric = [c for c in x.columns if pd.api.types.is_numeric_dtype(x[c]) and not pd.api.types.is_bool_dtype(x[c])]
    categorical = [c for c in x.columns if c not in numeric]
    pre = ColumnTransformer([("num", StandardScaler(), numeric),
                             ("cat", OneHotEncoder(handle_unknown="ignore"), categorical)])
    model = Pipeline([("pre", pre), ("clf", LogisticRegression(C=float(params.get("C", 1.0)), max_iter=500))])
    model.fit(x, train_df["label"])
    if params.get("record"):
        with open(params["record"], "a") as f:
            f.write(json.dumps({"start": start, "end": time.time(), "pid": os.getpid()}) + "\n")
    return model


def train_constant(train_df: pd.DataFrame, params: dict[str, Any]) -> Any:
    """A deliberately bad model: always predicts ``params["label"]``."""
    from sklearn.dummy import DummyClassifier

    model = DummyClassifier(strategy="constant", constant=str(params.get("label", "0")))
    model.fit(train_df.drop(columns=["label"]), train_df["label"])
    return model


def train_broken(train_df: pd.DataFrame, params: dict[str, Any]) -> Any:
    raise RuntimeError("the training code failed")


def train_linreg(train_df: pd.DataFrame, params: dict[str, Any]) -> Pipeline:
    """Numbers only, into a linear regression (for a model whose labels are values)."""
    from sklearn.linear_model import LinearRegression

    x = train_df.drop(columns=["label"]).select_dtypes("number")
    return Pipeline([("pre", ColumnTransformer([("num", "passthrough", list(x.columns))])),
                     ("reg", LinearRegression())]).fit(x, train_df["label"])
