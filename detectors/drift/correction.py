"""Multiple-testing corrections of per-feature p-values (one family per window)."""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

Correction = Literal["bonferroni", "bh"]
CORRECTIONS: tuple[str, ...] = ("bonferroni", "bh")


def bonferroni(p_values: npt.ArrayLike) -> npt.NDArray[np.float64]:
    p = np.asarray(p_values, dtype=np.float64)
    out: npt.NDArray[np.float64] = np.minimum(p * p.size, 1.0)
    return out


def benjamini_hochberg(p_values: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """BH step-up adjusted p-values, equal to ``scipy.stats.false_discovery_control(ps, method='bh')``."""
    p = np.asarray(p_values, dtype=np.float64)
    m = p.size
    if m == 0:
        return p.copy()
    order = np.argsort(p, kind="stable")
    scaled = p[order] * m / np.arange(1, m + 1)
    # adjusted p of rank i is the smallest scaled value at rank >= i
    stepped = np.minimum.accumulate(scaled[::-1])[::-1]
    out = np.empty(m, dtype=np.float64)
    out[order] = np.minimum(stepped, 1.0)
    return out


def adjust(p_values: npt.ArrayLike, method: str) -> npt.NDArray[np.float64]:
    if method == "bonferroni":
        return bonferroni(p_values)
    if method == "bh":
        return benjamini_hochberg(p_values)
    raise ValueError(f"unknown correction {method!r}; expected one of {CORRECTIONS}")
