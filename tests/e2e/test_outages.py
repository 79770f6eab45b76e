"""Infrastructure faults (GUIDE T2, T3): the database or the broker goes away mid-stream. Nothing is
dead-lettered for it, nothing is lost or counted twice, and no worker exits for good.

These tests stop and start the project's own PostgreSQL and Kafka (the services `scripts/test.sh` starts);
they are skipped against services the project does not manage.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from opsloop.services import kafka as local_kafka
from opsloop.services import postgres as local_pg
from opsloop.simulate import Scenario, events
from tests.e2e.harness import Loop, publish_all, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.e2e]

SHIFTED = ("country", "x1", "x4")
SCENARIO = Scenario(model="outage", n_events=8_000, drift_after=5_000, drifted=SHIFTED)
# reference 2000 (set below): windows #0..#5; the shift at 5000 drifts #3..#5
EXPECTED = [(f"outage:1:drift.features:count:{i}", SHIFTED) for i in range(3, 6)]


def _values() -> list[tuple[str, bytes]]:
    return [(e.model.name, e.model_dump_json().encode()) for e in events(SCENARIO)]


def _managed_pg(url: str) -> bool:
    return url == local_pg.url() and not os.environ.get("OPSLOOP_TEST_PG_EXTERNAL")


@pytest.fixture
def loop(kafka_bootstrap: str, pg_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    lp = Loop(kafka_bootstrap, pg_url, tmp_path, extra_env={"OPSLOOP_WORKER_REFERENCE_SIZE": "2000"})
    yield lp
    lp.close()


def test_database_outage_pauses_and_resumes(loop: Loop, pg_server_url: str,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    if not _managed_pg(pg_server_url):
        pytest.skip("PostgreSQL is not the project's own server: not stopping it")
    # scripts/test.sh names the project's server in OPSLOOP_TEST_PG_URL; the service refuses to stop a server
    # named there, so this test speaks as the owner
    monkeypatch.delenv("OPSLOOP_TEST_PG_URL", raising=False)
    worker = loop.worker()
    relay = loop.relay()
    values = _values()
    with loop.publisher() as pub:
        publish_all(pub, values[:3_000], loop.topics.predictions)
    wait_for(lambda: loop.applied_offsets() >= 2_500, 180, "the first events applied")
    loop.engine.dispose()
    assert local_pg.stop(), "the project's PostgreSQL did not stop"
    try:
        with loop.publisher() as pub:  # the stream goes on while the database is down
            publish_all(pub, values[3_000:], loop.topics.predictions)
        time.sleep(30)
        assert worker.poll() is None and relay.poll() is None, "nobody exits while the database is down"
    finally:
        local_pg.start()
    loop.wait_applied(len(values), timeout=300)
    assert loop.findings() == EXPECTED, loop.logs()
    assert loop.trigger_count() == 1
    assert loop.read_topic(loop.topics.dlq, timeout=5) == []
    assert len(loop.read_topic(loop.topics.triggers, expect=1)) == 1
    worker_logs = "".join(p.read_text(errors="replace") for p in loop.workdir.glob("worker-*.log"))
    assert "storage unavailable" in worker_logs  # it waited and retried, and said so


def test_broker_restart_mid_stream(loop: Loop, kafka_bootstrap: str) -> None:
    if local_kafka.external_bootstrap() or local_kafka.managed_pid() is None:
        pytest.skip("the broker is not the project's own: not restarting it")
    worker = loop.worker()
    relay = loop.relay()
    values = _values()
    with loop.publisher() as pub:
        publish_all(pub, values[:4_000], loop.topics.predictions)
    wait_for(lambda: loop.applied_offsets() >= 3_000, 180, "the first events applied")
    local_kafka.restart()
    with loop.publisher() as pub:
        publish_all(pub, values[4_000:], loop.topics.predictions)
    loop.wait_applied(len(values), timeout=300)
    assert worker.poll() is None and relay.poll() is None, "no worker exits for good"
    assert loop.findings() == EXPECTED, loop.logs()
    triggers = loop.read_topic(loop.topics.triggers, expect=1)
    assert len({m["id"] for m in triggers}) == 1
    assert loop.read_topic(loop.topics.dlq, timeout=5) == []
