"""LLM quality and drift descriptors: pure functions over interactions and columns (no I/O, no clock).

Safety (injection, harm, personal data) lives in ``detectors.safety``; this package adds what the LLM stream
needs besides: per-window quality and usage (``quality``) and the descriptors whose drift is watched
(``descriptors``).
"""

from __future__ import annotations

from detectors.llm.descriptors import (
    DEFAULT_DESCRIPTORS,
    DEFAULT_TOPICS,
    DESCRIPTOR_KINDS,
    DescriptorConfig,
    describe,
    guess_language,
    topic_of,
)
from detectors.llm.quality import (
    QUALITY_COLUMNS,
    QualityConfig,
    QualityFacts,
    QualityWindowResult,
    assess,
    is_refusal,
    summarize_quality,
)

__all__ = [
    "DEFAULT_DESCRIPTORS",
    "DEFAULT_TOPICS",
    "DESCRIPTOR_KINDS",
    "QUALITY_COLUMNS",
    "DescriptorConfig",
    "QualityConfig",
    "QualityFacts",
    "QualityWindowResult",
    "assess",
    "describe",
    "guess_language",
    "is_refusal",
    "summarize_quality",
    "topic_of",
]
