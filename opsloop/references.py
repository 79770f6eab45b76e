"""References from a file (CSV or Parquet) or from the MLflow run behind a registered model version.

Without one, a model version's first N events become its reference (warm-up). Setting a reference stores a
new, versioned profile and points the model version's stream at it: open windows restart against it, and
every finding from then on names it (``reference_version``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from opsloop.errors import ConfigError


def columns_from_frame(df: Any) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Numeric columns (not bool) stay numbers; everything else becomes categories (strings)."""
    from streams.columns import CATEGORICAL, NUMERIC, _as_category

    cols: dict[str, np.ndarray] = {}
    kinds: dict[str, str] = {}
    for name in df.columns:
        s = df[name]
        if s.dtype.kind in "iuf":
            cols[str(name)] = s.to_numpy(dtype=np.float64, na_value=np.nan)
            kinds[str(name)] = NUMERIC
        else:
            cols[str(name)] = np.array([None if v is None or (isinstance(v, float) and np.isnan(v))
                                        else _as_category(v) for v in s.tolist()], dtype=object)
            kinds[str(name)] = CATEGORICAL
    return cols, kinds


def read_table(path: Path) -> Any:
    import pandas as pd

    if not path.exists():
        raise ConfigError(f"reference file not found: {path}")
    if path.suffix.lower() in (".parquet", ".pq"):
        return pd.read_parquet(path)
    if path.suffix.lower() in (".csv", ".txt"):
        return pd.read_csv(path)
    raise ConfigError(f"reference file must be .csv or .parquet, got {path.name}")


def from_mlflow(model_uri: str, artifact: str, dest: Path) -> Path:
    """Download ``artifact`` of the run behind ``models:/<name>/<version>`` (or ``models:/<name>@<alias>``)."""
    import mlflow
    from mlflow import MlflowClient

    if not model_uri.startswith("models:/"):
        raise ConfigError("--mlflow takes a registered model URI: models:/<name>/<version> or models:/<name>@<alias>")
    ref = model_uri[len("models:/"):]
    client = MlflowClient()
    if "@" in ref:
        name, alias = ref.split("@", 1)
        mv = client.get_model_version_by_alias(name, alias)
    else:
        name, _, version = ref.partition("/")
        mv = client.get_model_version(name, version)
    if not mv.run_id:
        raise ConfigError(f"{model_uri} has no run to take a reference from")
    local = mlflow.artifacts.download_artifacts(run_id=mv.run_id, artifact_path=artifact, dst_path=str(dest))
    return Path(local)


def set_reference(sessions: Any, model: str, version: str, df: Any, source: str) -> tuple[int, int]:
    """Store a profile of ``df`` as the model version's newest reference; returns (id, version)."""
    from storage import repo
    from streams.model_stream import ModelStream, build_reference_profile, split_reference_columns

    cols, kinds = columns_from_frame(df)
    if len(df) == 0:
        raise ConfigError("the reference has no rows")
    feature_cols, pred_cols = split_reference_columns(cols)
    if not feature_cols:
        raise ConfigError("the reference has no feature columns (only prediction.* columns)")
    feature_kinds = {k: kinds[k] for k in feature_cols}
    pred_kinds = {k: kinds[f"prediction.{k}"] for k in pred_cols}
    if pred_kinds.get("label") == "numeric":  # class labels 0/1 read as numbers: categories, as in events
        pred_cols["label"] = np.array([None if np.isnan(v) else str(int(v)) if float(v).is_integer() else str(v)
                                       for v in pred_cols["label"]], dtype=object)
    pred_kinds = {k: ("categorical" if k == "label" else "numeric") for k in pred_kinds}
    profile = build_reference_profile(feature_cols, feature_kinds, pred_cols, pred_kinds)
    with sessions() as s, s.begin():
        ref = repo.add_reference(s, model=model, model_version=version, source=source, n_rows=len(df),
                                 profile=profile)
        repo.delete_warmup_rows(s, model, version)
        current = repo.load_states(s, [(model, version)]).get((model, version))
        rev, state = current if current else (None, None)
        new_state = ModelStream.with_reference(state, ref.id, ref.version, feature_kinds, pred_kinds)
        repo.save_state(s, (model, version), new_state, rev)
        return ref.id, ref.version


def cmd_reference(args: argparse.Namespace) -> int:
    import tempfile

    from opsloop import wiring
    from opsloop.settings import load

    _, _, dbs, _ = load()
    db = wiring.database(dbs)
    if bool(args.file) == bool(args.mlflow):
        raise ConfigError("give exactly one of --file and --mlflow")
    if args.file:
        path, source = Path(args.file), f"file:{Path(args.file).name}"
        df = read_table(path)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            path = from_mlflow(args.mlflow, args.artifact, Path(tmp))
            df = read_table(path)
        source = f"mlflow:{args.mlflow}/{args.artifact}"
    ref_id, ref_version = set_reference(db.sessions, args.model, args.version, df, source)
    print(f"reference v{ref_version} (id {ref_id}, {len(df)} rows from {source}) set for {args.model} "
          f"v{args.version}")
    return 0


def register(sub: Any) -> None:
    r = sub.add_parser("reference", help="set a model version's reference from a file or MLflow")
    r.add_argument("action", choices=["set"])
    r.add_argument("--model", required=True)
    r.add_argument("--version", required=True)
    r.add_argument("--file", help="a CSV or Parquet file of feature columns")
    r.add_argument("--mlflow", help="models:/<name>/<version> or models:/<name>@<alias>")
    r.add_argument("--artifact", default="reference.parquet", help="the run's artifact holding the reference")
    r.set_defaults(func=cmd_reference)
