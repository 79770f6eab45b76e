"""The outbox relay: publishes committed outbox rows to Kafka, after the commit, never from the consume loop.

An idempotent producer (acks=all) sends each row with the ``opsloop-id`` header; rows are marked published
only after the broker acknowledged them. A crash between the two republishes the same id, which consumers
dedupe on.
"""

from __future__ import annotations

import json
import logging
import threading


from kafka import KafkaProducer
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from storage import repo
from storage.models import Trigger, utcnow

log = logging.getLogger(__name__)

ID_HEADER = "opsloop-id"


class Relay:
    def __init__(self, sessions: sessionmaker[Session], bootstrap_servers: str, *, batch: int = 500,
                 producer: KafkaProducer | None = None, triggers_topic: str = "opsloop.triggers.v1") -> None:
        self.sessions = sessions
        self.batch = batch
        self.triggers_topic = triggers_topic
        self._producer = producer or KafkaProducer(
            bootstrap_servers=bootstrap_servers, acks="all", enable_idempotence=True, linger_ms=5,
            max_request_size=8 * 1024 * 1024, client_id="opsloop-relay")
        self._stop = threading.Event()
        self.published = 0

    def run_once(self) -> int:
        """Publish one batch of pending rows; returns how many were published."""
        with self.sessions() as session:
            rows = [(r.id, r.message_id, r.topic, r.key, r.payload) for r in repo.fetch_unpublished(session, self.batch)]
        if not rows:
            return 0
        futures = []
        for _id, message_id, topic, key, payload in rows:
            value = json.dumps(payload, separators=(",", ":"), default=str).encode()
            futures.append(self._producer.send(topic, key=key.encode() if key else None, value=value,
                                               headers=[(ID_HEADER, message_id.encode())]))
        self._producer.flush()
        for f in futures:
            f.get(timeout=60)  # raises if the broker refused: nothing is marked then
        trigger_ids = [p["id"] for _i, _m, t, _k, p in rows if t == self.triggers_topic]
        with self.sessions() as session, session.begin():
            repo.mark_published(session, [r[0] for r in rows])
            if trigger_ids:
                session.execute(update(Trigger).where(Trigger.id.in_(trigger_ids), Trigger.status == "pending")
                                .values(status="published", updated_at=utcnow()))
        self.published += len(rows)
        log.info("relay published %d messages", len(rows))
        return len(rows)

    def run(self, interval: float = 0.5) -> None:
        backoff = interval
        while not self._stop.is_set():
            try:
                n = self.run_once()
                backoff = interval
                if n < self.batch:
                    self._stop.wait(interval)
            except Exception as exc:  # noqa: BLE001 - the relay must outlive database and broker outages
                log.warning("relay: %s: %s (retry in %.1fs)", type(exc).__name__, str(exc).splitlines()[0]
                            if str(exc) else "", backoff)
                self._stop.wait(backoff)
                backoff = min(30.0, backoff * 2)

    def start_thread(self, interval: float = 0.5) -> threading.Thread:
        t = threading.Thread(target=self.run, args=(interval,), name="opsloop-relay", daemon=True)
        t.start()
        return t

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        self.stop()
        try:
            self._producer.close(timeout=5)
        except Exception:  # noqa: BLE001
            pass


