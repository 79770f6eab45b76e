"""A window's running state in memory, and sliding windows built from panes.

``WindowAcc`` holds what a window needs to be judged when it closes: the feature sketch, the prediction
sketch, the fairness counts, type errors, the event count and the event-time span. The worker keeps these as
objects between batches (decoding a sketch from JSON at every batch cost more than updating it) and writes
them as JSON with the model state. ``to_dict`` writes the sketches in their packed stored form
(``WindowSketch.to_packed_dict``: two flat lists instead of a dict per feature); ``from_dict`` reads that and
the per-feature form older versions wrote, so a state saved by an older worker still loads (one saved by
this version needs this version or a later one).

A sliding window is the merge of the last ``k`` panes. ``merge_runs`` builds every window a batch closes at
once, from the stored panes before the batch and the batch's new panes: a few array operations for all of
them, each window equal to folding its panes with ``WindowAcc.merge`` (counts exact, float sums added in the
same order). It replaced a two-stacks aggregate (about three merges of objects per step), which cost ~10x
more per window.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar, cast

from detectors.base import run_starts
from detectors.drift import ReferenceProfile, WindowSketch
from detectors.fairness import FairnessCounts


class _Mergeable(Protocol):
    def merge(self, other: Any) -> Any: ...


T = TypeVar("T", bound=_Mergeable)


def _iso(t: datetime | None) -> str | None:
    return t.isoformat() if t else None


def _dt(s: str | None) -> datetime | None:
    return datetime.fromisoformat(s) if s else None


def _merge_sketch(a: WindowSketch | None, b: WindowSketch | None) -> WindowSketch | None:
    if a is None:
        return b
    return a if b is None else a.merge(b)


@dataclass(eq=False)
class WindowAcc:
    index: int
    n: int = 0
    sketch: WindowSketch | None = None
    pred: WindowSketch | None = None  # the prediction columns, when the reference has a prediction profile
    fair: FairnessCounts | None = None
    type_errors: dict[str, int] = field(default_factory=dict)
    first_at: datetime | None = None
    last_at: datetime | None = None
    _cached: dict[str, Any] | None = field(default=None, repr=False)

    def touch(self) -> None:
        """Called on every change: the JSON form must be rebuilt."""
        self._cached = None

    def add_times(self, lo: datetime, hi: datetime) -> None:
        self.first_at = lo if self.first_at is None else min(self.first_at, lo)
        self.last_at = hi if self.last_at is None else max(self.last_at, hi)

    def merge(self, other: WindowAcc, index: int | None = None) -> WindowAcc:
        type_errors = dict(self.type_errors)
        for name, k in other.type_errors.items():
            type_errors[name] = type_errors.get(name, 0) + k
        fair = self.fair if other.fair is None else (other.fair if self.fair is None else self.fair.merge(other.fair))
        firsts = [t for t in (self.first_at, other.first_at) if t is not None]
        lasts = [t for t in (self.last_at, other.last_at) if t is not None]
        return WindowAcc(
            index=self.index if index is None else index,
            n=self.n + other.n,
            sketch=_merge_sketch(self.sketch, other.sketch),
            pred=_merge_sketch(self.pred, other.pred),
            fair=fair,
            type_errors=type_errors,
            first_at=min(firsts) if firsts else None,
            last_at=max(lasts) if lasts else None,
        )

    @property
    def duration_s(self) -> float | None:
        if self.first_at is None or self.last_at is None:
            return None
        return (self.last_at - self.first_at).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        if self._cached is None:
            self._cached = {
                "index": self.index,
                "n": self.n,
                "sketch": self.sketch.to_packed_dict() if self.sketch is not None else None,
                "pred_sketch": self.pred.to_packed_dict() if self.pred is not None else None,
                "fair": self.fair.to_dict() if self.fair is not None else None,
                "type_errors": dict(self.type_errors),
                "first_at": _iso(self.first_at),
                "last_at": _iso(self.last_at),
            }
        return self._cached

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], prof: ReferenceProfile,
                  pred_prof: ReferenceProfile | None) -> WindowAcc:
        pred = data.get("pred_sketch")
        return cls(
            index=int(data["index"]),
            n=int(data["n"]),
            sketch=WindowSketch.from_dict(data["sketch"], prof) if data.get("sketch") else None,
            pred=WindowSketch.from_dict(pred, pred_prof) if pred and pred_prof is not None else None,
            fair=FairnessCounts.from_dict(data["fair"]) if data.get("fair") else None,
            type_errors={str(k): int(v) for k, v in data.get("type_errors", {}).items()},
            first_at=_dt(data.get("first_at")),
            last_at=_dt(data.get("last_at")),
        )


def merge_runs(panes: Sequence[WindowAcc], k: int, ends: Sequence[int]) -> list[WindowAcc]:
    """For each ``j`` in ``ends``, the window of the ``k`` panes ending at ``j``, indexed by its first pane:
    ``functools.reduce(WindowAcc.merge, panes[j + 1 - k : j + 1])``, equal to it to the bit, for all the runs
    at once (``WindowSketch.merge_runs``, ``FairnessCounts.merge_runs``). A sliding window closes once per
    pane, ~10 times per batch: this is a few array operations for all of them instead of ``k - 1`` merges
    per window. Panes of mixed shapes (a sketch in some, not in others) are folded run by run."""
    run_starts(len(panes), k, ends)  # ValueError for a run that does not fit
    sketches = _runs([p.sketch for p in panes], k, ends, WindowSketch.merge_runs)
    preds = _runs([p.pred for p in panes], k, ends, WindowSketch.merge_runs)
    fairs = _runs([p.fair for p in panes], k, ends, FairnessCounts.merge_runs)
    counted = [0]
    for p in panes:
        counted.append(counted[-1] + p.n)
    out = []
    for j, sketch, pred, fair in zip(ends, sketches, preds, fairs, strict=True):
        run = panes[j + 1 - k : j + 1]
        type_errors: dict[str, int] = {}
        for p in run:
            for name, n in p.type_errors.items():
                type_errors[name] = type_errors.get(name, 0) + n
        firsts_at = [p.first_at for p in run if p.first_at is not None]
        lasts_at = [p.last_at for p in run if p.last_at is not None]
        out.append(WindowAcc(
            index=run[0].index, n=counted[j + 1] - counted[j + 1 - k], sketch=sketch, pred=pred, fair=fair,
            type_errors=type_errors, first_at=min(firsts_at) if firsts_at else None,
            last_at=max(lasts_at) if lasts_at else None,
        ))  # fmt: skip
    return out


def _runs(parts: Sequence[T | None], k: int, ends: Sequence[int],
          merge_runs: Callable[[Sequence[T], int, Sequence[int]], list[T]]) -> list[T | None]:
    """One kind of part (sketch, prediction sketch, fairness counts) of every run: all at once when every
    pane has it, none when no pane has it; otherwise run by run, a missing part counting as nothing."""
    if all(p is not None for p in parts):
        return list(merge_runs(cast(Sequence[T], parts), k, ends))
    if all(p is None for p in parts):
        return [None] * len(ends)
    out: list[T | None] = []
    for j in ends:
        have = [p for p in parts[j + 1 - k : j + 1] if p is not None]
        out.append(functools.reduce(lambda a, b: a.merge(b), have) if have else None)
    return out
