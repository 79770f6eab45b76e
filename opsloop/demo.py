"""The live demo on embedded defaults: local Kafka, SQLite, a worker with its relay, and a drifting app.

It prints findings as the worker stores them and the trigger as it arrives on the triggers topic, then stops
(or stops at Ctrl-C at any moment), cleaning up what it started.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import func, select

_BOLD, _RED, _GREEN, _DIM, _END = ("\033[1m", "\033[31m", "\033[32m", "\033[2m", "\033[0m") if sys.stdout.isatty() \
    else ("", "", "", "", "")


def _say(msg: str) -> None:
    print(f"{_DIM}{datetime.now():%H:%M:%S}{_END} {msg}", flush=True)


def run_demo(args: argparse.Namespace) -> int:
    from opsloop import wiring
    from opsloop.services import kafka as local_kafka
    from opsloop.settings import load
    from opsloop.simulate import Scenario, events
    from storage.models import Finding, PartitionOffset, Trigger
    from streams.publisher import Publisher
    from streams.topics import Topics

    settings, ks, dbs, ws = load()
    wiring.setup_logging("WARNING")
    logging.getLogger("kafka").setLevel(logging.ERROR)
    home = Path(wiring.home(settings))
    started_kafka = False
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or os.environ.get("OPSLOOP_KAFKA_BOOTSTRAP_SERVERS"):
        bootstrap = ks.bootstrap_servers
        _say(f"using the Kafka broker at {bootstrap}")
    else:
        _say("starting the local Apache Kafka broker (KRaft, from Maven Central jars)...")
        already = local_kafka.is_ready(ks.bootstrap_servers, timeout=2)
        bootstrap = local_kafka.start()
        started_kafka = not already
        _say(f"Kafka ready at {bootstrap}")

    namespace = f"demo{int(time.time())}"
    topics = Topics(namespace)
    db_url = dbs.url or f"sqlite:///{home / 'demo.db'}"
    if not dbs.url:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{home / 'demo.db'}{suffix}").unlink(missing_ok=True)
    db = wiring.database(type(dbs)(url=db_url))
    wiring.ensure_topics(type(ks)(bootstrap_servers=bootstrap, namespace=namespace, partitions=ks.partitions))

    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "OPSLOOP_KAFKA_NAMESPACE": namespace,
           "OPSLOOP_DB_URL": db_url, "OPSLOOP_WORKER_APP_ID": f"opsloop-{namespace}",
           "OPSLOOP_WORKER_BATCH_WITHIN_S": "0.5", "OPSLOOP_HOME": str(home)}
    env.pop("OPSLOOP_KAFKA_BOOTSTRAP_SERVERS", None)
    log_path = home / "demo-worker.log"
    worker_log = open(log_path, "wb")  # noqa: SIM115 - closed in finally
    worker = subprocess.Popen([sys.executable, "-m", "opsloop.cli", "worker"], env=env, stdout=worker_log,
                              stderr=subprocess.STDOUT, start_new_session=True)
    _say(f"worker started (pid {worker.pid}, log {log_path}); database {wiring.redact_url(db_url)}")

    drift_after = ws.reference_size + 2 * ws.window_size  # two quiet windows after the reference, then drift
    n_events = args.events or drift_after + 4 * ws.window_size
    sc = Scenario(model="credit-risk", n_events=n_events, drift_after=drift_after,
                  drifted=("x1", "x4", "country"), start=datetime.now(timezone.utc),
                  step=timedelta(seconds=1.0 / args.rate))
    stop = threading.Event()
    sent = [0]

    def app() -> None:
        with Publisher(bootstrap, topics=topics) as pub:
            t0 = time.monotonic()
            for i, e in enumerate(events(sc)):
                if stop.is_set():
                    return
                if i == sc.drift_after:
                    _say(f"{_BOLD}the app's traffic starts to drift now (x1, x4 shift by 1 sd; country mix "
                         f"changes){_END}")
                pub.prediction(e)
                sent[0] = i + 1
                lag = t0 + (i + 1) / args.rate - time.monotonic()
                if lag > 0:
                    time.sleep(lag)

    from kafka import KafkaConsumer

    consumer = KafkaConsumer(topics.triggers, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             group_id=None, consumer_timeout_ms=200)
    producer_thread = threading.Thread(target=app, daemon=True)
    _say(f"simulated app sends {n_events} predictions at {args.rate:.0f}/s to {topics.predictions}; the first "
         f"{ws.reference_size} become the reference, then windows of {ws.window_size} are checked")
    producer_thread.start()
    seen_findings: set[int] = set()
    triggers_seen = 0
    interrupted = False
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        last_progress = 0.0
        while True:
            with db.sessions() as s:
                applied = sum(o + 1 for o in s.scalars(select(PartitionOffset.offset)))
                for f in s.scalars(select(Finding).order_by(Finding.id)):
                    if f.id not in seen_findings:
                        seen_findings.add(f.id)
                        _say(f"{_RED}FINDING{_END} [{f.severity}] {f.summary}")
                n_trig = s.scalar(select(func.count()).select_from(Trigger)) or 0
            for msg in consumer:
                triggers_seen += 1
                body = json.loads(msg.value)
                _say(f"{_GREEN}TRIGGER on {topics.triggers}{_END}: {body['action']} {body['model']} "
                     f"v{body['model_version']} (id {dict(msg.headers)['opsloop-id'].decode()}): {body['reason']}")
            if time.monotonic() - last_progress > 5:
                _say(f"{_DIM}sent {sent[0]}, applied {applied}, findings {len(seen_findings)}, "
                     f"triggers {n_trig}{_END}")
                last_progress = time.monotonic()
            if worker.poll() is not None:
                _say(f"the worker exited with code {worker.returncode}; see {log_path}")
                return 1
            if not producer_thread.is_alive() and applied >= n_events and triggers_seen and \
                    n_trig == triggers_seen:
                _say(f"{_BOLD}done{_END}: {n_events} events, {len(seen_findings)} findings, {triggers_seen} "
                     f"trigger. Inspect them with `opsloop findings` / `opsloop triggers` "
                     f"(OPSLOOP_DB_URL={wiring.redact_url(db_url)}).")
                return 0
            time.sleep(1.0)
    except KeyboardInterrupt:
        interrupted = True
        _say("stopping (Ctrl-C)...")
        return 130
    finally:
        stop.set()
        consumer.close()
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
        worker_log.close()
        if started_kafka and not args.keep_broker:
            local_kafka.stop()
            _say("local Kafka stopped")
        _say("stopped cleanly" if interrupted else "bye")
