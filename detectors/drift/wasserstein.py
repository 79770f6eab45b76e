"""Normalised Wasserstein-1 distance on the profile's fine bins (Evidently's ``wasserstein_distance_norm``).

Evidently computes ``scipy.stats.wasserstein_distance(ref, cur) / max(np.std(ref), 0.001)`` on raw values.
A sketch keeps counts per fine bin, not values, so each fine bin stands for one point, its *position*:

* an inner bin ``[e_i, e_i+1)`` sits at its midpoint ``(e_i + e_i+1) / 2``;
* the open first bin ``(-inf, e_0)`` sits at the midpoint of the reference minimum and ``e_0`` (the edge
  itself when the minimum equals it), the open last bin ``[e_last, inf)`` at the midpoint of ``e_last`` and
  the reference maximum.

With the counts as weights, the distance is the area between the two step CDFs,
``sum_b |F_ref(b) - F_win(b)| * (x_b+1 - x_b)``, equal to ``scipy.stats.wasserstein_distance(u_values=x,
v_values=x, u_weights=ref_counts, v_weights=win_counts)`` (tested to 1e-12). It is normalised by the reference
standard deviation kept in the profile (population sd, ``np.std``, as Evidently; floored at 0.001).

Binning error against Evidently on raw values is measured in ``tests/detectors/test_drift_wasserstein.py``
and ``docs/drift.md``: every value of a bin is moved to the bin's position, which costs little where bins
are narrow (within ~0.03 of Evidently's value near its 0.1 threshold on normal, integer-valued and
exponential data). All window values beyond the reference's last edge sit at one point, midway to the
reference maximum (likewise below the first edge): a shift out of the reference range is under-measured for
light tails and over-measured for heavy right tails, whose last bin reaches a far maximum.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

NORM_FLOOR = 0.001  # Evidently's floor on the reference sd


def bin_positions(
    fine_edges: npt.ArrayLike, minimum: float | None, maximum: float | None
) -> npt.NDArray[np.float64]:
    """One position per fine bin (``len(fine_edges) + 1``), strictly increasing; see the module docstring."""
    edges = np.asarray(fine_edges, dtype=np.float64)
    if edges.size == 0:
        # one bin: every value at the same point, so the distance is 0 whatever the position
        return np.array([0.0 if minimum is None else float(minimum)])
    low = edges[0] if minimum is None else min(float(minimum), edges[0])
    high = edges[-1] if maximum is None else max(float(maximum), edges[-1])
    out: npt.NDArray[np.float64] = np.concatenate(
        [[(low + edges[0]) / 2.0], (edges[:-1] + edges[1:]) / 2.0, [(edges[-1] + high) / 2.0]]
    )
    return out


def wasserstein_binned(
    positions: npt.ArrayLike, ref_counts: npt.ArrayLike, win_counts: npt.ArrayLike
) -> float:
    """Wasserstein-1 distance between two weightings of the same increasing ``positions``."""
    x = np.asarray(positions, dtype=np.float64)
    ref = np.asarray(ref_counts, dtype=np.int64)
    win = np.asarray(win_counts, dtype=np.int64)
    if not x.shape == ref.shape == win.shape:
        raise ValueError("positions, ref_counts and win_counts need the same length")
    n, m = int(ref.sum()), int(win.sum())
    if n == 0 or m == 0:
        raise ValueError("Wasserstein needs at least one value on each side")
    # integer cumulative counts divided once, as in ks_statistic; the last entry is 1 - 1 = 0
    diff = np.cumsum(ref) / n - np.cumsum(win) / m
    return float(np.sum(np.abs(diff[:-1]) * np.diff(x)))


def wasserstein_norm(
    positions: npt.ArrayLike,
    ref_counts: npt.ArrayLike,
    win_counts: npt.ArrayLike,
    reference_std: float | None,
) -> float:
    """``wasserstein_binned / max(reference_std, 0.001)``, Evidently's normalisation."""
    norm = max(NORM_FLOOR if reference_std is None else float(reference_std), NORM_FLOOR)
    return wasserstein_binned(positions, ref_counts, win_counts) / norm
