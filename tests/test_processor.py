"""The batch processor on the real databases, without a broker: windows, drift, dead letters, replays."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from sqlalchemy import func, select

from opsloop.simulate import Scenario, events
from storage.models import Finding, ModelState, OutboxMessage, PartitionOffset, Trigger, Window
from streams import topics
from streams.model_stream import StreamConfig
from streams.processor import BatchProcessor, ProcessorConfig, Record
from tests.helpers import MALFORMED, chunks, records

CONFIG = ProcessorConfig(
    consumer_group="test",
    stream=StreamConfig(window_kind="count", window_size=1000, reference_size=2000),
)
SCENARIO = Scenario(n_events=8000, drift_after=5000, drifted=("x1", "x4", "country"))


def _snapshot(sessions):  # type: ignore[no-untyped-def]
    with sessions() as s:
        findings = sorted((f.finding_key, tuple(f.details["drifted_features"]))
                          for f in s.scalars(select(Finding).where(Finding.detector == "drift.features")))
        triggers = sorted(t.dedupe_key for t in s.scalars(select(Trigger)))
        windows = s.scalar(select(func.count()).select_from(Window))
        outbox = sorted(m.message_id for m in s.scalars(select(OutboxMessage)))
    return findings, triggers, windows, outbox


def test_drift_names_exactly_the_shifted_features(sessions) -> None:  # type: ignore[no-untyped-def]
    proc = BatchProcessor(sessions, CONFIG)
    for batch in chunks(records(events(SCENARIO)), 500):
        proc.process(batch)
    findings, triggers, windows, outbox = _snapshot(sessions)
    assert windows == 6  # 8000 events - 2000 reference = 6 windows of 1000
    assert len(findings) == 3  # the three windows after the shift at event 5000
    for _key, feats in findings:
        assert set(feats) == {"x1", "x4", "country"}
    assert len(triggers) == 1  # cooldown of an hour of event time: one trigger for the episode
    assert sum(m.startswith("dlq:") for m in outbox) == 0
    with sessions() as s:
        trig = s.scalars(select(OutboxMessage).where(OutboxMessage.topic == topics.TRIGGERS)).one()
        assert trig.payload["model"] == "credit-risk" and trig.payload["action"] == "retrain"
        # the trigger names the findings of its rule's detector only, not the window's quality finding
        assert trig.payload["findings"] == ["credit-risk:1:drift.features:count:3"]
        # a 1-sd shift against a 2,000-row reference also sends values beyond the reference's range
        quality = s.scalars(select(Finding).where(Finding.detector == "quality.data")).all()
    assert sorted(f.details["window_index"] for f in quality) == [3, 4, 5]
    for f in quality:
        assert {(p["check"], p["feature"]) for p in f.details["problems"]} == {("out_of_range", "x1"),
                                                                              ("out_of_range", "x4")}


def test_no_drift_without_shift(sessions) -> None:  # type: ignore[no-untyped-def]
    proc = BatchProcessor(sessions, CONFIG)
    for batch in chunks(records(events(replace(SCENARIO, drifted=()))), 700):
        proc.process(batch)
    findings, triggers, windows, _ = _snapshot(sessions)
    assert windows == 6 and findings == [] and triggers == []


def test_replayed_batches_never_count_twice(sessions) -> None:  # type: ignore[no-untyped-def]
    recs = records(events(SCENARIO))
    proc = BatchProcessor(sessions, CONFIG)
    for batch in chunks(recs[:4300], 600):
        proc.process(batch)
    # a crash: a new processor (empty caches) gets everything from offset 3000 again, in other batch sizes
    proc2 = BatchProcessor(sessions, CONFIG)
    skipped = 0
    for batch in chunks(recs[3000:], 450):
        skipped += proc2.process(batch).skipped
    assert skipped == 1300
    replayed = _snapshot(sessions)

    clean_db = sessions  # same fixture type; compare with a clean straight run below
    with clean_db() as s:
        n_events = s.scalar(select(ModelState.state)).get("events")
    assert n_events == len(recs)
    assert replayed[2] == 6 and len(replayed[0]) == 3 and len(replayed[1]) == 1


def test_a_batch_another_worker_commits_between_our_reads_is_not_applied_twice(sessions, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Worker A reads the offsets, worker B commits the same records, then A reads the model state (B's,
    which already holds them). PostgreSQL's READ COMMITTED lets each statement see what was committed when it
    started, so A must not apply those records on top of B's state: the offsets are checked again on write."""
    import threading

    from storage import repo

    recs = records(events(SCENARIO))
    a, b = BatchProcessor(sessions, CONFIG), BatchProcessor(sessions, CONFIG)
    for batch in chunks(recs[:3000], 1000):
        a.process(batch)
    b.process(recs[:3000])  # all skipped: b only learns the offsets
    caller = threading.current_thread()
    real = repo.load_revisions
    interleaved: list[int] = []

    def b_commits_first(session, keys):  # type: ignore[no-untyped-def]
        if threading.current_thread() is caller and not interleaved:
            worker = threading.Thread(target=lambda: interleaved.append(b.process(recs[3000:4000]).applied))
            worker.start()
            worker.join()
        return real(session, keys)

    monkeypatch.setattr(repo, "load_revisions", b_commits_first)
    result = a.process(recs[3000:4000])
    assert interleaved == [1000]  # B applied the records first ...
    assert result.attempts == 2 and result.applied == 0 and result.skipped == 1000  # ... A rolled back, then skipped
    with sessions() as s:
        assert s.scalar(select(ModelState.state))["events"] == 4000
        assert s.scalar(select(func.count()).select_from(Window)) == 2


def test_malformed_events_dead_letter_with_reason_and_origin(sessions) -> None:  # type: ignore[no-untyped-def]
    good = [e.model_dump_json().encode() for e in events(SCENARIO)]
    mixed: list[bytes] = []
    expected: dict[int, str] = {}
    for i, value in enumerate(good):
        mixed.append(value)
        if i % 500 == 17:
            bad, reason = MALFORMED[(i // 500) % len(MALFORMED)]
            expected[len(mixed)] = reason
            mixed.append(bad)
    recs = [Record(topics.PREDICTIONS, 2, i, b"k", v) for i, v in enumerate(mixed)]
    proc = BatchProcessor(sessions, CONFIG)
    for batch in chunks(recs, 512):
        proc.process(batch)
    with sessions() as s:
        dlq = {m.payload["origin"]["offset"]: m.payload for m in
               s.scalars(select(OutboxMessage).where(OutboxMessage.topic == topics.DLQ))}
        offsets = {(o.topic, o.partition): o.offset for o in s.scalars(select(PartitionOffset))}
    assert {k: v["reason"] for k, v in dlq.items()} == expected
    for off, payload in dlq.items():
        assert payload["origin"] == {"topic": topics.PREDICTIONS, "partition": 2, "offset": off, "timestamp_ms": None}
        assert payload["value_b64"]
    assert offsets[(topics.PREDICTIONS, 2)] == len(mixed) - 1
    findings, triggers, windows, _ = _snapshot(sessions)
    assert windows == 6 and len(findings) == 3 and len(triggers) == 1


def test_dead_letter_reason_never_echoes_input(sessions) -> None:  # type: ignore[no-untyped-def]
    secret = "jane.doe@example.com"
    bad = json.dumps({"schema_version": 1, "occurred_at": "2026-01-01T00:00:00Z",
                      "model": {"name": "m", "version": "1"}, "features": {"email": [secret]},
                      "prediction": {"label": 1}}).encode()
    BatchProcessor(sessions, CONFIG).process([Record(topics.PREDICTIONS, 0, 0, None, bad)])
    with sessions() as s:
        payload = s.scalars(select(OutboxMessage)).one().payload
    assert secret not in json.dumps(payload["errors"])


@pytest.mark.parametrize("window_kind", ["time"])
def test_event_time_windows(sessions, window_kind: str) -> None:  # type: ignore[no-untyped-def]
    cfg = replace(CONFIG, stream=replace(CONFIG.stream, window_kind=window_kind, window_seconds=200.0,
                                         allowed_lateness_s=10.0))
    proc = BatchProcessor(sessions, cfg)
    for batch in chunks(records(events(SCENARIO)), 500):
        proc.process(batch)
    with sessions() as s:
        ws = s.scalars(select(Window).order_by(Window.window_index)).all()
        assert all(w.kind == "time" for w in ws)
        # 200 ms between events: a 200 s window holds 1000 events; the reference takes the first 2000 events
        assert [w.n_events for w in ws] == [1000] * len(ws)
        assert len(ws) == 5  # the last window is still open (the watermark has not passed its end)
        assert all(w.end_at is not None and (w.end_at - w.start_at).total_seconds() == 200 for w in ws)
        drift_windows = sorted(f.details["window_index"]
                               for f in s.scalars(select(Finding).where(Finding.detector == "drift.features")))
    assert len(drift_windows) == 2


def test_sliding_windows_equal_tumbling_ones_on_the_same_rows(sessions) -> None:  # type: ignore[no-untyped-def]
    """Every 10th sliding window covers exactly one tumbling window: the same statistics (counts are exact;
    only float sums of means may differ in the last bits)."""
    sliding = replace(CONFIG, consumer_group="s", stream=replace(CONFIG.stream, window_kind="sliding"))
    proc_s, proc_t = BatchProcessor(sessions, sliding), BatchProcessor(sessions, replace(CONFIG, consumer_group="c"))
    recs = records(events(replace(SCENARIO, model="slide")))
    for batch in chunks(recs, 333):
        proc_s.process(batch)
    for batch in chunks(records(events(replace(SCENARIO, model="tumble"))), 500):
        proc_t.process(batch)
    with sessions() as s:
        slid = {w.window_index: w for w in s.scalars(select(Window).where(Window.kind == "sliding"))}
        tumb = {w.window_index: w for w in s.scalars(select(Window).where(Window.kind == "count"))}
        drift_sliding = s.scalars(select(Finding).where(Finding.model == "slide",
                                                        Finding.detector == "drift.features")).all()
    # 6000 monitored events, panes of 100: the first full window after 10 panes, then one per pane
    assert len(slid) == 60 - 10 + 1
    for t_idx, t in tumb.items():
        s_w = slid[t_idx * 10]
        assert s_w.n_events == t.n_events == 1000
        a, b = s_w.stats["drift"]["features"], t.stats["drift"]["features"]
        assert (a["name"], a["status"]) == (b["name"], b["status"])
        for k in ("statistic", "p_value", "effect_value"):
            assert a[k] == pytest.approx(b[k], rel=1e-12, abs=1e-15)
    # the shift at event 5000 (monitored event 3000) is seen as soon as enough of a window has moved
    first = min(f.details["window_index"] for f in drift_sliding)
    assert 20 < first <= 30


def test_slices_are_monitored_on_their_own(sessions) -> None:  # type: ignore[no-untyped-def]
    proc = BatchProcessor(sessions, replace(CONFIG, slice_by=("device",)))
    for batch in chunks(records(events(replace(SCENARIO, drifted=("x1",)))), 500):
        proc.process(batch)
    with sessions() as s:
        versions = {v for (v,) in s.execute(select(Window.model_version).distinct())}
        sliced = s.scalars(select(Finding).where(Finding.model_version == "1|device=ios",
                                                 Finding.detector == "drift.features")).all()
    # "web" (20 % of 8000 events) is still in its warm-up of 2000 events: no window yet
    assert versions == {"1", "1|device=ios", "1|device=android"}
    assert sliced and all(f.details["drifted_features"] == ["x1"] for f in sliced)


def test_nul_characters_dead_letter_instead_of_stalling(sessions) -> None:  # type: ignore[no-untyped-def]
    e = next(events(SCENARIO))
    bad = e.model_copy(update={"model": e.model.model_copy(update={"name": "cr\x00edit"})}).model_dump_json().encode()
    assert b"\\u0000" in bad
    res = BatchProcessor(sessions, CONFIG).process([Record(topics.PREDICTIONS, 0, 0, None, bad)])
    assert res.dead_lettered == 1 and res.reasons == {"invalid_characters": 1}


def _window_stats(sessions, model: str, kind: str) -> dict[int, dict]:  # type: ignore[no-untyped-def]
    with sessions() as s:
        rows = s.scalars(select(Window).where(Window.model == model, Window.kind == kind)).all()
        return {w.window_index: (w.n_events, w.stats["drift"]["features"], w.stats.get("prediction_drift"))
                for w in rows}


@pytest.mark.parametrize("kind", ["sliding", "count", "time"])
def test_a_worker_restarted_at_every_batch_judges_the_same_windows(sessions, kind: str) -> None:  # type: ignore[no-untyped-def]
    """Open windows live in memory between batches; a fresh processor restores them from the stored state."""
    cfg = replace(CONFIG, stream=replace(CONFIG.stream, window_kind=kind, window_seconds=60.0))
    steady = BatchProcessor(sessions, replace(cfg, consumer_group="steady"))
    for batch in chunks(records(events(replace(SCENARIO, model="steady", n_events=5000))), 250):
        steady.process(batch)
    for batch in chunks(records(events(replace(SCENARIO, model="restarted", n_events=5000))), 250):
        BatchProcessor(sessions, replace(cfg, consumer_group="restarted")).process(batch)
    a, b = _window_stats(sessions, "steady", kind), _window_stats(sessions, "restarted", kind)
    assert a and a.keys() == b.keys()
    for idx in a:
        (n1, s1, p1), (n2, s2, p2) = a[idx], b[idx]
        assert n1 == n2
        assert [s1[k] for k in ("name", "statistic", "p_value", "status")] == \
            [s2[k] for k in ("name", "statistic", "p_value", "status")]
        assert p1 is not None and p1["drifted_features"] == p2["drifted_features"]


def test_warmup_rows_wait_in_their_own_table_and_go_when_the_reference_is_built(sessions) -> None:  # type: ignore[no-untyped-def]
    from storage.models import Reference, WarmupRow

    proc = BatchProcessor(sessions, CONFIG)
    recs = records(events(replace(SCENARIO, model="warm", n_events=2500)))
    proc.process(recs[:1500])
    with sessions() as s:
        state = s.scalars(select(ModelState).where(ModelState.model == "warm")).one().state
        assert state["phase"] == "warmup" and state["warmup_n"] == 1500 and "warmup_rows" not in state
        assert s.scalar(select(func.count()).select_from(WarmupRow).where(WarmupRow.model == "warm")) == 1500
    proc.process(recs[1500:])
    with sessions() as s:
        state = s.scalars(select(ModelState).where(ModelState.model == "warm")).one().state
        assert state["phase"] == "monitor"
        assert s.scalar(select(func.count()).select_from(WarmupRow).where(WarmupRow.model == "warm")) == 0
        ref = s.scalars(select(Reference).where(Reference.model == "warm")).one()
        assert ref.n_rows == 2000
        assert set(ref.profile["predictions"]["features"]) == {"label", "p:1"}


def test_a_state_saved_with_warmup_rows_inside_still_loads(sessions) -> None:  # type: ignore[no-untyped-def]
    """Workers before the warmup_rows table kept the rows in the state: they move to the table."""
    from storage import repo

    evs = list(events(replace(SCENARIO, model="legacy", n_events=3000)))
    old_state = {"phase": "warmup", "warmup_rows": [dict(e.features) for e in evs[:1200]], "events": 1200,
                 "late_dropped": 0, "policy": None, "windows": {}, "sensitive": ["group"]}
    with sessions() as s, s.begin():
        repo.save_state(s, ("legacy", "1"), old_state, None)
    recs = records(evs)
    BatchProcessor(sessions, CONFIG).process(recs[1200:])
    with sessions() as s:
        state = s.scalars(select(ModelState).where(ModelState.model == "legacy")).one().state
        windows = s.scalars(select(Window).where(Window.model == "legacy")).all()
    assert state["phase"] == "monitor" and state["events"] == 3000
    assert [w.window_index for w in windows] == [0] and windows[0].n_events == 1000


def test_prediction_drift_is_its_own_finding(sessions) -> None:  # type: ignore[no-untyped-def]
    """The outputs move (the model's logit shifts) while no input does: a drift.prediction finding only."""
    proc = BatchProcessor(sessions, CONFIG)
    for batch in chunks(records(events(replace(SCENARIO, model="outputs", drifted=(), score_shift=1.5))), 500):
        proc.process(batch)
    with sessions() as s:
        found = s.scalars(select(Finding).where(Finding.model == "outputs")).all()
    detectors = {f.detector for f in found}
    assert "drift.features" not in detectors
    pred = [f for f in found if f.detector == "drift.prediction"]
    # drift from event 5000 = monitored event 3000: windows 3 to 5
    assert sorted(f.details["window_index"] for f in pred) == [3, 4, 5]
    assert all(set(f.details["drifted_columns"]) == {"label", "p:1"} for f in pred)


def test_no_prediction_drift_without_a_shift(sessions) -> None:  # type: ignore[no-untyped-def]
    proc = BatchProcessor(sessions, CONFIG)
    for batch in chunks(records(events(replace(SCENARIO, model="calm", drifted=()))), 500):
        proc.process(batch)
    with sessions() as s:
        windows = s.scalars(select(Window).where(Window.model == "calm")).all()
        assert s.scalars(select(Finding).where(Finding.model == "calm")).all() == []
    assert len(windows) == 6 and all(w.stats["prediction_drift"]["status"] == "ok" for w in windows)


def test_a_window_row_keeps_every_detectors_verdict(sessions) -> None:  # type: ignore[no-untyped-def]
    # the row used to be written before quality, volume and fairness ran, so it held drift alone
    proc = BatchProcessor(sessions, CONFIG)
    for batch in chunks(records(events(SCENARIO)), 500):
        proc.process(batch)
    with sessions() as s:
        rows = s.scalars(select(Window).order_by(Window.window_index)).all()
        findings = {(f.detector, f.details["window_index"]): f.window_id
                    for f in s.scalars(select(Finding)) if "window_index" in f.details}
    assert len(rows) == 6
    for w in rows:
        assert {"drift", "prediction_drift", "quality", "volume", "fairness", "n"} <= set(w.stats)
        assert w.stats["drift"]["status"] == ("drift" if w.window_index >= 3 else "ok")
        assert len(w.stats["drift"]["features"]["name"]) == 10 and w.stats["n"] == 1000
        assert w.stats["quality"]["status"] == ("alert" if w.window_index >= 3 else "ok")
        assert w.stats["volume"]["n_events"] == 1000
        assert w.stats["fairness"]["status"] in {"ok", "insufficient_data", "alert"}
    # findings name the row that holds their window
    assert findings[("drift.features", 3)] == rows[3].id
    # the row keeps the per-feature numbers as columns; the finding keeps the full result of the same window
    with sessions() as s:
        full = s.scalars(select(Finding).where(Finding.detector == "drift.features",
                                               Finding.window_id == rows[3].id)).one().details["result"]
    cols = rows[3].stats["drift"]["features"]
    assert [dict(zip(cols, values, strict=True)) for values in zip(*cols.values(), strict=True)] == [
        {"name": sc["feature"], **{k: sc[k] for k in ("status", "test", "statistic", "p_value", "p_adjusted",
                                                     "effect", "effect_value")}} for sc in full["scores"]]
    assert {"js", "hellinger", "window_mean"} <= set(full["scores"][0]["extra"])
    assert findings[("quality.data", 5)] == rows[5].id


def test_the_start_up_heap_is_frozen_once(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import gc

    from streams import processor

    monkeypatch.setattr(processor, "_heap_frozen", False)
    before = gc.get_freeze_count()
    try:
        processor.freeze_startup_heap()
        frozen = gc.get_freeze_count()
        assert frozen > before  # everything alive now, this test module included
        processor.freeze_startup_heap()
        assert gc.get_freeze_count() == frozen  # once per process
    finally:
        gc.unfreeze()  # back to the collector, for the tests after this one


def test_freezing_with_a_batch_size_raises_the_young_threshold_once(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import gc

    from streams import processor

    monkeypatch.setattr(processor, "_heap_frozen", False)
    before = gc.get_threshold()
    try:
        processor.freeze_startup_heap(1000)
        assert gc.get_threshold() == (processor.YOUNG_OBJECTS_PER_EVENT * 1000, *before[1:])
        processor.freeze_startup_heap(10)  # once per process: a later call changes nothing
        assert gc.get_threshold()[0] == processor.YOUNG_OBJECTS_PER_EVENT * 1000
        assert processor.young_threshold(1) == processor._DEFAULT_YOUNG  # never below Python's default
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
