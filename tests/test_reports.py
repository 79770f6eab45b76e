"""Evidently drift reports from the predictions log: files, verdicts, errors, the CLI, and a lazy import."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

from detectors.drift import FeatureDriftConfig, WindowSketch, build_profile, judge_drift_many
from opsloop import reports_cli
from opsloop.errors import OpsloopError
from opsloop.reports import ReportError, ReportPaths, drift_report, opsloop_verdicts, summarize
from storage.db import make_engine, migrate, session_factory
from storage.models import PredictionLog, Window
from streams.columns import infer_kinds, to_columns

MODEL, VERSION = "credit-risk", "1"
N_REF, N_WIN = 2_000, 1_000
QUIET, DRIFTED = 0, 1
OLD_ROW = 9  # a window row in the form written before 2026-11-29
COUNTRIES = ("de", "fr", "us", "in")
REF_MIX = (0.4, 0.3, 0.2, 0.1)
DRIFT_MIX = (0.2, 0.3, 0.2, 0.3)
ROOT = Path(__file__).resolve().parent.parent


def _rows(rng: np.random.Generator, n: int, *, shift: float = 0.0,
          mix: tuple[float, ...] = REF_MIX) -> list[dict[str, Any]]:
    x1 = rng.normal(0.0, 1.0, n) + shift
    x2 = rng.normal(5.0, 2.0, n)
    x3 = rng.normal(0.0, 1.0, n)
    age = rng.integers(18, 80, n)
    country = rng.choice(COUNTRIES, n, p=mix)
    vip = rng.random(n) < 0.2
    missing = rng.random(n) < 0.05
    return [{"x1": round(float(x1[i]), 6), "x2": round(float(x2[i]), 6),
             "x3": None if missing[i] else round(float(x3[i]), 6), "age": int(age[i]),
             "country": str(country[i]), "vip": bool(vip[i])} for i in range(n)]


@dataclass
class Stored:
    sessions: Any
    url: str
    rows: dict[tuple[str, int], list[dict[str, Any]]]


def _log(session: Any, rows: list[dict[str, Any]], kind: str, index: int, start: int, *,
         model: str = MODEL) -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    session.add_all(PredictionLog(model=model, model_version=VERSION, prediction_id=f"p{start + i}",
                                  occurred_at=t0 + timedelta(seconds=start + i), window_kind=kind,
                                  window_index=index, y_pred="0", score=0.5, features=f, sensitive={})
                    for i, f in enumerate(rows))


def _opsloop_result(ref: list[dict[str, Any]], win: list[dict[str, Any]]):  # type: ignore[no-untyped-def]
    """What the worker computes for the window (same kinds, same default config)."""
    kinds = infer_kinds(ref)
    profile = build_profile(to_columns(ref, kinds)[0], kinds)
    sketch = WindowSketch.empty(profile).update(to_columns(win, kinds)[0])
    return judge_drift_many(profile, [sketch], FeatureDriftConfig())[0]


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> Stored:
    url = f"sqlite:///{tmp_path_factory.mktemp('reports') / 'opsloop.db'}"
    engine = make_engine(url)
    migrate(engine)
    sessions = session_factory(engine)
    rng = np.random.default_rng(20260101)
    rows = {("ref", 0): _rows(rng, N_REF), ("count", QUIET): _rows(rng, N_WIN),
            ("count", DRIFTED): _rows(rng, N_WIN, shift=1.0, mix=DRIFT_MIX)}
    with sessions() as s, s.begin():
        start = 0
        for (kind, index), r in rows.items():
            _log(s, r, kind, index, start)
            start += len(r)
        # the drifted window is closed (opsloop's verdict stored); the quiet one is still open
        result = _opsloop_result(rows[("ref", 0)], rows[("count", DRIFTED)])
        s.add(Window(model=MODEL, model_version=VERSION, kind="count", window_index=DRIFTED, n_events=N_WIN,
                     stats={"drift": result.summary, "type_errors": {}, "n": N_WIN}))
        # a row written before rows kept columns: the full result's to_dict
        s.add(Window(model=MODEL, model_version=VERSION, kind="count", window_index=OLD_ROW, n_events=N_WIN,
                     stats={"drift": result.result().to_dict(), "type_errors": {}, "n": N_WIN}))
    return Stored(sessions, url, rows)


@pytest.fixture(scope="module")
def made(stored: Stored, tmp_path_factory: pytest.TempPathFactory) -> dict[int, ReportPaths]:
    out = tmp_path_factory.mktemp("out")
    return {i: drift_report(stored.sessions, MODEL, VERSION, i, "count", out_dir=out)
            for i in (QUIET, DRIFTED)}


def test_report_files_are_written(made: dict[int, ReportPaths]) -> None:
    for paths in made.values():
        assert paths.html.name.endswith(".html") and paths.json.name.endswith(".json")
        assert paths.html.stat().st_size > 100_000  # Evidently inlines its scripts and the charts' data
        html = paths.html.read_text(encoding="utf-8")
        assert "<html" in html.lower() and "x1" in html
        data = json.loads(paths.json.read_text(encoding="utf-8"))
        assert len(data["metrics"]) == 1 + 6  # the drifted-columns count, then one ValueDrift per feature
        assert (paths.n_reference, paths.n_window, paths.skipped) == (N_REF, N_WIN, ())
        assert not list(paths.html.parent.glob("*.tmp"))


def test_drifted_window_flags_x1_and_country(made: dict[int, ReportPaths]) -> None:
    verdicts = summarize(made[DRIFTED].json)
    assert {c for c, v in verdicts.items() if v.drifted} == {"x1", "country"}
    # 2,000 reference rows (> 1,000): Evidently's defaults are distances, not tests
    assert verdicts["x1"].stattest == "Wasserstein distance (normed)" and verdicts["x1"].threshold == 0.1
    assert verdicts["x1"].score > 0.9  # a 1-sd shift moves ~1 reference sd of mass
    assert verdicts["country"].stattest == "Jensen-Shannon distance" and verdicts["country"].threshold == 0.1
    assert verdicts["vip"].stattest == "Jensen-Shannon distance"  # booleans are categories, as in opsloop
    assert verdicts["age"].stattest == "Wasserstein distance (normed)"


def test_quiet_window_flags_nothing(made: dict[int, ReportPaths]) -> None:
    verdicts = summarize(made[QUIET].json)
    assert [c for c, v in verdicts.items() if v.drifted] == []
    assert max(v.score for v in verdicts.values()) < 0.1


@pytest.mark.parametrize("index", [QUIET, DRIFTED])
def test_evidently_and_opsloop_agree_on_these_windows(stored: Stored, made: dict[int, ReportPaths],
                                                      index: int) -> None:
    ours = _opsloop_result(stored.rows[("ref", 0)], stored.rows[("count", index)])
    theirs = summarize(made[index].json)
    assert set(ours.drifted_features) == {c for c, v in theirs.items() if v.drifted}


def test_summary_without_tests_matches(made: dict[int, ReportPaths]) -> None:
    for paths in made.values():
        data = json.loads(paths.json.read_text(encoding="utf-8"))
        with_tests = summarize(data)
        assert summarize({"metrics": data["metrics"]}) == with_tests
        assert summarize(json.dumps(data)) == with_tests


def test_opsloop_verdicts_of_closed_and_open_windows(stored: Stored) -> None:
    with stored.sessions() as s:
        assert opsloop_verdicts(s, MODEL, VERSION, QUIET) is None
        closed = opsloop_verdicts(s, MODEL, VERSION, DRIFTED)
    assert closed is not None
    assert {f for f, status in closed.items() if status == "drift"} == {"x1", "country"}
    with stored.sessions() as s:
        assert opsloop_verdicts(s, MODEL, VERSION, OLD_ROW) == closed


def test_no_rows_is_a_clear_error(stored: Stored, tmp_path: Path) -> None:
    with pytest.raises(ReportError) as exc:
        drift_report(stored.sessions, MODEL, VERSION, 7, "count", out_dir=tmp_path)
    assert str(exc.value) == ("no rows logged for window count #7 of credit-risk v1 — are predictions "
                              "logged? (OPSLOOP_WORKER_LOG_PREDICTIONS)")
    assert isinstance(exc.value, OpsloopError)
    with stored.sessions() as s, s.begin():  # another model whose warm-up rows were never logged
        _log(s, stored.rows[("count", QUIET)][:10], "count", 0, 0, model="fraud")
    with pytest.raises(ReportError, match="no rows logged for the reference of fraud v1 — are predictions"):
        drift_report(stored.sessions, "fraud", VERSION, 0, "count", out_dir=tmp_path)
    with pytest.raises(ReportError, match="unknown window kind"):
        drift_report(stored.sessions, MODEL, VERSION, 0, "daily", out_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_empty_and_mistyped_features_follow_the_worker(stored: Stored, tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    ref = [{**r, "note": None} for r in _rows(rng, 300)]  # "note" never has a value in the reference
    win = [{**r, "x3": None, "x2": "n/a" if i % 2 else r["x2"], "extra": 1.0}
           for i, r in enumerate(_rows(rng, 200))]
    with stored.sessions() as s, s.begin():
        _log(s, ref, "ref", 0, 0, model="sparse")
        _log(s, win, "count", 3, len(ref), model="sparse")
    paths = drift_report(stored.sessions, "sparse", VERSION, 3, out_dir=tmp_path)
    assert paths.skipped == ("x3", "note")  # empty on one side: Evidently refuses, opsloop says too few
    verdicts = summarize(paths.json)
    assert set(verdicts) == {"x1", "x2", "age", "country", "vip"}  # "extra" is window-only: left out
    assert verdicts["x2"].stattest == "K-S p_value"  # 300 reference rows (<= 1,000): p-value tests
    assert not verdicts["x2"].drifted  # "n/a" counted as missing, the numbers left are unchanged


def test_worker_import_does_not_load_evidently() -> None:
    code = ("import sys, streams.worker, opsloop.reports, opsloop.reports_cli; "
            "print(sorted(m for m in ('evidently', 'pandas', 'plotly') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120,
                       check=False)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


# --- the command -------------------------------------------------------------------------------------------


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="opsloop")
    reports_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


@pytest.fixture
def cli_env(stored: Stored, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("OPSLOOP_DB_URL", stored.url)
    monkeypatch.setenv("OPSLOOP_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_cli_prints_paths_and_table(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # no --version: the most recently logged version; no --out: $OPSLOOP_HOME/reports
    assert _cli(["report", "drift", "--model", MODEL, "--window", str(DRIFTED)]) == 0
    out = capsys.readouterr().out.splitlines()
    html, js = Path(out[0].removeprefix("html: ")), Path(out[1].removeprefix("json: "))
    assert html.parent == js.parent == cli_env / "reports" and html.is_file() and js.is_file()
    assert "1000 rows against 2000 reference rows (closed window)" in out[2]
    assert "Evidently flags 2 of 6 columns" in out[2]
    table = {line.split()[0]: line.split() for line in out[3:]}
    assert table["column"][:2] == ["column", "evidently"]
    assert table["x1"][1] == "DRIFT" and table["x1"][-1] == "DRIFT"
    assert table["country"][1] == "DRIFT" and table["country"][-1] == "DRIFT"
    assert table["x2"][1] == "ok" and table["x2"][-1] == "ok"


def test_cli_open_window_and_out_dir(cli_env: Path, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = tmp_path / "elsewhere"
    assert _cli(["report", "drift", "--model", MODEL, "--version", VERSION, "--window", str(QUIET),
                 "--kind", "count", "--out", str(out_dir)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"html: {out_dir / 'credit-risk-v1-count-0-drift.html'}"
    assert "open window: opsloop has no verdict yet" in out[2] and "flags 0 of 6" in out[2]
    assert all(line.split()[-1] == "open" for line in out[4:])


def test_cli_missing_window_exits_2_with_one_line(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli(["report", "drift", "--model", MODEL, "--version", VERSION, "--window", "7"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == ("opsloop: no rows logged for window count #7 of credit-risk v1 — are "
                            "predictions logged? (OPSLOOP_WORKER_LOG_PREDICTIONS)\n")
    assert _cli(["report", "drift", "--model", "no-such-model", "--window", "0"]) == 2
    assert capsys.readouterr().err.startswith("opsloop: no predictions logged for model no-such-model")


def test_cli_bad_kind_is_an_argument_error() -> None:
    with pytest.raises(SystemExit) as exc:
        _cli(["report", "drift", "--model", MODEL, "--window", "0", "--kind", "daily"])
    assert exc.value.code == 2


def test_opsloop_main_runs_the_command(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from opsloop.cli import main

    assert main(["report", "drift", "--model", MODEL, "--window", "7"]) == 2
    assert capsys.readouterr().err.startswith("opsloop: no rows logged for window count #7 of credit-risk v1")


# --- sliding windows ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sliding_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A worker's sliding windows of 1,000 events (10 panes of 100), x1 shifted from monitored event 2,500."""
    from opsloop.simulate import Scenario, events
    from streams.model_stream import StreamConfig
    from streams.processor import BatchProcessor, ProcessorConfig
    from tests.helpers import chunks, records

    url = f"sqlite:///{tmp_path_factory.mktemp('sliding') / 'opsloop.db'}"
    engine = make_engine(url)
    migrate(engine)
    config = ProcessorConfig(consumer_group="report", stream=StreamConfig(
        window_kind="sliding", window_size=1000, sliding_panes=10, reference_size=2000))
    proc = BatchProcessor(session_factory(engine), config)
    for batch in chunks(records(events(Scenario(model="slide", n_events=6000, drift_after=4500,
                                                drifted=("x1",)))), 700):
        proc.process(batch)
    return url


@pytest.mark.parametrize("window", [0, 27])
def test_a_sliding_window_is_reported_from_its_panes(sliding_db: str, tmp_path: Path, window: int) -> None:
    """Window #i of a sliding window is panes i .. i + 9 of the prediction log: the same 1,000 events the
    worker judged (its row's n_events), and Evidently sees x1 move where the worker did."""
    sessions = session_factory(make_engine(sliding_db))
    paths = drift_report(sessions, "slide", "1", window, "sliding", out_dir=tmp_path, sliding_panes=10)
    with sessions() as s:
        row = s.scalars(select(Window).where(Window.model == "slide", Window.kind == "sliding",
                                             Window.window_index == window)).one()
        ours = opsloop_verdicts(s, "slide", "1", window, "sliding")
    assert paths.n_reference == 2000 and paths.n_window == row.n_events == 1000
    assert paths.json.name == f"slide-v1-sliding-{window}-drift.json"
    theirs = {c for c, v in summarize(paths.json).items() if v.drifted}
    assert ours is not None
    drifted = {c for c, status in ours.items() if status == "drift"}
    # window 27 holds monitored events 2,700-3,699, after the shift at 2,500; window 0 none of them
    assert (drifted, theirs) == (({"x1"}, {"x1"}) if window else (set(), set()))


def test_a_sliding_window_of_other_panes_reads_other_rows(sliding_db: str, tmp_path: Path) -> None:
    sessions = session_factory(make_engine(sliding_db))
    four = drift_report(sessions, "slide", "1", 3, "sliding", out_dir=tmp_path, sliding_panes=4)
    assert four.n_window == 400
    with pytest.raises(ReportError, match="no rows logged for window sliding #1000 of slide v1"):
        drift_report(sessions, "slide", "1", 1000, "sliding", out_dir=tmp_path)
    with pytest.raises(ReportError, match="at least one pane"):
        drift_report(sessions, "slide", "1", 3, "sliding", out_dir=tmp_path, sliding_panes=0)


def test_cli_reports_a_sliding_window_with_the_worker_s_panes(sliding_db: str, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("OPSLOOP_DB_URL", sliding_db)
    monkeypatch.setenv("OPSLOOP_HOME", str(tmp_path))
    monkeypatch.setenv("OPSLOOP_WORKER_SLIDING_PANES", "10")
    assert _cli(["report", "drift", "--model", "slide", "--window", "27", "--kind", "sliding"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "window sliding #27: 1000 rows against 2000 reference rows (closed window)" in out[2]
    table = {line.split()[0]: line.split() for line in out[3:]}
    assert table["x1"][1] == "DRIFT" and table["x1"][-1] == "DRIFT"
    monkeypatch.setenv("OPSLOOP_WORKER_SLIDING_PANES", "5")  # the worker's setting decides the panes
    assert _cli(["report", "drift", "--model", "slide", "--window", "27", "--kind", "sliding"]) == 0
    assert "500 rows against 2000 reference rows" in capsys.readouterr().out.splitlines()[2]
