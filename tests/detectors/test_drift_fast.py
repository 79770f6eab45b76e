"""The vectorised ``evaluate_drift`` against the per-feature functions, and its asymptotic KS p-values.

The oracle below is the per-feature evaluation ``evaluate_drift`` replaced: ``ks_binned`` (exact scipy
p-value for every feature), ``psi`` / ``jensenshannon`` / ``hellinger`` on coarse bins or categories,
``chi2_two_sample``, ``wasserstein_norm``, then the same correction and verdict rule.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from scipy import special, stats

from detectors.base import Status
from detectors.drift import (
    FeatureDriftConfig,
    ReferenceProfile,
    WindowSketch,
    adjust,
    build_profile,
    chi2_two_sample,
    evaluate_drift,
    evaluate_drift_many,
    hellinger,
    jensenshannon,
    judge_drift_many,
    ks_binned,
    psi,
)
from detectors.drift.features import BH_EXACT_BAND, _bh_needs_exact
from detectors.drift.ks import (
    ASYMPTOTIC_MIN_N,
    ASYMPTOTIC_REL_ERROR,
    effective_n,
    ks_pvalue,
    ks_pvalue_asymptotic,
)
from detectors.drift.profile import CategoricalProfile, NumericProfile
from detectors.drift.sketch import CategoricalWindow, NumericWindow
from detectors.drift.wasserstein import bin_positions, wasserstein_norm

TOL = 1e-12

# --- the per-feature oracle -----------------------------------------------------------------------------


@dataclass
class Scalar:
    test: str
    statistic: float
    p_exact: float
    effect_value: float
    floor: float
    values: dict[str, float]  # psi, js, hellinger, wasserstein_norm, dof


def scalar_evaluation(
    profile: ReferenceProfile, sketch: WindowSketch, config: FeatureDriftConfig
) -> dict[str, Scalar]:
    """Tested features only, in profile order, every KS p-value exact."""
    window_ok = sketch.n_rows >= config.min_window_rows and profile.n_rows >= config.min_reference_rows
    out: dict[str, Scalar] = {}
    for name, fp in profile.features.items():
        win = sketch.features[name]
        if not (window_ok and fp.n >= config.min_reference_rows and win.count >= config.min_window_rows):
            continue
        if isinstance(fp, NumericProfile):
            assert isinstance(win, NumericWindow)
            ref_c, win_c = fp.coarsen(fp.ref_counts), fp.coarsen(win.counts)
            values = {
                "psi": psi(ref_c, win_c),
                "js": jensenshannon(ref_c, win_c),
                "hellinger": hellinger(ref_c, win_c),
                "wasserstein_norm": wasserstein_norm(
                    bin_positions(fp.fine_edges, fp.minimum, fp.maximum), fp.ref_counts, win.counts, fp.std
                ),
            }
            if config.numeric_test == "ks":
                ks = ks_binned(fp.ref_counts, win.counts)
                test, statistic, p = "ks", ks.statistic, ks.p_value
            else:
                chi = chi2_two_sample(ref_c, win_c)
                test, statistic, p = "chi2", chi.statistic, chi.p_value
                values["dof"] = chi.dof
            effect = values["psi"] if config.numeric_effect == "psi" else values["wasserstein_norm"]
            out[name] = Scalar(test, statistic, p, effect, config.numeric_floor, values)
        else:
            assert isinstance(fp, CategoricalProfile) and isinstance(win, CategoricalWindow)
            ref = np.append(fp.bucket_counts(), 0)
            cur = np.append(win.counts, win.unseen_count)
            chi = chi2_two_sample(ref, cur)
            values = {"psi": psi(ref, cur), "js": jensenshannon(ref, cur), "hellinger": hellinger(ref, cur),
                      "dof": chi.dof}  # fmt: skip
            out[name] = Scalar("chi2", chi.statistic, chi.p_value, values["psi"],
                               config.psi_floor_categorical, values)  # fmt: skip
    return out


def exact_verdicts(scalar: dict[str, Scalar], config: FeatureDriftConfig) -> dict[str, bool]:
    adjusted = adjust([s.p_exact for s in scalar.values()], config.correction)
    return {
        name: bool(a < config.alpha and s.effect_value >= s.floor)
        for (name, s), a in zip(scalar.items(), adjusted, strict=True)
    }


def close(a: float, b: float, scale: float = 1.0) -> bool:
    return abs(a - b) <= TOL * max(abs(a), abs(b), scale)


def assert_equal_to_scalar(
    profile: ReferenceProfile, sketch: WindowSketch, config: FeatureDriftConfig
) -> None:
    result = evaluate_drift(profile, sketch, config)
    scalar = scalar_evaluation(profile, sketch, config)
    assert [s.feature for s in result.scores] == list(profile.features)
    for s in result.scores:
        ref = scalar.get(s.feature)
        if ref is None:
            assert s.status == Status.INSUFFICIENT_DATA and s.p_value is None
            continue
        assert s.test == ref.test
        assert close(s.statistic, ref.statistic), (s.feature, s.statistic, ref.statistic)
        assert close(s.effect_value, ref.effect_value), (s.feature, s.effect_value, ref.effect_value)
        for key, value in ref.values.items():
            got = s.effect_value if key == s.effect else s.extra[key]
            if key == "dof":
                assert got == value
            else:
                assert close(got, value), (s.feature, key, got, value)
        if s.kind == "categorical" or s.test == "chi2":
            assert close(s.p_value, ref.p_exact, 1e-300), (s.feature, s.p_value, ref.p_exact)
            assert "p_method" not in s.extra or s.extra["p_method"] == "exact"
        elif s.extra["p_method"] == "exact":
            assert s.p_value == ref.p_exact  # the very same scipy call
        else:
            assert_asymptotic_bound(s.p_value, ref.p_exact)
            floor_key = "psi_floor" if s.effect == "psi" else "wasserstein_floor"
            assert s.effect_value < s.extra[floor_key]
            assert effective_n(s.n_reference, s.n_window) >= ASYMPTOTIC_MIN_N
    assert tuple(s.feature for s in result.scores if s.drifted) == result.drifted_features
    verdicts = exact_verdicts(scalar, config)
    assert {f for f, v in verdicts.items() if v} == set(result.drifted_features)


def assert_asymptotic_bound(asymptotic: float, exact: float) -> None:
    """The documented bound: within 3 % below the exact value and never above it where the exact p-value is
    at least 1e-6; in the tail never more than 3 % below it (it may be larger there: more conservative)."""
    if exact == 0.0:  # scipy's sf returns 0 past n*D**2 = 370; the closed form is below 1e-160 there
        assert asymptotic < 1e-160
        return
    ratio = asymptotic / exact
    assert ratio >= 1.0 - ASYMPTOTIC_REL_ERROR, (asymptotic, exact)
    if exact >= 1e-6:
        assert ratio <= 1.0, (asymptotic, exact)


# --- random profiles and windows ------------------------------------------------------------------------


def _numeric_column(rng: np.random.Generator, kind: int, n: int, shift: float, scale: float) -> np.ndarray:
    if kind == 0:
        x = rng.normal(shift, scale, size=n)
    elif kind == 1:
        x = rng.lognormal(shift, 0.5 * scale, size=n)
    elif kind == 2:  # few distinct values, some bins empty in windows
        x = np.floor(np.abs(rng.normal(shift * 3, 2.0 * scale, size=n)))
    elif kind == 3:  # a point mass heavier than a decile
        x = np.where(rng.random(n) < 0.4, 0.0, rng.exponential(scale, size=n) + shift)
    elif kind == 4:  # a constant: no edges, one fine bin
        x = np.full(n, 3.0 + shift)
    else:  # two values
        x = (rng.random(n) < 0.3 + 0.1 * shift).astype(np.float64)
    missing = rng.random(n) < rng.choice([0.0, 0.05, 0.5])
    x[missing] = np.nan
    return x


CAT_LABELS = np.array(["a", "b", "c", "d", "e", "f", None], dtype=object)


def _categorical_column(rng: np.random.Generator, n: int, probs: np.ndarray, new: float) -> np.ndarray:
    col = rng.choice(CAT_LABELS, p=probs, size=n)
    col[rng.random(n) < new] = "brand-new"
    return col


def random_case(rng: np.random.Generator) -> tuple[ReferenceProfile, WindowSketch]:
    n_ref = int(rng.choice([0, 20, 150, 1000, 3000]))
    n_win = int(rng.choice([0, 5, 60, 120, 800, 2500]))
    kinds = rng.integers(0, 6, size=int(rng.integers(1, 8)))
    n_cat = int(rng.integers(0, 3))
    probs = [rng.dirichlet(np.ones(len(CAT_LABELS)) * rng.choice([0.3, 3.0])) for _ in range(n_cat)]
    ref_cols: dict[str, np.ndarray] = {}
    win_cols: dict[str, np.ndarray] = {}
    for j, kind in enumerate(kinds):
        ref_cols[f"x{j}"] = _numeric_column(rng, int(kind), n_ref, 0.0, 1.0)
        shift, scale = float(rng.choice([0.0, 0.05, 0.3, 2.0])), float(rng.choice([1.0, 1.0, 1.5]))
        win_cols[f"x{j}"] = _numeric_column(rng, int(kind), n_win, shift, scale)
    if n_ref and rng.random() < 0.3:
        ref_cols["x0"][:] = np.nan  # a feature with no reference values
    for j, p in enumerate(probs):
        ref_cols[f"c{j}"] = _categorical_column(rng, n_ref, p, 0.0)
        moved = np.roll(p, 1) if rng.random() < 0.3 else p
        win_cols[f"c{j}"] = _categorical_column(rng, n_win, moved, float(rng.choice([0.0, 0.02])))
    # features profiled with different numbers of fine and coarse bins in one profile
    fine = int(rng.choice([5, 20, 100]))
    coarse = int(rng.choice([2, min(fine, 10)]))
    kinds_map = {name: ("numeric" if name.startswith("x") else "categorical") for name in ref_cols}
    a = build_profile(ref_cols, kinds_map, fine_bins=fine, coarse_bins=coarse, max_categories=4)
    b = build_profile(ref_cols, kinds_map)
    features = {name: (a if i % 2 else b).features[name] for i, name in enumerate(ref_cols)}
    profile = ReferenceProfile(features=features, n_rows=n_ref)
    if rng.random() < 0.2:
        del win_cols[next(iter(win_cols))]  # absent from the window: all missing
    sketch = WindowSketch.empty(profile).update(win_cols) if n_win else WindowSketch.empty(profile)
    return profile, sketch


CONFIGS = [
    FeatureDriftConfig(),
    FeatureDriftConfig(min_window_rows=1, min_reference_rows=1),
    FeatureDriftConfig(min_window_rows=10, min_reference_rows=10, correction="bh", alpha=0.05),
    FeatureDriftConfig(numeric_test="chi2", min_window_rows=10, min_reference_rows=10),
    FeatureDriftConfig(numeric_effect="wasserstein", min_window_rows=10, min_reference_rows=10),
    FeatureDriftConfig(numeric_effect="wasserstein", wasserstein_floor=0.02, correction="bh", alpha=0.2),
    FeatureDriftConfig(psi_floor_numeric=0.0, psi_floor_categorical=0.0, correction="bh"),
]


@pytest.mark.parametrize("seed", range(40))
def test_vectorised_scores_equal_the_per_feature_functions(seed: int) -> None:
    rng = np.random.default_rng(1000 + seed)
    for _ in range(3):
        profile, sketch = random_case(rng)
        for config in CONFIGS:
            assert_equal_to_scalar(profile, sketch, config)


def more_windows(rng: np.random.Generator, profile: ReferenceProfile, count: int) -> list[WindowSketch]:
    """Windows of the same profile: empty, too small for some features, quiet, shifted, with new categories."""
    out = []
    for _ in range(count):
        n = int(rng.choice([0, 5, 60, 120, 800]))
        cols: dict[str, np.ndarray] = {}
        for name, fp in profile.features.items():
            if rng.random() < 0.15:
                continue  # absent: all missing
            if isinstance(fp, NumericProfile):
                shift = float(rng.choice([0.0, 0.3, 2.0]))
                cols[name] = _numeric_column(rng, int(rng.integers(0, 6)), n, shift, 1.0)
            else:
                cols[name] = _categorical_column(rng, n, rng.dirichlet(np.ones(len(CAT_LABELS))), 0.02)
        out.append(WindowSketch.empty(profile).update(cols) if n else WindowSketch.empty(profile))
    return out


@pytest.mark.parametrize("seed", range(15))
def test_many_windows_at_once_equal_each_window_alone_bit_for_bit(seed: int) -> None:
    rng = np.random.default_rng(5000 + seed)
    profile, first = random_case(rng)
    sketches = [first, *more_windows(rng, profile, int(rng.integers(1, 12)))]
    for config in CONFIGS:
        many = evaluate_drift_many(profile, sketches, config)
        alone = [evaluate_drift(profile, sk, config) for sk in sketches]
        assert [r.to_dict() for r in many] == [r.to_dict() for r in alone]
    assert evaluate_drift_many(profile, [], FeatureDriftConfig()) == []


@pytest.mark.parametrize("seed", range(10))
def test_verdicts_and_their_row_columns_are_the_full_results(seed: int) -> None:
    """The worker judges every window with ``judge_drift_many`` and stores ``summary``; the full result is
    built only when asked. Verdict, row columns and the built result must all say what ``evaluate_drift``
    says of the window alone, insufficient data, both corrections and every effect included."""
    rng = np.random.default_rng(9000 + seed)
    profile, first = random_case(rng)
    sketches = [first, *more_windows(rng, profile, int(rng.integers(1, 12)))]
    for config in CONFIGS:
        verdicts = judge_drift_many(profile, sketches, config)
        for verdict, sketch in zip(verdicts, sketches, strict=True):
            full = evaluate_drift(profile, sketch, config)
            assert (verdict.status, verdict.share_drifted, verdict.drifted_features) == (
                full.status, full.share_drifted, full.drifted_features)
            assert (verdict.n_features, verdict.n_window) == (len(full.scores), full.n_window)
            row = verdict.summary
            assert {k: row[k] for k in ("detector", "status", "share_drifted", "drifted_features", "n_window",
                                        "config", "unknown_features")} == {
                k: v for k, v in full.to_dict().items() if k != "scores"}
            columns = [dict(zip(row["features"], values, strict=True))
                       for values in zip(*row["features"].values(), strict=True)]
            assert columns == [
                {"name": sc.feature, "status": sc.status.value, "test": sc.test, "statistic": sc.statistic,
                 "p_value": sc.p_value, "p_adjusted": sc.p_adjusted, "effect": sc.effect,
                 "effect_value": sc.effect_value} for sc in full.scores]
            assert verdict.result().to_dict() == full.to_dict()
            assert verdict.result() is verdict.result()  # built once


def test_a_verdict_builds_its_full_result_only_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    from detectors.drift import features

    built: list[int] = []
    real = features._result
    monkeypatch.setattr(features, "_result", lambda *a: built.append(1) or real(*a))
    rng = np.random.default_rng(3)
    profile, first = random_case(rng)
    verdicts = judge_drift_many(profile, [first, *more_windows(rng, profile, 4)], FeatureDriftConfig())
    assert built == []
    verdicts[2].result()
    verdicts[2].result()
    assert built == [1]


def test_many_windows_with_every_feature_tested_equal_each_window_alone() -> None:
    """The common case (every feature of every window tested) takes the path without a row selection."""
    rng = np.random.default_rng(7)
    ref = {f"x{i}": rng.normal(size=3000) for i in range(6)} | {"c": _categorical_column(rng, 3000, np.full(7, 1 / 7), 0.0)}
    profile = build_profile(ref, {n: "categorical" if n == "c" else "numeric" for n in ref})
    sketches = [
        WindowSketch.empty(profile).update(
            {f"x{i}": rng.normal(0.4 * (j == i), size=500) for i in range(6)}
            | {"c": _categorical_column(rng, 500, np.full(7, 1 / 7), 0.01 * j)}
        )
        for j in range(10)
    ]
    many = evaluate_drift_many(profile, sketches, FeatureDriftConfig())
    assert [r.to_dict() for r in many] == [evaluate_drift(profile, sk, FeatureDriftConfig()).to_dict() for sk in sketches]
    assert {f for r in many for f in r.drifted_features} >= {"x1", "x2", "x3", "x4", "x5"}
    # the profile's arrays repeated per window are kept between calls: other window counts, and the same
    # count again, must give each window's own result all the same
    for first, count in ((0, 3), (2, 7), (5, 3), (1, 2), (0, 10)):
        part = sketches[first : first + count]
        assert [r.to_dict() for r in evaluate_drift_many(profile, part, FeatureDriftConfig())] == [
            r.to_dict() for r in many[first : first + count]
        ]


def test_wide_categorical_features_are_computed_apart_and_still_equal() -> None:
    """Coarse bins and categories share one padded matrix unless padding would cost too much (here 20
    numeric features of 10 coarse bins and a categorical feature of 1,000 categories)."""
    rng = np.random.default_rng(11)
    labels = np.array([f"k{i}" for i in range(1000)], dtype=object)

    def draw(n: int, shift: float) -> dict[str, np.ndarray]:
        cols = {f"x{j}": rng.normal(shift * (j == 0), size=n) for j in range(20)}
        cols["wide"] = labels[np.minimum(rng.geometric(0.004, size=n) - 1, 999)]
        cols["narrow"] = rng.choice(CAT_LABELS[:3], size=n)
        return cols

    profile = build_profile(draw(20000, 0.0))
    for shift in (0.0, 0.5):
        sketch = WindowSketch.empty(profile).update(draw(3000, shift))
        for config in CONFIGS:
            assert_equal_to_scalar(profile, sketch, config)


def test_output_shape_and_extras() -> None:
    rng = np.random.default_rng(3)
    ref = {"x": rng.normal(size=3000), "c": rng.choice(CAT_LABELS[:3], size=3000)}
    profile = build_profile(ref)
    sketch = WindowSketch.empty(profile).update({"x": rng.normal(1.0, size=2000), "c": ref["c"][:2000]})
    x = evaluate_drift(profile, sketch, FeatureDriftConfig()).score("x")
    assert x.effect == "psi" and x.extra["p_method"] == "exact" and x.drifted
    assert set(x.extra) == {"reference_missing_rate", "js", "hellinger", "wasserstein_norm", "p_method",
                            "reference_mean", "reference_std", "window_mean", "window_std", "psi_floor"}  # fmt: skip
    w = evaluate_drift(profile, sketch, FeatureDriftConfig(numeric_effect="wasserstein")).score("x")
    assert w.effect == "wasserstein_norm" and w.effect_value == x.extra["wasserstein_norm"]
    assert w.extra["psi"] == x.effect_value and w.extra["wasserstein_floor"] == 0.1
    assert w.effect_value == pytest.approx(1.0, abs=0.1)  # a 1-sd shift
    c = evaluate_drift(profile, sketch, FeatureDriftConfig()).score("c")
    assert c.effect == "psi" and "p_method" not in c.extra and not c.drifted
    quiet = WindowSketch.empty(profile).update({"x": rng.normal(size=2000)})
    assert evaluate_drift(profile, quiet, FeatureDriftConfig()).score("x").extra["p_method"] == "asymptotic"


def test_repeated_evaluations_reuse_the_cached_stacks_and_agree() -> None:
    rng = np.random.default_rng(4)
    profile = build_profile({"x": rng.normal(size=2000), "y": rng.exponential(size=2000)})
    sketch = WindowSketch.empty(profile).update({"x": rng.normal(size=500), "y": rng.exponential(size=500)})
    config = FeatureDriftConfig()
    first = evaluate_drift(profile, sketch, config).to_dict()
    again = evaluate_drift(ReferenceProfile.from_dict(profile.to_dict()), sketch, config).to_dict()
    assert evaluate_drift(profile, sketch, config).to_dict() == first == again


# --- exact p-values where verdicts depend on them -------------------------------------------------------

N_NUMERIC = 16


def _window(rng: np.random.Generator, n: int, shifts: np.ndarray, move: float) -> dict[str, np.ndarray]:
    cols = {f"x{j}": rng.normal(shifts[j], 1.0, size=n) for j in range(N_NUMERIC)}
    cols["c"] = rng.choice(CAT_LABELS[:3], p=[0.5 - move, 0.3 + move, 0.2], size=n)
    return cols


def test_verdicts_equal_the_all_exact_computation_for_both_corrections() -> None:
    """Quiet windows, drifted ones, and windows full of sub-floor shifts (0.03-0.12 sd: KS p-values from
    ~0.5 down to ~1e-8 at these sizes, PSI below 0.03), whose p-values land on BH's thresholds. For BH the
    rule in features.py computes such p-values exactly; the test also counts how many times it had to."""
    rng = np.random.default_rng(2024)
    profile = build_profile(_window(rng, 5000, np.zeros(N_NUMERIC), 0.0))
    configs = [FeatureDriftConfig(correction=c, alpha=a) for c in ("bonferroni", "bh") for a in (0.005, 0.05)]
    configs.append(FeatureDriftConfig(correction="bh", alpha=0.05, numeric_effect="wasserstein"))
    in_band = windows = 0
    for _ in range(120):
        n = int(rng.choice([300, 1000, 2500]))
        kind = rng.integers(0, 3)
        shifts = np.zeros(N_NUMERIC)
        if kind == 1:
            shifts[rng.integers(0, N_NUMERIC, size=2)] = rng.choice([0.3, 0.6])
        elif kind == 2:
            shifts = rng.uniform(0.03, 0.12, size=N_NUMERIC) * rng.choice([-1, 1], size=N_NUMERIC)
        sketch = WindowSketch.empty(profile).update(_window(rng, n, shifts, rng.choice([0.0, 0.05])))
        scalar = scalar_evaluation(profile, sketch, configs[0])
        for config in configs:
            if config.numeric_effect != "psi":
                scalar = scalar_evaluation(profile, sketch, config)
            result = evaluate_drift(profile, sketch, config)
            verdicts = exact_verdicts(scalar, config)
            assert {f for f, v in verdicts.items() if v} == set(result.drifted_features)
            k = len(scalar)
            for s in result.scores:
                if s.kind != "numeric":
                    continue
                if s.effect_value >= s.extra.get("psi_floor", s.extra.get("wasserstein_floor")):
                    assert s.extra["p_method"] == "exact" and s.p_value == scalar[s.feature].p_exact
                elif s.extra["p_method"] == "exact":
                    in_band += 1
                    assert config.correction == "bh"
                    assert (
                        config.alpha / k / BH_EXACT_BAND <= s.p_value <= config.alpha * BH_EXACT_BAND * 1.03
                    )
                else:
                    assert_asymptotic_bound(s.p_value, scalar[s.feature].p_exact)
        windows += 1
    assert windows == 120
    assert in_band >= 50  # the BH rule was exercised


def test_bh_verdicts_can_differ_without_the_exact_band() -> None:
    """Why BH needs the band: one non-candidate whose exact p-value sits just above a BH threshold and
    whose asymptotic value (up to 3 % lower) sits below it changes another feature's verdict."""
    alpha, k = 0.05, 2
    # feature 0: a candidate with p = 0.03 (> alpha / 2, so BH flags it only if R = 2)
    # feature 1: a non-candidate whose p decides whether R = 2: flagged iff both p-values < 0.05
    en = 100
    d = float(stats.kstwo.isf(0.0502, en))  # exact p just above alpha
    exact = ks_pvalue(d, 2 * en, 2 * en)
    approx = float(ks_pvalue_asymptotic(d, 2 * en, 2 * en))
    assert exact > alpha > approx  # the asymptotic value is on the other side of the threshold
    assert adjust([0.03, exact], "bh")[0] > alpha > adjust([0.03, approx], "bh")[0]
    assert _bh_needs_exact(np.array([approx]), alpha, k).all()  # so evaluate_drift uses the exact value


def test_asymptotic_pvalue_relative_error_bound() -> None:
    """``ks_pvalue_asymptotic`` against scipy's ``kstwo.sf`` over effective sample sizes 50-100,000 (the
    asymptotic value is used from ASYMPTOTIC_MIN_N = 50: default windows have >= 100 rows against >= 100
    reference rows) and statistics giving p-values from ~1 down to 1e-300.

    Measured on this grid (and a denser one while choosing the formula): where the exact p >= 1e-6, the
    ratio asymptotic / exact lies in [0.971, 1.0] (worst at en = 50; 0.994 from en = 500, 0.998 from 1,000);
    further in the tail it is >= 0.976 and grows above 1 at small en (more conservative). The tolerance is
    ASYMPTOTIC_REL_ERROR = 3 %: the worst measured case plus a little, and the margin BH_EXACT_BAND (25 %)
    in features.py needs only the lower side to hold within 20 %."""
    worst_low = worst_high = 1.0
    for en in (50, 51, 63, 80, 100, 139, 141, 200, 333, 500, 1000, 2500, 5000, 9091, 30000, 100000):
        ps = np.concatenate(
            [np.linspace(0.99, 0.05, 12), np.logspace(-1.4, -6, 14), np.logspace(-7, -300, 8)]
        )
        statistics = special.kolmogi(ps) / np.sqrt(en)
        statistics = statistics[(statistics > 0) & (statistics < 1)]
        if en >= 30000:  # the tail costs O(en) per exact call
            statistics = statistics[statistics < special.kolmogi(1e-7) / np.sqrt(en)]
        approx = ks_pvalue_asymptotic(statistics, 2 * en, 2 * en)
        assert np.all(effective_n(2 * en, 2 * en) == en)
        for d, a in zip(statistics.tolist(), approx.tolist(), strict=True):
            e = ks_pvalue(d, 2 * en, 2 * en)
            assert_asymptotic_bound(a, e)
            if e >= 1e-6:
                worst_low, worst_high = min(worst_low, a / e), max(worst_high, a / e)
    assert 1.0 - ASYMPTOTIC_REL_ERROR <= worst_low < 0.98  # the bound is tight, not loose
    assert worst_high <= 1.0


def test_asymptotic_pvalue_edges() -> None:
    assert ks_pvalue_asymptotic(0.0, 1000, 1000) == 1.0
    assert float(ks_pvalue_asymptotic(1.0, 1000, 1000)) < 1e-300
    d, n = np.array([0.0, 0.01, 0.05, 0.2]), np.array([100, 1000, 5000, 90])
    p = ks_pvalue_asymptotic(d, n, 10_000)
    assert p.shape == (4,)
    assert p.tolist() == [float(ks_pvalue_asymptotic(a, b, 10_000)) for a, b in zip(d, n, strict=True)]
    grid = ks_pvalue_asymptotic(np.linspace(0.001, 0.5, 200), 1000, 1000)
    assert np.all(np.diff(grid) <= 0)  # decreasing in D


@pytest.mark.parametrize("correction", ["bonferroni", "bh"])
def test_adjusted_p_values_are_the_correction_of_the_tested_features(correction: str) -> None:
    """Each window's family is corrected on its own, to the bit of ``correction.adjust`` (Bonferroni is taken
    without arrays on the worker's path: the same float64 operations)."""
    rng = np.random.default_rng(77)
    profile = build_profile(_window(rng, 5000, np.zeros(N_NUMERIC), 0.0))
    config = FeatureDriftConfig(correction=correction)
    sketches = [
        WindowSketch.empty(profile).update(_window(rng, n, rng.uniform(-0.2, 0.2, N_NUMERIC), 0.05))
        for n in (20, 300, 1000, 2500)  # 20 rows: too few to test, no family
    ]
    for result in evaluate_drift_many(profile, sketches, config):
        tested = [s for s in result.scores if s.p_value is not None]
        want = adjust([s.p_value for s in tested], correction).tolist()
        assert [s.p_adjusted for s in tested] == want
        assert len(tested) in (0, len(result.scores))


def test_bh_exact_band_takes_each_window_s_own_family_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """Windows judged together decide which asymptotic p-values to compute exactly with their own family size:
    a p-value between ``alpha / 10 / band`` and ``alpha / 2 / band`` is near a BH threshold in a window of 10
    tested features, and not in one of 2."""
    from detectors.drift import features

    rng = np.random.default_rng(11)
    names = [f"x{i}" for i in range(10)]
    profile = build_profile({n: rng.normal(size=5000) for n in names}, dict.fromkeys(names, "numeric"))
    two = WindowSketch.empty(profile).update({n: rng.normal(size=2000) for n in names[:2]})
    ten = WindowSketch.empty(profile).update({n: rng.normal(size=2000) for n in names})
    config = FeatureDriftConfig(correction="bh", alpha=0.05, psi_floor_numeric=0.99)
    p = config.alpha / 6 / BH_EXACT_BAND
    monkeypatch.setattr(features, "ks_pvalue_asymptotic", lambda d, n, m: np.full(np.shape(d), p))
    many = evaluate_drift_many(profile, [two, ten], config)
    alone = [evaluate_drift(profile, sk, config) for sk in (two, ten)]
    assert [r.to_dict() for r in many] == [r.to_dict() for r in alone]
    methods = [{s.extra["p_method"] for s in r.scores if s.p_value is not None} for r in many]
    assert methods == [{"asymptotic"}, {"exact"}]
