"""A window's running state in memory, and sliding windows built from panes.

``WindowAcc`` holds what a window needs to be judged when it closes: the feature sketch, the prediction
sketch, the fairness counts, type errors, the event count and the event-time span. The worker keeps these as
objects between batches (decoding a sketch from JSON at every batch cost more than updating it) and writes
them as JSON with the model state; ``to_dict`` keeps the layout older versions stored ("sketch", "fair", ...),
so a state saved by an older worker still loads.

``SlidingAggregate`` is a FIFO of the last ``k`` panes whose merged window is available after every push at
the cost of about three merges (the "two stacks" scheme: suffix aggregates over the older panes, one running
aggregate over the newer ones), instead of ``k`` merges: no subtraction, so counts stay exact and float sums
are sums of the same panes as a tumbling window would add.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

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
                "sketch": self.sketch.to_dict() if self.sketch is not None else None,
                "pred_sketch": self.pred.to_dict() if self.pred is not None else None,
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


class SlidingAggregate(Generic[T]):
    """The merged window of the last ``k`` panes, updated in O(1) merges per pane (amortised).

    Works for anything with ``merge(other) -> same type`` that never changes its inputs (``WindowAcc``,
    ``WindowSketch``). The merged value may be one of the panes itself: treat it as read-only.
    """

    def __init__(self, k: int, panes: Sequence[T] = ()) -> None:
        self.k = k
        self._front: list[T] = []  # older panes
        self._suffix: list[T] = []  # _suffix[i] = merge of _front[i:]
        self._back: list[T] = []  # newer panes
        self._back_agg: T | None = None
        for p in list(panes)[-k:]:
            self._push(p)

    @property
    def panes(self) -> list[T]:
        return self._front + self._back

    def __len__(self) -> int:
        return len(self._front) + len(self._back)

    def _push(self, pane: T) -> None:
        self._back.append(pane)
        self._back_agg = pane if self._back_agg is None else self._back_agg.merge(pane)

    def _pop(self) -> None:
        if not self._front:
            # flip: the newer panes become the older ones, with their suffix aggregates
            self._front, self._back, self._back_agg = self._back, [], None
            suffix: list[T] = [self._front[-1]]
            for p in reversed(self._front[:-1]):
                suffix.append(p.merge(suffix[-1]))
            self._suffix = suffix[::-1]
        self._front.pop(0)
        self._suffix.pop(0)

    def push(self, pane: T) -> T | None:
        """Add a finished pane; the merge of the last ``k`` panes once there are ``k``."""
        self._push(pane)
        if len(self) > self.k:
            self._pop()
        if len(self) < self.k:
            return None
        if not self._suffix:
            assert self._back_agg is not None
            return self._back_agg
        if self._back_agg is None:
            return self._suffix[0]
        return self._suffix[0].merge(self._back_agg)
