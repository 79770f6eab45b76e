"""Per-feature drift of one window against a reference profile ("drift.features").

Each feature gets a test (KS on fine bins for numeric, two-sample chi-square for categorical), its p-value is
adjusted over all tested features of the window (Bonferroni by default), and it is flagged when the adjusted
p-value is below ``alpha`` AND its effect size is at least a floor (PSI by default; for numeric features the
normalised Wasserstein distance with ``numeric_effect="wasserstein"``). The test answers "is this more than
noise?", the floor answers "is it big enough to act on?": with large windows the test alone flags shifts too
small to matter, with small windows the floor alone flags noise.

Evaluation is vectorised
------------------------
Sliding windows evaluate at every step, so ``evaluate_drift`` handles all numeric features of a window at
once: the profile's per-feature arrays are stacked once into zero-padded ``(features, bins)`` matrices
(cached per profile object, see ``_stacks``), the window's counts are scattered into the same layout, and
KS statistics, coarse counts, PSI (with psi.py's Evidently smoothing), Jensen-Shannon, Hellinger, the
normalised Wasserstein distance and the optional chi-square test are a handful of numpy calls for all
features; the categorical features likewise. Every number equals what the per-feature functions
(``ks_binned``, ``psi``, ``jensenshannon``, ``hellinger``, ``chi2_two_sample``, ``wasserstein_norm``) give
on that feature's bins, up to the order of floating-point additions (tested to 1e-12 in
``tests/detectors/test_drift_fast.py``). ``evaluate_drift_many`` stacks the windows that close in one batch
(a sliding window closes ~10) the same way, one block of rows per window, so the numpy calls run once for
all of them; each window's result is bit for bit what ``evaluate_drift`` gives it alone. The worker calls
``judge_drift_many``: the same pass, but each window's per-feature result objects are built only when its
``DriftVerdict.result()`` is asked for (a window that alerts); its verdict and the row's per-feature columns
come straight from the batch's lists.

Which KS p-values are exact
---------------------------
scipy's ``kstwo.sf`` (what ``ks_2samp(method='asymp')`` returns) costs 0.2-70 ms per feature, more than
everything else together. A numeric feature can only be flagged when its effect clears the floor, so:

* features whose effect is at or above the floor (the candidates) get the exact ``kstwo.sf`` value: their
  verdict and reported p-value are exactly scipy's;
* the others get ``ks_pvalue_asymptotic`` (ks.py: Kolmogorov's limit at a corrected argument, within 3 % of
  the exact value for an effective sample size ``n*m/(n+m)`` of 50 or more; below 50 the exact value is
  used); ``extra["p_method"]`` says which. Under Bonferroni a feature's adjusted p-value depends on its own
  p-value only, so no verdict can differ from the all-exact computation.
* Under Benjamini-Hochberg every p-value moves the cut-off: a feature is flagged when its p-value is below
  ``alpha * R / k`` for the largest ``R`` with ``R`` p-values below ``alpha * R / k``, and a non-candidate
  counts towards ``R`` through which thresholds ``alpha * r / k`` its p-value is below. An asymptotic value
  further than ``BH_EXACT_BAND`` (1.25, against a measured error of 3 %) outside ``[alpha / k, alpha]`` is
  below all thresholds or above all of them whatever its exact value, so only non-candidates inside that
  band get the exact value too. Verdicts are then identical to the all-exact computation (tested on random
  quiet and drifted windows, with many sub-floor shifts whose p-values fall in the band); without the band
  they can differ (a constructed case is in the tests). The adjusted p-values of candidates can still carry
  the asymptotic error (<= 3 %) of other features' p-values; their verdicts cannot.

Choosing alpha (0.005)
----------------------
Bonferroni bounds the family-wise error: with ``alpha`` = 0.05 a window with no drift alarms with probability up
to 5 %, and the floors only remove part of that (measured: ~6 alarms per 1,000 windows of 1,000 rows with 20
numeric + 3 categorical features, all on categorical features, whose PSI noise at 1,000 rows sits above any
useful categorical floor). The goal is <= 5 per 1,000, so the family-wise level itself is 0.005. Power does not
suffer where it matters: at 5,000 rows a 0.25-sd shift has a KS p-value near 1e-20 and a 5-point category
move near 1e-9, far below 0.005 / 23.

Choosing the floors
-------------------
Under no drift, PSI on k bins is about ``chi2(k-1) / n_eff`` with ``n_eff = n*m / (n+m)`` (n window values,
m reference values): 10 coarse bins at n = 1,000 against m = 20,000 give a mean of ~0.009.

* Numeric (0.03): a 0.5-sd mean shift of a normal feature is PSI ~0.22 on deciles, a 0.25-sd shift ~0.06, a
  0.2-sd shift ~0.04. A floor of 0.05 sits too close to the 0.25-sd shift that must be caught in >= 95 % of
  5k-row windows; 0.03 keeps it clear and still mutes shifts below ~0.15 sd, which the KS test alone would
  flag at large windows. False alarms are left to the test (alpha above).
* Numeric, ``numeric_effect="wasserstein"`` (``wasserstein_floor`` 0.1): Evidently's default threshold for
  its ``wasserstein_distance_norm``, which the binned distance follows (wasserstein.py). A mean shift of
  ``s`` sd moves it by about ``s``, so 0.1 mutes shifts below ~0.1 sd. Its noise without drift is ~0.04 at
  1,000 rows (up to ~0.12 measured) and ~0.02 at 10,000, so on small windows the floor alone would alarm
  (Evidently's preset: ~100 per 1,000 windows of 1,000 rows); the test keeps that in check here.
* Categorical (0.005): moving 5 percentage points of mass between categories (total variation 0.05) gives
  PSI >= 4 * 0.05**2 = 0.01 for any category mix (PSI is Jeffreys' divergence, and Pinsker bounds each KL
  by 2 * TV**2); the worst case is between two large categories (50/50 -> 55/45: PSI 0.0100). At 5,000 rows
  against 5,000 (n_eff = 2,500) the observed PSI of that worst case has sd ~0.004, so the floor sits at half
  of 0.01. How often that worst case is caught depends on the reference size (a larger reference lowers
  the noise): the measured rate is in docs/drift.md's benchmark table ("False alarms and power"), at the
  worker's default reference size. Milder cases are caught in 99%+ of simulated 5k-row windows (20% -> 25%
  of a 3-way mix, a 40/30 -> 35/35 move), and a floor of 0.01 would catch only about half of the worst
  cases. An identical distribution must reach chi2 >= 12.5 on k-1 degrees of freedom to clear the floor,
  and the adjusted test (p < alpha / 23 per feature) limits it further (measured 0.0-0.2% per categorical
  feature at 5k rows even at alpha = 0.05).
* At 1,000-row windows no categorical floor below ~0.015 binds, so the false-alarm rate there is set by the
  adjusted test: about ``alpha * categorical features / all features`` per window: 0.65% for 3 of 23 at
  alpha = 0.05 (hence alpha = 0.005 by default: ~0.07%).
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import special

from detectors.base import (
    CATEGORICAL,
    NUMERIC,
    ConfigError,
    DriftResult,
    FeatureScore,
    Status,
    fast_constructor,
    finite_number,
    int_at_least,
)
from detectors.drift.correction import CORRECTIONS, adjust
from detectors.drift.ks import ASYMPTOTIC_MIN_N, effective_n, ks_pvalue, ks_pvalue_asymptotic
from detectors.drift.profile import CategoricalProfile, NumericProfile, ReferenceProfile
from detectors.drift.psi import EPSILON
from detectors.drift.sketch import StackedSketches, WindowSketch
from detectors.drift.sketch import _layout as sketch_layout
from detectors.drift.wasserstein import NORM_FLOOR, bin_positions

DETECTOR_NAME = "drift.features"
NUMERIC_TESTS = ("ks", "chi2")
CATEGORICAL_TESTS = ("chi2",)
NUMERIC_EFFECTS = ("psi", "wasserstein")
# Under BH, a non-candidate's KS p-value is computed exactly when its asymptotic value is within this factor
# of a BH threshold range [alpha / k, alpha] (module docstring; the asymptotic error is <= 3 %, ks.py).
BH_EXACT_BAND = 1.25


@dataclass(frozen=True)
class FeatureDriftConfig:
    alpha: float = 0.005
    correction: str = "bonferroni"
    numeric_test: str = "ks"  # "chi2" tests the coarse bins instead
    categorical_test: str = "chi2"
    psi_floor_numeric: float = 0.03
    psi_floor_categorical: float = 0.005
    min_window_rows: int = 100
    min_reference_rows: int = 100
    dataset_drift_share: float = 0.0
    numeric_effect: str = "psi"  # "wasserstein": the normalised Wasserstein distance gates numeric features
    wasserstein_floor: float = 0.1  # Evidently's default threshold for wasserstein_distance_norm

    def __post_init__(self) -> None:
        for name in ("alpha", "psi_floor_numeric", "psi_floor_categorical", "dataset_drift_share",
                     "wasserstein_floor"):  # fmt: skip
            finite_number(name, getattr(self, name))
        if not 0.0 < self.alpha < 1.0:
            raise ConfigError(f"alpha must be in (0, 1), got {self.alpha!r}")
        if self.psi_floor_numeric < 0 or self.psi_floor_categorical < 0:
            raise ConfigError("psi_floor_numeric and psi_floor_categorical must be >= 0")
        if self.wasserstein_floor < 0:
            raise ConfigError(f"wasserstein_floor must be >= 0, got {self.wasserstein_floor!r}")
        if not 0.0 <= self.dataset_drift_share < 1.0:
            raise ConfigError(f"dataset_drift_share must be in [0, 1), got {self.dataset_drift_share!r}")
        if self.correction not in CORRECTIONS:
            raise ConfigError(f"correction must be one of {CORRECTIONS}, got {self.correction!r}")
        if self.numeric_test not in NUMERIC_TESTS:
            raise ConfigError(f"numeric_test must be one of {NUMERIC_TESTS}, got {self.numeric_test!r}")
        if self.categorical_test not in CATEGORICAL_TESTS:
            raise ConfigError(
                f"categorical_test must be one of {CATEGORICAL_TESTS}, got {self.categorical_test!r}"
            )
        if self.numeric_effect not in NUMERIC_EFFECTS:
            raise ConfigError(f"numeric_effect must be one of {NUMERIC_EFFECTS}, got {self.numeric_effect!r}")
        for name in ("min_window_rows", "min_reference_rows"):
            int_at_least(name, getattr(self, name), 1)

    @property
    def numeric_effect_name(self) -> str:
        """``FeatureScore.effect`` of numeric features: ``psi`` or ``wasserstein_norm``."""
        return "psi" if self.numeric_effect == "psi" else "wasserstein_norm"

    @property
    def numeric_floor(self) -> float:
        return self.psi_floor_numeric if self.numeric_effect == "psi" else self.wasserstein_floor


@functools.lru_cache(maxsize=64)
def _config_dict(config: FeatureDriftConfig) -> dict[str, Any]:
    return asdict(config)


# -- per-profile arrays, stacked once -------------------------------------------------------------------


def _padded(rows: Sequence[npt.NDArray[Any]], width: int, fill: Any = 0, dtype: Any = np.int64) -> Any:
    out = np.full((len(rows), width), fill, dtype=dtype)
    for i, row in enumerate(rows):
        out[i, : row.size] = row
    return out


def _scatter(sizes: Sequence[int], width: int) -> npt.NDArray[np.intp]:
    """Flat positions in a ``(len(sizes), width)`` array of each row's first ``size`` entries, row after row."""
    if not sizes:
        return np.zeros(0, dtype=np.intp)
    return np.concatenate([i * width + np.arange(size) for i, size in enumerate(sizes)]).astype(np.intp)


@dataclass(frozen=True, eq=False)
class _NumericStack:
    """The numeric features of a profile as zero-padded ``(features, max fine bins)`` arrays.

    Padding sits after the last fine bin: the cumulative counts there equal the totals, so CDF differences,
    KS and Wasserstein terms are 0, and coarse bins past a feature's last one are empty on both sides.
    """

    names: tuple[str, ...]
    profiles: tuple[NumericProfile, ...]
    width: int  # max fine bins
    scatter: npt.NDArray[np.intp]  # where the concatenated window counts go in the flat padded array
    empty: tuple[npt.NDArray[np.int64], ...]  # zero counts per feature (stands in for untested windows)
    n: npt.NDArray[np.int64]
    ref_cdf: npt.NDArray[np.float64]  # cumsum(ref_counts) / n, as ks_statistic computes it
    coarse_end: npt.NDArray[np.intp]  # per coarse bin, its last fine bin (padding: the last column)
    coarse_flat: npt.NDArray[np.intp]  # the same as flat positions in the (features, width) array
    ref_coarse: npt.NDArray[np.float64]
    position_steps: npt.NDArray[np.float64]  # np.diff of the Wasserstein bin positions (padding: 0)
    norm: npt.NDArray[np.float64]  # max(reference sd, 0.001)
    # the arrays above repeated for many windows (_selection), keyed by (id of the array, windows)
    tiles: dict[tuple[int, int], Any] = field(default_factory=dict, repr=False)

    @classmethod
    def build(cls, features: dict[str, NumericProfile]) -> _NumericStack:
        profiles = list(features.values())
        sizes = [fp.n_bins for fp in profiles]
        width = max(sizes, default=1)
        ref = _padded([fp.ref_counts for fp in profiles], width)
        n = np.array([fp.n for fp in profiles], dtype=np.int64)
        with np.errstate(divide="ignore", invalid="ignore"):  # n = 0: never tested
            ref_cdf = np.cumsum(ref, axis=1) / n[:, None]
        n_coarse = [fp.n_coarse for fp in profiles]
        c_width = max(n_coarse, default=1)
        coarse_end = np.full((len(profiles), c_width), width - 1, dtype=np.intp)
        for i, fp in enumerate(profiles):
            # last fine bin of each coarse bin: where the (non-decreasing) coarse label changes, and the end
            coarse_end[i, : fp.n_coarse] = np.flatnonzero(np.diff(fp.coarse_of_fine, append=fp.n_coarse))
        ref_coarse = np.diff(
            np.take_along_axis(np.cumsum(ref, axis=1), coarse_end, axis=1), axis=1, prepend=0
        )
        positions = [bin_positions(fp.fine_edges, fp.minimum, fp.maximum) for fp in profiles]
        steps = _padded([np.diff(x) for x in positions], max(width - 1, 0), 0.0, np.float64)
        norm = np.array([max(NORM_FLOOR if fp.std is None else fp.std, NORM_FLOOR) for fp in profiles])
        return cls(
            names=tuple(features),
            profiles=tuple(profiles),
            width=width,
            scatter=_scatter(sizes, width),
            empty=tuple(np.zeros(size, dtype=np.int64) for size in sizes),
            n=n,
            ref_cdf=ref_cdf,
            coarse_end=coarse_end,
            coarse_flat=(coarse_end + (np.arange(len(profiles)) * width)[:, None]).astype(np.intp),
            ref_coarse=ref_coarse.astype(np.float64),
            position_steps=steps,
            norm=norm.astype(np.float64),
        )


@dataclass(frozen=True, eq=False)
class _CategoricalStack:
    """The categorical features as ``(features, max buckets + 1)`` arrays; the column after a feature's
    last reference bucket holds its unseen categories (empty in the reference)."""

    names: tuple[str, ...]
    width: int
    scatter: npt.NDArray[np.intp]
    unseen_at: npt.NDArray[np.intp]  # flat position of each feature's unseen column
    empty: tuple[npt.NDArray[np.int64], ...]
    ref: npt.NDArray[np.float64]
    tiles: dict[tuple[int, int], Any] = field(default_factory=dict, repr=False)  # as _NumericStack's

    @classmethod
    def build(cls, features: dict[str, CategoricalProfile]) -> _CategoricalStack:
        profiles = list(features.values())
        sizes = [fp.n_buckets for fp in profiles]
        width = max(sizes, default=0) + 1
        return cls(
            names=tuple(features),
            width=width,
            scatter=_scatter(sizes, width),
            unseen_at=(np.arange(len(sizes)) * width + np.array(sizes, dtype=np.intp)).astype(np.intp),
            empty=tuple(np.zeros(size, dtype=np.int64) for size in sizes),
            ref=_padded([fp.bucket_counts() for fp in profiles], width).astype(np.float64),
        )


@dataclass(frozen=True, eq=False)
class _Stacks:
    numeric: _NumericStack
    categorical: _CategoricalStack
    # per feature, in profile order: name, kind, reference count, its row in its kind's stack (and column in
    # StackedSketches), reference missing rate
    layout: tuple[tuple[str, str, int, int, float | None], ...]


# Profiles are immutable (frozen dataclasses over read-only arrays), so their stacks are built once and
# live as long as the profile does; the profile object itself, its to_dict and fingerprint are untouched.
_STACKS: weakref.WeakKeyDictionary[ReferenceProfile, _Stacks] = weakref.WeakKeyDictionary()


def _stacks(profile: ReferenceProfile) -> _Stacks:
    stacks = _STACKS.get(profile)
    if stacks is None:
        # the packed sketches' layout: a feature's row here is its column in StackedSketches
        packed = sketch_layout(profile)
        feats = profile.features
        numeric = {n: fp for n in packed.numeric if isinstance(fp := feats[n], NumericProfile)}
        categorical = {n: fp for n in packed.categorical if isinstance(fp := feats[n], CategoricalProfile)}
        layout = tuple(
            (name, NUMERIC if is_numeric else CATEGORICAL, feats[name].n, row,
             _rate(feats[name].missing, feats[name].n + feats[name].missing))
            for name, is_numeric, row in packed.order
        )  # fmt: skip
        stacks = _Stacks(_NumericStack.build(numeric), _CategoricalStack.build(categorical), layout)
        _STACKS[profile] = stacks
    return stacks


# -- the binned statistics of many features at once -----------------------------------------------------
# Each row is one feature; rows are padded with bins empty on both sides. Every function gives, row by row,
# what the scalar function named in its docstring gives on that feature's bins (tests/detectors/
# test_drift_fast.py checks it to 1e-12; only the order of the additions differs).


def _smoothed(props: npt.NDArray[np.float64], seen: npt.NDArray[np.bool_]) -> npt.NDArray[np.float64]:
    """``psi.smoothed`` per row over the bins seen on either side; 1.0 on the others (their PSI term is 0)."""
    smallest = np.where(props > 0, props, np.inf).min(axis=1, keepdims=True)
    fill = np.where(smallest <= EPSILON, smallest / 10**6, EPSILON)
    out: npt.NDArray[np.float64] = np.where(props > 0, props, np.where(seen, fill, 1.0))
    return out


def _kl_to(p: npt.NDArray[np.float64], mid: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """``jensenshannon._kl_to`` per row: ``sum(p * log(p / mid))`` over ``p > 0``."""
    ratio = np.divide(p, mid, out=np.ones_like(p), where=p > 0)
    out: npt.NDArray[np.float64] = (p * np.log(ratio)).sum(axis=1)
    return out


def _binned_effects(
    ref: npt.NDArray[np.float64], win: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """``psi``, ``jensenshannon`` and ``hellinger`` per row (every row has counts on both sides)."""
    p = ref / ref.sum(axis=1, keepdims=True)
    q = win / win.sum(axis=1, keepdims=True)
    seen = (ref > 0) | (win > 0)
    ps, qs = _smoothed(p, seen), _smoothed(q, seen)
    psi = ((ps - qs) * np.log(ps / qs)).sum(axis=1)
    mid = (p + q) / 2.0
    js = np.sqrt(np.maximum((_kl_to(p, mid) + _kl_to(q, mid)) / 2.0, 0.0))
    hel = np.sqrt(1.0 - np.clip(np.sqrt(p * q).sum(axis=1), 0.0, 1.0))
    return psi, js, hel


def _chi2(
    ref: npt.NDArray[np.float64], win: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """``chi2_two_sample`` per row: statistic, degrees of freedom, p-value (``chi2.sf`` is ``chdtrc``)."""
    n, m = ref.sum(axis=1, keepdims=True), win.sum(axis=1, keepdims=True)
    column = ref + win
    total = n + m
    kept = column > 0
    e_ref, e_win = n * column / total, m * column / total
    terms = np.divide((ref - e_ref) ** 2, e_ref, out=np.zeros_like(ref), where=kept)
    terms += np.divide((win - e_win) ** 2, e_win, out=np.zeros_like(win), where=kept)
    dof = kept.sum(axis=1) - 1
    statistic = np.where(dof > 0, terms.sum(axis=1), 0.0)
    p_value = np.where(dof > 0, special.chdtrc(np.maximum(dof, 1), statistic), 1.0)
    return statistic, dof, p_value


def _bh_needs_exact(
    p_asymptotic: npt.NDArray[np.float64], alpha: float, k: int | npt.NDArray[np.int64]
) -> npt.NDArray[np.bool_]:
    """Features whose exact p-value could sit on the other side of a BH threshold ``alpha * r / k``.

    BH's verdicts depend on a non-candidate's p-value only through which thresholds it is below. The
    asymptotic value is within 3 % of the exact one (never above it for p >= 1e-6; ks.py), so outside
    ``[alpha / k / band, alpha * band]`` it is below every threshold or above all of them either way. ``k``
    may be given per p-value (each with its window's family size).
    """
    upper = alpha * BH_EXACT_BAND if alpha >= 1e-5 else np.inf  # past 1e-6 the bound is one-sided
    out: npt.NDArray[np.bool_] = (p_asymptotic >= alpha / k / BH_EXACT_BAND) & (p_asymptotic <= upper)
    return out


# One tested feature before correction: test, statistic, p-value, effect, effect value, floor, extra.
_Tested = tuple[str, float, float, str, float, float, dict[str, Any]]
Matrix = npt.NDArray[np.float64]


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass
class _NumericArrays:
    """The fine-bin statistics of the tested numeric features, one entry per feature of ``rows``."""

    mean: list[float | None]  # the window's mean and sd per tested feature, as NumericWindow.mean / .std
    std: list[float | None]
    d: Matrix
    wasserstein: Matrix
    n: npt.NDArray[np.int64]
    m: npt.NDArray[np.int64]
    ref_coarse: Matrix
    win_coarse: Matrix
    ks_asymptotic: Matrix | None = None  # ks_pvalue_asymptotic(d, n, m), with the KS test
    small: npt.NDArray[np.bool_] | None = None  # effective sample size below ASYMPTOTIC_MIN_N, likewise


def _selection(
    rows_list: Sequence[dict[str, int]], size: int, tiles: dict[tuple[int, int], Any]
) -> tuple[npt.NDArray[np.intp] | None, Any]:
    """The tested rows of many windows stacked ``(windows * size, ...)``: their global rows (None when every
    row of every window is tested) and a function taking those rows of a per-feature ``(size, ...)`` array.

    When every row is tested (the usual case) that is the array repeated once per window: the repeats of a
    stack's arrays are kept in its ``tiles`` (read-only; keyed by the array and the number of windows, which is
    the same from batch to batch), as ``np.tile`` costs a few microseconds per call whatever the size."""
    if all(len(rows) == size for rows in rows_list):
        count = len(rows_list)
        if count == 1:
            return None, lambda arr: arr

        def tiled(arr: npt.NDArray[Any]) -> npt.NDArray[Any]:
            out = tiles.get((id(arr), count))
            if out is None:
                out = np.tile(arr, (count,) + (1,) * (arr.ndim - 1))
                out.flags.writeable = False
                if len(tiles) > 64:  # a few window counts per stack in practice; never unbounded
                    tiles.clear()
                tiles[(id(arr), count)] = out
            return out

        return None, tiled
    local = np.concatenate([np.fromiter(rows.values(), dtype=np.intp, count=len(rows)) for rows in rows_list])
    offsets = np.repeat(np.arange(len(rows_list), dtype=np.intp) * size, [len(rows) for rows in rows_list])
    return local + offsets, lambda arr: arr[local]


def _scatter_many(scatter: npt.NDArray[np.intp], count: int, block: int) -> npt.NDArray[np.intp]:
    """``scatter`` repeated for ``count`` windows, each in its own block of ``block`` flat positions."""
    if count == 1:
        return scatter
    return (scatter[None, :] + (np.arange(count, dtype=np.intp) * block)[:, None]).reshape(-1)


def _numeric_arrays(
    stack: _NumericStack, st: StackedSketches, rows_list: Sequence[dict[str, int]]
) -> _NumericArrays:
    """The tested numeric features of every window, their rows one after the other (window by window)."""
    size, width, count = len(stack.names), stack.width, len(rows_list)
    flat = np.zeros(count * size * width, dtype=np.int64)
    flat[_scatter_many(stack.scatter, count, size * width)] = st.bins.ravel()
    counts = flat.reshape(count * size, width)
    sel, take = _selection(rows_list, size, stack.tiles)
    cum = np.cumsum(counts if sel is None else counts[sel], axis=1)
    m = cum[:, -1]
    # as ks_statistic: integer cumulative counts divided once, reference minus window
    absdiff = np.abs(take(stack.ref_cdf) - cum / m[:, None])
    wasserstein = (absdiff[:, :-1] * take(stack.position_steps)).sum(axis=1) / take(stack.norm)
    # coarse counts: differences of the cumulative counts at each coarse bin's last fine bin
    ends = (
        stack.coarse_flat if sel is None and count == 1
        else take(stack.coarse_end) + (np.arange(cum.shape[0]) * width)[:, None]
    )  # fmt: skip
    at_ends = cum.reshape(-1)[ends]
    win_coarse = at_ends.astype(np.float64)
    win_coarse[:, 1:] -= at_ends[:, :-1]
    # NumericWindow.mean / .std, elementwise: the same float64 operations, so the same bits
    n_values, total, total_sq = st.count.ravel(), st.total.ravel(), st.total_sq.ravel()
    if sel is not None:
        n_values, total, total_sq = n_values[sel], total[sel], total_sq[sel]
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = total / n_values
        var = total_sq / n_values - mean * mean
        std = np.sqrt(np.where(var < 0.0, 0.0, var))
    has = (n_values > 0).tolist()
    return _NumericArrays(
        [x if h else None for x, h in zip(mean.tolist(), has, strict=True)],
        [x if h else None for x, h in zip(std.tolist(), has, strict=True)],
        absdiff.max(axis=1), wasserstein, take(stack.n), m, take(stack.ref_coarse), win_coarse,
    )  # fmt: skip


# a tested categorical feature's unseen categories: their count, the non-missing values, the tracked names
_Unseen = tuple[int, int, Mapping[str, int]]


def _categorical_arrays(
    stack: _CategoricalStack, st: StackedSketches, rows_list: Sequence[dict[str, int]]
) -> tuple[list[_Unseen], Matrix, Matrix]:
    """Reference and window counts per bucket; new categories share one extra bucket, empty in the reference.
    The tested features of every window, their rows one after the other."""
    size, width, count = len(stack.names), stack.width, len(rows_list)
    flat = np.zeros(count * size * width, dtype=np.int64)
    flat[_scatter_many(stack.scatter, count, size * width)] = st.buckets.ravel()
    flat[_scatter_many(stack.unseen_at, count, size * width)] = st.unseen_count.ravel()
    counts = flat.reshape(count * size, width)
    unseen_count, cat_count = st.unseen_count.tolist(), st.cat_count.tolist()
    unseen = [
        (unseen_count[j][i], cat_count[j][i], st.unseen[j][i])
        for j, rows in enumerate(rows_list)
        for i in rows.values()
    ]
    sel, take = _selection(rows_list, size, stack.tiles)
    if sel is None:
        return unseen, take(stack.ref), counts.astype(np.float64)
    return unseen, take(stack.ref), counts[sel].astype(np.float64)


def _stacked(blocks: list[Matrix], width: int) -> Matrix:
    """Rows of all blocks, zero-padded on the right to ``width``."""
    out: Matrix = np.zeros((sum(b.shape[0] for b in blocks), width))
    start = 0
    for b in blocks:
        out[start : start + b.shape[0], : b.shape[1]] = b
        start += b.shape[0]
    return out


def _effects_and_chi2(pairs: list[tuple[Matrix, Matrix]]) -> list[tuple[npt.NDArray[Any], ...]]:
    """``_binned_effects`` and ``_chi2`` of each (reference, window) block: in one call over the stacked
    rows when padding them to a common width stays cheap (the usual case: ~10 coarse bins and a few
    categories), else block by block. Returns psi, js, hellinger, chi2 statistic, dof, p-value per block."""
    width = max(r.shape[1] for r, _ in pairs)
    rows = sum(r.shape[0] for r, _ in pairs)
    if len(pairs) == 1 or rows * width > 4 * sum(r.size for r, _ in pairs) + 4096:
        return [_binned_effects(r, w) + _chi2(r, w) for r, w in pairs]
    ref, win = _stacked([r for r, _ in pairs], width), _stacked([w for _, w in pairs], width)
    merged = _binned_effects(ref, win) + _chi2(ref, win)
    out, start = [], 0
    for r, _ in pairs:
        out.append(tuple(a[start : start + r.shape[0]] for a in merged))
        start += r.shape[0]
    return out


@dataclass(frozen=True, eq=False)
class _NumericTests:
    """The numeric features' tests of every window of a batch, their rows one after the other (window by
    window), as lists: what a verdict reads (statistic, p-value, effect) and what a full result adds."""

    test: str
    statistic: list[float]
    p_value: list[float]
    methods: list[str]
    effect_value: list[float]  # PSI or the normalised Wasserstein distance, as the config gates on
    psi: list[float]
    js: list[float]
    hellinger: list[float]
    wasserstein: list[float]
    mean: list[float | None]
    std: list[float | None]
    dof: list[int] | None  # with the chi-square test


def _numeric_tests(
    arrays: _NumericArrays,
    effects: tuple[Matrix, ...],
    rows_list: Sequence[dict[str, int]],
    ks: Sequence[int],
    config: FeatureDriftConfig,
) -> _NumericTests:
    """The numeric features' tests of every window (``rows_list``: each window's tested features, whose rows
    follow one another in ``arrays``), with ``ks[w]`` features tested in window ``w`` (its correction's
    family). Every decision is elementwise, so taking all windows at once gives each the same values."""
    psi, js, hel, chi_statistic, chi_dof, chi_p = effects
    d, n, m, wasserstein = arrays.d, arrays.n, arrays.m, arrays.wasserstein
    effect_values = psi if config.numeric_effect == "psi" else wasserstein
    size = len(d)
    dof: list[int] | None = None
    if config.numeric_test == "chi2":
        statistic, p_value = chi_statistic, chi_p
        methods = ["exact"] * size
        dof = chi_dof.tolist()
    else:
        # the asymptotic p-values and sample sizes of all windows come computed (elementwise: the same bits)
        assert arrays.ks_asymptotic is not None and arrays.small is not None
        statistic, p_value = d, arrays.ks_asymptotic.copy()
        # exact where the verdict can depend on it: candidates (effect at or above the floor), small
        # samples (the asymptotic value is not measured there) and, under BH, p-values near its thresholds
        exact = (effect_values >= config.numeric_floor) | arrays.small
        if config.correction == "bh":  # each row with its window's family size
            k_rows = np.repeat(np.asarray(ks, dtype=np.int64), [len(rows) for rows in rows_list])
            exact |= _bh_needs_exact(p_value, config.alpha, k_rows)
        for i in np.flatnonzero(exact).tolist():
            p_value[i] = ks_pvalue(float(d[i]), int(n[i]), int(m[i]))
        methods = ["exact" if e else "asymptotic" for e in exact.tolist()]
    psi_list, wd_list = psi.tolist(), wasserstein.tolist()
    return _NumericTests(
        config.numeric_test, statistic.tolist(), p_value.tolist(), methods,
        psi_list if config.numeric_effect == "psi" else wd_list, psi_list, js.tolist(), hel.tolist(), wd_list,
        arrays.mean, arrays.std, dof,
    )  # fmt: skip


def _numeric_found(
    t: _NumericTests, stack: _NumericStack, rows: dict[str, int], at: int, config: FeatureDriftConfig
) -> dict[str, _Tested]:
    """One window's numeric tests with their extras, its features at ``at`` onwards in ``t``: built only
    for a full result (a window that alerts, or ``evaluate_drift``)."""
    effect, floor = config.numeric_effect_name, config.numeric_floor
    by_psi = effect == "psi"
    test, profiles, dof = t.test, stack.profiles, t.dof
    mine: dict[str, _Tested] = {}
    for i, (name, row) in enumerate(rows.items(), start=at):
        fp = profiles[row]
        extra: dict[str, Any] = {"reference_missing_rate": None}
        if dof is not None:
            extra["dof"] = dof[i]
        extra["js"] = t.js[i]
        extra["hellinger"] = t.hellinger[i]
        extra["wasserstein_norm"] = wd_i = t.wasserstein[i]
        extra["p_method"] = t.methods[i]
        extra["reference_mean"] = fp.mean
        extra["reference_std"] = fp.std
        extra["window_mean"] = t.mean[i]
        extra["window_std"] = t.std[i]
        if by_psi:
            mine[name] = (test, t.statistic[i], t.p_value[i], effect, t.psi[i], floor, extra)
        else:
            extra["psi"] = t.psi[i]
            mine[name] = (test, t.statistic[i], t.p_value[i], effect, wd_i, floor, extra)
    return mine


@dataclass(frozen=True, eq=False)
class _CategoricalTests:
    """The categorical features' tests of every window of a batch, as ``_NumericTests``."""

    unseen: list[_Unseen]
    statistic: list[float]
    p_value: list[float]
    dof: list[int]
    psi: list[float]
    js: list[float]
    hellinger: list[float]
    test: str = "chi2"

    @property
    def effect_value(self) -> list[float]:  # categorical features are gated on PSI
        return self.psi


def _categorical_tests(unseen: list[_Unseen], effects: tuple[Matrix, ...]) -> _CategoricalTests:
    psi, js, hel, statistic, dof, p_value = effects
    return _CategoricalTests(
        unseen, statistic.tolist(), p_value.tolist(), dof.tolist(), psi.tolist(), js.tolist(), hel.tolist()
    )


def _categorical_found(
    t: _CategoricalTests, rows: dict[str, int], at: int, floor: float
) -> dict[str, _Tested]:
    """One window's categorical tests with their extras, as ``_numeric_found``."""
    mine: dict[str, _Tested] = {}
    for i, name in enumerate(rows, start=at):
        unseen_count, count, names = t.unseen[i]
        extra: dict[str, Any] = {
            "reference_missing_rate": None,  # _result fills it in
            "dof": t.dof[i],
            "js": t.js[i],
            "hellinger": t.hellinger[i],
            "unseen_count": unseen_count,
            "unseen_share": _rate(unseen_count, count),
            "unseen_categories": dict(sorted(names.items(), key=lambda kv: (-kv[1], kv[0]))),
        }
        mine[name] = ("chi2", t.statistic[i], t.p_value[i], "psi", t.psi[i], floor, extra)
    return mine


# one FeatureScore per feature and window (a sliding window judges one every step): built field by field
_new_score = fast_constructor(FeatureScore)
_new_result = fast_constructor(DriftResult)


def evaluate_drift(
    profile: ReferenceProfile, sketch: WindowSketch, config: FeatureDriftConfig
) -> DriftResult:
    return evaluate_drift_many(profile, [sketch], config)[0]


def evaluate_drift_many(
    profile: ReferenceProfile, sketches: Sequence[WindowSketch], config: FeatureDriftConfig
) -> list[DriftResult]:
    """``evaluate_drift`` of each window, the binned statistics of all of them in one pass: a sliding window
    closes ~10 windows per batch of events, and one pass over their stacked rows costs little more than one
    window's. Each result equals ``evaluate_drift`` of that window alone, bit for bit (every statistic is
    computed row by row; tests/detectors/test_drift_fast.py)."""
    return [verdict.result() for verdict in judge_drift_many(profile, sketches, config)]


class DriftVerdict:
    """One window's drift verdict without its per-feature result objects, as the worker judges every window:
    the status, the share and names of the drifted features, and ``summary``, the per-feature numbers as
    columns (what a window row stores). ``result()`` builds the full ``DriftResult`` (every effect size,
    moments, unseen categories) on first call, equal to ``evaluate_drift``'s; the worker asks for it only
    for a window that alerts, whose finding keeps it. A sliding window judges one window per step, and the
    ~25 result objects of a window cost more than its verdict."""

    __slots__ = ("_build", "_result", "drifted_features", "n_features", "n_window", "share_drifted", "status",
                 "summary")

    def __init__(self, status: Status, share_drifted: float | None, drifted_features: tuple[str, ...],
                 n_features: int, n_window: int, summary: dict[str, Any],
                 build: Callable[[], DriftResult]) -> None:
        self.status, self.share_drifted, self.drifted_features = status, share_drifted, drifted_features
        self.n_features, self.n_window, self.summary = n_features, n_window, summary
        self._build: Callable[[], DriftResult] | None = build
        self._result: DriftResult | None = None

    def result(self) -> DriftResult:
        if self._result is None:
            assert self._build is not None
            self._result, self._build = self._build(), None  # the batch's lists are let go with the builder
        return self._result


def judge_drift_many(
    profile: ReferenceProfile, sketches: Sequence[WindowSketch], config: FeatureDriftConfig
) -> list[DriftVerdict]:
    """The verdicts of ``evaluate_drift_many``, each window's full result left to ``DriftVerdict.result``."""
    stacks = _stacks(profile)
    st = StackedSketches.of(profile, sketches)
    plans = _plans(profile, stacks, st, sketches, config)
    numeric_list = [plan[1] for plan in plans]
    categorical_list = [plan[2] for plan in plans]
    n_numeric = sum(len(rows) for rows in numeric_list)
    n_categorical = sum(len(rows) for rows in categorical_list)
    pairs: list[tuple[Matrix, Matrix]] = []
    if n_numeric:
        arrays = _numeric_arrays(stacks.numeric, st, numeric_list)
        if config.numeric_test == "ks":  # for all windows at once
            arrays.ks_asymptotic = ks_pvalue_asymptotic(arrays.d, arrays.n, arrays.m)
            arrays.small = effective_n(arrays.n, arrays.m) < ASYMPTOTIC_MIN_N
        pairs.append((arrays.ref_coarse, arrays.win_coarse))
    if n_categorical:
        unseen, ref, cur = _categorical_arrays(stacks.categorical, st, categorical_list)
        pairs.append((ref, cur))
    effects = _effects_and_chi2(pairs) if pairs else []
    ks = [len(numeric_rows) + len(categorical_rows) for _, numeric_rows, categorical_rows in plans]
    nt = _numeric_tests(arrays, effects[0], numeric_list, ks, config) if n_numeric else None
    ct = _categorical_tests(unseen, effects[-1]) if n_categorical else None
    out: list[DriftVerdict] = []
    num_at = cat_at = 0
    for sketch, (base, numeric_rows, categorical_rows) in zip(sketches, plans, strict=True):
        build = functools.partial(_full_result, sketch, base, stacks.numeric, nt, numeric_rows, num_at, ct,
                                  categorical_rows, cat_at, config)
        out.append(
            _verdict(sketch, base, nt, numeric_rows, num_at, ct, categorical_rows, cat_at, config, build)
        )
        num_at += len(numeric_rows)
        cat_at += len(categorical_rows)
    return out


def _full_result(
    sketch: WindowSketch, base: list[_Base], stack: _NumericStack, nt: _NumericTests | None,
    numeric_rows: dict[str, int], num_at: int, ct: _CategoricalTests | None, categorical_rows: dict[str, int],
    cat_at: int, config: FeatureDriftConfig,
) -> DriftResult:
    found = _numeric_found(nt, stack, numeric_rows, num_at, config) if nt is not None and numeric_rows else {}
    if ct is not None and categorical_rows:
        found |= _categorical_found(ct, categorical_rows, cat_at, config.psi_floor_categorical)
    return _result(sketch, base, found, config)


def _verdict(
    sketch: WindowSketch, base: list[_Base], nt: _NumericTests | None, numeric_rows: dict[str, int],
    num_at: int, ct: _CategoricalTests | None, categorical_rows: dict[str, int], cat_at: int,
    config: FeatureDriftConfig, build: Callable[[], DriftResult],
) -> DriftVerdict:
    """A window's verdict and its row's columns, the numbers ``_result`` would put into its scores: the
    features in profile order, a tested one's numbers from the batch's lists (each kind's tested features
    are in profile order there too)."""
    names: list[str] = []
    tests: list[str] = []
    statistics: list[float | None] = []
    p_values: list[float | None] = []
    effects: list[str] = []
    effect_values: list[float | None] = []
    floors: list[float] = []
    tested: list[int] = []  # positions of the tested features, the correction's family in profile order
    at: dict[str, int] = {NUMERIC: num_at, CATEGORICAL: cat_at}  # each kind's next tested feature
    of_kind: dict[str, tuple[_NumericTests | _CategoricalTests | None, dict[str, int], str, float, str]] = {
        NUMERIC: (nt, numeric_rows, config.numeric_effect_name, config.numeric_floor, config.numeric_test),
        CATEGORICAL: (ct, categorical_rows, "psi", config.psi_floor_categorical, config.categorical_test),
    }
    for name, kind, *_ in base:
        t, rows, effect, floor, default_test = of_kind[kind]
        names.append(name)
        effects.append(effect)
        if t is None or name not in rows:
            tests.append(default_test)
            statistics.append(None)
            p_values.append(None)
            effect_values.append(None)
            floors.append(0.0)
            continue
        i = at[kind]
        at[kind] = i + 1
        tested.append(len(tests))
        tests.append(t.test)
        statistics.append(t.statistic[i])
        p_values.append(t.p_value[i])
        effect_values.append(t.effect_value[i])
        floors.append(floor)
    corrected = _corrected([p_values[i] for i in tested], config)  # type: ignore[misc]
    p_adjusted: list[float | None] = [None] * len(names)
    status_of = [INSUFFICIENT] * len(names)
    drifted: list[str] = []
    alpha = config.alpha
    for i, adjusted in zip(tested, corrected, strict=True):
        p_adjusted[i] = adjusted
        if adjusted < alpha and effect_values[i] >= floors[i]:  # type: ignore[operator]
            status_of[i] = DRIFT
            drifted.append(names[i])
        else:
            status_of[i] = OK
    share = len(drifted) / len(tested) if tested else None
    status = _status(share, config)
    summary = {
        "detector": DETECTOR_NAME, "status": status.value, "share_drifted": share,
        "drifted_features": drifted, "n_window": sketch.n_rows, "config": _config_dict(config),
        "unknown_features": sorted(sketch.unknown_features),
        "features": {"name": names, "status": status_of, "test": tests, "statistic": statistics,
                     "p_value": p_values, "p_adjusted": p_adjusted, "effect": effects,
                     "effect_value": effect_values},
    }  # fmt: skip
    return DriftVerdict(status, share, tuple(drifted), len(names), sketch.n_rows, summary, build)


INSUFFICIENT, DRIFT, OK = Status.INSUFFICIENT_DATA.value, Status.DRIFT.value, Status.OK.value


def _corrected(p_values: list[float], config: FeatureDriftConfig) -> list[float]:
    """The window's adjusted p-values, over its tested features in profile order."""
    if config.correction == "bonferroni":  # correction.bonferroni's float64 operations, without arrays
        k = len(p_values)
        return [min(p * k, 1.0) for p in p_values]
    out: list[float] = adjust(p_values, config.correction).tolist()
    return out


def _status(share: float | None, config: FeatureDriftConfig) -> Status:
    if share is None:
        return Status.INSUFFICIENT_DATA
    return Status.DRIFT if share > config.dataset_drift_share else Status.OK


# per feature: name, kind, reference count, window count, missing rate, reference missing rate
_Base = tuple[str, str, int, int, float | None, float | None]


def _plans(
    profile: ReferenceProfile,
    stacks: _Stacks,
    st: StackedSketches,
    sketches: Sequence[WindowSketch],
    config: FeatureDriftConfig,
) -> list[tuple[list[_Base], dict[str, int], dict[str, int]]]:
    """Per window, which features are tested (enough values on both sides), with their rows in the stacks."""
    min_ref, min_win = config.min_reference_rows, config.min_window_rows
    profile_ok = profile.n_rows >= min_ref
    num_count, num_missing = st.count.tolist(), st.missing.tolist()
    cat_count, cat_missing = st.cat_count.tolist(), st.cat_missing.tolist()
    out = []
    for j, sketch in enumerate(sketches):
        n_rows = sketch.n_rows
        window_ok = n_rows >= min_win and profile_ok
        counts = (num_count[j], cat_count[j])
        missing = (num_missing[j], cat_missing[j])
        base: list[_Base] = []
        numeric_rows: dict[str, int] = {}
        categorical_rows: dict[str, int] = {}
        for name, kind, n_ref, row, ref_missing in stacks.layout:
            of = 0 if kind == NUMERIC else 1
            n_win = counts[of][row]
            base.append(
                (name, kind, n_ref, n_win, missing[of][row] / n_rows if n_rows else None, ref_missing)
            )
            if window_ok and n_ref >= min_ref and n_win >= min_win:
                (categorical_rows if of else numeric_rows)[name] = row
        out.append((base, numeric_rows, categorical_rows))
    return out


def _result(
    sketch: WindowSketch, base: list[_Base], found: dict[str, _Tested], config: FeatureDriftConfig
) -> DriftResult:
    """The window's verdict from its tested features: the correction over them, then one score per feature."""
    tested = [b[0] for b in base if b[0] in found]  # profile order, as the family
    adjusted = dict(zip(tested, _corrected([found[n][2] for n in tested], config), strict=True))
    alpha = config.alpha
    scores = []
    for name, kind, n_ref, n_win, missing_rate, ref_missing in base:
        t = found.get(name)
        if t is None:
            numeric = kind == NUMERIC
            default_test = config.numeric_test if numeric else config.categorical_test
            effect = config.numeric_effect_name if numeric else "psi"
            scores.append(_new_score(
                name, kind, Status.INSUFFICIENT_DATA, default_test, None, None, None, effect, None, False, n_ref,
                n_win, missing_rate, {"reference_missing_rate": ref_missing},
            ))  # fmt: skip
            continue
        test, statistic, p_value, effect, effect_value, floor, extra = t
        p_adjusted = adjusted[name]
        drifted = p_adjusted < alpha and effect_value >= floor
        # the feature's own dict, made for this score: its first key was left for the reference missing rate
        extra["reference_missing_rate"] = ref_missing
        extra["wasserstein_floor" if effect == "wasserstein_norm" else "psi_floor"] = floor
        scores.append(_new_score(
            name, kind, Status.DRIFT if drifted else Status.OK, test, statistic, p_value, p_adjusted, effect,
            effect_value, drifted, n_ref, n_win, missing_rate, extra,
        ))  # fmt: skip

    drifted_features = tuple(s.feature for s in scores if s.drifted)
    share = len(drifted_features) / len(tested) if tested else None
    status = _status(share, config)
    # the config's dict is shared by the results of one config (results are read-only)
    return _new_result(
        DETECTOR_NAME, status, share, drifted_features, tuple(scores), sketch.n_rows, _config_dict(config),
        tuple(sorted(sketch.unknown_features)),
    )  # fmt: skip
