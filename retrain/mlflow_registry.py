"""MLflow for retrain jobs: runs tagged with their job, models logged with a signature, versions registered
under the opsloop model's name, and the ``champion`` alias.

Every run and model version a job creates carries ``opsloop.job_id`` and ``opsloop.attempt`` tags. That is how
a resumed attempt finds what a dead attempt left behind: runs still RUNNING are marked FAILED, versions it
registered are tagged abandoned, and a champion move it already made is recognised instead of repeated.
MLflow is imported lazily (it takes seconds): only the methods that talk to it import it.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

if TYPE_CHECKING:
    import pandas as pd
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

log = logging.getLogger(__name__)

TAG_JOB = "opsloop.job_id"
TAG_ATTEMPT = "opsloop.attempt"
TAG_TRIGGER = "opsloop.trigger_id"
TAG_MODEL = "opsloop.model"
TAG_MODEL_VERSION = "opsloop.model_version"
TAG_DECISION = "opsloop.decision"
TAG_REASON = "opsloop.decision_reason"
TAG_OUTCOME = "opsloop.outcome"
TAG_ABANDONED = "opsloop.abandoned"
TAG_ERROR = "opsloop.error"
MODEL_ARTIFACT = "model"
_TAG_MAX = 5000  # MLflow's limit on a model version tag's value


def default_artifact_location(tracking_uri: str) -> str | None:
    """A local store keeps its artifacts beside its database (``.../mlflow.db`` -> ``.../mlartifacts``); a
    server chooses its own (None)."""
    parsed = urlparse(tracking_uri)
    if parsed.scheme == "sqlite" and tracking_uri.startswith("sqlite:///"):
        db = Path(unquote(tracking_uri[len("sqlite:///"):]))
        return (db.parent / "mlartifacts").resolve().as_uri()
    if parsed.scheme in ("", "file"):
        return None  # a file store has its own artifact layout
    return None


@dataclass(frozen=True)
class LoggedModel:
    run_id: str
    model_uri: str


class MlflowRegistry:
    """One tracking and registry URI, one experiment for every retrain run."""

    def __init__(self, tracking_uri: str, *, registry_uri: str | None = None, artifact_location: str | None = None,
                 experiment: str = "opsloop-retrain") -> None:
        import mlflow

        self.tracking_uri = tracking_uri
        self.registry_uri = registry_uri or tracking_uri
        self.artifact_location = artifact_location if artifact_location is not None else \
            default_artifact_location(tracking_uri)
        self.experiment = experiment
        # the fluent API (log_model) reads the process-wide URIs; the client is given them explicitly
        mlflow.set_tracking_uri(tracking_uri)
        mlflow.set_registry_uri(self.registry_uri)
        self._client: MlflowClient | None = None
        self._experiment_id: str | None = None

    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            from mlflow import MlflowClient

            self._client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.registry_uri)
        return self._client

    def experiment_id(self) -> str:
        if self._experiment_id is None:
            from mlflow.exceptions import MlflowException

            exp = self.client.get_experiment_by_name(self.experiment)
            if exp is None:
                try:
                    self._experiment_id = self.client.create_experiment(
                        self.experiment, artifact_location=self.artifact_location)
                except MlflowException:  # another runner created it first
                    exp = self.client.get_experiment_by_name(self.experiment)
                    if exp is None:
                        raise
                    self._experiment_id = exp.experiment_id
            else:
                self._experiment_id = exp.experiment_id
        return self._experiment_id

    # -- runs ------------------------------------------------------------------------------------------------

    def start_run(self, *, job_id: str, attempt: int, tags: dict[str, str]) -> str:
        run = self.client.create_run(self.experiment_id(), run_name=f"job-{job_id[:12]}-attempt-{attempt}",
                                     tags={TAG_JOB: job_id, TAG_ATTEMPT: str(attempt), **tags})
        return run.info.run_id

    def unfinished_runs(self, job_id: str) -> list[str]:
        runs = self.client.search_runs([self.experiment_id()],
                                       filter_string=f"tags.`{TAG_JOB}` = '{job_id}' and attributes.status = 'RUNNING'")
        return [r.info.run_id for r in runs]

    def fail_unfinished_runs(self, job_id: str, *, attempt: int, extra_run_ids: tuple[str, ...] = ()) -> list[str]:
        """Mark the runs a dead attempt of ``job_id`` left RUNNING as FAILED; returns their ids."""
        ids = set(self.unfinished_runs(job_id))
        for rid in extra_run_ids:
            try:
                run = self.client.get_run(rid)
            except Exception as exc:  # noqa: BLE001 - a run id recorded but never created
                log.info("job %s: recorded run %s not found (%s)", job_id, rid, type(exc).__name__)
                continue
            if run.info.status == "RUNNING":
                ids.add(rid)
        for rid in sorted(ids):
            self.client.set_tag(rid, TAG_JOB, job_id)
            self.client.set_tag(rid, TAG_ABANDONED, f"the runner died during this attempt; job resumed as attempt "
                                                    f"{attempt}")
            self.client.set_terminated(rid, status="FAILED")
            log.info("job %s: marked run %s of a dead attempt FAILED", job_id, rid)
        return sorted(ids)

    def finish_run(self, run_id: str, *, failed: bool = False, tags: dict[str, str] | None = None) -> None:
        for k, v in (tags or {}).items():
            self.client.set_tag(run_id, k, v[:_TAG_MAX])
        self.client.set_terminated(run_id, status="FAILED" if failed else "FINISHED")

    def log_params(self, run_id: str, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        flat = [Param(str(k)[:250], json.dumps(v, default=str)[:6000] if not isinstance(v, str) else v[:6000])
                for k, v in sorted(params.items())]
        if flat:
            self.client.log_batch(run_id, params=flat)

    def log_metrics(self, run_id: str, metrics: dict[str, float]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(k, float(v), now, 0) for k, v in sorted(metrics.items()) if v is not None]
        if items:
            self.client.log_batch(run_id, metrics=items)

    def set_tags(self, run_id: str, tags: dict[str, str]) -> None:
        for k, v in tags.items():
            self.client.set_tag(run_id, k, v[:_TAG_MAX])

    def log_sklearn_model(self, run_id: str, estimator: Any, example: pd.DataFrame, *,
                          serialization: str = "skops", pip_requirements: list[str] | None = None) -> LoggedModel:
        """Log ``estimator`` with the sklearn flavour, a signature inferred from ``example`` and its predictions,
        and the first rows as the input example."""
        import mlflow.sklearn
        from mlflow.models import infer_signature

        signature = infer_signature(example, estimator.predict(example))
        kwargs: dict[str, Any] = {}
        if serialization == "skops":
            import skops.io

            # the types of a model this process just trained from the configured entry point (see docs/retrain.md)
            kwargs["skops_trusted_types"] = skops.io.get_untrusted_types(data=skops.io.dumps(estimator))
        # run_id, not an active run: the run stays RUNNING until the job ends it (FINISHED or FAILED), so a
        # crash leaves it RUNNING for the next attempt to find; and no fluent run state is shared by threads.
        # Without an active run MLflow would file the logged model under the default experiment (and its
        # artifacts under ./mlruns): create it in the job's experiment and hand its id over.
        logged = self.client.create_logged_model(self.experiment_id(), name=MODEL_ARTIFACT, source_run_id=run_id)
        info = mlflow.sklearn.log_model(estimator, name=MODEL_ARTIFACT, signature=signature,
                                        input_example=example.head(5), serialization_format=serialization,
                                        pip_requirements=pip_requirements, run_id=run_id,
                                        model_id=logged.model_id, **kwargs)
        return LoggedModel(run_id=run_id, model_uri=info.model_uri)

    # -- the registry ----------------------------------------------------------------------------------------

    def register(self, name: str, model_uri: str, *, tags: dict[str, str]) -> str:
        import mlflow

        mv = mlflow.register_model(model_uri, name, tags=tags)
        return str(mv.version)

    def set_version_tags(self, name: str, version: str, tags: dict[str, str]) -> None:
        for k, v in tags.items():
            self.client.set_model_version_tag(name, version, k, v[:_TAG_MAX])

    def alias_version(self, name: str, alias: str) -> ModelVersion | None:
        from mlflow.exceptions import MlflowException

        try:
            return self.client.get_model_version_by_alias(name, alias)
        except MlflowException as exc:
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
                return None
            raise

    def set_alias(self, name: str, alias: str, version: str) -> None:
        self.client.set_registered_model_alias(name, alias, version)

    def versions_of_job(self, name: str, job_id: str) -> list[ModelVersion]:
        from mlflow.exceptions import MlflowException

        try:
            found = self.client.search_model_versions(f"name = '{name}'")
        except MlflowException:
            return []
        return [mv for mv in found if (mv.tags or {}).get(TAG_JOB) == job_id]

    def load(self, model_uri: str) -> Any:
        import mlflow.pyfunc

        return mlflow.pyfunc.load_model(model_uri)


def quiet_mlflow() -> None:
    """Entry points call this: MLflow's own INFO lines (database creation, registrations) to WARNING."""
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(max(logging.getLogger(name).level, logging.WARNING))
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
