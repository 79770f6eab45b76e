"""``llm.quality``: quality and usage of one window of LLM interactions. Pure: columns in, a value out.

Per interaction, ``assess`` says whether the response is a refusal (refusal markers near its start), empty
(only whitespace) or truncated (a finish marker such as ``length``, or a length cap reached). Per window,
``summarize_quality`` turns columns (numpy arrays, one value per interaction; ``NaN`` = not reported) into
rates, response length statistics, latency percentiles, token and cost sums and user-rating rates:

- ``refusal_rate``, ``empty_rate``, ``truncated_rate`` over all interactions of the window;
- ``response_chars_mean`` / ``_p50`` / ``_p95`` / ``_max``;
- ``latency_ms_p50`` / ``_p95`` / ``_p99`` over the interactions that reported a latency (``latency_n``);
- ``prompt_tokens_sum``, ``completion_tokens_sum``, ``tokens_sum``, ``cost_usd_sum``, ``cost_usd_mean``;
- ``negative_feedback_rate`` / ``positive_feedback_rate``: the share of ratings that are -1 / +1 among the
  rated interactions (``rated_n``), and ``mean_user_rating`` (on the event's -1, 0, +1 scale).

``alerts`` names the metrics over their configured maxima, checked only where the denominator reaches
``min_items`` (``min_rated`` for the feedback rates). Too few interactions is a status
(``insufficient_data``), never an exception.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import numpy.typing as npt

from detectors.base import ConfigError, Status, json_safe

DETECTOR_NAME = "llm.quality"

# Phrases with which assistants decline; matched near the start of the response (lower case, straight quotes).
REFUSAL_MARKERS: tuple[str, ...] = (
    r"i'?m sorry,? but (?:i|as an ai)",
    r"i am sorry,? but i",
    (
        r"i (?:can(?:'|no)?t|cannot|won'?t|am unable to|'?m unable to|am not able to|'?m not able to) "
        r"(?:help|assist|provide|do that|comply|share|answer|fulfil|support|continue|generate|create|give)"
    ),
    r"i (?:must|have to) (?:decline|refuse)",
    r"as an ai(?: language model)?,? i (?:can(?:'|no)?t|cannot|am not|don'?t|do not)",
    r"i'?m afraid i (?:can(?:'|no)?t|cannot)",
    r"(?:that|this) (?:request )?(?:is|goes) against my (?:guidelines|policies|programming)",
    r"i (?:can(?:'|no)?t|cannot|won'?t) (?:help|assist) with (?:that|this)",
    r"unfortunately,? i (?:can(?:'|no)?t|cannot|am unable to)",
)
FINISH_TRUNCATED: frozenset[str] = frozenset({"length", "max_tokens", "max_output_tokens"})
QUALITY_COLUMNS: tuple[str, ...] = (
    "latency_ms",
    "response_chars",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "rating",
    "refusal",
    "empty",
    "truncated",
)
_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'"})


def _rate_limit(name: str, value: float | None) -> None:
    if value is None:
        return
    if not (isinstance(value, (int, float)) and math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ConfigError(f"{name} must be in [0, 1] or None, got {value!r}")


@dataclass(frozen=True)
class QualityConfig:
    """Thresholds (``None`` turns a check off) and what counts as a refusal or a truncation."""

    min_items: int = 20
    min_rated: int = 10
    max_refusal_rate: float | None = 0.2
    max_empty_rate: float | None = 0.02
    max_truncated_rate: float | None = 0.05
    max_negative_feedback_rate: float | None = 0.2
    max_latency_p95_ms: float | None = None
    length_cap_tokens: int | None = None
    length_cap_chars: int | None = None
    finish_markers: frozenset[str] = FINISH_TRUNCATED
    refusal_markers: tuple[str, ...] = REFUSAL_MARKERS
    refusal_scan_chars: int = 300
    _refusal: re.Pattern[str] | None = field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        for name in ("min_items", "min_rated", "refusal_scan_chars"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ConfigError(f"{name} must be an int >= 1, got {v!r}")
        for name in (
            "max_refusal_rate",
            "max_empty_rate",
            "max_truncated_rate",
            "max_negative_feedback_rate",
        ):
            _rate_limit(name, getattr(self, name))
        if self.max_latency_p95_ms is not None and not self.max_latency_p95_ms > 0:
            raise ConfigError(f"max_latency_p95_ms must be > 0 or None, got {self.max_latency_p95_ms!r}")
        for name in ("length_cap_tokens", "length_cap_chars"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int) or v < 1):
                raise ConfigError(f"{name} must be an int >= 1 or None, got {v!r}")
        object.__setattr__(self, "finish_markers", frozenset(m.lower() for m in self.finish_markers))
        try:
            pattern = (
                re.compile("|".join(f"(?:{m})" for m in self.refusal_markers))
                if self.refusal_markers
                else None
            )
        except re.error as exc:
            raise ConfigError(f"a refusal marker is not a valid pattern: {exc}") from None
        object.__setattr__(self, "_refusal", pattern)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = json_safe(
            {
                k: getattr(self, k)
                for k in self.__dataclass_fields__
                if k not in ("refusal_markers", "_refusal")
            }
        )
        out["refusal_markers"] = len(self.refusal_markers)
        return out


@dataclass(frozen=True)
class QualityFacts:
    refusal: bool
    empty: bool
    truncated: bool


def is_refusal(response: str, config: QualityConfig | None = None) -> bool:
    """A refusal marker in the first ``refusal_scan_chars`` characters of the response."""
    cfg = config or DEFAULT_QUALITY
    pattern = cfg._refusal
    if pattern is None or not response:
        return False
    head = response[: cfg.refusal_scan_chars].lower().translate(_QUOTES)
    return pattern.search(head) is not None


def assess(
    response: str,
    *,
    finish_reason: str | None = None,
    completion_tokens: int | None = None,
    config: QualityConfig | None = None,
) -> QualityFacts:
    """Refusal, empty and truncated for one response."""
    cfg = config or DEFAULT_QUALITY
    empty = not response.strip()
    truncated = bool(finish_reason and finish_reason.lower() in cfg.finish_markers)
    if cfg.length_cap_tokens is not None and completion_tokens is not None:
        truncated = truncated or completion_tokens >= cfg.length_cap_tokens
    if cfg.length_cap_chars is not None:
        truncated = truncated or len(response) >= cfg.length_cap_chars
    return QualityFacts(refusal=not empty and is_refusal(response, cfg), empty=empty, truncated=truncated)


@dataclass(frozen=True)
class QualityWindowResult:
    detector: str
    status: Status
    n: int
    metrics: Mapping[str, float | None]
    alerts: tuple[str, ...]
    config: QualityConfig

    def to_dict(self) -> dict[str, Any]:
        return {
            "detector": self.detector,
            "status": self.status.value,
            "n": self.n,
            "metrics": json_safe(dict(self.metrics)),
            "alerts": list(self.alerts),
            "config": self.config.to_dict(),
        }


def _col(columns: Mapping[str, npt.ArrayLike], name: str, n: int) -> npt.NDArray[np.float64]:
    if name not in columns:
        return np.full(n, np.nan)
    arr = np.asarray(columns[name], dtype=np.float64)
    if arr.shape != (n,):
        raise ConfigError(f"column {name!r} has shape {arr.shape}, expected ({n},)")
    return arr


def _pct(values: npt.NDArray[np.float64], q: float) -> float | None:
    return float(np.percentile(values, q)) if values.size else None


def summarize_quality(
    columns: Mapping[str, npt.ArrayLike], config: QualityConfig | None = None
) -> QualityWindowResult:
    """Quality and usage of one window; ``columns`` are the ``QUALITY_COLUMNS`` (a missing one is all NaN)."""
    cfg = config or DEFAULT_QUALITY
    n = len(np.asarray(columns.get("response_chars", []), dtype=np.float64))
    c = {name: _col(columns, name, n) for name in QUALITY_COLUMNS}
    lat = c["latency_ms"][np.isfinite(c["latency_ms"])]
    chars = c["response_chars"][np.isfinite(c["response_chars"])]
    rating = c["rating"][np.isfinite(c["rating"])]

    def share(flags: npt.NDArray[np.float64]) -> float | None:
        return float(np.nansum(flags) / n) if n else None

    def total(values: npt.NDArray[np.float64]) -> float | None:
        finite = values[np.isfinite(values)]
        return float(finite.sum()) if finite.size else None

    prompt_tokens, completion_tokens = total(c["prompt_tokens"]), total(c["completion_tokens"])
    cost = total(c["cost_usd"])
    n_cost = int(np.isfinite(c["cost_usd"]).sum())
    metrics: dict[str, float | None] = {
        "refusal_rate": share(c["refusal"]),
        "empty_rate": share(c["empty"]),
        "truncated_rate": share(c["truncated"]),
        "response_chars_mean": float(chars.mean()) if chars.size else None,
        "response_chars_p50": _pct(chars, 50),
        "response_chars_p95": _pct(chars, 95),
        "response_chars_max": float(chars.max()) if chars.size else None,
        "latency_n": float(lat.size),
        "latency_ms_p50": _pct(lat, 50),
        "latency_ms_p95": _pct(lat, 95),
        "latency_ms_p99": _pct(lat, 99),
        "prompt_tokens_sum": prompt_tokens,
        "completion_tokens_sum": completion_tokens,
        "tokens_sum": None
        if prompt_tokens is None and completion_tokens is None
        else (prompt_tokens or 0.0) + (completion_tokens or 0.0),
        "cost_usd_sum": cost,
        "cost_usd_mean": cost / n_cost if cost is not None and n_cost else None,
        "rated_n": float(rating.size),
        "negative_feedback_rate": float((rating < 0).mean()) if rating.size else None,
        "positive_feedback_rate": float((rating > 0).mean()) if rating.size else None,
        "mean_user_rating": float(rating.mean()) if rating.size else None,
    }
    checks: list[tuple[str, float | None, int, int]] = [
        ("refusal_rate", cfg.max_refusal_rate, n, cfg.min_items),
        ("empty_rate", cfg.max_empty_rate, n, cfg.min_items),
        ("truncated_rate", cfg.max_truncated_rate, n, cfg.min_items),
        ("negative_feedback_rate", cfg.max_negative_feedback_rate, int(rating.size), cfg.min_rated),
        ("latency_ms_p95", cfg.max_latency_p95_ms, int(lat.size), cfg.min_items),
    ]
    alerts = tuple(
        name
        for name, limit, denominator, minimum in checks
        if limit is not None
        and denominator >= minimum
        and (value := metrics[name]) is not None
        and value > limit
    )
    status = Status.OK if n >= cfg.min_items else Status.INSUFFICIENT_DATA
    return QualityWindowResult(DETECTOR_NAME, status, n, MappingProxyType(metrics), alerts, cfg)


DEFAULT_QUALITY = QualityConfig()

__all__ = [
    "DETECTOR_NAME",
    "FINISH_TRUNCATED",
    "QUALITY_COLUMNS",
    "REFUSAL_MARKERS",
    "QualityConfig",
    "QualityFacts",
    "QualityWindowResult",
    "assess",
    "is_refusal",
    "summarize_quality",
]
