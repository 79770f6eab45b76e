"""Reference profiles: what a window is compared with, summarised once from the reference data.

Numeric features keep ``fine_edges``, the unique interior quantiles of the reference (up to ``fine_bins``
bins). A value ``v`` falls in bin ``searchsorted(fine_edges, v, side='right')``: ``len(fine_edges) + 1``
bins including the two open ends. KS runs on the fine bins. PSI, Jensen-Shannon and Hellinger run on
coarse bins, made by grouping neighbouring fine bins so each holds about ``1 / coarse_bins`` of the
reference (deciles by default); a value heavier than a decile keeps a coarse bin to itself.

Categorical features keep the count of each reference category. Past ``max_categories`` distinct values,
the most frequent ones are kept and the rest pooled into one ``__other__`` bucket (``other_count``; None
when nothing was pooled); then a seeded random half of the rows picks the categories and the other half
counts them (see ``categorical_profile``), so ``n`` is about half the reference.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from detectors.base import CATEGORICAL, NUMERIC, ConfigError, FeatureKind, int_at_least, json_safe
from detectors.drift.columns import category_counts, finite_values, infer_kind, n_rows

OTHER = "__other__"
PROFILE_VERSION = 1
SPLIT_SEED = 20240601  # fixed, so a profile is a pure function of its reference


def _frozen_ints(values: Any) -> npt.NDArray[np.int64]:
    arr = np.array(values, dtype=np.int64)
    arr.flags.writeable = False
    return arr


@dataclass(frozen=True, eq=False)
class NumericProfile:
    fine_edges: npt.NDArray[np.float64]
    ref_counts: npt.NDArray[np.int64]
    coarse_of_fine: npt.NDArray[np.int64]
    n: int
    missing: int
    minimum: float | None = None
    maximum: float | None = None
    mean: float | None = None
    std: float | None = None
    kind: ClassVar[FeatureKind] = NUMERIC

    def __post_init__(self) -> None:
        edges = np.array(self.fine_edges, dtype=np.float64)
        edges.flags.writeable = False
        object.__setattr__(self, "fine_edges", edges)
        object.__setattr__(self, "ref_counts", _frozen_ints(self.ref_counts))
        object.__setattr__(self, "coarse_of_fine", _frozen_ints(self.coarse_of_fine))
        bins = edges.size + 1
        if edges.ndim != 1 or not np.all(np.isfinite(edges)) or np.any(np.diff(edges) <= 0):
            raise ConfigError("fine_edges must be finite and strictly increasing")
        if self.ref_counts.shape != (bins,) or self.coarse_of_fine.shape != (bins,):
            raise ConfigError(f"ref_counts and coarse_of_fine need {bins} entries (fine_edges + 1)")
        if int(self.ref_counts.sum()) != self.n:
            raise ConfigError("ref_counts must sum to n")
        coarse = self.coarse_of_fine
        if coarse[0] != 0 or np.any(np.diff(coarse) < 0) or np.any(np.diff(coarse) > 1):
            raise ConfigError("coarse_of_fine must run 0, 1, ... without gaps")

    @property
    def n_bins(self) -> int:
        return int(self.fine_edges.size + 1)

    @property
    def n_coarse(self) -> int:
        return int(self.coarse_of_fine[-1]) + 1

    def bin_counts(self, values: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
        """Counts of finite ``values`` per fine bin."""
        idx = np.searchsorted(self.fine_edges, values, side="right")
        return np.bincount(idx, minlength=self.n_bins).astype(np.int64)

    def coarsen(self, fine_counts: npt.ArrayLike) -> npt.NDArray[np.int64]:
        counts = np.asarray(fine_counts, dtype=np.int64)
        return np.bincount(self.coarse_of_fine, weights=counts, minlength=self.n_coarse).astype(np.int64)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "fine_edges": self.fine_edges.tolist(),
            "ref_counts": self.ref_counts.tolist(),
            "coarse_of_fine": self.coarse_of_fine.tolist(),
            "n": self.n,
            "missing": self.missing,
            "min": json_safe(self.minimum),
            "max": json_safe(self.maximum),
            "mean": json_safe(self.mean),
            "std": json_safe(self.std),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NumericProfile:
        return cls(
            fine_edges=np.asarray(data["fine_edges"], dtype=np.float64),
            ref_counts=data["ref_counts"],
            coarse_of_fine=data["coarse_of_fine"],
            n=int(data["n"]),
            missing=int(data["missing"]),
            minimum=data["min"],
            maximum=data["max"],
            mean=data["mean"],
            std=data["std"],
        )


@dataclass(frozen=True, eq=False)
class CategoricalProfile:
    categories: tuple[str, ...]
    ref_counts: npt.NDArray[np.int64]  # per category, in the order of ``categories``
    other_count: int | None  # pooled tail beyond max_categories; None when every category is listed
    n: int
    missing: int
    index: Mapping[str, int] = field(init=False, repr=False)
    kind: ClassVar[FeatureKind] = CATEGORICAL

    def __post_init__(self) -> None:
        object.__setattr__(self, "categories", tuple(self.categories))
        object.__setattr__(self, "ref_counts", _frozen_ints(self.ref_counts))
        object.__setattr__(self, "index", {c: i for i, c in enumerate(self.categories)})
        if len(self.index) != len(self.categories) or self.ref_counts.shape != (len(self.categories),):
            raise ConfigError("categories must be distinct, with one count each")
        if int(self.ref_counts.sum()) + (self.other_count or 0) != self.n:
            raise ConfigError("category counts must sum to n")

    @property
    def truncated(self) -> bool:
        return self.other_count is not None

    @property
    def n_buckets(self) -> int:
        """Reference buckets: the categories, plus ``__other__`` when the profile was truncated."""
        return len(self.categories) + (1 if self.truncated else 0)

    def bucket_counts(self) -> npt.NDArray[np.int64]:
        if self.other_count is None:
            return np.asarray(self.ref_counts)
        return np.append(self.ref_counts, np.int64(self.other_count))

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "categories": list(self.categories),
            "ref_counts": self.ref_counts.tolist(),
            "other_count": self.other_count,
            "n": self.n,
            "missing": self.missing,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CategoricalProfile:
        other = data["other_count"]
        return cls(
            categories=tuple(data["categories"]),
            ref_counts=data["ref_counts"],
            other_count=None if other is None else int(other),
            n=int(data["n"]),
            missing=int(data["missing"]),
        )


FeatureProfile = NumericProfile | CategoricalProfile


@dataclass(frozen=True, eq=False)
class ReferenceProfile:
    """Per-feature reference summaries; ``fingerprint`` identifies the content (sketches carry it)."""

    features: Mapping[str, FeatureProfile]
    n_rows: int
    fingerprint: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "features", dict(self.features))
        body = json.dumps(self._body(), sort_keys=True, allow_nan=False)
        object.__setattr__(self, "fingerprint", hashlib.sha256(body.encode()).hexdigest()[:16])

    @property
    def kinds(self) -> dict[str, FeatureKind]:
        return {name: p.kind for name, p in self.features.items()}

    def _body(self) -> dict[str, Any]:
        return {
            "version": PROFILE_VERSION,
            "n_rows": self.n_rows,
            "features": {name: p.to_dict() for name, p in self.features.items()},
        }

    def to_dict(self) -> dict[str, Any]:
        return {**self._body(), "fingerprint": self.fingerprint}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReferenceProfile:
        if data.get("version") != PROFILE_VERSION:
            raise ConfigError(f"unsupported profile version {data.get('version')!r}")
        features: dict[str, FeatureProfile] = {}
        for name, fd in data["features"].items():
            if fd["kind"] == NUMERIC:
                features[name] = NumericProfile.from_dict(fd)
            elif fd["kind"] == CATEGORICAL:
                features[name] = CategoricalProfile.from_dict(fd)
            else:
                raise ConfigError(f"feature {name!r}: unknown kind {fd['kind']!r}")
        profile = cls(features=features, n_rows=int(data["n_rows"]))
        if "fingerprint" in data and data["fingerprint"] != profile.fingerprint:
            raise ConfigError("profile content does not match its fingerprint")
        return profile


def coarse_map(ref_counts: npt.NDArray[np.int64], coarse_bins: int) -> npt.NDArray[np.int64]:
    """Fine bin -> coarse bin, cutting where the reference's cumulative mass crosses k / coarse_bins.

    A non-empty fine bin goes to the coarse bin holding the midpoint of its cumulative mass; an empty fine
    bin joins the non-empty bin before it (the first after it, at the start), so no coarse bin is empty in
    the reference. Labels are renumbered 0, 1, ... so a value heavier than a decile leaves no gap.
    """
    total = int(ref_counts.sum())
    if total == 0:
        return np.zeros(ref_counts.size, dtype=np.int64)
    midpoints = (np.cumsum(ref_counts) - ref_counts / 2.0) / total
    raw = np.minimum(np.floor(midpoints * coarse_bins), coarse_bins - 1).astype(np.int64)
    nonempty = np.flatnonzero(ref_counts > 0)
    # index of the last non-empty bin at or before each bin (the first non-empty one for leading bins)
    owner = np.maximum.accumulate(np.where(ref_counts > 0, np.arange(ref_counts.size), -1))
    owner[owner < 0] = nonempty[0]
    _, dense = np.unique(raw[owner], return_inverse=True)
    return dense.astype(np.int64)


def numeric_profile(name: str, column: npt.ArrayLike, fine_bins: int, coarse_bins: int) -> NumericProfile:
    values, missing = finite_values(name, column)
    if values.size == 0:
        return NumericProfile(np.zeros(0), np.zeros(1, np.int64), np.zeros(1, np.int64), n=0, missing=missing)
    edges = np.unique(np.quantile(values, np.arange(1, fine_bins) / fine_bins))
    counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=edges.size + 1)
    return NumericProfile(
        fine_edges=edges,
        ref_counts=counts,
        coarse_of_fine=coarse_map(counts, coarse_bins),
        n=int(values.size),
        missing=missing,
        minimum=float(values.min()),
        maximum=float(values.max()),
        mean=float(values.mean()),
        std=float(values.std()),
    )


def _merged_counts(column: npt.ArrayLike) -> tuple[dict[str, int], int]:
    names, counts, missing = category_counts(column)
    merged: dict[str, int] = {}
    for name, count in zip(names, counts.tolist(), strict=True):
        merged[name] = merged.get(name, 0) + count
    return merged, missing


def categorical_profile(column: npt.ArrayLike, max_categories: int) -> CategoricalProfile:
    merged, missing = _merged_counts(column)
    if len(merged) <= max_categories:
        ranked = sorted(merged.items(), key=lambda kv: (-kv[1], kv[0]))
        return CategoricalProfile(
            categories=tuple(name for name, _ in ranked),
            ref_counts=np.array([count for _, count in ranked], dtype=np.int64),
            other_count=None,
            n=sum(merged.values()),
            missing=missing,
        )
    # Choosing the top categories and counting them on the same rows favours the categories that were
    # lucky in the reference; every window then looks short of them and long on __other__ (a 20% false
    # alarm rate for a top 10 of 50 equally likely values). So half the rows, drawn with a fixed seed,
    # choose the categories and the other half counts them.
    arr = np.asarray(column)
    chooser = np.random.default_rng(SPLIT_SEED).random(arr.shape[0]) < 0.5
    chosen, _ = _merged_counts(arr[chooser])
    counted, counted_missing = _merged_counts(arr[~chooser])
    kept = [name for name, _ in sorted(chosen.items(), key=lambda kv: (-kv[1], kv[0]))[:max_categories]]
    kept_counts = np.array([counted.get(name, 0) for name in kept], dtype=np.int64)
    total = sum(counted.values())
    return CategoricalProfile(
        categories=tuple(kept),
        ref_counts=kept_counts,
        other_count=total - int(kept_counts.sum()),
        n=total,
        missing=counted_missing,
    )




def build_profile(
    columns: Mapping[str, npt.ArrayLike],
    kinds: Mapping[str, str] | None = None,
    *,
    fine_bins: int = 100,
    coarse_bins: int = 10,
    max_categories: int = 1000,
) -> ReferenceProfile:
    """Profile every column; ``kinds`` overrides the inferred kind (float -> numeric, object -> categorical)."""
    int_at_least("fine_bins", fine_bins, 2)
    int_at_least("coarse_bins", coarse_bins, 2)
    int_at_least("max_categories", max_categories, 1)
    if coarse_bins > fine_bins:
        raise ConfigError(f"coarse_bins ({coarse_bins}) must not exceed fine_bins ({fine_bins})")
    kinds = dict(kinds or {})
    absent = sorted(set(kinds) - set(columns))
    if absent:
        raise ConfigError(f"kinds names features with no reference column: {absent}")
    rows = n_rows(columns)
    features: dict[str, FeatureProfile] = {}
    for name, column in columns.items():
        kind = kinds.get(name) or infer_kind(name, column)
        if kind == NUMERIC:
            features[name] = numeric_profile(name, column, fine_bins, coarse_bins)
        elif kind == CATEGORICAL:
            features[name] = categorical_profile(column, max_categories)
        else:
            raise ConfigError(f"kinds[{name!r}] must be 'numeric' or 'categorical', got {kind!r}")
    return ReferenceProfile(features=features, n_rows=rows)
