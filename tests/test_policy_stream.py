"""Fairness and trigger policy in the stream, on the real databases: planted bias, small groups, flapping
detectors with racing workers, cooldown, budgets, approval."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest
from sqlalchemy import func, select

from opsloop.simulate import Scenario, events
from retrain.policies import Budget, parse_policies
from storage.models import Finding, OutboxMessage, Trigger
from streams.model_stream import StreamConfig
from streams.processor import BatchProcessor, ProcessorConfig
from streams.topics import Topics
from tests.helpers import chunks, records

CONFIG = ProcessorConfig(consumer_group="t", stream=StreamConfig(window_size=1000, reference_size=2000))


def _findings(sessions, detector: str):  # type: ignore[no-untyped-def]
    with sessions() as s:
        return s.scalars(select(Finding).where(Finding.detector == detector)).all()


def test_planted_bias_names_group_and_metric(sessions) -> None:  # type: ignore[no-untyped-def]
    sc = Scenario(n_events=5000, drift_after=10**9, drifted=(), bias_against="b", bias=0.6)
    proc = BatchProcessor(sessions, CONFIG)
    for b in chunks(records(events(sc)), 1000):
        proc.process(b)
    found = _findings(sessions, "fairness.parity")
    assert len(found) == 3  # every monitored window after the biased start
    for f in found:
        metrics = {a["metric"] for a in f.details["alerts"]}
        assert "demographic_parity_difference" in metrics
        assert all(a["attribute"] == "group" and a["groups"]["worst"] == "b" for a in f.details["alerts"])
    with sessions() as s:  # the default rule turns a fairness gap into an alert trigger
        assert {t.action for t in s.scalars(select(Trigger))} == {"alert"}


def test_no_bias_no_fairness_finding(sessions) -> None:  # type: ignore[no-untyped-def]
    proc = BatchProcessor(sessions, CONFIG)
    for b in chunks(records(events(Scenario(n_events=5000, drift_after=10**9, drifted=()))), 1000):
        proc.process(b)
    assert _findings(sessions, "fairness.parity") == []


def test_a_tiny_group_with_an_extreme_rate_never_alerts(sessions) -> None:  # type: ignore[no-untyped-def]
    evts = list(events(Scenario(n_events=4000, drift_after=10**9, drifted=())))
    # five members of group "c" in the monitored windows, all refused
    for i in range(2500, 4000, 300):
        e = evts[i]
        evts[i] = e.model_copy(update={"sensitive": {"group": "c"},
                                       "prediction": e.prediction.model_copy(update={"label": 0})})
    proc = BatchProcessor(sessions, CONFIG)
    for b in chunks(records(evts), 1000):
        proc.process(b)
    assert _findings(sessions, "fairness.parity") == []


STORM_POLICY = """
version: 1
defaults:
  windows: {kind: count, size: 100}
  budgets: {per_model_per_day: 3, fleet_per_day: 20}
models:
  "*":
    rules:
      - name: drift-retrain
        when: {detector: drift.features, status: drift}
        count: 1
        in_last: 2
        action: retrain
        cooldown: 10m
"""


@pytest.mark.parametrize("workers", [3])
def test_trigger_storm_with_racing_workers(sessions, workers: int) -> None:  # type: ignore[no-untyped-def]
    # a detector flapping above and below its threshold for 240 windows of 100 events (200 ms apart)
    sc = Scenario(n_events=500 + 240 * 100, drift_after=500, flap_every=100, drifted=("x1", "x4", "country"))
    recs = records(events(sc))
    cfg = replace(CONFIG, stream=replace(CONFIG.stream, reference_size=500),
                  policies=parse_policies(STORM_POLICY))
    procs = [BatchProcessor(sessions, cfg) for _ in range(workers)]
    batches = chunks(recs, 250)

    def run(p: BatchProcessor) -> None:  # every worker races over every batch, as in a rebalance overlap
        for b in batches:
            p.process(b)

    threads = [threading.Thread(target=run, args=(p,)) for p in procs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with sessions() as s:
        triggers = s.scalars(select(Trigger).order_by(Trigger.created_at)).all()
        dedupe = [t.dedupe_key for t in triggers]
        refused = s.scalars(select(Finding).where(Finding.detector == "policy.budget")).all()
        drift = s.scalar(select(func.count()).select_from(Finding).where(Finding.detector == "drift.features"))
        published = s.scalars(select(OutboxMessage).where(OutboxMessage.topic == Topics().triggers)).all()
    assert drift == 120  # every other window drifted, each stored once
    assert len(dedupe) == len(set(dedupe)) == 3  # the daily budget stops the storm at 3 ...
    assert refused and "budget: 3 retrain triggers for credit-risk today (limit 3)" in refused[0].summary
    assert len(published) == 3
    windows = sorted(t.payload["window"]["index"] for t in published)
    # ... and a cooldown of 10 minutes (30 windows of 100 events 200 ms apart) separates those let through
    assert all(b - a >= 30 for a, b in zip(windows, windows[1:]))


APPROVAL_POLICY = """
version: 1
defaults:
  windows: {kind: count, size: 1000}
models:
  credit-risk:
    rules:
      - name: drift-retrain-approved
        when: {detector: drift.features, status: drift}
        action: retrain
        approval: true
"""


def test_approval_holds_the_trigger_back(sessions) -> None:  # type: ignore[no-untyped-def]
    cfg = replace(CONFIG, policies=parse_policies(APPROVAL_POLICY))
    proc = BatchProcessor(sessions, cfg)
    for b in chunks(records(events(Scenario(n_events=5000, drift_after=3000))), 1000):
        proc.process(b)
    with sessions() as s:
        trig = s.scalars(select(Trigger)).one()
        assert trig.status == "awaiting_approval"
        assert s.scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.topic == Topics().triggers)) == 0


def test_budget_defaults_apply_without_policy_file() -> None:
    assert CONFIG.stream.budget == Budget()


def test_approve_publishes_and_reject_does_not(sessions) -> None:  # type: ignore[no-untyped-def]
    from storage import repo

    cfg = replace(CONFIG, policies=parse_policies(APPROVAL_POLICY))
    proc = BatchProcessor(sessions, cfg)
    for b in chunks(records(events(Scenario(n_events=5000, drift_after=3000))), 1000):
        proc.process(b)
    with sessions() as s, s.begin():
        tid = s.scalars(select(Trigger.id)).one()
        assert repo.decide_trigger(s, "nope", approve=True, triggers_topic=Topics().triggers, by="x") is None
        assert repo.decide_trigger(s, tid, approve=True, triggers_topic=Topics().triggers, by="ana") == "approved"
    with sessions() as s, s.begin():
        assert repo.decide_trigger(s, tid, approve=False, triggers_topic=Topics().triggers, by="bo") is None
        msg = s.scalars(select(OutboxMessage).where(OutboxMessage.topic == Topics().triggers)).one()
        assert msg.message_id == tid and msg.payload["approved_by"] == "ana"
        assert s.get(Trigger, tid).status == "pending"


FAIRNESS_POLICY = """
version: 1
defaults:
  windows: {kind: count, size: 500}
models:
  "*":
    rules:
      - name: parity-gap
        when: {detector: fairness.parity, metric: selection_rate_difference, above: 0.1}
        count: 3
        in_last: 5
        action: alert
        cooldown: 1d
"""


def test_fairness_gap_in_3_of_5_windows_drives_a_rule(sessions) -> None:  # type: ignore[no-untyped-def]
    sc = Scenario(n_events=2000 + 6 * 500, drift_after=10**9, drifted=(), bias_against="b", bias=0.6)
    proc = BatchProcessor(sessions, replace(CONFIG, policies=parse_policies(FAIRNESS_POLICY)))
    for b in chunks(records(events(sc)), 500):
        proc.process(b)
    with sessions() as s:
        trig = s.scalars(select(Trigger)).all()
    assert len(trig) == 1 and trig[0].action == "alert"
    assert trig[0].dedupe_key.endswith("models/*/parity-gap:count:2")  # the third biased window fires it
    assert "fairness.parity selection_rate_difference" in trig[0].reason
