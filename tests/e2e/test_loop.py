"""The first loop, end to end: kafka-python -> real broker -> faust worker -> detector -> PostgreSQL -> relay
-> trigger on Kafka. Each test has its own topic namespace, consumer group and database."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest
from kafka.partitioner.default import murmur2

from opsloop.simulate import Scenario, events
from opsloop import wiring
from opsloop.settings import KafkaSettings, WorkerSettings
from tests.e2e.harness import Loop, publish_all, wait_for
from tests.helpers import MALFORMED, chunks, records

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.e2e]

SHIFTED = ("country", "x1", "x4")
SCENARIO = Scenario(n_events=12_000, drift_after=8_000, drifted=SHIFTED)
# default settings but a 5,000-event reference (events 0-4999); windows of 1000: #0..#6; the shift at event 8000
# drifts #3..#6
EXPECTED = [(f"credit-risk:1:drift.features:count:{i}", SHIFTED) for i in range(3, 7)]


@pytest.fixture
def loop(kafka_bootstrap: str, pg_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    lp = Loop(kafka_bootstrap, pg_url, tmp_path, extra_env={"OPSLOOP_WORKER_REFERENCE_SIZE": "5000"})
    yield lp
    lp.close()


def _values(sc: Scenario) -> list[tuple[str, bytes]]:
    return [(e.model.name, e.model_dump_json().encode()) for e in events(sc)]


def test_events_to_findings_to_one_trigger(loop: Loop) -> None:
    worker = loop.worker(relay=True)  # the default deployment: relay thread inside the worker process
    with loop.publisher() as pub:
        n = publish_all(pub, _values(SCENARIO), loop.topics.predictions)
    assert n >= 10_000
    loop.wait_applied(n)
    assert loop.findings() == EXPECTED, loop.logs()
    triggers = loop.read_topic(loop.topics.triggers, expect=1)
    assert len(triggers) == 1
    trig = triggers[0]
    assert trig["id"] and trig["value"]["id"] == trig["id"]
    assert trig["value"]["model"] == "credit-risk" and trig["value"]["action"] == "retrain"
    assert trig["value"]["findings"] == [EXPECTED[0][0]]
    every = loop.finding_keys()  # drift, and the values the shift sends beyond the reference's range
    assert {k.split(":")[2] for k in every} == {"drift.features", "quality.data"}
    findings = loop.read_topic(loop.topics.findings, expect=len(every))
    assert sorted(m["id"] for m in findings) == every
    assert loop.read_topic(loop.topics.dlq, timeout=5) == []
    assert worker.poll() is None


def test_malformed_events_dead_letter_and_findings_unchanged(loop: Loop) -> None:
    worker = loop.worker()
    loop.relay()
    values = _values(SCENARIO)
    mixed: list[tuple[str, bytes]] = []
    reasons: Counter[str] = Counter()
    for i, kv in enumerate(values):
        mixed.append(kv)
        if i % 200 == 99:
            bad, reason = MALFORMED[(i // 200) % len(MALFORMED)]
            mixed.append(("credit-risk", bad))
            reasons[reason] += 1
    with loop.publisher() as pub:
        n = publish_all(pub, mixed, loop.topics.predictions)
    loop.wait_applied(n)
    assert loop.findings() == EXPECTED, loop.logs()
    dead = loop.read_topic(loop.topics.dlq, expect=sum(reasons.values()))
    assert Counter(m["value"]["reason"] for m in dead) == reasons
    assert len({m["id"] for m in dead}) == len(dead)
    for m in dead:
        origin = m["value"]["origin"]
        assert origin["topic"] == loop.topics.predictions and origin["offset"] >= 0
        assert m["value"]["value_b64"]
    assert len(loop.read_topic(loop.topics.triggers, expect=1)) == 1
    assert worker.poll() is None, "the worker must keep going"


def test_sigkill_mid_stream_changes_nothing(loop: Loop) -> None:
    loop.relay()
    with loop.publisher() as pub:
        n = publish_all(pub, _values(SCENARIO), loop.topics.predictions)
    for stop_at in (3_500, 8_700):  # once in the warm-up, once right after the drift started
        w = loop.worker()
        wait_for(lambda: loop.applied_offsets() >= stop_at, 240, f"{stop_at} applied")
        loop.kill(w)
    loop.worker()
    loop.wait_applied(n)
    assert loop.findings() == EXPECTED, loop.logs()
    assert loop.trigger_count() == 1
    triggers = loop.read_topic(loop.topics.triggers, expect=1)
    assert len(triggers) == 1, triggers
    with loop.sessions() as s:
        from sqlalchemy import select

        from storage.models import ModelState, Window

        state = s.scalar(select(ModelState.state))
        assert state["events"] == n  # every event counted exactly once
        assert [w.window_index for w in s.scalars(select(Window).order_by(Window.window_index))] == list(range(7))


def _models_on_distinct_partitions(k: int, partitions: int) -> list[str]:
    chosen: dict[int, str] = {}
    i = 0
    while len(chosen) < k:
        name = f"model-{i}"
        p = (murmur2(name.encode()) & 0x7FFFFFFF) % partitions
        chosen.setdefault(p, name)
        i += 1
    return list(chosen.values())


def test_two_workers_split_models_and_agree_with_one(loop: Loop, tmp_path: Path) -> None:
    loop.extra_env["OPSLOOP_WORKER_REFERENCE_SIZE"] = "2000"
    models = _models_on_distinct_partitions(6, loop.partitions)
    scenarios = [replace(SCENARIO, model=m, n_events=5_000, drift_after=3_500, seed=i,
                         drifted=SHIFTED if i % 2 == 0 else ()) for i, m in enumerate(models)]
    w1, w2 = loop.worker(), loop.worker()
    loop.relay()

    def split() -> bool:
        last = [re.findall(r"assigned (\d+) partitions", p.read_text(errors="replace"))
                for p in tmp_path.glob("worker-*.log")]
        return len(last) == 2 and all(x and int(x[-1]) == loop.partitions // 2 for x in last)

    wait_for(split, 120, "both workers to share the partitions", interval=1)
    # interleave the models' events as apps would send them
    streams = [_values(sc) for sc in scenarios]
    mixed = [kv for group in zip(*streams) for kv in group]
    with loop.publisher() as pub:
        n = publish_all(pub, mixed, loop.topics.predictions)
    loop.wait_applied(n)
    assert w1.poll() is None and w2.poll() is None

    # the same events through one processor in this process, on SQLite
    from storage.db import make_engine, migrate, session_factory

    engine = make_engine(f"sqlite:///{tmp_path / 'single.db'}")
    migrate(engine)
    single = session_factory(engine)
    # the workers' own configuration, built the way `opsloop worker` builds it
    proc = wiring.processor(single, KafkaSettings(), WorkerSettings(reference_size=2000))
    for i, sc in enumerate(scenarios):  # one partition each, as keyed by model on the broker
        for batch in chunks(records(events(sc), partition=i), 700):
            proc.process(batch)
    from sqlalchemy import select

    from storage.models import Finding

    with single() as s:
        expected = sorted((f.finding_key, tuple(sorted(f.details["drifted_features"])))
                          for f in s.scalars(select(Finding).where(Finding.detector == "drift.features")))
    assert loop.findings() == expected
    # three drifting models; windows #1 (half shifted) and #2 (all shifted) of each
    assert len(expected) == 3 * 2
    assert loop.trigger_count() == 3

    worked = [p for p in sorted(tmp_path.glob("worker-*.log")) if "batch of" in p.read_text(errors="replace")]
    assert len(worked) == 2, "both workers must have applied batches"


def test_planted_bias_through_the_broker(loop: Loop) -> None:
    loop.extra_env["OPSLOOP_WORKER_REFERENCE_SIZE"] = "2000"
    biased = replace(SCENARIO, model="loans-biased", n_events=5_000, drift_after=10**9, drifted=(),
                     bias_against="b", bias=0.6, seed=3)
    fair = replace(biased, model="loans-fair", bias=0.0, seed=4)
    loop.worker(relay=True)
    mixed = [kv for pair in zip(_values(biased), _values(fair)) for kv in pair]
    with loop.publisher() as pub:
        n = publish_all(pub, mixed, loop.topics.predictions)
    loop.wait_applied(n)
    with loop.sessions() as s:
        from sqlalchemy import select

        from storage.models import Finding

        found = s.scalars(select(Finding).where(Finding.detector == "fairness.parity")).all()
    assert found and {f.model for f in found} == {"loans-biased"}
    for f in found:
        assert {(a["attribute"], a["groups"]["worst"]) for a in f.details["alerts"]} == {("group", "b")}
        assert "demographic_parity_difference" in {a["metric"] for a in f.details["alerts"]}
    published = loop.read_topic(loop.topics.findings, expect=len(found))
    assert {m["value"]["detector"] for m in published} == {"fairness.parity"}


def test_label_quality_degrades_halfway_through_the_broker(loop: Loop) -> None:
    from opsloop.simulate import LabelScenario, feedback

    loop.extra_env["OPSLOOP_WORKER_REFERENCE_SIZE"] = "2000"
    sc = replace(SCENARIO, model="churn", version="7", n_events=6_000, drift_after=10**9, drifted=())
    labels = LabelScenario(accuracy=0.92, degraded_accuracy=0.6, degrade_after=4_000)
    loop.worker(relay=True)
    with loop.publisher() as pub:
        n = publish_all(pub, _values(sc), loop.topics.predictions)
        n_fb = publish_all(pub, [("churn", f.model_dump_json().encode()) for f in feedback(sc, labels)],
                           loop.topics.feedback)
    loop.wait_applied(n)

    def labelled() -> int:
        from sqlalchemy import func, select

        from storage.models import PredictionLog

        with loop.sessions() as s:
            return int(s.scalar(select(func.count()).select_from(PredictionLog).where(
                PredictionLog.labelled_at.is_not(None))) or 0)

    wait_for(lambda: labelled() >= n_fb, 240, f"{n_fb} labels joined")
    with loop.sessions() as s:
        from sqlalchemy import select

        from storage.models import Finding

        found = s.scalars(select(Finding)).all()
    perf = {f.details["window_index"]: f.status for f in found if f.detector == "performance"}
    assert perf == {0: "ok", 1: "ok", 2: "degraded", 3: "degraded"}, perf
    adwin = [f for f in found if f.detector == "concept.adwin"]
    assert adwin and {(f.model, f.model_version) for f in adwin} == {("churn", "7")}
    assert not [f for f in found if f.detector == "drift.features"]
