"""The safety vocabulary: what a provider is given (``SafetyItem``), what it answers (``SafetyVerdict``).

A provider (the offline heuristics, Azure AI Content Safety, OpenAI moderation) turns LLM interactions into
verdicts. Verdicts are values; a provider that failed says so in ``errors`` rather than raising, so the stream
layer can report provider health and never dead-letter the event that happened to be analysed during an
outage.

Harm buckets are the common denominator of the providers' categories. A provider fills only the buckets it
measures: a missing bucket means "not measured", never "safe" (Azure has no harassment or illicit category;
the offline heuristic has no illicit list). The same goes for the ``None`` of the optional fields.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

from detectors.base import ConfigError, OpsloopDetectorError, json_safe

HARM_BUCKETS: tuple[str, ...] = ("hate", "sexual", "violence", "self_harm", "harassment", "illicit")

SKIP_SAMPLED_OUT = "sampled_out"
SKIP_BUDGET_EXHAUSTED = "budget_exhausted"


class SafetyInputError(OpsloopDetectorError):
    """A safety item or verdict broke its contract (a bucket outside ``HARM_BUCKETS``, a score outside [0, 1])."""


@dataclass(frozen=True)
class SafetyItem:
    """One LLM interaction: the user's prompt, the model's response, and any retrieved documents."""

    id: str
    prompt: str
    response: str
    documents: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise SafetyInputError("SafetyItem.id must be a non-empty string")
        if not isinstance(self.prompt, str) or not isinstance(self.response, str):
            raise SafetyInputError("SafetyItem.prompt and .response must be strings")
        if not isinstance(self.documents, tuple):
            object.__setattr__(self, "documents", tuple(self.documents))
        if not all(isinstance(d, str) for d in self.documents):
            raise SafetyInputError("SafetyItem.documents must be strings")


@dataclass(frozen=True)
class SafetyVerdict:
    """One provider's verdict on one item.

    ``harm`` maps the measured buckets to scores in [0, 1]; ``flagged`` names the buckets over the provider's
    thresholds. ``pii_kinds`` are the kinds of personal data found in the *response* (what would leak), ``None``
    when the provider does not look for personal data. ``errors`` are short, secret-free texts (``"azure
    text:analyze: http 401"``); a verdict with errors may still carry the parts that succeeded. ``skipped``
    names why an item was not sent at all (``"sampled_out"``, ``"budget_exhausted"``): not an error.
    ``details`` holds provider extras (heuristic rule names, the injection score, PII kinds in the prompt).
    """

    item_id: str
    provider: str
    harm: Mapping[str, float] = field(default_factory=dict)
    flagged: tuple[str, ...] = ()
    injection_attack: bool | None = None
    indirect_attack: bool | None = None
    protected_material: bool | None = None
    ungrounded: float | None = None
    pii_kinds: tuple[str, ...] | None = None
    errors: tuple[str, ...] = ()
    skipped: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for bucket, score in self.harm.items():
            if bucket not in HARM_BUCKETS:
                raise SafetyInputError(f"unknown harm bucket {bucket!r}; expected one of {HARM_BUCKETS}")
            if not (isinstance(score, (int, float)) and math.isfinite(score) and 0.0 <= score <= 1.0):
                raise SafetyInputError(f"harm score of {bucket!r} must be in [0, 1], got {score!r}")
        for bucket in self.flagged:
            if bucket not in HARM_BUCKETS:
                raise SafetyInputError(f"unknown flagged bucket {bucket!r}")
        if self.ungrounded is not None and not 0.0 <= self.ungrounded <= 1.0:
            raise SafetyInputError(f"ungrounded must be in [0, 1], got {self.ungrounded!r}")
        object.__setattr__(
            self, "harm", MappingProxyType({b: float(self.harm[b]) for b in HARM_BUCKETS if b in self.harm})
        )
        object.__setattr__(self, "flagged", tuple(b for b in HARM_BUCKETS if b in set(self.flagged)))
        object.__setattr__(self, "details", MappingProxyType(dict(self.details)))
        if self.pii_kinds is not None:
            object.__setattr__(self, "pii_kinds", tuple(sorted(set(self.pii_kinds))))

    @property
    def ok(self) -> bool:
        """Analysed without any provider error."""
        return not self.errors and self.skipped is None

    @classmethod
    def failed(cls, item_id: str, provider: str, *errors: str) -> SafetyVerdict:
        return cls(item_id=item_id, provider=provider, errors=tuple(errors))

    @classmethod
    def skip(cls, item_id: str, provider: str, reason: str) -> SafetyVerdict:
        return cls(item_id=item_id, provider=provider, skipped=reason)

    def to_dict(self) -> dict[str, Any]:
        return {
            "item_id": self.item_id,
            "provider": self.provider,
            "harm": json_safe(dict(self.harm)),
            "flagged": list(self.flagged),
            "injection_attack": self.injection_attack,
            "indirect_attack": self.indirect_attack,
            "protected_material": self.protected_material,
            "ungrounded": json_safe(self.ungrounded),
            "pii_kinds": None if self.pii_kinds is None else list(self.pii_kinds),
            "errors": list(self.errors),
            "skipped": self.skipped,
            "details": json_safe(dict(self.details)),
        }


@runtime_checkable
class SafetyProvider(Protocol):
    """Anything that turns items into verdicts, one verdict per item and in the same order.

    ``analyze`` never raises for a provider failure (network, auth, quota, a malformed answer): it returns
    verdicts with ``errors`` set. It may raise only for programming errors in the caller (not a SafetyItem).
    """

    @property
    def name(self) -> str: ...

    def analyze(self, items: Sequence[SafetyItem]) -> list[SafetyVerdict]: ...


def check_unit_interval(name: str, value: float) -> float:
    """A config value that must lie in [0, 1]; raises ``ConfigError`` otherwise."""
    if not (isinstance(value, (int, float)) and math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ConfigError(f"{name} must be in [0, 1], got {value!r}")
    return float(value)


__all__ = [
    "HARM_BUCKETS",
    "SKIP_BUDGET_EXHAUSTED",
    "SKIP_SAMPLED_OUT",
    "SafetyInputError",
    "SafetyItem",
    "SafetyProvider",
    "SafetyVerdict",
    "check_unit_interval",
]
