"""Does freezing the start-up heap out of the garbage collector speed up the worker's batch path?

    .venv/bin/python bench/gc_freeze.py             # ~3 minutes; prints and writes docs/benchmarks.md
    .venv/bin/python bench/gc_freeze.py --no-write  # print only

Each run is a fresh process (a frozen heap cannot be undone for the other kind) that imports what a worker
imports, applies a 10,000-event warm-up with ``BatchProcessor.process`` on SQLite (not timed), then 20,000
events in batches of 1,000, each batch built just before it is applied, as a worker receives them. "frozen"
calls ``streams.processor.freeze_startup_heap()`` after the first timed batch, as the worker's agents do;
"plain" never does. The kinds alternate; figures are events per CPU second.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import ROOT, machine_note, print_and_write  # noqa: E402

DOC = ROOT / "docs" / "benchmarks.md"
WARM, EVENTS, BATCH = 10_000, 20_000, 1_000


def one_run(kind: str) -> float:
    """Runs in the child process: the rate of the timed part."""
    import tempfile

    import faust  # noqa: F401  - the worker's imports, as in `opsloop worker`
    import scipy.stats  # noqa: F401

    from opsloop.simulate import Scenario, events
    from storage.db import make_engine, migrate, session_factory
    from streams.model_stream import StreamConfig
    from streams.processor import BatchProcessor, ProcessorConfig, Record, freeze_startup_heap
    from streams.topics import Topics

    engine = make_engine(f"sqlite:///{Path(tempfile.mkdtemp(prefix='opsloop-gc-')) / 'bench.db'}")
    migrate(engine)
    proc = BatchProcessor(session_factory(engine), ProcessorConfig(
        consumer_group="bench", topics=Topics("bench"), stream=StreamConfig(window_kind="count")))
    gen = events(Scenario(n_events=WARM + EVENTS, drift_after=WARM + EVENTS))

    def batch(first: int) -> list[Record]:
        return [Record("bench", 0, first + j, b"credit-risk", next(gen).model_dump_json().encode())
                for j in range(BATCH)]

    for i in range(0, WARM, BATCH):
        proc.process(batch(i))
    spent = 0.0
    for i in range(WARM, WARM + EVENTS, BATCH):
        records = batch(i)
        t0 = time.process_time()
        proc.process(records)
        if kind == "frozen":
            freeze_startup_heap()
        spent += time.process_time() - t0
    return EVENTS / spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--child", choices=["plain", "frozen"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(one_run(args.child))
        return
    rates: dict[str, list[float]] = {"plain": [], "frozen": []}
    ratios = []
    for i in range(args.pairs):
        pair = {}
        for kind in ("plain", "frozen") if i % 2 == 0 else ("frozen", "plain"):
            out = subprocess.run([sys.executable, __file__, "--child", kind], check=True, capture_output=True,
                                 text=True, cwd=ROOT).stdout
            pair[kind] = float(out.strip().splitlines()[-1])
            rates[kind].append(pair[kind])
        ratios.append(pair["frozen"] / pair["plain"])
        print(f"  pair {i + 1}: plain {pair['plain']:,.0f}/s, frozen {pair['frozen']:,.0f}/s", flush=True)
    p, f = statistics.median(rates["plain"]), statistics.median(rates["frozen"])
    ratios.sort()
    text = "\n".join([
        f"Measured {machine_note()}. Reproduce with `.venv/bin/python bench/gc_freeze.py`.",
        "",
        f"The worker's batch path in-process (`BatchProcessor.process`, SQLite, count windows of 1,000, "
        f"{EVENTS:,} events after a {WARM:,}-event warm-up, batches of {BATCH:,} built as they arrive), a fresh "
        f"process per run, {args.pairs} pairs, kinds alternating. 'frozen' calls "
        "`streams.processor.freeze_startup_heap()` after its first batch, as the worker's agents do.",
        "",
        "| | plain | frozen | frozen / plain |",
        "|---|---:|---:|---:|",
        f"| events per CPU second (median) | {p:,.0f} | {f:,.0f} | **{f / p:.2f}** |",
        f"| paired ratios | | | median {statistics.median(ratios):.2f}, range {ratios[0]:.2f}-{ratios[-1]:.2f} |",
        "",
        "Without the freeze, each full collection walks every object start-up left alive (~150k: modules, "
        "classes, SQLAlchemy's and pydantic's machinery) although none of them ever becomes garbage.",
    ])
    print_and_write(DOC, "gc_freeze", text, title="Benchmarks", heading="Garbage collection in the worker",
            write=not args.no_write)


if __name__ == "__main__":
    main()
