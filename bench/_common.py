"""Helpers shared by the benchmarks: doc blocks, the machine note, timing, and sliding windows from panes.

``TumblingWindows`` and ``SlidingPanes`` keep windows as the stream layer does, without its JSON state and
storage. A sliding window of ``window`` rows with step ``window / panes`` is kept as ``panes`` tumbling
"pane" sketches: each batch is cut at the pane boundaries and sketched in one pass
(``WindowSketch.of_segments``), the first part completing the current pane; the windows a batch closes
(each the last ``panes`` full panes) are merged together as the worker does (``WindowSketch.merge_runs``:
``panes - 1`` array additions for all of them) and evaluated. Counts are exact, so every
``panes``-th sliding result equals the tumbling window over the same rows. ``sliding_evaluate`` is the naive
form (merge every pane at every step), kept to check the aggregate against.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from detectors.base import DriftResult
from detectors.drift import (
    FeatureDriftConfig,
    ReferenceProfile,
    WindowSketch,
    evaluate_drift,
    evaluate_drift_many,
)

Columns = Mapping[str, npt.NDArray[Any]]


# -- docs -------------------------------------------------------------------------------------------------


def write_block(doc: Path, name: str, text: str, *, title: str, heading: str) -> None:
    """Put ``text`` between ``<!-- bench:name -->`` and ``<!-- /bench:name -->``, replacing the old block.

    A missing doc is created with ``title``; a missing block is appended under ``heading``.
    """
    begin, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    body = doc.read_text() if doc.exists() else f"# {title}\n"
    block = f"{begin}\n{text.rstrip()}\n{end}"
    if begin in body and end in body:
        head, rest = body.split(begin, 1)
        body = head + block + rest.split(end, 1)[1]
    else:
        body = body.rstrip("\n") + f"\n\n## {heading}\n\n{block}\n"
    doc.write_text(body)


def print_and_write(doc: Path, name: str, text: str, *, title: str, heading: str, write: bool = True) -> None:
    """Print a benchmark's figures and, unless ``write`` is false, put them into ``doc`` (``write_block``)."""
    print()
    print(text)
    if write:
        write_block(doc, name, text, title=title, heading=heading)
        print(f"\nwritten into {doc.relative_to(ROOT)}")


def machine_note() -> str:
    """Date, machine, load: the context every figure needs on a shared 2-core machine."""
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{dt.date.today().isoformat()}, {platform.machine()}, {os.cpu_count()} CPUs (nproc), load average "
        f"{load} at the end of the run: a machine shared with other jobs, so absolute times are noisy and only "
        f"the ratios measured side by side in the same run are meant to be compared"
    )


def versions(*modules: str) -> str:
    out = [f"Python {platform.python_version()}"]
    for name in modules:
        try:
            mod = __import__(name)
            out.append(f"{name} {getattr(mod, '__version__', '?')}")
        except ImportError:  # pragma: no cover - optional comparators
            out.append(f"{name} (not installed)")
    return ", ".join(out)


# -- timing -----------------------------------------------------------------------------------------------


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """CPU seconds of this process one call of ``fn`` took, and its result.

    CPU time, not wall-clock: on a 2-core machine shared with other jobs the wall-clock time of the same
    call varies by 3x with the neighbours' load, its CPU time much less.
    """
    t0 = time.process_time()
    out = fn()
    return time.process_time() - t0, out


def median_seconds(fn: Callable[[], Any], reps: int, warmup: int = 1) -> tuple[float, list[float]]:
    for _ in range(warmup):
        fn()
    runs = [timed(fn)[0] for _ in range(reps)]
    return statistics.median(runs), runs


def fmt_ms(seconds: float) -> str:
    ms = seconds * 1e3
    if ms >= 1000:
        return f"{ms / 1e3:,.2f} s"
    if ms >= 10:
        return f"{ms:,.0f} ms"
    return f"{ms:.2f} ms"


# -- windows over a stream of batches ---------------------------------------------------------------------


def slice_columns(columns: Columns, start: int, stop: int) -> dict[str, npt.NDArray[Any]]:
    return {name: col[start:stop] for name, col in columns.items()}


def sliding_evaluate(
    profile: ReferenceProfile, panes: Sequence[WindowSketch], config: FeatureDriftConfig
) -> DriftResult:
    """Merge the pane sketches of one sliding window (oldest first) and evaluate it against ``profile``."""
    if not panes:
        raise ValueError("a sliding window needs at least one pane")
    merged = functools.reduce(WindowSketch.merge, panes[1:], panes[0])
    return evaluate_drift(profile, merged, config)


class TumblingWindows:
    """Count windows of ``window`` rows, as ``streams/model_stream.py`` keeps them (without the JSON state)."""

    def __init__(self, profile: ReferenceProfile, config: FeatureDriftConfig, window: int) -> None:
        self.profile, self.config, self.window = profile, config, window
        self.sketch = WindowSketch.empty(profile)

    def feed(self, columns: Columns, rows: int) -> list[DriftResult]:
        results = []
        i = 0
        while i < rows:
            take = min(self.window - self.sketch.n_rows, rows - i)
            self.sketch = self.sketch.update(slice_columns(columns, i, i + take))
            i += take
            if self.sketch.n_rows >= self.window:
                results.append(evaluate_drift(self.profile, self.sketch, self.config))
                self.sketch = WindowSketch.empty(self.profile)
        return results


class SlidingPanes:
    """Sliding count windows of ``window`` rows moving by ``window / panes`` rows, built from pane sketches."""

    def __init__(
        self, profile: ReferenceProfile, config: FeatureDriftConfig, window: int, panes: int = 10
    ) -> None:
        if window % panes:
            raise ValueError(f"window ({window}) must be a multiple of panes ({panes})")
        self.profile, self.config = profile, config
        self.step = window // panes
        self.panes = panes
        self.ring: list[WindowSketch] = []  # the last full panes, at most ``panes`` of them
        self.current = WindowSketch.empty(profile)

    def feed(self, columns: Columns, rows: int) -> list[DriftResult]:
        """The batch is cut at the pane boundaries and sketched in one pass (``WindowSketch.of_segments``); the
        windows it closes are merged (``WindowSketch.merge_runs``) and evaluated together
        (``evaluate_drift_many``), as the worker does."""
        bounds = [0]
        while bounds[-1] < rows:
            room = self.step - (self.current.n_rows if len(bounds) == 1 else 0)
            bounds.append(min(rows, bounds[-1] + room))
        known = len(self.ring)
        for part in WindowSketch.of_segments(self.profile, columns, bounds):
            self.current = self.current.merge(part) if self.current.n_rows else part
            if self.current.n_rows >= self.step:
                self.ring.append(self.current)
                self.current = WindowSketch.empty(self.profile)
        ends = [j for j in range(known, len(self.ring)) if j + 1 >= self.panes]
        closed = WindowSketch.merge_runs(self.ring, self.panes, ends)
        self.ring = self.ring[-self.panes :]
        return evaluate_drift_many(self.profile, closed, self.config)


def batches(columns: Columns, rows: int, size: int) -> Iterable[tuple[dict[str, npt.NDArray[Any]], int]]:
    for start in range(0, rows, size):
        stop = min(rows, start + size)
        yield slice_columns(columns, start, stop), stop - start


def share(hits: int, total: int) -> str:
    return f"{100.0 * hits / total:.1f} %" if total else "n/a"


def per_thousand(hits: int, total: int) -> str:
    return f"{1000.0 * hits / total:.1f}" if total else "n/a"


def wilson(hits: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson interval of a proportion."""
    if total == 0:
        return (0.0, 1.0)
    p = hits / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * np.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return max(0.0, centre - half), min(1.0, centre + half)
