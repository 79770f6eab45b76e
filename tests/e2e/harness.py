"""Run real `opsloop worker` / `opsloop relay` processes against the real broker and database."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from storage.db import make_engine, migrate, session_factory
from storage.models import Finding, PartitionOffset, Trigger
from streams.admin import ensure_topics
from streams.publisher import Publisher
from streams.topics import Topics

OPSLOOP = [sys.executable, "-m", "opsloop.cli"]


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.5) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


@dataclass
class Loop:
    """One isolated loop: its own topic namespace, consumer group and database."""

    bootstrap: str
    db_url: str
    workdir: Path
    partitions: int = 6
    extra_env: dict[str, str] = field(default_factory=dict)
    namespace: str = field(default_factory=lambda: f"t{uuid.uuid4().hex[:10]}")
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.topics = Topics(self.namespace)
        self.engine = make_engine(self.db_url)
        migrate(self.engine)
        self.sessions: sessionmaker[Session] = session_factory(self.engine)
        ensure_topics(self.bootstrap, self.partitions, names=self.topics.all())

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPSLOOP_")}
        env.update({
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "OPSLOOP_KAFKA_NAMESPACE": self.namespace,
            "OPSLOOP_KAFKA_PARTITIONS": str(self.partitions),
            "OPSLOOP_DB_URL": self.db_url,
            "OPSLOOP_WORKER_APP_ID": f"opsloop-{self.namespace}",
            "OPSLOOP_WORKER_BATCH_WITHIN_S": "0.3",
            "OPSLOOP_WORKER_BATCH_SIZE": "500",
            "OPSLOOP_HOME": str(self.workdir),
            "PYTHONUNBUFFERED": "1",
        })
        env.update(self.extra_env)
        return env

    def spawn(self, *args: str, name: str) -> subprocess.Popen[bytes]:
        log = open(self.workdir / f"{name}-{len(self.procs)}.log", "ab")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen([*OPSLOOP, *args], env=self.env(), stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        self.procs.append(proc)
        return proc

    def worker(self, relay: bool = False) -> subprocess.Popen[bytes]:
        return self.spawn("worker", *([] if relay else ["--no-relay"]), name="worker")

    def relay(self) -> subprocess.Popen[bytes]:
        return self.spawn("relay", name="relay")

    def publisher(self) -> Publisher:
        return Publisher(self.bootstrap, topics=self.topics)

    def applied_offsets(self) -> int:
        """How many records (valid or not) the workers have applied to storage."""
        with self.sessions() as s:
            rows = s.execute(select(PartitionOffset.offset).where(
                PartitionOffset.topic == self.topics.predictions)).scalars().all()
        return sum(o + 1 for o in rows)

    def wait_applied(self, n: int, timeout: float = 240) -> None:
        wait_for(lambda: self.applied_offsets() >= n, timeout, f"{n} records applied")

    def findings(self) -> list[tuple[str, tuple[str, ...]]]:
        """The feature-drift findings: (key, drifted features)."""
        with self.sessions() as s:
            return sorted((f.finding_key, tuple(sorted(f.details["drifted_features"])))
                          for f in s.scalars(select(Finding).where(Finding.detector == "drift.features")))

    def finding_keys(self) -> list[str]:
        """Every finding, of any detector."""
        with self.sessions() as s:
            return sorted(s.scalars(select(Finding.finding_key)))

    def trigger_count(self) -> int:
        with self.sessions() as s:
            return int(s.scalar(select(func.count()).select_from(Trigger)) or 0)

    def read_topic(self, topic: str, *, expect: int | None = None, timeout: float = 60) -> list[dict[str, Any]]:
        """Every message on ``topic`` with its ``opsloop-id`` header, read from the beginning."""
        consumer = KafkaConsumer(topic, bootstrap_servers=self.bootstrap, auto_offset_reset="earliest",
                                 enable_auto_commit=False, group_id=None, consumer_timeout_ms=3000)
        out: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                for msg in consumer:
                    headers = dict(msg.headers or [])
                    out.append({"id": headers.get("opsloop-id", b"").decode(), "key": msg.key,
                                "value": json.loads(msg.value), "partition": msg.partition, "offset": msg.offset})
                if expect is None or len(out) >= expect:
                    break
        finally:
            consumer.close()
        return out

    def kill(self, proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        proc.wait(timeout=60)

    def close(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                    p.wait(timeout=20)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    self.kill(p)
        self.engine.dispose()

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in sorted(self.workdir.glob("*.log")))


def publish_all(pub: Publisher, values: Iterable[tuple[str, bytes]], topic: str) -> int:
    n = 0
    for key, value in values:
        pub.raw(topic, key, value)
        n += 1
    pub.flush()
    return n
