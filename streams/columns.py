"""From validated events to numpy columns: the stream layer's hand-off to detectors."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

NUMERIC = "numeric"
CATEGORICAL = "categorical"


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def infer_kinds(rows: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """A feature whose non-null values are all numbers is numeric; anything else is categorical."""
    kinds: dict[str, str] = {}
    for row in rows:
        for name, x in row.items():
            if x is None:
                kinds.setdefault(name, NUMERIC)
            elif _is_number(x):
                kinds.setdefault(name, NUMERIC)
            else:
                kinds[name] = CATEGORICAL
    return kinds


def _as_category(x: Any) -> str | None:
    if x is None:
        return None
    if isinstance(x, bool):
        return "true" if x else "false"
    return str(x)


def to_columns(rows: Sequence[Mapping[str, Any]], kinds: Mapping[str, str]) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Columns for the features in ``kinds`` and, per feature, how many values had the wrong type.

    A value of the wrong type for a numeric feature counts as missing (and as a type error).
    """
    n = len(rows)
    cols: dict[str, np.ndarray] = {}
    type_errors: dict[str, int] = {}
    for name, kind in kinds.items():
        if kind == NUMERIC:
            arr = np.full(n, np.nan, dtype=np.float64)
            bad = 0
            for i, row in enumerate(rows):
                x = row.get(name)
                if x is None:
                    continue
                if _is_number(x):
                    arr[i] = x
                else:
                    bad += 1
            if bad:
                type_errors[name] = bad
            cols[name] = arr
        else:
            cols[name] = np.array([_as_category(row.get(name)) for row in rows], dtype=object)
    return cols, type_errors


def columns_to_json(cols: Mapping[str, np.ndarray]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for name, arr in cols.items():
        if arr.dtype == object:
            out[name] = list(arr)
        else:
            out[name] = [None if np.isnan(v) else float(v) for v in arr.tolist()]
    return out


def columns_from_json(data: Mapping[str, list[Any]], kinds: Mapping[str, str]) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for name, values in data.items():
        if kinds.get(name) == NUMERIC:
            out[name] = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
        else:
            out[name] = np.array(values, dtype=object)
    return out


def concat(parts: Sequence[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    names = list(parts[0]) if parts else []
    return {n: np.concatenate([p[n] for p in parts]) for n in names}
