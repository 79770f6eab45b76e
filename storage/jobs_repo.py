"""Repository functions for retrain jobs. They take a ``Session`` and never commit: the caller owns the transaction.

A job is created once per trigger (``trigger_id`` is unique, insert-or-ignore). Runners claim jobs with
conditional updates, so two runner processes never run the same job, and a partial unique index on
``jobs(model) WHERE status = 'running'`` keeps a model to one running job at a time. A running job holds a lease
(``lease_owner`` until ``lease_until``); every later write of the job is conditional on that lease and attempt,
so a runner that lost its lease cannot overwrite the attempt that replaced it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.orm import Session, aliased

from storage.models import Job, Trigger, utcnow
from storage.repo import changed, insert_ignore, table_of

QUEUED = "queued"
RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
FINAL = (SUCCEEDED, FAILED)


def job_id_for(trigger_id: str) -> str:
    """A stable job id derived from the trigger id: a redelivered trigger names the same job."""
    return hashlib.sha256(f"job:{trigger_id}".encode()).hexdigest()[:32]


@dataclass(frozen=True)
class JobView:
    """A detached snapshot of a job row (safe to pass between threads)."""

    id: str
    trigger_id: str
    model: str
    model_version: str
    action: str
    status: str
    attempt: int
    lease_owner: str | None
    lease_until: datetime | None
    mlflow_run_id: str | None
    new_version: str | None
    trigger: dict[str, Any]
    outcome: dict[str, Any] | None
    error: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, job: Job) -> JobView:
        return cls(job.id, job.trigger_id, job.model, job.model_version, job.action, job.status, job.attempt,
                   job.lease_owner, job.lease_until, job.mlflow_run_id, job.new_version, dict(job.trigger or {}),
                   dict(job.outcome) if job.outcome is not None else None, job.error, job.created_at,
                   job.updated_at)


def add_job(session: Session, *, trigger_id: str, model: str, model_version: str, action: str,
            trigger: dict[str, Any], now: datetime | None = None) -> tuple[str, bool]:
    """Queue the job of a trigger unless it exists; returns (job id, inserted)."""
    now = now or utcnow()
    jid = job_id_for(trigger_id)
    inserted = insert_ignore(session, table_of(Job), {
        "id": jid, "trigger_id": trigger_id, "model": model, "model_version": model_version, "action": action,
        "status": QUEUED, "attempt": 0, "trigger": trigger, "created_at": now, "updated_at": now})
    return jid, inserted


def get_job(session: Session, job_id: str) -> JobView | None:
    job = session.get(Job, job_id)
    return JobView.of(job) if job is not None else None


def get_job_by_trigger(session: Session, trigger_id: str) -> JobView | None:
    job = session.scalars(select(Job).where(Job.trigger_id == trigger_id)).first()
    return JobView.of(job) if job is not None else None


def list_jobs(session: Session, model: str | None = None, limit: int = 100) -> list[JobView]:
    q = select(Job).order_by(Job.created_at.desc(), Job.id).limit(limit)
    if model:
        q = q.where(Job.model == model)
    return [JobView.of(j) for j in session.scalars(q)]


def give_up_exhausted(session: Session, *, action: str, max_attempts: int, now: datetime | None = None
                      ) -> list[JobView]:
    """Fail the running jobs whose lease expired after ``max_attempts`` attempts (a job that keeps killing its
    runner must not loop forever); returns them so the caller can report it."""
    now = now or utcnow()
    rows = session.scalars(select(Job).where(Job.action == action, Job.status == RUNNING, Job.lease_until < now,
                                             Job.attempt >= max_attempts)).all()
    failed = []
    for job in rows:
        error = (f"gave up after {job.attempt} attempts: each one ended without finishing the job "
                 f"(the runner died or lost its lease)")
        if changed(session, update(Job).where(Job.id == job.id, Job.status == RUNNING, Job.attempt == job.attempt,
                                              Job.lease_until < now)
                   .values(status=FAILED, error=error, lease_until=None, updated_at=now)) == 1:
            session.refresh(job)
            failed.append(JobView.of(job))
    return failed


def claim_next(session: Session, *, owner: str, lease_s: float, action: str, now: datetime | None = None,
               limit: int = 200, accept: Callable[[str], bool] | None = None) -> JobView | None:
    """Claim the oldest runnable job: a running job whose lease expired (resumed as the next attempt of the same
    row) or a queued job of a model that has no running job. Returns the claimed job, or None.

    Every claim is a conditional update, so racing runners claim a job at most once. On PostgreSQL two runners
    claiming two queued jobs of one model concurrently collide on the partial unique index: the loser gets an
    ``IntegrityError`` and should roll back and try again later. ``accept(model)`` limits the claim to the
    models a runner serves (its entry point's models).
    """
    now = now or utcnow()
    until = now + timedelta(seconds=lease_s)
    running_models = set(session.scalars(select(Job.model).where(Job.status == RUNNING)))
    candidates = session.execute(
        select(Job.id, Job.model, Job.status, Job.attempt, Job.lease_until)
        .where(Job.action == action,
               or_(Job.status == QUEUED, and_(Job.status == RUNNING, Job.lease_until < now)))
        .order_by(Job.created_at, Job.id).limit(limit)).all()
    other = aliased(Job)
    for jid, model, status, attempt, _lease in candidates:
        if accept is not None and not accept(model):
            continue
        if status == RUNNING:
            stmt = (update(Job).where(Job.id == jid, Job.status == RUNNING, Job.attempt == attempt,
                                      Job.lease_until < now)
                    .values(attempt=attempt + 1, lease_owner=owner, lease_until=until, updated_at=now))
        else:
            if model in running_models:  # that model's running job (live or to resume) goes first
                continue
            stmt = (update(Job).where(Job.id == jid, Job.status == QUEUED,
                                      ~exists().where(other.model == Job.model, other.status == RUNNING))
                    .values(status=RUNNING, attempt=attempt + 1, lease_owner=owner, lease_until=until,
                            updated_at=now, error=None))
        if changed(session, stmt) == 1:
            job = session.get(Job, jid)
            assert job is not None
            session.refresh(job)
            return JobView.of(job)
    return None


def _held(job_id: str, owner: str, attempt: int) -> Any:
    return and_(Job.id == job_id, Job.status == RUNNING, Job.lease_owner == owner, Job.attempt == attempt)


def renew_lease(session: Session, job_id: str, *, owner: str, attempt: int, lease_s: float,
                now: datetime | None = None) -> bool:
    """Extend a held lease; False when the lease was lost (another runner resumed the job)."""
    now = now or utcnow()
    return changed(session, update(Job).where(_held(job_id, owner, attempt))
                   .values(lease_until=now + timedelta(seconds=lease_s), updated_at=now)) == 1


def update_running(session: Session, job_id: str, *, owner: str, attempt: int, **values: Any) -> bool:
    """Record progress (``mlflow_run_id``, ``new_version``) of a job whose lease we hold."""
    values.setdefault("updated_at", utcnow())
    return changed(session, update(Job).where(_held(job_id, owner, attempt)).values(**values)) == 1


def finish_job(session: Session, job_id: str, *, owner: str, attempt: int, status: str,
               outcome: dict[str, Any] | None = None, error: str | None = None, new_version: str | None = None,
               now: datetime | None = None) -> bool:
    """Move a held job to a final status; False when the lease was lost (nothing is written then)."""
    if status not in FINAL:
        raise ValueError(f"not a final status: {status}")
    now = now or utcnow()
    values: dict[str, Any] = {"status": status, "outcome": outcome, "error": error, "lease_until": None,
                              "updated_at": now}
    if new_version is not None:
        values["new_version"] = new_version
    return changed(session, update(Job).where(_held(job_id, owner, attempt)).values(**values)) == 1


def set_trigger_status(session: Session, trigger_id: str, status: str, now: datetime | None = None) -> bool:
    """Mirror the job's status on its trigger row, when the trigger is in this database."""
    return changed(session, update(Trigger).where(Trigger.id == trigger_id)
                   .values(status=status, updated_at=now or utcnow())) == 1


def running_jobs(session: Session, model: str | None = None) -> Sequence[JobView]:
    q = select(Job).where(Job.status == RUNNING)
    if model:
        q = q.where(Job.model == model)
    return [JobView.of(j) for j in session.scalars(q)]
