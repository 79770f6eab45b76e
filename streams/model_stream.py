"""One model version's stream: warm-up reference, tumbling windows (by count or event time), drift and policy.

The whole state round-trips through JSON (``to_state`` / ``restore``) and is saved with every batch, in the
same transaction as the offsets, so a restarted or rebalanced worker continues exactly where it left off.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from detectors.drift import FeatureDriftConfig, ReferenceProfile, WindowSketch, build_profile, evaluate_drift
from detectors.base import Status
from detectors.fairness import FairnessConfig, FairnessCounts, evaluate_fairness
from retrain.policies import Budget, BoundRule, ModelRule, Observation, check_budget
from retrain.policy import PolicyState, decide, trigger_id
from storage import repo
from streams.topics import Topics
from streams.columns import _as_category, infer_kinds, to_columns

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from streams.events import PredictionEvent
    from streams.processor import BatchResult, Record

log = logging.getLogger(__name__)

DRIFT_DETECTOR = "drift.features"
FAIRNESS_DETECTOR = "fairness.parity"
# the favourable outcome for fairness: a prediction whose label is one of these (documented in docs/fairness.md)
POSITIVE_LABELS = frozenset({"1", "true", "yes"})
REFERENCE_WINDOW = "ref"


@dataclass(frozen=True)
class StreamConfig:
    window_kind: Literal["count", "time", "sliding"] = "count"
    window_size: int = 1000
    sliding_panes: int = 10  # a sliding window of window_size events moves by window_size / sliding_panes
    window_seconds: float = 300.0
    allowed_lateness_s: float = 60.0
    reference_size: int = 5000
    drift: FeatureDriftConfig = field(default_factory=FeatureDriftConfig)
    rules: tuple[BoundRule, ...] = field(default_factory=lambda: default_rules(3600.0))
    budget: Budget | None = field(default_factory=Budget)


_PROFILES: dict[int, ReferenceProfile] = {}


def _profile(session: Session, reference_id: int) -> ReferenceProfile:
    prof = _PROFILES.get(reference_id)
    if prof is None:
        ref = repo.get_reference(session, reference_id)
        if ref is None:
            raise LookupError(f"reference {reference_id} is missing")
        prof = ReferenceProfile.from_dict(ref.profile)
        if len(_PROFILES) > 1000:
            _PROFILES.clear()
        _PROFILES[reference_id] = prof
    return prof


def _iso(t: datetime | None) -> str | None:
    return t.isoformat() if t else None


def _dt(s: str | None) -> datetime | None:
    return datetime.fromisoformat(s) if s else None


class ModelStream:
    def __init__(self, key: tuple[str, str], state: dict[str, Any], config: StreamConfig,
                 topics: Topics) -> None:
        self.model, self.version = key
        self.topics = topics
        self.s = state
        self.config = config

    # -- persistence ----------------------------------------------------------------------------------

    @classmethod
    def restore(cls, key: tuple[str, str], raw: dict[str, Any] | None, config: StreamConfig,
                topics: Topics) -> ModelStream:
        state = raw if raw is not None else {"phase": "warmup", "warmup_rows": [], "events": 0,
                                             "late_dropped": 0, "policy": None, "windows": {}}
        return cls(key, copy.deepcopy(state), config, topics)

    @staticmethod
    def with_reference(state: dict[str, Any] | None, reference_id: int, reference_version: int,
                       kinds: dict[str, str]) -> dict[str, Any]:
        """A stream state pointed at a new reference: the warm-up ends and open windows restart against it."""
        s = copy.deepcopy(state) if state else {"events": 0, "late_dropped": 0, "windows": {}}
        s.pop("warmup_rows", None)
        s.pop("time_closed_below", None)
        s.update(phase="monitor", reference_id=reference_id, reference_version=reference_version, kinds=kinds,
                 windows={})
        return s

    def copy(self) -> ModelStream:
        return ModelStream((self.model, self.version), copy.deepcopy(self.s), self.config, self.topics)

    def to_state(self) -> dict[str, Any]:
        return self.s

    # -- applying events ------------------------------------------------------------------------------

    def apply(self, session: Session, items: Sequence[tuple[Record, PredictionEvent]],
              res: BatchResult) -> list[tuple[PredictionEvent, str, int]]:
        """Apply events in order; returns each event's window (kind, index): ``("ref", 0)`` in the warm-up."""
        self.s["events"] += len(items)
        rest = list(items)
        placed: list[tuple[PredictionEvent, str, int]] = []
        if self.s["phase"] == "warmup":
            need = self.config.reference_size - len(self.s["warmup_rows"])
            self.s["warmup_rows"].extend(dict(e.features) for _, e in rest[:need])
            seen = set(self.s.get("sensitive", [])) | {k for _, e in rest[:need] for k in e.sensitive}
            self.s["sensitive"] = sorted(seen)
            placed.extend((e, REFERENCE_WINDOW, 0) for _, e in rest[:need])
            rest = rest[need:]
            if len(self.s["warmup_rows"]) >= self.config.reference_size:
                self._build_reference(session)
        if not rest:
            return placed
        if self.s.get("sensitive") is None:  # a reference set from a file: learn the attributes from traffic
            self.s["sensitive"] = sorted({k for _, e in rest for k in e.sensitive})
        prof = _profile(session, self.s["reference_id"])
        if self.config.window_kind == "count":
            self._apply_count(session, prof, rest, res, placed)
        elif self.config.window_kind == "sliding":
            self._apply_sliding(session, prof, rest, res, placed)
        else:
            self._apply_time(session, prof, rest, res, placed)
        return placed

    def _build_reference(self, session: Session) -> None:
        rows = self.s.pop("warmup_rows")
        kinds = infer_kinds(rows)
        cols, _ = to_columns(rows, kinds)
        profile = build_profile(cols, kinds)
        ref = repo.add_reference(session, model=self.model, model_version=self.version, source="warmup",
                                 n_rows=len(rows), profile=profile.to_dict())
        _PROFILES[ref.id] = profile
        self.s.update(phase="monitor", reference_id=ref.id, reference_version=ref.version, kinds=kinds)
        log.info("model %s/%s: reference v%d built from the first %d events", self.model, self.version,
                 ref.version, len(rows))

    def _update(self, prof: ReferenceProfile, w: dict[str, Any],
                chunk: Sequence[tuple[Record, PredictionEvent]]) -> None:
        cols, type_errors = to_columns([e.features for _, e in chunk], self.s["kinds"])
        sketch = WindowSketch.from_dict(w["sketch"], prof) if w.get("sketch") else WindowSketch.empty(prof)
        w["sketch"] = sketch.update(cols).to_dict()
        w["n"] += len(chunk)
        attrs = self.s.get("sensitive") or []
        if attrs:
            groups = {a: np.array([_as_category(e.sensitive.get(a)) for _, e in chunk], dtype=object) for a in attrs}
            y_pred = np.array([_as_category(e.prediction.label) in POSITIVE_LABELS for _, e in chunk], dtype=np.int64)
            fair = FairnessCounts.from_dict(w["fair"]) if w.get("fair") else FairnessCounts.empty(attrs)
            w["fair"] = fair.update(groups, y_pred).to_dict()
        for name, k in type_errors.items():
            w["type_errors"][name] = w["type_errors"].get(name, 0) + k
        times = [e.occurred_at for _, e in chunk]
        lo, hi = min(times), max(times)
        w["first_at"] = _iso(min(lo, _dt(w["first_at"]) or lo))
        w["last_at"] = _iso(max(hi, _dt(w["last_at"]) or hi))

    @staticmethod
    def _new_window(index: int) -> dict[str, Any]:
        return {"index": index, "n": 0, "sketch": None, "type_errors": {}, "first_at": None, "last_at": None}

    def _apply_count(self, session: Session, prof: ReferenceProfile,
                     items: Sequence[tuple[Record, PredictionEvent]], res: BatchResult,
                     placed: list[tuple[PredictionEvent, str, int]]) -> None:
        size = self.config.window_size
        w = self.s["windows"].get("count") or self._new_window(0)
        i = 0
        while i < len(items):
            take = min(size - w["n"], len(items) - i)
            self._update(prof, w, items[i:i + take])
            placed.extend((e, "count", w["index"]) for _, e in items[i:i + take])
            i += take
            if w["n"] >= size:
                self._close(session, prof, "count", w, _dt(w["first_at"]), _dt(w["last_at"]), res)
                w = self._new_window(w["index"] + 1)
        self.s["windows"]["count"] = w

    def _apply_sliding(self, session: Session, prof: ReferenceProfile,
                       items: Sequence[tuple[Record, PredictionEvent]], res: BatchResult,
                       placed: list[tuple[PredictionEvent, str, int]]) -> None:
        """Sliding count windows from panes: every ``window_size / sliding_panes`` events the last panes are
        merged (exact counts, so it costs O(panes x bins), never O(window)) and judged as one window."""
        k = self.config.sliding_panes
        step = max(1, self.config.window_size // k)
        sl = self.s["windows"].get("sliding") or {"ring": [], "current": self._new_window(0)}
        w = sl["current"]
        i = 0
        while i < len(items):
            take = min(step - w["n"], len(items) - i)
            self._update(prof, w, items[i:i + take])
            placed.extend((e, "pane", w["index"]) for _, e in items[i:i + take])
            i += take
            if w["n"] >= step:
                sl["ring"] = (sl["ring"] + [w])[-k:]
                if len(sl["ring"]) == k:
                    merged = _merge_panes(prof, sl["ring"], index=w["index"] - k + 1)
                    self._close(session, prof, "sliding", merged, _dt(merged["first_at"]), _dt(merged["last_at"]),
                                res)
                w = self._new_window(w["index"] + 1)
        sl["current"] = w
        self.s["windows"]["sliding"] = sl

    def _apply_time(self, session: Session, prof: ReferenceProfile,
                    items: Sequence[tuple[Record, PredictionEvent]], res: BatchResult,
                    placed: list[tuple[PredictionEvent, str, int]]) -> None:
        span = self.config.window_seconds
        open_w: dict[str, dict[str, Any]] = self.s["windows"].setdefault("time", {})
        closed_below = self.s.get("time_closed_below")  # window indexes below this are closed
        buckets: dict[int, list[tuple[Record, PredictionEvent]]] = {}
        for rec, e in items:
            idx = math.floor(e.occurred_at.timestamp() / span)
            if closed_below is not None and idx < closed_below:
                self.s["late_dropped"] += 1
                continue
            buckets.setdefault(idx, []).append((rec, e))
        for idx in sorted(buckets):
            w = open_w.get(str(idx)) or self._new_window(idx)
            self._update(prof, w, buckets[idx])
            placed.extend((e, "time", idx) for _, e in buckets[idx])
            open_w[str(idx)] = w
        max_seen = max([e.occurred_at.timestamp() for _, e in items] + [self.s.get("max_event_ts") or -math.inf])
        self.s["max_event_ts"] = max_seen
        watermark = max_seen - self.config.allowed_lateness_s
        for key in sorted(open_w, key=int):
            idx = int(key)
            end = (idx + 1) * span
            if end > watermark:
                break
            w = open_w.pop(key)
            start_at = datetime.fromtimestamp(idx * span, tz=timezone.utc)
            end_at = datetime.fromtimestamp(end, tz=timezone.utc)
            self._close(session, prof, "time", w, start_at, end_at, res)
            self.s["time_closed_below"] = idx + 1

    # -- closing a window -----------------------------------------------------------------------------

    def _close(self, session: Session, prof: ReferenceProfile, kind: str, w: dict[str, Any],
               start_at: datetime | None, end_at: datetime | None, res: BatchResult) -> None:
        sketch = WindowSketch.from_dict(w["sketch"], prof) if w["sketch"] else WindowSketch.empty(prof)
        result = evaluate_drift(prof, sketch, self.config.drift)
        summary = result.to_dict()
        stats = {"drift": summary, "type_errors": w["type_errors"], "n": w["n"]}
        window_id = repo.add_window(session, model=self.model, model_version=self.version, kind=kind,
                                    window_index=w["index"], start_at=start_at, end_at=end_at, n_events=w["n"],
                                    reference_id=self.s["reference_id"], stats=stats)
        res.windows += 1
        drifted = result.status == Status.DRIFT
        finding_ids: list[str] = []
        if drifted:
            key = f"{self.model}:{self.version}:{DRIFT_DETECTOR}:{kind}:{w['index']}"
            feats = list(result.drifted_features)
            text = (f"drift in {len(feats)} of {len(result.scores)} features of {self.model} v{self.version}: "
                    f"{', '.join(feats)} (window {kind} #{w['index']}, {w['n']} events, reference "
                    f"v{self.s['reference_version']})")
            severity = "critical" if result.share_drifted >= 0.5 else "warn"
            details = {"drifted_features": feats, "share_drifted": result.share_drifted, "window_index": w["index"],
                       "window_kind": kind, "reference_version": self.s["reference_version"], "result": summary}
            if repo.add_finding(session, finding_key=key, model=self.model, model_version=self.version,
                                window_id=window_id, detector=DRIFT_DETECTOR, status=str(result.status.value),
                                severity=severity, score=result.share_drifted, summary=text, details=details,
                                reference_id=self.s["reference_id"]):
                res.findings += 1
                repo.add_outbox(session, message_id=key, topic=self.topics.findings, key=self.model, payload={
                    "id": key, "model": self.model, "model_version": self.version, "detector": DRIFT_DETECTOR,
                    "status": "drift", "severity": severity, "summary": text, "drifted_features": feats,
                    "window": {"kind": kind, "index": w["index"], "start_at": _iso(start_at),
                               "end_at": _iso(end_at), "n_events": w["n"]}})
            finding_ids.append(key)
        observations = [Observation(DRIFT_DETECTOR, str(result.status.value),
                                    {"share_drifted": result.share_drifted})]
        fair_summary = self._close_fairness(session, kind, w, window_id, start_at, end_at, res, finding_ids)
        if fair_summary is not None:
            stats["fairness"] = fair_summary
            observations.append(Observation(FAIRNESS_DETECTOR, fair_summary["status"], fair_summary["metrics"]))
        at = end_at or datetime.now(timezone.utc)
        for rule in self.config.rules:
            self._apply_rule(session, rule, observations, kind, w["index"], at, end_at, finding_ids, res)

    def _close_fairness(self, session: Session, kind: str, w: dict[str, Any], window_id: int,
                        start_at: datetime | None, end_at: datetime | None, res: BatchResult,
                        finding_ids: list[str]) -> dict[str, Any] | None:
        attrs = self.s.get("sensitive") or []
        if not attrs or not w.get("fair"):
            return None
        counts = FairnessCounts.from_dict(w["fair"])
        result = evaluate_fairness(counts, FairnessConfig(attributes=tuple(attrs)))
        summary = result.to_dict()
        if result.alerts:
            key = f"{self.model}:{self.version}:{FAIRNESS_DETECTOR}:{kind}:{w['index']}"
            named = [f"{a.metric} {a.value:.3f} on {a.attribute} (worst group {a.worst!r} vs {a.best!r})"
                     for a in result.alerts]
            text = (f"fairness gap in {self.model} v{self.version}: {'; '.join(named)} (window {kind} "
                    f"#{w['index']}, {w['n']} events)")
            alerts = [a.to_dict() for a in result.alerts]
            if repo.add_finding(session, finding_key=key, model=self.model, model_version=self.version,
                                window_id=window_id, detector=FAIRNESS_DETECTOR, status="alert", severity="warn",
                                score=None, summary=text, details={"alerts": alerts, "result": summary},
                                reference_id=self.s["reference_id"]):
                res.findings += 1
                repo.add_outbox(session, message_id=key, topic=self.topics.findings, key=self.model, payload={
                    "id": key, "model": self.model, "model_version": self.version, "detector": FAIRNESS_DETECTOR,
                    "status": "alert", "severity": "warn", "summary": text, "alerts": alerts,
                    "window": {"kind": kind, "index": w["index"], "start_at": _iso(start_at),
                               "end_at": _iso(end_at)}})
            finding_ids.append(key)
        # rules can test the gaps: "<attribute>.<gap>" and the worst over attributes, "<gap>"
        metrics: dict[str, float | None] = {}
        for attr, af in summary.get("attributes", {}).items():
            for gap, d in (af.get("difference") or {}).items():
                value = d.get("value") if isinstance(d, dict) else None
                metrics[f"{attr}.{gap}_difference"] = value
                if value is not None:
                    metrics[f"{gap}_difference"] = max(value, metrics.get(f"{gap}_difference") or 0.0)
        return {"status": str(result.status.value), "alerts": [a.to_dict() for a in result.alerts],
                "metrics": metrics}

    def _apply_rule(self, session: Session, rule: BoundRule, observations: list[Observation], kind: str,
                    index: int, at: datetime, end_at: datetime | None, finding_ids: list[str],
                    res: BatchResult) -> None:
        states = self.s.setdefault("rules", {})
        holds = rule.holds(observations)
        decision = decide(rule.trigger_policy(), PolicyState.from_dict(states.get(rule.id)), holds, at)
        states[rule.id] = decision.state.to_dict()
        if not decision.fire:
            return
        action = rule.rule.action
        when = rule.rule.when
        what = f"{when.detector} {when.status or when.metric}"
        reason = f"{what}: {decision.reason} (rule {rule.id})"
        dedupe = f"{self.model}:{self.version}:{rule.id}:{kind}:{index}"
        budget = self.config.budget
        if budget is not None and action in budget.applies_to:
            verdict = _budget_check(session, budget, self.model, action)
            if not verdict.allowed:
                key = f"{self.model}:{self.version}:policy.budget:{rule.id}:{kind}:{index}"
                text = f"{action} for {self.model} v{self.version} not triggered: {verdict.reason}"
                if repo.add_finding(session, finding_key=key, model=self.model, model_version=self.version,
                                    window_id=None, detector="policy.budget", status="refused", severity="warn",
                                    score=None, summary=text, details={"rule": rule.id, "action": action,
                                                                        "reason": verdict.reason}):
                    res.findings += 1
                    repo.add_outbox(session, message_id=key, topic=self.topics.findings, key=self.model, payload={
                        "id": key, "model": self.model, "model_version": self.version,
                        "detector": "policy.budget", "status": "refused", "severity": "warn", "summary": text})
                log.warning("%s", text)
                return
        tid = trigger_id(dedupe)
        status = "awaiting_approval" if rule.rule.needs_approval else "pending"
        payload = {"id": tid, "dedupe_key": dedupe, "action": action, "model": self.model,
                   "model_version": self.version, "rule": rule.id, "severity": rule.rule.severity,
                   "reason": reason, "findings": list(finding_ids),
                   "window": {"kind": kind, "index": index, "end_at": _iso(end_at)}}
        if repo.add_trigger(session, id=tid, dedupe_key=dedupe, model=self.model, model_version=self.version,
                            action=action, status=status, reason=reason,
                            finding_ids={"findings": list(finding_ids), "payload": payload}):
            res.triggers += 1
            if status == "pending":
                repo.add_outbox(session, message_id=tid, topic=self.topics.triggers, key=self.model,
                                payload=payload)
            log.info("trigger %s (%s, %s) for %s/%s: %s", tid, action, status, self.model, self.version, reason)


def _merge_panes(prof: ReferenceProfile, panes: Sequence[dict[str, Any]], index: int) -> dict[str, Any]:
    sketch = WindowSketch.empty(prof)
    fair: FairnessCounts | None = None
    type_errors: dict[str, int] = {}
    for p in panes:
        if p.get("sketch"):
            sketch = sketch.merge(WindowSketch.from_dict(p["sketch"], prof))
        if p.get("fair"):
            f = FairnessCounts.from_dict(p["fair"])
            fair = f if fair is None else fair.merge(f)
        for name, n in p["type_errors"].items():
            type_errors[name] = type_errors.get(name, 0) + n
    return {"index": index, "n": sum(p["n"] for p in panes), "sketch": sketch.to_dict(),
            "fair": fair.to_dict() if fair is not None else None, "type_errors": type_errors,
            "first_at": min(p["first_at"] for p in panes), "last_at": max(p["last_at"] for p in panes)}


def _budget_check(session: Session, budget: Budget, model: str, action: str) -> Any:
    day = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    model_today, fleet_today = repo.trigger_counts_since(session, day, model, action, tuple(budget.applies_to))
    return check_budget(budget, model=model, action=action, model_today=model_today, fleet_today=fleet_today)


def default_rules(cooldown_s: float) -> tuple[BoundRule, ...]:
    """Without a policy file: drift retrains (one trigger per cooldown), a fairness gap alerts."""
    return (
        BoundRule("models", "*", 0, ModelRule.model_validate(
            {"name": "drift-retrain", "when": {"detector": DRIFT_DETECTOR, "status": "drift"}, "count": 1,
             "in_last": 1, "action": "retrain", "cooldown": cooldown_s})),
        BoundRule("models", "*", 1, ModelRule.model_validate(
            {"name": "fairness-alert", "when": {"detector": FAIRNESS_DETECTOR, "status": "alert"}, "count": 1,
             "in_last": 1, "action": "alert", "cooldown": cooldown_s})),
    )
