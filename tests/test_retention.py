"""Retention (storage.retention.prune, `opsloop prune`): old raw rows go, recent ones and the history stay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from opsloop.cli import main
from storage import repo
from storage.models import Finding, LLMInteraction, OutboxMessage, PendingLabel, PredictionLog, Window
from storage.retention import TABLES, prune

NOW = datetime.now(UTC)
OLD, RECENT = NOW - timedelta(days=40), NOW - timedelta(days=2)
CUTOFF = NOW - timedelta(days=30)


def _prediction(i: int, at: datetime) -> dict[str, object]:
    return {"model": "m", "model_version": "1", "prediction_id": f"p{i}", "occurred_at": at,
            "window_kind": "count", "window_index": 0, "y_pred": "1", "features": {"x": i}, "sensitive": {}}


def _interaction(i: int, at: datetime) -> dict[str, object]:
    return {"event_id": f"e{i}", "application": "app", "model": "gpt", "occurred_at": at, "window_kind": "count",
            "window_index": 0, "kept_because": "sampled", "prompt_excerpt": "[redacted]", "response_excerpt": "ok",
            "prompt_hash": "0" * 64, "response_hash": "1" * 64, "flags": {}}


def _fill(sessions) -> dict[str, set[str]]:  # type: ignore[no-untyped-def]
    """Old and recent rows in every pruned table, interleaved by id (late events get later ids); returns the
    keys that must survive."""
    keep: dict[str, set[str]] = {name: set() for name in TABLES}
    with sessions.begin() as s:
        for i in range(12):
            at = OLD if i % 3 else RECENT  # ids 0, 3, 6, 9 recent
            s.add(PredictionLog(**_prediction(i, at)))
            s.add(PendingLabel(prediction_id=f"q{i}", model="m", y_true="1", occurred_at=at, created_at=at))
            s.add(LLMInteraction(**_interaction(i, at)))
            if at == RECENT:
                keep["predictions_log"].add(f"p{i}")
                keep["pending_labels"].add(f"q{i}")
                keep["llm_interactions"].add(f"e{i}")
        # published long ago (goes), published recently (stays), never published although old (stays)
        for mid, published in (("old-published", OLD), ("recent-published", RECENT), ("old-unpublished", None)):
            s.add(OutboxMessage(message_id=mid, topic="t", key="m", payload={}, created_at=OLD, published_at=published))
        keep["outbox"] = {"recent-published", "old-unpublished"}
        window_id = repo.add_windows(s, [{"model": "m", "model_version": "1", "kind": "count", "window_index": 0,
                                          "start_at": OLD, "end_at": OLD, "n_events": 12, "reference_id": None,
                                          "stats": {"n": 12}, "created_at": OLD}])[0]
        repo.add_finding(s, finding_key="m:1:drift:count:0", model="m", model_version="1", window_id=window_id,
                         detector="drift.features", status="drift", severity="warn", score=0.5, summary="old",
                         details={}, reference_id=None, created_at=OLD)
    return keep


def _left(sessions) -> dict[str, set[str]]:  # type: ignore[no-untyped-def]
    with sessions() as s:
        return {
            "predictions_log": set(s.scalars(select(PredictionLog.prediction_id))),
            "pending_labels": set(s.scalars(select(PendingLabel.prediction_id))),
            "llm_interactions": set(s.scalars(select(LLMInteraction.event_id))),
            "outbox": set(s.scalars(select(OutboxMessage.message_id))),
        }


@pytest.mark.parametrize("batch", [1, 3, 10_000])
def test_prune_deletes_the_old_rows_of_each_table_and_keeps_the_rest(sessions, batch: int) -> None:  # type: ignore[no-untyped-def]
    keep = _fill(sessions)
    counts = prune(sessions, CUTOFF, batch=batch)
    assert counts == {"predictions_log": 8, "pending_labels": 8, "llm_interactions": 8, "outbox": 1}
    assert _left(sessions) == keep
    with sessions() as s:  # the monitoring history is not raw data: kept whatever its age
        assert s.scalar(select(func.count()).select_from(Window)) == 1
        assert s.scalar(select(func.count()).select_from(Finding)) == 1
    assert prune(sessions, CUTOFF, batch=batch) == dict.fromkeys(TABLES, 0)  # nothing left to do


def test_a_dry_run_counts_and_deletes_nothing(sessions) -> None:  # type: ignore[no-untyped-def]
    _fill(sessions)
    before = _left(sessions)
    assert prune(sessions, CUTOFF, dry_run=True) == {"predictions_log": 8, "pending_labels": 8,
                                                     "llm_interactions": 8, "outbox": 1}
    assert _left(sessions) == before


def test_prune_refuses_a_naive_cutoff_and_an_empty_batch(sessions) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="timezone-aware"):
        prune(sessions, CUTOFF.replace(tzinfo=None))
    with pytest.raises(ValueError, match="batch"):
        prune(sessions, CUTOFF, batch=0)


@pytest.fixture
def cli_sessions(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """A migrated SQLite database that `opsloop prune` (OPSLOOP_DB_URL) and the test both use."""
    from storage.db import make_engine, migrate, session_factory

    url = f"sqlite:///{tmp_path}/x.db"
    monkeypatch.setenv("OPSLOOP_DB_URL", url)
    engine = make_engine(url)
    migrate(engine)
    yield session_factory(engine)
    engine.dispose()


def test_cli_prune(cli_sessions, capsys) -> None:  # type: ignore[no-untyped-def]
    sessions = cli_sessions
    keep = _fill(sessions)
    assert main(["prune", "--older-than", "30d", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "predictions_log: would delete 8 rows" in out and "outbox: would delete 1 rows" in out
    assert main(["prune", "--older-than", "30d"]) == 0
    assert "predictions_log: deleted 8 rows" in capsys.readouterr().out
    assert _left(sessions) == keep


@pytest.mark.parametrize(("argv", "message"), [
    (["--older-than", "1d"], "inside the label delay (7 days"),  # labels may still join
    (["--older-than", "soon"], "not a duration: 'soon'"),
    (["--older-than", "30d", "--batch", "0"], "--batch must be >= 1"),
    (["--older-than", "30d", "--windows-older-than", "10d"], "shorter than --older-than 30d"),
    (["--older-than", "30d", "--windows-older-than", "later"], "--windows-older-than: not a duration: 'later'"),
])
def test_cli_prune_refuses_bad_input(tmp_path, capsys, monkeypatch, argv: list[str], message: str) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("OPSLOOP_DB_URL", f"sqlite:///{tmp_path}/x.db")
    assert main(["prune", *argv]) == 2
    assert message in capsys.readouterr().err


def test_cli_prune_follows_the_configured_label_delay(tmp_path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("OPSLOOP_DB_URL", f"sqlite:///{tmp_path}/x.db")
    monkeypatch.setenv("OPSLOOP_WORKER_LABEL_DELAY_S", str(3600))
    assert main(["prune", "--older-than", "2h", "--dry-run"]) == 0
    assert "predictions_log: would delete 0 rows" in capsys.readouterr().out


def _windows(sessions) -> dict[int, int]:  # type: ignore[no-untyped-def]
    """Window rows, old and recent, some named by a finding; returns window index -> id."""
    rows = []
    for i in range(10):
        end = OLD if i % 2 else RECENT  # odd indexes old
        rows.append({"model": "w", "model_version": "1", "kind": "sliding", "window_index": i, "start_at": end,
                     "end_at": end, "n_events": 100, "reference_id": None, "stats": {"n": 100}})
    # a window without an end time (count windows of an event-less clock) is judged by when it was written
    rows.append({"model": "w", "model_version": "1", "kind": "count", "window_index": 0, "start_at": None,
                 "end_at": None, "n_events": 100, "reference_id": None, "stats": {"n": 100}, "created_at": OLD})
    rows.append({"model": "w", "model_version": "1", "kind": "count", "window_index": 1, "start_at": None,
                 "end_at": None, "n_events": 100, "reference_id": None, "stats": {"n": 100}, "created_at": RECENT})
    with sessions.begin() as s:
        ids = repo.add_windows(s, rows)
        for index in (3, 7):  # old windows with a finding: kept as its evidence
            repo.add_finding(s, finding_key=f"w:1:drift:sliding:{index}", model="w", model_version="1",
                             window_id=ids[index], detector="drift.features", status="drift", severity="warn",
                             score=0.5, summary="old", details={}, reference_id=None)
    return {i: wid for i, wid in enumerate(ids)}


def _window_keys(sessions) -> set[tuple[str, int]]:  # type: ignore[no-untyped-def]
    with sessions() as s:
        return {(k, i) for k, i in s.execute(select(Window.kind, Window.window_index).where(Window.model == "w"))}


@pytest.mark.parametrize("batch", [1, 2, 10_000])
def test_windows_are_pruned_only_when_asked_and_never_those_a_finding_names(sessions, batch: int) -> None:  # type: ignore[no-untyped-def]
    _windows(sessions)
    everything = _window_keys(sessions)
    assert "windows" not in prune(sessions, CUTOFF, batch=batch)  # not asked: all kept
    assert _window_keys(sessions) == everything
    # old: sliding 1, 3, 5, 7, 9 and count 0; 3 and 7 are named by findings
    assert prune(sessions, CUTOFF, windows_cutoff=CUTOFF, batch=batch, dry_run=True)["windows"] == 4
    assert _window_keys(sessions) == everything
    assert prune(sessions, CUTOFF, windows_cutoff=CUTOFF, batch=batch)["windows"] == 4
    assert _window_keys(sessions) == {("sliding", i) for i in (0, 2, 3, 4, 6, 7, 8)} | {("count", 1)}
    with sessions() as s:  # the findings still name their windows
        named = s.scalars(select(Window.window_index).join(Finding, Finding.window_id == Window.id)).all()
        assert sorted(named) == [3, 7]
    assert prune(sessions, CUTOFF, windows_cutoff=CUTOFF, batch=batch)["windows"] == 0
    # a later cutoff takes the recent ones too, still not the named ones
    assert prune(sessions, CUTOFF, windows_cutoff=NOW + timedelta(days=1), batch=batch)["windows"] == 6
    assert _window_keys(sessions) == {("sliding", 3), ("sliding", 7)}


def test_cli_prune_windows(cli_sessions, capsys) -> None:  # type: ignore[no-untyped-def]
    sessions = cli_sessions
    _windows(sessions)
    assert main(["prune", "--older-than", "30d", "--windows-older-than", "30d"]) == 0
    out = capsys.readouterr().out
    assert "windows: deleted 4 rows older than" in out and "predictions_log: deleted 0 rows" in out
    assert len(_window_keys(sessions)) == 8
    assert main(["prune", "--older-than", "30d", "--windows-older-than", "60d", "--dry-run"]) == 0
    assert "windows: would delete 0 rows" in capsys.readouterr().out
