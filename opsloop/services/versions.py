"""The one place where the versions of the local services' Java parts are pinned."""

from __future__ import annotations

KAFKA_VERSION = "4.4.0"
SCALA_VERSION = "2.13"
# Kafka 4.x logs through SLF4J; log4j-slf4j2-impl binds SLF4J 2 to log4j2. kafka_2.13 itself brings
# slf4j-api 1.7.x, which has no provider mechanism for that binding, so slf4j-api is pinned to the 2.0.x
# line that this log4j release is built against.
LOG4J_VERSION = "2.25.3"
SLF4J_VERSION = "2.0.17"
MAVEN_DEPENDENCY_PLUGIN_VERSION = "3.8.1"
