"""Late labels: log predictions, join feedback by ``prediction_id``, revise window performance, watch errors.

Predictions are logged (``predictions_log``) with the window they fell in. Feedback joins to them whenever
it arrives — before the prediction (kept in ``pending_labels``), minutes or hours after. Each label updates
the counts of the prediction's window (``window_performance``, optimistic revision) and the window's
performance finding is revised in place: one finding per window, ``revision`` counting its updates.
The per-event error stream, in label-arrival order, feeds ADWIN and Page–Hinkley per model version.
Policy rules on these detectors decide here, as the labels arrive (``_observe``; docs/policies.md).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from sqlalchemy import delete, select, tuple_, update

from detectors.concept import adwin, page_hinkley
from detectors.fairness import FairnessConfig, FairnessCounts, evaluate_fairness
from detectors.performance import (
    ClassificationCounts,
    PerformanceConfig,
    PerformanceStatus,
    RegressionSums,
    evaluate_performance,
)
from retrain.policies import BoundRule, Budget, Observation
from retrain.policy import PolicyState, decide
from storage import repo
from storage.models import PendingLabel, PredictionLog, WindowPerformance, utcnow
from storage.repo import StaleStateError
from streams.columns import _as_category
from streams.topics import Topics
from streams.triggers import fire, gap_metrics

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from streams.events import FeedbackEvent, PredictionEvent
    from streams.processor import BatchResult

log = logging.getLogger(__name__)

REFERENCE = ("ref", 0)
CONCEPT = ("concept", 0)
RULES = ("rules", 0)  # the label-based rules' policy states of a model version
PERFORMANCE_DETECTOR = "performance"
LABEL_FAIRNESS_DETECTOR = "fairness.labels"
# the favourable outcome, as in the window's own fairness counts (streams/model_stream.py)
POSITIVE_LABELS = frozenset({"1", "true", "yes"})


@dataclass(frozen=True)
class LabelConfig:
    log_predictions: Literal["all", "with_id", "none"] = "all"
    label_delay_s: float = 7 * 86400.0  # labels arriving later than this after the prediction are ignored
    performance: PerformanceConfig = field(default_factory=PerformanceConfig)
    concept: bool = True


def _positive_label(e: PredictionEvent) -> str | None:
    probs = e.prediction.probabilities
    if not probs:
        return None
    if len(probs) == 1:
        return next(iter(probs))
    for cand in ("1", "true", "yes", "positive"):
        if cand in probs:
            return cand
    return None


def _score(e: PredictionEvent, positive: str | None) -> float | None:
    if positive is None or not e.prediction.probabilities:
        return None
    return e.prediction.probabilities.get(positive)


@dataclass
class _Label:
    y_true: str | None
    y_true_value: float | None
    occurred_at: datetime


# a model's rules and budget (the processor's, from the policy file or the defaults)
RulesFor = Callable[[str], tuple[Sequence[BoundRule], Budget | None]]


class LabelJoin:
    def __init__(self, config: LabelConfig, topics: Topics, rules_for: RulesFor | None = None) -> None:
        self.config = config
        self.topics = topics
        self.rules_for = rules_for

    # -- the prediction side ---------------------------------------------------------------------------

    def log_predictions(self, session: Session, model: str, version: str,
                        placed: Sequence[tuple[PredictionEvent, str, int]], res: BatchResult) -> None:
        if self.config.log_predictions == "none" or not placed:
            return
        rows: list[dict[str, Any]] = []
        per_window: dict[tuple[str, int], int] = defaultdict(int)
        for e, kind, idx in placed:
            per_window[(kind, idx)] += 1
            pid = e.prediction_id or (e.event_id if self.config.log_predictions == "all" else None)
            if pid is None:
                continue
            positive = _positive_label(e)
            rows.append(dict(model=model, model_version=version, prediction_id=pid, occurred_at=e.occurred_at,
                             window_kind=kind, window_index=idx, y_pred=_as_category(e.prediction.label),
                             y_pred_value=e.prediction.value, score=_score(e, positive),
                             features=dict(e.features), sensitive=dict(e.sensitive)))
        if rows:
            repo.insert_many_ignore(session, repo.table_of(PredictionLog), rows)
        perf = _Windows(session, model, version)
        perf.load(per_window)
        for (kind, idx), n in per_window.items():
            perf.get(kind, idx)["n_predictions"] += n
        ids = [r["prediction_id"] for r in rows]
        pending = session.scalars(select(PendingLabel).where(PendingLabel.prediction_id.in_(ids))).all() if ids \
            else []
        if pending:
            preds = {p.prediction_id: p for p in session.scalars(select(PredictionLog).where(
                PredictionLog.model == model, PredictionLog.prediction_id.in_([p.prediction_id for p in pending])))}
            pairs = [(preds[p.prediction_id], _Label(p.y_true, p.y_true_value, p.occurred_at))
                     for p in pending if p.prediction_id in preds and p.model in (None, model)]
            session.execute(delete(PendingLabel).where(PendingLabel.prediction_id.in_(
                [pr.prediction_id for pr, _ in pairs])))
            self._apply(session, perf, pairs, res)
        perf.save()

    # -- the feedback side -----------------------------------------------------------------------------

    def apply_feedback(self, session: Session, feedback: Sequence[FeedbackEvent], res: BatchResult) -> None:
        latest: dict[str, FeedbackEvent] = {}
        for f in feedback:  # the last label of a prediction in the batch wins
            latest[f.prediction_id] = f
        found: dict[str, list[PredictionLog]] = defaultdict(list)
        for p in session.scalars(select(PredictionLog).where(PredictionLog.prediction_id.in_(list(latest)))):
            found[p.prediction_id].append(p)
        by_model: dict[tuple[str, str], list[tuple[PredictionLog, _Label]]] = defaultdict(list)
        for pid, f in latest.items():
            label = _Label(_as_category(f.label), f.value, f.occurred_at)
            matches = [p for p in found.get(pid, []) if f.model is None or
                       (p.model == f.model.name and p.model_version == f.model.version)]
            if not matches:
                stored = repo.insert_ignore(session, repo.table_of(PendingLabel), dict(
                    prediction_id=pid, model=f.model.name if f.model else None, y_true=label.y_true,
                    y_true_value=label.y_true_value, occurred_at=label.occurred_at, created_at=utcnow()))
                if not stored:
                    session.execute(update(PendingLabel).where(PendingLabel.prediction_id == pid).values(
                        y_true=label.y_true, y_true_value=label.y_true_value, occurred_at=label.occurred_at))
                res.labels_pending += 1
                continue
            for p in matches:
                by_model[(p.model, p.model_version)].append((p, label))
        for (model, version), pairs in by_model.items():
            perf = _Windows(session, model, version)
            self._apply(session, perf, pairs, res)
            perf.save()

    # -- applying labels -------------------------------------------------------------------------------

    def _apply(self, session: Session, perf: _Windows, pairs: Sequence[tuple[PredictionLog, _Label]],
               res: BatchResult) -> None:
        changes: dict[tuple[str, int], _Delta] = defaultdict(_Delta)
        updates: list[dict[str, Any]] = []
        losses: list[float] = []
        for pred, label in pairs:
            if (label.occurred_at - pred.occurred_at).total_seconds() > self.config.label_delay_s:
                res.labels_too_late += 1
                continue
            delta = changes[(pred.window_kind, pred.window_index)]
            if pred.labelled_at is not None:  # a corrected label: take the old one out first
                delta.add(pred, pred.y_true, pred.y_true_value, removed=True)
            delta.add(pred, label.y_true, label.y_true_value)
            updates.append({"id": pred.id, "y_true": label.y_true, "y_true_value": label.y_true_value,
                            "labelled_at": label.occurred_at})
            loss = _loss(pred, label)
            if loss is not None:
                losses.append(loss)
            res.labels_applied += 1
        if updates:
            session.execute(update(PredictionLog), updates)  # bulk UPDATE by primary key
        perf.load([*changes, REFERENCE, *([CONCEPT] if self.config.concept and losses else [])])
        for (kind, idx), delta in changes.items():
            delta.apply(perf.get(kind, idx))
        # the rules' clock (cooldowns) is event time: the latest label applied in this batch
        at = max((label.occurred_at for _, label in pairs), default=None)
        if self.config.concept and losses:
            self._concept(session, perf, losses, res, at)
        ref = perf.get(*REFERENCE)
        for kind, idx in sorted(changes):
            if (kind, idx) != REFERENCE:
                self._evaluate(session, perf, kind, idx, ref, res, at)
                self._fairness(session, perf, kind, idx, res, at)

    def _fairness(self, session: Session, perf: _Windows, kind: str, idx: int, res: BatchResult,
                  at: datetime | None) -> None:
        """Label-based fairness (equal opportunity, equalized odds, predictive parity) of one window, judged
        again as its labels arrive. Recounted from the window's logged rows: O(window) per labelled batch."""
        rows = session.execute(select(PredictionLog.sensitive, PredictionLog.y_pred, PredictionLog.y_true).where(
            PredictionLog.model == perf.model, PredictionLog.model_version == perf.version,
            PredictionLog.window_kind == kind, PredictionLog.window_index == idx)).all()
        attrs = sorted({k for r in rows for k in (r.sensitive or {})})
        if not attrs or not rows:
            return
        groups = {a: np.array([_as_category((r.sensitive or {}).get(a)) for r in rows], dtype=object) for a in attrs}
        y_pred = np.array([r.y_pred in POSITIVE_LABELS for r in rows], dtype=np.int64)
        y_true = np.array([np.nan if r.y_true is None else float(r.y_true in POSITIVE_LABELS) for r in rows])
        counts = FairnessCounts.empty(attrs).update(groups, y_pred, y_true)
        result = evaluate_fairness(counts, FairnessConfig(attributes=tuple(attrs)))
        alerts = [a.to_dict() for a in result.alerts if a.based_on != "selection_rate"]
        w = perf.get(kind, idx)
        if not alerts and "fair_finding" not in w:
            return
        key = f"{perf.model}:{perf.version}:{LABEL_FAIRNESS_DETECTOR}:{kind}:{idx}"
        status = "alert" if alerts else "ok"
        named = "; ".join(f"{a['metric']} on {a['attribute']} (worst group {a['groups']['worst']!r})" for a in alerts)
        text = (f"label-based fairness of {perf.model} v{perf.version} on window {kind} #{idx}: "
                f"{named or 'no gap beyond its interval'}")
        details = {"window_kind": kind, "window_index": idx, "alerts": alerts, "result": result.to_dict()}
        revision = w.get("fair_finding", -1) + 1
        if revision == 0:
            repo.add_finding(session, finding_key=key, model=perf.model, model_version=perf.version, window_id=None,
                             detector=LABEL_FAIRNESS_DETECTOR, status=status, severity="warn", score=None,
                             summary=text, details=details, revision=0)
            res.findings += 1
        else:
            repo.revise_finding(session, key, revision=revision, status=status, severity="warn", score=None,
                                summary=text, details=details)
            res.findings_revised += 1
        w["fair_finding"] = revision
        if self._changed(w, LABEL_FAIRNESS_DETECTOR, status):
            # the label-based gaps, named as the window rows name theirs (selection rates are the window close's)
            metrics = gap_metrics(result.differences(), skip=("selection_rate",))
            self._observe(session, perf, Observation(LABEL_FAIRNESS_DETECTOR, status, metrics), kind, idx, at,
                          [key], res)
        if alerts:
            repo.add_outbox(session, message_id=f"{key}:r{revision}", topic=self.topics.findings, key=perf.model,
                            payload={"id": key, "revision": revision, "model": perf.model,
                                     "model_version": perf.version, "detector": LABEL_FAIRNESS_DETECTOR,
                                     "status": status, "severity": "warn", "summary": text, "alerts": alerts})

    def _evaluate(self, session: Session, perf: _Windows, kind: str, idx: int, ref: dict[str, Any],
                  res: BatchResult, at: datetime | None) -> None:
        w = perf.get(kind, idx)
        counts = _counts(w)
        if counts is None:
            return
        ref_counts = _counts(ref)
        if ref_counts is not None and type(ref_counts) is not type(counts):
            ref_counts = None
        result = evaluate_performance(counts, ref_counts, max(w["n_predictions"], counts.n_labelled),
                                      self.config.performance)
        if result.status == PerformanceStatus.INSUFFICIENT_DATA and "finding" not in w:
            return  # nothing to say yet: no finding until the window can be judged
        key = f"{perf.model}:{perf.version}:{PERFORMANCE_DETECTOR}:{kind}:{idx}"
        details = {"window_kind": kind, "window_index": idx, "result": result.to_dict()}
        status = result.status.value
        text = (f"{result.metric} {_fmt(result.value)} vs reference {_fmt(result.reference_value)} on window {kind} "
                f"#{idx} of {perf.model} v{perf.version} ({result.n_labelled} labels, coverage "
                f"{_fmt(result.label_coverage)}): {status}")
        severity = "critical" if result.status == PerformanceStatus.DEGRADED else "info"
        revision = w.get("finding", -1) + 1
        if revision == 0:
            repo.add_finding(session, finding_key=key, model=perf.model, model_version=perf.version, window_id=None,
                             detector=PERFORMANCE_DETECTOR, status=status, severity=severity, score=result.value,
                             summary=text, details=details, revision=0)
            res.findings += 1
        else:
            repo.revise_finding(session, key, revision=revision, status=status, severity=severity,
                                score=result.value, summary=text, details=details)
            res.findings_revised += 1
        w["finding"] = revision
        if self._changed(w, PERFORMANCE_DETECTOR, status):
            self._observe(session, perf, Observation(PERFORMANCE_DETECTOR, status, {
                result.metric: result.value, "label_coverage": result.label_coverage,
                "degradation": result.degradation}), kind, idx, at, [key], res)
        if result.status == PerformanceStatus.DEGRADED:
            repo.add_outbox(session, message_id=f"{key}:r{revision}", topic=self.topics.findings, key=perf.model,
                            payload={"id": key, "revision": revision, "model": perf.model,
                                     "model_version": perf.version, "detector": PERFORMANCE_DETECTOR,
                                     "status": status, "severity": severity, "summary": text})

    def _concept(self, session: Session, perf: _Windows, losses: list[float], res: BatchResult,
                 at_time: datetime | None) -> None:
        c = perf.get(*CONCEPT)
        a_state = adwin.AdwinState.from_dict(c["adwin"]) if c.get("adwin") else adwin.init_state()
        p_state = page_hinkley.PageHinkleyState.from_dict(c["ph"]) if c.get("ph") else page_hinkley.init_state()
        seen = int(c.get("seen", 0))
        values = np.asarray(losses, dtype=np.float64)
        a_state, a_hits = adwin.update(a_state, values)
        p_state, p_hits = page_hinkley.update(p_state, values)
        for name, hits in (("concept.adwin", a_hits), ("concept.page_hinkley", p_hits)):
            for i in hits:
                at = seen + i + 1
                key = f"{perf.model}:{perf.version}:{name}:{at}"
                text = (f"{name.split('.')[1]} detected a change in the error stream of {perf.model} "
                        f"v{perf.version} at labelled event #{at} (window mean now {_fmt(a_state.mean)})")
                if repo.add_finding(session, finding_key=key, model=perf.model, model_version=perf.version,
                                    window_id=None, detector=name, status="drift", severity="warn", score=None,
                                    summary=text, details={"labelled_event": at, "window_width": a_state.width,
                                                           "mean": a_state.mean}):
                    res.findings += 1
                    repo.add_outbox(session, message_id=key, topic=self.topics.findings, key=perf.model,
                                    payload={"id": key, "model": perf.model, "model_version": perf.version,
                                             "detector": name, "status": "drift", "severity": "warn",
                                             "summary": text})
                    # a change in the error stream has no window: the rules see it at its labelled event
                    self._observe(session, perf, Observation(name, "drift", {"mean": a_state.mean}),
                                  "labelled", at, at_time, [key], res)
        c.update(adwin=a_state.to_dict(), ph=p_state.to_dict(), seen=seen + len(losses))

    def _changed(self, w: dict[str, Any], detector: str, status: str) -> bool:
        """Whether a window's ``detector`` verdict differs from the one its rules last observed (and remember it):
        rules observe a verdict when it changes, not at every revision, so ``count`` / ``in_last`` count
        windows. False without rules, so nothing is stored for nothing."""
        if self.rules_for is None:
            return False
        observed = w.setdefault("observed", {})
        if observed.get(detector) == status:
            return False
        observed[detector] = status
        return True

    def _observe(self, session: Session, perf: _Windows, obs: Observation, kind: str, idx: int,
                 at: datetime | None, finding_ids: list[str], res: BatchResult) -> None:
        """The model's rules on ``obs.detector`` (label-based) decide on it; their states live in the model
        version's ``rules`` performance row, written with the batch."""
        if self.rules_for is None:
            return
        rules, budget = self.rules_for(perf.model)
        mine = [r for r in rules if r.rule.when.detector == obs.detector]
        if not mine:
            return
        states = perf.get(*RULES).setdefault("policies", {})
        for rule in mine:
            decision = decide(rule.trigger_policy(), PolicyState.from_dict(states.get(rule.id)),
                              rule.holds([obs]), at or utcnow())
            states[rule.id] = decision.state.to_dict()
            if decision.fire:
                fire(session, rule, decision.reason, model=perf.model, version=perf.version, kind=kind, index=idx,
                     end_at=None, finding_ids=finding_ids, res=res, budget=budget, topics=self.topics)


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def _loss(pred: PredictionLog, label: _Label) -> float | None:
    if label.y_true is not None and pred.y_pred is not None:
        return 0.0 if label.y_true == pred.y_pred else 1.0
    if label.y_true_value is not None and pred.y_pred_value is not None:
        return abs(label.y_true_value - pred.y_pred_value)
    return None


def _counts(w: dict[str, Any]) -> ClassificationCounts | RegressionSums | None:
    if "cls" in w:
        return ClassificationCounts.from_dict(w["cls"])
    if "reg" in w:
        return RegressionSums.from_dict(w["reg"])
    return None


class _Delta:
    """The labels added to (and removed from) one window in one batch, applied as one counts update."""

    def __init__(self) -> None:
        self.cls: dict[bool, list[tuple[str, str, float | None]]] = {False: [], True: []}
        self.reg: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
        self.positive: str | None = None

    def add(self, pred: PredictionLog, y_true: str | None, y_value: float | None, removed: bool = False) -> None:
        if y_true is not None and pred.y_pred is not None:
            self.cls[removed].append((y_true, pred.y_pred, pred.score))
            if pred.score is not None and self.positive is None:
                # the stored probability is the positive class's (see _positive_label)
                self.positive = "1" if pred.y_pred in ("0", "1") else ("true" if pred.y_pred in ("true", "false")
                                                                       else None)
        elif y_value is not None and pred.y_pred_value is not None:
            self.reg[removed].append((y_value, pred.y_pred_value))

    def apply(self, w: dict[str, Any]) -> None:
        if self.cls[False] or self.cls[True]:
            if "cls" not in w:
                w["cls"] = ClassificationCounts.empty(positive_label=self.positive).to_dict()
            counts = ClassificationCounts.from_dict(w["cls"])
            for removed, rows in ((True, self.cls[True]), (False, self.cls[False])):
                if not rows:
                    continue
                yt = np.array([r[0] for r in rows], dtype=object)
                yp = np.array([r[1] for r in rows], dtype=object)
                proba = None
                if counts.positive_label is not None:
                    proba = np.array([np.nan if r[2] is None else r[2] for r in rows], dtype=np.float64)
                counts = counts.remove(yt, yp, proba) if removed else counts.update(yt, yp, proba)
            w["cls"] = counts.to_dict()
        if self.reg[False] or self.reg[True]:
            sums = RegressionSums.from_dict(w["reg"]) if "reg" in w else RegressionSums()
            for removed, rows2 in ((True, self.reg[True]), (False, self.reg[False])):
                if rows2:
                    yt2 = np.array([r[0] for r in rows2])
                    yp2 = np.array([r[1] for r in rows2])
                    sums = sums.remove(yt2, yp2) if removed else sums.update(yt2, yp2)
            w["reg"] = sums.to_dict()


class _Windows:
    """The window-performance rows of one model version touched in this transaction (optimistic revision).

    ``load`` reads the rows of many windows in one query and ``save`` creates the new ones in one insert: a
    batch places its events in up to ~10 panes of a sliding window, and a round trip per pane was ~0.5 ms
    of every sliding step."""

    def __init__(self, session: Session, model: str, version: str) -> None:
        self.session, self.model, self.version = session, model, version
        self.rows: dict[tuple[str, int], tuple[int | None, dict[str, Any]]] = {}

    def load(self, keys: Iterable[tuple[str, int]]) -> None:
        """Read the rows of ``keys`` not read yet, in one query; a window without a row starts empty."""
        wanted = [k for k in dict.fromkeys(keys) if k not in self.rows]
        if not wanted:
            return
        found = self.session.execute(select(
            WindowPerformance.kind, WindowPerformance.window_index, WindowPerformance.revision,
            WindowPerformance.n_predictions, WindowPerformance.state).where(
            WindowPerformance.model == self.model, WindowPerformance.model_version == self.version,
            tuple_(WindowPerformance.kind, WindowPerformance.window_index).in_(wanted)))
        for row in found:
            self.rows[(row.kind, row.window_index)] = (row.revision, {**row.state, "n_predictions": row.n_predictions})
        for key in wanted:
            self.rows.setdefault(key, (None, {"n_predictions": 0}))

    def get(self, kind: str, idx: int) -> dict[str, Any]:
        key = (kind, idx)
        if key not in self.rows:
            self.load([key])
        return self.rows[key][1]

    def save(self) -> None:
        new: list[dict[str, Any]] = []
        for (kind, idx), (rev, state) in self.rows.items():
            body = {k: v for k, v in state.items() if k != "n_predictions"}
            n = state["n_predictions"]
            if rev is None:
                new.append({"model": self.model, "model_version": self.version, "kind": kind, "window_index": idx,
                            "revision": 1, "n_predictions": n, "state": body, "updated_at": utcnow()})
                continue
            done = self.session.execute(update(WindowPerformance).where(
                WindowPerformance.model == self.model, WindowPerformance.model_version == self.version,
                WindowPerformance.kind == kind, WindowPerformance.window_index == idx,
                WindowPerformance.revision == rev).values(revision=rev + 1, n_predictions=n, state=body,
                                                          updated_at=utcnow()))
            if done.rowcount != 1:
                raise StaleStateError(f"performance of {self.model}/{self.version} {kind}#{idx} moved")
        if new and repo.insert_all_or_none(self.session, repo.table_of(WindowPerformance), new) != len(new):
            raise StaleStateError(f"performance of {self.model}/{self.version}: a window's row was created "
                                  "concurrently")

