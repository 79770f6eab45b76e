"""Two-sample chi-square test of homogeneity on a 2 x k table (reference counts over window counts).

Columns empty on both sides are dropped; the result equals
``scipy.stats.chi2_contingency(table, correction=False)``.

Evidently's ``chisquare`` stattest instead takes the reference proportions as the exact expected
distribution (a goodness-of-fit test). That ignores the reference's own sampling noise and over-alarms,
most visibly when the reference is not much larger than the window; the two-sample test accounts for both.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats


@dataclass(frozen=True)
class ChiSquareResult:
    statistic: float
    p_value: float
    dof: int


def chi2_two_sample(ref_counts: npt.ArrayLike, win_counts: npt.ArrayLike) -> ChiSquareResult:
    table = np.vstack([np.asarray(ref_counts, dtype=np.float64), np.asarray(win_counts, dtype=np.float64)])
    table = table[:, table.sum(axis=0) > 0]
    rows = table.sum(axis=1)
    if (rows <= 0).any():
        raise ValueError("chi-square needs at least one count on each side")
    dof = table.shape[1] - 1
    if dof == 0:
        return ChiSquareResult(statistic=0.0, p_value=1.0, dof=0)
    expected = np.outer(rows, table.sum(axis=0)) / table.sum()
    statistic = float(np.sum((table - expected) ** 2 / expected))
    return ChiSquareResult(statistic=statistic, p_value=float(stats.chi2.sf(statistic, dof)), dof=dof)
