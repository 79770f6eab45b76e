"""The CLI: bad input and bad configuration give one clear line and a non-zero exit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from opsloop.cli import main


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    e = {k: v for k, v in os.environ.items() if not k.startswith("OPSLOOP_")}
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "opsloop.cli", *args], capture_output=True, text=True, env=e,
                          timeout=120)


def test_unknown_command_exits_non_zero() -> None:
    r = run("frobnicate")
    assert r.returncode == 2 and "invalid choice" in r.stderr


def test_bad_setting_names_the_variable(tmp_path) -> None:  # type: ignore[no-untyped-def]
    r = run("findings", env={"OPSLOOP_WORKER_WINDOW_SIZE": "-3", "OPSLOOP_DB_URL": f"sqlite:///{tmp_path}/x.db"})
    assert r.returncode == 2
    assert "OPSLOOP_WORKER_WINDOW_SIZE" in r.stderr and "Traceback" not in r.stderr


def test_bad_db_url_is_refused() -> None:
    r = run("findings", env={"OPSLOOP_DB_URL": "mysql://root:hunter2@db/x"})
    assert r.returncode == 2 and "OPSLOOP_DB_URL" in r.stderr
    assert "hunter2" not in r.stderr


def test_findings_on_empty_database(tmp_path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("OPSLOOP_DB_URL", f"sqlite:///{tmp_path}/x.db")
    assert main(["findings"]) == 0
    assert capsys.readouterr().out == ""


def test_redact_url_hides_password() -> None:
    from opsloop.wiring import redact_url

    assert redact_url("postgresql+psycopg://u:s3cret@h:5432/db") == "postgresql+psycopg://u:***@h:5432/db"


@pytest.mark.parametrize("argv", [["topics"], ["db", "sideways"]])
def test_argument_errors(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2


def test_windows_lists_each_closed_window_with_its_verdicts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """On-call people read a window's verdicts without SQL: one line per window, newest first, and the row
    with drift's per-feature columns as JSON."""
    import json
    from dataclasses import replace

    from opsloop.simulate import Scenario, events
    from storage.db import make_engine, migrate, session_factory
    from streams.model_stream import StreamConfig
    from streams.processor import BatchProcessor, ProcessorConfig
    from tests.helpers import chunks, records

    url = f"sqlite:///{tmp_path}/w.db"
    engine = make_engine(url)
    migrate(engine)
    config = ProcessorConfig(consumer_group="cli", stream=StreamConfig(window_size=1000, reference_size=2000))
    proc = BatchProcessor(session_factory(engine), config)
    scenario = Scenario(n_events=5000, drift_after=4000, drifted=("x1",))
    for partition, model in enumerate(("calm", "moved")):  # a partition each: offsets are per partition
        drifted = ("x1",) if model == "moved" else ()
        for batch in chunks(records(events(replace(scenario, model=model, drifted=drifted)), partition), 500):
            proc.process(batch)
    monkeypatch.setenv("OPSLOOP_DB_URL", url)
    assert main(["windows", "--model", "moved"]) == 0
    lines = capsys.readouterr().out.splitlines()
    # 3,000 monitored events: windows #2 (newest, after the shift at monitored event 2,000), #1, #0
    assert [line.split()[4] for line in lines] == ["#2", "#1", "#0"]
    assert all(" moved/1 count " in line and "1000 events: drift " in line for line in lines)
    assert "drift drift (x1)" in lines[0] and "drift ok;" in lines[2]
    assert "quality ok" in lines[2] and "prediction ok" in lines[2]
    assert main(["windows", "--limit", "4"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 4
    assert main(["windows", "--model", "moved", "--limit", "1", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert (row["model"], row["kind"], row["index"], row["n_events"]) == ("moved", "count", 2, 1000)
    features = row["stats"]["drift"]["features"]
    assert features["status"][features["name"].index("x1")] == "drift"
    assert main(["windows", "--model", "nobody"]) == 0
    assert capsys.readouterr().out == ""


def test_a_window_line_names_an_llm_window_s_safety_verdict() -> None:
    from datetime import UTC, datetime

    from opsloop.cli import _window_line
    from storage.models import Window

    w = Window(model="llm:support-bot", model_version="*", kind="count", window_index=3, n_events=200,
               end_at=datetime(2026, 11, 29, 12, 0, tzinfo=UTC),
               stats={"safety": {"status": "alert"}, "quality": {"status": "ok"},
                      "drift": {"status": "insufficient_data", "reason": "part of the reference"}})
    assert _window_line(w) == ("2026-11-29 12:00:00 llm:support-bot/* count #3 200 events: "
                               "drift insufficient_data; quality ok; safety alert")
    empty = Window(model="m", model_version="1", kind="time", window_index=9, n_events=0, stats={},
                   created_at=datetime(2026, 1, 2, tzinfo=UTC))
    assert _window_line(empty).endswith("m/1 time #9 0 events: no verdicts")


@pytest.mark.parametrize("command", ["findings", "windows", "triggers"])
def test_a_limit_below_one_is_refused(command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSLOOP_DB_URL", f"sqlite:///{tmp_path}/x.db")
    assert main([command, "--limit", "-1"]) == 2
    assert capsys.readouterr().err == "opsloop: --limit must be >= 1, got -1\n"
    assert main([command, "--limit", "1"]) == 0
