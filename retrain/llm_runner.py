"""The LLM jobs runner: ``prompt_update`` and ``fine_tune`` triggers in, one job per trigger, OpenAI and MLflow out.

It is the retrain runner (``retrain.runner``) with other jobs: the same ``jobs`` table and leases
(``storage.jobs_repo``), the same consumer loop, heartbeat, finishing step and job events (``<ns>.opsloop.jobs.v1``
through the outbox). What differs:

- the consumer group is ``opsloop-llm-jobs-<ns>`` and only ``prompt_update`` / ``fine_tune`` triggers are queued
  (the retrain runner leaves them alone, this runner leaves ``retrain`` alone);
- a job loads its examples from ``llm_interactions`` (``SqlExampleLoader``) and calls ``run_prompt_update`` or
  ``run_fine_tune`` (``retrain.llm_jobs_common``); the result goes into the job's ``outcome``.

Both job functions are idempotent per trigger id (a registered prompt version, a recorded fine-tune run), so an
attempt resumed after a dead runner finishes the job instead of starting a second one. See ``docs/llm_jobs.md``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, cast

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from retrain.fine_tune import FineTuneConfig, FineTuneResult, run_fine_tune
from retrain.llm_jobs_common import Example, ExampleLoader, JobPurpose, LLMJobConfigError, LLMJobError
from retrain.prompt_update import PromptUpdateConfig, PromptUpdateResult, is_failure, run_prompt_update
from retrain.runner import (
    TRIGGERS_TOPIC,
    JobExecutor,
    RetrainRunner,
    RunnerConfig,
    TriggerMessage,
    _Heartbeat,
    _Result,
    default_owner,
    emit,
    enqueue,
    jobs_topic,
)
from storage import jobs_repo
from storage.jobs_repo import FAILED, RUNNING, SUCCEEDED, JobView
from storage.models import LLMInteraction

log = logging.getLogger(__name__)

PROMPT_UPDATE = "prompt_update"
FINE_TUNE = "fine_tune"
ACTIONS = (PROMPT_UPDATE, FINE_TUNE)
LLM_MODEL_PREFIX = "llm:"

# The flags of `streams.llm_stream` that mean "this interaction failed". `pii_prompt` (the user's own prompt held
# personal data) and `provider_errors` (a safety provider could not answer) are facts, not failures.
FAILURE_FLAGS = ("injection", "indirect", "pii_response", "harm", "refusal", "empty", "truncated")


def consumer_group(namespace: str = "") -> str:
    return f"opsloop-llm-jobs-{namespace}" if namespace else "opsloop-llm-jobs"


def application_of(trigger: Mapping[str, Any]) -> str:
    """The LLM application of a trigger: its ``application`` field, else its model ``llm:<app>``."""
    app = trigger.get("application")
    if isinstance(app, str) and app:
        return app
    model = str(trigger.get("model") or "")
    if not model.startswith(LLM_MODEL_PREFIX) or len(model) == len(LLM_MODEL_PREFIX):
        raise LLMJobConfigError(f"trigger {trigger.get('id')!r}: model {model!r} is not an LLM application "
                                f"('{LLM_MODEL_PREFIX}<app>')")
    return model[len(LLM_MODEL_PREFIX):]


# --------------------------------------------------------------------------------------------- examples


class SqlExampleLoader:
    """``ExampleLoader`` over ``llm_interactions``: the stored (redacted, cut) excerpts of the trigger's application,
    newest first. ``prompt_update`` gets the failing rows (flagged by a ``FAILURE_FLAGS`` flag, or rated at or below
    ``bad_rating_max``); ``fine_tune`` the rows rated at least ``good_rating_min`` (no correction is stored in that
    table, so a good rating is the only curation signal). Flags are passed on restricted to ``flag_keys``. At most
    ``scan_limit`` rows are read to find ``limit`` failures."""

    def __init__(self, sessions: sessionmaker[Session], *, flag_keys: Collection[str] = FAILURE_FLAGS,
                 bad_rating_max: int = -1, good_rating_min: int = 1, scan_limit: int = 20_000,
                 page_size: int = 500) -> None:
        self.sessions = sessions
        self.flag_keys = tuple(flag_keys)
        self.bad_rating_max = bad_rating_max
        self.good_rating_min = good_rating_min
        self.scan_limit = scan_limit
        self.page_size = page_size

    def _example(self, row: LLMInteraction) -> Example:
        flags = {k: v for k, v in (row.flags or {}).items() if k in self.flag_keys}
        return Example(prompt=row.prompt_excerpt or "", response=row.response_excerpt or "",
                       rating=None if row.user_rating is None else int(row.user_rating), flags=flags)

    def load_examples(self, trigger: Mapping[str, Any], *, purpose: JobPurpose, limit: int) -> Sequence[Example]:
        app = application_of(trigger)
        q = select(LLMInteraction).where(LLMInteraction.application == app)
        if purpose == FINE_TUNE:
            q = q.where(LLMInteraction.user_rating >= self.good_rating_min)
        q = q.order_by(LLMInteraction.occurred_at.desc(), LLMInteraction.id.desc())
        out: list[Example] = []
        scanned = 0
        with self.sessions() as s:
            while len(out) < limit and scanned < self.scan_limit:
                rows = s.scalars(q.offset(scanned).limit(min(self.page_size, self.scan_limit - scanned))).all()
                if not rows:
                    break
                scanned += len(rows)
                for row in rows:
                    ex = self._example(row)
                    if purpose == FINE_TUNE or is_failure(ex, self.bad_rating_max, self.flag_keys):
                        out.append(ex)
                        if len(out) >= limit:
                            break
        log.info("%s for %s: %d examples (%d rows read)", purpose, app, len(out), scanned)
        return out


# ----------------------------------------------------------------------------------------------- config


@dataclass(frozen=True)
class LLMJobsConfig:
    """The runner's settings. ``prompt_update`` / ``fine_tune`` None: that action's jobs are not claimed by this
    runner (they stay queued for one that has it configured). ``prompt_update.prompt_name`` may hold
    ``{application}``; it is filled in per job (default: the application's name)."""

    namespace: str = ""
    bootstrap_servers: str = "127.0.0.1:9092"
    prompt_update: PromptUpdateConfig | None = None
    fine_tune: FineTuneConfig | None = None
    examples_limit: int = 500
    lease_s: float = 60.0
    max_attempts: int = 3
    poll_interval_s: float = 0.5
    shutdown_grace_s: float = 30.0
    session_timeout_s: float = 10.0
    models: tuple[str, ...] = ()               # fnmatch patterns of the models (llm:<app>) served; () = all
    owner: str = field(default_factory=default_owner)

    def __post_init__(self) -> None:
        if self.lease_s <= 0 or self.max_attempts < 1 or self.examples_limit < 1:
            raise ValueError("lease_s must be > 0, max_attempts and examples_limit >= 1")

    @property
    def actions(self) -> tuple[str, ...]:
        return tuple(a for a, c in ((PROMPT_UPDATE, self.prompt_update), (FINE_TUNE, self.fine_tune))
                     if c is not None)

    def serves(self, model: str) -> bool:
        return RunnerConfig.serves(cast(RunnerConfig, self), model)

    @property
    def jobs_topic(self) -> str:
        return jobs_topic(self.namespace)

    @property
    def triggers_topic(self) -> str:
        prefix = f"{self.namespace}." if self.namespace else ""
        return f"{prefix}{TRIGGERS_TOPIC}"


def prompt_name_for(config: PromptUpdateConfig, application: str) -> str:
    return (config.prompt_name or "{application}").replace("{application}", application)


# -------------------------------------------------------------------------------------------------- job


class LLMJobExecutor(JobExecutor):
    """The retrain runner's executor (heartbeat, lease-conditional finish, trigger status, events) with the LLM
    jobs as its step. ``sleep``/``clock`` go to ``run_fine_tune`` (tests)."""

    def __init__(self, sessions: sessionmaker[Session], config: LLMJobsConfig, loader: ExampleLoader, *,
                 api_key: str | None = None, sleep: Callable[[float], None] | None = None,
                 clock: Callable[[], float] | None = None) -> None:
        super().__init__(sessions, cast(RunnerConfig, config), cast(Any, None))
        self.llm_config = config
        self.loader = loader
        self.api_key = api_key
        self.sleep, self.clock = sleep, clock

    def _execute(self, job: JobView, beat: _Heartbeat) -> _Result:
        trigger = {**job.trigger, "id": job.trigger_id, "action": job.action, "model": job.model,
                   "model_version": job.model_version}
        limit = self.llm_config.examples_limit
        try:
            if job.action == PROMPT_UPDATE:
                return self._prompt_update(job, trigger, limit)
            if job.action == FINE_TUNE:
                return self._fine_tune(job, trigger, limit)
            raise LLMJobConfigError(f"not an LLM job action: {job.action!r}")
        except LLMJobError as exc:  # its message is safe to store (no key, no example text)
            log.error("job %s (%s %s) attempt %d failed: %s", job.id, job.action, job.model, job.attempt, exc)
            return _Result(FAILED, outcome={"action": job.action, "retryable": exc.retryable},
                           error=f"{type(exc).__name__}: {exc}"[:4000])

    def _prompt_update(self, job: JobView, trigger: dict[str, Any], limit: int) -> _Result:
        base = self.llm_config.prompt_update
        if base is None:
            raise LLMJobConfigError("prompt updates are not configured on this runner")
        app = application_of(trigger)
        config = replace(base, prompt_name=prompt_name_for(base, app))
        examples = self.loader.load_examples(trigger, purpose=PROMPT_UPDATE, limit=limit)
        res: PromptUpdateResult = run_prompt_update(trigger, examples, config, api_key=self.api_key)
        outcome = {"action": PROMPT_UPDATE, "application": app, "examples": len(examples), **res.to_dict(),
                   "reason": {"awaiting_approval": f"{res.prompt_name} v{res.version} registered, awaiting approval",
                              "no_failures": "no failing interactions: nothing drafted",
                              "unchanged": "the draft equals the current prompt: nothing registered"}[res.status]}
        return _Result(SUCCEEDED, outcome, new_version=None if res.version is None else str(res.version))

    def _fine_tune(self, job: JobView, trigger: dict[str, Any], limit: int) -> _Result:
        config = self.llm_config.fine_tune
        if config is None:
            raise LLMJobConfigError("fine-tuning is not configured on this runner")
        examples = self.loader.load_examples(trigger, purpose=FINE_TUNE, limit=min(limit, config.max_examples))
        kw: dict[str, Any] = {}
        if self.sleep is not None:
            kw["sleep"] = self.sleep
        if self.clock is not None:
            kw["clock"] = self.clock
        res: FineTuneResult = run_fine_tune(trigger, examples, config, api_key=self.api_key, **kw)
        if res.run_id:
            self._progress(job, mlflow_run_id=res.run_id)
        outcome = {"action": FINE_TUNE, "application": application_of(trigger), "examples": len(examples),
                   **res.to_dict()}
        if res.succeeded:
            outcome["reason"] = f"fine-tuned model {res.fine_tuned_model}"
            model = res.fine_tuned_model or ""
            return _Result(SUCCEEDED, outcome, new_version=model if 0 < len(model) <= 100 else None)
        if res.status == "timed_out":
            why = (f"fine-tuning job {res.job_id} still running after {config.poll_timeout_s:.0f}s; it goes on at "
                   f"OpenAI (find_fine_tune / a new trigger follows it)")
        elif res.status in ("insufficient_data", "invalid_dataset"):
            why = f"{res.status}: {(res.error or {}).get('message', '')}".rstrip(": ")
        else:
            err = res.error or {}
            why = f"fine-tuning job {res.job_id} {res.status}" + (f" ({err.get('code')})" if err.get("code") else "")
        outcome["reason"] = why
        return _Result(FAILED, outcome, error=why[:4000])


# ----------------------------------------------------------------------------------------------- runner


class LLMJobsRunner(RetrainRunner):
    """The retrain runner's consumer loop and scheduler for ``prompt_update`` and ``fine_tune`` jobs.

    ``run_forever``, ``poll_once``, ``run_pending`` and ``stop`` are the retrain runner's; ``handle`` queues the
    LLM actions instead of ``retrain``, ``claim`` claims the configured LLM actions, and the consumer reads in the
    group ``opsloop-llm-jobs-<ns>``. ``submit(trigger)`` queues a trigger dict without Kafka (tools, tests)."""

    def __init__(self, sessions: sessionmaker[Session], config: LLMJobsConfig, loader: ExampleLoader | None = None,
                 *, consumer_factory: Callable[[], Any] | None = None, api_key: str | None = None,
                 sleep: Callable[[float], None] | None = None, clock: Callable[[], float] | None = None) -> None:
        super().__init__(sessions, cast(RunnerConfig, config), cast(Any, None), consumer_factory=consumer_factory)
        self.llm_config = config
        self.loader = loader or SqlExampleLoader(sessions)
        self.executor = LLMJobExecutor(sessions, config, self.loader, api_key=api_key, sleep=sleep, clock=clock)

    # -- triggers in ----------------------------------------------------------------------------------------

    def submit(self, trigger: Mapping[str, Any]) -> tuple[str, bool] | None:
        """Queue the job of one trigger dict (its own transaction); None when it is not an LLM job's trigger."""
        msg = TriggerMessage.model_validate(dict(trigger))
        if msg.action not in ACTIONS:
            return None
        with self.sessions() as s, s.begin():
            return enqueue(s, self.llm_config.jobs_topic, msg)

    def handle(self, session: Session, records: Sequence[Any]) -> int:
        created = 0
        for rec in records:
            where = f"{rec.topic}[{rec.partition}]@{rec.offset}"
            try:
                msg = TriggerMessage.model_validate_json(rec.value or b"")
            except ValueError as exc:
                log.error("trigger %s is not a valid trigger, skipped: %s", where, str(exc).splitlines()[0])
                continue
            if msg.action not in ACTIONS:
                continue  # retrain and the rest: other runners, other groups
            jid, new = enqueue(session, self.llm_config.jobs_topic, msg)
            created += new
            log.info("%s trigger %s for %s at %s: %s job %s", msg.action, msg.id, msg.model, where,
                     "queued" if new else "already has", jid)
        return created

    # -- scheduling -----------------------------------------------------------------------------------------

    def claim(self) -> JobView | None:
        cfg = self.llm_config
        with self.sessions() as s, s.begin():
            for action in cfg.actions:
                for dead in jobs_repo.give_up_exhausted(s, action=action, max_attempts=cfg.max_attempts):
                    jobs_repo.set_trigger_status(s, dead.trigger_id, FAILED)
                    emit(s, cfg.jobs_topic, dead, FAILED, dead.attempt, error=dead.error)
                    log.error("job %s (%s %s): %s", dead.id, dead.action, dead.model, dead.error)
        for action in cfg.actions:
            try:
                with self.sessions() as s, s.begin():
                    job = jobs_repo.claim_next(s, owner=cfg.owner, lease_s=cfg.lease_s, action=action,
                                               accept=cfg.serves if cfg.models else None)
                    if job is None:
                        continue
                    jobs_repo.set_trigger_status(s, job.trigger_id, RUNNING)
                    emit(s, cfg.jobs_topic, job, RUNNING, job.attempt, resumed=job.attempt > 1, owner=cfg.owner)
            except IntegrityError:  # a racing runner made another job of this model running first
                log.info("another runner started a job of the same model first; trying again later")
                continue
            log.info("job %s (%s %s) claimed, attempt %d", job.id, job.action, job.model, job.attempt)
            return job
        return None

    # -- the loop -------------------------------------------------------------------------------------------

    def _make_consumer(self) -> Any:
        from kafka import KafkaConsumer

        cfg = self.llm_config
        return KafkaConsumer(cfg.triggers_topic, bootstrap_servers=cfg.bootstrap_servers,
                             group_id=consumer_group(cfg.namespace), enable_auto_commit=False,
                             auto_offset_reset="earliest", client_id=f"opsloop-llm-jobs-{cfg.owner}",
                             max_poll_records=100, session_timeout_ms=int(cfg.session_timeout_s * 1000),
                             heartbeat_interval_ms=max(100, int(cfg.session_timeout_s * 1000 / 3)))

    def run_forever(self) -> None:
        log.info("LLM jobs runner %s: actions %s, consumer group %s", self.llm_config.owner,
                 ", ".join(self.llm_config.actions) or "none", consumer_group(self.llm_config.namespace))
        super().run_forever()
