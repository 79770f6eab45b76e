"""One model version's stream: warm-up reference, windows (count, event time, sliding), detectors and policy.

The state round-trips through JSON (``to_state`` / ``restore``) and is saved with every batch, in the same
transaction as the offsets, so a restarted or rebalanced worker continues exactly where it left off. Between
batches the worker keeps the open windows as objects (``streams.window_state``); the warm-up's events wait in
their own table (``warmup_rows``) until the reference is built from them.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from itertools import pairwise
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from detectors.base import Status
from detectors.drift import (
    DriftVerdict,
    FeatureDriftConfig,
    ReferenceProfile,
    WindowSketch,
    build_profile,
    judge_drift_many,
)
from detectors.fairness import FairnessConfig, FairnessCounts, FairnessResult, evaluate_fairness_many
from detectors.quality import (
    QualityConfig,
    QualityResult,
    QualityStatus,
    VolumeConfig,
    VolumeMonitor,
    VolumeResult,
    evaluate_quality_many,
)
from retrain.policies import LABEL_RULE_DETECTORS, BoundRule, Budget, ModelRule, Observation
from retrain.policy import PolicyState, TriggerPolicy, decide
from storage import repo
from streams.columns import CATEGORICAL, NUMERIC, _as_category, infer_kinds, to_columns
from streams.topics import Topics
from streams.triggers import fire, gap_metrics
from streams.window_state import WindowAcc, _iso, merge_runs

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from streams.events import Prediction, PredictionEvent
    from streams.processor import BatchResult, Record

log = logging.getLogger(__name__)

DRIFT_DETECTOR = "drift.features"
PREDICTION_DRIFT_DETECTOR = "drift.prediction"
QUALITY_DETECTOR = "quality.data"
VOLUME_DETECTOR = "quality.volume"
FAIRNESS_DETECTOR = "fairness.parity"
# the favourable outcome for fairness: a prediction whose label is one of these (documented in docs/fairness.md)
POSITIVE_LABELS = frozenset({"1", "true", "yes"})
REFERENCE_WINDOW = "ref"
# prediction columns: "label" (categorical), "value" (numeric), "p:<class>" (numeric, the first MAX_CLASSES)
PREDICTION_PREFIX = "prediction."
MAX_CLASSES = 20

@dataclass(frozen=True)
class StreamConfig:
    window_kind: Literal["count", "time", "sliding"] = "count"
    window_size: int = 1000
    sliding_panes: int = 10  # a sliding window of window_size events moves by window_size / sliding_panes
    window_seconds: float = 300.0
    allowed_lateness_s: float = 60.0
    reference_size: int = 10_000
    drift: FeatureDriftConfig = field(default_factory=FeatureDriftConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)
    volume: VolumeConfig = field(default_factory=VolumeConfig)
    rules: tuple[BoundRule, ...] = field(default_factory=lambda: default_rules(3600.0))
    budget: Budget | None = field(default_factory=Budget)


# reference profiles by (database, reference id): ids are only unique within one database
_PROFILES: dict[tuple[str, int], tuple[ReferenceProfile, ReferenceProfile | None]] = {}


def _db(session: Session) -> str:
    return session.get_bind().url.render_as_string(hide_password=True)


def _profiles(session: Session, reference_id: int) -> tuple[ReferenceProfile, ReferenceProfile | None]:
    key = (_db(session), reference_id)
    hit = _PROFILES.get(key)
    if hit is None:
        ref = repo.get_reference(session, reference_id)
        if ref is None:
            raise LookupError(f"reference {reference_id} is missing")
        pred = ref.profile.get("predictions")
        hit = (ReferenceProfile.from_dict(ref.profile), ReferenceProfile.from_dict(pred) if pred else None)
        if len(_PROFILES) > 1000:
            _PROFILES.clear()
        _PROFILES[key] = hit
    return hit


def _profile(session: Session, reference_id: int) -> ReferenceProfile:
    return _profiles(session, reference_id)[0]


def _pred_profile(session: Session, reference_id: int) -> ReferenceProfile | None:
    return _profiles(session, reference_id)[1]


def remember_profile(session: Session, reference_id: int, profile: ReferenceProfile,
                     pred: ReferenceProfile | None = None) -> None:
    _PROFILES[(_db(session), reference_id)] = (profile, pred)


def prediction_row(p: Prediction) -> dict[str, Any]:
    """The prediction as drift columns: its label, its value and its class probabilities."""
    row: dict[str, Any] = {}
    if p.label is not None:
        row["label"] = _as_category(p.label)
    if p.value is not None:
        row["value"] = float(p.value)
    if p.probabilities:
        for cls, prob in list(p.probabilities.items())[:MAX_CLASSES]:
            row[f"p:{cls}"] = float(prob)
    return row


def prediction_kinds(rows: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    names = sorted({k for r in rows for k in r})
    return {k: CATEGORICAL if k == "label" else NUMERIC for k in names}


def split_reference_columns(cols: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A reference file's columns: features, and the prediction columns named ``prediction.<column>``."""
    feats = {k: v for k, v in cols.items() if not k.startswith(PREDICTION_PREFIX)}
    preds = {k[len(PREDICTION_PREFIX):]: v for k, v in cols.items() if k.startswith(PREDICTION_PREFIX)}
    return feats, preds


def build_reference_profile(feature_cols: Mapping[str, Any], feature_kinds: Mapping[str, str],
                            pred_cols: Mapping[str, Any], pred_kinds: Mapping[str, str]) -> dict[str, Any]:
    """The stored form of a reference: the feature profile, with the prediction profile under "predictions"."""
    profile = build_profile(feature_cols, feature_kinds).to_dict()
    if pred_cols:
        profile["predictions"] = build_profile(pred_cols, pred_kinds).to_dict()
    return profile


@dataclass(frozen=True)
class _Segment:
    """One window's share of a batch, sketched."""

    sketch: WindowSketch
    pred: WindowSketch | None
    type_errors: dict[str, int]
    fair: FairnessCounts | None  # the segment's predictions per sensitive group


@dataclass
class _Closing:
    """A window the batch closed, to be judged with the others at the end of the batch."""

    kind: str
    w: WindowAcc
    start_at: datetime | None
    end_at: datetime | None
    volume: tuple[int, float | None] | None


@dataclass
class _Judged:
    """A closed window's verdicts, before its row exists."""

    closing: _Closing
    drift: DriftVerdict
    pred_drift: DriftVerdict | None
    quality: QualityResult
    quality_row: dict[str, Any]
    volume: VolumeResult | None
    fair: FairnessResult | None
    fair_summary: dict[str, Any] | None


class ModelStream:
    def __init__(self, key: tuple[str, str], state: dict[str, Any], config: StreamConfig,
                 topics: Topics) -> None:
        self.model, self.version = key
        self.topics = topics
        self.s = state
        self.config = config
        # open windows as objects, decoded from ``s["windows"]`` on first use (decoding needs the profile)
        self._loaded = False
        self._count: WindowAcc | None = None
        self._time: dict[int, WindowAcc] = {}
        self._ring: list[WindowAcc] = []  # a sliding window's last finished panes: the k - 1 it needs next
        self._pane: WindowAcc | None = None
        self._fair_config: FairnessConfig | None = None
        self._bound: list[tuple[BoundRule, str, TriggerPolicy]] | None = None

    # -- persistence ----------------------------------------------------------------------------------

    @classmethod
    def restore(cls, key: tuple[str, str], raw: dict[str, Any] | None, config: StreamConfig,
                topics: Topics) -> ModelStream:
        state = raw if raw is not None else {"phase": "warmup", "warmup_n": 0, "events": 0,
                                             "late_dropped": 0, "policy": None, "windows": {}}
        return cls(key, copy.deepcopy(state), config, topics)

    @staticmethod
    def with_reference(state: dict[str, Any] | None, reference_id: int, reference_version: int,
                       kinds: dict[str, str], pred_kinds: dict[str, str] | None = None) -> dict[str, Any]:
        """A stream state pointed at a new reference: the warm-up ends and open windows restart against it.

        The caller deletes the model version's warm-up rows (``repo.delete_warmup_rows``) in the same transaction.
        """
        s = copy.deepcopy(state) if state else {"events": 0, "late_dropped": 0, "windows": {}}
        for gone in ("warmup_rows", "warmup_n", "time_closed_below"):
            s.pop(gone, None)
        s.update(phase="monitor", reference_id=reference_id, reference_version=reference_version, kinds=kinds,
                 pred_kinds=pred_kinds or {}, windows={})
        return s

    def to_state(self) -> dict[str, Any]:
        if self._loaded:
            windows: dict[str, Any] = {}
            if self._count is not None:
                windows["count"] = self._count.to_dict()
            if self._time:
                windows["time"] = {str(i): w.to_dict() for i, w in sorted(self._time.items())}
            if self._ring or self._pane is not None:
                windows["sliding"] = {"ring": [p.to_dict() for p in self._ring],
                                      "current": (self._pane or WindowAcc(0)).to_dict()}
            self.s["windows"] = windows
        return self.s

    def _load_windows(self, prof: ReferenceProfile, pred: ReferenceProfile | None) -> None:
        if self._loaded:
            return
        ws = self.s.get("windows") or {}
        if ws.get("count"):
            self._count = WindowAcc.from_dict(ws["count"], prof, pred)
        self._time = {int(k): WindowAcc.from_dict(v, prof, pred) for k, v in (ws.get("time") or {}).items()}
        sl = ws.get("sliding")
        if sl:
            # older versions stored the last k panes: the next window needs the last k - 1
            self._ring = self._last_panes([WindowAcc.from_dict(p, prof, pred) for p in sl["ring"]])
            self._pane = WindowAcc.from_dict(sl["current"], prof, pred)
        self._loaded = True

    # -- applying events ------------------------------------------------------------------------------

    def apply(self, session: Session, items: Sequence[tuple[Record, PredictionEvent]],
              res: BatchResult) -> list[tuple[PredictionEvent, str, int]]:
        """Apply events in order; returns each event's window (kind, index): ``("ref", 0)`` in the warm-up."""
        self.s["events"] += len(items)
        rest = list(items)
        placed: list[tuple[PredictionEvent, str, int]] = []
        if self.s["phase"] == "warmup":
            if "warmup_rows" in self.s:  # a state saved before warm-up rows had their own table
                old = self.s.pop("warmup_rows")
                repo.add_warmup_rows(session, self.model, self.version, 0, [{"f": r, "p": {}} for r in old])
                self.s["warmup_n"] = len(old)
            have = int(self.s.get("warmup_n", 0))
            take = rest[:max(0, self.config.reference_size - have)]
            repo.add_warmup_rows(session, self.model, self.version, have,
                                 [{"f": dict(e.features), "p": prediction_row(e.prediction)} for _, e in take])
            self.s["warmup_n"] = have + len(take)
            seen = set(self.s.get("sensitive", [])) | {k for _, e in take for k in e.sensitive}
            self.s["sensitive"] = sorted(seen)
            placed.extend((e, REFERENCE_WINDOW, 0) for _, e in take)
            rest = rest[len(take):]
            if self.s["warmup_n"] >= self.config.reference_size:
                self._build_reference(session)
        if not rest:
            return placed
        if self.s.get("sensitive") is None:  # a reference set from a file: learn the attributes from traffic
            self.s["sensitive"] = sorted({k for _, e in rest for k in e.sensitive})
        prof = _profile(session, self.s["reference_id"])
        pred = _pred_profile(session, self.s["reference_id"])
        self._load_windows(prof, pred)
        if self.config.window_kind == "count":
            self._apply_count(session, prof, pred, rest, res, placed)
        elif self.config.window_kind == "sliding":
            self._apply_sliding(session, prof, pred, rest, res, placed)
        else:
            self._apply_time(session, prof, pred, rest, res, placed)
        return placed

    def _build_reference(self, session: Session) -> None:
        rows = repo.warmup_rows(session, self.model, self.version, self.config.reference_size)
        feats = [r["f"] for r in rows]
        preds = [r.get("p") or {} for r in rows]
        kinds = infer_kinds(feats)
        cols, _ = to_columns(feats, kinds)
        pred_kinds = prediction_kinds(preds)
        pred_cols, _ = to_columns(preds, pred_kinds)
        profile = build_reference_profile(cols, kinds, pred_cols, pred_kinds)
        ref = repo.add_reference(session, model=self.model, model_version=self.version, source="warmup",
                                 n_rows=len(rows), profile=profile)
        repo.delete_warmup_rows(session, self.model, self.version)
        self.s.pop("warmup_n", None)
        self.s.update(phase="monitor", reference_id=ref.id, reference_version=ref.version, kinds=kinds,
                      pred_kinds=pred_kinds if "predictions" in profile else {})
        log.info("model %s/%s: reference v%d built from the first %d events", self.model, self.version,
                 ref.version, len(rows))

    def _segments(self, prof: ReferenceProfile, pred: ReferenceProfile | None,
                  items: Sequence[tuple[Record, PredictionEvent]], bounds: Sequence[int]) -> list[_Segment]:
        """The batch's columns once, sketched per window segment in one pass (``WindowSketch.of_segments``)."""
        kinds = self.s["kinds"]
        rows = [e.features for _, e in items]
        cols, type_errors = to_columns(rows, kinds)
        unknown = {k for r in rows for k in r if k not in kinds}
        for name in unknown:  # named, so the window reports them; their values are not judged
            cols[name] = np.full(len(rows), None, dtype=object)
        sketches = WindowSketch.of_segments(prof, cols, bounds)
        preds: list[WindowSketch | None] = [None] * len(sketches)
        if pred is not None:
            pcols, _ = to_columns([prediction_row(e.prediction) for _, e in items], self.s.get("pred_kinds") or {})
            preds = list(WindowSketch.of_segments(pred, pcols, bounds))
        errors: list[dict[str, int]] = [{} for _ in sketches]
        if type_errors:  # rare: count them per segment
            bad_kinds = {k: kinds[k] for k in type_errors}
            errors = [to_columns(rows[a:b], bad_kinds)[1] for a, b in pairwise(bounds)]
        fair: list[FairnessCounts | None] = [None] * len(sketches)
        attrs = self.s.get("sensitive") or []
        if attrs:  # the batch's groups coded once, every segment counted in one pass
            groups = {a: np.array([_as_category(e.sensitive.get(a)) for _, e in items], dtype=object) for a in attrs}
            y_pred = np.array([_as_category(e.prediction.label) in POSITIVE_LABELS for _, e in items], dtype=np.int64)
            fair = list(FairnessCounts.empty(attrs).of_segments(groups, y_pred, bounds))
        return [_Segment(sk, pk, te, fc) for sk, pk, te, fc in zip(sketches, preds, errors, fair, strict=True)]

    def _update(self, w: WindowAcc, chunk: Sequence[tuple[Record, PredictionEvent]], seg: _Segment) -> None:
        w.sketch = seg.sketch if w.sketch is None else w.sketch.merge(seg.sketch)
        if seg.pred is not None:
            w.pred = seg.pred if w.pred is None else w.pred.merge(seg.pred)
        w.n += len(chunk)
        if seg.fair is not None:  # the attributes are fixed before the first window opens (warm-up or traffic)
            w.fair = seg.fair if w.fair is None else w.fair.merge(seg.fair)
        for name, k in seg.type_errors.items():
            w.type_errors[name] = w.type_errors.get(name, 0) + k
        times = [e.occurred_at for _, e in chunk]
        w.add_times(min(times), max(times))
        w.touch()

    @staticmethod
    def _bounds(n_items: int, room: int, size: int) -> list[int]:
        """Row boundaries cutting a batch into the rest of the open window (``room``) and windows of ``size``."""
        bounds = [0]
        while bounds[-1] < n_items:
            bounds.append(min(n_items, bounds[-1] + (room if len(bounds) == 1 else size)))
        return bounds

    def _fill(self, prof: ReferenceProfile, pred: ReferenceProfile | None, w: WindowAcc, size: int, label: str,
              items: Sequence[tuple[Record, PredictionEvent]], placed: list[tuple[PredictionEvent, str, int]],
              on_full: Callable[[WindowAcc], None]) -> WindowAcc:
        """Feed ``items`` into ``w`` and the windows of ``size`` after it; ``on_full`` gets each full one.
        Returns the window left open."""
        bounds = self._bounds(len(items), size - w.n, size)
        for (a, b), seg in zip(pairwise(bounds), self._segments(prof, pred, items, bounds), strict=True):
            self._update(w, items[a:b], seg)
            placed.extend((e, label, w.index) for _, e in items[a:b])
            if w.n >= size:
                on_full(w)
                w = WindowAcc(w.index + 1)
        return w

    def _apply_count(self, session: Session, prof: ReferenceProfile, pred: ReferenceProfile | None,
                     items: Sequence[tuple[Record, PredictionEvent]], res: BatchResult,
                     placed: list[tuple[PredictionEvent, str, int]]) -> None:
        closing: list[_Closing] = []

        def close(w: WindowAcc) -> None:
            closing.append(_Closing("count", w, w.first_at, w.last_at, (w.n, w.duration_s)))

        self._count = self._fill(prof, pred, self._count or WindowAcc(0), self.config.window_size, "count",
                                 items, placed, close)
        self._close_all(session, prof, pred, closing, res)

    def _apply_sliding(self, session: Session, prof: ReferenceProfile, pred: ReferenceProfile | None,
                       items: Sequence[tuple[Record, PredictionEvent]], res: BatchResult,
                       placed: list[tuple[PredictionEvent, str, int]]) -> None:
        """Sliding count windows from panes: every ``window_size / sliding_panes`` events the last
        ``sliding_panes`` panes make one window, judged as any other. The windows a batch closes are merged
        together (``merge_runs``: a few array additions for all of them, each equal to merging its panes).
        Volume is observed per pane."""
        done: list[WindowAcc] = []
        step = max(1, self.config.window_size // max(1, self.config.sliding_panes))
        self._pane = self._fill(prof, pred, self._pane or WindowAcc(0), step, "pane", items, placed, done.append)
        k = max(1, self.config.sliding_panes)
        panes = self._ring + done
        ends = [j for j in range(len(self._ring), len(panes)) if j + 1 >= k]
        closing = [
            _Closing("sliding", w, w.first_at, w.last_at, (panes[j].n, panes[j].duration_s))
            for j, w in zip(ends, merge_runs(panes, k, ends), strict=True)
        ]
        self._ring = self._last_panes(panes)
        self._close_all(session, prof, pred, closing, res)

    def _last_panes(self, panes: list[WindowAcc]) -> list[WindowAcc]:
        """The panes the next sliding window needs: the last ``sliding_panes - 1``."""
        keep = max(1, self.config.sliding_panes) - 1
        return panes[max(0, len(panes) - keep):] if keep else []

    def _apply_time(self, session: Session, prof: ReferenceProfile, pred: ReferenceProfile | None,
                    items: Sequence[tuple[Record, PredictionEvent]], res: BatchResult,
                    placed: list[tuple[PredictionEvent, str, int]]) -> None:
        span = self.config.window_seconds
        closed_below = self.s.get("time_closed_below")  # window indexes below this are closed
        buckets: dict[int, list[tuple[Record, PredictionEvent]]] = {}
        for rec, e in items:
            idx = math.floor(e.occurred_at.timestamp() / span)
            if closed_below is not None and idx < closed_below:
                self.s["late_dropped"] += 1
                continue
            buckets.setdefault(idx, []).append((rec, e))
        order = sorted(buckets)
        ordered = [it for idx in order for it in buckets[idx]]
        bounds = [0]
        for idx in order:
            bounds.append(bounds[-1] + len(buckets[idx]))
        for idx, seg in zip(order, self._segments(prof, pred, ordered, bounds) if ordered else [], strict=True):
            w = self._time.get(idx) or WindowAcc(idx)
            self._update(w, buckets[idx], seg)
            placed.extend((e, "time", idx) for _, e in buckets[idx])
            self._time[idx] = w
        max_seen = max([e.occurred_at.timestamp() for _, e in items] + [self.s.get("max_event_ts") or -math.inf])
        self.s["max_event_ts"] = max_seen
        watermark = max_seen - self.config.allowed_lateness_s
        closing: list[_Closing] = []
        for idx in sorted(self._time):
            end = (idx + 1) * span
            if end > watermark:
                break
            w = self._time.pop(idx)
            start_at = datetime.fromtimestamp(idx * span, tz=timezone.utc)
            end_at = datetime.fromtimestamp(end, tz=timezone.utc)
            closing.append(_Closing("time", w, start_at, end_at, (w.n, span)))
            self.s["time_closed_below"] = idx + 1
        self._close_all(session, prof, pred, closing, res)

    # -- closing a window -----------------------------------------------------------------------------

    def _finding(self, session: Session, res: BatchResult, *, detector: str, kind: str, index: int,
                 window_id: int | None, status: str, severity: str, score: float | None, text: str,
                 details: dict[str, Any], payload: dict[str, Any], start_at: datetime | None,
                 end_at: datetime | None, n: int | None) -> str:
        """Store a window's finding once (its key is the window) and queue it for the findings topic."""
        key = f"{self.model}:{self.version}:{detector}:{kind}:{index}"
        if repo.add_finding(session, finding_key=key, model=self.model, model_version=self.version,
                            window_id=window_id, detector=detector, status=status, severity=severity, score=score,
                            summary=text, details=details, reference_id=self.s["reference_id"]):
            res.findings += 1
            window = {"kind": kind, "index": index, "start_at": _iso(start_at), "end_at": _iso(end_at)}
            if n is not None:
                window["n_events"] = n
            repo.add_outbox(session, message_id=key, topic=self.topics.findings, key=self.model, payload={
                "id": key, "model": self.model, "model_version": self.version, "detector": detector,
                "status": status, "severity": severity, "summary": text, **payload, "window": window})
        return key

    def _close_all(self, session: Session, prof: ReferenceProfile, pred: ReferenceProfile | None,
                   closing: Sequence[_Closing], res: BatchResult) -> None:
        """Judge the windows a batch closed, in order: every window detector, then all their rows in one
        insert, then each window's findings (which name its row) and the rules' triggers.

        A sliding window closes ~10 windows per batch: drift is judged for all of them in one pass
        (``judge_drift_many``; the full per-feature results are built only for a window that alerts) and their
        rows are written in one statement."""
        if not closing:
            return
        sketches = [c.w.sketch or WindowSketch.empty(prof) for c in closing]
        drift = judge_drift_many(prof, sketches, self.config.drift)
        pred_drift: Sequence[DriftVerdict | None] = [None] * len(closing)
        if pred is not None:
            pred_drift = judge_drift_many(pred, [c.w.pred or WindowSketch.empty(pred) for c in closing],
                                          self.config.drift)
        qualities = evaluate_quality_many(prof, sketches, [c.w.type_errors for c in closing], self.config.quality)
        judged: list[_Judged] = []
        rows: list[dict[str, Any]] = []
        volume = self._volume_monitor()
        fairs = self._fairness([c.w for c in closing])
        for c, result, pred_result, q, fair in zip(closing, drift, pred_drift, qualities, fairs, strict=True):
            w = c.w
            v = None
            if c.volume is not None:  # in window order: each verdict is on the volumes before it
                n, duration = c.volume
                v = volume.observe(n, duration if duration is not None else 0.0)
            # the row keeps each drift verdict with its per-feature numbers as columns; a finding keeps the
            # full result (docs/design.md, "Window rows keep drift as columns")
            stats: dict[str, Any] = {"drift": result.summary, "type_errors": w.type_errors, "n": w.n}
            if pred_result is not None:
                stats["prediction_drift"] = pred_result.summary
            # the row keeps the quality verdict and its problems; the per-feature numbers go into a finding only
            stats["quality"] = quality = {
                "status": q.status.value, "problems": [p.problem() for p in q.problems],
                "warnings": [p.problem() for p in q.warnings], "absent_features": list(q.absent_features),
                "new_columns": [p.feature for p in q.new_columns]}
            if v is not None:
                stats["volume"] = v.to_dict()
            fair_summary = None if fair is None else _fairness_summary(fair)
            if fair_summary is not None:
                stats["fairness"] = fair_summary
            rows.append({"model": self.model, "model_version": self.version, "kind": c.kind, "window_index": w.index,
                         "start_at": c.start_at, "end_at": c.end_at, "n_events": w.n,
                         "reference_id": self.s["reference_id"], "stats": stats})
            judged.append(_Judged(c, result, pred_result, q, quality, v, fair, fair_summary))
        self.s["volume"] = volume.state()
        window_ids = repo.add_windows(session, rows)
        res.windows += len(window_ids)
        # the rules' states as objects for the batch's windows, written back once
        policies: dict[str, PolicyState] = {}
        for j, window_id in zip(judged, window_ids, strict=True):
            self._report(session, j, window_id, res, policies)
        states = self.s.setdefault("rules", {})
        for rule_id, policy in policies.items():
            states[rule_id] = policy.to_dict()

    def _report(self, session: Session, j: _Judged, window_id: int, res: BatchResult,
                policies: dict[str, PolicyState]) -> None:
        """A judged window's findings (which name its row), then the rules' triggers."""
        kind, w, start_at, end_at = j.closing.kind, j.closing.w, j.closing.start_at, j.closing.end_at
        result, pred_result, q, quality, v, fair = j.drift, j.pred_drift, j.quality, j.quality_row, j.volume, j.fair
        finding_ids: list[str] = []

        def emit(detector: str, status: str, severity: str, score: float | None, text: str,
                 details: dict[str, Any], payload: dict[str, Any], n: int | None = w.n) -> None:
            finding_ids.append(self._finding(
                session, res, detector=detector, kind=kind, index=w.index, window_id=window_id, status=status,
                severity=severity, score=score, text=text, details=details, payload=payload, start_at=start_at,
                end_at=end_at, n=n))

        def where() -> str:  # for the findings' texts: most windows have none
            return f"window {kind} #{w.index}, {w.n} events, reference v{self.s['reference_version']}"

        about = {"window_index": w.index, "window_kind": kind}
        if result.status == Status.DRIFT:
            feats = list(result.drifted_features)
            text = (f"drift in {len(feats)} of {result.n_features} features of {self.model} v{self.version}: "
                    f"{', '.join(feats)} ({where()})")
            severity = "critical" if (result.share_drifted or 0.0) >= 0.5 else "warn"
            emit(DRIFT_DETECTOR, "drift", severity, result.share_drifted, text,
                 {"drifted_features": feats, "share_drifted": result.share_drifted, **about,
                  "reference_version": self.s["reference_version"], "result": result.result().to_dict()},
                 {"drifted_features": feats})
        observations = [Observation(DRIFT_DETECTOR, str(result.status.value),
                                    {"share_drifted": result.share_drifted})]
        if pred_result is not None:
            if pred_result.status == Status.DRIFT:
                cols = list(pred_result.drifted_features)
                text = f"prediction drift in {self.model} v{self.version}: {', '.join(cols)} ({where()})"
                emit(PREDICTION_DRIFT_DETECTOR, "drift", "warn", pred_result.share_drifted, text,
                     {"drifted_columns": cols, **about, "reference_version": self.s["reference_version"],
                      "result": pred_result.result().to_dict()},
                     {"drifted_columns": cols})
            observations.append(Observation(PREDICTION_DRIFT_DETECTOR, str(pred_result.status.value),
                                            {"share_drifted": pred_result.share_drifted}))
        if q.status == QualityStatus.ALERT:
            named = [_problem_text(p) for p in quality["problems"]]
            text = f"data quality of {self.model} v{self.version}: {'; '.join(named)} ({where()})"
            emit(QUALITY_DETECTOR, "alert", "critical" if quality["absent_features"] else "warn",
                 float(len(q.problems)), text, {"problems": quality["problems"], **about, "result": q.to_dict()},
                 {"problems": quality["problems"]})
        observations.append(Observation(QUALITY_DETECTOR, str(q.status.value), {"problems": float(len(q.problems))}))
        if v is not None:
            if v.flagged:
                text = (f"event volume {v.direction} for {self.model} v{self.version}: {v.rate:.3g} events/s "
                        f"against a usual {v.baseline:.3g} (x{v.ratio:.2f}) ({where()})")
                emit(VOLUME_DETECTOR, "alert", "warn", v.ratio, text, {**about, "result": v.to_dict()},
                     {"direction": v.direction, "ratio": v.ratio})
            observations.append(Observation(VOLUME_DETECTOR, str(v.status.value), {"ratio": v.ratio, "rate": v.rate}))
        if fair is not None and j.fair_summary is not None:
            if fair.alerts:
                named = [f"{a.metric} {a.value:.3f} on {a.attribute} (worst group {a.worst!r} vs {a.best!r})"
                         for a in fair.alerts]
                text = (f"fairness gap in {self.model} v{self.version}: {'; '.join(named)} (window {kind} "
                        f"#{w.index}, {w.n} events)")
                emit(FAIRNESS_DETECTOR, "alert", "warn", None, text,
                     {"alerts": j.fair_summary["alerts"], "result": fair.to_dict()}, {"alerts": j.fair_summary["alerts"]},
                     n=None)
            observations.append(Observation(FAIRNESS_DETECTOR, j.fair_summary["status"], j.fair_summary["metrics"]))
        at = end_at or datetime.now(timezone.utc)
        for rule, rule_id, trigger_policy in self._rules():
            state = policies.get(rule_id)
            if state is None:
                state = PolicyState.from_dict(self.s.get("rules", {}).get(rule_id))
            decision = decide(trigger_policy, state, rule.holds(observations), at)
            policies[rule_id] = decision.state
            if decision.fire:
                self._fire(session, rule, decision.reason, kind, w.index, end_at, finding_ids, res)

    def _volume_monitor(self) -> VolumeMonitor:
        """The event-volume detector, from the state: it judges each window's (or pane's) volume against the
        recent ones; ``_close_all`` writes it back once for all the windows of a batch."""
        state = self.s.get("volume") or {}
        return VolumeMonitor(self.config.volume, history=state.get("history", ()),
                             n_observed=state.get("n_observed", 0), n_flagged=state.get("n_flagged", 0))

    def _fairness(self, windows: Sequence[WindowAcc]) -> list[FairnessResult | None]:
        """The fairness verdicts of the windows a batch closes, in one pass (``evaluate_fairness_many``);
        None for a window without sensitive attributes."""
        attrs = tuple(self.s.get("sensitive") or ())
        out: list[FairnessResult | None] = [None] * len(windows)
        counted = [(i, w.fair) for i, w in enumerate(windows) if w.fair is not None]
        if not attrs or not counted:
            return out
        if self._fair_config is None or self._fair_config.attributes != attrs:  # validated once, not per window
            self._fair_config = FairnessConfig(attributes=attrs)
        results = evaluate_fairness_many([counts for _, counts in counted], self._fair_config)
        for (i, _), result in zip(counted, results, strict=True):
            out[i] = result
        return out

    def _rules(self) -> list[tuple[BoundRule, str, TriggerPolicy]]:
        """The rules with their ids and trigger policies, built once (every window of a sliding window
        consults every rule)."""
        if self._bound is None:  # label-based rules decide when labels arrive (streams/labels.py), not here
            self._bound = [(rule, rule.id, rule.trigger_policy()) for rule in self.config.rules
                           if rule.rule.when.detector not in LABEL_RULE_DETECTORS]
        return self._bound

    def _fire(self, session: Session, rule: BoundRule, why: str, kind: str, index: int, end_at: datetime | None,
              finding_ids: list[str], res: BatchResult) -> None:
        """A rule's decision fired: its trigger, unless the budget refuses it (then a refusal finding)."""
        fire(session, rule, why, model=self.model, version=self.version, kind=kind, index=index, end_at=end_at,
             finding_ids=finding_ids, res=res, budget=self.config.budget, topics=self.topics)


def _fairness_summary(result: FairnessResult) -> dict[str, Any]:
    """What a window row keeps of fairness: the verdict, the alerts and the gaps rules can test, as
    "<attribute>.<gap>_difference" and the worst over attributes, "<gap>_difference"."""
    return {"status": str(result.status.value), "alerts": [a.to_dict() for a in result.alerts],
            "metrics": gap_metrics(result.differences())}


def _problem_text(p: Mapping[str, Any]) -> str:
    value, expected = p.get("value"), p.get("expected")
    if value is None:
        return f"{p['check']} {p['feature']}"
    shares = f"{100 * value:.1f} %" + (f" vs {100 * expected:.1f} %" if expected is not None else "")
    return f"{p['check']} {p['feature']} ({shares})"


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
