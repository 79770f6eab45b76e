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

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from detectors.base import InputError, ProfileMismatchError, fast_constructor
from detectors.drift.columns import category_codes, category_counts, finite_values, n_rows
from detectors.drift.profile import CategoricalProfile, NumericProfile, ReferenceProfile

MAX_TRACKED_UNSEEN = 100


def _frozen(arr: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
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
    for name, count in new:
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
        # most frequent new names first, so the tracked ones are the ones worth reporting
        new.sort(key=lambda kv: (-kv[1], kv[0]))
        unseen, untracked = _add_unseen({}, 0, new)
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


def _numeric_segments(
    features: list[tuple[str, NumericProfile, npt.ArrayLike]],
    lo: int,
    hi: int,
    b: npt.NDArray[np.intp],
    seg: npt.NDArray[np.intp],
) -> dict[str, list[FeatureWindow]]:
    """``NumericWindow.of`` of every segment of rows ``lo:hi`` (``b``: bounds from 0, ``seg``: segment per row)."""
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
    bins.flags.writeable = False  # the windows' counts are views of it

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
    squares = [
        float(np.dot(v, v)) for v in (packed[s + 1 : e] for s, e in zip(starts.tolist(), ends, strict=True))
    ]

    counts = (b[1:] - b[:-1])[None, :] - missing
    out: dict[str, list[FeatureWindow]] = {}
    cols = zip(
        features, counts.tolist(), missing.tolist(), sums.tolist(), minima.tolist(), maxima.tolist(),
        below.tolist(), above.tolist(), strict=True,
    )  # fmt: skip
    for i, ((name, fp, _), cnt, miss, tot, mn, mx, bl, ab) in enumerate(cols):
        lo_bin, hi_bin = int(offsets[i]), int(offsets[i + 1])
        out[name] = [
            _new_numeric_window(
                bins[s, lo_bin:hi_bin], miss[s], cnt[s], tot[s], squares[i * n_seg + s], mn[s], mx[s], bl[s], ab[s]
            )
            for s in range(n_seg)
        ]
    return out


def _categorical_segments(
    features: list[tuple[str, CategoricalProfile, npt.ArrayLike]],
    lo: int,
    hi: int,
    n_seg: int,
    seg: npt.NDArray[np.intp],
) -> dict[str, list[FeatureWindow]]:
    """``CategoricalWindow.of`` of every segment of rows ``lo:hi`` (``seg``: segment per row)."""
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
    table.flags.writeable = False  # the windows' counts are views of it

    out: dict[str, list[FeatureWindow]] = {}
    for (name, _, _), (start, n_buckets, unseen_names) in zip(features, layout, strict=True):
        n_unseen = len(unseen_names)
        rest = table[:, start + n_buckets : start + n_buckets + n_unseen + 1].tolist()
        windows: list[FeatureWindow] = []
        for s in range(n_seg):
            *unseen_counts, missing = rest[s]
            new = [(n, c) for n, c in zip(unseen_names, unseen_counts, strict=True) if c]
            # most frequent new names first, as `CategoricalWindow.of` tracks them
            new.sort(key=lambda kv: (-kv[1], kv[0]))
            tracked, untracked = _add_unseen({}, 0, new)
            windows.append(
                CategoricalWindow(
                    counts=table[s, start : start + n_buckets],
                    unseen=tracked,
                    unseen_untracked=untracked,
                    missing=missing,
                )
            )
        out[name] = windows
    return out


@dataclass(frozen=True, eq=False)
class WindowSketch:
    profile: ReferenceProfile
    n_rows: int
    features: Mapping[str, FeatureWindow]
    unknown_features: frozenset[str] = frozenset()

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
        all features and segments come from one ``np.bincount`` per kind.

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
        windows: dict[str, list[FeatureWindow]] = {}
        numeric: list[tuple[str, NumericProfile, npt.ArrayLike]] = []
        categorical: list[tuple[str, CategoricalProfile, npt.ArrayLike]] = []
        for name, fp in profile.features.items():
            column = columns.get(name)
            if column is None:
                empty = (
                    NumericWindow.empty(fp) if isinstance(fp, NumericProfile) else CategoricalWindow.empty(fp)
                )
                windows[name] = [replace(empty, missing=n) for n in lengths.tolist()]
            elif isinstance(fp, NumericProfile):
                numeric.append((name, fp, column))
            else:
                categorical.append((name, fp, column))
        if numeric:
            windows.update(_numeric_segments(numeric, lo, hi, b, seg))
        if categorical:
            windows.update(_categorical_segments(categorical, lo, hi, n_seg, seg))
        unknown = frozenset(columns) - frozenset(profile.features)
        return [
            cls(
                profile=profile,
                n_rows=n,
                features={name: windows[name][i] for name in profile.features},
                unknown_features=unknown,
            )
            for i, n in enumerate(lengths.tolist())
        ]

    def merge(self, other: WindowSketch) -> WindowSketch:
        if other.profile.fingerprint != self.profile.fingerprint:
            raise ProfileMismatchError("cannot merge sketches of different reference profiles")
        features: dict[str, FeatureWindow] = {}
        theirs_all = other.features
        for name, mine in self.features.items():
            theirs = theirs_all[name]
            if type(mine) is not type(theirs):
                raise ProfileMismatchError(f"feature {name!r} has different kinds in the two sketches")
            features[name] = mine.add(theirs)  # type: ignore[arg-type]
        return WindowSketch(
            profile=self.profile,
            n_rows=self.n_rows + other.n_rows,
            features=features,
            unknown_features=self.unknown_features | other.unknown_features,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "profile_fingerprint": self.profile.fingerprint,
            "n_rows": self.n_rows,
            "features": {name: w.to_dict() for name, w in self.features.items()},
            "unknown_features": sorted(self.unknown_features),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], profile: ReferenceProfile) -> WindowSketch:
        """Rebuild a sketch for ``profile``; the profile itself is stored once, not in every sketch."""
        if data["profile_fingerprint"] != profile.fingerprint:
            raise ProfileMismatchError(
                f"sketch was built for profile {data['profile_fingerprint']}, not {profile.fingerprint}"
            )
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
