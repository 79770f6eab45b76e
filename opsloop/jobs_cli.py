"""`opsloop retrain-runner` and `opsloop retrain-jobs`: run retrain jobs from triggers, list them.

``register(subparsers)`` is called from ``opsloop/cli.py``; until it is wired, ``python -m opsloop.jobs_cli
retrain-runner`` runs the same command. Settings come from ``OPSLOOP_RETRAIN_*`` (``RetrainSettings``) and
MLflow's own ``MLFLOW_TRACKING_URI`` / ``MLFLOW_REGISTRY_URI``. See ``docs/retrain.md``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from opsloop.errors import ConfigError

log = logging.getLogger("opsloop.retrain")


class RetrainSettings(BaseSettings):
    """How the retrain runner trains, evaluates and promotes (``OPSLOOP_RETRAIN_*``)."""

    model_config = SettingsConfigDict(env_prefix="OPSLOOP_RETRAIN_", extra="ignore")

    entrypoint: str = ""          # package.module:function, fn(train_df, params) -> fitted estimator
    project_uri: str = ""         # or an MLflow Project (local folder or git URI), run with env_manager="local"
    project_entry_point: str = "main"
    params: dict[str, Any] = Field(default_factory=dict)   # JSON, passed to the entry point and logged
    window_rows: int = Field(default=5000, ge=2, le=10_000_000)
    scope: Literal["model", "version"] = "model"
    holdout_fraction: float = Field(default=0.2, gt=0, lt=1)
    min_rows: int = Field(default=50, ge=2)
    task: Literal["auto", "classification", "regression"] = "auto"
    metric: str = ""              # empty: accuracy (classification), mae (regression)
    margin: float = Field(default=0.0, ge=0)
    alias: str = Field(default="champion", pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,99}$")
    lease_s: float = Field(default=60.0, gt=0, le=86_400)
    max_attempts: int = Field(default=3, ge=1, le=100)
    poll_interval_s: float = Field(default=0.5, gt=0, le=60)
    shutdown_grace_s: float = Field(default=30.0, ge=0)
    session_timeout_s: float = Field(default=10.0, ge=6, le=300)  # the broker refuses less than 6 s by default
    experiment: str = "opsloop-retrain"
    artifact_location: str = ""   # empty: beside a local sqlite store (mlartifacts/), the server's default else
    serialization: Literal["skops", "cloudpickle"] = "skops"
    pip_requirements: str = ""    # empty: installed versions pinned; "infer": MLflow infers; else comma-separated
    models: str = ""              # comma-separated model names or patterns this runner trains; empty: all
    relay: bool = False           # also run an outbox relay thread (when no `opsloop worker`/`relay` runs)

    @field_validator("entrypoint")
    @classmethod
    def _entrypoint_shape(cls, v: str) -> str:
        if v and (v.count(":") != 1 or not all(v.split(":"))):
            raise ValueError("must look like 'package.module:function'")
        return v

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, v: str) -> str:
        from retrain.training import METRICS

        if v and v not in METRICS:
            raise ValueError(f"unknown metric {v!r}; known: {', '.join(sorted(METRICS))}")
        return v

    @model_validator(mode="after")
    def _one_entry(self) -> RetrainSettings:
        if self.entrypoint and self.project_uri:
            raise ValueError("set OPSLOOP_RETRAIN_ENTRYPOINT or OPSLOOP_RETRAIN_PROJECT_URI, not both")
        return self


def _load() -> tuple[Any, Any, Any, RetrainSettings]:
    from opsloop.settings import load

    settings, ks, dbs, _ = load()
    try:
        rs = RetrainSettings()
    except ValidationError as exc:
        msgs = [f"OPSLOOP_RETRAIN_{'.'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors()]
        raise ConfigError("invalid settings: " + "; ".join(msgs)) from None
    return settings, ks, dbs, rs


def tracking_uri(home: Path) -> str:
    """``MLFLOW_TRACKING_URI``, else a local store in ``$OPSLOOP_HOME/mlflow.db`` (artifacts in mlartifacts/)."""
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    home.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{home.resolve() / 'mlflow.db'}"


def runner_config(ks: Any, rs: RetrainSettings) -> Any:
    from retrain.runner import RunnerConfig

    if not rs.entrypoint and not rs.project_uri:
        raise ConfigError("set OPSLOOP_RETRAIN_ENTRYPOINT (package.module:function) or OPSLOOP_RETRAIN_PROJECT_URI")
    reqs: tuple[str, ...] | Literal["infer"] | None = None
    if rs.pip_requirements.strip() == "infer":
        reqs = "infer"
    elif rs.pip_requirements.strip():
        reqs = tuple(r.strip() for r in rs.pip_requirements.split(",") if r.strip())
    return RunnerConfig(namespace=ks.namespace, bootstrap_servers=ks.bootstrap_servers, entrypoint=rs.entrypoint,
                        project_uri=rs.project_uri, project_entry_point=rs.project_entry_point, params=rs.params,
                        window_rows=rs.window_rows, scope=rs.scope, holdout_fraction=rs.holdout_fraction,
                        min_rows=rs.min_rows, task=rs.task, metric=rs.metric or None, margin=rs.margin,
                        alias=rs.alias, lease_s=rs.lease_s, max_attempts=rs.max_attempts,
                        poll_interval_s=rs.poll_interval_s, shutdown_grace_s=rs.shutdown_grace_s,
                        session_timeout_s=rs.session_timeout_s,
                        models=tuple(m.strip() for m in rs.models.split(",") if m.strip()),
                        serialization=rs.serialization, pip_requirements=reqs)


def cmd_retrain_runner(args: argparse.Namespace) -> int:
    from opsloop import wiring
    from retrain.mlflow_registry import MlflowRegistry, quiet_mlflow
    from retrain.runner import RetrainRunner, jobs_topic
    from streams.admin import ensure_topics
    from streams.topics import Topics

    settings, ks, dbs, rs = _load()
    cfg = runner_config(ks, rs)
    wiring.setup_logging(settings.log_level)
    quiet_mlflow()
    if cfg.entrypoint and os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())  # entry points in the working folder, as `python -m` would find them
    db = wiring.database(dbs)
    ensure_topics(ks.bootstrap_servers, ks.partitions, ks.replication_factor,
                  names=[Topics(ks.namespace).triggers, jobs_topic(ks.namespace)])
    uri = tracking_uri(Path(settings.home))
    registry = MlflowRegistry(uri, registry_uri=os.environ.get("MLFLOW_REGISTRY_URI") or None,
                              artifact_location=rs.artifact_location or None, experiment=rs.experiment)
    runner = RetrainRunner(db.sessions, cfg, registry)
    relay = None
    if rs.relay or args.relay:
        relay = wiring.relay(db.sessions, ks)
        relay.start_thread()
    signal.signal(signal.SIGTERM, lambda *_: runner.stop())
    log.info("retrain runner: entry point %s, MLflow %s, database %s", cfg.entrypoint or cfg.project_uri,
             wiring.redact_url(uri), wiring.redact_url(dbs.resolved_url()))
    try:
        runner.run_forever()
    except KeyboardInterrupt:
        pass
    finally:
        if relay is not None:
            relay.close()
    return 0


def cmd_jobs(args: argparse.Namespace) -> int:
    from opsloop import wiring
    from storage import jobs_repo

    _, _, dbs, _ = _load()
    db = wiring.database(dbs)
    with db.sessions() as s:
        for j in jobs_repo.list_jobs(s, args.model, args.limit):
            if args.json:
                print(json.dumps({"id": j.id, "trigger_id": j.trigger_id, "model": j.model,
                                  "model_version": j.model_version, "status": j.status, "attempt": j.attempt,
                                  "new_version": j.new_version, "mlflow_run_id": j.mlflow_run_id,
                                  "outcome": j.outcome, "error": j.error, "created_at": j.created_at,
                                  "updated_at": j.updated_at}, default=str))
            else:
                what = (j.outcome or {}).get("reason") or j.error or ""
                print(f"{j.created_at:%Y-%m-%d %H:%M:%S} {j.id[:12]} {j.status:9} attempt {j.attempt} "
                      f"{j.model}/{j.model_version} -> {j.new_version or '-'} {what}")
    return 0


def register(subparsers: Any) -> None:
    """Add ``retrain-runner`` and ``retrain-jobs`` to the ``opsloop`` command's subparsers."""
    r = subparsers.add_parser("retrain-runner", help="consume retrain triggers and run the jobs (MLflow)")
    r.add_argument("--relay", action="store_true", help="also publish outbox rows (job events) from this process")
    r.set_defaults(func=cmd_retrain_runner)
    j = subparsers.add_parser("retrain-jobs", help="list retrain jobs")
    j.add_argument("--model")
    j.add_argument("--limit", type=int, default=50)
    j.add_argument("--json", action="store_true")
    j.set_defaults(func=cmd_jobs)

