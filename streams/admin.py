"""Topic creation with kafka-python 3.x's admin client (dict-based API)."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from kafka import KafkaAdminClient
from kafka.errors import TopicAlreadyExistsError

from streams import topics

log = logging.getLogger(__name__)

# Dead letters keep the original bytes; allow a little more than the inputs' default 1 MB.
_DLQ_CONFIG = {"max.message.bytes": str(4 * 1024 * 1024)}


def ensure_topics(bootstrap: str, partitions: int, replication: int = 1,
                  names: Iterable[str] = topics.ALL_TOPICS, client_id: str = "opsloop-admin") -> list[str]:
    """Create the versioned topics that are missing; returns the names created. Existing ones are kept."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id=client_id)
    try:
        existing = set(admin.list_topics())
        wanted = {n: {"num_partitions": partitions, "replication_factor": replication,
                      "configs": _DLQ_CONFIG if n.endswith(topics.DLQ) else {}}
                  for n in names if n not in existing}
        if not wanted:
            return []
        try:
            admin.create_topics(wanted, wait_for_metadata=True)
        except TopicAlreadyExistsError:  # another process raced us: fine
            pass
        log.info("created topics %s with %d partitions", sorted(wanted), partitions)
        return sorted(wanted)
    finally:
        admin.close()


def partition_counts(bootstrap: str, names: Iterable[str]) -> dict[str, int]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="opsloop-admin")
    try:
        return {t["name"]: len(t["partitions"]) for t in admin.describe_topics(list(names))}
    finally:
        admin.close()
