"""The faust-streaming worker: consumes predictions in batches and hands them to the batch processor.

faust gives us the consumer group (rebalancing, scale-out by partitions) and at-least-once offset commits;
the processor makes storage effectively-once. Work that blocks (SQL, numpy) runs in a thread so the event
loop keeps heartbeating while a batch is applied or while storage is down and we retry.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import faust

from streams.processor import BatchProcessor, BatchResult, Record, freeze_startup_heap, retry_forever
from streams.topics import Topics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerConfig:
    app_id: str
    bootstrap_servers: str
    partitions: int
    batch_size: int = 1000
    batch_within_s: float = 1.0
    session_timeout_s: float = 15.0  # how soon a dead worker's partitions move to the others
    topics: Topics = Topics()
    datadir: str | None = None  # faust's data directory (unused with the memory store); None: the system temp dir


def make_app(config: WorkerConfig, processor: BatchProcessor,
             on_batch: Callable[[BatchResult], None] | None = None) -> faust.App:
    datadir = config.datadir or os.path.join(tempfile.gettempdir(), "opsloop-faust")
    os.makedirs(datadir, exist_ok=True)  # faust creates only the last level
    app = faust.App(
        config.app_id,
        datadir=os.path.join(datadir, "{conf.id}-data"),
        broker=f"kafka://{config.bootstrap_servers}",
        store="memory://",
        topic_partitions=config.partitions,
        value_serializer="raw",
        key_serializer="raw",
        web_enabled=False,
        consumer_auto_offset_reset="earliest",
        topic_allow_declare=False,       # the project creates its topics (`opsloop topics create`)
        topic_disable_leader=True,       # no leader-only timers: no internal __assignor-__leader topic
        broker_commit_interval=1.0,
        stream_buffer_maxsize=max(4096, config.batch_size * 2),
        producer_acks=-1,
        broker_session_timeout=config.session_timeout_s,
        broker_heartbeat_interval=max(1.0, config.session_timeout_s / 5),
    )
    # one agent over predictions and feedback: one batch in flight, applied in one transaction
    source = app.topic(config.topics.predictions, config.topics.feedback, key_type=bytes, value_type=bytes,
                       key_serializer="raw", value_serializer="raw", partitions=config.partitions)

    @app.agent(source, concurrency=1)
    async def predictions(stream: Any) -> None:
        async for events in stream.take_events(config.batch_size, within=config.batch_within_s):
            records = [
                Record(topic=e.message.topic, partition=e.message.partition, offset=e.message.offset,
                       key=e.message.key, value=e.message.value,
                       timestamp_ms=int(e.message.timestamp * 1000) if e.message.timestamp else None)
                for e in events
            ]
            result = await asyncio.to_thread(retry_forever, lambda: processor.process(records))
            log.info("batch of %d: applied=%d skipped=%d dead=%d windows=%d findings=%d (revised %d) triggers=%d "
                     "labels=%d", len(records), result.applied, result.skipped, result.dead_lettered, result.windows,
                     result.findings, result.findings_revised, result.triggers, result.labels_applied)
            freeze_startup_heap(config.batch_size)
            if on_batch:
                on_batch(result)

    @app.on_partitions_revoked.connect
    async def _revoked(app: Any, revoked: Any, **kwargs: Any) -> None:  # noqa: ARG001
        processor.forget()

    @app.on_partitions_assigned.connect
    async def _assigned(app: Any, assigned: Any, **kwargs: Any) -> None:  # noqa: ARG001
        mine = sorted(tp.partition for tp in assigned if tp.topic == config.topics.predictions)  # feedback: alike
        log.info("assigned %d partitions of %s: %s", len(mine), config.topics.predictions, mine)

    return app
