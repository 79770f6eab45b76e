"""Window sketches: the incrementally updatable state of one window, over one reference profile.

A sketch keeps counts, not rows: per numeric feature the counts over the profile's fine bins plus missing
count, count, sum, sum of squares, min and max, and how many values fell strictly below the reference minimum
(``below``) or above its maximum (``above``); per categorical feature the counts per reference bucket plus
the categories never seen in the reference. ``update`` costs O(rows + bins) and returns a new sketch;
``merge`` adds two sketches of the same profile. Both are exact for counts (the float sums may differ in the
last bits with the order rows arrive in).

Unseen categories are named up to ``MAX_TRACKED_UNSEEN`` per feature (further new names are only counted,
in ``unseen_untracked``). A profile truncated at ``max_categories`` cannot tell a rare reference category
from a new one, so there any value outside the listed categories counts in the ``__other__`` bucket.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from detectors.base import ProfileMismatchError
from detectors.drift.columns import category_counts, finite_values, n_rows
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
        return NumericWindow(
            counts=_frozen(self.counts + other.counts),
            missing=self.missing + other.missing,
            count=self.count + other.count,
            total=self.total + other.total,
            total_sq=self.total_sq + other.total_sq,
            minimum=min(self.minimum, other.minimum),
            maximum=max(self.maximum, other.maximum),
            below=self.below + other.below,
            above=self.above + other.above,
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
        unseen, untracked = _add_unseen(
            self.unseen, self.unseen_untracked + other.unseen_untracked, other.unseen.items()
        )
        return CategoricalWindow(
            counts=_frozen(self.counts + other.counts),
            unseen=unseen,
            unseen_untracked=untracked,
            missing=self.missing + other.missing,
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

    def merge(self, other: WindowSketch) -> WindowSketch:
        if other.profile.fingerprint != self.profile.fingerprint:
            raise ProfileMismatchError("cannot merge sketches of different reference profiles")
        features: dict[str, FeatureWindow] = {}
        for name, mine in self.features.items():
            theirs = other.features[name]
            # two branches, not one `or`, so each `add` sees matching types
            if isinstance(mine, NumericWindow) and isinstance(theirs, NumericWindow):  # noqa: SIM114
                features[name] = mine.add(theirs)
            elif isinstance(mine, CategoricalWindow) and isinstance(theirs, CategoricalWindow):
                features[name] = mine.add(theirs)
            else:
                raise ProfileMismatchError(f"feature {name!r} has different kinds in the two sketches")
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
