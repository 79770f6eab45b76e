"""The `opsloop` command. Bad input gets one clear line and a non-zero exit."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from opsloop.errors import ConfigError, OpsloopError

if TYPE_CHECKING:
    from storage.models import Window

log = logging.getLogger("opsloop")


def _settings():  # type: ignore[no-untyped-def]
    from opsloop.settings import load

    return load()


def cmd_worker(args: argparse.Namespace) -> int:
    import faust

    from opsloop import wiring
    from streams.worker import make_app

    settings, ks, dbs, ws = _settings()
    wiring.setup_logging(settings.log_level)
    db = wiring.database(dbs)
    wiring.ensure_topics(ks)
    proc = wiring.processor(db.sessions, ks, ws)
    wc = wiring.worker_config(ks, ws, home=Path(wiring.home(settings)))
    app = make_app(wc, proc)
    llm = None
    if not args.no_llm:
        from streams.llm_stream import make_llm_agent

        llm = wiring.llm_processor(db.sessions, settings, ks, ws)
        make_llm_agent(app, wc, llm)
    relay = None
    if ws.relay and not args.no_relay:
        relay = wiring.relay(db.sessions, ks)
        relay.start_thread(ws.relay_interval_s)
    log.info("worker %s consuming %s from %s (database %s)", ws.app_id, "opsloop.predictions.v1",
             ks.bootstrap_servers, wiring.redact_url(dbs.resolved_url()))
    worker = faust.Worker(app, loglevel=settings.log_level.lower(), quiet=True, redirect_stdouts=False,
                          override_logging=False)
    try:
        worker.execute_from_commandline()
    finally:
        if relay:
            relay.close()
        if llm is not None:
            llm.close()
    return 0


def cmd_relay(args: argparse.Namespace) -> int:
    from opsloop import wiring

    settings, ks, dbs, ws = _settings()
    wiring.setup_logging(settings.log_level)
    db = wiring.database(dbs)
    wiring.ensure_topics(ks)
    relay = wiring.relay(db.sessions, ks)
    signal.signal(signal.SIGTERM, lambda *_: relay.stop())
    try:
        relay.run(ws.relay_interval_s)
    except KeyboardInterrupt:
        pass
    finally:
        relay.close()
    return 0


def cmd_topics(args: argparse.Namespace) -> int:
    from opsloop import wiring

    _, ks, _, _ = _settings()
    created = wiring.ensure_topics(ks, args.partitions)
    print("created: " + (", ".join(created) if created else "nothing (all topics exist)"))
    return 0


def cmd_db(args: argparse.Namespace) -> int:
    from storage.db import downgrade, make_engine, migrate

    _, _, dbs, _ = _settings()
    engine = make_engine(dbs.resolved_url())
    if args.action == "upgrade":
        migrate(engine, args.revision or "head")
    else:
        downgrade(engine, args.revision or "base")
    print(f"database {args.action}d")
    return 0


def _limit(args: argparse.Namespace) -> int:
    """``--limit`` of the listing commands: at least one row (a negative LIMIT lists everything on SQLite and
    is an error on PostgreSQL)."""
    if args.limit < 1:
        raise ConfigError(f"--limit must be >= 1, got {args.limit}")
    return int(args.limit)


def cmd_findings(args: argparse.Namespace) -> int:
    from opsloop import wiring
    from storage import repo

    limit = _limit(args)
    _, _, dbs, _ = _settings()
    db = wiring.database(dbs)
    with db.sessions() as s:
        rows = repo.list_findings(s, args.model, limit)
        for f in rows:
            if args.json:
                print(json.dumps({"id": f.id, "key": f.finding_key, "model": f.model, "version": f.model_version,
                                  "detector": f.detector, "severity": f.severity, "summary": f.summary,
                                  "details": f.details}, default=str))
            else:
                print(f"{f.created_at:%Y-%m-%d %H:%M:%S} {f.severity:8} {f.summary}")
    return 0


def _window_line(w: Window) -> str:
    """One closed window: each detector's verdict from its row, the drifted features named."""
    stats = w.stats or {}
    parts = []
    for key, label in (("drift", "drift"), ("prediction_drift", "prediction"), ("quality", "quality"),
                       ("volume", "volume"), ("fairness", "fairness"), ("safety", "safety")):  # LLM: safety
        verdict = stats.get(key)
        if not isinstance(verdict, dict):
            continue
        status = str(verdict.get("status", "-"))
        named = verdict.get("drifted_features") or []
        parts.append(f"{label} {status}" + (f" ({', '.join(map(str, named))})" if named else ""))
    when = w.end_at or w.created_at
    return (f"{when:%Y-%m-%d %H:%M:%S} {w.model}/{w.model_version} {w.kind} #{w.window_index} "
            f"{w.n_events} events: {'; '.join(parts) or 'no verdicts'}")


def cmd_windows(args: argparse.Namespace) -> int:
    """The newest closed windows, one line each; ``--json`` prints each row with every verdict, drift's
    per-feature numbers included (docs/design.md, "Window rows keep drift as columns")."""
    from opsloop import wiring
    from storage import repo

    limit = _limit(args)
    _, _, dbs, _ = _settings()
    db = wiring.database(dbs)
    with db.sessions() as s:
        for w in repo.list_windows(s, args.model, limit):
            if args.json:
                print(json.dumps({"id": w.id, "model": w.model, "version": w.model_version, "kind": w.kind,
                                  "index": w.window_index, "start_at": w.start_at, "end_at": w.end_at,
                                  "n_events": w.n_events, "reference_id": w.reference_id, "stats": w.stats},
                                 default=str))
            else:
                print(_window_line(w))
    return 0


def cmd_triggers(args: argparse.Namespace) -> int:
    from opsloop import wiring
    from storage import repo

    limit = _limit(args)
    _, _, dbs, _ = _settings()
    db = wiring.database(dbs)
    with db.sessions() as s:
        for t in repo.list_triggers(s, args.model, limit):
            print(f"{t.created_at:%Y-%m-%d %H:%M:%S} {t.id} {t.action:10} {t.status:10} {t.model}/{t.model_version}: "
                  f"{t.reason}")
    return 0


def cmd_trigger_decision(args: argparse.Namespace) -> int:
    """Approve (publish through the outbox) or reject a trigger that awaits approval."""
    from opsloop import wiring
    from storage import repo
    from streams.topics import Topics

    _, ks, dbs, _ = _settings()
    db = wiring.database(dbs)
    with db.sessions() as s, s.begin():
        outcome = repo.decide_trigger(s, args.trigger_id, approve=args.action == "approve",
                                      triggers_topic=Topics(ks.namespace).triggers, by=args.by)
    if outcome is None:
        raise ConfigError(f"no trigger {args.trigger_id!r} awaits approval")
    print(f"trigger {args.trigger_id} {outcome}")
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    """Retention: delete the prediction log, pending labels, kept LLM interactions and published outbox rows
    older than ``--older-than``, and with ``--windows-older-than`` the windows no finding names
    (storage/retention.py says what is kept and what pruning costs)."""
    from datetime import UTC, datetime, timedelta

    from opsloop import wiring
    from retrain.policies import parse_duration
    from storage.retention import prune

    def duration(flag: str, value: str) -> float:
        try:
            return parse_duration(value)
        except Exception:  # noqa: BLE001 - pydantic's error type; the message is ours
            raise ConfigError(f"{flag}: not a duration: {value!r} (use e.g. 30d, 12h, 2w)") from None

    older_than = duration("--older-than", args.older_than)
    windows_older_than = (None if args.windows_older_than is None
                          else duration("--windows-older-than", args.windows_older_than))
    if args.batch < 1:
        raise ConfigError(f"--batch must be >= 1, got {args.batch}")
    _, _, dbs, ws = _settings()
    if older_than < ws.label_delay_s:
        raise ConfigError(
            f"--older-than {args.older_than} is inside the label delay ({ws.label_delay_s / 86400:g} days, "
            f"OPSLOOP_WORKER_LABEL_DELAY_S): labels may still join predictions that recent; use at least that")
    if windows_older_than is not None and windows_older_than < older_than:
        raise ConfigError(
            f"--windows-older-than {args.windows_older_than} is shorter than --older-than {args.older_than}: "
            "windows are the summaries of the raw rows and are kept at least as long")
    now = datetime.now(UTC)
    cutoff = now - timedelta(seconds=older_than)
    windows_cutoff = None if windows_older_than is None else now - timedelta(seconds=windows_older_than)
    db = wiring.database(dbs)
    counts = prune(db.sessions, cutoff, windows_cutoff=windows_cutoff, batch=args.batch, dry_run=args.dry_run)
    verb = "would delete" if args.dry_run else "deleted"
    for table, n in counts.items():
        at = windows_cutoff if table == "windows" and windows_cutoff is not None else cutoff
        print(f"{table}: {verb} {n:,} rows older than {at:%Y-%m-%d %H:%M:%S} UTC")
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from opsloop.simulate import Scenario, events
    from streams.publisher import Publisher
    from streams.topics import Topics

    _, ks, _, _ = _settings()
    sc = Scenario(model=args.model, n_events=args.events, drift_after=args.drift_after,
                  drifted=tuple(args.drifted.split(",")) if args.drifted else ())
    with Publisher(ks.bootstrap_servers, topics=Topics(ks.namespace)) as pub:
        for e in events(sc):
            pub.prediction(e)
    print(f"published {args.events} prediction events for {args.model}")
    return 0


def cmd_schemas(args: argparse.Namespace) -> int:
    from pathlib import Path

    from streams.schemas import export

    for path in export(Path(args.folder)):
        print(f"wrote {path}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from opsloop.demo import run_demo

    return run_demo(args)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="opsloop", description="Monitoring and feedback loop for ML and LLM models")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    w = sub.add_parser("worker", help="run the stream worker (and the outbox relay)")
    w.add_argument("--no-relay", action="store_true", help="do not run the outbox relay in this process")
    w.add_argument("--no-llm", action="store_true", help="do not consume the LLM-interaction topic")
    w.set_defaults(func=cmd_worker)

    r = sub.add_parser("relay", help="run the outbox relay on its own")
    r.set_defaults(func=cmd_relay)

    t = sub.add_parser("topics", help="create the versioned topics")
    t.add_argument("action", choices=["create"])
    t.add_argument("--partitions", type=int, default=None)
    t.set_defaults(func=cmd_topics)

    d = sub.add_parser("db", help="database migrations")
    d.add_argument("action", choices=["upgrade", "downgrade"])
    d.add_argument("revision", nargs="?")
    d.set_defaults(func=cmd_db)

    for name, fn in (("findings", cmd_findings), ("windows", cmd_windows), ("triggers", cmd_triggers)):
        q = sub.add_parser(name, help=f"list stored {name}" + (", closed ones" if name == "windows" else ""))
        q.add_argument("--model")
        q.add_argument("--limit", type=int, default=50)
        if name != "triggers":
            q.add_argument("--json", action="store_true")
        q.set_defaults(func=fn)

    for verb in ("approve", "reject"):
        a = sub.add_parser(verb, help=f"{verb} a trigger that awaits approval")
        a.add_argument("trigger_id")
        a.add_argument("--by", default=os.environ.get("USER", "cli"), help="who decided (recorded)")
        a.set_defaults(func=cmd_trigger_decision, action=verb)

    pr = sub.add_parser("prune", help="retention: delete raw rows (prediction log, LLM interactions, published "
                        "outbox, pending labels) older than a cutoff, and window rows when asked")
    pr.add_argument("--older-than", required=True, help="e.g. 30d; at least the label delay (default 7d)")
    pr.add_argument("--windows-older-than", help="also delete closed windows' rows older than this (e.g. 180d; at "
                    "least --older-than); windows a finding names are kept")
    pr.add_argument("--dry-run", action="store_true", help="count what would be deleted, delete nothing")
    pr.add_argument("--batch", type=int, default=10_000, help="rows per transaction")
    pr.set_defaults(func=cmd_prune)

    s = sub.add_parser("simulate", help="publish simulated prediction traffic that drifts")
    s.add_argument("--model", default="credit-risk")
    s.add_argument("--events", type=int, default=10_000)
    s.add_argument("--drift-after", type=int, default=6_000)
    s.add_argument("--drifted", default="x1,x4,country", help="comma-separated features that shift")
    s.set_defaults(func=cmd_simulate)

    sc = sub.add_parser("schemas", help="export the JSON Schemas of the events")
    sc.add_argument("action", choices=["export"])
    sc.add_argument("--folder", default="schemas")
    sc.set_defaults(func=cmd_schemas)

    demo = sub.add_parser("demo", help="live demo: local broker, worker, relay and a drifting app")
    demo.add_argument("--events", type=int, default=None,
                      help="how many events the app sends (default: reference + 6 windows)")
    demo.add_argument("--rate", type=float, default=800.0, help="events per second the simulated app sends")
    demo.add_argument("--keep-broker", action="store_true", help="leave the local Kafka broker running")
    demo.set_defaults(func=cmd_demo)

    from opsloop import jobs_cli, llm_jobs_cli, references, reports_cli, webhooks_service
    from opsloop.services.cli import register

    register(sub)
    webhooks_service.register(sub)
    reports_cli.register(sub)
    references.register(sub)
    jobs_cli.register(sub)
    llm_jobs_cli.register(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"opsloop: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:  # a policy file's errors (PolicyFileError) name each line and field
        from retrain.policies import PolicyFileError

        if not isinstance(exc, PolicyFileError):
            raise
        print(f"opsloop: invalid policy file:\n{exc}", file=sys.stderr)
        return 2
    except OpsloopError as exc:
        print(f"opsloop: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
