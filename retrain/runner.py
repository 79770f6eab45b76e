"""The retrain runner: trigger messages in, one job per trigger, one running job per model, MLflow out.

``RetrainRunner.run_forever`` consumes ``<ns>.opsloop.triggers.v1`` with kafka-python in the group
``opsloop-retrain-<ns>`` and commits offsets only after the job rows of a batch are committed. A trigger whose
``action`` is not ``retrain`` is left for other runners. The database is the queue: the runner claims the oldest
runnable job (see ``storage.jobs_repo``) and runs it on a worker thread while the consumer keeps polling.

A job (``JobExecutor``): export the model's recent labelled window, split off the most recent part as held-out
data, call the user's entry point, log the run and the model in MLflow, register a version, evaluate challenger
and champion on the held-out data, and move the ``champion`` alias only when the challenger is better by more
than the margin. Status events (queued, running, succeeded, failed) go through the outbox to
``<ns>.opsloop.jobs.v1`` with ``opsloop-id = <job id>:<status>:<attempt>``, written in the same transaction as
the status change. See ``docs/retrain.md``.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import os
import socket
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from retrain import mlflow_registry as mr
from retrain.training import (
    LABEL,
    TrainingError,
    Verdict,
    export_window,
    fit,
    judge,
    load_entrypoint,
    metric_for,
    score,
    time_split,
)
from storage import jobs_repo, repo
from storage.jobs_repo import FAILED, RUNNING, SUCCEEDED, JobView
from storage.models import utcnow

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

ACTION = "retrain"
ID_HEADER = "opsloop-id"
JOBS_TOPIC = "opsloop.jobs.v1"
TRIGGERS_TOPIC = "opsloop.triggers.v1"


def jobs_topic(namespace: str = "") -> str:
    prefix = f"{namespace}." if namespace else ""
    return f"{prefix}{JOBS_TOPIC}"


def consumer_group(namespace: str = "") -> str:
    return f"opsloop-retrain-{namespace}" if namespace else "opsloop-retrain"


def default_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class TriggerMessage(BaseModel):
    """A trigger as published by the relay. Unknown fields are ignored (other producers may add some)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: str = Field(min_length=1, max_length=64)
    dedupe_key: str | None = None
    action: str = Field(min_length=1, max_length=30)
    model: str = Field(min_length=1, max_length=200)
    model_version: str = Field(min_length=1, max_length=100)
    reason: str = ""
    findings: list[Any] = Field(default_factory=list)
    window: dict[str, Any] | None = None


@dataclass(frozen=True)
class RunnerConfig:
    namespace: str = ""
    bootstrap_servers: str = "127.0.0.1:9092"
    entrypoint: str = ""                       # "package.module:function"
    project_uri: str = ""                      # or an MLflow Project (run locally, env_manager="local")
    project_entry_point: str = "main"
    params: dict[str, Any] = field(default_factory=dict)
    window_rows: int = 5000
    scope: Literal["model", "version"] = "model"  # labelled rows of every version, or of the trigger's version
    holdout_fraction: float = 0.2
    min_rows: int = 50
    task: Literal["auto", "classification", "regression"] = "auto"
    metric: str | None = None                  # None: accuracy (classification), mae (regression)
    margin: float = 0.0
    alias: str = "champion"
    lease_s: float = 60.0
    max_attempts: int = 3
    poll_interval_s: float = 0.5
    shutdown_grace_s: float = 30.0
    session_timeout_s: float = 10.0            # the group notices a dead runner this fast (kafka-python: 45 s)
    serialization: Literal["skops", "cloudpickle"] = "skops"
    pip_requirements: tuple[str, ...] | Literal["infer"] | None = None  # None: the installed versions, pinned
    models: tuple[str, ...] = ()               # fnmatch patterns of the models this runner trains; () = all
    owner: str = field(default_factory=default_owner)

    def __post_init__(self) -> None:
        if bool(self.entrypoint) == bool(self.project_uri):
            raise ValueError("set exactly one of entrypoint ('module:function') and project_uri")
        if not 0 < self.holdout_fraction < 1:
            raise ValueError(f"holdout_fraction must be in (0, 1), got {self.holdout_fraction}")
        if self.window_rows < 2 or self.min_rows < 2:
            raise ValueError("window_rows and min_rows must be at least 2")
        if self.lease_s <= 0 or self.max_attempts < 1:
            raise ValueError("lease_s must be > 0 and max_attempts >= 1")

    def serves(self, model: str) -> bool:
        return not self.models or any(fnmatch.fnmatchcase(model, p) for p in self.models)

    @property
    def jobs_topic(self) -> str:
        return jobs_topic(self.namespace)

    @property
    def triggers_topic(self) -> str:
        prefix = f"{self.namespace}." if self.namespace else ""
        return f"{prefix}{TRIGGERS_TOPIC}"

    def pinned_requirements(self) -> list[str] | None:
        if self.pip_requirements == "infer":
            return None  # MLflow infers them (loads the model in a subprocess: seconds per job)
        if self.pip_requirements is not None:
            return list(self.pip_requirements)
        names = ["scikit-learn", "numpy", "pandas", "scipy",
                 "skops" if self.serialization == "skops" else "cloudpickle"]
        out = []
        for name in names:
            try:
                out.append(f"{name}=={metadata.version(name)}")
            except metadata.PackageNotFoundError:
                out.append(name)
        return out


# --- events --------------------------------------------------------------------------------------------------


def _event(job: JobView, status: str, attempt: int, **extra: Any) -> dict[str, Any]:
    return {"id": f"{job.id}:{status}:{attempt}", "job_id": job.id, "trigger_id": job.trigger_id,
            "model": job.model, "model_version": job.model_version, "action": job.action, "status": status,
            "attempt": attempt, "at": utcnow().isoformat(), **extra}


def emit(session: Session, topic: str, job: JobView, status: str, attempt: int, **extra: Any) -> None:
    """A job status event, through the outbox (published by the relay after commit)."""
    payload = _event(job, status, attempt, **extra)
    repo.add_outbox(session, message_id=payload["id"], topic=topic, key=job.model, payload=payload)


def enqueue(session: Session, topic: str, msg: TriggerMessage) -> tuple[str, bool]:
    """Queue the job of a retrain trigger (insert-or-ignore on the trigger id); returns (job id, created)."""
    jid, created = jobs_repo.add_job(session, trigger_id=msg.id, model=msg.model, model_version=msg.model_version,
                                     action=msg.action, trigger=msg.model_dump(mode="json"))
    if created:
        job = jobs_repo.get_job(session, jid)
        assert job is not None
        emit(session, topic, job, "queued", 0)
    return jid, created


# --- one job -------------------------------------------------------------------------------------------------


class LeaseLost(Exception):
    """Another runner resumed this job: stop without writing anything more."""


@dataclass(frozen=True)
class _Result:
    status: str
    outcome: dict[str, Any] | None = None
    new_version: str | None = None
    error: str | None = None


class _Heartbeat:
    """Renews a job's lease every third of its length while the job runs (the entry point may take hours)."""

    def __init__(self, sessions: sessionmaker[Session], job: JobView, owner: str, lease_s: float) -> None:
        self.sessions, self.job, self.owner, self.lease_s = sessions, job, owner, lease_s
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{job.id[:8]}", daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.lease_s / 3):
            self.renew()

    def renew(self) -> bool:
        """True when the lease is confirmed ours for another ``lease_s``."""
        try:
            with self.sessions() as s, s.begin():
                held = jobs_repo.renew_lease(s, self.job.id, owner=self.owner, attempt=self.job.attempt,
                                             lease_s=self.lease_s)
        except Exception as exc:  # noqa: BLE001 - a database outage: try again at the next beat
            log.warning("job %s: lease renewal failed: %s", self.job.id, str(exc).splitlines()[0] if str(exc) else exc)
            return False
        if not held:
            log.warning("job %s: lease lost (another runner resumed attempt %d)", self.job.id, self.job.attempt)
            self.lost.set()
        return held

    def check(self) -> None:
        """Before a step that must not run twice (the alias move): the lease must be confirmed, not assumed."""
        if not self.renew() or self.lost.is_set():
            raise LeaseLost(self.job.id)


class JobExecutor:
    """Runs claimed jobs. Every database write is conditional on the job's lease (owner and attempt)."""

    def __init__(self, sessions: sessionmaker[Session], config: RunnerConfig, registry: mr.MlflowRegistry) -> None:
        self.sessions = sessions
        self.config = config
        self.registry = registry

    def run(self, job: JobView) -> JobView | None:
        """Run a claimed job to its end; returns the final row (None when the lease was lost)."""
        t0 = time.monotonic()
        with _Heartbeat(self.sessions, job, self.config.owner, self.config.lease_s) as beat:
            try:
                result = self._execute(job, beat)
            except LeaseLost:
                return None
            except Exception as exc:  # the entry point's and MLflow's errors fail the job
                log.exception("job %s (%s) attempt %d failed", job.id, job.model, job.attempt)
                result = _Result(FAILED, error=f"{type(exc).__name__}: {exc}"[:4000])
        outcome = dict(result.outcome or {})
        outcome["duration_s"] = round(time.monotonic() - t0, 3)
        try:
            with self.sessions() as s, s.begin():
                if not jobs_repo.finish_job(s, job.id, owner=self.config.owner, attempt=job.attempt,
                                            status=result.status, outcome=outcome, error=result.error,
                                            new_version=result.new_version):
                    log.warning("job %s: lease lost before it could be finished; the resuming attempt finishes it",
                                job.id)
                    return None
                jobs_repo.set_trigger_status(s, job.trigger_id, result.status)
                emit(s, self.config.jobs_topic, job, result.status, job.attempt, outcome=outcome,
                     error=result.error, new_version=result.new_version)
        except Exception:  # the lease will expire and another attempt finish the job
            log.exception("job %s: could not record the result", job.id)
            return None
        log.info("job %s (%s) attempt %d %s: %s", job.id, job.model, job.attempt, result.status,
                 outcome.get("reason") or result.error)
        with self.sessions() as s:
            return jobs_repo.get_job(s, job.id)

    # -- the steps ------------------------------------------------------------------------------------------

    def _progress(self, job: JobView, **values: Any) -> None:
        with self.sessions() as s, s.begin():
            if not jobs_repo.update_running(s, job.id, owner=self.config.owner, attempt=job.attempt, **values):
                raise LeaseLost(job.id)

    def _recover(self, job: JobView) -> _Result | None:
        """Attempt 2+: mark the dead attempt's runs FAILED; if it already moved the alias, the job is done."""
        reg, name = self.registry, job.model
        failed = reg.fail_unfinished_runs(job.id, attempt=job.attempt,
                                          extra_run_ids=(job.mlflow_run_id,) if job.mlflow_run_id else ())
        champion = reg.alias_version(name, self.config.alias)
        if champion is not None and (champion.tags or {}).get(mr.TAG_JOB) == job.id:
            recorded = json.loads((champion.tags or {}).get(mr.TAG_OUTCOME) or "{}")
            recorded.update(recovered=True, reason=recorded.get("reason") or "the alias was moved by an earlier attempt",
                            failed_runs=failed)
            log.info("job %s: attempt %d finds %s@%s = v%s moved by an earlier attempt; finishing", job.id,
                     job.attempt, name, self.config.alias, champion.version)
            return _Result(SUCCEEDED, recorded, new_version=str(champion.version))
        for mv in reg.versions_of_job(name, job.id):
            reg.set_version_tags(name, str(mv.version), {mr.TAG_ABANDONED: f"registered by an attempt that died; "
                                                                            f"superseded by attempt {job.attempt}"})
        return None

    def _execute(self, job: JobView, beat: _Heartbeat) -> _Result:
        cfg, reg, name = self.config, self.registry, job.model
        if job.attempt > 1:
            done = self._recover(job)
            if done is not None:
                return done
        with self.sessions() as s:
            data = export_window(s, name, limit=cfg.window_rows,
                                 model_version=job.model_version if cfg.scope == "version" else None, task=cfg.task)
        if len(data) < cfg.min_rows:
            raise TrainingError(f"only {len(data)} labelled predictions of {name} (at least {cfg.min_rows} needed)")
        metric = metric_for(data.task, cfg.metric)
        train, holdout = time_split(data.frame, cfg.holdout_fraction)
        fn = load_entrypoint(cfg.entrypoint) if cfg.entrypoint else None
        run_id = reg.start_run(job_id=job.id, attempt=job.attempt, tags={
            mr.TAG_TRIGGER: job.trigger_id, mr.TAG_MODEL: name, mr.TAG_MODEL_VERSION: job.model_version,
            "opsloop.reason": str(job.trigger.get("reason", ""))[:4000]})
        try:
            self._progress(job, mlflow_run_id=run_id)
            result = self._train_and_decide(job, beat, run_id, fn, data, train, holdout, metric)
        except BaseException as exc:
            failed = "lease lost to another runner" if isinstance(exc, LeaseLost) else f"{type(exc).__name__}: {exc}"
            try:
                reg.finish_run(run_id, failed=True, tags={mr.TAG_ERROR: failed})
            except Exception:  # noqa: BLE001 - the next attempt marks it FAILED
                log.warning("job %s: could not mark run %s FAILED", job.id, run_id)
            raise
        reg.finish_run(run_id)
        return result

    def _train(self, run_id: str, fn: Callable[..., Any] | None, train: pd.DataFrame
               ) -> tuple[str, Any | None]:
        """Train and log the model; returns (model URI, the fitted estimator when trained in this process)."""
        cfg, reg = self.config, self.registry
        features = train.drop(columns=[LABEL])
        if fn is not None:
            estimator = fit(fn, train, cfg.params)
            logged = reg.log_sklearn_model(run_id, estimator, features, serialization=cfg.serialization,
                                           pip_requirements=cfg.pinned_requirements())
            return logged.model_uri, estimator
        return run_project(reg, run_id, cfg, train), None

    def _train_and_decide(self, job: JobView, beat: _Heartbeat, run_id: str, fn: Callable[..., Any] | None,
                          data: Any, train: pd.DataFrame, holdout: pd.DataFrame, metric: Any) -> _Result:
        cfg, reg, name = self.config, self.registry, job.model
        reg.log_params(run_id, {**{f"param.{k}": v for k, v in cfg.params.items()},
                                "entrypoint": cfg.entrypoint or f"project:{cfg.project_uri}#{cfg.project_entry_point}",
                                "window_rows_limit": cfg.window_rows, "scope": cfg.scope, "task": data.task,
                                "holdout_fraction": cfg.holdout_fraction, "metric": metric.name,
                                "margin": cfg.margin, "trigger_id": job.trigger_id})
        reg.log_metrics(run_id, {"window_rows": len(data), "training_rows": len(train), "holdout_rows": len(holdout)})
        model_uri, estimator = self._train(run_id, fn, train)
        beat.check()
        x_hold, y_hold = holdout.drop(columns=[LABEL]), holdout[LABEL]
        challenger_score = score(metric, y_hold, reg.load(model_uri).predict(x_hold))
        metrics = {f"holdout_{metric.name}": challenger_score}
        if estimator is not None:
            metrics[f"train_{metric.name}"] = score(metric, train[LABEL], estimator.predict(train.drop(columns=[LABEL])))
        version = reg.register(name, model_uri, tags={mr.TAG_JOB: job.id, mr.TAG_ATTEMPT: str(job.attempt),
                                                      mr.TAG_TRIGGER: job.trigger_id, "opsloop.run_id": run_id})
        self._progress(job, new_version=version)
        champion = reg.alias_version(name, cfg.alias)
        champion_score: float | None = None
        verdict: Verdict | None = None
        if champion is not None:
            try:
                champion_model = reg.load(f"models:/{name}/{champion.version}")
                champion_score = score(metric, y_hold, champion_model.predict(x_hold))
                metrics[f"champion_holdout_{metric.name}"] = champion_score
            except Exception as exc:  # noqa: BLE001 - e.g. the champion's signature no longer fits the data
                verdict = Verdict(False, f"champion v{champion.version} could not be evaluated on the held-out data "
                                         f"({type(exc).__name__}: {str(exc)[:500]}); the alias stays")
        if verdict is None:
            verdict = judge(metric, challenger_score, champion_score, cfg.margin)
        reg.log_metrics(run_id, metrics)
        outcome: dict[str, Any] = {
            "metric": metric.name, "higher_is_better": metric.higher_is_better, "margin": cfg.margin,
            "alias": cfg.alias, "promoted": verdict.promote, "reason": verdict.reason,
            "challenger": {"version": version, "run_id": run_id, "holdout": challenger_score,
                           "train": metrics.get(f"train_{metric.name}")},
            "champion": None if champion is None else {"version": str(champion.version), "holdout": champion_score},
            "data": {"task": data.task, "rows": len(data), "training_rows": len(train), "holdout_rows": len(holdout),
                     "first_at": _iso(data.first_at), "last_at": _iso(data.last_at),
                     "model_versions": data.versions, "scope": cfg.scope},
        }
        decision = "promoted" if verdict.promote else "kept"
        tags = {mr.TAG_DECISION: decision, mr.TAG_REASON: verdict.reason}
        reg.set_tags(run_id, tags)
        reg.set_version_tags(name, version, {**tags, mr.TAG_OUTCOME: json.dumps(outcome, default=str)})
        if verdict.promote:
            beat.check()  # never move the alias for an attempt that lost its lease
            reg.set_alias(name, cfg.alias, version)
            log.info("job %s: %s@%s -> v%s (%s)", job.id, name, cfg.alias, version, verdict.reason)
        else:
            log.info("job %s: %s@%s stays v%s (%s)", job.id, name, cfg.alias,
                     champion.version if champion else "-", verdict.reason)
        return _Result(SUCCEEDED, outcome, new_version=version)


def _iso(t: datetime | None) -> str | None:
    return t.isoformat() if t else None


def run_project(reg: mr.MlflowRegistry, run_id: str, cfg: RunnerConfig, train: pd.DataFrame) -> str:
    """Run an MLflow Project in this job's run (locally, ``env_manager="local"``): it gets ``train_path`` (a
    Parquet file of the training data) plus the configured params, and must log a model named ``model``."""
    import mlflow.projects

    # env_manager="local": the project's `python` must be this interpreter, with MLflow and the same libraries
    bindir = os.path.dirname(sys.executable)
    if os.environ.get("PATH", "").split(os.pathsep)[0] != bindir:
        os.environ["PATH"] = os.pathsep.join([bindir, os.environ.get("PATH", "")])
    with tempfile.TemporaryDirectory(prefix="opsloop-train-") as tmp:
        path = Path(tmp) / "train.parquet"
        train.to_parquet(path, index=False)
        params = {**{k: v if isinstance(v, str) else json.dumps(v) for k, v in cfg.params.items()},
                  "train_path": str(path)}
        submitted = mlflow.projects.run(cfg.project_uri, entry_point=cfg.project_entry_point, parameters=params,
                                        env_manager="local", backend="local", synchronous=True, run_id=run_id,
                                        experiment_id=reg.experiment_id())
        if submitted.get_status() != "FINISHED":
            raise TrainingError(f"MLflow project {cfg.project_uri} ended {submitted.get_status()}")
    return f"runs:/{run_id}/{mr.MODEL_ARTIFACT}"


# --- the runner ----------------------------------------------------------------------------------------------


class RetrainRunner:
    """Consumer loop (Kafka) plus scheduler (database). ``run_pending`` runs jobs without Kafka (tests, tools)."""

    def __init__(self, sessions: sessionmaker[Session], config: RunnerConfig, registry: mr.MlflowRegistry,
                 *, consumer_factory: Callable[[], Any] | None = None) -> None:
        self.sessions = sessions
        self.config = config
        self.registry = registry
        self.executor = JobExecutor(sessions, config, registry)
        self._consumer_factory = consumer_factory or self._make_consumer
        self._stop = threading.Event()
        self.jobs_created = 0

    # -- triggers in ----------------------------------------------------------------------------------------

    def handle(self, session: Session, records: Sequence[Any]) -> int:
        """Queue the jobs of a batch of trigger records (in the caller's transaction); returns how many new."""
        created = 0
        for rec in records:
            where = f"{rec.topic}[{rec.partition}]@{rec.offset}"
            headers = dict(rec.headers or [])
            header_id = headers.get(ID_HEADER, b"").decode(errors="replace") if headers.get(ID_HEADER) else None
            try:
                msg = TriggerMessage.model_validate_json(rec.value or b"")
            except ValidationError as exc:
                log.error("trigger %s is not a valid trigger, skipped: %s", where,
                          "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                                    for e in exc.errors(include_input=False)[:5]))
                continue
            if header_id and header_id != msg.id:
                log.warning("trigger %s: header %s=%s differs from its id %s; using the id", where, ID_HEADER,
                            header_id, msg.id)
            if msg.action != ACTION:
                log.debug("trigger %s (%s) for %s: not a retrain, left for other runners", msg.id, msg.action,
                          msg.model)
                continue
            jid, new = enqueue(session, self.config.jobs_topic, msg)
            created += new
            log.info("trigger %s for model %s v%s at %s: %s job %s", msg.id, msg.model, msg.model_version, where,
                     "queued" if new else "already has", jid)
        return created

    # -- scheduling -----------------------------------------------------------------------------------------

    def claim(self) -> JobView | None:
        """Fail exhausted jobs, then claim the next runnable one (emitting its events)."""
        cfg = self.config
        with self.sessions() as s, s.begin():
            for dead in jobs_repo.give_up_exhausted(s, action=ACTION, max_attempts=cfg.max_attempts):
                jobs_repo.set_trigger_status(s, dead.trigger_id, FAILED)
                emit(s, cfg.jobs_topic, dead, FAILED, dead.attempt, error=dead.error)
                log.error("job %s (%s): %s", dead.id, dead.model, dead.error)
        try:
            with self.sessions() as s, s.begin():
                job = jobs_repo.claim_next(s, owner=cfg.owner, lease_s=cfg.lease_s, action=ACTION,
                                           accept=cfg.serves if cfg.models else None)
                if job is None:
                    return None
                jobs_repo.set_trigger_status(s, job.trigger_id, RUNNING)
                emit(s, cfg.jobs_topic, job, RUNNING, job.attempt, resumed=job.attempt > 1, owner=cfg.owner)
        except IntegrityError:  # a racing runner made another job of this model running first
            log.info("another runner started a job of the same model first; trying again later")
            return None
        log.info("job %s (%s v%s) claimed, attempt %d%s", job.id, job.model, job.model_version, job.attempt,
                 " (resumed)" if job.attempt > 1 else "")
        return job

    def run_pending(self, max_jobs: int | None = None) -> list[JobView]:
        """Claim and run jobs one after the other until none is runnable; returns the finished rows."""
        done: list[JobView] = []
        while max_jobs is None or len(done) < max_jobs:
            job = self.claim()
            if job is None:
                break
            final = self.executor.run(job)
            if final is not None:
                done.append(final)
        return done

    # -- the loop -------------------------------------------------------------------------------------------

    def _make_consumer(self) -> Any:
        from kafka import KafkaConsumer

        return KafkaConsumer(self.config.triggers_topic, bootstrap_servers=self.config.bootstrap_servers,
                             group_id=consumer_group(self.config.namespace), enable_auto_commit=False,
                             auto_offset_reset="earliest", client_id=f"opsloop-retrain-{self.config.owner}",
                             max_poll_records=100, session_timeout_ms=int(self.config.session_timeout_s * 1000),
                             heartbeat_interval_ms=max(100, int(self.config.session_timeout_s * 1000 / 3)))

    def poll_once(self, consumer: Any, timeout_ms: int = 500) -> int:
        """One poll: queue jobs durably, then commit the offsets. On a database error nothing is committed and
        the consumer is rewound to the batch's first offsets, so the batch is read again."""
        batch = consumer.poll(timeout_ms=timeout_ms)
        records = [r for part in batch.values() for r in part]
        if not records:
            return 0
        try:
            with self.sessions() as s, s.begin():
                created = self.handle(s, records)
        except Exception:
            for tp, part in batch.items():
                if part:
                    consumer.seek(tp, part[0].offset)
            raise
        self.jobs_created += created
        try:
            consumer.commit()
        except Exception as exc:  # noqa: BLE001 - a rebalance: the rows are durable, redelivery is harmless
            log.warning("offset commit failed (%s); the triggers will be read again and deduplicated", exc)
        return len(records)

    def run_forever(self) -> None:
        consumer = self._consumer_factory()
        worker: threading.Thread | None = None
        next_claim = 0.0
        backoff = self.config.poll_interval_s
        log.info("retrain runner %s consuming %s (group %s)", self.config.owner, self.config.triggers_topic,
                 consumer_group(self.config.namespace))
        try:
            while not self._stop.is_set():
                try:
                    self.poll_once(consumer, timeout_ms=int(self.config.poll_interval_s * 1000))
                    if worker is not None and not worker.is_alive():
                        worker.join()
                        worker = None
                    if worker is None and time.monotonic() >= next_claim:
                        job = self.claim()
                        if job is None:
                            next_claim = time.monotonic() + self.config.poll_interval_s
                        else:
                            worker = threading.Thread(target=self.executor.run, args=(job,), daemon=True,
                                                      name=f"job-{job.id[:8]}")
                            worker.start()
                    backoff = self.config.poll_interval_s
                except Exception as exc:  # noqa: BLE001 - database or broker outage: back off, keep the group
                    log.warning("runner: %s: %s (retry in %.1fs)", type(exc).__name__,
                                str(exc).splitlines()[0] if str(exc) else "", backoff)
                    self._stop.wait(backoff)
                    backoff = min(30.0, backoff * 2)
        finally:
            try:
                consumer.close(autocommit=False, timeout_ms=5000)
            except Exception as exc:  # noqa: BLE001 - closing is best effort: the group times the member out
                log.info("consumer close: %s", exc)
            if worker is not None and worker.is_alive():
                log.info("waiting up to %.0fs for the running job to finish", self.config.shutdown_grace_s)
                worker.join(timeout=self.config.shutdown_grace_s)
                if worker.is_alive():
                    log.warning("leaving the running job: its lease expires and another runner resumes it")
            log.info("retrain runner %s stopped", self.config.owner)

    def stop(self) -> None:
        self._stop.set()
