"""The LLM interaction stream: safety, quality and descriptor drift per application window, one transaction.

``LLMProcessor.process(records)`` applies a batch of ``opsloop.llm.v1`` records the way
``streams.processor.BatchProcessor`` applies predictions: offsets at or below the stored ones are skipped, bad
records are dead-lettered through the outbox, and everything a batch changes (offsets, each application's
state, closed windows, findings, triggers, outbox rows, kept interactions) is written in one transaction; a
``StaleStateError`` (another worker moved the state) reloads and re-applies.

The slow part runs before the transaction opens: decoding, the safety providers (offline heuristics, and Azure
AI Content Safety or OpenAI moderation when configured), quality facts, drift descriptors, redaction and keyed
hashes. Its results are cached per record, so a retry after a database outage or a stale state does not call
a paid provider twice.

**Personal data never reaches storage unredacted.** The state holds descriptors (lengths, a language code, a
topic class) and compact verdicts (no text); kept interactions, findings and their evidence hold excerpts of
at most 300 characters cut from the *redacted* text, and keyed hashes (``fingerprint``) of the full texts; a
malformed record's dead letter carries its value only after ``redact`` ran over its UTF-8 decoding (see
``redacted_dead_letter``). Logs name counts, offsets and reasons, never text.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import logging
import math
import re
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import SecretStr, ValidationError
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from detectors.base import ConfigError, Status
from detectors.drift import FeatureDriftConfig, WindowSketch, build_profile, evaluate_drift
from detectors.llm.descriptors import (
    DEFAULT_DESCRIPTORS,
    DESCRIPTOR_KINDS,
    DescriptorConfig,
    describe,
    to_columns,
)
from detectors.llm.quality import QUALITY_COLUMNS, QualityConfig, QualityFacts, assess, summarize_quality
from detectors.safety import (
    OfflineConfig,
    OfflineProvider,
    SafetyItem,
    SafetyProvider,
    SafetyVerdict,
    SafetyWindowConfig,
    fingerprint,
    redact,
    summarize,
)
from detectors.safety.providers.resilience import ResilienceConfig, sampled
from detectors.safety.window import OVERALL
from retrain.policies import ApplicationRule, BoundRule, Budget, Observation, PolicySet, check_budget
from retrain.policy import PolicyState, decide, trigger_id
from storage import repo
from storage.models import LLMInteraction
from storage.repo import StaleStateError
from streams.events import LLMInteractionEvent
from streams.model_stream import _profile, remember_profile
from streams.processor import (
    BatchResult,
    InfrastructureError,
    Record,
    _reason,
    dead_letter_payload,
    freeze_startup_heap,
    retry_forever,
)
from streams.topics import Topics
from streams.window_state import _dt, _iso

log = logging.getLogger(__name__)

SAFETY_DETECTOR = "safety.window"
QUALITY_DETECTOR = "llm.quality"
DRIFT_DETECTOR = "llm.drift"
HEALTH_DETECTOR = "safety.provider_health"
STATE_MODEL_VERSION = "*"
MAX_EXCERPT_CHARS = 300
EVIDENCE_CHARS = 160
PUBLISHED_STATUSES = frozenset({"alert", "drift", "refused"})


def state_key(application: str) -> tuple[str, str]:
    """The ``model_states`` (and windows, findings, triggers) key of an application."""
    return f"llm:{application}", STATE_MODEL_VERSION


# --- configuration ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RemoteProvider:
    """A remote safety provider to build: its config object and key come from the settings (never read here).

    ``config`` is an ``AzureContentSafetyConfig`` or an ``OpenAIModerationConfig``; no repr shows the key.
    """

    config: Any
    api_key: str | SecretStr = field(repr=False)
    resilience: ResilienceConfig = field(default_factory=ResilienceConfig)

    def build(self) -> SafetyProvider:
        from detectors.safety.providers.resilience import Resilience

        kind = type(self.config).__name__
        if kind == "AzureContentSafetyConfig":
            from detectors.safety.providers.azure import AzureContentSafetyProvider

            return AzureContentSafetyProvider(
                self.config, self.api_key, resilience=Resilience(self.resilience)
            )
        if kind == "OpenAIModerationConfig":
            from detectors.safety.providers.openai_moderation import OpenAIModerationProvider

            return OpenAIModerationProvider(self.config, self.api_key, resilience=Resilience(self.resilience))
        if kind == "OpenAIJudgeConfig":
            from detectors.safety.providers.openai_judge import OpenAIJudgeProvider

            return OpenAIJudgeProvider(self.config, self.api_key, resilience=Resilience(self.resilience))
        raise ConfigError(
            f"unknown remote provider config {kind}; expected Azure or OpenAI moderation config"
        )


@dataclass(frozen=True)
class KeepConfig:
    """Which interactions become ``llm_interactions`` rows (for the prompt-update and fine-tune jobs)."""

    flagged: bool = True  # injection, indirect attack, personal data in the response, flagged harm
    refusals: bool = True
    rating_at_or_below: int | None = -1  # badly rated
    rating_at_or_above: int | None = None  # well rated (examples for fine-tuning); off by default
    sample_rate: float = 0.01  # a deterministic sample (by event id) of the others

    def __post_init__(self) -> None:
        if not 0.0 <= self.sample_rate <= 1.0:
            raise ConfigError(f"sample_rate must be in [0, 1], got {self.sample_rate!r}")


def default_llm_rules(cooldown_s: float = 3600.0) -> tuple[BoundRule, ...]:
    """Without a policy file: injection attempts over 2 % in 2 of 3 windows alert; negative feedback over 20 %
    in 2 of 3 windows asks for a prompt update (approval required, as for every prompt update)."""
    return (
        BoundRule(
            "applications",
            "*",
            0,
            ApplicationRule.model_validate(
                {
                    "name": "injection-alert",
                    "when": {"detector": SAFETY_DETECTOR, "metric": "injection_attempt_rate", "above": 0.02},
                    "count": 2,
                    "in_last": 3,
                    "action": "alert",
                    "severity": "critical",
                    "cooldown": cooldown_s,
                }
            ),
        ),
        BoundRule(
            "applications",
            "*",
            1,
            ApplicationRule.model_validate(
                {
                    "name": "negative-feedback-prompt-update",
                    "when": {"detector": QUALITY_DETECTOR, "metric": "negative_feedback_rate", "above": 0.2},
                    "count": 2,
                    "in_last": 3,
                    "action": "prompt_update",
                    "cooldown": cooldown_s,
                }
            ),
        ),
    )


@dataclass(frozen=True)
class LLMStreamConfig:
    """Everything the LLM stream needs, built by the caller from settings (this module reads no environment).

    ``fingerprint_key`` (at least 16 bytes) keys the hashes of prompts and responses. ``offline=None`` turns
    the offline heuristics off (they are the only personal-data detector: leave them on). ``policies``, when
    given, overrides windows, rules and budgets per application (``applications:`` in the policy file).
    """

    consumer_group: str
    fingerprint_key: str | bytes | SecretStr = field(repr=False)
    topics: Topics = field(default_factory=Topics)
    window_kind: Literal["count", "time"] = "count"
    window_size: int = 500
    window_seconds: float = 300.0
    allowed_lateness_s: float = 60.0
    reference_size: int = 500
    offline: OfflineConfig | None = field(default_factory=OfflineConfig)
    remote: tuple[RemoteProvider, ...] = ()
    safety: SafetyWindowConfig = field(default_factory=SafetyWindowConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)
    descriptors: DescriptorConfig = DEFAULT_DESCRIPTORS
    drift: FeatureDriftConfig = field(default_factory=FeatureDriftConfig)
    rules: tuple[BoundRule, ...] = field(default_factory=default_llm_rules)
    budget: Budget | None = field(default_factory=Budget)
    policies: PolicySet | None = None
    keep: KeepConfig = field(default_factory=KeepConfig)
    excerpt_chars: int = MAX_EXCERPT_CHARS
    evidence_per_kind: int = 3

    def __post_init__(self) -> None:
        fingerprint("", self.fingerprint_key)  # raises ConfigError for a missing or short key
        if self.window_kind not in ("count", "time"):
            raise ConfigError(f"window_kind must be 'count' or 'time', got {self.window_kind!r}")
        if not isinstance(self.window_size, int) or self.window_size < 1:
            raise ConfigError(f"window_size must be an int >= 1, got {self.window_size!r}")
        if not isinstance(self.reference_size, int) or self.reference_size < 1:
            raise ConfigError(f"reference_size must be an int >= 1, got {self.reference_size!r}")
        if not self.window_seconds > 0 or self.allowed_lateness_s < 0:
            raise ConfigError("window_seconds must be > 0 and allowed_lateness_s >= 0")
        if not 1 <= self.excerpt_chars <= MAX_EXCERPT_CHARS:
            raise ConfigError(f"excerpt_chars must be in 1..{MAX_EXCERPT_CHARS}, got {self.excerpt_chars!r}")

    def for_application(self, application: str) -> LLMStreamConfig:
        """This config with the policy file's windows, rules and budget for ``application``."""
        ps = self.policies
        if ps is None:
            return self
        win = ps.windows_for_application(application)
        rules = ps.rules_for_application(application)
        return replace(
            self,
            window_kind=win.kind,
            window_size=getattr(win, "size", self.window_size),
            window_seconds=getattr(win, "seconds", self.window_seconds),
            allowed_lateness_s=getattr(win, "allowed_lateness", self.allowed_lateness_s),
            rules=rules if rules else self.rules,
            budget=ps.budget_for(application, application=True),
            policies=None,
        )


@dataclass
class LLMBatchResult(BatchResult):
    kept: int = 0
    provider_errors: int = 0
    late_dropped: int = 0
    timings: dict[str, float] = field(default_factory=dict)

    def time(self, stage: str, seconds: float) -> None:
        self.timings[stage] = self.timings.get(stage, 0.0) + seconds


# --- redaction helpers ------------------------------------------------------------------------------------

_JSON_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")


def _unescape(m: re.Match[str]) -> str:
    cp = int(m.group(1), 16)
    return m.group(0) if 0xD800 <= cp <= 0xDFFF else chr(cp)


def redacted_text_of(raw: bytes) -> tuple[str, dict[str, int]]:
    """``raw`` as UTF-8 text (invalid bytes replaced) with personal data and secrets redacted.

    JSON that parses is re-serialised first (so ``\\u0040``-escaped addresses and numbers become plain text
    that ``redact`` sees); text that does not parse has its ``\\uXXXX`` escapes undone before redaction.
    """
    text = raw.decode("utf-8", errors="replace")
    try:
        text = json.dumps(json.loads(text), ensure_ascii=False)
    except (ValueError, RecursionError):
        text = _JSON_ESCAPE.sub(_unescape, text)
    result = redact(text)
    return result.text, dict(result.counts)


def _redact_str(value: Any) -> Any:
    return redact(value).text.replace("\x00", "\ufffd") if isinstance(value, str) else value


def redacted_dead_letter(
    rec: Record, reason: str, errors: list[dict[str, Any]], key: str | bytes | SecretStr
) -> dict[str, Any]:
    """``streams.processor.dead_letter_payload`` for an LLM record, with its value and key redacted.

    ``value_b64`` holds the *redacted* UTF-8 text (``value_redacted: true``), ``value_fingerprint`` the keyed
    hash of the original's UTF-8 decoding (to match it against the producer's copy), ``redactions`` the counts
    of what was replaced. Error locations and messages (field names can be anything) are redacted too.
    """
    clean_errors = [{k: _redact_str(v) for k, v in e.items()} for e in errors]
    payload = dead_letter_payload(rec, reason, clean_errors)
    if rec.value is not None:
        text, counts = redacted_text_of(rec.value)
        payload["value_b64"] = base64.b64encode(text.encode("utf-8")).decode()
        payload["value_redacted"] = True
        payload["value_fingerprint"] = fingerprint(rec.value.decode("utf-8", errors="replace"), key)
        payload["redactions"] = counts
    if rec.key is not None:
        key_text, _ = redacted_text_of(rec.key)
        payload["key_b64"] = base64.b64encode(key_text.encode("utf-8")).decode()
    return payload


def excerpt(text: str, limit: int = MAX_EXCERPT_CHARS) -> str:
    """Redact first, then cut: a cut never splits a value that redaction would have recognised. NUL characters
    become U+FFFD (PostgreSQL text refuses them, and a refused row would stall the stream)."""
    return redact(text).text[:limit].replace("\x00", "\ufffd")


# --- one interaction, analysed before the transaction -----------------------------------------------------


@dataclass
class Analysed:
    rec: Record
    event: LLMInteractionEvent
    item_id: str
    verdicts: list[SafetyVerdict]
    facts: QualityFacts
    descriptors: dict[str, float | str]
    flags: dict[str, Any]
    kept_because: str | None = None
    row: dict[str, Any] | None = None

    @property
    def flagged(self) -> bool:
        f = self.flags
        return bool(f["injection"] or f["indirect"] or f["pii_response"] or f["harm"])


def prompt_and_documents(e: LLMInteractionEvent) -> tuple[str, tuple[str, ...]]:
    """The user-controlled text judged as the prompt, and the documents (retrieved context, tool output).

    With ``messages``, the prompt is the user messages joined; system and assistant turns are the
    application's own text and are not judged as injection attempts; tool messages count as documents.
    """
    docs = list(e.retrieved_context)
    if e.prompt is not None:
        prompt = e.prompt
    else:
        msgs = e.messages or []
        prompt = "\n".join(m.content for m in msgs if m.role == "user")
        docs += [m.content for m in msgs if m.role == "tool"]
    return prompt, tuple(docs)


def _compact(v: SafetyVerdict) -> dict[str, Any]:
    """A verdict without ``details`` (nothing but flags, scores, kinds and secret-free error texts)."""
    d: dict[str, Any] = {"i": v.item_id, "p": v.provider}
    if v.harm:
        d["h"] = {b: round(s, 4) for b, s in v.harm.items()}
    if v.flagged:
        d["f"] = list(v.flagged)
    for short, value in (
        ("ia", v.injection_attack),
        ("da", v.indirect_attack),
        ("pm", v.protected_material),
        ("ug", v.ungrounded),
        ("s", v.skipped),
    ):
        if value is not None:
            d[short] = value
    if v.pii_kinds is not None:
        d["pii"] = list(v.pii_kinds)
    if v.errors:
        d["e"] = list(v.errors)
    return d


def _verdict(d: Mapping[str, Any]) -> SafetyVerdict:
    return SafetyVerdict(
        item_id=d["i"],
        provider=d["p"],
        harm=d.get("h", {}),
        flagged=tuple(d.get("f", ())),
        injection_attack=d.get("ia"),
        indirect_attack=d.get("da"),
        protected_material=d.get("pm"),
        ungrounded=d.get("ug"),
        pii_kinds=tuple(d["pii"]) if "pii" in d else None,
        errors=tuple(d.get("e", ())),
        skipped=d.get("s"),
    )


# --- one application's stream -----------------------------------------------------------------------------


class LLMAppStream:
    """One application's windows; the state round-trips through JSON and holds no text."""

    def __init__(self, application: str, state: dict[str, Any], config: LLMStreamConfig) -> None:
        self.application = application
        self.model, self.version = state_key(application)
        self.s = state
        self.config = config
        self._pending: dict[int, list[dict[str, Any]]] = defaultdict(list)  # descriptor rows not yet sketched

    @classmethod
    def restore(cls, application: str, raw: dict[str, Any] | None, config: LLMStreamConfig) -> LLMAppStream:
        state = (
            raw
            if raw is not None
            else {
                "phase": "warmup",
                "ref_rows": [],
                "events": 0,
                "late_dropped": 0,
                "windows": {},
                "rules": {},
            }
        )
        return cls(application, copy.deepcopy(state), config)

    def copy(self) -> LLMAppStream:
        return LLMAppStream(self.application, copy.deepcopy(self.s), self.config)

    def to_state(self) -> dict[str, Any]:
        return self.s

    # -- applying --------------------------------------------------------------------------------------

    def apply(self, session: Session, items: Sequence[Analysed], res: LLMBatchResult) -> list[dict[str, Any]]:
        """Apply interactions in order; returns the ``llm_interactions`` rows to keep (window fields set)."""
        self.s["events"] += len(items)
        rows: list[dict[str, Any]] = []
        if self.config.window_kind == "count":
            self._apply_count(session, items, res, rows)
        else:
            self._apply_time(session, items, res, rows)
        for w in self._open_windows():
            self._flush(session, w)
        return rows

    def _open_windows(self) -> list[dict[str, Any]]:
        ws = self.s["windows"]
        if self.config.window_kind == "count":
            return [ws["count"]] if ws.get("count") else []
        return list(ws.get("time", {}).values())

    @staticmethod
    def _new_window(index: int) -> dict[str, Any]:
        return {
            "index": index,
            "n": 0,
            "first_at": None,
            "last_at": None,
            "verdicts": [],
            "q": {c: [] for c in QUALITY_COLUMNS},
            "sketch": None,
            "n_sketched": 0,
            "evidence": {},
            "models": {},
        }

    def _add(
        self, session: Session, w: dict[str, Any], it: Analysed, kind: str, rows: list[dict[str, Any]]
    ) -> None:
        e = it.event
        w["n"] += 1
        t = e.occurred_at
        first, last = _dt(w["first_at"]), _dt(w["last_at"])
        w["first_at"] = _iso(t if first is None or t < first else first)
        w["last_at"] = _iso(t if last is None or t > last else last)
        w["models"][e.model] = w["models"].get(e.model, 0) + 1
        w["verdicts"].extend(_compact(v) for v in it.verdicts)
        q = w["q"]
        q["latency_ms"].append(e.latency_ms)
        q["response_chars"].append(len(e.response))
        q["prompt_tokens"].append(e.tokens.prompt if e.tokens else None)
        q["completion_tokens"].append(e.tokens.completion if e.tokens else None)
        q["cost_usd"].append(e.cost_usd)
        q["rating"].append(e.user_rating)
        q["refusal"].append(int(it.facts.refusal))
        q["empty"].append(int(it.facts.empty))
        q["truncated"].append(int(it.facts.truncated))
        if self.s["phase"] == "warmup":
            self.s["ref_rows"].append(it.descriptors)
            if len(self.s["ref_rows"]) >= self.config.reference_size:
                self._build_reference(session)
        else:
            self._pending[w["index"]].append(it.descriptors)
        if it.row is not None:
            self._evidence(w, it)
            rows.append(it.row | {"window_kind": kind, "window_index": w["index"]})

    def _evidence(self, w: dict[str, Any], it: Analysed) -> None:
        assert it.row is not None
        f = it.flags
        kinds = [
            k
            for k, on in (
                ("injection", f["injection"] or f["indirect"]),
                ("pii_leak", f["pii_response"]),
                ("harm", f["harm"]),
                ("negative_feedback", it.event.user_rating == -1),
                ("refusal", f["refusal"]),
            )
            if on
        ]
        for k in kinds:
            bucket = w["evidence"].setdefault(k, [])
            if len(bucket) < self.config.evidence_per_kind:
                bucket.append(
                    {
                        "event_id": it.row["event_id"],
                        "occurred_at": _iso(it.event.occurred_at),
                        "prompt_excerpt": it.row["prompt_excerpt"][:EVIDENCE_CHARS],
                        "response_excerpt": it.row["response_excerpt"][:EVIDENCE_CHARS],
                        "flags": {
                            x: f[x]
                            for x in ("injection", "indirect", "pii_response", "harm", "refusal")
                            if f[x]
                        },
                    }
                )

    def _build_reference(self, session: Session) -> None:
        rows = self.s.pop("ref_rows")
        profile = build_profile(to_columns(rows), dict(DESCRIPTOR_KINDS))
        ref = repo.add_reference(
            session,
            model=self.model,
            model_version=self.version,
            source="warmup",
            n_rows=len(rows),
            profile=profile.to_dict(),
        )
        remember_profile(session, ref.id, profile)
        self.s.update(phase="monitor", reference_id=ref.id, reference_version=ref.version)
        log.info(
            "llm %s: descriptor reference v%d built from the first %d interactions",
            self.application,
            ref.version,
            len(rows),
        )

    def _flush(self, session: Session, w: dict[str, Any]) -> None:
        rows = self._pending.pop(w["index"], None)
        if not rows:
            return
        prof = _profile(session, self.s["reference_id"])
        sketch = WindowSketch.from_dict(w["sketch"], prof) if w["sketch"] else WindowSketch.empty(prof)
        w["sketch"] = sketch.update(to_columns(rows)).to_dict()
        w["n_sketched"] += len(rows)

    def _apply_count(
        self, session: Session, items: Sequence[Analysed], res: LLMBatchResult, rows: list[dict[str, Any]]
    ) -> None:
        size = self.config.window_size
        w = self.s["windows"].get("count") or self._new_window(0)
        for it in items:
            self._add(session, w, it, "count", rows)
            if w["n"] >= size:
                self._close(session, "count", w, _dt(w["first_at"]), _dt(w["last_at"]), res)
                w = self._new_window(w["index"] + 1)
        self.s["windows"]["count"] = w

    def _apply_time(
        self, session: Session, items: Sequence[Analysed], res: LLMBatchResult, rows: list[dict[str, Any]]
    ) -> None:
        span = self.config.window_seconds
        open_w: dict[str, dict[str, Any]] = self.s["windows"].setdefault("time", {})
        closed_below = self.s.get("time_closed_below")
        for it in items:
            idx = math.floor(it.event.occurred_at.timestamp() / span)
            if closed_below is not None and idx < closed_below:
                self.s["late_dropped"] += 1
                res.late_dropped += 1
                if it.row is not None:  # still kept for the jobs, outside any window's counts
                    rows.append(it.row | {"window_kind": "time", "window_index": idx})
                continue
            w = open_w.get(str(idx)) or self._new_window(idx)
            self._add(session, w, it, "time", rows)
            open_w[str(idx)] = w
        if not items:
            return
        max_seen = max(
            [it.event.occurred_at.timestamp() for it in items] + [self.s.get("max_event_ts") or -math.inf]
        )
        self.s["max_event_ts"] = max_seen
        watermark = max_seen - self.config.allowed_lateness_s
        for key in sorted(open_w, key=int):
            idx = int(key)
            end = (idx + 1) * span
            if end > watermark:
                break
            w = open_w.pop(key)
            self._close(
                session,
                "time",
                w,
                datetime.fromtimestamp(idx * span, tz=UTC),
                datetime.fromtimestamp(end, tz=UTC),
                res,
            )
            self.s["time_closed_below"] = idx + 1

    # -- closing a window ------------------------------------------------------------------------------

    def _close(
        self,
        session: Session,
        kind: str,
        w: dict[str, Any],
        start_at: datetime | None,
        end_at: datetime | None,
        res: LLMBatchResult,
    ) -> None:
        self._flush(session, w)
        cfg = self.config
        index = w["index"]
        verdicts = [_verdict(d) for d in w["verdicts"]]
        safety = summarize(verdicts, cfg.safety)
        quality = summarize_quality(w["q"], cfg.quality)
        drift_summary: dict[str, Any]
        if w["sketch"] and self.s.get("reference_id") is not None:
            prof = _profile(session, self.s["reference_id"])
            drift = evaluate_drift(prof, WindowSketch.from_dict(w["sketch"], prof), cfg.drift)
            drift_summary = drift.to_dict()
            drift_status = str(drift.status.value)
        else:
            drift, drift_status = None, str(Status.INSUFFICIENT_DATA.value)
            drift_summary = {
                "status": drift_status,
                "reason": "the window is part of the descriptor reference",
            }
        errors: dict[str, Counter[str]] = defaultdict(Counter)
        for d in w["verdicts"]:
            for text in d.get("e", ()):
                errors[d["p"]][text] += 1
        safety_dict = safety.to_dict()
        safety_dict.pop("config", None)
        stats = {
            "n": w["n"],
            "models": w["models"],
            "safety": safety_dict,
            "quality": quality.to_dict(),
            "drift": drift_summary,
            "n_sketched": w["n_sketched"],
            "provider_errors": {p: dict(c.most_common(20)) for p, c in errors.items()},
        }
        window_id = repo.add_window(
            session,
            model=self.model,
            model_version=self.version,
            kind=kind,
            window_index=index,
            start_at=start_at,
            end_at=end_at,
            n_events=w["n"],
            reference_id=self.s.get("reference_id"),
            stats=stats,
        )
        res.windows += 1
        window = {
            "kind": kind,
            "index": index,
            "start_at": _iso(start_at),
            "end_at": _iso(end_at),
            "n_events": w["n"],
        }
        ev = w["evidence"]
        keys: dict[str, str] = {}
        where = f"{self.application} (window {kind} #{index}, {w['n']} interactions)"

        # safety.window
        o = safety.overall
        rates: dict[str, float | None] = {
            "injection_attempt_rate": o.injection_attempt_rate.value,
            "indirect_attack_rate": o.indirect_attack_rate.value,
            "pii_leak_rate": o.pii_leak_rate.value,
            "protected_material_rate": o.protected_material_rate.value,
            "ungrounded_rate": o.ungrounded_rate.value,
            "provider_error_rate": o.provider_error_rate.value,
        }
        rates |= {f"harm_rate:{b}": r.value for b, r in o.harm_rates.items()}
        measured_harm = [v for b, r in o.harm_rates.items() if (v := r.value) is not None]
        rates["max_harm_rate"] = max(measured_harm) if measured_harm else None
        rates |= {
            f"provider_error_rate:{p}": r.provider_error_rate.value for p, r in safety.by_provider.items()
        }
        s_status = "alert" if safety.alerts else str(safety.status.value)
        named = []
        for alert in safety.alerts:  # "overall:pii_leak_rate", "openai:provider_error_rate"
            scope, name = alert.split(":", 1)
            value = rates.get(name if scope == OVERALL else f"{name}:{scope}")
            named.append(f"{name if scope == OVERALL else alert} {_pct(value)}")
        s_text = (
            f"safety {s_status} for {where}: " + ", ".join(named)
            if safety.alerts
            else (
                f"safety {s_status} for {where}: injection attempts {_pct(rates['injection_attempt_rate'])}, "
                f"PII leaks {_pct(rates['pii_leak_rate'])}"
            )
        )
        critical = any(
            a.split(":", 1)[1].startswith(("injection", "indirect", "pii", "harm")) for a in safety.alerts
        )
        keys[SAFETY_DETECTOR] = self._finding(
            session,
            SAFETY_DETECTOR,
            kind,
            index,
            window_id,
            s_status,
            "critical" if critical else "warn",
            rates["injection_attempt_rate"],
            s_text,
            {
                "rates": rates,
                "pii_kind_counts": dict(o.pii_kind_counts),
                "alerts": list(safety.alerts),
                "safety": safety_dict,
                "evidence": {k: ev[k] for k in ("injection", "pii_leak", "harm") if k in ev},
                "window": window,
            },
            window,
            res,
        )

        # llm.quality
        q_status = "alert" if quality.alerts else str(quality.status.value)
        qm = dict(quality.metrics)
        q_text = (
            f"quality {q_status} for {where}: " + ", ".join(f"{a} {_num(qm.get(a))}" for a in quality.alerts)
            if quality.alerts
            else f"quality {q_status} for {where}: refusals {_pct(qm['refusal_rate'])}, "
            f"negative feedback {_pct(qm['negative_feedback_rate'])}, p95 latency "
            f"{_num(qm['latency_ms_p95'])} ms"
        )
        keys[QUALITY_DETECTOR] = self._finding(
            session,
            QUALITY_DETECTOR,
            kind,
            index,
            window_id,
            q_status,
            "warn",
            qm["negative_feedback_rate"],
            q_text,
            {
                "metrics": qm,
                "alerts": list(quality.alerts),
                "evidence": {k: ev[k] for k in ("negative_feedback", "refusal") if k in ev},
                "window": window,
            },
            window,
            res,
        )

        # llm.drift
        if drift is not None and drift.status == Status.DRIFT:
            d_text = (
                f"descriptor drift for {where}: {', '.join(drift.drifted_features)} against reference "
                f"v{self.s['reference_version']}"
            )
        else:
            d_text = f"descriptor drift {drift_status} for {where}"
        keys[DRIFT_DETECTOR] = self._finding(
            session,
            DRIFT_DETECTOR,
            kind,
            index,
            window_id,
            drift_status,
            "warn",
            drift.share_drifted if drift is not None else None,
            d_text,
            {
                "drifted_features": list(drift.drifted_features) if drift is not None else [],
                "reference_version": self.s.get("reference_version"),
                "result": drift_summary,
                "window": window,
            },
            window,
            res,
        )

        # provider health
        observations = [
            Observation(SAFETY_DETECTOR, s_status, rates),
            Observation(QUALITY_DETECTOR, q_status, qm),
            Observation(
                DRIFT_DETECTOR,
                drift_status,
                {"share_drifted": drift.share_drifted if drift is not None else None},
            ),
        ]
        for provider, rates_p in safety.by_provider.items():
            failed = rates_p.provider_error_rate
            if not failed.count:
                continue
            res.provider_errors += failed.count
            text = (
                f"safety provider {provider} failed on {failed.count} of {failed.n} interactions of {where}: "
                + "; ".join(errors[provider].keys())
            )[:2000]
            self._finding(
                session,
                HEALTH_DETECTOR,
                f"{kind}:{provider}",
                index,
                window_id,
                "alert",
                "warn",
                failed.value,
                text,
                {
                    "provider": provider,
                    "provider_error_rate": failed.value,
                    "n_errors": failed.count,
                    "n_attempted": failed.n,
                    "errors": dict(errors[provider].most_common(20)),
                    "window": window,
                },
                window,
                res,
            )
            observations.append(Observation(HEALTH_DETECTOR, "alert", {"provider_error_rate": failed.value}))
        log.info(
            "llm %s: window %s #%d closed (%d interactions): safety %s, quality %s, drift %s",
            self.application,
            kind,
            index,
            w["n"],
            s_status,
            q_status,
            drift_status,
        )

        at = end_at or datetime.now(UTC)
        for rule in cfg.rules:
            self._apply_rule(session, rule, observations, kind, index, at, end_at, keys, res)

    def _finding(
        self,
        session: Session,
        detector: str,
        kind: str,
        index: int,
        window_id: int | None,
        status: str,
        severity: str,
        score: float | None,
        summary: str,
        details: dict[str, Any],
        window: dict[str, Any],
        res: LLMBatchResult,
    ) -> str:
        key = f"{self.model}:{self.version}:{detector}:{kind}:{index}"
        if repo.add_finding(
            session,
            finding_key=key,
            model=self.model,
            model_version=self.version,
            window_id=window_id,
            detector=detector,
            status=status,
            severity=severity,
            score=score,
            summary=summary,
            details=details,
            reference_id=self.s.get("reference_id"),
        ):
            res.findings += 1
            if status in PUBLISHED_STATUSES:
                repo.add_outbox(
                    session,
                    message_id=key,
                    topic=self.config.topics.findings,
                    key=self.model,
                    payload={
                        "id": key,
                        "model": self.model,
                        "model_version": self.version,
                        "application": self.application,
                        "detector": detector,
                        "status": status,
                        "severity": severity,
                        "score": score,
                        "summary": summary,
                        "details": details,
                        "window": window,
                    },
                )
        return key

    def _apply_rule(
        self,
        session: Session,
        rule: BoundRule,
        observations: list[Observation],
        kind: str,
        index: int,
        at: datetime,
        end_at: datetime | None,
        keys: Mapping[str, str],
        res: LLMBatchResult,
    ) -> None:
        states = self.s.setdefault("rules", {})
        decision = decide(
            rule.trigger_policy(), PolicyState.from_dict(states.get(rule.id)), rule.holds(observations), at
        )
        states[rule.id] = decision.state.to_dict()
        if not decision.fire:
            return
        action = rule.rule.action
        when = rule.rule.when
        reason = f"{when.detector} {when.status or when.metric}: {decision.reason} (rule {rule.id})"
        dedupe = f"{self.model}:{self.version}:{rule.id}:{kind}:{index}"
        findings = [keys[when.detector]] if when.detector in keys else []
        budget = self.config.budget
        if budget is not None and action in budget.applies_to:
            day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
            model_today, fleet_today = repo.trigger_counts_since(
                session, day, self.model, action, tuple(budget.applies_to)
            )
            verdict = check_budget(
                budget, model=self.model, action=action, model_today=model_today, fleet_today=fleet_today
            )
            if not verdict.allowed:
                text = f"{action} for {self.application} not triggered: {verdict.reason}"
                self._finding(
                    session,
                    "policy.budget",
                    f"{rule.id}:{kind}",
                    index,
                    None,
                    "refused",
                    "warn",
                    None,
                    text,
                    {"rule": rule.id, "action": action, "reason": verdict.reason},
                    {"kind": kind, "index": index, "end_at": _iso(end_at)},
                    res,
                )
                log.warning("llm %s: %s", self.application, text)
                return
        tid = trigger_id(dedupe)
        status = "awaiting_approval" if rule.rule.needs_approval else "pending"
        payload = {
            "id": tid,
            "dedupe_key": dedupe,
            "action": action,
            "model": self.model,
            "model_version": self.version,
            "application": self.application,
            "rule": rule.id,
            "severity": rule.rule.severity,
            "reason": reason,
            "findings": findings,
            "window": {"kind": kind, "index": index, "end_at": _iso(end_at)},
        }
        if repo.add_trigger(
            session,
            id=tid,
            dedupe_key=dedupe,
            model=self.model,
            model_version=self.version,
            action=action,
            status=status,
            reason=reason,
            finding_ids={"findings": findings, "payload": payload},
        ):
            res.triggers += 1
            if status == "pending":
                repo.add_outbox(
                    session,
                    message_id=tid,
                    topic=self.config.topics.triggers,
                    key=self.model,
                    payload=payload,
                )
            log.info("llm %s: trigger %s (%s, %s): %s", self.application, tid, action, status, reason)


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4g}"


# --- the processor ----------------------------------------------------------------------------------------


class LLMProcessor:
    """Applies batches of LLM records; caches states by revision and analyses by record. Truth is in the DB.

    ``providers`` replaces the providers built from the config (tests, benchmarks); ``clock`` times the stages
    reported in ``LLMBatchResult.timings`` (``time.process_time`` for CPU time).
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        config: LLMStreamConfig,
        *,
        providers: Sequence[SafetyProvider] | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.sessions = sessions
        self.config = config
        self.clock = clock
        if providers is None:
            built: list[SafetyProvider] = (
                [OfflineProvider(config.offline)] if config.offline is not None else []
            )
            built += [r.build() for r in config.remote]
            providers = built
        self.providers: tuple[SafetyProvider, ...] = tuple(providers)
        self._streams: dict[str, tuple[int, LLMAppStream]] = {}
        self._configs: dict[str, LLMStreamConfig] = {}
        self._analysed: dict[tuple[str, int, int], Analysed | tuple[str, list[dict[str, Any]]]] = {}

    # -- public ----------------------------------------------------------------------------------------

    def process(self, records: Sequence[Record], max_stale_retries: int = 20) -> LLMBatchResult:
        """Apply ``records`` exactly once. Raises ``InfrastructureError`` when the database fails."""
        try:
            with self.sessions() as session:
                known = repo.load_offsets(
                    session, self.config.consumer_group, {(r.topic, r.partition) for r in records}
                )
        except (OperationalError, DBAPIError) as exc:
            raise InfrastructureError(str(exc).splitlines()[0]) from exc
        timings: dict[str, float] = {}
        self._analyse([r for r in records if r.offset > known.get((r.topic, r.partition), -1)], timings)
        for attempt in range(1, max_stale_retries + 1):
            try:
                result = self._apply(records)
                result.attempts = attempt
                for stage, seconds in timings.items():
                    result.time(stage, seconds)
                self._analysed.clear()
                return result
            except (StaleStateError, IntegrityError) as exc:
                log.info("llm state moved under us (%s); reloading and re-applying", str(exc).splitlines()[0])
                self._streams.clear()
            except (OperationalError, DBAPIError) as exc:
                self._streams.clear()
                raise InfrastructureError(str(exc).splitlines()[0]) from exc
        raise InfrastructureError(f"llm state kept moving for {max_stale_retries} attempts")

    def forget(self) -> None:
        """Drop the cached states, e.g. when partitions are revoked. Analyses stay: a record at an offset never
        changes, and a batch in flight may still need them."""
        self._streams.clear()

    def close(self) -> None:
        for p in self.providers:
            closer = getattr(p, "close", None)
            if callable(closer):
                closer()

    def app_config(self, application: str) -> LLMStreamConfig:
        cfg = self._configs.get(application)
        if cfg is None:
            cfg = self._configs[application] = self.config.for_application(application)
        return cfg

    # -- before the transaction ------------------------------------------------------------------------

    def _analyse(self, records: Sequence[Record], timings: dict[str, float]) -> None:
        """Decode and analyse the records not analysed yet (the cache survives retries of the same batch)."""
        if len(self._analysed) > 50_000:
            self._analysed.clear()
        todo = [r for r in records if (r.topic, r.partition, r.offset) not in self._analysed]
        if not todo:
            return
        t0 = self.clock()
        valid: list[tuple[Record, LLMInteractionEvent]] = []
        for rec in todo:
            decoded = self._decode(rec)
            if isinstance(decoded, LLMInteractionEvent):
                valid.append((rec, decoded))
            else:
                self._analysed[(rec.topic, rec.partition, rec.offset)] = decoded
        t1 = self.clock()
        timings["decode"] = timings.get("decode", 0.0) + t1 - t0
        if not valid:
            return
        items = []
        for rec, e in valid:
            prompt, docs = prompt_and_documents(e)
            items.append(
                SafetyItem(
                    id=f"{rec.partition}:{rec.offset}", prompt=prompt, response=e.response, documents=docs
                )
            )
        per_provider: list[list[SafetyVerdict]] = []
        for provider in self.providers:
            t = self.clock()
            per_provider.append(self._run_provider(provider, items))
            timings[f"safety:{provider.name}"] = (
                timings.get(f"safety:{provider.name}", 0.0) + self.clock() - t
            )
        cfg_q = self.config.quality
        t2 = self.clock()
        analysed: list[Analysed] = []
        for i, ((rec, e), item) in enumerate(zip(valid, items, strict=True)):
            verdicts = [vs[i] for vs in per_provider]
            tags = e.tags
            facts = assess(
                e.response,
                finish_reason=tags.get("finish_reason") or tags.get("stop_reason"),
                completion_tokens=e.tokens.completion if e.tokens else None,
                config=cfg_q,
            )
            desc = describe(item.prompt, e.response, self.config.descriptors, refusal=facts.refusal)
            analysed.append(Analysed(rec, e, item.id, verdicts, facts, desc, _flags(verdicts, facts)))
        t3 = self.clock()
        timings["quality+descriptors"] = timings.get("quality+descriptors", 0.0) + t3 - t2
        keep = self.config.keep
        key = self.config.fingerprint_key
        for a, item in zip(analysed, items, strict=True):
            a.kept_because = _keep_reason(a, keep)
            if a.kept_because is not None:
                a.row = self._row(a, item, key)
            self._analysed[(a.rec.topic, a.rec.partition, a.rec.offset)] = a
        timings["redact+hash"] = timings.get("redact+hash", 0.0) + self.clock() - t3

    def _decode(self, rec: Record) -> LLMInteractionEvent | tuple[str, list[dict[str, Any]]]:
        if rec.value is None:
            return "empty_value", [{"msg": "record has no value (tombstone)"}]
        try:
            event = LLMInteractionEvent.model_validate_json(rec.value)
        except ValidationError as exc:
            return _reason(exc)
        except (ValueError, RecursionError) as exc:  # pragma: no cover - pydantic-core wraps most errors
            return "undecodable", [{"msg": type(exc).__name__}]
        # identifiers become keys and text columns; PostgreSQL refuses NUL there, which would stall the stream
        bad = [name for name in ("application", "model", "event_id") if "\x00" in getattr(event, name)]
        if bad:
            return "invalid_characters", [
                {"loc": n, "type": "nul_character", "msg": "NUL character"} for n in bad
            ]
        return event

    @staticmethod
    def _run_provider(provider: SafetyProvider, items: Sequence[SafetyItem]) -> list[SafetyVerdict]:
        try:
            verdicts = provider.analyze(items)
            if len(verdicts) != len(items):
                raise ValueError(f"{len(verdicts)} verdicts for {len(items)} items")
            return verdicts
        except Exception as exc:  # noqa: BLE001 - a provider's bug is a health signal, never a dead letter
            log.warning(
                "safety provider %s raised %s on %d items", provider.name, type(exc).__name__, len(items)
            )
            return [
                SafetyVerdict.failed(
                    it.id, provider.name, f"{provider.name}: internal error ({type(exc).__name__})"
                )
                for it in items
            ]

    def _row(self, a: Analysed, item: SafetyItem, key: str | bytes | SecretStr) -> dict[str, Any]:
        e = a.event
        n = self.config.excerpt_chars
        event_id = e.event_id if not redact(e.event_id).counts else "fp:" + fingerprint(e.event_id, key)[:60]
        return {
            "event_id": event_id,
            "application": e.application,
            "model": e.model,
            "occurred_at": e.occurred_at,
            "kept_because": a.kept_because,
            "prompt_excerpt": excerpt(item.prompt, n),
            "response_excerpt": excerpt(e.response, n),
            "prompt_hash": fingerprint(item.prompt, key),
            "response_hash": fingerprint(e.response, key),
            "flags": a.flags,
            "user_rating": e.user_rating,
            "latency_ms": e.latency_ms,
            "prompt_tokens": e.tokens.prompt if e.tokens else None,
            "completion_tokens": e.tokens.completion if e.tokens else None,
            "cost_usd": e.cost_usd,
        }

    # -- the transaction -------------------------------------------------------------------------------

    def _apply(self, records: Sequence[Record]) -> LLMBatchResult:
        res = LLMBatchResult()
        group = self.config.consumer_group
        staged: dict[str, tuple[int | None, LLMAppStream]] = {}
        t0 = self.clock()
        with self.sessions() as session, session.begin():
            known = repo.load_offsets(session, group, {(r.topic, r.partition) for r in records})
            new_offsets: dict[tuple[str, int], int] = {}
            per_app: dict[str, list[Analysed]] = defaultdict(list)
            for rec in records:
                tp = (rec.topic, rec.partition)
                if rec.offset <= known.get(tp, -1) or rec.offset <= new_offsets.get(tp, -1):
                    res.skipped += 1
                    continue
                new_offsets[tp] = rec.offset
                done = self._analysed.get((rec.topic, rec.partition, rec.offset))
                if done is None:  # not analysed before the transaction (offsets moved back?): do it now
                    self._analyse([rec], res.timings)
                    done = self._analysed[(rec.topic, rec.partition, rec.offset)]
                if isinstance(done, Analysed):
                    per_app[done.event.application].append(done)
                    res.applied += 1
                else:
                    self._dead_letter(session, rec, *done, res)

            rows: list[dict[str, Any]] = []
            if per_app:
                keys = {app: state_key(app) for app in per_app}
                revisions = repo.load_revisions(session, keys.values())
                stale = [
                    a
                    for a in per_app
                    if a not in self._streams or self._streams[a][0] != revisions.get(keys[a])
                ]
                loaded = repo.load_states(session, [keys[a] for a in stale])
                for app, items in per_app.items():
                    if app in stale:
                        rev, raw = loaded.get(keys[app], (None, None))
                        stream = LLMAppStream.restore(app, raw, self.app_config(app))
                    else:
                        rev, cached = self._streams[app]
                        stream = cached.copy()
                    tw = self.clock()
                    rows += stream.apply(session, items, res)
                    res.time("windows", self.clock() - tw)
                    staged[app] = (rev, stream)
                for app, (rev, stream) in staged.items():
                    staged[app] = (repo.save_state(session, keys[app], stream.to_state(), rev), stream)
            if rows:
                repo.insert_many_ignore(session, repo.table_of(LLMInteraction), rows)
                res.kept += len(rows)
            repo.save_offsets(session, group, new_offsets, known)
        res.time("store", self.clock() - t0 - res.timings.get("windows", 0.0))
        for app, (rev, stream) in staged.items():
            assert rev is not None
            self._streams[app] = (rev, stream)
        return res

    def _dead_letter(
        self, session: Session, rec: Record, reason: str, errors: list[dict[str, Any]], res: LLMBatchResult
    ) -> None:
        res.dead_lettered += 1
        res.reasons[reason] = res.reasons.get(reason, 0) + 1
        log.warning("dead letter %s[%d]@%d: %s", rec.topic, rec.partition, rec.offset, reason)
        repo.add_outbox(
            session,
            message_id=f"dlq:{rec.topic}:{rec.partition}:{rec.offset}",
            topic=self.config.topics.dlq,
            key=f"{rec.topic}:{rec.partition}",
            payload=redacted_dead_letter(rec, reason, errors, self.config.fingerprint_key),
        )


def _flags(verdicts: Sequence[SafetyVerdict], facts: QualityFacts) -> dict[str, Any]:
    pii_prompt: set[str] = set()
    for v in verdicts:
        kinds = v.details.get("prompt_pii_kinds")
        if isinstance(kinds, list):
            pii_prompt.update(str(k) for k in kinds)
    return {
        "injection": any(v.injection_attack for v in verdicts),
        "indirect": any(v.indirect_attack for v in verdicts),
        "pii_response": sorted({k for v in verdicts for k in (v.pii_kinds or ())}),
        "pii_prompt": sorted(pii_prompt),
        "harm": sorted({b for v in verdicts for b in v.flagged}),
        "refusal": facts.refusal,
        "empty": facts.empty,
        "truncated": facts.truncated,
        "provider_errors": sorted({v.provider for v in verdicts if v.errors}),
    }


def _keep_reason(a: Analysed, keep: KeepConfig) -> str | None:
    if keep.flagged and a.flagged:
        return "flagged"
    rating = a.event.user_rating
    if keep.rating_at_or_below is not None and rating is not None and rating <= keep.rating_at_or_below:
        return "rating"
    if keep.refusals and a.facts.refusal:
        return "refusal"
    if keep.rating_at_or_above is not None and rating is not None and rating >= keep.rating_at_or_above:
        return "good_rating"
    if keep.sample_rate > 0 and sampled(a.event.event_id, keep.sample_rate):
        return "sample"
    return None


# --- the faust agent ----------------------------------------------------------------------------------------


def make_llm_agent(
    app: Any, config: Any, processor: LLMProcessor, on_batch: Callable[[LLMBatchResult], None] | None = None
) -> Any:
    """Register the LLM agent on ``app`` (a ``faust.App``), like the predictions agent in ``streams.worker``.

    ``config`` is the ``streams.worker.WorkerConfig`` of the app: batch size and wait, partitions, topics.
    One batch in flight; the processor runs in a thread (``asyncio.to_thread``) so the event loop keeps
    heartbeating; storage outages are retried forever (``retry_forever``), nothing is acked until they pass.
    """
    topics: Topics = config.topics
    source = app.topic(
        topics.llm,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=config.partitions,
    )

    async def llm_interactions(stream: Any) -> None:
        async for events in stream.take_events(config.batch_size, within=config.batch_within_s):
            records = [
                Record(
                    topic=e.message.topic,
                    partition=e.message.partition,
                    offset=e.message.offset,
                    key=e.message.key,
                    value=e.message.value,
                    timestamp_ms=int(e.message.timestamp * 1000) if e.message.timestamp else None,
                )
                for e in events
            ]
            result = await asyncio.to_thread(retry_forever, lambda batch=records: processor.process(batch))
            freeze_startup_heap(config.batch_size)
            log.info(
                "llm batch of %d: applied=%d skipped=%d dead=%d windows=%d findings=%d triggers=%d kept=%d "
                "provider_errors=%d",
                len(records),
                result.applied,
                result.skipped,
                result.dead_lettered,
                result.windows,
                result.findings,
                result.triggers,
                result.kept,
                result.provider_errors,
            )
            if on_batch:
                on_batch(result)

    agent = app.agent(source, concurrency=1, name="opsloop-llm-interactions")(llm_interactions)

    @app.on_partitions_revoked.connect
    async def _llm_revoked(app: Any, revoked: Any, **kwargs: Any) -> None:
        processor.forget()

    return agent


__all__ = [
    "DRIFT_DETECTOR",
    "HEALTH_DETECTOR",
    "QUALITY_DETECTOR",
    "SAFETY_DETECTOR",
    "KeepConfig",
    "LLMAppStream",
    "LLMBatchResult",
    "LLMProcessor",
    "LLMStreamConfig",
    "RemoteProvider",
    "default_llm_rules",
    "excerpt",
    "make_llm_agent",
    "prompt_and_documents",
    "redacted_dead_letter",
    "redacted_text_of",
    "state_key",
]
