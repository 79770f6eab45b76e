"""Window sketches: the incrementally updatable state of one window, over one reference profile.

A sketch keeps counts, not rows: per numeric feature the counts over the profile's fine bins plus missing
count, count, sum, sum of squares, min and max, and how many values fell strictly below the reference minimum
(``below``) or above its maximum (``above``); per categorical feature the counts per reference bucket plus
the categories never seen in the reference. ``update`` costs O(rows + bins) and returns a new sketch;
``merge`` adds two sketches of the same profile. Both are exact for counts (the float sums may differ in the
last bits with the order rows arrive in). ``WindowSketch.of_segments`` cuts one batch into row segments (a
sliding window's panes) and sketches each as ``update`` would, for about the cost of one ``update``.

Unseen categories are named up to ``MAX_TRACKED_UNSEEN`` per feature (further new names are only counted,
in ``unseen_untracked``). A profile truncated at ``max_categories`` cannot tell a rare reference category
from a new one, so there any value outside the listed categories counts in the ``__other__`` bucket.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from detectors.base import InputError, ProfileMismatchError, fast_constructor, run_starts, run_sums
from detectors.drift.columns import category_codes, category_counts, finite_values, n_rows
from detectors.drift.profile import CategoricalProfile, NumericProfile, ReferenceProfile

MAX_TRACKED_UNSEEN = 100


_A = TypeVar("_A", bound=npt.NDArray[Any])


def _frozen(arr: _A) -> _A:
    arr.flags.writeable = False
    return arr


@dataclass(frozen=True, eq=False)
class NumericWindow:
    counts: npt.NDArray[np.int64]  # per fine bin of the profile
    missing: int = 0
    count: int = 0
    total: float = 0.0
    total_sq: float = 0.0
    minimum: float = float("inf")
    maximum: float = float("-inf")
    below: int = 0  # non-missing values strictly below the profile's minimum (0 when it has none)
    above: int = 0  # ... strictly above its maximum

    @classmethod
    def empty(cls, profile: NumericProfile) -> NumericWindow:
        return cls(counts=_frozen(np.zeros(profile.n_bins, dtype=np.int64)))

    def add(self, other: NumericWindow) -> NumericWindow:
        # field by field (`_new_numeric_window`): a sliding window merges every feature at every step
        mn, mx = other.minimum, other.maximum
        return _new_numeric_window(
            _frozen(self.counts + other.counts),
            self.missing + other.missing,
            self.count + other.count,
            self.total + other.total,
            self.total_sq + other.total_sq,
            mn if mn < self.minimum else self.minimum,
            mx if mx > self.maximum else self.maximum,
            self.below + other.below,
            self.above + other.above,
        )

    @classmethod
    def of(cls, profile: NumericProfile, name: str, column: npt.ArrayLike) -> NumericWindow:
        values, missing = finite_values(name, column)
        if values.size == 0:
            return replace(cls.empty(profile), missing=missing)
        return cls(
            counts=_frozen(profile.bin_counts(values)),
            missing=missing,
            count=int(values.size),
            total=float(values.sum()),
            total_sq=float(np.dot(values, values)),
            minimum=float(values.min()),
            maximum=float(values.max()),
            below=0 if profile.minimum is None else int(np.count_nonzero(values < profile.minimum)),
            above=0 if profile.maximum is None else int(np.count_nonzero(values > profile.maximum)),
        )

    @property
    def mean(self) -> float | None:
        return self.total / self.count if self.count else None

    @property
    def std(self) -> float | None:
        if not self.count:
            return None
        mean = self.total / self.count
        return float(np.sqrt(max(self.total_sq / self.count - mean * mean, 0.0)))

    def to_dict(self) -> dict[str, Any]:
        empty = self.count == 0
        return {
            "counts": self.counts.tolist(),
            "missing": self.missing,
            "count": self.count,
            "sum": self.total,
            "sum_sq": self.total_sq,
            "min": None if empty else self.minimum,
            "max": None if empty else self.maximum,
            "below": self.below,
            "above": self.above,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NumericWindow:
        return cls(
            counts=_frozen(np.array(data["counts"], dtype=np.int64)),
            missing=int(data["missing"]),
            count=int(data["count"]),
            total=float(data["sum"]),
            total_sq=float(data["sum_sq"]),
            minimum=float("inf") if data["min"] is None else float(data["min"]),
            maximum=float("-inf") if data["max"] is None else float(data["max"]),
            # states stored before below / above existed load with 0 for both
            below=int(data.get("below", 0)),
            above=int(data.get("above", 0)),
        )


def _add_unseen(
    tracked: Mapping[str, int], untracked: int, new: Iterable[tuple[str, int]]
) -> tuple[dict[str, int], int]:
    out = dict(tracked)
    # most frequent first, then by name: which names stay tracked once the limit is reached must not depend
    # on the order a mapping holds them in (a stored sketch loads them sorted by name)
    for name, count in sorted(new, key=lambda kv: (-kv[1], kv[0])):
        if name in out or len(out) < MAX_TRACKED_UNSEEN:
            out[name] = out.get(name, 0) + count
        else:
            untracked += count
    return out, untracked


@dataclass(frozen=True, eq=False)
class CategoricalWindow:
    counts: npt.NDArray[np.int64]  # per reference bucket (categories, then __other__ if truncated)
    unseen: Mapping[str, int] = field(default_factory=dict)
    unseen_untracked: int = 0
    missing: int = 0

    @classmethod
    def empty(cls, profile: CategoricalProfile) -> CategoricalWindow:
        return cls(counts=_frozen(np.zeros(profile.n_buckets, dtype=np.int64)))

    @property
    def unseen_count(self) -> int:
        return sum(self.unseen.values()) + self.unseen_untracked

    @property
    def count(self) -> int:
        """Non-missing values, seen or not."""
        return int(self.counts.sum()) + self.unseen_count

    def add(self, other: CategoricalWindow) -> CategoricalWindow:
        unseen: Mapping[str, int]
        if other.unseen:
            unseen, untracked = _add_unseen(
                self.unseen, self.unseen_untracked + other.unseen_untracked, other.unseen.items()
            )
        else:  # the usual case: nothing new to add (the mapping is never changed in place, so share it)
            unseen, untracked = self.unseen, self.unseen_untracked + other.unseen_untracked
        return _new_categorical_window(
            _frozen(self.counts + other.counts), unseen, untracked, self.missing + other.missing
        )

    @classmethod
    def of(cls, profile: CategoricalProfile, column: npt.ArrayLike) -> CategoricalWindow:
        names, counts, missing = category_counts(column)
        # one dict lookup per distinct value in the batch, never per row
        codes = np.array([profile.index.get(name, -1) for name in names], dtype=np.int64)
        known = codes >= 0
        if profile.truncated:
            codes[~known] = profile.n_buckets - 1
            known[:] = True
        bucket = np.bincount(codes[known], weights=counts[known], minlength=profile.n_buckets)
        new = [(names[i], int(counts[i])) for i in np.flatnonzero(~known)]
        unseen, untracked = _add_unseen({}, 0, new)  # most frequent first: the tracked ones are worth reporting
        return cls(
            counts=_frozen(bucket.astype(np.int64)),
            unseen=unseen,
            unseen_untracked=untracked,
            missing=missing,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "counts": self.counts.tolist(),
            "unseen": dict(sorted(self.unseen.items())),
            "unseen_untracked": self.unseen_untracked,
            "missing": self.missing,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CategoricalWindow:
        return cls(
            counts=_frozen(np.array(data["counts"], dtype=np.int64)),
            unseen={str(k): int(v) for k, v in data["unseen"].items()},
            unseen_untracked=int(data["unseen_untracked"]),
            missing=int(data["missing"]),
        )


FeatureWindow = NumericWindow | CategoricalWindow

# one window per feature and segment (100 for 20 features and 5 panes), and per feature and merge: built
# field by field
_new_numeric_window = fast_constructor(NumericWindow)
_new_categorical_window = fast_constructor(CategoricalWindow)


def _check_bounds(bounds: Sequence[int], rows: int) -> npt.NDArray[np.intp]:
    b = np.asarray(bounds)
    if b.ndim != 1 or b.size == 0 or b.dtype.kind not in "iu":
        raise ValueError(f"bounds must be a non-empty sequence of integers, got {bounds!r}")
    b = b.astype(np.intp)
    if b[0] < 0 or b[-1] > rows or np.any(np.diff(b) < 0):
        raise ValueError(f"bounds must be non-decreasing within [0, {rows}], got {bounds!r}")
    return b


@dataclass(frozen=True, eq=False)
class _Layout:
    """Where each feature of a profile sits in a packed sketch's integer vector: the numeric features'
    fine bins one after the other (profile order), then their missing, count, below and above counts (one
    row of ``n_numeric`` each), then the categorical features' buckets, then their missing and untracked
    unseen counts."""

    numeric: tuple[str, ...]
    bin_spans: tuple[tuple[int, int], ...]
    categorical: tuple[str, ...]
    bucket_spans: tuple[tuple[int, int], ...]  # from the start of the buckets
    # where each part starts in the vector, and its length
    at_counts: int
    at_buckets: int
    at_cat: int
    size: int
    # per feature in profile order: name, numeric or not, its index among its kind
    order: tuple[tuple[str, bool, int], ...]


def _spans(sizes: Sequence[int]) -> tuple[tuple[tuple[int, int], ...], int]:
    spans, at = [], 0
    for size in sizes:
        spans.append((at, at + size))
        at += size
    return tuple(spans), at


# profiles are immutable: their layout is built once and lives as long as the profile does
_LAYOUTS: weakref.WeakKeyDictionary[ReferenceProfile, _Layout] = weakref.WeakKeyDictionary()


def _layout(profile: ReferenceProfile) -> _Layout:
    layout = _LAYOUTS.get(profile)
    if layout is None:
        numeric = {n: fp for n, fp in profile.features.items() if isinstance(fp, NumericProfile)}
        categorical = {n: fp for n, fp in profile.features.items() if isinstance(fp, CategoricalProfile)}
        bin_spans, n_bins = _spans([fp.n_bins for fp in numeric.values()])
        bucket_spans, n_buckets = _spans([fp.n_buckets for fp in categorical.values()])
        index = {n: i for i, n in enumerate(numeric)} | {n: i for i, n in enumerate(categorical)}
        at_buckets = n_bins + 4 * len(numeric)
        layout = _Layout(
            numeric=tuple(numeric), bin_spans=bin_spans, categorical=tuple(categorical), bucket_spans=bucket_spans,
            at_counts=n_bins, at_buckets=at_buckets, at_cat=at_buckets + n_buckets,
            size=at_buckets + n_buckets + 2 * len(categorical),
            order=tuple((n, n in numeric, index[n]) for n in profile.features),
        )  # fmt: skip
        _LAYOUTS[profile] = layout
    return layout


@dataclass(frozen=True, eq=False)
class _Packed:
    """A sketch's windows as two read-only arrays, so that a merge is two numpy operations.

    A sliding window merges ~3 sketches per step; feature by feature, that built ~25 window objects per
    merge. Packed, the per-feature windows are built once, when a reader asks for ``WindowSketch.features``.
    """

    ints: npt.NDArray[np.int64]  # every count, laid out as `_Layout` says
    # (4, numeric features): total, total_sq, -minimum, maximum (the minimum negated, so that one
    # np.maximum merges both extremes)
    floats: npt.NDArray[np.float64]
    unseen: tuple[Mapping[str, int], ...]  # per categorical feature; never changed in place


_new_packed = fast_constructor(_Packed)


def _merge_packed(layout: _Layout, a: _Packed, b: _Packed) -> _Packed:
    """``NumericWindow.add`` / ``CategoricalWindow.add`` of every feature: the same float64 adds, and each
    extreme kept from ``a`` unless ``b``'s is strictly beyond it."""
    fa, fb = a.floats, b.floats
    floats = fa + fb
    extremes = np.maximum(fa[2:], fb[2:], out=floats[2:])
    if not extremes.all():
        # a zero extreme: -0.0 and 0.0 tie, and which one np.maximum returns then is the CPU's choice
        extremes[:] = np.where(fb[2:] > fa[2:], fb[2:], fa[2:])
    ints = a.ints + b.ints
    unseen = a.unseen
    if any(b.unseen):  # rare: new categories to name
        merged = list(a.unseen)
        untracked = layout.at_cat + len(layout.categorical)
        for i, theirs in enumerate(b.unseen):
            if theirs:
                merged[i], over = _add_unseen(a.unseen[i], 0, theirs.items())
                ints[untracked + i] += over
        unseen = tuple(merged)
    return _new_packed(_frozen(ints), _frozen(floats), unseen)


def _pack(layout: _Layout, features: Mapping[str, FeatureWindow]) -> _Packed:
    nums: list[NumericWindow] = []
    for name, (lo, hi) in zip(layout.numeric, layout.bin_spans, strict=True):
        w = features[name]
        if type(w) is not NumericWindow or w.counts.shape != (hi - lo,):
            raise ProfileMismatchError(f"feature {name!r} does not match its profile (kind or bins)")
        nums.append(w)
    cats: list[CategoricalWindow] = []
    for name, (lo, hi) in zip(layout.categorical, layout.bucket_spans, strict=True):
        c = features[name]
        if type(c) is not CategoricalWindow or c.counts.shape != (hi - lo,):
            raise ProfileMismatchError(f"feature {name!r} does not match its profile (kind or buckets)")
        cats.append(c)
    counts = (
        [w.missing for w in nums]
        + [w.count for w in nums]
        + [w.below for w in nums]
        + [w.above for w in nums]
    )
    cat_counts = [c.missing for c in cats] + [c.unseen_untracked for c in cats]
    parts = [w.counts for w in nums] + [np.array(counts, dtype=np.int64)] + [c.counts for c in cats]
    ints = np.concatenate([*parts, np.array(cat_counts, dtype=np.int64)]).astype(np.int64, copy=False)
    floats = np.array(
        [[w.total for w in nums], [w.total_sq for w in nums], [-w.minimum for w in nums], [w.maximum for w in nums]],
        dtype=np.float64,
    ).reshape(4, len(nums))  # fmt: skip
    return _new_packed(_frozen(ints), _frozen(floats), tuple(c.unseen for c in cats))


def _unpack(layout: _Layout, p: _Packed) -> dict[str, FeatureWindow]:
    ints = p.ints
    n_num, n_cat = len(layout.numeric), len(layout.categorical)
    missing, count, below, above = ints[layout.at_counts : layout.at_buckets].reshape(4, n_num).tolist()
    total, total_sq, neg_minimum, maximum = p.floats.tolist()
    cat_missing, untracked = ints[layout.at_cat :].reshape(2, n_cat).tolist()
    buckets, unseen = ints[layout.at_buckets : layout.at_cat], p.unseen
    nspans, cspans = layout.bin_spans, layout.bucket_spans
    out: dict[str, FeatureWindow] = {}
    for name, numeric, i in layout.order:
        if numeric:
            lo, hi = nspans[i]
            out[name] = _new_numeric_window(
                ints[lo:hi], missing[i], count[i], total[i], total_sq[i], -neg_minimum[i], maximum[i], below[i],
                above[i],
            )  # fmt: skip
        else:
            lo, hi = cspans[i]
            out[name] = _new_categorical_window(buckets[lo:hi], unseen[i], untracked[i], cat_missing[i])
    return out


def _packed_dicts(layout: _Layout, p: _Packed) -> dict[str, dict[str, Any]]:
    """Each feature's ``to_dict()``, straight from the packed arrays (a sliding window stores every pane)."""
    ints = p.ints.tolist()
    n_num, n_cat = len(layout.numeric), len(layout.categorical)
    at, at_b, at_c = layout.at_counts, layout.at_buckets, layout.at_cat
    total, total_sq, neg_minimum, maximum = p.floats.tolist()
    out: dict[str, dict[str, Any]] = {}
    for name, numeric, i in layout.order:
        if numeric:
            lo, hi = layout.bin_spans[i]
            count = ints[at + n_num + i]
            out[name] = {
                "counts": ints[lo:hi], "missing": ints[at + i], "count": count, "sum": total[i],
                "sum_sq": total_sq[i], "min": -neg_minimum[i] if count else None,
                "max": maximum[i] if count else None, "below": ints[at + 2 * n_num + i],
                "above": ints[at + 3 * n_num + i],
            }  # fmt: skip
        else:
            lo, hi = layout.bucket_spans[i]
            out[name] = {
                "counts": ints[at_b + lo : at_b + hi], "unseen": dict(sorted(p.unseen[i].items())),
                "unseen_untracked": ints[at_c + n_cat + i], "missing": ints[at_c + i],
            }  # fmt: skip
    return out


def _numeric_segments(
    features: list[tuple[str, NumericProfile, npt.ArrayLike]],
    lo: int,
    hi: int,
    b: npt.NDArray[np.intp],
    seg: npt.NDArray[np.intp],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """``NumericWindow.of`` of every segment of rows ``lo:hi`` (``b``: bounds from 0, ``seg``: segment per
    row), as arrays: the fine-bin counts ``(segments, bins of these features)``, then per segment
    ``(segments, 4, features)`` of missing, count, below, above and of total, total_sq, minimum, maximum."""
    n_feat, n_seg, rows = len(features), b.size - 1, hi - lo
    x = np.empty((n_feat, rows))
    for i, (name, _, column) in enumerate(features):
        try:
            x[i] = np.asarray(column, dtype=np.float64)[lo:hi]
        except (TypeError, ValueError) as exc:
            raise InputError(f"feature {name!r} is numeric but its column is not: {exc}") from None
    finite = np.isfinite(x)
    fps = [fp for _, fp, _ in features]

    # missing, below and above per segment: differences of running counts at the bounds
    lows = np.array([-np.inf if fp.minimum is None else fp.minimum for fp in fps])
    highs = np.array([np.inf if fp.maximum is None else fp.maximum for fp in fps])
    flags = np.concatenate([~finite, finite & (x < lows[:, None]), finite & (x > highs[:, None])])
    running = np.zeros((3 * n_feat, rows + 1), dtype=np.int64)
    np.cumsum(flags, axis=1, out=running[:, 1:])
    per_seg = running[:, b[1:]] - running[:, b[:-1]]
    missing, below, above = per_seg[:n_feat], per_seg[n_feat : 2 * n_feat], per_seg[2 * n_feat :]

    # fine-bin counts of every feature and segment in one bincount
    n_bins = np.array([fp.n_bins for fp in fps])
    offsets = np.concatenate([[0], np.cumsum(n_bins)])
    total_bins = int(offsets[-1])
    idx = np.empty((n_feat, rows), dtype=np.intp)
    for i, fp in enumerate(fps):
        idx[i] = np.searchsorted(fp.fine_edges, x[i], side="right")
    idx += offsets[:-1, None] + (seg * total_bins)[None, :]
    bins = np.bincount(idx[finite], minlength=n_seg * total_bins).astype(np.int64, copy=False)
    bins = bins.reshape(n_seg, total_bins)

    # Sums as `NumericWindow.of` takes them, to the bit: there `values.sum()` is numpy's pairwise add
    # starting from 0.0. Lay the rows out with a 0.0 ahead of each segment and drop the non-finite values:
    # every (feature, segment) is then one run [0.0, its finite values...] of `packed`, and reduceat over
    # a run copies the 0.0 and adds the pairwise sum of the rest - the same operations in the same order.
    # The leading slot also keeps every run non-empty, which reduceat needs; it is +-inf for min / max.
    width = rows + n_seg
    data_cols = np.arange(rows) + seg + 1
    lead_cols = b[:-1] + np.arange(n_seg)
    padded = np.zeros((n_feat, width))
    padded[:, data_cols] = x
    keep = np.ones((n_feat, width), dtype=bool)
    keep[:, data_cols] = finite
    packed = padded[keep]
    starts = (np.cumsum(keep.ravel()) - 1).reshape(n_feat, width)[:, lead_cols].ravel()
    sums = np.add.reduceat(packed, starts).reshape(n_feat, n_seg)
    valid = keep.copy()
    valid[:, lead_cols] = False
    minima = np.minimum.reduceat(np.where(valid, padded, np.inf), lead_cols, axis=1)
    maxima = np.maximum.reduceat(np.where(valid, padded, -np.inf), lead_cols, axis=1)
    # `NumericWindow.of` takes the sum of squares with BLAS `np.dot`, whose association depends on the
    # kernel, so take it the same way, run by run (slices of one array: no copies)
    ends = np.append(starts[1:], packed.size).tolist()
    squares = np.array(
        [float(np.dot(v, v)) for v in (packed[s + 1 : e] for s, e in zip(starts.tolist(), ends, strict=True))]
    ).reshape(n_feat, n_seg)

    counts = (b[1:] - b[:-1])[None, :] - missing
    ints = np.stack([missing, counts, below, above]).astype(np.int64, copy=False)  # (4, features, segments)
    floats = np.stack([sums, squares, minima, maxima])
    by_segment = (ints.transpose(2, 0, 1), floats.transpose(2, 0, 1))
    return bins, np.ascontiguousarray(by_segment[0]), np.ascontiguousarray(by_segment[1])


def _categorical_segments(
    features: list[tuple[str, CategoricalProfile, npt.ArrayLike]],
    lo: int,
    hi: int,
    n_seg: int,
    seg: npt.NDArray[np.intp],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], list[list[tuple[dict[str, int], int]]]]:
    """``CategoricalWindow.of`` of every segment of rows ``lo:hi`` (``seg``: segment per row), as arrays:
    the bucket counts ``(segments, buckets of these features)``, the missing counts ``(segments, features)``
    and per feature and segment its tracked unseen categories and the untracked count."""
    rows = hi - lo
    # per feature, one slot per reference bucket, then one per unseen name, then one for missing
    codes = np.empty((len(features), rows), dtype=np.intp)
    layout: list[tuple[int, int, list[str]]] = []  # (offset, buckets, unseen names)
    offset = 0
    for i, (_, fp, column) in enumerate(features):
        names, row_codes = category_codes(np.asarray(column)[lo:hi])
        n_buckets = fp.n_buckets
        unseen: dict[str, int] = {}
        # one dict lookup per distinct value in the batch, never per row
        slots = []
        for name in names:
            slot = fp.index.get(name, -1)
            if slot < 0:
                slot = n_buckets - 1 if fp.truncated else n_buckets + unseen.setdefault(name, len(unseen))
            slots.append(slot)
        width = n_buckets + len(unseen) + 1
        slots.append(width - 1)  # row code -1 (missing) picks this last entry
        codes[i] = np.asarray(slots, dtype=np.intp)[row_codes] + offset
        layout.append((offset, n_buckets, list(unseen)))
        offset += width
    codes += (seg * offset)[None, :]
    table = np.bincount(codes.ravel(), minlength=n_seg * offset).astype(np.int64, copy=False)
    table = table.reshape(n_seg, offset)

    bucket_cols = np.concatenate([np.arange(start, start + n, dtype=np.intp) for start, n, _ in layout])
    missing_cols = np.array([start + n + len(names) for start, n, names in layout], dtype=np.intp)
    unseen_of: list[list[tuple[dict[str, int], int]]] = []
    for start, n_buckets, unseen_names in layout:
        if not unseen_names:
            unseen_of.append([({}, 0)] * n_seg)
            continue
        rest = table[:, start + n_buckets : start + n_buckets + len(unseen_names)].tolist()
        mine = []
        for s in range(n_seg):
            mine.append(_add_unseen({}, 0, [(n, c) for n, c in zip(unseen_names, rest[s], strict=True) if c]))
        unseen_of.append(mine)
    return table[:, bucket_cols], table[:, missing_cols], unseen_of


class WindowSketch:
    """One window's sketch over ``profile``: ``features`` maps each profile feature to its window.

    Sketches that come from ``of_segments``, ``merge`` or ``update`` are kept packed (a few arrays, see
    ``_Packed``) and build their per-feature windows on the first read of ``features``; so a sliding
    window's merges cost a few array operations whatever the number of features. Immutable: treat
    ``features`` and its windows as read-only.
    """

    __slots__ = ("_features", "_packed", "n_rows", "profile", "unknown_features")

    profile: ReferenceProfile
    n_rows: int
    unknown_features: frozenset[str]

    def __init__(
        self,
        profile: ReferenceProfile,
        n_rows: int,
        features: Mapping[str, FeatureWindow] | None = None,
        unknown_features: frozenset[str] = frozenset(),
        *,
        packed: _Packed | None = None,
    ) -> None:
        if features is None and packed is None:
            raise ValueError("a sketch needs its features or its packed form")
        self.profile = profile
        self.n_rows = n_rows
        self.unknown_features = unknown_features
        self._features = features
        self._packed = packed

    @property
    def features(self) -> Mapping[str, FeatureWindow]:
        if self._features is None:
            assert self._packed is not None
            self._features = _unpack(_layout(self.profile), self._packed)
        return self._features

    @property
    def is_packed(self) -> bool:
        """Held as packed arrays only (its per-feature windows not built): a reader of many windows takes
        their numbers from ``StackedSketches`` rather than build every window."""
        return self._features is None

    def missing_count(self, name: str) -> int:
        """Feature ``name``'s missing values (``features[name].missing``) without building the per-feature
        windows of a packed sketch."""
        if self._features is not None or self._packed is None:
            return int(self.features[name].missing)
        layout = _layout(self.profile)
        for feature, numeric, i in layout.order:
            if feature == name:
                at = layout.at_counts + i if numeric else layout.at_cat + i
                return int(self._packed.ints[at])
        raise KeyError(name)

    def _packed_form(self) -> _Packed:
        if self._packed is None:
            assert self._features is not None
            self._packed = _pack(_layout(self.profile), self._features)
        return self._packed

    def __repr__(self) -> str:
        return (
            f"WindowSketch(profile={self.profile.fingerprint}, n_rows={self.n_rows}, "
            f"features={list(self.profile.features)}, unknown_features={sorted(self.unknown_features)})"
        )

    @classmethod
    def empty(cls, profile: ReferenceProfile) -> WindowSketch:
        features: dict[str, FeatureWindow] = {}
        for name, fp in profile.features.items():
            features[name] = (
                NumericWindow.empty(fp) if isinstance(fp, NumericProfile) else CategoricalWindow.empty(fp)
            )
        return cls(profile=profile, n_rows=0, features=features)

    def update(self, columns: Mapping[str, npt.ArrayLike]) -> WindowSketch:
        """A new sketch with ``columns`` added; features absent from ``columns`` count as missing."""
        return self.merge(self._of_batch(columns))

    def _of_batch(self, columns: Mapping[str, npt.ArrayLike]) -> WindowSketch:
        rows = n_rows(columns)
        features: dict[str, FeatureWindow] = {}
        for name, fp in self.profile.features.items():
            column = columns.get(name)
            if isinstance(fp, NumericProfile):
                features[name] = (
                    replace(NumericWindow.empty(fp), missing=rows)
                    if column is None
                    else NumericWindow.of(fp, name, column)
                )
            else:
                features[name] = (
                    replace(CategoricalWindow.empty(fp), missing=rows)
                    if column is None
                    else CategoricalWindow.of(fp, column)
                )
        unknown = frozenset(columns) - frozenset(self.profile.features)
        return WindowSketch(profile=self.profile, n_rows=rows, features=features, unknown_features=unknown)

    @classmethod
    def of_segments(
        cls, profile: ReferenceProfile, columns: Mapping[str, npt.ArrayLike], bounds: Sequence[int]
    ) -> list[WindowSketch]:
        """One sketch per row segment of one batch: segment ``i`` holds rows ``bounds[i]:bounds[i + 1]``.

        ``of_segments(profile, columns, [0, 100, 200, 500])`` returns three sketches, of rows 0-99,
        100-199 and 200-499, each equal to ``WindowSketch.empty(profile).update(segment)`` (its ``n_rows``
        is the segment's length, ``unknown_features`` the batch's). It is what a sliding window needs to
        cut a batch into panes, at about the cost of one ``update`` of the whole batch instead of one per
        pane: bin indexes, missing masks and category codes are computed once per batch, and the counts of
        all features and segments come from one ``np.bincount`` per kind. The sketches come packed.

        ``bounds`` must be non-decreasing integers within ``[0, rows]``; rows before ``bounds[0]`` or
        from ``bounds[-1]`` on are ignored, and one bound gives no segment. An empty segment (two equal
        bounds) gives an empty sketch with ``n_rows`` 0. Counts, minima and maxima equal those of
        ``update`` exactly, and so do ``sum`` and ``sum_sq``: each is summed with the same numpy
        reduction (pairwise ``add`` from 0.0, BLAS ``dot``) over the same values in the same order
        (tests/detectors/test_drift_split.py checks it to the bit; were a numpy release to change how
        ``reduceat`` associates, the sums would differ in the last bits, as they do with merge order).
        """
        rows = n_rows(columns)
        b = _check_bounds(bounds, rows)
        n_seg = b.size - 1
        if n_seg == 0:
            return []
        lo, hi = int(b[0]), int(b[-1])
        b = b - lo
        lengths = np.diff(b)
        seg = np.repeat(np.arange(n_seg, dtype=np.intp), lengths)
        layout = _layout(profile)
        n_num, n_cat = len(layout.numeric), len(layout.categorical)
        # absent columns count as missing: empty windows with every row missing
        ints = np.zeros((n_seg, layout.size), dtype=np.int64)
        ints[:, layout.at_counts : layout.at_counts + n_num] = lengths[:, None]
        ints[:, layout.at_cat : layout.at_cat + n_cat] = lengths[:, None]
        floats = np.zeros((n_seg, 4, n_num))
        floats[:, 2:, :] = -np.inf
        unseen: list[list[Mapping[str, int]]] = [[{}] * n_cat for _ in range(n_seg)]

        numeric: list[tuple[str, NumericProfile, npt.ArrayLike]] = []
        categorical: list[tuple[str, CategoricalProfile, npt.ArrayLike]] = []
        num_at, cat_at = [], []
        for name, is_numeric, i in layout.order:
            column, fp = columns.get(name), profile.features[name]
            if column is None:
                continue
            if is_numeric and isinstance(fp, NumericProfile):
                numeric.append((name, fp, column))
                num_at.append(i)
            elif isinstance(fp, CategoricalProfile):
                categorical.append((name, fp, column))
                cat_at.append(i)
        if numeric:
            bins, counts, sums = _numeric_segments(numeric, lo, hi, b, seg)
            cols = [np.arange(*layout.bin_spans[i], dtype=np.intp) for i in num_at]
            ints[:, np.concatenate(cols)] = bins
            at = np.array(num_at, dtype=np.intp)
            ints[:, (layout.at_counts + at[None, :] + n_num * np.arange(4)[:, None]).ravel()] = (
                counts.reshape(n_seg, -1)
            )
            sums[:, 2] *= -1.0
            floats[:, :, at] = sums
        if categorical:
            buckets, missing, unseen_of = _categorical_segments(categorical, lo, hi, n_seg, seg)
            cols = [layout.at_buckets + np.arange(*layout.bucket_spans[i], dtype=np.intp) for i in cat_at]
            ints[:, np.concatenate(cols)] = buckets
            at = np.array(cat_at, dtype=np.intp)
            ints[:, layout.at_cat + at] = missing
            untracked_at = layout.at_cat + n_cat
            for j, i in enumerate(cat_at):
                for s, (tracked, untracked) in enumerate(unseen_of[j]):
                    if tracked or untracked:
                        unseen[s][i] = tracked
                        ints[s, untracked_at + i] = untracked
        ints.flags.writeable = False  # each sketch's arrays are views of these
        floats.flags.writeable = False
        unknown = frozenset(columns) - frozenset(profile.features)
        return [
            cls(
                profile=profile,
                n_rows=n,
                unknown_features=unknown,
                packed=_new_packed(ints[s], floats[s], tuple(unseen[s])),
            )
            for s, n in enumerate(lengths.tolist())
        ]

    def merge(self, other: WindowSketch) -> WindowSketch:
        if other.profile.fingerprint != self.profile.fingerprint:
            raise ProfileMismatchError("cannot merge sketches of different reference profiles")
        return WindowSketch(
            profile=self.profile,
            n_rows=self.n_rows + other.n_rows,
            unknown_features=self.unknown_features | other.unknown_features,
            packed=_merge_packed(_layout(self.profile), self._packed_form(), other._packed_form()),
        )

    @classmethod
    def merge_runs(cls, sketches: Sequence[WindowSketch], k: int, ends: Sequence[int]) -> list[WindowSketch]:
        """For each ``j`` in ``ends``, the merge of the ``k`` sketches ending at ``j``: the sketch
        ``functools.reduce(WindowSketch.merge, sketches[j + 1 - k : j + 1])``, to the bit, for all the runs
        at once.

        A sliding window of ``k`` panes closes once per pane, ~10 times per batch of events: folded run by
        run that is ``k - 1`` merges per window; here the counts are differences of running sums over the
        panes (exact), and the float sums and extremes of all the windows are folded together (the same
        float64 additions in the same order, each extreme kept from the left unless the right one is strictly
        beyond it, as ``merge`` does). Unseen category names, rare, are folded run by run."""
        starts = run_starts(len(sketches), k, ends)
        if not ends:
            return []
        profile = sketches[0].profile
        if any(s.profile.fingerprint != profile.fingerprint for s in sketches):
            raise ProfileMismatchError("cannot merge sketches of different reference profiles")
        layout = _layout(profile)
        packs = [s._packed_form() for s in sketches]
        firsts = np.asarray(starts, dtype=np.intp)
        # counts: differences of running sums over the panes (one vector addition per pane where a fold would
        # take k - 1 per window; the counts are most of a sketch's numbers)
        ints = run_sums([p.ints for p in packs], k, starts)
        # float sums and extremes: folded left to right as merge adds them. `accumulate` is that fold by
        # definition (out[i] = out[i - 1] + x[i]), over every window's panes at once.
        runs = np.stack([p.floats for p in packs])[firsts[:, None] + np.arange(k)]  # (windows, k, 4, features)
        floats = np.empty(runs.shape[:1] + runs.shape[2:])
        floats[:, :2] = np.add.accumulate(runs[:, :, :2], axis=1)[:, -1]
        if (runs[:, :, 2:] == 0.0).any():
            # a zero extreme: -0.0 and 0.0 tie, and which one np.maximum keeps is the CPU's choice; keep the
            # left one unless the right one is strictly beyond it, as merge does
            extremes = runs[:, 0, 2:].copy()
            for step in range(1, k):
                np.copyto(extremes, runs[:, step, 2:], where=runs[:, step, 2:] > extremes)
            floats[:, 2:] = extremes
        else:
            floats[:, 2:] = np.maximum.reduce(runs[:, :, 2:], axis=1)
        untracked = layout.at_cat + len(layout.categorical)
        named = [any(p.unseen) for p in packs]
        unseen: list[tuple[Mapping[str, int], ...]] = []
        for w, first in enumerate(starts):
            run = packs[first : first + k]
            names = run[0].unseen
            if any(named[first + 1 : first + k]):  # rare: new categories to name, in merge order
                merged = list(names)
                for p in run[1:]:
                    for i, theirs in enumerate(p.unseen):
                        if theirs:
                            merged[i], over = _add_unseen(merged[i], 0, theirs.items())
                            ints[w, untracked + i] += over
                names = tuple(merged)
            unseen.append(names)
        ints.flags.writeable = False  # each sketch's arrays are views of these
        floats.flags.writeable = False
        rows = np.cumsum([0] + [s.n_rows for s in sketches]).tolist()
        unknowns = [s.unknown_features for s in sketches]
        out = []
        for w, (first, end) in enumerate(zip(starts, ends, strict=True)):
            unknown = unknowns[first]
            for more in unknowns[first + 1 : end + 1]:
                if more and more is not unknown:
                    unknown = unknown | more
            packed = _new_packed(ints[w], floats[w], unseen[w])
            out.append(cls(profile, rows[end + 1] - rows[first], None, unknown, packed=packed))
        return out

    def to_dict(self) -> dict[str, Any]:
        packed = self._packed
        features = (
            _packed_dicts(_layout(self.profile), packed)
            if self._features is None and packed is not None
            else {name: w.to_dict() for name, w in self.features.items()}
        )
        return {
            "profile_fingerprint": self.profile.fingerprint,
            "n_rows": self.n_rows,
            "features": features,
            "unknown_features": sorted(self.unknown_features),
        }

    def to_packed_dict(self) -> dict[str, Any]:
        """The compact stored form: the packed arrays as two flat lists (``_Layout`` says where each feature
        sits), what a worker's model state keeps per open window and pane. ``from_dict`` reads it as well as
        ``to_dict``'s per-feature form, which stays the readable one.

        A sliding window stores its 10 panes with every batch: written this way a pane costs a few list
        conversions instead of one dict per feature, and its JSON is smaller. Non-finite floats (the
        extremes of a feature with no value yet) are written as the strings ``"inf"`` / ``"-inf"``: JSON
        has no infinity. The minima are stored negated, as they are packed."""
        p = self._packed_form()
        floats: list[Any] = p.floats.ravel().tolist()
        if not np.isfinite(p.floats).all():
            floats = [v if math.isfinite(v) else repr(v) for v in floats]
        return {
            "profile_fingerprint": self.profile.fingerprint,
            "n_rows": self.n_rows,
            "packed": {"ints": p.ints.tolist(), "floats": floats, "unseen": [dict(sorted(u.items())) for u in p.unseen]},
            "unknown_features": sorted(self.unknown_features),
        }

    @classmethod
    def _from_packed_dict(cls, data: Mapping[str, Any], profile: ReferenceProfile) -> WindowSketch:
        layout = _layout(profile)
        packed = data["packed"]
        n_num, n_cat = len(layout.numeric), len(layout.categorical)
        try:
            ints = np.array(packed["ints"], dtype=np.int64)
            floats = np.array(packed["floats"], dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ProfileMismatchError(f"packed sketch: {exc}") from None
        unseen = packed["unseen"]
        if ints.shape != (layout.size,) or floats.shape != (4 * n_num,) or len(unseen) != n_cat:
            raise ProfileMismatchError(
                f"packed sketch of {ints.size} counts, {floats.size} floats and {len(unseen)} unseen maps; "
                f"the profile needs {layout.size}, {4 * n_num} and {n_cat}"
            )
        if ints.size and ints.min() < 0:
            raise ProfileMismatchError("packed sketch with a negative count")
        return cls(
            profile=profile,
            n_rows=int(data["n_rows"]),
            unknown_features=frozenset(data["unknown_features"]),
            packed=_new_packed(
                _frozen(ints),
                _frozen(floats.reshape(4, n_num)),
                tuple({str(k): int(v) for k, v in u.items()} for u in unseen),
            ),
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], profile: ReferenceProfile) -> WindowSketch:
        """Rebuild a sketch for ``profile`` from ``to_dict`` or ``to_packed_dict``; the profile itself is
        stored once, not in every sketch."""
        if data["profile_fingerprint"] != profile.fingerprint:
            raise ProfileMismatchError(
                f"sketch was built for profile {data['profile_fingerprint']}, not {profile.fingerprint}"
            )
        if "packed" in data:
            return cls._from_packed_dict(data, profile)
        features: dict[str, FeatureWindow] = {}
        for name, fp in profile.features.items():
            fd = data["features"][name]
            window: FeatureWindow
            if isinstance(fp, NumericProfile):
                window, expected = NumericWindow.from_dict(fd), fp.n_bins
            else:
                window, expected = CategoricalWindow.from_dict(fd), fp.n_buckets
            if window.counts.shape != (expected,):
                raise ProfileMismatchError(
                    f"feature {name!r}: {window.counts.size} counts, profile has {expected}"
                )
            features[name] = window
        return cls(
            profile=profile,
            n_rows=int(data["n_rows"]),
            features=features,
            unknown_features=frozenset(data["unknown_features"]),
        )


@dataclass(frozen=True, eq=False)
class StackedSketches:
    """The packed counts of many sketches of one profile, one row per sketch: what ``evaluate_drift_many``
    (and any reader of many windows at once) takes its numbers from without building per-feature windows.
    Per-feature columns follow the profile's features of each kind in profile order (``numeric`` /
    ``categorical``)."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    bins: npt.NDArray[np.int64]  # (sketches, fine bins of all numeric features one after the other)
    missing: npt.NDArray[np.int64]  # (sketches, numeric features)
    count: npt.NDArray[np.int64]  # (sketches, numeric features): finite values
    below: npt.NDArray[np.int64]  # (sketches, numeric features): values below the reference minimum
    above: npt.NDArray[np.int64]  # ... above its maximum
    total: npt.NDArray[np.float64]  # (sketches, numeric features)
    total_sq: npt.NDArray[np.float64]
    buckets: npt.NDArray[np.int64]  # (sketches, reference buckets of all categorical features)
    cat_missing: npt.NDArray[np.int64]  # (sketches, categorical features)
    unseen_count: npt.NDArray[np.int64]  # (sketches, categorical features): tracked and untracked
    cat_count: npt.NDArray[np.int64]  # (sketches, categorical features): non-missing, seen or not
    unseen: list[
        tuple[Mapping[str, int], ...]
    ]  # per sketch, the tracked unseen names per categorical feature

    @classmethod
    def of(cls, profile: ReferenceProfile, sketches: Sequence[WindowSketch]) -> StackedSketches:
        for sketch in sketches:
            if sketch.profile.fingerprint != profile.fingerprint:
                raise ProfileMismatchError("the sketch was built for another reference profile")
        layout = _layout(profile)
        n_num, n_cat = len(layout.numeric), len(layout.categorical)
        packs = [s._packed_form() for s in sketches]
        ints = np.stack([p.ints for p in packs]) if packs else np.zeros((0, layout.size), dtype=np.int64)
        floats = np.stack([p.floats for p in packs]) if packs else np.zeros((0, 4, n_num))
        at, at_c = layout.at_counts, layout.at_cat
        buckets = ints[:, layout.at_buckets : at_c]
        unseen = [p.unseen for p in packs]
        unseen_count = ints[:, at_c + n_cat : at_c + 2 * n_cat].copy()  # the untracked ones, then the named
        for j, names in enumerate(unseen):
            for i, tracked in enumerate(names):
                if tracked:
                    unseen_count[j, i] += sum(tracked.values())
        # per feature, its buckets' sum: differences of running sums (a feature may have no bucket at all)
        running = np.zeros((len(packs), buckets.shape[1] + 1), dtype=np.int64)
        np.cumsum(buckets, axis=1, out=running[:, 1:])
        spans = np.array(layout.bucket_spans, dtype=np.intp).reshape(n_cat, 2)
        seen = running[:, spans[:, 1]] - running[:, spans[:, 0]]
        return cls(
            numeric=layout.numeric, categorical=layout.categorical, bins=ints[:, : layout.at_counts],
            missing=ints[:, at : at + n_num], count=ints[:, at + n_num : at + 2 * n_num],
            below=ints[:, at + 2 * n_num : at + 3 * n_num], above=ints[:, at + 3 * n_num : at + 4 * n_num],
            total=floats[:, 0], total_sq=floats[:, 1], buckets=buckets, cat_missing=ints[:, at_c : at_c + n_cat],
            unseen_count=unseen_count, cat_count=seen + unseen_count, unseen=unseen,
        )  # fmt: skip
