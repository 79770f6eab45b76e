"""Test helpers shared by unit and end-to-end tests."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from opsloop.simulate import Scenario, events
from streams import topics
from streams.processor import Record


def records(evts: Iterable[object], partition: int = 0, start_offset: int = 0,
            topic: str = topics.PREDICTIONS) -> list[Record]:
    out = []
    for i, e in enumerate(evts):
        value = e if isinstance(e, bytes) else e.model_dump_json().encode()  # type: ignore[attr-defined]
        out.append(Record(topic=topic, partition=partition, offset=start_offset + i, key=b"m", value=value))
    return out


def scenario_records(sc: Scenario, partition: int = 0) -> list[Record]:
    return records(events(sc), partition=partition)


def chunks(seq: Sequence[Record], size: int) -> list[Sequence[Record]]:
    return [seq[i:i + size] for i in range(0, len(seq), size)]


MALFORMED: list[tuple[bytes, str]] = [
    (b"{not json", "invalid_json"),
    (b'{"schema_version": 1, "occurred_at": "2026-01-01T00:00:00Z", "features": {}}', "missing_field"),
    (b'{"schema_version": 1, "occurred_at": "2026-01-01T00:00:00Z", "model": {"name": "m", "version": "1"},'
     b' "features": {"x0": [1, 2]}, "prediction": {"label": 1}}', "schema_violation"),
    (b'{"schema_version": 2, "occurred_at": "2026-01-01T00:00:00Z", "model": {"name": "m", "version": "1"},'
     b' "features": {}, "prediction": {"label": 1}}', "unsupported_schema_version"),
    (b"\xff\xfe\x00garbage", "invalid_json"),
]
