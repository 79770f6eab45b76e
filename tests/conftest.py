"""Shared fixtures: the real Kafka broker and the real PostgreSQL server.

Where a Docker engine answers (a user's laptop), testcontainers starts them; elsewhere the project's own
scripts do (`opsloop kafka start`, `opsloop postgres start`), or the services named by
``KAFKA_BOOTSTRAP_SERVERS`` / ``OPSLOOP_TEST_PG_URL`` are used as they are.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from hypothesis import settings
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from storage.db import make_engine, migrate, session_factory

# Hypothesis's default 200 ms deadline per example is a timed assertion: on a loaded machine (CI, or the
# first example paying an import) it fails tests whose behaviour is right. Speed is the benches' business.
settings.register_profile("opsloop", deadline=None)
settings.load_profile("opsloop")


def _docker_available() -> bool:
    if os.environ.get("OPSLOOP_TEST_NO_DOCKER"):
        return False
    try:
        import docker

        docker.from_env(timeout=3).ping()
        return True
    except Exception:  # noqa: BLE001 - any failure means: no engine here
        return False


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    env = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if env:
        yield env
        return
    if _docker_available():
        from testcontainers.kafka import KafkaContainer

        from opsloop.services.versions import KAFKA_VERSION

        with KafkaContainer(f"apache/kafka:{KAFKA_VERSION}").with_kraft() as kc:
            yield kc.get_bootstrap_server()
        return
    from opsloop.services import kafka as local_kafka

    yield local_kafka.start()


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    env = os.environ.get("OPSLOOP_TEST_PG_URL")
    if env:
        yield env
        return
    if _docker_available():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16", driver="psycopg") as pg:
            yield pg.get_connection_url()
        return
    from opsloop.services import postgres as local_pg

    yield local_pg.start()


@pytest.fixture
def pg_url(pg_server_url: str) -> Iterator[str]:
    """A fresh, empty database on the real PostgreSQL server for one test."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    # no pool: a test may restart the server (outage tests) and pooled connections would be dead
    admin = create_engine(pg_server_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    url = pg_server_url.rsplit("/", 1)[0] + "/" + name
    try:
        yield url
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path) -> str:  # type: ignore[no-untyped-def]
    """Every storage test runs on SQLite (the embedded default) and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'opsloop.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def sessions(db_url: str):  # type: ignore[no-untyped-def]
    engine = make_engine(db_url)
    migrate(engine)
    yield session_factory(engine)
    engine.dispose()


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:8]
