"""The retrain loop end to end: predictions and labels -> real broker -> `opsloop worker` -> drift -> trigger ->
`opsloop relay` -> the retrain runner process -> MLflow version 2, compared with version 1 on held-out recent
data, alias moved -> traffic of version 2 judged against its own warm-up. The runner is killed with SIGKILL
mid-job and restarted: still one job, resumed as attempt 2, one champion move."""

from __future__ import annotations

import os
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from opsloop.simulate import LabelScenario, Scenario, events, feedback
from retrain import mlflow_registry as mr
from retrain.runner import jobs_topic
from retrain.training import frame_from_rows
from storage.models import Finding, Job, PredictionLog, Trigger, Window
from tests.e2e.harness import Loop, publish_all, wait_for
from tests.retrain_entrypoints import train_logreg

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.e2e]

REPO = Path(__file__).resolve().parents[2]
MODEL = "credit-risk"
SHIFTED = ("country", "x1", "x4")
# reference: events 0-999; windows of 500: #0, #1 as the reference, #2.. shifted -> one retrain trigger (cooldown)
V1_TRAFFIC = Scenario(model=MODEL, n_events=4000, drift_after=2000, drifted=SHIFTED, seed=21)
# with the shift the labels change meaning too: v1 keeps being right on 95 % before, 15 % after
LABELS = LabelScenario(accuracy=0.95, degraded_accuracy=0.15, degrade_after=2000, delay=timedelta(minutes=1), seed=5)
# traffic of the new version, from the new distribution from its first event on
V2_TRAFFIC = Scenario(model=MODEL, version="2", n_events=2500, drift_after=0, drifted=SHIFTED, seed=22)


@pytest.fixture
def loop(kafka_bootstrap: str, pg_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    lp = Loop(kafka_bootstrap, pg_url, tmp_path, partitions=2)
    lp.extra_env.update({
        "OPSLOOP_WORKER_REFERENCE_SIZE": "1000",
        "OPSLOOP_WORKER_WINDOW_SIZE": "500",
        "OPSLOOP_RETRAIN_ENTRYPOINT": "tests.retrain_entrypoints:train_logreg",
        "OPSLOOP_RETRAIN_PARAMS": '{"sleep_s": 5}',   # so the SIGKILL lands mid-job
        "OPSLOOP_RETRAIN_WINDOW_ROWS": "1500",
        "OPSLOOP_RETRAIN_LEASE_S": "3",
        "OPSLOOP_RETRAIN_POLL_INTERVAL_S": "0.2",
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p),
    })
    yield lp
    lp.close()


def _register_v1(tracking_uri: str) -> mr.MlflowRegistry:
    """Version 1, trained on the traffic before the shift and made champion, as a team would have done."""
    sample = [e for e, _ in zip(events(V1_TRAFFIC), range(2000))]
    labels = {f.prediction_id: f.label for f in feedback(V1_TRAFFIC, LABELS)}
    frame = frame_from_rows([dict(e.features) for e in sample], [str(labels[e.prediction_id]) for e in sample])
    reg = mr.MlflowRegistry(tracking_uri)
    run_id = reg.start_run(job_id="bootstrap", attempt=1, tags={})
    logged = reg.log_sklearn_model(run_id, train_logreg(frame, {}), frame.drop(columns=["label"]))
    reg.finish_run(run_id)
    assert reg.register(MODEL, logged.model_uri, tags={}) == "1"
    reg.set_alias(MODEL, "champion", "1")
    return reg


def _runner(loop: Loop) -> subprocess.Popen[bytes]:
    return loop.spawn("retrain-runner", name="runner")


def _job(loop: Loop) -> Job | None:
    with loop.sessions() as s:
        return s.scalars(select(Job)).first()


def test_drift_retrains_registers_v2_promotes_it_and_survives_a_killed_runner(loop: Loop) -> None:
    registry = _register_v1(loop.extra_env["MLFLOW_TRACKING_URI"])
    loop.worker()
    loop.relay()
    with loop.publisher() as pub:
        n = publish_all(pub, [(e.model.name, e.model_dump_json().encode()) for e in events(V1_TRAFFIC)],
                        loop.topics.predictions)
        for fb in feedback(V1_TRAFFIC, LABELS):
            pub.feedback(fb)
    loop.wait_applied(n)

    def labelled() -> int:
        with loop.sessions() as s:
            return int(s.scalar(select(func.count()).select_from(PredictionLog)
                                .where(PredictionLog.y_true.is_not(None))) or 0)

    wait_for(lambda: labelled() >= n, 120, "every label joined")
    with loop.sessions() as s:
        triggers = s.scalars(select(Trigger).where(Trigger.action == "retrain")).all()
    assert [(t.model, t.model_version) for t in triggers] == [(MODEL, "1")], loop.logs()
    trigger_id = triggers[0].id

    # the runner picks the trigger up; it is killed while the entry point trains
    first = _runner(loop)
    wait_for(lambda: (j := _job(loop)) is not None and j.status == "running" and j.mlflow_run_id is not None,
             120, "the job to be running with its MLflow run")
    loop.kill(first)
    dead = _job(loop)
    assert dead is not None and dead.status == "running" and dead.attempt == 1
    dead_run = dead.mlflow_run_id

    _runner(loop)
    wait_for(lambda: (j := _job(loop)) is not None and j.status in ("succeeded", "failed"), 120,
             "the resumed job to finish")
    with loop.sessions() as s:
        jobs = s.scalars(select(Job)).all()
        trigger = s.get(Trigger, trigger_id)
    assert len(jobs) == 1, "one job per trigger, also across a crash"
    job = jobs[0]
    assert (job.trigger_id, job.status, job.attempt, job.new_version) == (trigger_id, "succeeded", 2, "2"), \
        (job.error, loop.logs())
    out = job.outcome or {}
    assert out["promoted"] and out["champion"]["version"] == "1" and out["challenger"]["version"] == "2"
    assert out["challenger"]["holdout"] > out["champion"]["holdout"] + 0.3
    assert out["data"]["rows"] == 1500 and out["data"]["holdout_rows"] == 300
    assert trigger is not None and trigger.status == "succeeded"

    # MLflow: the dead attempt's run FAILED, one new version, the alias moved once (to it)
    assert str(registry.alias_version(MODEL, "champion").version) == "2"  # type: ignore[union-attr]
    versions = sorted(int(mv.version) for mv in registry.client.search_model_versions(f"name = '{MODEL}'"))
    assert versions == [1, 2]
    old = registry.client.get_run(dead_run)  # type: ignore[arg-type]
    assert old.info.status == "FAILED" and old.data.tags[mr.TAG_JOB] == job.id
    assert registry.client.get_run(job.mlflow_run_id).info.status == "FINISHED"  # type: ignore[arg-type]

    # the job's status events, through the outbox and the relay
    events_ = loop.read_topic(jobs_topic(loop.namespace), expect=4)
    assert [m["id"] for m in events_] == [f"{job.id}:queued:0", f"{job.id}:running:1", f"{job.id}:running:2",
                                          f"{job.id}:succeeded:2"]
    assert events_[-1]["value"]["outcome"]["promoted"] is True

    # the app now serves version 2 on the new distribution: its own warm-up is its reference, no drift
    with loop.publisher() as pub:
        m = publish_all(pub, [(e.model.name, e.model_dump_json().encode()) for e in events(V2_TRAFFIC)],
                        loop.topics.predictions)
    loop.wait_applied(n + m)

    def v2_windows() -> int:
        with loop.sessions() as s:
            return int(s.scalar(select(func.count()).select_from(Window).where(Window.model_version == "2")) or 0)

    wait_for(lambda: v2_windows() >= 3, 60, "version 2's windows")
    with loop.sessions() as s:
        v2_drift = s.scalars(select(Finding).where(Finding.model_version == "2",
                                                   Finding.detector == "drift.features")).all()
        v1_drift = s.scalars(select(Finding).where(Finding.model_version == "1",
                                                   Finding.detector == "drift.features")).all()
        assert s.scalar(select(func.count()).select_from(Trigger).where(Trigger.model_version == "2")) == 0
    assert v1_drift, "version 1 drifted"
    assert v2_drift == [], [f.summary for f in v2_drift]
