"""The local services: a real Kafka broker and a real PostgreSQL server, started (or reused) once per session.

The services are left running after the session: later test modules and developers share them. Set
KAFKA_BOOTSTRAP_SERVERS / OPSLOOP_TEST_PG_URL to run these tests against servers started elsewhere.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from opsloop.services import cli
from opsloop.services import kafka as kafka_service
from opsloop.services import postgres as pg_service
from opsloop.services.errors import ServiceStartError, ServiceUnavailable

JAVA_MISSING_LINE = (
    "opsloop: Java 17+ and Maven are needed to run the local Kafka broker; set KAFKA_BOOTSTRAP_SERVERS to use "
    "an existing broker, or run `docker compose up kafka`"
)


# Own names, not conftest's kafka_bootstrap / pg_url: these tests are about opsloop's own services, which
# conftest may replace by containers where a Docker engine answers.
@pytest.fixture(scope="session")
def local_kafka() -> str:
    return kafka_service.start()


@pytest.fixture(scope="session")
def local_pg() -> str:
    return pg_service.start()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def kafka_admin(local_kafka: str) -> Iterator[object]:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=local_kafka, client_id="opsloop-test-services")
    yield admin
    admin.close()


def _new_topic(admin: object, partitions: int) -> str:
    topic = f"opsloop.test.services.{uuid.uuid4().hex[:10]}"
    admin.create_topics(  # type: ignore[attr-defined]
        {topic: {"num_partitions": partitions, "replication_factor": 1}}, wait_for_metadata=True
    )
    return topic


def _consume_all(bootstrap: str, topic: str, expected: int, timeout: float = 60.0) -> list[object]:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"{topic}.readers",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    records: list[object] = []
    deadline = time.monotonic() + timeout
    try:
        while len(records) < expected and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=1000).values():
                records.extend(batch)
        consumer.commit()
    finally:
        consumer.close()
    return records


# --------------------------------------------------------------------------------------------- Kafka


@pytest.mark.kafka
def test_kafka_round_trip_keyed_idempotent(local_kafka: str, kafka_admin: object) -> None:
    from kafka import KafkaProducer

    topic = _new_topic(kafka_admin, partitions=3)
    try:
        (described,) = kafka_admin.describe_topics([topic])  # type: ignore[attr-defined]
        assert len(described["partitions"]) == 3

        producer = KafkaProducer(
            bootstrap_servers=local_kafka, acks="all", enable_idempotence=True, linger_ms=5
        )
        try:
            futures = [
                producer.send(topic, key=f"model-{i % 7}".encode(), value=str(i).encode()) for i in range(100)
            ]
            producer.flush(timeout=30)
            sent = {i: f.get(timeout=30) for i, f in enumerate(futures)}
        finally:
            producer.close(timeout=10)

        records = _consume_all(local_kafka, topic, expected=100)
        received = {int(r.value): r for r in records}  # type: ignore[attr-defined]
        assert sorted(received) == list(range(100)), "every message exactly once"
        assert len(records) == 100
        for i, record in received.items():
            assert record.key == f"model-{i % 7}".encode()  # type: ignore[attr-defined]
            assert record.partition == sent[i].partition  # type: ignore[attr-defined]
        partitions_of_key: dict[bytes, set[int]] = {}
        for record in records:
            partitions_of_key.setdefault(record.key, set()).add(record.partition)  # type: ignore[attr-defined]
        assert all(len(p) == 1 for p in partitions_of_key.values()), "a key stays on one partition"
        assert len({r.partition for r in records}) > 1  # type: ignore[attr-defined]
        for partition in range(3):
            values = [int(r.value) for r in records if r.partition == partition]  # type: ignore[attr-defined]
            assert values == sorted(values), "order is kept within a partition"
    finally:
        kafka_admin.delete_topics([topic])  # type: ignore[attr-defined]


@pytest.mark.kafka
def test_kafka_start_is_idempotent_and_jars_cached(local_kafka: str) -> None:
    began = time.monotonic()
    assert kafka_service.start() == local_kafka
    if not kafka_service.external_bootstrap():
        libs = kafka_service.ensure_jars()
        assert len(list(libs.glob("slf4j-api-*.jar"))) == 1
    assert time.monotonic() - began < 10

    status = subprocess.run(
        [sys.executable, "-m", "opsloop.services.kafka", "status"],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert status.returncode == 0, status.stdout + status.stderr
    assert "ready" in status.stdout


@pytest.mark.kafka
def test_kafka_restart_keeps_data(local_kafka: str, kafka_admin: object) -> None:
    if kafka_service.external_bootstrap():
        pytest.skip("an external broker (KAFKA_BOOTSTRAP_SERVERS) is not restarted")
    if not kafka_service.status().managed:
        pytest.skip("the broker at the default port was not started by opsloop from this data dir")
    from kafka import KafkaProducer

    topic = _new_topic(kafka_admin, partitions=1)
    producer = KafkaProducer(bootstrap_servers=local_kafka, acks="all")
    for i in range(10):
        producer.send(topic, key=b"k", value=str(i).encode())
    producer.flush(timeout=30)
    producer.close(timeout=10)

    began = time.monotonic()
    assert kafka_service.restart() == local_kafka
    assert time.monotonic() - began < 60
    assert kafka_service.status().ready

    records = _consume_all(local_kafka, topic, expected=10)
    assert [int(r.value) for r in records] == list(range(10))  # type: ignore[attr-defined]
    # A kafka-python 3.0 admin client that lived through the outage may still be in its reconnect backoff and
    # fail at once with NodeNotReadyError: a fresh client does the clean-up.
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=local_kafka)
    try:
        admin.delete_topics([topic])
    finally:
        admin.close()


# ---------------------------------------------------------------------------------------- PostgreSQL


@pytest.mark.postgres
def test_postgres_select_one(local_pg: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(local_pg)
    try:
        assert engine.dialect.driver == "psycopg"
        with engine.connect() as conn:
            assert conn.execute(sa.text("select 1")).scalar_one() == 1
            assert (
                conn.execute(sa.text("select current_database()")).scalar_one() == local_pg.rsplit("/", 1)[1]
            )
    finally:
        engine.dispose()
    assert pg_service.start() == local_pg  # idempotent
    assert pg_service.status().ready


# ----------------------------------------------------------------------------------------- no broker


def test_missing_java_gives_the_one_line_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.delenv(kafka_service.BOOTSTRAP_ENV, raising=False)
    real_which = shutil.which

    def which(name: str, *args: object, **kwargs: object) -> str | None:
        return None if name in ("java", "mvn") else real_which(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(shutil, "which", which)
    port = _free_port()  # nothing answers there, so start() must look for java

    with pytest.raises(ServiceUnavailable) as raised:
        kafka_service.start(port=port, data_dir=tmp_path)
    assert f"opsloop: {raised.value}" == JAVA_MISSING_LINE

    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["kafka", "start", "--port", str(port), "--data-dir", str(tmp_path)])
    assert args.func(args) == 2
    assert capsys.readouterr().err.splitlines() == [JAVA_MISSING_LINE]


def test_missing_java_exit_code_from_module_cli(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != kafka_service.BOOTSTRAP_ENV}
    env["PATH"] = str(tmp_path)  # no java, no mvn
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "opsloop.services.kafka",
            "start",
            "--port",
            str(_free_port()),
            "--data-dir",
            str(tmp_path),
        ],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [JAVA_MISSING_LINE]
    assert result.stdout == ""


def test_data_formatted_by_a_newer_kafka_is_refused(tmp_path: Path) -> None:
    (tmp_path / "kraft-logs").mkdir()
    (tmp_path / "kraft-logs" / "meta.properties").write_text("version=1\n")
    (tmp_path / "formatted-by").write_text("9.9.9\n")
    with pytest.raises(ServiceStartError, match="formatted by Kafka 9.9.9"):
        kafka_service._format_storage("java", tmp_path, tmp_path, tmp_path, kafka_service.KAFKA_VERSION)


def test_postgres_missing_without_root_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pg_service, "find_bin_dir", lambda: None)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(ServiceUnavailable, match="OPSLOOP_TEST_PG_URL"):
        pg_service.ensure_installed()


def test_postgres_missing_as_root_installs_with_apt(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    found = iter([None, tmp_path])
    calls: list[tuple[list[str], str | None]] = []

    def run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[bytes]:
        calls.append((cmd, kwargs["env"].get("DEBIAN_FRONTEND")))  # type: ignore[attr-defined]
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setenv("OPSLOOP_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(pg_service, "find_bin_dir", lambda: next(found))
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: f"/usr/bin/{name}")
    monkeypatch.setattr(subprocess, "run", run)
    assert pg_service.ensure_installed() == tmp_path
    assert calls == [
        (["/usr/bin/apt-get", "update"], "noninteractive"),
        (["/usr/bin/apt-get", "install", "-y", "--no-install-recommends", "postgresql"], "noninteractive"),
    ]


@pytest.mark.postgres
def test_postgres_start_refuses_a_server_of_another_data_directory(
    local_pg: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server of another checkout on the port is not reused: stopping "ours" would not stop it."""
    if not pg_service._connectable(pg_service._admin_conninfo(pg_service.DEFAULT_PORT), timeout=2):
        pytest.skip("the tests use a PostgreSQL server other than the project's own")
    monkeypatch.delenv(pg_service.URL_ENV, raising=False)
    monkeypatch.delenv(pg_service.DATA_DIR_ENV, raising=False)
    elsewhere = pg_service.resolve_data_dir().parent / "pg-data-of-another-checkout"  # never created
    with pytest.raises(ServiceStartError, match="not by this checkout's") as err:
        pg_service.start(data_dir=elsewhere)
    assert str(pg_service._serving_data_dir(pg_service.DEFAULT_PORT)) in str(err.value)
    assert str(elsewhere.resolve()) in str(err.value)
    assert not elsewhere.exists()
    assert pg_service.start() == local_pg  # its own server is still reused


def test_cluster_ids_never_start_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    """Kafka's storage tool reads a cluster id starting with "-" as an option and fails to format (seen once in
    CI): such a draw is redrawn, as Kafka's own Uuid.randomUuid() does."""
    import base64

    draws = iter([b"\xfb" + bytes(15), bytes(range(16))])  # the first encodes to "-wAA...", the second does not
    monkeypatch.setattr(kafka_service.os, "urandom", lambda n: next(draws))
    cluster_id = kafka_service.new_cluster_id()
    assert cluster_id == base64.urlsafe_b64encode(bytes(range(16))).rstrip(b"=").decode()
    assert len(cluster_id) == 22 and not cluster_id.startswith("-")
    assert base64.urlsafe_b64encode(b"\xfb" + bytes(15)).decode().startswith("-")  # the first draw was a dash
