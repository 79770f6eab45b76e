"""On-demand Evidently data-drift reports for one closed (or open) window against its reference.

Rows come from ``predictions_log``: the warm-up rows (window ``("ref", 0)``) are the reference, and the
window's rows are the current data. Evidently and pandas are imported inside the functions that need them:
the worker must never pay for them at start-up (see docs/reports.md).
"""

from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from opsloop.errors import OpsloopError
from storage.models import PredictionLog, Window
from streams.columns import CATEGORICAL, NUMERIC, infer_kinds, to_columns

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

REFERENCE = ("ref", 0)
WINDOW_KINDS = ("count", "time", "sliding")
PANE = "pane"  # a sliding window's events are logged by pane; window #i is panes i .. i + panes - 1
NO_ROWS_HINT = "are predictions logged? (OPSLOOP_WORKER_LOG_PREDICTIONS)"

# Evidently's tests carry the verdict; these names let ``summarize`` judge a snapshot saved without tests.
_P_VALUE_TESTS = {"ks", "chisquare", "z", "fisher_exact", "g_test", "anderson", "cramer_von_mises", "mannw",
                  "epps_singleton", "t_test", "empirical_mmd"}


class ReportError(OpsloopError):
    """A report cannot be made from what is stored (no rows, unknown model, bad window kind)."""


@dataclass(frozen=True)
class ReportPaths:
    html: Path
    json: Path
    n_reference: int = 0
    n_window: int = 0
    skipped: tuple[str, ...] = ()  # features with no value in the reference or in the window


@dataclass(frozen=True)
class ColumnVerdict:
    column: str
    drifted: bool
    stattest: str
    score: float
    threshold: float | None


# --- loading ---------------------------------------------------------------------------------------------


def _features(session: Session, model: str, version: str, kind: str, index: int,
              panes: int = 1) -> list[dict[str, Any]]:
    """The logged feature rows of one window; of a sliding window (``kind="sliding"``), of its ``panes``
    panes from ``index`` on, as the worker merged them."""
    if kind == "sliding":
        where = (PredictionLog.window_kind == PANE, PredictionLog.window_index >= index,
                 PredictionLog.window_index < index + panes)
    else:
        where = (PredictionLog.window_kind == kind, PredictionLog.window_index == index)
    stmt = (select(PredictionLog.features)
            .where(PredictionLog.model == model, PredictionLog.model_version == version, *where)
            .order_by(PredictionLog.id))
    return [dict(f) for f in session.scalars(stmt)]


def latest_version(session: Session, model: str) -> str:
    """The model version of the most recently logged prediction of ``model``."""
    stmt = (select(PredictionLog.model_version).where(PredictionLog.model == model)
            .order_by(PredictionLog.id.desc()).limit(1))
    version = session.scalar(stmt)
    if version is None:
        raise ReportError(f"no predictions logged for model {model} — {NO_ROWS_HINT}")
    return version


def opsloop_verdicts(session: Session, model: str, version: str, window_index: int,
                     kind: str = "count") -> dict[str, str] | None:
    """opsloop's own per-feature status of a closed window (``drift``/``ok``/``insufficient_data``).

    None while the window is still open (no row in ``windows`` yet).
    """
    w = session.scalar(select(Window).where(Window.model == model, Window.model_version == version,
                                            Window.kind == kind, Window.window_index == window_index))
    if w is None:
        return None
    drift = (w.stats or {}).get("drift") or {}
    if "features" in drift:  # the row's columns (since 2026-11-29)
        cols = drift["features"]
        return {name: str(status) for name, status in zip(cols["name"], cols["status"], strict=True)}
    return {s["feature"]: str(s["status"]) for s in drift.get("scores", [])}  # rows written before


def _frames(ref_rows: list[dict[str, Any]], win_rows: list[dict[str, Any]]):  # type: ignore[no-untyped-def]
    """Two DataFrames typed as the worker types them: kinds inferred from the reference rows.

    A window value of the wrong type for a numeric feature becomes missing (the worker counts it as a type
    error); features only the window has are left out, as the worker leaves them out of its drift test.
    """
    import pandas as pd

    kinds = infer_kinds(ref_rows)
    ref_cols, _ = to_columns(ref_rows, kinds)
    win_cols, _ = to_columns(win_rows, kinds)
    ref_df, win_df = pd.DataFrame(ref_cols), pd.DataFrame(win_cols)
    # Evidently refuses a column that is empty in either dataset; opsloop calls it insufficient_data
    skipped = tuple(n for n in kinds if ref_df[n].notna().sum() == 0 or win_df[n].notna().sum() == 0)
    keep = [n for n in kinds if n not in skipped]
    return ref_df[keep], win_df[keep], {n: kinds[n] for n in keep}, skipped


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "model"


def _write_atomically(path: Path, write) -> None:  # type: ignore[no-untyped-def]
    tmp = path.with_name(path.name + ".tmp")
    write(str(tmp))  # Evidently's save_html writes nothing when given a Path: always a str
    os.replace(tmp, path)


# --- the report ------------------------------------------------------------------------------------------


def drift_report(sessions: sessionmaker[Session], model: str, version: str, window_index: int,
                 kind: str = "count", *, out_dir: Path, sliding_panes: int = 10) -> ReportPaths:
    """Run Evidently's ``DataDriftPreset`` on one window against the reference; save HTML and JSON.

    A sliding window is its ``sliding_panes`` panes (the worker's ``OPSLOOP_WORKER_SLIDING_PANES``)."""
    if kind not in WINDOW_KINDS:
        raise ReportError(f"unknown window kind {kind!r}: expected one of {', '.join(WINDOW_KINDS)}")
    if sliding_panes < 1:
        raise ReportError(f"a sliding window has at least one pane, not {sliding_panes}")
    with sessions() as s:
        ref_rows = _features(s, model, version, *REFERENCE)
        win_rows = _features(s, model, version, kind, window_index, sliding_panes)
    if not win_rows:
        raise ReportError(f"no rows logged for window {kind} #{window_index} of {model} v{version} — "
                          f"{NO_ROWS_HINT}")
    if not ref_rows:
        raise ReportError(f"no rows logged for the reference of {model} v{version} — {NO_ROWS_HINT}")

    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    ref_df, win_df, kinds, skipped = _frames(ref_rows, win_rows)
    if not kinds:
        raise ReportError(f"no feature of {model} v{version} has values in both the reference and window "
                          f"{kind} #{window_index}")
    definition = DataDefinition(numerical_columns=[n for n, k in kinds.items() if k == NUMERIC],
                                categorical_columns=[n for n, k in kinds.items() if k == CATEGORICAL])
    report = Report([DataDriftPreset()], include_tests=True,
                    metadata={"model": model, "model_version": version, "window_kind": kind,
                              "window_index": window_index})
    with warnings.catch_warnings():
        # numpy/pandas/plotly chatter from inside Evidently (divide by zero on constant columns, deprecations)
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            snapshot = report.run(Dataset.from_pandas(win_df, data_definition=definition),
                                  Dataset.from_pandas(ref_df, data_definition=definition),
                                  name=f"{model} v{version}: window {kind} #{window_index} vs reference")
        except ValueError as exc:
            raise ReportError(f"Evidently could not compare window {kind} #{window_index} of {model} "
                              f"v{version}: {exc}") from exc

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{_safe_name(model)}-v{_safe_name(version)}-{kind}-{window_index}-drift"
    html, js = out_dir / f"{stem}.html", out_dir / f"{stem}.json"
    _write_atomically(html, snapshot.save_html)
    _write_atomically(js, lambda p: Path(p).write_text(snapshot.json(), encoding="utf-8"))
    return ReportPaths(html=html, json=js, n_reference=len(ref_rows), n_window=len(win_rows), skipped=skipped)


# --- reading a snapshot back -----------------------------------------------------------------------------


def _drifted_without_test(method: str, score: float, threshold: float | None) -> bool:
    if threshold is None:
        raise ReportError(f"cannot judge drift by {method!r} without a threshold")
    if "p_value" in method or method in _P_VALUE_TESTS:
        return score < threshold
    return score >= threshold  # distances: Wasserstein, Jensen-Shannon, PSI, Hellinger, KL ...


def summarize(snapshot: Mapping[str, Any] | str | Path) -> dict[str, ColumnVerdict]:
    """Per-column verdicts from an Evidently snapshot (``snapshot.dict()``, its JSON text, or the JSON file).

    The verdict is the status of Evidently's own "Value Drift" test of the column (FAIL = drifted); a snapshot
    saved without tests is judged from the method's threshold the way Evidently judges it.
    """
    if isinstance(snapshot, Path):
        data: Mapping[str, Any] = json.loads(snapshot.read_text(encoding="utf-8"))
    elif isinstance(snapshot, str):
        data = json.loads(snapshot)
    else:
        data = snapshot
    failed: dict[str, bool] = {}
    for t in data.get("tests", []):
        metric_id = (t.get("metric_config") or {}).get("metric_id")
        if t.get("id") == "drift" and metric_id:
            failed[metric_id] = t.get("status") == "FAIL"
    out: dict[str, ColumnVerdict] = {}
    for m in data.get("metrics", []):
        cfg = m.get("config") or {}
        if not str(cfg.get("type", "")).endswith(":ValueDrift"):
            continue
        column, method = str(cfg["column"]), str(cfg.get("method"))
        score = float(m["value"])
        threshold = cfg.get("threshold")
        threshold = None if threshold is None else float(threshold)
        if m.get("id") in failed:
            drifted = failed[m["id"]]
        else:
            drifted = _drifted_without_test(method, score, threshold)
        out[column] = ColumnVerdict(column=column, drifted=drifted, stattest=method, score=score,
                                    threshold=threshold)
    return out
