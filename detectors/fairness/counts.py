"""Incremental fairness state of one window: per attribute and per group, seven integer counts.

For every declared sensitive attribute (and every declared intersection ``"a&b"``) and every group seen,
``FairnessCounts`` keeps the columns of ``COLUMNS``:

=============  ===================================================================
``n``          rows of the group
``n_pred_pos`` rows predicted positive (``y_pred == 1``)
``n_labelled`` rows whose label has arrived (``y_true`` not NaN)
``tp`` ...     the confusion matrix of the labelled rows (``tp``, ``fp``, ``tn``, ``fn``)
=============  ===================================================================

Every metric of ``detectors.fairness.parity`` is a ratio of these counts, so a window never keeps rows.
``update`` costs O(rows): group values are coded once per distinct value (a dict lookup per row, no sort of
the strings) and all seven counts of an attribute come from one ``np.bincount``. It returns a new object and
never mutates its inputs; ``merge`` adds two states of the same declaration.

Group labels: ``None`` and float NaN are the group ``"__missing__"``; other non-strings are ``str()``-ed.
An intersection group is the two labels joined by ``"&"``, with ``"\\"`` and ``"&"`` inside a label escaped
by a backslash, so distinct pairs never share a label. An attribute absent from a batch counts its rows as
``"__missing__"``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from detectors.base import ConfigError, InputError, fast_constructor, run_starts, run_sums

MISSING = "__missing__"
INTERSECTION_SEPARATOR = "&"
COLUMNS: tuple[str, ...] = ("n", "n_pred_pos", "n_labelled", "tp", "fp", "tn", "fn")
COUNTS_VERSION = 1
N, N_PRED_POS, N_LABELLED, TP, FP, TN, FN = range(len(COLUMNS))

IntArray = npt.NDArray[np.int64]


def intersection_name(first: str, second: str) -> str:
    return f"{first}{INTERSECTION_SEPARATOR}{second}"


def _escape(label: str) -> str:
    return label.replace("\\", "\\\\").replace(INTERSECTION_SEPARATOR, "\\" + INTERSECTION_SEPARATOR)


def intersection_label(first: str, second: str) -> str:
    return f"{_escape(first)}{INTERSECTION_SEPARATOR}{_escape(second)}"


def _frozen(arr: IntArray) -> IntArray:
    arr.flags.writeable = False
    return arr


def _label(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    return value if isinstance(value, str) else str(value)


def encode_groups(column: npt.ArrayLike) -> tuple[tuple[str, ...], IntArray]:
    """Distinct group labels of a column (sorted) and each row's index into them."""
    arr = np.asarray(column, dtype=object)
    if arr.ndim != 1:
        raise InputError(f"a group column must be one-dimensional, got shape {arr.shape}")
    values = arr.tolist()
    # hashing the Python objects is ~5x faster than np.unique, which sorts them with Python comparisons
    try:
        distinct = dict.fromkeys(values)
    except TypeError as exc:
        raise InputError(f"group values must be str or None: {exc}") from None
    labels = tuple(sorted({_label(v) for v in distinct}))
    index = {label: i for i, label in enumerate(labels)}
    code_of = {v: index[_label(v)] for v in distinct}
    codes = np.fromiter(map(code_of.__getitem__, values), dtype=np.int64, count=len(values))
    return labels, codes


@dataclass(frozen=True, eq=False)
class GroupCounts:
    """The ``COLUMNS`` counts of one attribute: row ``i`` of ``counts`` belongs to ``groups[i]``."""

    groups: tuple[str, ...]
    counts: IntArray  # shape (len(groups), len(COLUMNS))

    def __post_init__(self) -> None:
        object.__setattr__(self, "groups", tuple(self.groups))
        table = np.array(self.counts, dtype=np.int64).reshape(len(self.groups), len(COLUMNS))
        object.__setattr__(self, "counts", _frozen(table))
        if len(set(self.groups)) != len(self.groups):
            raise InputError("group labels must be distinct")
        if (table < 0).any():
            raise InputError("counts must be >= 0")

    @classmethod
    def empty(cls) -> GroupCounts:
        return cls(groups=(), counts=np.zeros((0, len(COLUMNS)), dtype=np.int64))

    def column(self, name: str) -> IntArray:
        out: IntArray = self.counts[:, COLUMNS.index(name)]
        return out

    def total(self) -> IntArray:
        """The counts summed over groups (one row of ``COLUMNS``)."""
        out: IntArray = self.counts.sum(axis=0)
        return out

    def add(self, other: GroupCounts) -> GroupCounts:
        if other.groups == self.groups:
            return _group_counts(self.groups, _frozen(self.counts + other.counts))
        if not self.groups:  # counts are immutable: the other side is the sum
            return other
        if not other.groups:
            return self
        groups = tuple(sorted(set(self.groups) | set(other.groups)))
        index = {g: i for i, g in enumerate(groups)}
        table = np.zeros((len(groups), len(COLUMNS)), dtype=np.int64)
        table[[index[g] for g in self.groups]] += self.counts
        table[[index[g] for g in other.groups]] += other.counts
        return _group_counts(groups, _frozen(table))

    def to_dict(self) -> dict[str, Any]:
        return {"groups": list(self.groups), "counts": self.counts.tolist()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GroupCounts:
        groups = tuple(str(g) for g in data["groups"])
        return cls(groups, np.array(data["counts"], dtype=np.int64).reshape(len(groups), len(COLUMNS)))


def _binary(name: str, values: npt.ArrayLike, allow_nan: bool) -> npt.NDArray[np.float64]:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name} must hold 0/1 values: {exc}") from None
    if arr.ndim != 1:
        raise InputError(f"{name} must be one-dimensional, got shape {arr.shape}")
    ok = (arr == 0.0) | (arr == 1.0)
    if allow_nan:
        ok |= np.isnan(arr)
    if not ok.all():
        bad = arr[~ok][:5].tolist()
        raise InputError(f"{name} must hold 0/1 values{' or NaN' if allow_nan else ''}, got e.g. {bad}")
    return arr


def _cells(y_pred: npt.ArrayLike, y_true: npt.ArrayLike | None) -> tuple[IntArray, int]:
    """Each row's confusion cell: tn 0, fp 1, fn 2, tp 3 when labelled; 4 + y_pred when not."""
    pred = _binary("y_pred", y_pred, allow_nan=False)
    if y_true is None:
        return (4 + pred).astype(np.int64), pred.size
    true = _binary("y_true", y_true, allow_nan=True)
    if true.shape != pred.shape:
        raise InputError(f"y_true has {true.size} rows, y_pred {pred.size}")
    labelled = ~np.isnan(true)
    cells = np.where(labelled, 2.0 * np.where(labelled, true, 0.0) + pred, 4.0 + pred)
    return cells.astype(np.int64), pred.size


def _tabulate(codes: IntArray, n_groups: int, cells: IntArray) -> IntArray:
    raw = np.bincount(codes * 6 + cells, minlength=n_groups * 6).reshape(n_groups, 6)
    tn, fp, fn, tp, _unlabelled_neg, unlabelled_pos = raw.T
    table = np.column_stack(
        [raw.sum(axis=1), fp + tp + unlabelled_pos, tn + fp + fn + tp, tp, fp, tn, fn]
    )  # same order as COLUMNS
    return table.astype(np.int64)


@dataclass(frozen=True, eq=False)
class FairnessCounts:
    """Counts per attribute (and per intersection, under ``intersection_name(a, b)``), per group."""

    attributes: tuple[str, ...]
    intersections: tuple[tuple[str, str], ...] = ()
    n_rows: int = 0
    tables: Mapping[str, GroupCounts] = field(default_factory=dict)

    def __post_init__(self) -> None:
        attributes = tuple(self.attributes)
        intersections = tuple((str(a), str(b)) for a, b in self.intersections)
        object.__setattr__(self, "attributes", attributes)
        object.__setattr__(self, "intersections", intersections)
        if not attributes or len(set(attributes)) != len(attributes):
            raise ConfigError("attributes must name at least one attribute, each once")
        for pair in intersections:
            if any(a not in attributes for a in pair) or pair[0] == pair[1]:
                raise ConfigError(f"intersections: {pair!r} must pair two distinct declared attributes")
        tables = {name: self.tables.get(name, GroupCounts.empty()) for name in self.names}
        unknown = set(self.tables) - set(tables)
        if unknown:
            raise ConfigError(f"tables for undeclared attributes: {sorted(unknown)}")
        object.__setattr__(self, "tables", tables)

    @classmethod
    def empty(cls, attributes: Iterable[str], intersections: Iterable[Sequence[str]] = ()) -> FairnessCounts:
        return cls(attributes=tuple(attributes), intersections=tuple((a, b) for a, b in intersections))

    @property
    def names(self) -> tuple[str, ...]:
        """Attributes, then intersections: the keys of ``tables``."""
        return self.attributes + tuple(intersection_name(a, b) for a, b in self.intersections)

    def update(
        self,
        groups: Mapping[str, npt.ArrayLike],
        y_pred: npt.ArrayLike,
        y_true: npt.ArrayLike | None = None,
    ) -> FairnessCounts:
        """A new state with a batch added. ``y_true`` is NaN where the label has not arrived yet."""
        return self.merge(self._of_batch(groups, y_pred, y_true))

    def _of_batch(
        self, groups: Mapping[str, npt.ArrayLike], y_pred: npt.ArrayLike, y_true: npt.ArrayLike | None
    ) -> FairnessCounts:
        return self.of_segments(groups, y_pred, [0, int(np.size(y_pred))], y_true)[0]

    def of_segments(
        self,
        groups: Mapping[str, npt.ArrayLike],
        y_pred: npt.ArrayLike,
        bounds: Sequence[int],
        y_true: npt.ArrayLike | None = None,
    ) -> list[FairnessCounts]:
        """The counts of each row segment ``bounds[i]:bounds[i + 1]`` of one batch, each equal to
        ``self.empty_like().update(segment)``: the batch's groups are coded once and every segment's table
        comes from one bincount (a sliding window cuts each batch into ~10 panes). ``bounds`` must be
        non-decreasing and within the batch's rows."""
        cells, rows = _cells(y_pred, y_true)
        b = np.asarray(bounds, dtype=np.intp)
        if b.ndim != 1 or b.size == 0 or b[0] < 0 or b[-1] > rows or np.any(np.diff(b) < 0):
            raise InputError(f"bounds must be non-decreasing within [0, {rows}], got {list(bounds)!r}")
        n_seg = b.size - 1
        lo, hi = int(b[0]), int(b[-1])
        seg = np.repeat(np.arange(n_seg, dtype=np.int64), np.diff(b))
        cells = cells[lo:hi]
        coded: dict[str, tuple[tuple[str, ...], IntArray]] = {}
        absent = set()
        for name in self.attributes:
            column = groups.get(name)
            if column is None:
                coded[name] = ((MISSING,), np.zeros(hi - lo, dtype=np.int64))
                absent.add(name)
                continue
            labels, codes = encode_groups(column)
            if codes.size != rows:
                raise InputError(f"attribute {name!r} has {codes.size} rows, y_pred {rows}")
            coded[name] = (labels, codes[lo:hi])  # groups of ignored rows have no row in any segment: dropped below
        for a, c in self.intersections:
            (labels_a, codes_a), (labels_b, codes_b) = coded[a], coded[c]
            pair_codes, codes = np.unique(codes_a * len(labels_b) + codes_b, return_inverse=True)
            labels = tuple(
                intersection_label(labels_a[p // len(labels_b)], labels_b[p % len(labels_b)])
                for p in pair_codes.tolist()
            )
            coded[intersection_name(a, c)] = (labels, codes.ravel())
        per_name: dict[str, list[GroupCounts]] = {}
        for name, (labels, codes) in coded.items():
            tables = _tabulate(seg * len(labels) + codes, n_seg * len(labels), cells).reshape(
                n_seg, len(labels), len(COLUMNS)
            )
            # a segment names only the groups it has rows of (as update does); an absent column names its one
            # MISSING group even in an empty segment
            present = (tables[:, :, 0] > 0).tolist() if name not in absent else [[True]] * n_seg
            out = []
            for s, keep in enumerate(present):
                if all(keep):
                    out.append(_group_counts(labels, _frozen(tables[s])))
                else:
                    at = [i for i, k in enumerate(keep) if k]
                    out.append(_group_counts(tuple(labels[i] for i in at), _frozen(tables[s][at])))
            per_name[name] = out
        sizes = np.diff(b).tolist()
        return [
            _fairness_counts(
                self.attributes, self.intersections, sizes[s], {name: per_name[name][s] for name in self.names}
            )
            for s in range(n_seg)
        ]

    @classmethod
    def merge_runs(cls, counts: Sequence[FairnessCounts], k: int, ends: Sequence[int]) -> list[FairnessCounts]:
        """For each ``j`` in ``ends``, ``functools.reduce(FairnessCounts.merge, counts[j + 1 - k : j + 1])``,
        equal to it (counts, groups and their order), for all the runs at once: a sliding window of ``k``
        panes closes once per pane."""
        firsts = run_starts(len(counts), k, ends)
        if not ends:
            return []
        first = counts[0]
        if any(c.attributes != first.attributes or c.intersections != first.intersections for c in counts):
            raise ConfigError("cannot merge counts of different attributes or intersections")
        per_name = {name: _add_runs([c.tables[name] for c in counts], k, firsts) for name in first.names}
        rows = [c.n_rows for c in counts]
        return [
            _fairness_counts(
                first.attributes, first.intersections, sum(rows[f : f + k]),
                {name: per_name[name][w] for name in first.names},
            )
            for w, f in enumerate(firsts)
        ]  # fmt: skip

    def merge(self, other: FairnessCounts) -> FairnessCounts:
        if other.attributes != self.attributes or other.intersections != self.intersections:
            raise ConfigError("cannot merge counts of different attributes or intersections")
        tables = {name: self.tables[name].add(other.tables[name]) for name in self.names}
        return _fairness_counts(self.attributes, self.intersections, self.n_rows + other.n_rows, tables)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": COUNTS_VERSION,
            "columns": list(COLUMNS),
            "attributes": list(self.attributes),
            "intersections": [list(pair) for pair in self.intersections],
            "n_rows": self.n_rows,
            "tables": {name: self.tables[name].to_dict() for name in self.names},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FairnessCounts:
        if data.get("version") != COUNTS_VERSION or list(data.get("columns", ())) != list(COLUMNS):
            raise InputError(f"unsupported fairness counts (version {data.get('version')!r})")
        return cls(
            attributes=tuple(data["attributes"]),
            intersections=tuple((a, b) for a, b in data["intersections"]),
            n_rows=int(data["n_rows"]),
            tables={name: GroupCounts.from_dict(t) for name, t in data["tables"].items()},
        )



def _add_runs(tables: Sequence[GroupCounts], k: int, firsts: Sequence[int]) -> list[GroupCounts]:
    """``functools.reduce(GroupCounts.add, tables[f : f + k])`` for each ``f`` in ``firsts``. ``add`` keeps
    the groups (and their order) when both sides name the same ones and skips an empty side; otherwise its
    groups are the sorted union. So a run's groups are its one distinct non-empty tuple if it has one, else
    the sorted union of what its tables name."""
    groups = tables[0].groups
    if all(t.groups == groups for t in tables):  # the usual case: every pane saw the same groups
        sums = run_sums([t.counts for t in tables], k, firsts)
        sums.flags.writeable = False
        return [_group_counts(groups, sums[w]) for w in range(len(firsts))]
    union = tuple(sorted({g for t in tables for g in t.groups}))
    index = {g: i for i, g in enumerate(union)}
    full = np.zeros((len(tables), len(union), len(COLUMNS)), dtype=np.int64)
    named = np.zeros((len(tables), len(union)), dtype=bool)
    for p, t in enumerate(tables):
        at = [index[g] for g in t.groups]
        full[p, at] = t.counts
        named[p, at] = True
    sums = run_sums(list(full), k, firsts)
    present = run_sums(list(named), k, firsts) > 0  # named by a table of the run
    out = []
    for w, f in enumerate(firsts):
        distinct = {t.groups for t in tables[f : f + k] if t.groups}
        if len(distinct) == 1:
            (mine,) = distinct
            out.append(_group_counts(mine, _frozen(sums[w][[index[g] for g in mine]])))
        else:
            keep = present[w]
            out.append(_group_counts(tuple(g for g, kept in zip(union, keep.tolist(), strict=True) if kept),
                                     _frozen(sums[w][keep])))
    return out


# counts this module computed itself (updates, merges) are already what ``__post_init__`` checks and normalises
# (tuples, read-only int64 tables of the right shape, distinct groups, non-negative counts): a sliding window
# merges and updates counts at every step, and the checks were half of that work
_group_counts = fast_constructor(GroupCounts, values_checked=True)
_fairness_counts = fast_constructor(FairnessCounts, values_checked=True)
