"""Per-window cost of the fairness detector against fairlearn, on the same data, in one run.

    .venv/bin/python bench/fairness.py            # prints the table and writes it into docs/fairness.md
    .venv/bin/python bench/fairness.py --no-write # prints only

One window: two sensitive attributes (sex: 3 groups with missing, race: 6 groups) and their intersection,
binary predictions, labels for ~70% of the rows. opsloop: ``FairnessCounts.update`` on the window's rows
plus ``evaluate_fairness`` (all metrics, gaps, Wilson/Newcombe/Katz intervals), written out with ``to_dict``
(the result builds its per-group objects when read). fairlearn: per attribute set, one ``MetricFrame`` for the selection rate over all rows and one for true/false positive rate,
precision and accuracy over the labelled rows, each with ``difference()`` and ``ratio()``: the same numbers
without intervals. Times are medians of repetitions, in milliseconds: many of opsloop's (it is cheap, and
on a shared machine a single run is noisy), a few of fairlearn's (seconds each at 100k rows).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from detectors.fairness import MISSING, FairnessConfig, evaluate_fairness

DOC = ROOT / "docs" / "fairness.md"
BEGIN, END = "<!-- bench:fairness -->", "<!-- /bench:fairness -->"
CONFIG = FairnessConfig(attributes=("sex", "race"), intersections=(("sex", "race"),))


def make_window(rng: np.random.Generator, n: int) -> dict[str, Any]:
    sex = rng.choice(np.array(["f", "m", None], dtype=object), size=n, p=[0.48, 0.48, 0.04])
    race = rng.choice(np.array(["a", "b", "c", "d", "e", None], dtype=object), size=n,
                      p=[0.4, 0.25, 0.15, 0.1, 0.07, 0.03])  # fmt: skip
    y_pred = (rng.random(n) < 0.4).astype(np.int64)
    y_true = (rng.random(n) < 0.5).astype(np.float64)
    y_true[rng.random(n) < 0.3] = np.nan
    return {"groups": {"sex": sex, "race": race}, "y_pred": y_pred, "y_true": y_true}


def opsloop_window(w: dict[str, Any]) -> tuple[float, float]:
    t0 = time.perf_counter()
    counts = CONFIG.empty_counts().update(w["groups"], w["y_pred"], w["y_true"])
    t1 = time.perf_counter()
    evaluate_fairness(counts, CONFIG).to_dict()  # the whole result: its per-group objects are built lazily
    t2 = time.perf_counter()
    return (t1 - t0) * 1e3, (t2 - t1) * 1e3


def fairlearn_window(w: dict[str, Any]) -> float:
    import pandas as pd
    from fairlearn.metrics import MetricFrame, false_positive_rate, selection_rate, true_positive_rate
    from sklearn.metrics import accuracy_score, precision_score

    label_metrics = {
        "true_positive_rate": true_positive_rate,
        "false_positive_rate": false_positive_rate,
        "precision": precision_score,
        "accuracy": accuracy_score,
    }
    t0 = time.perf_counter()
    # fairlearn needs the same group labels as opsloop: missing values as their own group
    sex = np.array([MISSING if v is None else v for v in w["groups"]["sex"]], dtype=object)
    race = np.array([MISSING if v is None else v for v in w["groups"]["race"]], dtype=object)
    y_pred, y_true = w["y_pred"], w["y_true"]
    labelled = ~np.isnan(y_true)
    for sf in (sex, race, pd.DataFrame({"sex": sex, "race": race})):
        sel = MetricFrame(metrics={"selection_rate": selection_rate}, y_true=y_pred, y_pred=y_pred,
                          sensitive_features=sf)  # fmt: skip
        lab = MetricFrame(metrics=label_metrics, y_true=y_true[labelled].astype(int), y_pred=y_pred[labelled],
                          sensitive_features=sf[labelled])  # fmt: skip
        for frame in (sel, lab):
            frame.difference()
            frame.ratio()
    return (time.perf_counter() - t0) * 1e3


def median_of(fn: Callable[[], Any], reps: int) -> list[Any]:
    fn()  # warm-up: imports, caches
    return [fn() for _ in range(reps)]


def run(sizes: list[int], reps: int, opsloop_reps: int) -> list[dict[str, float]]:
    rows = []
    for n in sizes:
        w = make_window(np.random.default_rng(n), n)
        ours = median_of(lambda: opsloop_window(w), opsloop_reps)  # noqa: B023 - called right here
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = median_of(lambda: fairlearn_window(w), reps)  # noqa: B023
        update = statistics.median(u for u, _ in ours)
        evaluate = statistics.median(e for _, e in ours)
        total = statistics.median(u + e for u, e in ours)
        fl = statistics.median(theirs)
        rows.append({"rows": n, "update": update, "evaluate": evaluate, "total": total, "fairlearn": fl})
    return rows


def table(results: list[dict[str, float]], reps: int, opsloop_reps: int) -> str:
    import fairlearn
    import sklearn

    lines = [
        "| rows per window | opsloop update | opsloop evaluate | opsloop total | fairlearn | fairlearn / opsloop |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {int(r['rows']):,} | {r['update']:.2f} ms | {r['evaluate']:.2f} ms | {r['total']:.2f} ms "
            f"| {r['fairlearn']:.1f} ms | {r['fairlearn'] / r['total']:.0f}x |"
        )
    lines.append("")
    lines.append(
        f"Medians of {opsloop_reps} (opsloop) and {reps} (fairlearn) repetitions after one warm-up; "
        "2 attributes + 1 intersection (3 + 6 + 18 groups), ~70% of rows labelled. "
        f"Python {platform.python_version()}, numpy {np.__version__}, fairlearn {fairlearn.__version__}, "
        f"scikit-learn {sklearn.__version__}, {platform.machine()}, {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.1f} (a shared machine: wall-clock times). "
        "Reproduce with `.venv/bin/python bench/fairness.py`."
    )
    return "\n".join(lines)


def write_doc(text: str) -> None:
    doc = DOC.read_text() if DOC.exists() else "# Fairness\n"
    block = f"{BEGIN}\n{text}\n{END}"
    if BEGIN in doc and END in doc:
        head, rest = doc.split(BEGIN, 1)
        doc = head + block + rest.split(END, 1)[1]
    else:
        doc = doc.rstrip("\n") + "\n\n## Cost per window\n\n" + block + "\n"
    DOC.write_text(doc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--reps", type=int, default=5, help="repetitions of fairlearn (slow)")
    parser.add_argument("--opsloop-reps", type=int, default=31, help="repetitions of opsloop (cheap)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/fairness.md alone")
    args = parser.parse_args()
    text = table(run(args.sizes, args.reps, args.opsloop_reps), args.reps, args.opsloop_reps)
    print(text)
    if not args.no_write:
        write_doc(text)
        print(f"\nwritten into {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
