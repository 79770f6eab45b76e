"""The LLM stream end to end: kafka-python -> real broker -> faust worker with the LLM agent -> PostgreSQL ->
relay -> findings, triggers and dead letters on Kafka; and no planted personal data anywhere afterwards."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from storage.models import Finding, LLMInteraction, OutboxMessage, PartitionOffset, Trigger
from tests.e2e.harness import Loop, publish_all, wait_for
from tests.test_llm_stream import Planted, _texts, interactions, scan_database, scan_texts

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]
KEY = "e2e-fingerprint-key-9f8e7d6c5b4a"
WINDOW = 250


@pytest.fixture
def loop(kafka_bootstrap: str, pg_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    lp = Loop(
        kafka_bootstrap,
        pg_url,
        tmp_path,
        partitions=3,
        extra_env={
            "OPSLOOP_LLM_FINGERPRINT_KEY": KEY,
            "OPSLOOP_LLM_WINDOW_SIZE": str(WINDOW),
            "OPSLOOP_LLM_REFERENCE_SIZE": str(WINDOW),
        },
    )
    yield lp
    lp.close()


def _llm_worker(loop: Loop) -> subprocess.Popen[bytes]:
    """The real `opsloop worker` (predictions, feedback and LLM interactions), with its relay thread."""
    return loop.spawn("worker", name="llm-worker")


def _applied(loop: Loop) -> int:
    with loop.sessions() as s:
        offsets = s.scalars(
            select(PartitionOffset.offset).where(PartitionOffset.topic == loop.topics.llm)
        ).all()
    return sum(o + 1 for o in offsets)


def _unpublished(loop: Loop) -> int:
    with loop.sessions() as s:
        return int(
            s.scalar(
                select(func.count()).select_from(OutboxMessage).where(OutboxMessage.published_at.is_(None))
            )
            or 0
        )


def test_rising_injections_and_leaks_become_findings_and_nothing_personal_is_kept(loop: Loop) -> None:
    planted = Planted()
    support = interactions(2000, application="support-bot", shift_at=1000, planted=planted)
    docs = interactions(1000, application="docs-bot", seed=11, planted=planted)
    raw_email, raw_card = "canary.person@leak-example.com", "4556 7375 8689 9855"
    planted.emails.add(raw_email)
    planted.cards.add(raw_card)
    bad = [
        f'{{"application": "support-bot", "response": "mail {raw_email}"'.encode(),
        json.dumps(
            {
                "application": "support-bot",
                "model": "m",
                "occurred_at": "2026-03-01T10:00:00Z",
                "prompt": f"my card is {raw_card}",
                "response": "ok",
                "user_rating": 5,
            }
        ).encode(),
        b"\xff" + raw_email.encode(),
    ]
    values: list[tuple[str, bytes]] = []
    for i, e in enumerate(support):
        values.append((e.application, e.model_dump_json().encode()))
        if i < len(docs):
            values.append((docs[i].application, docs[i].model_dump_json().encode()))
        if i % 600 == 300:
            values.append(("support-bot", bad[(i // 600) % len(bad)]))
    worker = _llm_worker(loop)
    with loop.publisher() as pub:
        n = publish_all(pub, values, loop.topics.llm)
    wait_for(lambda: _applied(loop) >= n, 240, f"{n} LLM records applied")
    wait_for(lambda: _unpublished(loop) == 0, 60, "the relay to publish the outbox")
    assert worker.poll() is None, loop.logs()

    # findings: support-bot's safety windows alert from the shift on, docs-bot's never
    with loop.sessions() as s:
        safety = {
            (f.model, f.finding_key.rsplit(":", 1)[1]): f
            for f in s.scalars(select(Finding).where(Finding.detector == "safety.window"))
        }
        triggers = s.scalars(select(Trigger)).all()
        kept = s.scalar(select(func.count()).select_from(LLMInteraction))
    assert sorted(int(i) for m, i in safety if m == "llm:support-bot") == list(range(8))
    assert sorted(int(i) for m, i in safety if m == "llm:docs-bot") == list(range(4))
    alerting = sorted((m, int(i)) for (m, i), f in safety.items() if f.status == "alert")
    assert alerting == [("llm:support-bot", i) for i in range(4, 8)], loop.logs()
    for i in range(4, 8):
        rates = safety[("llm:support-bot", str(i))].details["rates"]
        assert rates["injection_attempt_rate"] == pytest.approx(0.10)
        assert rates["pii_leak_rate"] == pytest.approx(0.15, abs=0.003)  # 5 % card leaks: 12 or 13 of 250
    assert kept and kept > 300

    # the findings topic carries exactly the alerting findings, by id
    published = loop.read_topic(loop.topics.findings, expect=len(alerting))
    by_id = {m["id"]: m["value"] for m in published}
    for i in range(4, 8):
        msg = by_id[f"llm:support-bot:*:safety.window:count:{i}"]
        assert msg["application"] == "support-bot" and msg["status"] == "alert"
        assert msg["window"]["index"] == i and msg["window"]["n_events"] == WINDOW
        assert "overall:injection_attempt_rate" in msg["details"]["alerts"]
        assert "overall:pii_leak_rate" in msg["details"]["alerts"]
    assert all(v["application"] == "support-bot" for v in by_id.values())

    # one alert trigger (2 of 3 windows, then cooldown); the prompt update waits for approval, unpublished
    assert sorted((t.model, t.action, t.status) for t in triggers) == [
        ("llm:support-bot", "alert", "published"),
        ("llm:support-bot", "prompt_update", "awaiting_approval"),
    ]
    trig = loop.read_topic(loop.topics.triggers, expect=1)
    assert [m["value"]["action"] for m in trig] == ["alert"]
    assert trig[0]["value"]["window"]["index"] == 5

    dead = loop.read_topic(loop.topics.dlq, expect=len(bad))
    assert len(dead) == len(bad) and all(m["value"]["value_redacted"] for m in dead)
    assert {m["value"]["origin"]["topic"] for m in dead} == {loop.topics.llm}

    # no planted email address or card number anywhere: database, logs, published messages
    needles = planted.needles()
    assert scan_database(loop.engine, needles) == {}
    logs = "\n".join(p.read_text(errors="replace") for p in loop.workdir.glob("*.log"))
    assert "llm batch of" in logs and scan_texts([logs], needles) == []
    for topic, msgs in (
        (loop.topics.dlq, dead),
        (loop.topics.findings, published),
        (loop.topics.triggers, trig),
    ):
        assert scan_texts((t for m in msgs for t in _texts(m["value"])), needles) == [], topic
    assert KEY not in logs
