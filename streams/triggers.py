"""A rule that fired becomes a trigger: one per rule and window (its dedupe key), unless the day's budget
refuses it (then a ``policy.budget`` finding says so). Shared by window closes (``ModelStream``) and label
arrivals (``LabelJoin``)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from retrain.policies import BoundRule, Budget, check_budget
from retrain.policy import trigger_id
from storage import repo
from streams.topics import Topics
from streams.window_state import _iso

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from streams.processor import BatchResult

log = logging.getLogger(__name__)


def fire(session: Session, rule: BoundRule, why: str, *, model: str, version: str, kind: str, index: int,
         end_at: datetime | None, finding_ids: list[str], res: BatchResult, budget: Budget | None,
         topics: Topics) -> None:
    """A rule's decision fired for window ``kind #index``: its trigger, unless the budget refuses it."""
    action = rule.rule.action
    when = rule.rule.when
    what = f"{when.detector} {when.status or when.metric}"
    reason = f"{what}: {why} (rule {rule.id})"
    dedupe = f"{model}:{version}:{rule.id}:{kind}:{index}"
    # the trigger names the findings of the detector its rule watches (keys are model:version:detector:...)
    finding_ids = [f for f in finding_ids if when.detector in f.split(":")]
    if budget is not None and action in budget.applies_to:
        verdict = _budget_check(session, budget, model, action)
        if not verdict.allowed:
            key = f"{model}:{version}:policy.budget:{rule.id}:{kind}:{index}"
            text = f"{action} for {model} v{version} not triggered: {verdict.reason}"
            if repo.add_finding(session, finding_key=key, model=model, model_version=version,
                                window_id=None, detector="policy.budget", status="refused", severity="warn",
                                score=None, summary=text, details={"rule": rule.id, "action": action,
                                                                    "reason": verdict.reason}):
                res.findings += 1
                repo.add_outbox(session, message_id=key, topic=topics.findings, key=model, payload={
                    "id": key, "model": model, "model_version": version,
                    "detector": "policy.budget", "status": "refused", "severity": "warn", "summary": text})
            log.warning("%s", text)
            return
    tid = trigger_id(dedupe)
    status = "awaiting_approval" if rule.rule.needs_approval else "pending"
    payload = {"id": tid, "dedupe_key": dedupe, "action": action, "model": model,
               "model_version": version, "rule": rule.id, "severity": rule.rule.severity,
               "reason": reason, "findings": list(finding_ids),
               "window": {"kind": kind, "index": index, "end_at": _iso(end_at)}}
    if repo.add_trigger(session, id=tid, dedupe_key=dedupe, model=model, model_version=version,
                        action=action, status=status, reason=reason,
                        finding_ids={"findings": list(finding_ids), "payload": payload}):
        res.triggers += 1
        if status == "pending":
            repo.add_outbox(session, message_id=tid, topic=topics.triggers, key=model, payload=payload)
        log.info("trigger %s (%s, %s) for %s/%s: %s", tid, action, status, model, version, reason)


def gap_metrics(differences: dict[str, dict[str, float | None]], skip: tuple[str, ...] = ()) -> dict[str, float | None]:
    """A fairness result's gaps as rules name them: ``<attribute>.<metric>_difference`` and the worst over the
    attributes, ``<metric>_difference`` (``FairnessResult.differences()`` in, metrics in ``skip`` left out)."""
    metrics: dict[str, float | None] = {}
    for attr, by_metric in differences.items():
        for metric, value in by_metric.items():
            if metric in skip:
                continue
            metrics[f"{attr}.{metric}_difference"] = value
            if value is not None:
                metrics[f"{metric}_difference"] = max(value, metrics.get(f"{metric}_difference") or 0.0)
    return metrics


def _budget_check(session: Session, budget: Budget, model: str, action: str) -> Any:
    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    model_today, fleet_today = repo.trigger_counts_since(session, day, model, action, tuple(budget.applies_to))
    return check_budget(budget, model=model, action=action, model_today=model_today, fleet_today=fleet_today)
