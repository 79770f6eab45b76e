"""Hellinger distance over bins: ``sqrt(1 - sum(sqrt(p_ref * p_win)))``, in [0, 1].

Same formula as Evidently's categorical ``hellinger`` stattest, on the same bins as PSI.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from detectors.drift.psi import proportions


def hellinger(ref_counts: npt.ArrayLike, win_counts: npt.ArrayLike) -> float:
    p = proportions(ref_counts)
    q = proportions(win_counts)
    affinity = float(np.clip(np.sum(np.sqrt(p * q)), 0.0, 1.0))
    return float(np.sqrt(1.0 - affinity))
