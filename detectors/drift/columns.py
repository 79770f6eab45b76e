"""Reading the stream layer's columns: one numpy array per feature, all of the same length.

Numeric features are float arrays with NaN for missing; categorical features are object arrays of ``str``
or ``None``. Non-finite numbers (NaN, +-inf) count as missing: an infinity has no place among quantile bins.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from detectors.base import CATEGORICAL, NUMERIC, FeatureKind, InputError


def n_rows(columns: Mapping[str, npt.ArrayLike]) -> int:
    lengths = {name: len(np.asarray(col)) for name, col in columns.items()}
    if len(set(lengths.values())) > 1:
        raise InputError(f"columns differ in length: {lengths}")
    return next(iter(lengths.values()), 0)


def infer_kind(name: str, column: npt.ArrayLike) -> FeatureKind:
    dtype = np.asarray(column).dtype
    if dtype == np.bool_ or dtype.kind in "OUS":
        return CATEGORICAL
    if dtype.kind in "fiu":
        return NUMERIC
    raise InputError(f"feature {name!r}: cannot infer a kind from dtype {dtype}")


def finite_values(name: str, column: npt.ArrayLike) -> tuple[npt.NDArray[np.float64], int]:
    """The finite values of a numeric column and how many values were missing."""
    try:
        x = np.asarray(column, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"feature {name!r} is numeric but its column is not: {exc}") from None
    finite = np.isfinite(x)
    return x[finite], int(x.size - np.count_nonzero(finite))


def _categories(column: npt.ArrayLike) -> tuple[npt.NDArray[np.object_], npt.NDArray[np.bool_]]:
    """A categorical column as an object array, and its missing mask (None or NaN)."""
    arr = np.asarray(column)
    if arr.dtype == np.bool_:
        arr = np.where(arr, "true", "false").astype(object)
    elif arr.dtype.kind in "US":
        arr = arr.astype(str).astype(object)
    elif arr.dtype != object:
        arr = arr.astype(object)
    # a value unequal to itself is a float NaN, which pandas-style producers use for missing
    missing = (arr == None) | np.not_equal(arr, arr)  # elementwise on an object array
    return arr, missing


def _names(uniques: npt.NDArray[np.object_]) -> list[str]:
    return [u if isinstance(u, str) else str(u) for u in uniques.tolist()]


def category_counts(column: npt.ArrayLike) -> tuple[list[str], npt.NDArray[np.int64], int]:
    """Distinct categories (sorted), their counts, and how many values were missing (None or NaN)."""
    arr, missing = _categories(column)
    present = arr[~missing]
    if present.size == 0:
        return [], np.zeros(0, dtype=np.int64), int(arr.size)
    try:
        uniques, counts = np.unique(present, return_counts=True)
    except TypeError:  # mixed types do not sort; compare them as strings
        uniques, counts = np.unique(present.astype(str), return_counts=True)
    return _names(uniques), counts.astype(np.int64), int(np.count_nonzero(missing))


def category_codes(column: npt.ArrayLike) -> tuple[list[str], npt.NDArray[np.intp]]:
    """Distinct categories (sorted, as ``category_counts`` names them) and, per row, the index of its
    category in that list, -1 where the value is missing."""
    arr, missing = _categories(column)
    codes = np.full(arr.shape[0], -1, dtype=np.intp)
    present = arr[~missing]
    if present.size == 0:
        return [], codes
    try:
        uniques, inverse = np.unique(present, return_inverse=True)
    except TypeError:  # mixed types do not sort; compare them as strings
        uniques, inverse = np.unique(present.astype(str), return_inverse=True)
    codes[~missing] = inverse.ravel()
    return _names(uniques), codes
