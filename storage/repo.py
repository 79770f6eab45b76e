"""Repository functions. They take a ``Session`` and never commit: the caller owns the transaction."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Executable, Table, delete, func, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from storage.models import (
    Base,
    Finding,
    ModelState,
    OutboxMessage,
    PartitionOffset,
    Reference,
    Trigger,
    WarmupRow,
    Window,
    utcnow,
)


class StaleStateError(Exception):
    """Another worker changed a model's state since we read it: roll back, reload, re-apply."""


def table_of(model: type[Base]) -> Table:
    """A mapped class's table, typed as the Core ``Table`` it is (declarative types ``__table__`` as a
    ``FromClause``)."""
    return cast(Table, model.__table__)


def changed(session: Session, stmt: Executable) -> int:
    """How many rows an UPDATE or DELETE changed (a conditional update's way of saying whether it won)."""
    return int(cast(CursorResult[Any], session.execute(stmt)).rowcount)


def _insert(session: Session, table: Table) -> Any:
    """The dialect's INSERT for ``table``, which has ON CONFLICT DO NOTHING (SQLite and PostgreSQL)."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(dialect)  # pragma: no cover - only the two dialects are supported


def insert_ignore(session: Session, table: Table, values: Mapping[str, Any]) -> bool:
    """Insert a row unless its unique key exists; True when inserted. Same on SQLite and PostgreSQL."""
    stmt = _insert(session, table).values(**values).on_conflict_do_nothing()
    # RETURNING, not rowcount: with implicit RETURNING of the key, psycopg reports rowcount -1
    return session.execute(stmt.returning(*table.primary_key.columns)).first() is not None


def insert_all_or_none(session: Session, table: Table, rows: Sequence[Mapping[str, Any]]) -> int:
    """Insert rows in one statement, skipping those whose unique key exists; returns how many were inserted
    (RETURNING, as ``insert_ignore``), so a caller that expected all of them can roll back."""
    # one cached statement run with many parameter sets: SQLAlchemy sends them as multi-row VALUES batches
    # ("insertmanyvalues") and collects RETURNING over all of them
    stmt = _insert(session, table).on_conflict_do_nothing().returning(*table.primary_key.columns)
    return len(session.execute(stmt, list(rows)).all())


def insert_many_ignore(session: Session, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Bulk insert-or-ignore (one executemany): rows whose unique key exists are skipped."""
    session.execute(_insert(session, table).on_conflict_do_nothing(), list(rows))


# --- consumer offsets -------------------------------------------------------------------------------


def load_offsets(session: Session, group: str, topic_partitions: Iterable[tuple[str, int]]) -> dict[tuple[str, int], int]:
    tps = list(set(topic_partitions))
    if not tps:
        return {}
    rows = session.execute(
        select(PartitionOffset.topic, PartitionOffset.partition, PartitionOffset.offset).where(
            PartitionOffset.consumer_group == group,
            tuple_(PartitionOffset.topic, PartitionOffset.partition).in_(tps),
        )
    )
    return {(t, p): o for t, p, o in rows}


def save_offsets(session: Session, group: str, offsets: Mapping[tuple[str, int], int],
                 known: Mapping[tuple[str, int], int]) -> None:
    """Move the group's offsets past the batch, only from the offsets the batch was checked against.

    The offsets are an optimistic lock of their own: on PostgreSQL (READ COMMITTED) every statement sees what
    was committed when it started, so another worker can commit the same records between our reading the
    offsets and our reading the model state. We would then apply its records again on top of its state, and
    the state's revision check alone would let that through. An offset that moved since ``known`` (or a row
    created meanwhile, a unique-key error) rolls the batch back to be reloaded and re-applied."""
    now = utcnow()
    for (topic, partition), offset in offsets.items():
        if (topic, partition) in known:
            done = changed(
                session,
                update(PartitionOffset)
                .where(PartitionOffset.consumer_group == group, PartitionOffset.topic == topic,
                       PartitionOffset.partition == partition,
                       PartitionOffset.offset == known[(topic, partition)])
                .values(offset=offset, updated_at=now),
            )
            if done != 1:
                raise StaleStateError(f"offsets of {group} on {topic}[{partition}] moved past "
                                      f"{known[(topic, partition)]}")
        else:
            session.add(PartitionOffset(consumer_group=group, topic=topic, partition=partition, offset=offset,
                                        updated_at=now))


# --- model state --------------------------------------------------------------------------------------


def load_revisions(session: Session, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], int]:
    ks = list(set(keys))
    if not ks:
        return {}
    rows = session.execute(
        select(ModelState.model, ModelState.model_version, ModelState.revision).where(
            tuple_(ModelState.model, ModelState.model_version).in_(ks)
        )
    )
    return {(m, v): r for m, v, r in rows}


def load_states(session: Session, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], tuple[int, dict[str, Any]]]:
    ks = list(set(keys))
    if not ks:
        return {}
    rows = session.execute(
        select(ModelState.model, ModelState.model_version, ModelState.revision, ModelState.state).where(
            tuple_(ModelState.model, ModelState.model_version).in_(ks)
        )
    )
    return {(m, v): (r, s) for m, v, r, s in rows}


def save_state(session: Session, key: tuple[str, str], state: dict[str, Any], expected_revision: int | None) -> int:
    """Write a model's state if nobody else did since ``expected_revision``; returns the new revision."""
    model, version = key
    if expected_revision is None:
        inserted = insert_ignore(session, table_of(ModelState), dict(model=model, model_version=version, revision=1,
                                                                       state=state, updated_at=utcnow()))
        if not inserted:
            raise StaleStateError(f"state of {model}/{version} was created concurrently")
        return 1
    done = changed(
        session,
        update(ModelState)
        .where(ModelState.model == model, ModelState.model_version == version,
               ModelState.revision == expected_revision)
        .values(state=state, revision=expected_revision + 1, updated_at=utcnow()),
    )
    if done != 1:
        raise StaleStateError(f"state of {model}/{version} moved past revision {expected_revision}")
    return expected_revision + 1


# --- references, windows, findings, triggers ----------------------------------------------------------


# --- warm-up rows -------------------------------------------------------------------------------------


def add_warmup_rows(session: Session, model: str, model_version: str, first_seq: int,
                    rows: Sequence[Mapping[str, Any]]) -> None:
    if rows:
        insert_many_ignore(session, table_of(WarmupRow), [
            {"model": model, "model_version": model_version, "seq": first_seq + i, "row": dict(r)}
            for i, r in enumerate(rows)])


def warmup_rows(session: Session, model: str, model_version: str, limit: int) -> list[dict[str, Any]]:
    return list(session.execute(
        select(WarmupRow.row).where(WarmupRow.model == model, WarmupRow.model_version == model_version)
        .order_by(WarmupRow.seq).limit(limit)
    ).scalars())


def delete_warmup_rows(session: Session, model: str, model_version: str) -> None:
    session.execute(delete(WarmupRow).where(WarmupRow.model == model, WarmupRow.model_version == model_version))


def add_reference(session: Session, *, model: str, model_version: str, source: str, n_rows: int,
                  profile: dict[str, Any]) -> Reference:
    latest = session.execute(
        select(Reference.version).where(Reference.model == model, Reference.model_version == model_version)
        .order_by(Reference.version.desc()).limit(1)
    ).scalar()
    ref = Reference(model=model, model_version=model_version, version=(latest or 0) + 1, source=source,
                    n_rows=n_rows, profile=profile, created_at=utcnow())
    session.add(ref)
    session.flush()
    return ref


def get_reference(session: Session, reference_id: int) -> Reference | None:
    return session.get(Reference, reference_id)


def add_window(session: Session, **values: Any) -> int:
    """One window row; its id."""
    return add_windows(session, [values])[0]


def add_windows(session: Session, rows: Sequence[dict[str, Any]]) -> list[int]:
    """The rows of the windows a batch closed, in one Core statement (the ORM's unit of work cost ~4x more
    per row; a sliding window writes one per step); their ids, in the order given."""
    if not rows:
        return []
    now = utcnow()
    for r in rows:
        r.setdefault("created_at", now)
    table = table_of(Window)
    stmt = table.insert().returning(table.c.id, sort_by_parameter_order=True)
    return [int(i) for i in session.execute(stmt, list(rows)).scalars()]


def add_finding(session: Session, **values: Any) -> bool:
    """Insert-or-ignore on ``finding_key``: the same finding is never stored twice."""
    values.setdefault("created_at", utcnow())
    return insert_ignore(session, table_of(Finding), values)


def revise_finding(session: Session, finding_key: str, *, revision: int, **values: Any) -> None:
    """A finding revised by late data keeps its key: update it in place and count the revision."""
    session.execute(update(Finding).where(Finding.finding_key == finding_key)
                    .values(revision=revision, updated_at=utcnow(), **values))


def add_trigger(session: Session, **values: Any) -> bool:
    """Insert-or-ignore on ``dedupe_key``: racing workers create one trigger."""
    now = utcnow()
    values.setdefault("created_at", now)
    values.setdefault("updated_at", now)
    return insert_ignore(session, table_of(Trigger), values)


def add_outbox(session: Session, *, message_id: str, topic: str, key: str | None, payload: dict[str, Any]) -> bool:
    return insert_ignore(session, table_of(OutboxMessage),
                         dict(message_id=message_id, topic=topic, key=key, payload=payload, created_at=utcnow()))


def fetch_unpublished(session: Session, limit: int = 500) -> Sequence[OutboxMessage]:
    return session.scalars(
        select(OutboxMessage).where(OutboxMessage.published_at.is_(None)).order_by(OutboxMessage.id).limit(limit)
    ).all()


def mark_published(session: Session, ids: Sequence[int], when: datetime | None = None) -> None:
    if ids:
        session.execute(update(OutboxMessage).where(OutboxMessage.id.in_(list(ids)))
                        .values(published_at=when or utcnow()))


def decide_trigger(session: Session, trigger_id: str, *, approve: bool, triggers_topic: str, by: str) -> str | None:
    """Approve (status pending, message to the outbox) or reject a trigger awaiting approval."""
    trig = session.get(Trigger, trigger_id, with_for_update=True)
    if trig is None or trig.status != "awaiting_approval":
        return None
    now = utcnow()
    trig.updated_at = now
    trig.finding_ids = {**trig.finding_ids, "decided_by": by, "decided_at": now.isoformat()}
    if not approve:
        trig.status = "rejected"
        return "rejected"
    trig.status = "pending"
    payload = dict(trig.finding_ids.get("payload") or {"id": trig.id, "dedupe_key": trig.dedupe_key,
                                                      "action": trig.action, "model": trig.model,
                                                      "model_version": trig.model_version, "reason": trig.reason})
    payload["approved_by"] = by
    add_outbox(session, message_id=trig.id, topic=triggers_topic, key=trig.model, payload=payload)
    return "approved"


def trigger_counts_since(session: Session, since: datetime, model: str, action: str,
                         budgeted: tuple[str, ...]) -> tuple[int, int]:
    """Triggers created since ``since``: of this model and action, and of budgeted actions fleet-wide."""
    base = select(func.count()).select_from(Trigger).where(Trigger.created_at >= since,
                                                           Trigger.status != "rejected")
    model_today = session.scalar(base.where(Trigger.model == model, Trigger.action == action)) or 0
    fleet_today = session.scalar(base.where(Trigger.action.in_(budgeted))) or 0
    return int(model_today), int(fleet_today)


def list_findings(session: Session, model: str | None = None, limit: int = 100) -> Sequence[Finding]:
    q = select(Finding).order_by(Finding.id.desc()).limit(limit)
    if model:
        q = q.where(Finding.model == model)
    return session.scalars(q).all()


def list_windows(session: Session, model: str | None = None, limit: int = 100) -> Sequence[Window]:
    """The newest closed windows (of ``model``), newest first."""
    q = select(Window).order_by(Window.id.desc()).limit(limit)
    if model:
        q = q.where(Window.model == model)
    return session.scalars(q).all()


def list_triggers(session: Session, model: str | None = None, limit: int = 100) -> Sequence[Trigger]:
    q = select(Trigger).order_by(Trigger.created_at.desc()).limit(limit)
    if model:
        q = q.where(Trigger.model == model)
    return session.scalars(q).all()
