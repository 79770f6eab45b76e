"""Late labels on the real databases: join by prediction_id, revised performance findings, ADWIN."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from sqlalchemy import func, select

from opsloop.simulate import LabelScenario, Scenario, events, feedback
from storage.models import Finding, OutboxMessage, PendingLabel, PredictionLog
from streams.model_stream import StreamConfig
from streams.processor import BatchProcessor, ProcessorConfig
from streams.topics import Topics
from tests.helpers import chunks, records

TOPICS = Topics()
CONFIG = ProcessorConfig(consumer_group="t", stream=StreamConfig(window_size=1000, reference_size=2000))
SC = Scenario(n_events=4000, drift_after=10**9, drifted=())


def _fb(evts, start: int = 0):  # type: ignore[no-untyped-def]
    return records(evts, partition=0, start_offset=start, topic=TOPICS.feedback)


def _perf(sessions, idx: int):  # type: ignore[no-untyped-def]
    with sessions() as s:
        return s.scalars(select(Finding).where(Finding.detector == "performance",
                                               Finding.finding_key.endswith(f":count:{idx}"))).all()


def test_performance_finding_appears_is_revised_and_exists_once(sessions) -> None:  # type: ignore[no-untyped-def]
    proc = BatchProcessor(sessions, CONFIG)
    for b in chunks(records(events(SC)), 500):
        proc.process(b)
    labels = list(feedback(SC, LabelScenario(accuracy=0.9, delay=timedelta(minutes=10))))
    assert all(f.occurred_at - e.occurred_at == timedelta(minutes=10) for f, e in zip(labels, events(SC)))
    ref, w0 = labels[:2000], labels[2000:3000]
    proc.process(_fb(ref + w0[:150]))
    assert _perf(sessions, 0) == []  # 150 labels: too few to judge the window, no finding yet
    proc.process(_fb(w0[150:400], start=2150))
    first = _perf(sessions, 0)
    assert len(first) == 1 and first[0].revision == 0 and first[0].status == "ok"
    assert first[0].details["result"]["n_labelled"] == 400
    proc.process(_fb(w0[400:], start=2400))
    revised = _perf(sessions, 0)
    assert len(revised) == 1 and revised[0].revision == 1 and revised[0].id == first[0].id
    assert revised[0].details["result"]["n_labelled"] == 1000
    assert abs(revised[0].details["result"]["label_coverage"] - 1.0) < 1e-12
    assert 0.85 < revised[0].details["result"]["value"] < 0.95


def test_degraded_labels_give_performance_and_adwin_findings(sessions) -> None:  # type: ignore[no-untyped-def]
    proc = BatchProcessor(sessions, CONFIG)
    for b in chunks(records(events(SC)), 500):
        proc.process(b)
    labels = list(feedback(SC, LabelScenario(accuracy=0.92, degraded_accuracy=0.6, degrade_after=3000)))
    for i, b in enumerate(chunks(_fb(labels), 400)):
        proc.process(b)
    w0, w1 = _perf(sessions, 0), _perf(sessions, 1)
    assert w0[0].status == "ok" and w1[0].status == "degraded" and w1[0].severity == "critical"
    with sessions() as s:
        adwin = s.scalars(select(Finding).where(Finding.detector == "concept.adwin")).all()
        assert adwin and all(f.model == "credit-risk" and f.model_version == "1" for f in adwin)
        assert min(f.details["labelled_event"] for f in adwin) > 3000  # after the degradation began
        published = {m.payload["detector"] for m in s.scalars(select(OutboxMessage).where(
            OutboxMessage.topic == TOPICS.findings))}
        drift = s.scalar(select(func.count()).select_from(Finding).where(Finding.detector == "drift.features"))
    assert {"performance", "concept.adwin"} <= published
    assert drift == 0  # no feature moved


def test_early_late_and_corrected_labels(sessions) -> None:  # type: ignore[no-untyped-def]
    sc = replace(SC, n_events=2500)
    labels = list(feedback(sc, LabelScenario(delay=timedelta(minutes=5))))
    proc = BatchProcessor(sessions, replace(CONFIG, labels=replace(CONFIG.labels, label_delay_s=3600)))
    proc.process(_fb(labels[:100]))  # labels before their predictions: kept pending
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(PendingLabel)) == 100
    for b in chunks(records(events(sc)), 500):
        proc.process(b)
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(PendingLabel)) == 0
        assert s.scalar(select(func.count()).select_from(PredictionLog).where(
            PredictionLog.labelled_at.is_not(None))) == 100
    late = [f.model_copy(update={"occurred_at": f.occurred_at + timedelta(hours=2)}) for f in labels[100:200]]
    res = proc.process(_fb(late, start=100))
    assert res.labels_too_late == 100
    corrected = [f.model_copy(update={"label": 1 - int(f.label)}) for f in labels[:50]]  # type: ignore[arg-type]
    res = proc.process(_fb(corrected, start=200))
    assert res.labels_applied == 50
    with sessions() as s:
        labelled = s.scalars(select(PredictionLog).where(PredictionLog.labelled_at.is_not(None))).all()
        assert len(labelled) == 100  # a correction replaces, it does not add
        by_id = {p.prediction_id: p.y_true for p in labelled}
    assert all(by_id[f.prediction_id] == str(f.label) for f in corrected)


def _missed_positives_in_b(sessions, config: ProcessorConfig) -> None:  # type: ignore[no-untyped-def]
    """Predictions, then labels that miss half of group b's positives: an equal-opportunity gap."""
    sc = replace(SC, n_events=5000)
    proc = BatchProcessor(sessions, config)
    for b in chunks(records(events(sc)), 500):
        proc.process(b)
    fair = LabelScenario(accuracy=1.0, missed_positives_in="b", missed_rate=0.5)
    for b in chunks(_fb(list(feedback(sc, fair))), 1000):
        proc.process(b)


def test_label_based_fairness_gap_is_found_once_labels_arrive(sessions) -> None:  # type: ignore[no-untyped-def]
    _missed_positives_in_b(sessions, CONFIG)
    with sessions() as s:
        found = s.scalars(select(Finding).where(Finding.detector == "fairness.labels")).all()
    assert found and all(f.status == "alert" for f in found)
    for f in found:
        gaps = {(a["metric"], a["groups"]["worst"]) for a in f.details["alerts"]}
        assert ("equal_opportunity_difference", "b") in gaps
    assert {f.model for f in found} == {"credit-risk"}


def test_no_label_fairness_finding_without_a_gap(sessions) -> None:  # type: ignore[no-untyped-def]
    sc = replace(SC, n_events=5000)
    proc = BatchProcessor(sessions, CONFIG)
    for b in chunks(records(events(sc)), 500):
        proc.process(b)
    for b in chunks(_fb(list(feedback(sc, LabelScenario(accuracy=0.9)))), 1000):
        proc.process(b)
    with sessions() as s:
        assert s.scalars(select(Finding).where(Finding.detector == "fairness.labels")).all() == []


def test_performance_rows_of_many_windows_are_read_once_and_created_once(sessions) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import event

    from storage.models import WindowPerformance
    from streams.labels import _Windows

    with sessions.begin() as s:
        s.add(WindowPerformance(model="m", model_version="1", kind="pane", window_index=1, revision=3,
                                n_predictions=7, state={"cls": {"x": 1}}))
    statements: list[str] = []
    with sessions.begin() as s:
        engine = s.get_bind()
        listen = lambda *a: statements.append(a[2])  # (conn, cursor, statement, ...)
        event.listen(engine, "before_cursor_execute", listen)
        try:
            perf = _Windows(s, "m", "1")
            perf.load([("pane", i) for i in range(5)])
            assert perf.get("pane", 1) == {"cls": {"x": 1}, "n_predictions": 7}
            assert perf.get("pane", 3) == {"n_predictions": 0}
            reads = [q for q in statements if q.lstrip().upper().startswith("SELECT")]
            assert len(reads) == 1  # get() after load() reads nothing more
            for i in range(5):
                perf.get("pane", i)["n_predictions"] += 10
            perf.save()
        finally:
            event.remove(engine, "before_cursor_execute", listen)
        inserts = [q for q in statements if q.lstrip().upper().startswith("INSERT")]
        assert len(inserts) == 1  # the four new windows in one statement
    with sessions() as s:
        rows = {r.window_index: (r.revision, r.n_predictions) for r in s.scalars(select(WindowPerformance))}
    assert rows == {0: (1, 10), 1: (4, 17), 2: (1, 10), 3: (1, 10), 4: (1, 10)}


def test_a_performance_row_created_meanwhile_rolls_the_batch_back(sessions) -> None:  # type: ignore[no-untyped-def]
    import pytest

    from storage.models import WindowPerformance
    from storage.repo import StaleStateError
    from streams.labels import _Windows

    with sessions.begin() as s:
        perf = _Windows(s, "m", "1")
        perf.load([("pane", 0), ("pane", 1)])  # neither exists yet
        with sessions.begin() as other:  # another worker creates one of them first
            other.add(WindowPerformance(model="m", model_version="1", kind="pane", window_index=1, revision=1,
                                        n_predictions=1, state={}))
        perf.get("pane", 0)["n_predictions"] += 1
        perf.get("pane", 1)["n_predictions"] += 1
        with pytest.raises(StaleStateError, match="created concurrently"):
            perf.save()
        s.rollback()
    with sessions() as s:
        assert {r.window_index: r.n_predictions for r in s.scalars(select(WindowPerformance))} == {1: 1}


LABEL_RULES = """
version: 1
models:
  credit-risk:
    rules:
      - name: perf-retrain
        when: {detector: performance, status: degraded}
        action: retrain
      - name: adwin-alert
        when: {detector: concept.adwin, status: drift}
        action: alert
        cooldown: 1d
"""


def test_rules_on_label_based_findings_trigger_when_labels_arrive(sessions) -> None:  # type: ignore[no-untyped-def]
    """A retrain on a degraded window and an alert on ADWIN: decided as labels arrive, once per window (revisions
    of the same window's verdict do not fire again), with the rules' states kept apart from the window closes'."""
    from retrain.policies import parse_policies
    from storage.models import ModelState, Trigger, WindowPerformance

    proc = BatchProcessor(sessions, replace(CONFIG, policies=parse_policies(LABEL_RULES)))
    for b in chunks(records(events(SC)), 500):
        proc.process(b)
    labels = list(feedback(SC, LabelScenario(accuracy=0.92, degraded_accuracy=0.6, degrade_after=3000)))
    for b in chunks(_fb(labels), 400):  # window 1's verdict is revised by each later chunk
        proc.process(b)
    assert _perf(sessions, 1)[0].status == "degraded" and _perf(sessions, 1)[0].revision >= 1
    with sessions() as s:
        triggers = s.scalars(select(Trigger).order_by(Trigger.created_at)).all()
        retrain = [t for t in triggers if t.action == "retrain"]
        alerts = [t for t in triggers if t.action == "alert"]
        assert [t.dedupe_key for t in retrain] == ["credit-risk:1:models/credit-risk/perf-retrain:count:1"]
        assert retrain[0].status == "pending" and retrain[0].model_version == "1"
        assert retrain[0].finding_ids["findings"] == ["credit-risk:1:performance:count:1"]
        assert "performance degraded" in retrain[0].reason
        assert len(alerts) == 1 and alerts[0].dedupe_key.startswith("credit-risk:1:models/credit-risk/adwin-alert:")
        assert alerts[0].finding_ids["findings"][0].startswith("credit-risk:1:concept.adwin:")  # within a day
        published = [m.payload["id"] for m in s.scalars(select(OutboxMessage).where(
            OutboxMessage.topic == TOPICS.triggers))]
        assert published == [t.id for t in triggers]
        # the label rules' memory lives with the labels, not in the window closes' policy states
        row = s.scalar(select(WindowPerformance).where(WindowPerformance.kind == "rules"))
        assert set(row.state["policies"]) == {"models/credit-risk/perf-retrain", "models/credit-risk/adwin-alert"}
        state = s.scalar(select(ModelState.state).where(ModelState.model == "credit-risk"))
        assert not set(state.get("rules", {})) & set(row.state["policies"])


def test_without_label_rules_labels_trigger_nothing(sessions) -> None:  # type: ignore[no-untyped-def]
    from storage.models import Trigger

    proc = BatchProcessor(sessions, CONFIG)  # the default rules: drift retrains, fairness alerts
    for b in chunks(records(events(SC)), 500):
        proc.process(b)
    labels = list(feedback(SC, LabelScenario(accuracy=0.92, degraded_accuracy=0.6, degrade_after=3000)))
    for b in chunks(_fb(labels), 400):
        proc.process(b)
    assert _perf(sessions, 1)[0].status == "degraded"
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Trigger)) == 0


def test_a_label_rule_counts_windows_not_revisions(sessions) -> None:  # type: ignore[no-untyped-def]
    """`count: 2` needs two windows judged degraded: window 1's verdict revised again and again is one."""
    from retrain.policies import parse_policies
    from storage.models import Trigger

    two = LABEL_RULES.replace("        action: retrain\n", "        action: retrain\n        count: 2\n", 1)
    proc = BatchProcessor(sessions, replace(CONFIG, policies=parse_policies(two)))
    for b in chunks(records(events(SC)), 500):
        proc.process(b)
    labels = list(feedback(SC, LabelScenario(accuracy=0.92, degraded_accuracy=0.6, degrade_after=3000)))
    for b in chunks(_fb(labels), 400):
        proc.process(b)
    assert _perf(sessions, 1)[0].revision >= 1  # judged, then revised
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Trigger).where(Trigger.action == "retrain")) == 0


FAIRNESS_RULES = """
version: 1
models:
  credit-risk:
    rules:
      - name: gap
        when: {detector: fairness.labels, status: alert}
        action: alert
        cooldown: 0s
      - name: tpr
        when: {detector: fairness.labels, metric: true_positive_rate_difference, above: 0.2}
        action: alert
        cooldown: 0s
"""


def test_rules_on_label_based_fairness(sessions) -> None:  # type: ignore[no-untyped-def]
    """Missed positives in group b open an equal-opportunity gap once labels arrive: both rules fire, once per
    window whose verdict turned to alert, naming that window's finding."""
    from retrain.policies import parse_policies
    from storage.models import Trigger

    _missed_positives_in_b(sessions, replace(CONFIG, policies=parse_policies(FAIRNESS_RULES)))
    with sessions() as s:
        found = {f.finding_key for f in s.scalars(select(Finding).where(Finding.detector == "fairness.labels"))}
        triggers = s.scalars(select(Trigger)).all()
    by_rule: dict[str, list[str]] = {"gap": [], "tpr": []}
    for t in triggers:
        rule = t.dedupe_key.split(":")[2].rsplit("/", 1)[1]
        by_rule[rule].append(t.finding_ids["findings"][0])
    assert found and sorted(by_rule["gap"]) == sorted(found)  # one per window with a gap, each naming its finding
    assert by_rule["tpr"] and set(by_rule["tpr"]) <= found
