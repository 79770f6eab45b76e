"""Jensen-Shannon distance (natural log, as ``scipy.spatial.distance.jensenshannon``'s default) over bins.

Computed on raw proportions, without smoothing (zero terms contribute nothing), on the same bins as PSI.
Bounded by sqrt(ln 2) ~ 0.833.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from detectors.drift.psi import proportions


def _kl_to(p: npt.NDArray[np.float64], m: npt.NDArray[np.float64]) -> float:
    nz = p > 0
    return float(np.sum(p[nz] * np.log(p[nz] / m[nz])))


def jensenshannon(ref_counts: npt.ArrayLike, win_counts: npt.ArrayLike) -> float:
    p = proportions(ref_counts)
    q = proportions(win_counts)
    m = (p + q) / 2.0
    divergence = (_kl_to(p, m) + _kl_to(q, m)) / 2.0
    return float(np.sqrt(max(divergence, 0.0)))
