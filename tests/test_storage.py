"""Storage on SQLite and PostgreSQL: migrations, insert-or-ignore, optimistic model state."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, inspect, select

from storage import repo
from storage.db import downgrade, make_engine, migrate, session_factory
from storage.models import Base, Finding, OutboxMessage


def test_upgrade_downgrade_upgrade(db_url: str) -> None:
    engine = make_engine(db_url)
    migrate(engine)
    tables = set(inspect(engine).get_table_names())
    assert {"findings", "triggers", "outbox", "windows", "model_states", "partition_offsets"} <= tables
    downgrade(engine)
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    migrate(engine)
    assert set(inspect(engine).get_table_names()) == tables
    engine.dispose()


def test_migrations_match_models(db_url: str) -> None:
    engine = make_engine(db_url)
    migrate(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []


def test_findings_insert_or_ignore(sessions) -> None:  # type: ignore[no-untyped-def]
    values = dict(finding_key="m:1:drift:0", model="m", model_version="1", detector="drift.features",
                  status="drift", severity="warn", score=0.3, summary="s", details={"a": 1})
    with sessions() as s, s.begin():
        assert repo.add_finding(s, **values)
        assert not repo.add_finding(s, **values)
    with sessions() as s, s.begin():
        assert not repo.add_finding(s, **values)
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Finding)) == 1


def test_model_state_revision_guards_lost_updates(sessions) -> None:  # type: ignore[no-untyped-def]
    key = ("m", "1")
    with sessions() as s, s.begin():
        assert repo.save_state(s, key, {"n": 1}, None) == 1
    with sessions() as s, s.begin():
        assert repo.save_state(s, key, {"n": 2}, 1) == 2
    with pytest.raises(repo.StaleStateError):
        with sessions() as s, s.begin():
            repo.save_state(s, key, {"n": 3}, 1)  # a racing worker that read revision 1
    with pytest.raises(repo.StaleStateError):
        with sessions() as s, s.begin():
            repo.save_state(s, key, {"n": 0}, None)  # a racing first insert
    with sessions() as s:
        assert repo.load_states(s, [key]) == {key: (2, {"n": 2})}


def test_outbox_order_and_mark_published(sessions) -> None:  # type: ignore[no-untyped-def]
    with sessions() as s, s.begin():
        for i in range(5):
            assert repo.add_outbox(s, message_id=f"id{i}", topic="t", key="k", payload={"i": i})
        assert not repo.add_outbox(s, message_id="id0", topic="t", key="k", payload={"i": 0})
    with sessions() as s, s.begin():
        rows = repo.fetch_unpublished(s, 3)
        assert [r.payload["i"] for r in rows] == [0, 1, 2]
        repo.mark_published(s, [r.id for r in rows])
    with sessions() as s:
        assert [r.message_id for r in repo.fetch_unpublished(s)] == ["id3", "id4"]
        assert s.scalar(select(func.count()).select_from(OutboxMessage)) == 5


def test_session_factory_builds_sessions(db_url: str) -> None:
    engine = make_engine(db_url)
    migrate(engine)
    with session_factory(engine)() as s:
        assert s.scalar(select(func.count()).select_from(Finding)) == 0
    engine.dispose()
