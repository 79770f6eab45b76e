"""The retrain runner on the real databases (SQLite and PostgreSQL), a local MLflow store and the real broker:
training window and time split, challenger vs champion, the alias rule, dedupe per trigger, the per-model
lease, and resuming a job whose runner died."""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from retrain import mlflow_registry as mr
from retrain.runner import RetrainRunner, RunnerConfig, TriggerMessage, consumer_group, enqueue, jobs_topic
from retrain.training import export_window, judge, metric_for, time_split
from storage import jobs_repo, repo
from storage.models import Job, OutboxMessage, PredictionLog, Trigger

ENTRY = "tests.retrain_entrypoints:train_logreg"
T0 = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def mlflow_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One local MLflow store per module (creating one takes seconds); every test uses its own model name."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture
def registry(mlflow_uri: str) -> mr.MlflowRegistry:
    return mr.MlflowRegistry(mlflow_uri)


@pytest.fixture
def model() -> str:
    return f"credit-{uuid.uuid4().hex[:8]}"


def _rows(model: str, n: int, *, start: datetime, shifted: bool, prefix: str, version: str = "1",
          seed: int = 0, labelled: bool = True) -> list[dict[str, Any]]:
    """Distribution A: y = [a + b/2 > 0]. Shifted (B): b moves by +1.5 and the concept flips, so a model of A
    is wrong on most of B."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        a, b = rng.normal(), rng.normal() + (1.5 if shifted else 0.0)
        y = int(a + 0.5 * b > (0.75 if shifted else 0.0))
        y = 1 - y if shifted else y
        out.append({"model": model, "model_version": version, "prediction_id": f"{prefix}-{i}",
                    "occurred_at": start + timedelta(seconds=i), "window_kind": "count", "window_index": i // 100,
                    "y_pred": "1", "features": {"a": round(float(a), 5), "b": round(float(b), 5),
                                                "c": str(rng.choice(["u", "v", "w"]))},
                    "sensitive": {}, "y_true": str(y) if labelled else None})
    return out


def _log(sessions, rows: list[dict[str, Any]]) -> None:  # type: ignore[no-untyped-def]
    with sessions() as s, s.begin():
        repo.insert_many_ignore(s, PredictionLog.__table__, rows)


def _trigger(sessions, cfg: RunnerConfig, model: str, tid: str | None = None,  # type: ignore[no-untyped-def]
             with_row: bool = True) -> str:
    tid = tid or uuid.uuid4().hex
    with sessions() as s, s.begin():
        if with_row:
            repo.add_trigger(s, id=tid, dedupe_key=f"{model}:{tid}", model=model, model_version="1",
                             action="retrain", status="published", reason="drift", finding_ids={"findings": []})
        enqueue(s, cfg.jobs_topic, TriggerMessage(id=tid, action="retrain", model=model, model_version="1",
                                                  reason="drift in 2 of 3 features"))
    return tid


def _config(**kw: Any) -> RunnerConfig:
    base: dict[str, Any] = {"entrypoint": ENTRY, "namespace": "t", "window_rows": 400, "min_rows": 50,
                            "lease_s": 30.0}
    base.update(kw)
    return RunnerConfig(**base)  # type: ignore[arg-type]


def _events(sessions, job_id: str) -> list[str]:  # type: ignore[no-untyped-def]
    with sessions() as s:
        return [m for m in s.scalars(select(OutboxMessage.message_id).where(
            OutboxMessage.message_id.startswith(job_id)).order_by(OutboxMessage.id))]


def _jobs(sessions, model: str) -> list[jobs_repo.JobView]:  # type: ignore[no-untyped-def]
    with sessions() as s:
        return jobs_repo.list_jobs(s, model)


def _trigger_status(sessions, tid: str) -> str:  # type: ignore[no-untyped-def]
    with sessions() as s:
        return str(s.scalar(select(Trigger.status).where(Trigger.id == tid)))


# --- the training window ------------------------------------------------------------------------------------


def test_window_is_the_newest_labelled_rows_and_holdout_the_most_recent(sessions, model: str) -> None:  # type: ignore[no-untyped-def]
    _log(sessions, _rows(model, 300, start=T0, shifted=False, prefix="old"))
    _log(sessions, _rows(model, 50, start=T0 + timedelta(hours=1), shifted=False, prefix="nolabel",
                         labelled=False))
    _log(sessions, _rows(model, 200, start=T0 + timedelta(hours=2), shifted=True, prefix="new", version="2"))
    with sessions() as s:
        data = export_window(s, model, limit=250)
        only_v1 = export_window(s, model, limit=1000, model_version="1")
    assert len(data) == 250 and data.task == "classification"
    assert data.versions == {"1": 50, "2": 200}  # all versions: the labels are the truth whoever predicted
    assert data.first_at == T0 + timedelta(seconds=250) and data.last_at == T0 + timedelta(hours=2, seconds=199)
    assert list(data.frame.columns) == ["a", "b", "c", "label"]
    assert str(data.frame["a"].dtype) == "float64" and set(data.frame["label"]) <= {"0", "1"}
    assert only_v1.versions == {"1": 300}
    train, holdout = time_split(data.frame, 0.2)
    assert (len(train), len(holdout)) == (200, 50)
    # the held-out rows are the 50 most recent, in time order (not a random sample)
    assert holdout["a"].tolist() == data.frame["a"].iloc[200:].tolist()


def test_promotion_rule() -> None:
    acc, mae = metric_for("classification"), metric_for("regression")
    assert judge(acc, 0.8, None).promote
    assert judge(acc, 0.81, 0.8).promote and not judge(acc, 0.8, 0.8).promote
    assert not judge(acc, 0.85, 0.8, margin=0.05).promote and judge(acc, 0.86, 0.8, margin=0.05).promote
    assert judge(mae, 1.0, 1.2).promote and not judge(mae, 1.3, 1.2).promote  # lower MAE is better


# --- challenger vs champion ---------------------------------------------------------------------------------


def test_first_version_becomes_champion_then_a_better_one_replaces_it_and_a_worse_one_does_not(
        sessions, registry: mr.MlflowRegistry, model: str) -> None:  # type: ignore[no-untyped-def]
    cfg = _config()
    runner = RetrainRunner(sessions, cfg, registry)
    _log(sessions, _rows(model, 400, start=T0, shifted=False, prefix="a"))
    t1 = _trigger(sessions, cfg, model)
    [job1] = runner.run_pending()
    assert job1.status == "succeeded" and job1.attempt == 1 and job1.new_version == "1"
    assert job1.outcome is not None and job1.outcome["promoted"] and job1.outcome["champion"] is None
    assert "no champion yet" in job1.outcome["reason"]
    assert str(registry.alias_version(model, "champion").version) == "1"  # type: ignore[union-attr]
    assert _trigger_status(sessions, t1) == "succeeded"
    assert _events(sessions, job1.id) == [f"{job1.id}:queued:0", f"{job1.id}:running:1", f"{job1.id}:succeeded:1"]

    # the traffic shifts (and with it what the labels mean): v2 learns it, v1 is wrong on the recent data
    _log(sessions, _rows(model, 400, start=T0 + timedelta(days=1), shifted=True, prefix="b", seed=1))
    _trigger(sessions, cfg, model)
    [job2] = runner.run_pending()
    out = job2.outcome
    assert job2.status == "succeeded" and job2.new_version == "2" and out is not None
    assert out["promoted"] and out["champion"]["version"] == "1"
    assert out["challenger"]["holdout"] > 0.85 and out["champion"]["holdout"] < 0.3
    assert out["data"]["holdout_rows"] == 80 and out["data"]["training_rows"] == 320
    assert out["data"]["first_at"] == (T0 + timedelta(days=1)).isoformat()  # only the shifted rows: the last 400
    assert str(registry.alias_version(model, "champion").version) == "2"  # type: ignore[union-attr]
    run = registry.client.get_run(job2.mlflow_run_id)  # type: ignore[arg-type]
    assert run.info.status == "FINISHED"
    assert run.data.tags[mr.TAG_JOB] == job2.id and run.data.tags[mr.TAG_DECISION] == "promoted"
    assert run.data.metrics["holdout_accuracy"] == out["challenger"]["holdout"]
    assert run.data.metrics["champion_holdout_accuracy"] == out["champion"]["holdout"]
    assert run.data.metrics["training_rows"] == 320 and run.data.params["metric"] == "accuracy"
    mv = registry.client.get_model_version(model, "2")
    assert mv.run_id == job2.mlflow_run_id and mv.tags[mr.TAG_JOB] == job2.id

    # a worse challenger (always "0") is registered, evaluated, and kept out of the alias, with the reason
    worse = RetrainRunner(sessions, replace(cfg, entrypoint="tests.retrain_entrypoints:train_constant",
                                            params={"label": "0"}), registry)
    _trigger(sessions, cfg, model)
    [job3] = worse.run_pending()
    out3 = job3.outcome
    assert job3.status == "succeeded" and job3.new_version == "3" and out3 is not None
    assert not out3["promoted"] and out3["champion"]["version"] == "2"
    assert out3["challenger"]["holdout"] < out3["champion"]["holdout"]
    assert "not better" in out3["reason"]
    assert str(registry.alias_version(model, "champion").version) == "2"  # type: ignore[union-attr]
    run3 = registry.client.get_run(job3.mlflow_run_id)  # type: ignore[arg-type]
    assert run3.data.tags[mr.TAG_DECISION] == "kept" and run3.data.tags[mr.TAG_REASON] == out3["reason"]
    assert registry.client.get_model_version(model, "3").tags[mr.TAG_DECISION] == "kept"


def test_a_failing_entry_point_fails_the_job_and_the_run(sessions, registry: mr.MlflowRegistry,  # type: ignore[no-untyped-def]
                                                         model: str) -> None:
    cfg = _config(entrypoint="tests.retrain_entrypoints:train_broken")
    _log(sessions, _rows(model, 200, start=T0, shifted=False, prefix="a"))
    tid = _trigger(sessions, cfg, model)
    [job] = RetrainRunner(sessions, cfg, registry).run_pending()
    assert job.status == "failed" and job.error == "RuntimeError: the training code failed"
    assert registry.client.get_run(job.mlflow_run_id).info.status == "FAILED"  # type: ignore[arg-type]
    assert _trigger_status(sessions, tid) == "failed"
    assert _events(sessions, job.id)[-1] == f"{job.id}:failed:1"
    # too little labelled data is a failed job too (with the reason), before any MLflow run exists
    other = f"{model}-empty"
    _log(sessions, _rows(other, 10, start=T0, shifted=False, prefix="few"))
    _trigger(sessions, cfg, other)
    [few] = RetrainRunner(sessions, _config(), registry).run_pending()
    assert few.status == "failed" and "only 10 labelled predictions" in (few.error or "")
    assert few.mlflow_run_id is None


def test_regression_labels_are_judged_by_mae(sessions, registry: mr.MlflowRegistry, model: str) -> None:  # type: ignore[no-untyped-def]
    rows = _rows(model, 300, start=T0, shifted=False, prefix="r")
    for r in rows:  # a value to predict instead of a class
        r.update(y_true=None, y_true_value=3.0 * r["features"]["a"] - r["features"]["b"] + 1.0)
    _log(sessions, rows)
    cfg = _config(entrypoint="tests.retrain_entrypoints:train_linreg")
    _trigger(sessions, cfg, model)
    [job] = RetrainRunner(sessions, cfg, registry).run_pending()
    assert job.status == "succeeded", job.error
    out = job.outcome or {}
    assert out["metric"] == "mae" and out["higher_is_better"] is False and out["data"]["task"] == "regression"
    assert out["challenger"]["holdout"] < 1e-6 and out["promoted"]


# --- one job per trigger, one running job per model ---------------------------------------------------------


def test_duplicate_trigger_message_creates_one_job(sessions, kafka_bootstrap: str,  # type: ignore[no-untyped-def]
                                                   registry: mr.MlflowRegistry, model: str) -> None:
    from kafka import KafkaConsumer, KafkaProducer

    from streams.admin import ensure_topics

    ns = f"t{uuid.uuid4().hex[:10]}"
    cfg = _config(namespace=ns, bootstrap_servers=kafka_bootstrap)
    ensure_topics(kafka_bootstrap, 1, names=[cfg.triggers_topic, jobs_topic(ns)])
    tid = uuid.uuid4().hex
    trigger = {"id": tid, "dedupe_key": f"{model}:1:rule:count:3", "action": "retrain", "model": model,
               "model_version": "1", "reason": "drift", "findings": ["f1"], "rule": "models/*/0",
               "window": {"kind": "count", "index": 3, "end_at": None}}
    alert = {**trigger, "id": uuid.uuid4().hex, "action": "alert"}
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    for value in (trigger, trigger, alert, {"not": "a trigger"}, trigger):  # the relay republished it twice
        producer.send(cfg.triggers_topic, key=model.encode(), value=json.dumps(value).encode(),
                      headers=[("opsloop-id", str(value.get("id", "")).encode())])
    producer.flush()
    producer.close()

    runner = RetrainRunner(sessions, cfg, registry)
    consumer = runner._make_consumer()
    seen, deadline = 0, time.monotonic() + 60
    try:
        while seen < 5 and time.monotonic() < deadline:
            seen += runner.poll_once(consumer, timeout_ms=1000)
    finally:
        consumer.close(autocommit=False)
    assert seen == 5
    with sessions() as s:
        jobs = s.scalars(select(Job)).all()
        assert [(j.trigger_id, j.status, j.attempt) for j in jobs] == [(tid, "queued", 0)]
        assert jobs[0].trigger["findings"] == ["f1"]
    assert runner.jobs_created == 1
    assert _events(sessions, jobs[0].id) == [f"{jobs[0].id}:queued:0"]
    # the offsets were committed after the job row: the group has nothing left to read
    again = KafkaConsumer(cfg.triggers_topic, bootstrap_servers=kafka_bootstrap, group_id=consumer_group(ns),
                          enable_auto_commit=False, auto_offset_reset="earliest", consumer_timeout_ms=3000)
    try:
        assert list(again) == []
    finally:
        again.close()


def test_lease_lets_one_job_per_model_run(sessions) -> None:  # type: ignore[no-untyped-def]
    cfg = _config()
    for tid, model in (("a1", "m"), ("a2", "m"), ("b1", "other")):
        _trigger(sessions, cfg, model, tid=tid, with_row=False)
    with sessions() as s, s.begin():
        first = jobs_repo.claim_next(s, owner="r1", lease_s=30, action="retrain")
    with sessions() as s, s.begin():  # a runner that serves other models only claims theirs
        assert jobs_repo.claim_next(s, owner="r3", lease_s=30, action="retrain", accept=lambda m: m == "x") is None
    with sessions() as s, s.begin():
        second = jobs_repo.claim_next(s, owner="r2", lease_s=30, action="retrain")
    with sessions() as s, s.begin():
        third = jobs_repo.claim_next(s, owner="r2", lease_s=30, action="retrain")
    assert first is not None and first.trigger_id == "a1" and first.model == "m"
    assert second is not None and second.model == "other"  # m is busy: its next job waits
    assert third is None
    # the database itself refuses a second running job of a model
    with sessions() as s, s.begin(), pytest.raises(IntegrityError), s.begin_nested():
        s.execute(update(Job).where(Job.trigger_id == "a2").values(status="running"))
    with sessions() as s, s.begin():
        assert jobs_repo.finish_job(s, first.id, owner="r1", attempt=1, status="succeeded", outcome={})
        assert not jobs_repo.finish_job(s, second.id, owner="r1", attempt=1, status="succeeded")  # not r1's lease
    with sessions() as s, s.begin():
        fourth = jobs_repo.claim_next(s, owner="r2", lease_s=30, action="retrain")
    assert fourth is not None and fourth.trigger_id == "a2" and fourth.attempt == 1


def test_two_runners_run_two_jobs_of_a_model_one_after_the_other(sessions, registry: mr.MlflowRegistry,  # type: ignore[no-untyped-def]
                                                                  model: str, tmp_path: Path) -> None:
    record = tmp_path / "intervals.jsonl"
    cfg = _config(params={"sleep_s": 1.0, "record": str(record)})
    _log(sessions, _rows(model, 300, start=T0, shifted=False, prefix="a"))
    _trigger(sessions, cfg, model)
    _trigger(sessions, cfg, model)
    runners = [RetrainRunner(sessions, replace(cfg, owner=f"runner-{i}"), registry) for i in range(2)]
    finished: list[Any] = []
    stop = time.monotonic() + 90

    def work(r: RetrainRunner) -> None:
        while time.monotonic() < stop and len(finished) < 2:
            finished.extend(r.run_pending())
            time.sleep(0.05)

    threads = [threading.Thread(target=work, args=(r,)) for r in runners]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(j.status for j in finished) == ["succeeded", "succeeded"]
    spans = sorted((d["start"], d["end"]) for d in map(json.loads, record.read_text().splitlines()))
    assert len(spans) == 2 and spans[0][1] <= spans[1][0], f"jobs overlapped: {spans}"
    assert sorted(j.new_version for j in finished) == ["1", "2"]


# --- crash safety ---------------------------------------------------------------------------------------------


def _expire(sessions, job_id: str) -> None:  # type: ignore[no-untyped-def]
    with sessions() as s, s.begin():
        s.execute(update(Job).where(Job.id == job_id)
                  .values(lease_until=datetime.now(UTC) - timedelta(seconds=1)))


def test_a_dead_attempt_is_resumed_as_attempt_2_of_the_same_job(sessions, registry: mr.MlflowRegistry,  # type: ignore[no-untyped-def]
                                                                model: str) -> None:
    cfg = _config()
    _log(sessions, _rows(model, 300, start=T0, shifted=False, prefix="a"))
    tid = _trigger(sessions, cfg, model)
    # attempt 1: claimed, its MLflow run started and recorded, then the runner dies (no more writes)
    dead = RetrainRunner(sessions, replace(cfg, owner="dead-runner"), registry)
    job = dead.claim()
    assert job is not None and job.attempt == 1
    dead_run = registry.start_run(job_id=job.id, attempt=1, tags={})
    with sessions() as s, s.begin():
        assert jobs_repo.update_running(s, job.id, owner="dead-runner", attempt=1, mlflow_run_id=dead_run)
    # a live runner leaves it alone while the lease holds ...
    assert RetrainRunner(sessions, cfg, registry).run_pending() == []
    _expire(sessions, job.id)
    # ... and resumes the same row as attempt 2 once it expired
    [done] = RetrainRunner(sessions, cfg, registry).run_pending()
    assert done.id == job.id and done.attempt == 2 and done.status == "succeeded" and done.new_version == "1"
    old = registry.client.get_run(dead_run)
    assert old.info.status == "FAILED" and old.data.tags[mr.TAG_JOB] == job.id
    assert "resumed as attempt 2" in old.data.tags[mr.TAG_ABANDONED]
    new = registry.client.get_run(done.mlflow_run_id)  # type: ignore[arg-type]
    assert new.info.status == "FINISHED" and new.data.tags[mr.TAG_ATTEMPT] == "2"
    assert new.info.start_time >= old.info.end_time  # the dead run was closed before the new one started
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Job)) == 1
    assert _events(sessions, job.id) == [f"{job.id}:queued:0", f"{job.id}:running:1", f"{job.id}:running:2",
                                         f"{job.id}:succeeded:2"]
    assert _trigger_status(sessions, tid) == "succeeded"


def test_an_attempt_that_died_after_moving_the_alias_is_not_repeated(sessions, registry: mr.MlflowRegistry,  # type: ignore[no-untyped-def]
                                                                     model: str, monkeypatch) -> None:
    cfg = _config()
    _log(sessions, _rows(model, 300, start=T0, shifted=False, prefix="a"))
    _trigger(sessions, cfg, model)
    crashing = RetrainRunner(sessions, replace(cfg, owner="dies-at-the-end"), registry)
    with monkeypatch.context() as m:  # the process "dies" between the alias move and the job row's update
        m.setattr(jobs_repo, "finish_job", lambda *a, **k: (_ for _ in ()).throw(ConnectionError("gone")))
        assert crashing.run_pending() == []
    [job] = _jobs(sessions, model)
    assert job.status == "running" and job.attempt == 1
    assert str(registry.alias_version(model, "champion").version) == "1"  # type: ignore[union-attr]
    _expire(sessions, job.id)
    [done] = RetrainRunner(sessions, cfg, registry).run_pending()
    assert done.attempt == 2 and done.status == "succeeded" and done.new_version == "1"
    assert done.outcome is not None and done.outcome["recovered"] and done.outcome["promoted"]
    assert [str(mv.version) for mv in registry.client.search_model_versions(f"name = '{model}'")] == ["1"]


def test_a_job_that_keeps_dying_fails_after_max_attempts(sessions, registry: mr.MlflowRegistry,  # type: ignore[no-untyped-def]
                                                         model: str) -> None:
    cfg = _config(max_attempts=2)
    tid = _trigger(sessions, cfg, model)
    for attempt in (1, 2):
        job = RetrainRunner(sessions, replace(cfg, owner=f"doomed-{attempt}"), registry).claim()
        assert job is not None and job.attempt == attempt
        _expire(sessions, job.id)
    assert RetrainRunner(sessions, cfg, registry).run_pending() == []
    [job] = _jobs(sessions, model)
    assert job.status == "failed" and job.attempt == 2 and "gave up after 2 attempts" in (job.error or "")
    assert _trigger_status(sessions, tid) == "failed"
    assert _events(sessions, job.id)[-1] == f"{job.id}:failed:2"


# --- an MLflow Project as the entry point ---------------------------------------------------------------------

_MLPROJECT = """\
name: opsloop-test-project
entry_points:
  main:
    parameters:
      train_path: path
      C: {type: float, default: 1.0}
    command: "python train.py --train-path {train_path} --C {C}"
"""
_TRAIN_PY = """\
import argparse

import mlflow
import mlflow.sklearn
import pandas as pd
from sklearn.linear_model import LogisticRegression

ap = argparse.ArgumentParser()
ap.add_argument("--train-path")
ap.add_argument("--C", type=float)
args, _ = ap.parse_known_args()
df = pd.read_parquet(args.train_path)
x = df[["a", "b"]]
with mlflow.start_run():  # the runner's run (MLFLOW_RUN_ID)
    model = LogisticRegression(C=args.C).fit(x, df["label"])
    mlflow.log_param("project_rows", len(df))
    mlflow.sklearn.log_model(model, name="model", input_example=x.head(3), pip_requirements=["scikit-learn"])
"""


def test_an_mlflow_project_trains_in_the_jobs_run(registry: mr.MlflowRegistry, model: str, tmp_path: Path) -> None:
    """The project runs in a subprocess for seconds; the database side is the same as above, so SQLite only."""
    from storage.db import make_engine, migrate, session_factory

    project = tmp_path / "project"
    project.mkdir()
    (project / "MLproject").write_text(_MLPROJECT)
    (project / "train.py").write_text(_TRAIN_PY)
    engine = make_engine(f"sqlite:///{tmp_path / 'opsloop.db'}")
    migrate(engine)
    sessions = session_factory(engine)
    cfg = _config(entrypoint="", project_uri=str(project), params={"C": 0.5})
    _log(sessions, _rows(model, 300, start=T0, shifted=False, prefix="a"))
    _trigger(sessions, cfg, model)
    [job] = RetrainRunner(sessions, cfg, registry).run_pending()
    engine.dispose()
    assert job.status == "succeeded", job.error
    assert job.new_version == "1" and job.outcome is not None and job.outcome["promoted"]
    assert job.outcome["challenger"]["holdout"] > 0.85
    run = registry.client.get_run(job.mlflow_run_id)  # type: ignore[arg-type]
    assert run.data.tags[mr.TAG_JOB] == job.id and run.data.params["project_rows"] == "240"
    assert run.info.status == "FINISHED" and run.data.params["param.C"] == "0.5"


def test_models_are_filed_under_the_jobs_experiment(registry: mr.MlflowRegistry) -> None:
    """Runs earlier in this module logged models: every one belongs to the retrain experiment (its artifacts
    beside the store), none to MLflow's default experiment (whose artifacts would land in ./mlruns)."""
    models = registry.client.search_logged_models(experiment_ids=["0", registry.experiment_id()])
    assert models and {m.experiment_id for m in models} == {registry.experiment_id()}
    assert all(m.artifact_location.startswith(registry.artifact_location or "-") for m in models)
