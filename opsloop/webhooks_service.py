"""`opsloop webhooks`: register endpoints and deliver findings and triggers to them as signed webhooks.

The sender is one more Kafka consumer (group ``opsloop-webhooks[-namespace]``) of the findings and triggers
topics. Each endpoint has its own delivery thread, so a failing endpoint delays only its own messages; an
offset is committed once every endpoint has delivered the message (or was disabled). A restart resumes from
the committed offset and the delivery log skips what an endpoint already accepted, so each webhook-id is
delivered once per endpoint.
"""

from __future__ import annotations

import argparse
import json
import logging
import queue
import signal
import threading
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any

from opsloop.errors import ConfigError

log = logging.getLogger(__name__)


def redact_payload(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Webhook bodies are thin, and every string in them goes through the PII redactor anyway."""
    from detectors.safety.redact import redact

    def walk(x: Any) -> Any:
        if isinstance(x, str):
            return redact(x).text
        if isinstance(x, Mapping):
            return {k: walk(v) for k, v in x.items()}
        if isinstance(x, list):
            return [walk(v) for v in x]
        return x

    return walk(payload)  # type: ignore[no-any-return]


def to_message(topic_kind: str, value: Mapping[str, Any], occurred_at: datetime) -> Any:
    from retrain.webhooks import finding_message, trigger_message

    if topic_kind == "triggers":
        return trigger_message(trigger_id=str(value["id"]), model=value["model"],
                               model_version=str(value["model_version"]), action=value["action"],
                               status="published", reason=str(value.get("reason", "")), occurred_at=occurred_at,
                               severity=str(value.get("severity", "warn")))
    key = str(value["id"]) + (f":r{value['revision']}" if value.get("revision") else "")
    return finding_message(finding_key=key, model=value["model"], model_version=str(value["model_version"]),
                           detector=value["detector"], status=value["status"],
                           severity=str(value.get("severity", "warn")), summary=str(value.get("summary", "")),
                           occurred_at=occurred_at)


class WebhookSender:
    def __init__(self, dispatcher: Any, bootstrap: str, topics: Any, group: str) -> None:
        self.dispatcher = dispatcher
        self.bootstrap = bootstrap
        self.topics = topics
        self.group = group
        self._stop = threading.Event()
        self._queues: dict[int, queue.Queue[tuple[int, Any] | None]] = {}
        self._done: dict[int, int] = {}
        self._lock = threading.Lock()

    def _endpoint_loop(self, endpoint_id: int) -> None:
        q = self._queues[endpoint_id]
        while True:
            item = q.get()
            if item is None:
                return
            seq, message = item
            try:
                outcome = self.dispatcher.deliver(endpoint_id, message)
                log.info("webhook %s -> endpoint %d: %s", message.id, endpoint_id, outcome.status)
            except Exception:  # noqa: BLE001 - a broken endpoint must not kill the sender
                log.exception("webhook %s -> endpoint %d failed", message.id, endpoint_id)
            with self._lock:
                self._done[endpoint_id] = seq

    def run(self, on_message: Callable[[int], None] | None = None) -> None:
        from kafka import KafkaConsumer, OffsetAndMetadata

        consumer = KafkaConsumer(self.topics.findings, self.topics.triggers, bootstrap_servers=self.bootstrap,
                                 group_id=self.group, enable_auto_commit=False, auto_offset_reset="earliest",
                                 client_id="opsloop-webhooks")
        endpoints = [ep.id for ep in self.dispatcher.store.list(enabled_only=True)]
        if not endpoints:
            log.warning("no enabled webhook endpoints: register one with `opsloop webhooks add`")
        threads = []
        for ep in endpoints:
            self._queues[ep] = queue.Queue()
            self._done[ep] = -1
            t = threading.Thread(target=self._endpoint_loop, args=(ep,), name=f"webhook-{ep}", daemon=True)
            t.start()
            threads.append(t)
        seq = 0
        pending: list[tuple[int, Any, int]] = []  # (seq, topic partition, offset)
        try:
            while not self._stop.is_set():
                batch = consumer.poll(timeout_ms=500)
                for tp, msgs in batch.items():
                    kind = "triggers" if tp.topic == self.topics.triggers else "findings"
                    for m in msgs:
                        value = json.loads(m.value)
                        at = datetime.fromtimestamp(m.timestamp / 1000, timezone.utc)
                        message = to_message(kind, value, at)
                        for ep in endpoints:
                            self._queues[ep].put((seq, message))
                        pending.append((seq, tp, m.offset))
                        seq += 1
                        if on_message:
                            on_message(seq)
                with self._lock:
                    done = min(self._done.values()) if self._done else seq - 1
                commit: dict[Any, Any] = {}
                while pending and pending[0][0] <= done:
                    _, tp, off = pending.pop(0)
                    commit[tp] = OffsetAndMetadata(off + 1, "", -1)
                if commit:
                    consumer.commit(commit)
        finally:
            for q in self._queues.values():
                q.put(None)
            consumer.close()

    def stop(self) -> None:
        self._stop.set()


def _dispatcher(sessions: Any, allow: list[str], base_s: float = 1.0, cap_s: float = 300.0) -> Any:
    from retrain.webhooks import DeliveryConfig, SqlDeliveryLog, SqlEndpointStore, WebhookDispatcher

    return WebhookDispatcher(SqlEndpointStore(sessions), SqlDeliveryLog(sessions),
                             DeliveryConfig(allow_ranges=tuple(allow), base_s=base_s, cap_s=cap_s),
                             redact=redact_payload)


def cmd_webhooks(args: argparse.Namespace) -> int:
    from opsloop import wiring
    from opsloop.settings import load
    from retrain.ssrf import UnsafeURL
    from retrain.webhooks import WebhookConfigError, generate_secret
    from streams.topics import Topics

    settings, ks, dbs, _ = load()
    wiring.setup_logging(settings.log_level)
    db = wiring.database(dbs)
    allow = list(args.allow or [])
    dispatcher = _dispatcher(db.sessions, allow, args.retry_base_s, args.retry_cap_s)
    if args.action == "add":
        secret = None
        if not args.secret_env:
            secret = generate_secret()
        try:
            ep = dispatcher.register(name=args.name, url=args.url, secret=secret, secret_env=args.secret_env,
                                     allow_ranges=allow)
        except (UnsafeURL, WebhookConfigError) as exc:
            raise ConfigError(f"webhook refused: {exc}") from None
        print(f"endpoint {ep.id} {ep.name} registered")
        if secret:
            print(f"signing secret (shown once, store it with the receiver): {secret}")
        return 0
    if args.action == "list":
        for ep in dispatcher.store.list(enabled_only=False):
            state = "enabled" if ep.enabled else f"disabled ({ep.disabled_reason})"
            print(f"{ep.id} {ep.name} {state}")  # never the URL: webhook URLs can carry tokens
        return 0
    group = f"opsloop-webhooks-{ks.namespace}" if ks.namespace else "opsloop-webhooks"
    sender = WebhookSender(dispatcher, ks.bootstrap_servers, Topics(ks.namespace), group)
    signal.signal(signal.SIGTERM, lambda *_: sender.stop())
    try:
        sender.run()
    except KeyboardInterrupt:
        pass
    return 0


def register(sub: Any) -> None:
    w = sub.add_parser("webhooks", help="signed webhooks: add / list endpoints, run the sender")
    w.add_argument("action", choices=["add", "list", "run"])
    w.add_argument("--name")
    w.add_argument("--url")
    w.add_argument("--secret-env", help="read the whsec_ signing secret from this environment variable")
    w.add_argument("--allow", action="append", help="CIDR range allowed although not global (e.g. 10.0.0.0/8)")
    w.add_argument("--retry-base-s", type=float, default=1.0, help="first retry waits up to this (full jitter)")
    w.add_argument("--retry-cap-s", type=float, default=300.0, help="no retry waits longer than this")
    w.set_defaults(func=cmd_webhooks)
