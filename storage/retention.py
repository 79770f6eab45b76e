"""Retention: delete the raw rows that grow with traffic once they are older than a cutoff.

The worker writes one prediction-log row per prediction (with its features), an LLM-interaction row per kept
interaction, and an outbox row per finding, trigger and dead letter; nothing else removes them. ``prune``
deletes, in short transactions of ``batch`` rows (each one a keyset step over the primary key, so a large
table is read once, not once per batch, and the worker is never blocked for long):

- ``predictions_log``: predictions whose event time is before the cutoff;
- ``pending_labels``: labels still waiting for their prediction, received before the cutoff;
- ``llm_interactions``: kept interactions whose event time is before the cutoff;
- ``outbox``: messages published before the cutoff (unpublished ones are never touched).

What it keeps: windows, findings, triggers, jobs, references (with their warm-up rows), the model states and
the webhook delivery log: the monitoring history, small beside the raw rows. What pruning costs: an Evidently
report can only be built for windows whose predictions are still logged, a retraining export
(``retrain.training.export_window``) and the LLM jobs draw their examples from the rows that are left, and a
label for a pruned prediction waits in ``pending_labels`` as if its prediction had not arrived. The caller
(``opsloop prune``) refuses a cutoff inside the label delay, where labels may still join.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Table, delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from storage.models import LLMInteraction, OutboxMessage, PendingLabel, PredictionLog


@dataclass(frozen=True)
class Target:
    """One table's rule: ``old(cutoff)`` selects its rows that are past retention."""

    name: str
    table: Table
    old: Callable[[datetime], ColumnElement[bool]]


_TARGETS = (
    Target("predictions_log", PredictionLog.__table__, lambda c: PredictionLog.occurred_at < c),  # type: ignore[arg-type]
    Target("pending_labels", PendingLabel.__table__, lambda c: PendingLabel.created_at < c),  # type: ignore[arg-type]
    Target("llm_interactions", LLMInteraction.__table__, lambda c: LLMInteraction.occurred_at < c),  # type: ignore[arg-type]
    Target("outbox", OutboxMessage.__table__,  # type: ignore[arg-type]
           lambda c: OutboxMessage.published_at.is_not(None) & (OutboxMessage.published_at < c)),
)

TABLES = tuple(t.name for t in _TARGETS)


def prune(sessions: sessionmaker[Session], cutoff: datetime, *, batch: int = 10_000,
          dry_run: bool = False) -> dict[str, int]:
    """Delete (or, with ``dry_run``, count) the rows each table's rule finds older than ``cutoff`` (an aware
    UTC datetime); returns how many per table. Each batch is its own transaction."""
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    if cutoff.tzinfo is None:
        raise ValueError("cutoff must be timezone-aware (UTC)")
    out: dict[str, int] = {}
    for target in _TARGETS:
        condition = target.old(cutoff)
        if dry_run:
            with sessions() as s:
                out[target.name] = int(s.scalar(select(func.count()).select_from(target.table).where(condition)) or 0)
            continue
        out[target.name] = _delete(sessions, target.table, condition, batch)
    return out


def _delete(sessions: sessionmaker[Session], table: Table, condition: ColumnElement[bool], batch: int) -> int:
    (key,) = table.primary_key.columns  # an integer id, or pending_labels' prediction id: ordered all the same
    done, after = 0, None
    while True:
        with sessions.begin() as s:
            q = select(key).where(condition)
            if after is not None:
                q = q.where(key > after)
            ids = list(s.scalars(q.order_by(key).limit(batch)))
            if not ids:
                return done
            s.execute(delete(table).where(key.in_(ids)))
        done += len(ids)
        after = ids[-1]
        if len(ids) < batch:
            return done
