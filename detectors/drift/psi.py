"""Population Stability Index over bins (numeric: coarse reference deciles; categorical: categories).

``PSI = sum((p_ref - p_win) * ln(p_ref / p_win))`` over proportions of non-missing values.

Empty bins are smoothed with Evidently's convention (``get_binned_data`` in
``evidently/legacy/calculations/stattests/utils.py``), applied to each side separately: a zero proportion
becomes 0.0001, or ``min(non-zero proportions) / 1e6`` when the smallest non-zero proportion is already at
or below 0.0001. Bins empty on both sides are dropped first: Evidently's bins are the values seen on either
side, and a bin smoothed differently on each side would otherwise add a spurious term. On the same bins the
value equals Evidently's ``psi`` stattest (tested).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

EPSILON = 0.0001


def proportions(counts: npt.ArrayLike) -> npt.NDArray[np.float64]:
    c = np.asarray(counts, dtype=np.float64)
    total = c.sum()
    if total <= 0:
        raise ValueError("proportions need at least one count")
    out: npt.NDArray[np.float64] = c / total
    return out


def smoothed(props: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Evidently's replacement of zero proportions (see module docstring)."""
    out = props.copy()
    zero = out == 0
    if zero.any():
        smallest = float(out[~zero].min())
        out[zero] = smallest / 10**6 if smallest <= EPSILON else EPSILON
    return out


def psi(ref_counts: npt.ArrayLike, win_counts: npt.ArrayLike) -> float:
    ref = np.asarray(ref_counts, dtype=np.float64)
    win = np.asarray(win_counts, dtype=np.float64)
    seen = (ref > 0) | (win > 0)
    p = smoothed(proportions(ref[seen]))
    q = smoothed(proportions(win[seen]))
    return float(np.sum((p - q) * np.log(p / q)))
