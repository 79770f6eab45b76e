"""Local services for development and tests: a single-node Kafka broker and a PostgreSQL server.

Both run as plain processes (no Docker): Kafka from its Maven Central jars, PostgreSQL from Debian's
packages. Each module has a CLI: ``python -m opsloop.services.kafka`` and ``python -m opsloop.services.postgres``.
"""

from __future__ import annotations

from opsloop.services.errors import ServiceError, ServiceStartError, ServiceUnavailable

__all__ = ["ServiceError", "ServiceStartError", "ServiceUnavailable"]
