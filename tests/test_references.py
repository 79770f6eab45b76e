"""References from a CSV/Parquet file and from the MLflow run behind a registered model version."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select

from opsloop.references import from_mlflow, set_reference
from opsloop.simulate import Scenario, events
from storage.models import Finding, Reference, Window
from streams.model_stream import StreamConfig
from streams.processor import BatchProcessor, ProcessorConfig
from tests.helpers import chunks, records


def _frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({f"x{i}": rng.normal(0, 1, n) for i in range(8)})
    df["country"] = rng.choice(["de", "fr", "us", "in", "br"], n, p=[0.3, 0.2, 0.25, 0.15, 0.1])
    df["device"] = rng.choice(["ios", "android", "web"], n, p=[0.4, 0.4, 0.2])
    return df


def test_reference_from_file_replaces_the_warm_up(sessions, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "ref.parquet"
    _frame(5000).to_parquet(path)
    from opsloop.references import read_table

    ref_id, version = set_reference(sessions, "credit-risk", "1", read_table(path), "file:ref.parquet")
    assert version == 1
    proc = BatchProcessor(sessions, ProcessorConfig(consumer_group="t", stream=StreamConfig(window_size=1000)))
    for b in chunks(records(events(Scenario(n_events=4000, drift_after=2000))), 500):
        proc.process(b)
    with sessions() as s:
        windows = s.scalars(select(Window).order_by(Window.window_index)).all()
        assert [w.window_index for w in windows] == [0, 1, 2, 3]  # no warm-up: every event is monitored
        assert {w.reference_id for w in windows} == {ref_id}
        findings = s.scalars(select(Finding).where(Finding.detector == "drift.features")).all()
        assert sorted(f.details["window_index"] for f in findings) == [2, 3]
        assert all(f.details["reference_version"] == 1 and f.reference_id == ref_id for f in findings)
        assert s.get(Reference, ref_id).source == "file:ref.parquet"
    # a second reference is a new version; the stream follows it
    _, v2 = set_reference(sessions, "credit-risk", "1", _frame(3000, seed=1), "file:ref2.csv")
    assert v2 == 2


def test_reference_from_the_mlflow_run_of_a_model_version(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    mlflow = pytest.importorskip("mlflow")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)  # other tests in this process may have pointed the registry elsewhere
    exp = mlflow.create_experiment("refs", artifact_location=(tmp_path / "artifacts").as_uri())
    data = tmp_path / "reference.parquet"
    _frame(1000).to_parquet(data)
    with mlflow.start_run(experiment_id=exp) as run:
        mlflow.log_artifact(str(data))
    client = mlflow.MlflowClient()
    client.create_registered_model("credit-risk")
    mv = client.create_model_version("credit-risk", f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
    client.set_registered_model_alias("credit-risk", "champion", mv.version)
    for uri in (f"models:/credit-risk/{mv.version}", "models:/credit-risk@champion"):
        got = from_mlflow(uri, "reference.parquet", tmp_path / uri.replace("/", "_").replace(":", "_"))
        pd.testing.assert_frame_equal(pd.read_parquet(got), pd.read_parquet(data))
