"""End to end on the real broker: worker throughput against raw consumers, detection latency, memory per model.

    .venv/bin/python bench/throughput.py              # ~10 minutes; prints and writes docs/benchmarks.md
    .venv/bin/python bench/throughput.py --quick      # ~3 minutes: fewer events, models and repetitions
    .venv/bin/python bench/throughput.py --no-write   # print only

The broker is ``KAFKA_BOOTSTRAP_SERVERS`` when set, else ``opsloop.services.kafka.start()`` (which finds one
already running at 127.0.0.1:9092 or starts the project's own). Every run uses fresh topic namespaces and
temporary SQLite databases (and PostgreSQL databases on ``OPSLOOP_TEST_PG_URL`` when it is set), starts real
``opsloop worker --no-relay`` processes exactly as ``tests/e2e/harness.py`` does (with the worker's production
batch settings, not the harness's test overrides), and deletes its topics and databases at the end.

1. Throughput: N prediction events for M models (``opsloop.simulate``, published with ``Publisher``), then
   side by side: (a) a raw kafka-python consumer that json-decodes each value, (b) one that also validates
   with ``PredictionEvent.model_validate_json``, (c) the worker from spawn until every record is applied
   (``partition_offsets``), its rate measured from the first applied batch to the last; (a) runs again last.
2. Detection latency: with the worker caught up and an ``opsloop relay`` running, a new model's reference
   and one quiet window are sent at once, then drifted events at a fixed rate; the time from the first
   drifted event sent to the finding row and to the trigger message on the triggers topic.
3. Memory: the worker's RSS (``/proc/<pid>/status`` VmRSS) after runs with 1, 10 and 50 models, and sampled
   every few seconds during the longest run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, machine_note, print_and_write, versions
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from sqlalchemy import create_engine, select, text

from opsloop.settings import WorkerSettings
from opsloop.simulate import Scenario, events
from storage.models import Finding
from streams.events import PredictionEvent
from streams.publisher import Publisher
from tests.e2e.harness import Loop

DOC = ROOT / "docs" / "benchmarks.md"
# the worker's own defaults (opsloop/settings.py), not the e2e harness's faster test settings
PRODUCTION = {"OPSLOOP_WORKER_BATCH_SIZE": "1000", "OPSLOOP_WORKER_BATCH_WITHIN_S": "1.0"}
WINDOW = WorkerSettings.model_fields["window_size"].default
REFERENCE = WorkerSettings.model_fields["reference_size"].default
MEMORY_REFERENCE = 1000
MEMORY_ENV = {**PRODUCTION, "OPSLOOP_WORKER_REFERENCE_SIZE": str(MEMORY_REFERENCE)}
POLL_S = 0.25
NAMESPACES: list[str] = []  # every namespace the bench created, deleted at the end


def new_loop(bootstrap: str, db_url: str, workdir: Path, **kwargs: Any) -> Loop:
    loop = Loop(bootstrap, db_url, workdir, **kwargs)
    if loop.namespace not in NAMESPACES:
        NAMESPACES.append(loop.namespace)
    return loop


def rss_mib(pid: int) -> float | None:
    try:
        import psutil  # type: ignore[import-untyped]

        return float(psutil.Process(pid).memory_info().rss) / 2**20
    except ImportError:
        pass
    except Exception:  # noqa: BLE001 - the process is gone
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


# -- the stream -------------------------------------------------------------------------------------------


def model_values(model: str, n: int, seed: int, **scenario: Any) -> list[bytes]:
    sc = Scenario(model=model, n_events=n, drift_after=scenario.pop("drift_after", n), seed=seed, **scenario)
    return [e.model_dump_json().encode() for e in events(sc)]


def interleave(per_model: dict[str, list[bytes]]) -> list[tuple[str, bytes]]:
    """Round-robin over the models, each model's events in order (as concurrent apps would send them)."""
    out: list[tuple[str, bytes]] = []
    lists = list(per_model.items())
    longest = max(len(v) for _, v in lists)
    for i in range(longest):
        for model, values in lists:
            if i < len(values):
                out.append((model, values[i]))
    return out


def cycled(values: list[bytes], n: int) -> list[bytes]:
    """``n`` events from repeating ``values`` with fresh event and prediction ids each round."""
    out = list(values[:n])
    rnd = 1
    while len(out) < n:
        tag = f"-r{rnd}-".encode()
        out += [v.replace(b"-7-", tag, 2) for v in values[: n - len(out)]]
        rnd += 1
    return out


def renamed(values: list[bytes], template: str, model: str) -> list[bytes]:
    """The template model's events for another model (name and ids swapped): many models, cheaply."""
    a, b = template.encode(), model.encode()
    return [v.replace(a, b) for v in values]


def publisher(loop: Loop) -> Publisher:
    """The harness's publisher, but a send fails after 15 s instead of blocking a minute when the broker is gone."""
    return Publisher(loop.bootstrap, topics=loop.topics, max_block_ms=15_000)


def publish(loop: Loop, values: list[tuple[str, bytes]]) -> float:
    t0 = time.perf_counter()
    with publisher(loop) as pub:
        for key, value in values:
            pub.raw(loop.topics.predictions, key, value)
    return time.perf_counter() - t0


# -- 1. throughput ----------------------------------------------------------------------------------------


def raw_consume(
    bootstrap: str, topic: str, n: int, *, validate: bool, timeout: float = 300
) -> dict[str, float]:
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest",
                             enable_auto_commit=False)  # fmt: skip
    t_start = time.perf_counter()
    count = 0
    first: tuple[float, int] | None = None
    try:
        while count < n:
            if time.perf_counter() - t_start > timeout:
                raise RuntimeError(f"raw consumer read {count} of {n} in {timeout:.0f} s")
            batch = consumer.poll(timeout_ms=1000, max_records=1000)
            for records in batch.values():
                for rec in records:
                    if validate:
                        PredictionEvent.model_validate_json(rec.value)
                    else:
                        json.loads(rec.value)
                    count += 1
            if count and first is None:
                first = (time.perf_counter(), count)
                cpu0 = time.process_time()
        t_end, cpu1 = time.perf_counter(), time.process_time()
    finally:
        consumer.close()
    assert first is not None
    return {"rate": (count - first[1]) / (t_end - first[0]), "startup": first[0] - t_start,
            "total": t_end - t_start, "n": count, "cpu_rate": (count - first[1]) / (cpu1 - cpu0)}  # fmt: skip


@dataclass
class WorkerRun:
    startup: float = 0.0
    rate: float = 0.0
    seconds: float = 0.0
    rss: list[tuple[float, float]] = field(default_factory=list)  # (seconds since spawn, MiB)
    pid: int = 0
    cpu_rate: float = 0.0  # events per CPU second of the worker process (all its threads)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and all its threads, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_worker(loop: Loop, n: int, *, sample_every: float = 2.0, timeout: float = 1800,
               keep: bool = False) -> WorkerRun:  # fmt: skip
    """Spawn ``opsloop worker --no-relay`` and wait until ``n`` records are applied; RSS sampled meanwhile."""
    t_spawn = time.perf_counter()
    proc = loop.worker(relay=False)
    run = WorkerRun(pid=proc.pid)
    first: tuple[float, int] | None = None
    next_sample = 0.0
    while True:
        now = time.perf_counter()
        applied = loop.applied_offsets()
        if applied and first is None:
            first = (now, applied)
            cpu0 = cpu_seconds(proc.pid)
        if now - t_spawn >= next_sample:
            mib = rss_mib(proc.pid)
            if mib is not None:
                run.rss.append((now - t_spawn, mib))
            next_sample += sample_every
        if applied >= n:
            break
        if proc.poll() is not None:
            raise RuntimeError(f"worker exited with {proc.returncode}:\n{loop.logs()}")
        if now - t_spawn > timeout:
            raise RuntimeError(f"worker applied {applied} of {n} in {timeout:.0f} s:\n{loop.logs()}")
        time.sleep(POLL_S)
    assert first is not None
    t_end = time.perf_counter()
    cpu1 = cpu_seconds(proc.pid)
    run.cpu_rate = (n - first[1]) / (cpu1 - cpu0) if cpu1 > cpu0 else float("nan")
    run.startup = first[0] - t_spawn
    run.seconds = t_end - first[0]
    run.rate = (n - first[1]) / run.seconds if run.seconds > 0 else float("nan")
    time.sleep(2.0)  # settle, then the RSS after the run
    mib = rss_mib(proc.pid)
    if mib is not None:
        run.rss.append((time.perf_counter() - t_spawn, mib))
    if not keep:
        loop.kill(proc, sig=15)
    return run


def _workers(
    bootstrap: str, work: Path, dbs: list[tuple[str, str]], first: Loop, loops: list[tuple[str, Loop]], n: int
) -> list[tuple[str, WorkerRun]]:
    """(c) on each database: the first (SQLite) worker stays up for the latency part, the others stop."""
    results = []
    for i, (label, url) in enumerate(dbs):
        if i:
            (work / label).mkdir()
            lp = new_loop(bootstrap, url, work / label, namespace=first.namespace,
                          extra_env={**PRODUCTION, "OPSLOOP_WORKER_APP_ID": f"opsloop-{first.namespace}-{label}"})  # fmt: skip
            loops.append((label, lp))
        else:
            lp = first
        run = run_worker(lp, n, keep=i == 0)
        results.append((label, run))
        print(f"  (c) worker on {label}: {run.rate:,.0f}/s after a {run.startup:.1f} s start-up", flush=True)
    return results


def throughput(
    args: argparse.Namespace, bootstrap: str, work: Path, dbs: list[tuple[str, str]]
) -> tuple[str, Loop, dict[str, Any]]:
    per_model = args.events // args.models
    print(f"  generating {per_model * args.models:,} events for {args.models} models", flush=True)
    t0 = time.perf_counter()
    values = interleave(
        {f"model-{i}": model_values(f"model-{i}", per_model, seed=i) for i in range(args.models)}
    )
    gen_s = time.perf_counter() - t0
    n = len(values)
    (work / "sqlite").mkdir()
    loops = []
    first = new_loop(bootstrap, dbs[0][1], work / "sqlite", extra_env=PRODUCTION)
    loops.append((dbs[0][0], first))
    prod_s = publish(first, values)
    print(f"  published {n:,} events in {prod_s:.1f} s ({n / prod_s:,.0f}/s)", flush=True)
    topic = first.topics.predictions
    a = raw_consume(bootstrap, topic, n, validate=False)
    print(f"  (a) raw decode: {a['rate']:,.0f}/s", flush=True)
    b = raw_consume(bootstrap, topic, n, validate=True)
    print(f"  (b) raw decode + validate: {b['rate']:,.0f}/s", flush=True)
    results: list[tuple[str, WorkerRun]] = []
    try:
        results = _workers(bootstrap, work, dbs, first, loops, n)
    except BaseException:
        for _, lp in loops:
            lp.close()
        raise
    a2 = raw_consume(bootstrap, topic, n, validate=False)
    for _, lp in loops[1:]:
        lp.close()
    print(f"  (a) raw decode again: {a2['rate']:,.0f}/s", flush=True)
    a_rate = statistics.mean([a["rate"], a2["rate"]])
    a_cpu = statistics.mean([a["cpu_rate"], a2["cpu_rate"]])

    lines = [
        (
            f"{n:,} prediction events ({args.models} models x {per_model:,}, 10 features each, ~430 bytes of JSON, "
            f"gzip) in a fresh namespace with {first.partitions} partitions; published in {prod_s:.0f} s "
            f"({n / prod_s:,.0f} events/s with `Publisher`; generating them took {gen_s:.0f} s). Rates run from "
            "the first records read or applied to the last, so connection, group join and start-up are not in "
            "them (start-up is listed apart)."
        ),
        "",
        (
            "| reader | events/s (wall clock) | events per CPU second | start-up | worker / this, wall | "
            "worker / this, CPU |"
        ),
        "|---|---:|---:|---:|---:|---:|",
        (
            f"| (a) raw kafka-python consumer, `json.loads` only (mean of a run before and after the workers: "
            f"{a['rate']:,.0f} and {a2['rate']:,.0f}/s) | {a_rate:,.0f} | {a_cpu:,.0f} | {a['startup']:.1f} s | | |"
        ),
        (
            f"| (b) raw consumer + `PredictionEvent.model_validate_json` | {b['rate']:,.0f} | {b['cpu_rate']:,.0f} "
            f"| {b['startup']:.1f} s | | |"
        ),
    ]
    for label, run in results:
        lines.append(f"| (c) `opsloop worker --no-relay` on {label} (batches of {PRODUCTION['OPSLOOP_WORKER_BATCH_SIZE']}"
                     f" within {PRODUCTION['OPSLOOP_WORKER_BATCH_WITHIN_S']} s, windows of {WINDOW:,}, reference "
                     f"{REFERENCE:,}) | **{run.rate:,.0f}** | {run.cpu_rate:,.0f} | {run.startup:.1f} s (spawn to "
                     f"first batch applied) | c/a = **{run.rate / a_rate:.3f}**, c/b = **{run.rate / b['rate']:.3f}** "
                     f"| c/a = **{run.cpu_rate / a_cpu:.3f}**, c/b = **{run.cpu_rate / b['cpu_rate']:.3f}** |")  # fmt: skip
    lines += [
        "",
        (
            "Wall-clock rates move with the neighbours' load (the raw consumers by +-20 % between runs); the CPU "
            "columns divide the events by the CPU time the reader used (the bench process for (a) and (b), the "
            "worker process with all its threads for (c), from `/proc/<pid>/stat`), which is steadier."
        ),
    ]
    if len(dbs) == 1:
        lines += ["", "PostgreSQL: not measured (set `OPSLOOP_TEST_PG_URL` to add it)."]
    figures = {"a": a_rate, "b": b["rate"], "c": {label: run.rate for label, run in results},
               "rss": results[0][1].rss, "n": n}  # fmt: skip
    rss = results[0][1].rss
    if rss:
        mibs = [m for _, m in rss]
        lines += [
            "",
            (
                f"Worker RSS during (c) on {results[0][0]}, sampled every 2 s ({len(rss)} samples over "
                f"{rss[-1][0]:.0f} s): first {mibs[0]:.0f} MiB, last {mibs[-1]:.0f} MiB, max {max(mibs):.0f} MiB."
            ),
        ]
    return "\n".join(lines), first, figures


# -- 2. detection latency ---------------------------------------------------------------------------------


class TriggerWatch(threading.Thread):
    """Records when each model's first trigger message arrives on the triggers topic."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        super().__init__(daemon=True)
        self.consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
        deadline = time.monotonic() + 30
        parts = self.consumer.partitions_for_topic(topic)
        while not parts and time.monotonic() < deadline:
            self.consumer.poll(timeout_ms=100)  # fetches metadata
            parts = self.consumer.partitions_for_topic(topic)
        if not parts:
            raise RuntimeError(f"no partitions for {topic}")
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        self.consumer.assign(tps)
        self.consumer.seek_to_end(*tps)
        for tp in tps:  # resolve the end offsets now, before anything is published
            self.consumer.position(tp)
        self.seen: dict[str, float] = {}
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            for records in self.consumer.poll(timeout_ms=100).values():
                now = time.perf_counter()
                for rec in records:
                    model = json.loads(rec.value).get("model")
                    self.seen.setdefault(model, now)
        self.consumer.close()


def first_finding(loop: Loop, model: str) -> bool:
    with loop.sessions() as s:
        return s.scalar(select(Finding.finding_key).where(Finding.model == model).limit(1)) is not None


def latency(args: argparse.Namespace, loop: Loop, bootstrap: str, applied: int) -> tuple[str, dict[str, Any]]:
    relay = loop.relay()
    watch = TriggerWatch(bootstrap, loop.topics.triggers)
    watch.start()
    rows = []
    try:
        for rep in range(args.latency_reps):
            model = f"latency-{rep}"
            quiet = REFERENCE + WINDOW  # the reference, then one quiet window
            values = model_values(model, quiet + args.drift_events, seed=100 + rep, drift_after=quiet)
            with publisher(loop) as pub:
                for v in values[:quiet]:
                    pub.raw(loop.topics.predictions, model, v)
            applied += quiet
            deadline = time.perf_counter() + 300
            while loop.applied_offsets() < applied:
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"worker did not catch up:\n{loop.logs()}")
                time.sleep(POLL_S)
            found: dict[str, float] = {}
            stop = threading.Event()

            def watch_db(m: str = model, out: dict[str, float] = found, done: threading.Event = stop) -> None:
                while not done.is_set() and "finding" not in out:
                    if first_finding(loop, m):
                        out["finding"] = time.perf_counter()
                    time.sleep(0.05)

            poller = threading.Thread(target=watch_db, daemon=True)
            poller.start()
            sent = 0
            with publisher(loop) as pub:
                t0 = time.perf_counter()
                for i, v in enumerate(values[quiet:]):
                    if time.perf_counter() - t0 > 120:
                        break  # no finding after 120 s: reported as missing (nan), not waited for forever
                    target = t0 + i / args.rate
                    pause = target - time.perf_counter()
                    if pause > 0:
                        time.sleep(pause)
                    pub.raw(loop.topics.predictions, model, v)
                    sent += 1
                    if "finding" in found and model in watch.seen:
                        break
            applied += sent
            deadline = time.perf_counter() + 60
            while ("finding" not in found or model not in watch.seen) and time.perf_counter() < deadline:
                time.sleep(0.05)
            stop.set()
            poller.join()
            row = {"finding": found.get("finding", float("nan")) - t0,
                   "trigger": watch.seen.get(model, float("nan")) - t0, "sent": sent}  # fmt: skip
            rows.append(row)
            print(f"  latency run {rep + 1}: finding {row['finding']:.2f} s, trigger {row['trigger']:.2f} s "
                  f"({sent:,} drifted events sent)", flush=True)  # fmt: skip
    finally:
        watch.stopped.set()
        watch.join(timeout=5)
        loop.kill(relay, sig=15)
    fill = WINDOW / args.rate
    med_f = statistics.median(r["finding"] for r in rows)
    med_t = statistics.median(r["trigger"] for r in rows)
    lines = [
        (
            f"A new model per run: its {REFERENCE:,}-event reference and one quiet {WINDOW:,}-event window sent at "
            f"once and applied, then drifted events (x1 and x4 +1 sd, country mix changed: `opsloop.simulate`) at "
            f"**{args.rate:,.0f} events/s** into count windows of **{WINDOW:,} events** (the defaults; trigger policy "
            "1 of 1 windows), so the first drifted window fills in "
            f"{fill:.1f} s. The worker (batches of 1000 within 1.0 s) and an `opsloop relay` process (polling the "
            "outbox every 0.5 s) run beside the bench. Times from the first drifted event handed to the producer:"
        ),
        "",
        "| run | finding stored | trigger on the triggers topic |",
        "|---:|---:|---:|",
    ]
    for i, r in enumerate(rows, 1):
        lines.append(f"| {i} | {r['finding']:.2f} s | {r['trigger']:.2f} s |")
    lines += [
        f"| median | **{med_f:.2f} s** | **{med_t:.2f} s** |",
        "",
        (
            f"Beyond filling the window ({fill:.1f} s at this rate): {med_f - fill:.2f} s to the finding "
            f"(batching up to 1.0 s, applying, committing) and {med_t - med_f:.2f} s more to the trigger message "
            "(relay poll interval 0.5 s, publish, consume). The window dominates: at 100 events/s the same window "
            "takes 10 s to fill; a drift that starts mid-window waits for that window (or is diluted into the next)."
        ),
    ]
    return "\n".join(lines), {"finding": med_f, "trigger": med_t, "applied": applied}


# -- 3. memory per model ----------------------------------------------------------------------------------


def memory(
    args: argparse.Namespace, bootstrap: str, work: Path, db_url: Callable[[str], str]
) -> tuple[str, dict[str, Any]]:
    template = "mem-template"
    per_model = MEMORY_REFERENCE + args.memory_windows * WINDOW
    base = model_values(template, per_model, seed=7)
    results = []
    for count in args.memory_models:
        long_run = count == min(args.memory_models)
        values_one = cycled(base, args.long_events) if long_run else base
        per = {
            f"mem-{count}-{i:03d}": renamed(values_one, template, f"mem-{count}-{i:03d}")
            for i in range(count)
        }
        values = interleave(per)
        d = work / f"mem{count}"
        d.mkdir()
        loop = new_loop(bootstrap, db_url(f"mem{count}"), d, extra_env=MEMORY_ENV)
        try:
            publish(loop, values)
            run = run_worker(loop, len(values), sample_every=3.0)
        finally:
            loop.close()
        results.append((count, len(values), run))
        print(f"  {count} model(s), {len(values):,} events: RSS {run.rss[-1][1]:.0f} MiB "
              f"(max {max(m for _, m in run.rss):.0f}), {run.rate:,.0f} events/s", flush=True)  # fmt: skip
    lines = [
        (
            f"A fresh worker per row, on SQLite, with `OPSLOOP_WORKER_REFERENCE_SIZE={MEMORY_REFERENCE}` so that "
            "50 models fit in the run (a model's steady-state memory does not depend on it: profiles and "
            "sketches have a fixed number of bins). Each model sends its reference and "
            f"{args.memory_windows} windows of {WINDOW:,}; the 1-model row runs longer ({args.long_events:,} "
            "events, the same block repeated with new ids). RSS from `/proc/<pid>/status` (VmRSS) 2 s after the "
            "last record was applied; events/s include the models' warm-up."
        ),
        "",
        "| models | events | worker RSS after the run | max RSS during the run | events/s |",
        "|---:|---:|---:|---:|---:|",
    ]
    for count, n, run in results:
        lines.append(f"| {count} | {n:,} | {run.rss[-1][1]:.0f} MiB | {max(m for _, m in run.rss):.0f} MiB "
                     f"| {run.rate:,.0f} |")  # fmt: skip
    (c0, _, r0), (c1, _, r1) = results[0], results[-1]
    per_model_mib = (r1.rss[-1][1] - r0.rss[-1][1]) / (c1 - c0) if c1 > c0 else float("nan")
    long_rss = [m for _, m in r0.rss]
    running = [m for t, m in r0.rss if t >= r0.startup] or long_rss
    lines += [
        "",
        (
            f"Memory per monitored model: ({r1.rss[-1][1]:.0f} - {r0.rss[-1][1]:.0f}) / ({c1} - {c0}) = "
            f"**{per_model_mib * 1024:,.0f} KiB** (RSS after {c1} models minus after {c0})."
        ),
        (
            f"Flat as the stream goes on? The {c0}-model run ({args.long_events:,} events, {r0.seconds:.0f} s of "
            f"processing), RSS every 3 s from the first applied batch: first {running[0]:.0f} MiB, last "
            f"{running[-1]:.0f} MiB, max {max(running):.0f} MiB; all samples: "
            + ", ".join(f"{m:.0f}" for m in long_rss)
            + " MiB (the first ones during start-up)."
        ),
    ]
    traced = retained_per_model()
    lines.append(
        f"Retained by the worker's code per monitored model, measured in-process with `tracemalloc` (10 models "
        f"added after 5, each past its reference and two windows; state cache, reference profile, window "
        f"sketches): **{traced / 1024:,.0f} KiB**. RSS differences of a few MiB are within the noise of the "
        "allocator, so this is the figure to scale by; the rest of the RSS (~200 MiB) is the interpreter with "
        "faust, SQLAlchemy, numpy and scipy loaded."
    )
    print(f"  retained per model (tracemalloc): {traced / 1024:,.0f} KiB", flush=True)
    return "\n".join(lines), {"per_model_kib": per_model_mib * 1024, "traced_kib": traced / 1024}


def retained_per_model(first: int = 5, more: int = 10) -> float:
    """Bytes the worker's code keeps per monitored model, by tracemalloc, in-process (no Kafka).

    ``BatchProcessor`` on a temporary SQLite file applies ``first`` models (reference of
    ``MEMORY_REFERENCE`` events and two windows each), then ``more`` models; the growth of traced memory
    after a garbage collection, divided by ``more``, is what a model costs once it is monitored.
    """
    import gc
    import tracemalloc

    from storage.db import make_engine, migrate, session_factory
    from streams.model_stream import StreamConfig
    from streams.processor import BatchProcessor, ProcessorConfig, Record
    from streams.topics import Topics

    template = "mem-template"
    base = model_values(template, MEMORY_REFERENCE + 2 * WINDOW, seed=7)
    work = Path(tempfile.mkdtemp(prefix="opsloop-bench-"))
    engine = make_engine(f"sqlite:///{work / 'retained.db'}")
    try:
        migrate(engine)
        config = ProcessorConfig(consumer_group="bench", stream=StreamConfig(reference_size=MEMORY_REFERENCE),
                                 topics=Topics("bench"))  # fmt: skip
        proc = BatchProcessor(session_factory(engine), config)
        offset = 0

        def feed(models: range) -> None:
            nonlocal offset
            values = interleave({f"mem-{i:03d}": renamed(base, template, f"mem-{i:03d}") for i in models})
            records = []
            for model, value in values:
                records.append(Record("bench", 0, offset, model.encode(), value))
                offset += 1
            for i in range(0, len(records), 1000):
                proc.process(records[i : i + 1000])

        tracemalloc.start()
        feed(range(first))
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        feed(range(first, first + more))
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        return (after - before) / more
    finally:
        engine.dispose()
        shutil.rmtree(work, ignore_errors=True)


# -- databases and cleanup --------------------------------------------------------------------------------


class Databases:
    """Temporary SQLite files and, with ``OPSLOOP_TEST_PG_URL``, temporary PostgreSQL databases."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.pg = os.environ.get("OPSLOOP_TEST_PG_URL")
        self.created: list[str] = []

    def sqlite(self, name: str) -> str:
        return f"sqlite:///{self.work / (name + '.db')}"

    def postgres(self, name: str) -> str:
        assert self.pg
        db = f"bench_{name}_{uuid.uuid4().hex[:8]}"
        admin = create_engine(self.pg, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{db}"'))
        admin.dispose()
        self.created.append(db)
        return self.pg.rsplit("/", 1)[0] + "/" + db

    def drop(self) -> None:
        if not self.pg or not self.created:
            return
        admin = create_engine(self.pg, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            for db in self.created:
                c.execute(text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
        admin.dispose()


def delete_topics(bootstrap: str, prefixes: list[str]) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="opsloop-bench")
    try:
        names = [t for t in admin.list_topics() if any(t.startswith(p + ".") for p in prefixes)]
        if names:
            admin.delete_topics(names)
    except Exception as exc:  # noqa: BLE001 - cleanup is best effort
        print(f"  (could not delete the bench's topics: {exc})")
    finally:
        admin.close()


def broker() -> str:
    env = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if env:
        return env
    from opsloop.services import kafka

    return kafka.start()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer events, models and repetitions")
    parser.add_argument(
        "--events", type=int, help="events for the throughput run (default 200,000; quick 40,000)"
    )
    parser.add_argument("--models", type=int, default=4, help="models in the throughput run")
    parser.add_argument("--rate", type=float, default=1000.0, help="drifted events per second (latency)")
    parser.add_argument(
        "--memory-models", type=int, nargs="+", help="model counts for the memory runs (default 1 10 50)"
    )
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args()
    full = not args.quick
    args.events = args.events or (200_000 if full else 40_000)
    args.latency_reps = 3 if full else 2
    args.drift_events = 3 * WINDOW
    args.memory_models = args.memory_models or [1, 10, 50]
    args.memory_windows = 2 if full else 1
    args.long_events = 300_000 if full else 40_000

    # SIGTERM ends the run through the finally blocks (workers stopped, topics and databases removed)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    bootstrap = broker()
    work = Path(tempfile.mkdtemp(prefix="opsloop-bench-"))
    dbs = Databases(work)
    started = time.perf_counter()
    try:
        targets = [("SQLite", dbs.sqlite("throughput"))]
        if dbs.pg:
            targets.append(("PostgreSQL", dbs.postgres("throughput")))
        print("1. throughput", flush=True)
        tp_text, loop, tp = throughput(args, bootstrap, work, targets)
        print("2. detection latency", flush=True)
        try:
            lat_text, _ = latency(args, loop, bootstrap, tp["n"])
        finally:
            loop.close()
        print("3. memory per model", flush=True)
        mem_text, _ = memory(args, bootstrap, work, dbs.sqlite)
    finally:
        for cleanup in (dbs.drop, lambda: delete_topics(bootstrap, NAMESPACES)):
            try:
                cleanup()
            except Exception as exc:  # noqa: BLE001 - best effort; report and go on
                print(f"  (cleanup failed: {exc})")
        shutil.rmtree(work, ignore_errors=True)
    elapsed = time.perf_counter() - started
    head = (
        f"Measured {machine_note()}. {versions('kafka', 'faust', 'pydantic', 'sqlalchemy', 'numpy')}; "
        f"broker: the project's local Kafka (`opsloop.services.kafka`) at {bootstrap}. {'Quick run (`--quick`)' if args.quick else 'Full run'} "
        f"in {elapsed / 60:.1f} minutes; reproduce with `.venv/bin/python bench/throughput.py"
        f"{' --quick' if args.quick else ''}` (the broker from `KAFKA_BOOTSTRAP_SERVERS` or "
        "`python -m opsloop.services.kafka start`; PostgreSQL too when `OPSLOOP_TEST_PG_URL` is set)."
    )
    text_out = (f"{head}\n\n### Throughput\n\n{tp_text}\n\n### Detection latency\n\n{lat_text}\n\n"
                f"### Memory per monitored model\n\n{mem_text}")  # fmt: skip
    print_and_write(DOC, "throughput", text_out, title="Benchmarks", heading="Throughput, latency and memory",
            write=not args.no_write)


if __name__ == "__main__":
    main()
