"""LLM safety: PII redaction, injection and toxicity heuristics, the provider interface, window rates.

Remote providers (Azure AI Content Safety, OpenAI moderation) live in ``detectors.safety.providers`` and are
not imported here, so ``detectors.safety`` stays pure and offline.
"""

from __future__ import annotations

from detectors.safety.base import (
    HARM_BUCKETS,
    SKIP_BUDGET_EXHAUSTED,
    SKIP_SAMPLED_OUT,
    SafetyInputError,
    SafetyItem,
    SafetyProvider,
    SafetyVerdict,
)
from detectors.safety.injection import InjectionConfig, InjectionResult, score_documents, score_injection
from detectors.safety.offline import OfflineConfig, OfflineProvider
from detectors.safety.redact import KINDS, RedactionResult, Span, find_pii, fingerprint, redact
from detectors.safety.toxicity import ToxicityConfig, ToxicityResult, score_toxicity
from detectors.safety.window import SafetyWindowConfig, SafetyWindowResult, summarize

__all__ = [
    "HARM_BUCKETS",
    "KINDS",
    "SKIP_BUDGET_EXHAUSTED",
    "SKIP_SAMPLED_OUT",
    "InjectionConfig",
    "InjectionResult",
    "OfflineConfig",
    "OfflineProvider",
    "RedactionResult",
    "SafetyInputError",
    "SafetyItem",
    "SafetyProvider",
    "SafetyVerdict",
    "SafetyWindowConfig",
    "SafetyWindowResult",
    "Span",
    "ToxicityConfig",
    "ToxicityResult",
    "find_pii",
    "fingerprint",
    "redact",
    "score_documents",
    "score_injection",
    "score_toxicity",
    "summarize",
]
