"""SQLAlchemy 2 models. Unique keys make redelivered work harmless on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware on the way in and out, also on SQLite (which stores naive text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(timezone.utc)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSON, datetime: UtcDateTime}


class PartitionOffset(Base):
    """The last offset applied to storage per consumer group and partition: replays at or below it skip."""

    __tablename__ = "partition_offsets"
    consumer_group: Mapped[str] = mapped_column(String(200), primary_key=True)
    topic: Mapped[str] = mapped_column(String(250), primary_key=True)
    partition: Mapped[int] = mapped_column(Integer, primary_key=True)
    offset: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ModelState(Base):
    """A model version's stream state (warm-up buffer, open windows, policy memory), as JSON."""

    __tablename__ = "model_states"
    model: Mapped[str] = mapped_column(String(200), primary_key=True)
    model_version: Mapped[str] = mapped_column(String(100), primary_key=True)
    revision: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Reference(Base):
    __tablename__ = "references"
    __table_args__ = (UniqueConstraint("model", "model_version", "version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(200))
    model_version: Mapped[str] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(50))
    n_rows: Mapped[int] = mapped_column(Integer)
    profile: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Window(Base):
    __tablename__ = "windows"
    __table_args__ = (UniqueConstraint("model", "model_version", "kind", "window_index"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(200))
    model_version: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(30))
    window_index: Mapped[int] = mapped_column(BigInteger)
    start_at: Mapped[datetime | None] = mapped_column(nullable=True)
    end_at: Mapped[datetime | None] = mapped_column(nullable=True)
    n_events: Mapped[int] = mapped_column(Integer)
    reference_id: Mapped[int | None] = mapped_column(ForeignKey("references.id"), nullable=True)
    stats: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Finding(Base):
    __tablename__ = "findings"
    __table_args__ = (Index("ix_findings_model_created", "model", "model_version", "created_at"),
                      Index("ix_findings_window_id", "window_id"))  # migration 0007: pruning windows
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    finding_key: Mapped[str] = mapped_column(String(400), unique=True)
    model: Mapped[str] = mapped_column(String(200))
    model_version: Mapped[str] = mapped_column(String(100))
    window_id: Mapped[int | None] = mapped_column(ForeignKey("windows.id"), nullable=True)
    detector: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(30))
    severity: Mapped[str] = mapped_column(String(20), default="warn")
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    summary: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    reference_id: Mapped[int | None] = mapped_column(ForeignKey("references.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # a finding revised by late data keeps its key; the revision counts the updates (migration 0003)
    revision: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    updated_at: Mapped[datetime | None] = mapped_column(nullable=True)


class Trigger(Base):
    __tablename__ = "triggers"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(400), unique=True)
    model: Mapped[str] = mapped_column(String(200))
    model_version: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(30))
    status: Mapped[str] = mapped_column(String(30))
    reason: Mapped[str] = mapped_column(Text)
    finding_ids: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class OutboxMessage(Base):
    """Messages to publish after commit. ``message_id`` is the stable id consumers dedupe on."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_unpublished", "published_at", "id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(String(200), unique=True)
    topic: Mapped[str] = mapped_column(String(250))
    key: Mapped[str | None] = mapped_column(String(400), nullable=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(nullable=True)


# --- webhooks (migration 0002) ---------------------------------------------------------------------------


class WebhookEndpoint(Base):
    """Where signed webhooks go. Exactly one of ``secret`` (a ``whsec_`` key, stored as is: encrypt the database
    or prefer ``secret_env``) and ``secret_env`` (the name of an environment variable read at send time)."""

    __tablename__ = "webhook_endpoints"
    __table_args__ = (CheckConstraint("(secret IS NULL) <> (secret_env IS NULL)", name="one_secret_source"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    url: Mapped[str] = mapped_column(Text)
    secret: Mapped[str | None] = mapped_column(String(200), nullable=True)
    secret_env: Mapped[str | None] = mapped_column(String(200), nullable=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    disabled_at: Mapped[datetime | None] = mapped_column(nullable=True)
    allow_ranges: Mapped[list[str]] = mapped_column(JSON, default=list)
    failing_since: Mapped[datetime | None] = mapped_column(nullable=True)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookDelivery(Base):
    """One delivery attempt of one message to one endpoint (the delivery log)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (UniqueConstraint("endpoint_id", "message_id", "attempt"),
                      Index("ix_webhook_deliveries_created", "created_at"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id"))
    message_id: Mapped[str] = mapped_column(String(200))
    attempt: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    duration_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(nullable=True)


# --- labels and performance (migration 0003) -------------------------------------------------------------


class PredictionLog(Base):
    """Predictions that carry a ``prediction_id``: what feedback joins to, and what retraining exports."""

    __tablename__ = "predictions_log"
    __table_args__ = (UniqueConstraint("model", "prediction_id"),
                      Index("ix_predictions_log_model_time", "model", "model_version", "occurred_at"),
                      Index("ix_predictions_log_prediction_id", "prediction_id"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(200))
    model_version: Mapped[str] = mapped_column(String(100))
    prediction_id: Mapped[str] = mapped_column(String(100))
    occurred_at: Mapped[datetime] = mapped_column()
    window_kind: Mapped[str] = mapped_column(String(30))
    window_index: Mapped[int] = mapped_column(BigInteger)
    y_pred: Mapped[str | None] = mapped_column(String(200), nullable=True)
    y_pred_value: Mapped[float | None] = mapped_column(Float, nullable=True)
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    features: Mapped[dict[str, Any]] = mapped_column(JSON)
    sensitive: Mapped[dict[str, Any]] = mapped_column(JSON)
    y_true: Mapped[str | None] = mapped_column(String(200), nullable=True)
    y_true_value: Mapped[float | None] = mapped_column(Float, nullable=True)
    labelled_at: Mapped[datetime | None] = mapped_column(nullable=True)


class PendingLabel(Base):
    """Feedback that arrived before its prediction was stored; joined when the prediction comes."""

    __tablename__ = "pending_labels"
    prediction_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    model: Mapped[str | None] = mapped_column(String(200), nullable=True)
    y_true: Mapped[str | None] = mapped_column(String(200), nullable=True)
    y_true_value: Mapped[float | None] = mapped_column(Float, nullable=True)
    occurred_at: Mapped[datetime] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WindowPerformance(Base):
    """Per-window performance counts, revised as labels arrive (optimistic ``revision``)."""

    __tablename__ = "window_performance"
    model: Mapped[str] = mapped_column(String(200), primary_key=True)
    model_version: Mapped[str] = mapped_column(String(100), primary_key=True)
    kind: Mapped[str] = mapped_column(String(30), primary_key=True)
    window_index: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    revision: Mapped[int] = mapped_column(Integer, default=0)
    n_predictions: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- LLM interactions (migration 0005) --------------------------------------------------------------------


class LLMInteraction(Base):
    """An LLM interaction kept for later jobs (prompt update, fine-tune): flagged, badly rated, or sampled.

    Never a whole prompt or response: excerpts are redacted before they are cut (at most 300 characters), and
    the full texts are only present as keyed hashes (HMAC-SHA256 under a key from the settings).
    """

    __tablename__ = "llm_interactions"
    __table_args__ = (Index("ix_llm_interactions_app_window", "application", "window_kind", "window_index"),
                      Index("ix_llm_interactions_app_time", "application", "occurred_at"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(100), unique=True)
    application: Mapped[str] = mapped_column(String(200))
    model: Mapped[str] = mapped_column(String(200))
    occurred_at: Mapped[datetime] = mapped_column()
    window_kind: Mapped[str] = mapped_column(String(30))
    window_index: Mapped[int] = mapped_column(BigInteger)
    kept_because: Mapped[str] = mapped_column(String(30))
    prompt_excerpt: Mapped[str] = mapped_column(Text)
    response_excerpt: Mapped[str] = mapped_column(Text)
    prompt_hash: Mapped[str] = mapped_column(String(64))
    response_hash: Mapped[str] = mapped_column(String(64))
    flags: Mapped[dict[str, Any]] = mapped_column(JSON)
    user_rating: Mapped[int | None] = mapped_column(Integer, nullable=True)
    latency_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    prompt_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)
    completion_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)
    cost_usd: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- retrain jobs (migration 0004) ------------------------------------------------------------------------


class Job(Base):
    """One job per trigger, ever (``trigger_id`` is unique): queued -> running -> succeeded | failed.

    A running job holds a lease (``lease_owner`` until ``lease_until``); a runner that dies leaves the lease to
    expire and the next runner resumes the same row as ``attempt + 1``. The partial unique index lets at most one
    job per model be ``running`` at a time, whichever runner process tries.
    """

    __tablename__ = "jobs"
    __table_args__ = (Index("uq_jobs_one_running_per_model", "model", unique=True,
                            postgresql_where=text("status = 'running'"), sqlite_where=text("status = 'running'")),
                      Index("ix_jobs_status_created", "status", "created_at"))
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    trigger_id: Mapped[str] = mapped_column(String(64), unique=True)
    model: Mapped[str] = mapped_column(String(200))
    model_version: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(30))
    status: Mapped[str] = mapped_column(String(20))
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(200), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(nullable=True)
    mlflow_run_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    new_version: Mapped[str | None] = mapped_column(String(100), nullable=True)
    trigger: Mapped[dict[str, Any]] = mapped_column(JSON)
    outcome: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- warm-up rows (migration 0006) ----------------------------------------------------------------------


class WarmupRow(Base):
    """The first events of a model version, kept until its reference is built from them, then deleted.

    Appended once per event (the stream state only counts them), so a long warm-up costs one insert per
    event instead of rewriting the whole buffer inside the state at every batch.
    """

    __tablename__ = "warmup_rows"
    model: Mapped[str] = mapped_column(String(200), primary_key=True)
    model_version: Mapped[str] = mapped_column(String(100), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    row: Mapped[dict[str, Any]] = mapped_column(JSON)
