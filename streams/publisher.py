"""A small publisher for apps: kafka-python, idempotent, acks=all, keyed by model so its events stay in order."""

from __future__ import annotations

from typing import Any

from kafka import KafkaProducer

from streams.topics import Topics
from streams.events import FeedbackEvent, LLMInteractionEvent, PredictionEvent


class Publisher:
    def __init__(self, bootstrap_servers: str, *, topics: Topics | None = None, **producer_config: Any) -> None:
        self.topics = topics or Topics()
        cfg: dict[str, Any] = dict(bootstrap_servers=bootstrap_servers, acks="all", enable_idempotence=True,
                                   linger_ms=5, compression_type="gzip", client_id="opsloop-publisher")
        cfg.update(producer_config)
        self._producer = KafkaProducer(**cfg)

    def prediction(self, event: PredictionEvent) -> Any:
        return self._send(self.topics.predictions, event.model.name, event.model_dump_json().encode())

    def feedback(self, event: FeedbackEvent, key: str | None = None) -> Any:
        k = key or (event.model.name if event.model else event.prediction_id)
        return self._send(self.topics.feedback, k, event.model_dump_json().encode())

    def llm(self, event: LLMInteractionEvent) -> Any:
        return self._send(self.topics.llm, event.application, event.model_dump_json().encode())

    def raw(self, topic: str, key: str | None, value: bytes) -> Any:
        """Send bytes as they are (tests use it to publish malformed events)."""
        return self._send(topic, key, value)

    def _send(self, topic: str, key: str | None, value: bytes) -> Any:
        return self._producer.send(topic, key=key.encode() if key is not None else None, value=value)

    def flush(self, timeout: float | None = None) -> None:
        self._producer.flush(timeout=timeout)

    def close(self) -> None:
        self._producer.close()

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.flush()
        self.close()
