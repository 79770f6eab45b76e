"""`opsloop report drift`: an Evidently data-drift report of one window, on demand.

``register(subparsers)`` is called from ``opsloop/cli.py``. Nothing here imports Evidently at module level.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from opsloop.reports import WINDOW_KINDS, ColumnVerdict, ReportError

_STATUS = {"drift": "DRIFT", "ok": "ok", "insufficient_data": "too few"}


def _table(verdicts: dict[str, ColumnVerdict], ours: dict[str, str] | None,
           skipped: tuple[str, ...]) -> list[str]:
    rows: list[tuple[str, ...]] = [("column", "evidently", "stattest", "score", "threshold", "opsloop")]
    for name, v in verdicts.items():
        mine = "open" if ours is None else _STATUS.get(ours.get(name, ""), ours.get(name, "-"))
        rows.append((name, "DRIFT" if v.drifted else "ok", v.stattest, f"{v.score:.4g}",
                     "-" if v.threshold is None else f"{v.threshold:g}", mine))
    for name in skipped:
        mine = "open" if ours is None else _STATUS.get(ours.get(name, ""), ours.get(name, "-"))
        rows.append((name, "skipped", "no values on one side", "-", "-", mine))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def cmd_report_drift(args: argparse.Namespace) -> int:
    from opsloop import wiring
    from opsloop.reports import drift_report, latest_version, opsloop_verdicts, summarize
    from opsloop.settings import load

    settings, _, dbs, worker = load()
    db = wiring.database(dbs)
    out_dir = Path(args.out) if args.out else Path(settings.home) / "reports"
    try:
        version = args.version
        if version is None:
            with db.sessions() as s:
                version = latest_version(s, args.model)
        paths = drift_report(db.sessions, args.model, version, args.window, args.kind, out_dir=out_dir,
                             sliding_panes=worker.sliding_panes)
    except ReportError as exc:
        print(f"opsloop: {exc}", file=sys.stderr)
        return 2
    with db.sessions() as s:
        ours = opsloop_verdicts(s, args.model, version, args.window, args.kind)
    verdicts = summarize(paths.json)
    print(f"html: {paths.html}")
    print(f"json: {paths.json}")
    state = "open window: opsloop has no verdict yet" if ours is None else "closed window"
    flagged = sum(v.drifted for v in verdicts.values())
    print(f"{args.model} v{version}, window {args.kind} #{args.window}: {paths.n_window} rows against "
          f"{paths.n_reference} reference rows ({state}); "
          f"Evidently flags {flagged} of {len(verdicts)} columns")
    for line in _table(verdicts, ours, paths.skipped):
        print(line)
    return 0


def register(subparsers: Any) -> None:
    """Add ``report drift`` to the ``opsloop`` command's subparsers."""
    report = subparsers.add_parser("report", help="on-demand reports (Evidently) for stored windows")
    kinds = report.add_subparsers(dest="report", required=True, metavar="REPORT")
    d = kinds.add_parser("drift", help="Evidently data-drift report of one window against the reference")
    d.add_argument("--model", required=True)
    d.add_argument("--version", default=None, help="model version (default: the most recently logged one)")
    d.add_argument("--window", type=int, required=True, help="window index, as in the window's finding")
    d.add_argument("--kind", choices=WINDOW_KINDS, default="count")
    d.add_argument("--out", default=None, help="output folder (default: $OPSLOOP_HOME/reports)")
    d.set_defaults(func=cmd_report_drift)
