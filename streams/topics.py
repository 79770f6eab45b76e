"""Versioned topic names. A breaking change of an event gets a new topic, never a silent edit.

An optional namespace prefixes every name (``staging.opsloop.predictions.v1``), so several environments or
test runs can share one cluster.
"""

from __future__ import annotations

from dataclasses import dataclass

PREDICTIONS = "opsloop.predictions.v1"
FEEDBACK = "opsloop.feedback.v1"
LLM = "opsloop.llm.v1"
DLQ = "opsloop.dlq.v1"
FINDINGS = "opsloop.findings.v1"
TRIGGERS = "opsloop.triggers.v1"

INPUT_TOPICS = (PREDICTIONS, FEEDBACK, LLM)
OUTPUT_TOPICS = (DLQ, FINDINGS, TRIGGERS)
ALL_TOPICS = INPUT_TOPICS + OUTPUT_TOPICS

ID_HEADER = "opsloop-id"


@dataclass(frozen=True)
class Topics:
    namespace: str = ""

    def _n(self, base: str) -> str:
        return f"{self.namespace}.{base}" if self.namespace else base

    @property
    def predictions(self) -> str:
        return self._n(PREDICTIONS)

    @property
    def feedback(self) -> str:
        return self._n(FEEDBACK)

    @property
    def llm(self) -> str:
        return self._n(LLM)

    @property
    def dlq(self) -> str:
        return self._n(DLQ)

    @property
    def findings(self) -> str:
        return self._n(FINDINGS)

    @property
    def triggers(self) -> str:
        return self._n(TRIGGERS)

    def all(self) -> tuple[str, ...]:
        return tuple(self._n(t) for t in ALL_TOPICS)
