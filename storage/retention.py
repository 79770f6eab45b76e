"""Retention: delete the raw rows that grow with traffic once they are older than a cutoff.

The worker writes one prediction-log row per prediction (with its features), an LLM-interaction row per kept
interaction, and an outbox row per finding, trigger and dead letter; nothing else removes them. ``prune``
deletes, in short transactions of ``batch`` rows (each one a keyset step over the primary key, so a large
table is read once, not once per batch, and the worker is never blocked for long):

- ``predictions_log``: predictions whose event time is before the cutoff;
- ``pending_labels``: labels still waiting for their prediction, received before the cutoff;
- ``llm_interactions``: kept interactions whose event time is before the cutoff;
- ``outbox``: messages published before the cutoff (unpublished ones are never touched).

With ``windows_cutoff`` (``opsloop prune --windows-older-than``) it also deletes:

- ``windows``: closed windows' rows that ended before that cutoff (or were written before it, for a window
  without an end time), unless a finding names the window: those stay with their finding as its evidence.

Window rows are the monitoring history, not raw data, but they grow with traffic too: one row (~8 KB with 23
features) per closed window, so one per step of a sliding window (~7 GB a day at 1,000 events per second with
steps of 100 events). They are pruned only when asked, with their own cutoff, usually longer than the raw
rows'.

What it keeps: findings, triggers, jobs, references (with their warm-up rows), the model states, the
per-window performance counts and the webhook delivery log, and windows unless asked. What pruning costs: an Evidently
report can only be built for windows whose predictions are still logged, a retraining export
(``retrain.training.export_window``) and the LLM jobs draw their examples from the rows that are left, and a
label for a pruned prediction waits in ``pending_labels`` as if its prediction had not arrived. The caller
(``opsloop prune``) refuses a cutoff inside the label delay, where labels may still join.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Table, delete, exists, func, select
from sqlalchemy.orm import Session, sessionmaker

from storage.models import Finding, LLMInteraction, OutboxMessage, PendingLabel, PredictionLog, Window
from storage.repo import changed, table_of


@dataclass(frozen=True)
class Target:
    """One table's rule: ``old(cutoff)`` selects its rows that are past retention."""

    name: str
    table: Table
    old: Callable[[datetime], ColumnElement[bool]]


_TARGETS = (
    Target("predictions_log", table_of(PredictionLog), lambda c: PredictionLog.occurred_at < c),
    Target("pending_labels", table_of(PendingLabel), lambda c: PendingLabel.created_at < c),
    Target("llm_interactions", table_of(LLMInteraction), lambda c: LLMInteraction.occurred_at < c),
    Target("outbox", table_of(OutboxMessage),
           lambda c: OutboxMessage.published_at.is_not(None) & (OutboxMessage.published_at < c)),
)

TABLES = tuple(t.name for t in _TARGETS)

# closed windows that ended before the cutoff and that no finding names
WINDOWS = Target("windows", table_of(Window),
                 lambda c: (func.coalesce(Window.end_at, Window.created_at) < c)
                 & ~exists().where(Finding.window_id == Window.id))


def prune(sessions: sessionmaker[Session], cutoff: datetime, *, windows_cutoff: datetime | None = None,
          batch: int = 10_000, dry_run: bool = False) -> dict[str, int]:
    """Delete (or, with ``dry_run``, count) the rows each table's rule finds older than ``cutoff`` (an aware
    UTC datetime), and the windows older than ``windows_cutoff`` when one is given; returns how many per
    table ("windows" only with a windows cutoff). Each batch is its own transaction."""
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    if cutoff.tzinfo is None or (windows_cutoff is not None and windows_cutoff.tzinfo is None):
        raise ValueError("cutoff must be timezone-aware (UTC)")
    out: dict[str, int] = {}
    targets = [(t, cutoff) for t in _TARGETS] + ([(WINDOWS, windows_cutoff)] if windows_cutoff is not None else [])
    for target, at in targets:
        condition = target.old(at)
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
            # the rule again in the delete: a row that stopped matching since the select stays (a window
            # a finding came to name)
            gone = changed(s, delete(table).where(key.in_(ids), condition))
        done += gone
        after = ids[-1]
        if len(ids) < batch:
            return done
