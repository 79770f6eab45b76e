"""Descriptors of LLM interactions for drift: a few numbers and labels per prompt and response. Pure.

A prompt or response is too rich to compare across windows as text; its descriptors are not. Per interaction
``describe`` gives:

| column | kind | what |
|---|---|---|
| ``prompt_chars``, ``response_chars`` | numeric | length in characters |
| ``prompt_language``, ``response_language`` | categorical | a guess from the script and stopwords |
| ``prompt_topic`` | categorical | the keyword class with most hits in the prompt, or ``other`` |
| ``response_refusal`` | categorical | ``yes`` / ``no`` (``quality.is_refusal``) |

These columns go through the existing drift machinery (``build_profile`` on a reference window,
``WindowSketch`` per window, ``evaluate_drift``): a shift of topic mix, language, length or refusal share is a
drift like any feature's.

**Language** is a guess, not a classifier: non-Latin scripts are named by the script's main language or by the
script (``ar``, ``he``, ``el``, ``hi``, ``th``, ``ko``, ``ja`` when kana appear, ``zh`` for Han without kana,
``cyrl`` for Cyrillic, which covers several languages); Latin text is ``en``, ``es``, ``fr``, ``de``, ``it``,
``pt`` or ``nl`` by stopword hits (at least two, and more than any other language), else ``latn``; text
without letters is ``none``. Only the first ``language_chars`` (500) characters are read for the language,
``max_chars`` (2,000) for the topic.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import numpy.typing as npt

from detectors.base import CATEGORICAL, NUMERIC, ConfigError, FeatureKind
from detectors.llm.quality import DEFAULT_QUALITY, QualityConfig, is_refusal

DESCRIPTOR_KINDS: Mapping[str, FeatureKind] = MappingProxyType(
    {
        "prompt_chars": NUMERIC,
        "response_chars": NUMERIC,
        "prompt_language": CATEGORICAL,
        "response_language": CATEGORICAL,
        "prompt_topic": CATEGORICAL,
        "response_refusal": CATEGORICAL,
    }
)
OTHER_TOPIC = "other"

STOPWORDS: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "en": frozenset(
            {
                "the",
                "and",
                "is",
                "are",
                "was",
                "were",
                "to",
                "of",
                "in",
                "that",
                "it",
                "for",
                "you",
                "with",
                "on",
                "this",
                "have",
                "be",
                "not",
                "what",
                "how",
                "can",
                "your",
                "please",
                "my",
                "do",
                "does",
                "i",
                "me",
                "we",
                "they",
                "from",
            }
        ),
        "es": frozenset(
            {
                "el",
                "la",
                "los",
                "las",
                "que",
                "de",
                "y",
                "en",
                "un",
                "una",
                "es",
                "por",
                "para",
                "con",
                "no",
                "se",
                "mi",
                "como",
                "pero",
                "del",
                "al",
                "lo",
                "su",
                "tengo",
                "puedo",
                "está",
                "usted",
            }
        ),
        "fr": frozenset(
            {
                "le",
                "la",
                "les",
                "des",
                "et",
                "est",
                "un",
                "une",
                "que",
                "qui",
                "dans",
                "pour",
                "pas",
                "avec",
                "je",
                "vous",
                "il",
                "elle",
                "sur",
                "du",
                "au",
                "ce",
                "mon",
                "ne",
                "comment",
                "votre",
            }
        ),
        "de": frozenset(
            {
                "der",
                "die",
                "das",
                "und",
                "ist",
                "nicht",
                "ein",
                "eine",
                "ich",
                "sie",
                "mit",
                "auf",
                "für",
                "den",
                "dem",
                "zu",
                "von",
                "wie",
                "mein",
                "kann",
                "ihr",
                "auch",
                "sich",
                "bitte",
            }
        ),
        "it": frozenset(
            {
                "il",
                "lo",
                "la",
                "gli",
                "le",
                "che",
                "di",
                "e",
                "un",
                "una",
                "non",
                "per",
                "con",
                "sono",
                "mi",
                "come",
                "ma",
                "del",
                "della",
                "questo",
                "ho",
                "posso",
                "è",
            }
        ),
        "pt": frozenset(
            {
                "o",
                "a",
                "os",
                "as",
                "que",
                "de",
                "e",
                "em",
                "um",
                "uma",
                "não",
                "para",
                "com",
                "por",
                "como",
                "mas",
                "meu",
                "minha",
                "você",
                "do",
                "da",
                "isso",
                "tenho",
                "posso",
            }
        ),
        "nl": frozenset(
            {
                "de",
                "het",
                "een",
                "en",
                "is",
                "niet",
                "van",
                "ik",
                "je",
                "dat",
                "die",
                "op",
                "te",
                "met",
                "voor",
                "zijn",
                "mijn",
                "hoe",
                "kan",
                "u",
                "wat",
            }
        ),
    }
)

DEFAULT_TOPICS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "code": (
            "code",
            "python",
            "javascript",
            "function",
            "bug",
            "error",
            "exception",
            "compile",
            "sql",
            "api",
            "script",
            "stack",
            "debug",
            "regex",
            "class",
        ),
        "billing": (
            "invoice",
            "refund",
            "charge",
            "charged",
            "payment",
            "price",
            "pricing",
            "subscription",
            "bill",
            "billing",
            "plan",
            "card",
            "discount",
            "cost",
        ),
        "account": (
            "password",
            "login",
            "log",
            "account",
            "username",
            "sign",
            "reset",
            "profile",
            "locked",
            "verify",
            "verification",
            "2fa",
        ),
        "orders": (
            "order",
            "delivery",
            "shipping",
            "package",
            "tracking",
            "shipped",
            "return",
            "parcel",
            "arrive",
            "delivered",
        ),
        "technical": (
            "install",
            "configure",
            "setup",
            "server",
            "network",
            "crash",
            "update",
            "upgrade",
            "settings",
            "device",
            "wifi",
            "app",
        ),
        "health": (
            "doctor",
            "symptom",
            "symptoms",
            "medicine",
            "pain",
            "health",
            "dose",
            "medication",
            "treatment",
            "disease",
        ),
        "legal": (
            "contract",
            "law",
            "legal",
            "lawyer",
            "court",
            "sue",
            "liability",
            "gdpr",
            "terms",
            "rights",
        ),
    }
)

_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")
_PUNCT = ".,!?;:()[]{}\"'`*_-/\\<>«»¿¡…“”‘’"
_PUNCT_TO_SPACE = str.maketrans(dict.fromkeys(_PUNCT, " "))
_ASCII_LETTERS = re.compile(r"[A-Za-z]")
_ASCII_RUN = re.compile(r"[\x00-\x7f]+")
_LANGS_OF: dict[str, tuple[str, ...]] = {}
for _lang, _words in STOPWORDS.items():
    for _w in _words:
        _LANGS_OF[_w] = (*_LANGS_OF.get(_w, ()), _lang)
_SCRIPT_RANGES: tuple[tuple[int, int, str], ...] = (
    (0x0370, 0x03FF, "el"),
    (0x0400, 0x052F, "cyrl"),
    (0x0590, 0x05FF, "he"),
    (0x0600, 0x06FF, "ar"),
    (0x0750, 0x077F, "ar"),
    (0x0900, 0x097F, "hi"),
    (0x0E00, 0x0E7F, "th"),
    (0x1100, 0x11FF, "ko"),
    (0x3040, 0x30FF, "ja"),
    (0x3400, 0x4DBF, "zh"),
    (0x4E00, 0x9FFF, "zh"),
    (0xAC00, 0xD7AF, "ko"),
)


@dataclass(frozen=True)
class DescriptorConfig:
    topics: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: DEFAULT_TOPICS)
    max_chars: int = 2000
    language_chars: int = 500
    quality: QualityConfig = DEFAULT_QUALITY
    _keyword_sets: Mapping[str, frozenset[str]] = field(init=False, repr=False, compare=False, default=None)  # type: ignore[arg-type]

    def __post_init__(self) -> None:
        for name in ("max_chars", "language_chars"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ConfigError(f"{name} must be an int >= 1, got {v!r}")
        if OTHER_TOPIC in self.topics:
            raise ConfigError(f"{OTHER_TOPIC!r} is the topic of prompts matching no class; rename that class")
        for topic, words in self.topics.items():
            if not topic or not words or isinstance(words, str):
                raise ConfigError(f"topic {topic!r} needs a name and a tuple of keywords")
        object.__setattr__(self, "topics", MappingProxyType({t: tuple(w) for t, w in self.topics.items()}))
        object.__setattr__(
            self, "_keyword_sets", {t: frozenset(w.lower() for w in ws) for t, ws in self.topics.items()}
        )


DEFAULT_DESCRIPTORS = DescriptorConfig()


def _script(ch: str) -> str | None:
    cp = ord(ch)
    if cp < 0x0250 or 0x1E00 <= cp <= 0x1EFF:
        return "latn"
    for lo, hi, name in _SCRIPT_RANGES:
        if lo <= cp <= hi:
            return name
    return None


def guess_language(text: str, max_chars: int = 500) -> str:
    """A language (or script) code for ``text``; see the module doc for what it can and cannot tell."""
    head = text[:max_chars]
    if not head.isascii():
        counts: dict[str, int] = {"latn": len(_ASCII_LETTERS.findall(head))}
        for ch in _ASCII_RUN.sub("", head):  # only the non-ASCII characters go through Python
            if ch.isalpha():
                s = _script(ch)
                if s is not None:
                    counts[s] = counts.get(s, 0) + 1
        if counts.get("ja"):  # kana decide Japanese even among many Han characters
            return "ja"
        best = max(counts, key=lambda k: (counts[k], k))
        if not counts[best]:
            return "none"
        if best != "latn":
            return best
    elif not _ASCII_LETTERS.search(head):
        return "none"
    hits = dict.fromkeys(STOPWORDS, 0)
    # translate and split in C, not a regex: a fifth of the cost on 500 characters
    for w, c in Counter(head.lower().translate(_PUNCT_TO_SPACE).split()).items():
        for lang in _LANGS_OF.get(w, ()):
            hits[lang] += c
    ranked = sorted(hits.items(), key=lambda kv: -kv[1])
    (lang, top), (_, second) = ranked[0], ranked[1]
    return lang if top >= 2 and top > second else "latn"


def topic_of(text: str, config: DescriptorConfig = DEFAULT_DESCRIPTORS) -> str:
    """The keyword class with the most distinct keywords in ``text`` (ties: the first class), or ``other``."""
    words = set(_WORD.findall(text[: config.max_chars].lower()))
    best, best_hits = OTHER_TOPIC, 0
    for topic, keywords in config._keyword_sets.items():
        hits = len(words & keywords)
        if hits > best_hits:
            best, best_hits = topic, hits
    return best


def describe(
    prompt: str, response: str, config: DescriptorConfig = DEFAULT_DESCRIPTORS, refusal: bool | None = None
) -> dict[str, float | str]:
    """One interaction's descriptors; pass ``refusal`` when it is already known (saves a regex pass)."""
    refused = is_refusal(response, config.quality) if refusal is None else refusal
    return {
        "prompt_chars": float(len(prompt)),
        "response_chars": float(len(response)),
        "prompt_language": guess_language(prompt, config.language_chars),
        "response_language": guess_language(response, config.language_chars),
        "prompt_topic": topic_of(prompt, config),
        "response_refusal": "yes" if refused else "no",
    }


def to_columns(rows: Sequence[Mapping[str, Any]]) -> dict[str, npt.NDArray[Any]]:
    """Descriptor rows to the columns ``build_profile`` and ``WindowSketch.update`` take."""
    cols: dict[str, npt.NDArray[Any]] = {}
    for name, kind in DESCRIPTOR_KINDS.items():
        values: Iterable[Any] = (r.get(name) for r in rows)
        if kind == NUMERIC:
            cols[name] = np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
        else:
            cols[name] = np.array([None if v is None else str(v) for v in values], dtype=object)
    return cols


__all__ = [
    "DEFAULT_DESCRIPTORS",
    "DEFAULT_TOPICS",
    "DESCRIPTOR_KINDS",
    "OTHER_TOPIC",
    "STOPWORDS",
    "DescriptorConfig",
    "describe",
    "guess_language",
    "to_columns",
    "topic_of",
]
