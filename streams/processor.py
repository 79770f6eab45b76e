"""Apply a batch of raw Kafka records to storage in one transaction.

No Kafka here: the worker hands over records (topic, partition, offset, key, value) and this module decodes,
dead-letters, windows, runs detectors and writes stats, findings, triggers and outbox rows together with the
offsets it applied. Replays at or below a stored offset are skipped, so nothing counts twice.
"""

from __future__ import annotations

import base64
import gc
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from retrain.policies import LABEL_RULE_DETECTORS, BoundRule, Budget, PolicySet
from storage import repo
from storage.repo import StaleStateError
from streams.topics import Topics
from streams.events import FeedbackEvent, PredictionEvent
from streams.labels import LabelConfig, LabelJoin
from streams.model_stream import ModelStream, StreamConfig

log = logging.getLogger(__name__)

E = TypeVar("E", PredictionEvent, FeedbackEvent)


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int | None = None


@dataclass
class BatchResult:
    applied: int = 0
    skipped: int = 0
    dead_lettered: int = 0
    windows: int = 0
    findings: int = 0
    triggers: int = 0
    findings_revised: int = 0
    labels_applied: int = 0
    labels_pending: int = 0
    labels_too_late: int = 0
    attempts: int = 1
    reasons: dict[str, int] = field(default_factory=dict)


class InfrastructureError(Exception):
    """The database is unreachable or failing: retry the same batch later, never dead-letter."""


@dataclass(frozen=True)
class ProcessorConfig:
    consumer_group: str
    stream: StreamConfig = field(default_factory=StreamConfig)
    policies: PolicySet | None = None  # a policy file overrides windows, detectors, rules and budgets per model
    topics: Topics = field(default_factory=Topics)
    labels: LabelConfig = field(default_factory=LabelConfig)
    # optional slices: each value of these features is also monitored on its own, as model version
    # "<version>|<feature>=<value>" (use low-cardinality features: every value is one more stream state)
    slice_by: tuple[str, ...] = ()


def _reason(exc: ValidationError) -> tuple[str, list[dict[str, Any]]]:
    """A short reason and the errors without the offending input (it may hold personal data)."""
    errors = [{"loc": ".".join(str(p) for p in e["loc"]), "type": e["type"], "msg": e["msg"]}
              for e in exc.errors(include_input=False, include_url=False)[:10]]
    types = {e["type"] for e in errors}
    if types & {"json_invalid", "json_type"}:
        return "invalid_json", errors
    if "literal_error" in types and any(e["loc"] == "schema_version" for e in errors):
        return "unsupported_schema_version", errors
    if "missing" in types:
        return "missing_field", errors
    if "extra_forbidden" in types:
        return "unknown_field", errors
    return "schema_violation", errors


def _slice_value(x: object) -> str:
    if x is None:
        return "__missing__"
    if isinstance(x, bool):
        return "true" if x else "false"
    return str(x)[:50]


def dead_letter_payload(rec: Record, reason: str, errors: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "reason": reason,
        "errors": errors,
        "origin": {"topic": rec.topic, "partition": rec.partition, "offset": rec.offset,
                   "timestamp_ms": rec.timestamp_ms},
        "key_b64": base64.b64encode(rec.key).decode() if rec.key is not None else None,
        "value_b64": base64.b64encode(rec.value).decode() if rec.value is not None else None,
        "value_size": len(rec.value) if rec.value is not None else 0,
    }


class BatchProcessor:
    """Holds caches (model states by revision, reference profiles); all truth lives in the database."""

    def __init__(self, sessions: sessionmaker[Session], config: ProcessorConfig) -> None:
        self.sessions = sessions
        self.config = config
        self._streams: dict[tuple[str, str], tuple[int, ModelStream]] = {}
        self.labels = LabelJoin(config.labels, config.topics, rules_for=self._label_rules)
        self._configs: dict[str, StreamConfig] = {}

    # -- public ---------------------------------------------------------------------------------------

    def process(self, records: Sequence[Record], max_stale_retries: int = 20) -> BatchResult:
        """Apply ``records`` exactly once. Raises ``InfrastructureError`` when the database fails."""
        for attempt in range(1, max_stale_retries + 1):
            try:
                result = self._apply(records)
                result.attempts = attempt
                return result
            except (StaleStateError, IntegrityError) as exc:
                # another worker applied the same work first (a rebalance overlap): reload and re-apply
                log.info("state moved under us (%s); reloading and re-applying", str(exc).splitlines()[0])
                self._streams.clear()
            except (OperationalError, DBAPIError) as exc:
                self._streams.clear()
                raise InfrastructureError(str(exc).splitlines()[0]) from exc
            except BaseException:
                self._streams.clear()  # cached states may hold this batch's uncommitted changes
                raise
        raise InfrastructureError(f"model state kept moving for {max_stale_retries} attempts")

    def stream_config(self, model: str) -> StreamConfig:
        """The stream settings of one model: the defaults, overridden by the policy file's entry for it."""
        base = self.config.stream
        ps = self.config.policies
        if ps is None:
            return base
        cached = self._configs.get(model)
        if cached is not None:
            return cached
        win = ps.windows_for(model)
        drift = ps.detectors_for(model).drift
        rules = ps.rules_for(model)
        cfg = replace(base, window_kind=win.kind,
                      window_size=getattr(win, "size", base.window_size),
                      window_seconds=getattr(win, "seconds", base.window_seconds),
                      allowed_lateness_s=getattr(win, "allowed_lateness", base.allowed_lateness_s),
                      drift=drift.to_config() if drift is not None else base.drift,
                      rules=rules if rules else base.rules, budget=ps.budget_for(model))
        self._configs[model] = cfg
        return cfg

    def _label_rules(self, model: str) -> tuple[tuple[BoundRule, ...], Budget | None]:
        """A model's rules on label-based detectors (performance, concept drift, label fairness), and its budget."""
        cfg = self.stream_config(model)
        return tuple(r for r in cfg.rules if r.rule.when.detector in LABEL_RULE_DETECTORS), cfg.budget

    def forget(self) -> None:
        """Drop caches, e.g. when partitions are revoked."""
        self._streams.clear()

    # -- internals ------------------------------------------------------------------------------------

    def _apply(self, records: Sequence[Record]) -> BatchResult:
        res = BatchResult()
        group = self.config.consumer_group
        staged: dict[tuple[str, str], tuple[int | None, ModelStream]] = {}
        with self.sessions() as session, session.begin():
            known = repo.load_offsets(session, group, {(r.topic, r.partition) for r in records})
            new_offsets: dict[tuple[str, int], int] = {}
            per_model: dict[tuple[str, str], list[tuple[Record, PredictionEvent]]] = defaultdict(list)
            feedback: list[FeedbackEvent] = []
            feedback_topic = self.config.topics.feedback
            for rec in records:
                tp = (rec.topic, rec.partition)
                if rec.offset <= known.get(tp, -1) or rec.offset <= new_offsets.get(tp, -1):
                    res.skipped += 1
                    continue
                new_offsets[tp] = rec.offset
                if rec.topic == feedback_topic:
                    fb = self._decode(session, rec, res, FeedbackEvent)
                    if fb is not None:
                        feedback.append(fb)
                        res.applied += 1
                    continue
                event = self._decode(session, rec, res, PredictionEvent)
                if event is not None:
                    per_model[(event.model.name, event.model.version)].append((rec, event))
                    for feat in self.config.slice_by:
                        value = _slice_value(event.features.get(feat))
                        per_model[(event.model.name, f"{event.model.version}|{feat}={value}")].append((rec, event))
                    res.applied += 1

            if per_model:
                revisions = repo.load_revisions(session, per_model)
                stale = [k for k in per_model if k not in self._streams or self._streams[k][0] != revisions.get(k)]
                loaded = repo.load_states(session, stale)
                for key, items in per_model.items():
                    if key in stale:
                        rev, raw = loaded.get(key, (None, None))
                        stream = ModelStream.restore(key, raw, self.stream_config(key[0]), self.config.topics)
                    else:
                        # the cached stream is changed in place: any failure below clears the cache (process)
                        rev, stream = self._streams[key]
                    t0 = time.perf_counter()
                    placed = stream.apply(session, items, res)
                    if "|" not in key[1]:  # slices share their events' log with the whole model version
                        self.labels.log_predictions(session, key[0], key[1], placed, res)
                    log.debug("model %s/%s: %d events in %.1f ms", *key, len(items),
                              (time.perf_counter() - t0) * 1e3)
                    staged[key] = (rev, stream)
                for key, (rev, stream) in staged.items():
                    new_rev = repo.save_state(session, key, stream.to_state(), rev)
                    staged[key] = (new_rev, stream)

            if feedback:
                self.labels.apply_feedback(session, feedback, res)
            repo.save_offsets(session, group, new_offsets, known)
        for key, (rev, stream) in staged.items():
            assert rev is not None
            self._streams[key] = (rev, stream)
        return res

    def _decode(self, session: Session, rec: Record, res: BatchResult, model: type[E]) -> E | None:
        reason: str
        errors: list[dict[str, Any]]
        if rec.value is None:
            reason, errors = "empty_value", [{"msg": "record has no value (tombstone)"}]
        elif b"\\u0000" in rec.value:  # PostgreSQL text refuses NUL: it would look like an outage forever
            reason, errors = "invalid_characters", [{"msg": "NUL character (\\u0000) in a string"}]
        else:
            try:
                return model.model_validate_json(rec.value)
            except ValidationError as exc:
                reason, errors = _reason(exc)
            except (ValueError, RecursionError) as exc:  # pragma: no cover - pydantic-core wraps most errors
                reason, errors = "undecodable", [{"msg": type(exc).__name__}]
        res.dead_lettered += 1
        res.reasons[reason] = res.reasons.get(reason, 0) + 1
        log.warning("dead letter %s[%d]@%d: %s", rec.topic, rec.partition, rec.offset, reason)
        repo.add_outbox(session, message_id=f"dlq:{rec.topic}:{rec.partition}:{rec.offset}", topic=self.config.topics.dlq,
                        key=f"{rec.topic}:{rec.partition}", payload=dead_letter_payload(rec, reason, errors))
        return None


_heap_frozen = False


# objects a batch keeps alive per event while it is applied (decoded events, columns, rows, results): a batch
# of 1,000 events peaked at ~20,500 net allocations of tracked objects (count or sliding windows, measured
# with the collector off); 25 per event leaves room
YOUNG_OBJECTS_PER_EVENT = 25


_DEFAULT_YOUNG = gc.get_threshold()[0]


def young_threshold(batch_size: int) -> int:
    """The young-generation threshold that lets a batch of ``batch_size`` events be applied without the
    collector walking its live objects again and again; never below Python's default."""
    return max(_DEFAULT_YOUNG, YOUNG_OBJECTS_PER_EVENT * batch_size)


def freeze_startup_heap(batch_size: int | None = None) -> None:
    """Move what start-up and the first batch left alive (modules, classes, the app, caches: ~150k objects)
    out of the collector's reach, once per process. Full collections then scan only what batches allocate:
    in-process, the batch path ran ~18 % faster with it (bench/gc_freeze.py, docs/benchmarks.md). Called
    after the first applied batch, when the lazily imported detector modules are loaded too.

    With ``batch_size`` it also raises the young generation's threshold to ``young_threshold(batch_size)``:
    at Python's default (700 allocations) a batch of 1,000 events triggered ~25 young collections, each
    walking the objects the batch held at that moment, though they are freed by reference counting when
    the batch ends. Only garbage in reference cycles waits longer (until that many more allocations)."""
    global _heap_frozen
    if _heap_frozen:
        return
    _heap_frozen = True
    gc.collect()
    gc.freeze()
    log.debug("froze %d start-up objects out of the garbage collector", gc.get_freeze_count())
    if batch_size is not None:
        _young, *older = gc.get_threshold()
        gc.set_threshold(young_threshold(batch_size), *older)
        log.debug("young-generation threshold %d for batches of %d", young_threshold(batch_size), batch_size)


def retry_forever(fn: Callable[[], BatchResult], *, sleep: Callable[[float], None] = time.sleep,
                  base: float = 0.5, cap: float = 30.0, on_retry: Callable[[int, Exception], None] | None = None
                  ) -> BatchResult:
    """Run ``fn`` until it stops raising ``InfrastructureError``, with capped exponential backoff."""
    delay = base
    attempt = 0
    while True:
        try:
            return fn()
        except InfrastructureError as exc:
            attempt += 1
            if on_retry:
                on_retry(attempt, exc)
            log.warning("storage unavailable (attempt %d, retry in %.1fs): %s", attempt, delay, exc)
            sleep(delay)
            delay = min(cap, delay * 2)
