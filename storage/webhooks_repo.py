"""Repository functions for webhook endpoints and the delivery log. They take a ``Session`` and never commit."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from storage.models import WebhookDelivery, WebhookEndpoint, utcnow
from storage.repo import changed, insert_ignore, table_of


def add_endpoint(session: Session, *, name: str, url: str, secret: str | None = None, secret_env: str | None = None,
                 allow_ranges: Sequence[str] = (), created_at: datetime | None = None) -> WebhookEndpoint:
    """Insert an endpoint (the caller has checked its URL and secret); a duplicate name raises IntegrityError."""
    row = WebhookEndpoint(name=name, url=url, secret=secret, secret_env=secret_env, enabled=True,
                          allow_ranges=list(allow_ranges), consecutive_failures=0, created_at=created_at or utcnow())
    session.add(row)
    session.flush()
    return row


def get_endpoint(session: Session, endpoint_id: int) -> WebhookEndpoint | None:
    return session.get(WebhookEndpoint, endpoint_id)


def get_endpoint_by_name(session: Session, name: str) -> WebhookEndpoint | None:
    return session.scalars(select(WebhookEndpoint).where(WebhookEndpoint.name == name)).first()


def list_endpoints(session: Session, *, enabled_only: bool = False) -> Sequence[WebhookEndpoint]:
    q = select(WebhookEndpoint).order_by(WebhookEndpoint.id)
    if enabled_only:
        q = q.where(WebhookEndpoint.enabled.is_(True))
    return session.scalars(q).all()


def set_endpoint_health(session: Session, endpoint_id: int, *, failing_since: datetime | None,
                        consecutive_failures: int) -> None:
    session.execute(update(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id)
                    .values(failing_since=failing_since, consecutive_failures=consecutive_failures))


def disable_endpoint(session: Session, endpoint_id: int, reason: str, at: datetime | None = None) -> bool:
    """Disable an enabled endpoint; False when it was already disabled (so the event is reported once)."""
    return bool(changed(session, update(WebhookEndpoint)
                        .where(WebhookEndpoint.id == endpoint_id, WebhookEndpoint.enabled.is_(True))
                        .values(enabled=False, disabled_reason=reason, disabled_at=at or utcnow())))


def enable_endpoint(session: Session, endpoint_id: int) -> None:
    """Re-enable an endpoint with a clean health record (an operator's decision)."""
    session.execute(update(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id)
                    .values(enabled=True, disabled_reason=None, disabled_at=None, failing_since=None,
                            consecutive_failures=0))


def delete_endpoint(session: Session, endpoint_id: int) -> None:
    session.execute(delete(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id))
    session.execute(delete(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id))


def record_delivery(session: Session, *, endpoint_id: int, message_id: str, attempt: int, status_code: int | None,
                    error: str | None, duration_ms: float | None, created_at: datetime | None = None,
                    delivered_at: datetime | None = None) -> bool:
    """Log one attempt; insert-or-ignore on (endpoint, message, attempt), so a replayed record is harmless."""
    return insert_ignore(session, table_of(WebhookDelivery), {
        "endpoint_id": endpoint_id, "message_id": message_id, "attempt": attempt, "status_code": status_code,
        "error": error, "duration_ms": duration_ms, "created_at": created_at or utcnow(), "delivered_at": delivered_at})


def attempt_count(session: Session, endpoint_id: int, message_id: str) -> int:
    n = session.scalar(select(func.max(WebhookDelivery.attempt))
                       .where(WebhookDelivery.endpoint_id == endpoint_id, WebhookDelivery.message_id == message_id))
    return int(n or 0)


def was_delivered(session: Session, endpoint_id: int, message_id: str) -> bool:
    return session.scalar(select(WebhookDelivery.id).where(
        WebhookDelivery.endpoint_id == endpoint_id, WebhookDelivery.message_id == message_id,
        WebhookDelivery.delivered_at.is_not(None)).limit(1)) is not None


def list_deliveries(session: Session, endpoint_id: int | None = None, message_id: str | None = None,
                    limit: int = 100) -> Sequence[WebhookDelivery]:
    q = select(WebhookDelivery).order_by(WebhookDelivery.id.desc()).limit(limit)
    if endpoint_id is not None:
        q = q.where(WebhookDelivery.endpoint_id == endpoint_id)
    if message_id is not None:
        q = q.where(WebhookDelivery.message_id == message_id)
    return session.scalars(q).all()
