"""``evaluate_quality_many``: each window's result equals the evaluation of that window alone.

The oracle is ``_reference_evaluate_quality`` below: the per-window implementation ``evaluate_quality`` had
before windows were judged in batches, copied verbatim (with the helpers it called) and kept here unchanged,
so that these tests do not compare the new code with itself. Every result is compared with it field by
field (types included), through ``repr`` and ``to_dict``, with the p-value memo of ``stats`` cleared before
each side so that both compute their p-values rather than read the other's.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import pickle
from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest

from detectors.base import (
    CATEGORICAL,
    NUMERIC,
    FeatureKind,
    InputError,
    ProfileMismatchError,
    fast_constructor,
)
from detectors.drift import ReferenceProfile, WindowSketch, build_profile
from detectors.drift.correction import CORRECTIONS, adjust
from detectors.drift.profile import CategoricalProfile, NumericProfile
from detectors.drift.sketch import CategoricalWindow, NumericWindow
from detectors.quality import (
    MISSING_RATE,
    NEW_COLUMN,
    OUT_OF_DOMAIN,
    OUT_OF_RANGE,
    TYPE_ERRORS,
    Check,
    FeatureQuality,
    QualityConfig,
    QualityResult,
    QualityStatus,
    evaluate_quality,
    evaluate_quality_many,
)
from detectors.quality.checks import DETECTOR_NAME, MAX_REPORTED_CATEGORIES
from detectors.quality.stats import (
    RANGE_TESTS,
    clear_caches,
    fisher_pvalues,
    outside_range_pvalue,
    range_pvalues,
)

# --- the oracle: evaluate_quality as it was before batching, verbatim ---------------------------------------

_new_check = fast_constructor(Check)
_new_feature_quality = fast_constructor(FeatureQuality)


def _validated_type_errors(
    profile: ReferenceProfile, sketch: WindowSketch, type_errors: Mapping[str, int], config: QualityConfig
) -> dict[str, int]:
    unknown = sorted(set(type_errors) - set(profile.features))
    if unknown:
        raise InputError(f"type_errors names features the profile does not have: {unknown}")
    out: dict[str, int] = {}
    for name, count in type_errors.items():
        if (
            not isinstance(count, (int, np.integer))
            or isinstance(count, bool)
            or not 0 <= count <= sketch.n_rows
        ):
            raise InputError(
                f"type_errors[{name!r}] must be an integer in [0, {sketch.n_rows}], got {count!r}"
            )
        missing = sketch.features[name].missing
        if config.type_errors_counted_as_missing and count > missing:
            raise InputError(
                f"type_errors[{name!r}] = {count} exceeds the window's {missing} missing values, but "
                "type_errors_counted_as_missing is set (the stream counts a wrong-typed value as missing)"
            )
        out[name] = int(count)
    return out


_INSUFFICIENT = QualityStatus.INSUFFICIENT_DATA
_ALERT = QualityStatus.ALERT
_OK = QualityStatus.OK
_TRUNCATED = "truncated profile: categories beyond max_categories pool into __other__"


def _top_unseen(unseen: Mapping[str, int]) -> dict[str, int]:
    if not unseen:
        return {}
    return dict(sorted(unseen.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_REPORTED_CATEGORIES])


def _reference_evaluate_quality(
    profile: ReferenceProfile,
    sketch: WindowSketch,
    type_errors: Mapping[str, int] | None = None,
    config: QualityConfig | None = None,
) -> QualityResult:
    """Every check of one closed window; ``type_errors`` maps a feature to its wrong-typed values (absent: 0)."""
    config = config if config is not None else QualityConfig()
    if sketch.profile.fingerprint != profile.fingerprint:
        raise ProfileMismatchError("the sketch was built for another reference profile")
    errors = _validated_type_errors(profile, sketch, type_errors, config) if type_errors else {}
    rows = sketch.n_rows
    window_ok = rows >= config.min_window_rows
    min_reference = config.min_reference_rows
    counted = config.type_errors_counted_as_missing
    missing_floor, range_floor, range_test = config.missing_floor, config.range_floor, config.range_test
    type_error_floor = config.type_error_floor
    new_check = _new_check

    checks: list[tuple[str, FeatureKind, Check, Check, Check]] = []
    # the tests to run, one list per kind, and the family in the order it is corrected: (check, passes its
    # floor, 0 for Fisher's test or 1 for the range test, index in that test's list)
    fisher_args: list[tuple[int, int, int, int]] = []
    range_args: list[tuple[int, int, int, int]] = []
    family: list[tuple[Check, bool, int, int]] = []
    windows = sketch.features
    for name, fp in profile.features.items():
        win = windows[name]
        te = errors.get(name, 0)
        excluded = te if counted else 0

        # missing_rate
        missing = win.missing - excluded
        ref_missing = fp.missing
        ref_rows = fp.n + ref_missing
        value = missing / rows if rows else None
        expected = ref_missing / ref_rows if ref_rows else None
        extra: dict[str, Any] = {
            "reference_missing": ref_missing,
            "reference_rows": ref_rows,
            "type_errors_excluded": excluded,
        }
        a = new_check(MISSING_RATE, name, _INSUFFICIENT, value, expected, missing, rows, "fisher", None, None,
                      missing_floor, extra)  # fmt: skip
        if window_ok and ref_rows >= min_reference:
            assert value is not None and expected is not None
            increase = value - expected
            extra["increase"] = increase
            extra["absent"] = missing == rows
            family.append((a, increase >= missing_floor, 0, len(fisher_args)))
            fisher_args.append((missing, rows, ref_missing, ref_rows))

        # out_of_range / out_of_domain
        if isinstance(fp, NumericProfile) and isinstance(win, NumericWindow):
            kind = NUMERIC
            count, m = win.below + win.above, win.count
            extra = {
                "below": win.below,
                "above": win.above,
                "reference_min": fp.minimum,
                "reference_max": fp.maximum,
                "window_min": win.minimum if m else None,
                "window_max": win.maximum if m else None,
            }
            b = new_check(OUT_OF_RANGE, name, _INSUFFICIENT, count / m if m else None, 2.0 / (fp.n + 1.0),
                          count, m, range_test, None, None, range_floor, extra)  # fmt: skip
            known_range = fp.minimum is not None and fp.maximum is not None
            if m >= 1 and window_ok and known_range and fp.n >= min_reference:
                family.append((b, count / m >= range_floor, 1, len(range_args)))
                range_args.append((count, m, fp.n, 2))
        elif isinstance(fp, CategoricalProfile) and isinstance(win, CategoricalWindow):
            kind = CATEGORICAL
            count, m = win.unseen_count, win.count
            singletons = int(np.count_nonzero(fp.ref_counts == 1))
            extra = {
                "unseen_categories": _top_unseen(win.unseen),
                "unseen_untracked": win.unseen_untracked,
                "reference_singletons": singletons,
            }
            if fp.truncated:
                extra["reason"] = _TRUNCATED
                b = new_check(OUT_OF_DOMAIN, name, _INSUFFICIENT, None, None, None, m, None, None, None,
                              range_floor, extra)  # fmt: skip
            else:
                # below n keeps the beta-binomial proper (b = n + 1 - k >= 1)
                k = min(singletons + 1, max(fp.n, 1))
                b = new_check(OUT_OF_DOMAIN, name, _INSUFFICIENT, count / m if m else None, k / (fp.n + 1.0),
                              count, m, range_test, None, None, range_floor, extra)  # fmt: skip
                if m >= 1 and window_ok and fp.n >= min_reference:
                    family.append((b, count / m >= range_floor, 1, len(range_args)))
                    range_args.append((count, m, fp.n, k))
        else:
            raise ProfileMismatchError(f"feature {name!r}: sketch and profile disagree on its kind")

        # type_errors
        value = te / rows if rows else None
        if not window_ok or value is None:
            status = _INSUFFICIENT
        else:
            status = _ALERT if value >= type_error_floor else _OK
        c = new_check(TYPE_ERRORS, name, status, value, 0.0, te, rows, None, None, None, type_error_floor, {})
        checks.append((name, kind, a, b, c))

    if family:
        tested = (fisher_pvalues(fisher_args), range_pvalues(range_args, range_test))
        p_values = [tested[test][i] for _, _, test, i in family]
        adjusted = adjust(p_values, config.correction).tolist()
        alpha = config.alpha
        for (check, passes, _, _), p, q in zip(family, p_values, adjusted, strict=True):
            state = check.__dict__
            state["status"] = _ALERT if q < alpha and passes else _OK
            state["p_value"] = p
            state["p_adjusted"] = q

    features: dict[str, FeatureQuality] = {}
    problems: list[Check] = []
    for name, kind, a, b, c in checks:
        sa, sb, sc = a.status, b.status, c.status
        if sa is _ALERT or sb is _ALERT or sc is _ALERT:
            status = _ALERT
            problems.extend(x for x in (a, b, c) if x.status is _ALERT)
        elif sa is _INSUFFICIENT and sb is _INSUFFICIENT and sc is _INSUFFICIENT:
            status = _INSUFFICIENT
        else:
            status = _OK
        features[name] = _new_feature_quality(name, kind, status, {a.check: a, b.check: b, c.check: c})

    new_status = (_ALERT if config.new_columns_alert else _OK) if window_ok else _INSUFFICIENT
    unset = (None,) * 8  # value, expected, count, n, test, p_value, p_adjusted, floor
    new_columns = tuple(
        new_check(NEW_COLUMN, name, new_status, *unset, {"reason": "not in the profile"})
        for name in sorted(sketch.unknown_features)
    )
    warnings: list[Check] = []
    if window_ok:
        if new_status is _ALERT:
            problems.extend(new_columns)
        else:
            warnings.extend(new_columns)

    if problems:
        status = _ALERT
    elif not window_ok or all(f.status is _INSUFFICIENT for f in features.values()):
        status = _INSUFFICIENT
    else:
        status = _OK
    return QualityResult(
        detector=DETECTOR_NAME,
        status=status,
        n_window=rows,
        features=features,
        new_columns=new_columns,
        problems=tuple(problems),
        warnings=tuple(warnings),
        config=config.to_dict(),
    )


# --- cases: profiles and the windows a worker would close over them ----------------------------------------


def _numeric(rng: np.random.Generator, n: int, shift: float, scale: float, missing: float) -> np.ndarray:
    shape = rng.integers(3)
    if shape == 0:
        x = rng.normal(shift, scale, size=n)
    elif shape == 1:
        x = rng.uniform(shift, shift + scale, size=n)
    else:
        x = rng.integers(0, 5, size=n).astype(np.float64) * scale + shift  # ties
    x[rng.random(n) < missing] = np.nan
    return x


def _categorical(rng: np.random.Generator, n: int, alphabet: list[str], missing: float) -> np.ndarray:
    weights = 1.0 / np.arange(1, len(alphabet) + 1) ** rng.uniform(0.5, 2.5)  # Zipf-like: singletons too
    c = rng.choice(np.array(alphabet, dtype=object), p=weights / weights.sum(), size=n)
    c[rng.random(n) < missing] = None
    return c


def _missing_share(rng: np.random.Generator) -> float:
    return float(rng.choice([0.0, 0.0, 0.005, 0.02, 0.1, 0.4, 1.0]))


class _Case:
    """A profile and a random stream of windows over it (drift, missing values, new categories, values out
    of range, dropped and new columns)."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.n_num = int(rng.integers(0, 5))
        n_cat = int(rng.integers(0 if self.n_num else 1, 5))
        n_ref = int(rng.choice([30, 99, 150, 1000, 5000]))
        self.alphabets = {
            f"c{i}": [f"k{j}" for j in range(int(rng.choice([1, 3, 8, 30, 200])))] for i in range(n_cat)
        }
        ref: dict[str, np.ndarray] = {}
        for i in range(self.n_num):
            share = _missing_share(rng) if rng.random() < 0.5 else 0.0
            ref[f"x{i}"] = _numeric(rng, n_ref, 0.0, 1.0, share)
        for name, alphabet in self.alphabets.items():
            ref[name] = _categorical(rng, n_ref, alphabet, _missing_share(rng) if rng.random() < 0.5 else 0.0)
        # the order of the features mixes both kinds
        order = list(ref)
        rng.shuffle(order)
        fine = int(rng.choice([5, 10, 20]))
        self.profile = build_profile(
            {name: ref[name] for name in order},
            fine_bins=fine,
            coarse_bins=int(rng.integers(2, fine + 1)),
            max_categories=int(rng.choice([1000, 1000, 3, 5])),
        )

    def batch(self, rows: int) -> dict[str, np.ndarray]:
        rng = self.rng
        out: dict[str, np.ndarray] = {}
        for i in range(self.n_num):
            if rng.random() < 0.05:
                continue  # absent from the batch: missing in every row
            drift = rng.random() < 0.3
            shift = float(rng.normal(0, 2)) if drift else 0.0
            scale = float(rng.uniform(0.5, 3)) if drift else 1.0
            out[f"x{i}"] = _numeric(rng, rows, shift, scale, _missing_share(rng))
        for name, alphabet in self.alphabets.items():
            if rng.random() < 0.05:
                continue
            extra = int(rng.choice([0, 0, 2, 15, 150]))
            alphabet = alphabet + [f"new{j}" for j in range(extra)]
            out[name] = _categorical(rng, rows, alphabet, _missing_share(rng))
        for j in range(int(rng.choice([0, 0, 0, 1, 3]))):
            out[f"new_col_{j}"] = rng.normal(size=rows)
        return out

    def windows(self) -> list[WindowSketch]:
        """A sliding window's panes merged as the worker merges them, then windows sketched on their own."""
        rng = self.rng
        pane = int(rng.choice([1, 20, 60, 100, 300]))
        n_panes = int(rng.integers(2, 8))
        stream = self.batch(pane * (n_panes + 4))
        panes = WindowSketch.of_segments(self.profile, stream, list(range(0, pane * (n_panes + 4) + 1, pane)))
        out = []
        for start in range(0, 5, int(rng.integers(1, 3))):
            sketch = panes[start]
            for p in panes[start + 1 : start + n_panes]:
                sketch = sketch.merge(p)
            out.append(sketch)
        for _ in range(int(rng.integers(1, 7))):
            rows = int(rng.choice([0, 1, 5, 50, 99, 100, 200, 1000, 3000]))
            out.append(WindowSketch.empty(self.profile).update(self.batch(rows)))
        rng.shuffle(out)  # type: ignore[arg-type]
        return out

    def type_errors(self, sketch: WindowSketch, counted: bool) -> Any:
        rng = self.rng
        if rng.random() < 0.3:
            return None if rng.random() < 0.5 else {}
        errors: dict[str, Any] = {}
        for name, window in sketch.features.items():
            if rng.random() < 0.5:
                limit = window.missing if counted else sketch.n_rows
                count = int(rng.integers(0, limit + 1)) if rng.random() < 0.7 else limit
                errors[name] = np.int64(count) if rng.random() < 0.2 else count
        return errors

    def config(self) -> QualityConfig | None:
        rng = self.rng
        if rng.random() < 0.2:
            return None
        kwargs: dict[str, Any] = {
            "alpha": float(rng.choice([0.005, 0.05, 0.2, 0.5])),
            "correction": str(rng.choice(CORRECTIONS)),
            "missing_floor": [0.05, 0.0, 0, 0.01, 0.2][rng.integers(5)],
            "range_floor": [0.01, 0.0, 0, 0.001, 0.1, 1.0][rng.integers(6)],
            "range_test": str(rng.choice(RANGE_TESTS)),
            "type_error_floor": [0.01, 0.001, 0.5, 1.0, 1][rng.integers(5)],
            "type_errors_counted_as_missing": bool(rng.random() < 0.5),
            "new_columns_alert": bool(rng.random() < 0.3),
            "min_window_rows": int(rng.choice([100, 1, 10, 50, 300])),
            "min_reference_rows": int(rng.choice([100, 2, 20, 500])),
        }
        return QualityConfig(**{k: v for k, v in kwargs.items() if rng.random() < 0.8})


def _case(seed: int) -> tuple[ReferenceProfile, list[WindowSketch], list[Any], QualityConfig | None]:
    case = _Case(np.random.default_rng(seed))
    sketches = case.windows()
    config = case.config()
    counted = (config or QualityConfig()).type_errors_counted_as_missing
    return case.profile, sketches, [case.type_errors(s, counted) for s in sketches], config


# --- comparing results --------------------------------------------------------------------------------------


def _fields(obj: Any) -> list[tuple[str, str, str]]:
    """Every field with its type and repr (a float's repr is exact: equal reprs, equal bits)."""
    return [(k, type(v).__name__, repr(v)) for k, v in vars(obj).items()]


def _checks(result: QualityResult) -> list[Check]:
    return [c for fq in result.features.values() for c in fq.checks.values()]


def assert_same(got: QualityResult, want: QualityResult) -> None:
    assert type(got) is QualityResult
    for name in ("detector", "status", "n_window", "new_columns", "problems", "warnings", "absent_features"):
        assert getattr(got, name) == getattr(want, name), name
    assert got.config == want.config
    assert list(got.features) == list(want.features) and len(got.features) == len(want.features)
    for name, fq in want.features.items():
        mine = got.features[name]
        assert [k for k, _, _ in _fields(mine)] == [k for k, _, _ in _fields(fq)]
        assert (mine.feature, mine.kind, mine.status) == (fq.feature, fq.kind, fq.status)
        assert list(mine.checks) == list(fq.checks)
        for check, theirs in fq.checks.items():
            assert _fields(mine.checks[check]) == _fields(theirs), (name, check)
    for mine, theirs in zip(_checks(got), _checks(want), strict=True):
        for p in ("p_value", "p_adjusted"):
            a, b = getattr(mine, p), getattr(theirs, p)
            assert (a is None and b is None) or float(a).hex() == float(b).hex()
    for mine, theirs in zip((*got.problems, *got.warnings), (*want.problems, *want.warnings), strict=True):
        assert _fields(mine) == _fields(theirs)
    assert json.dumps(got.to_dict()) == json.dumps(want.to_dict())
    assert repr(got) == repr(want)
    assert got == want


def _reference(
    profile: ReferenceProfile, sketches: list[WindowSketch], errors: list[Any], config: QualityConfig | None
) -> list[QualityResult]:
    clear_caches()
    return [_reference_evaluate_quality(profile, s, e, config) for s, e in zip(sketches, errors, strict=True)]


def _many(
    profile: ReferenceProfile, sketches: list[WindowSketch], errors: list[Any], config: QualityConfig | None
) -> list[QualityResult]:
    clear_caches()
    return evaluate_quality_many(profile, sketches, errors, config)


# --- each window as alone ---------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(80))
def test_each_window_equals_the_reference_alone(seed: int) -> None:
    profile, sketches, errors, config = _case(seed)
    want = _reference(profile, sketches, errors, config)
    got = _many(profile, sketches, errors, config)
    assert len(got) == len(want)
    for mine, theirs in zip(got, want, strict=True):
        assert_same(mine, theirs)
    # again with every p-value remembered (the reference's), and through evaluate_quality
    for mine, theirs in zip(evaluate_quality_many(profile, sketches, errors, config), want, strict=True):
        assert_same(mine, theirs)
    for sketch, e, theirs in zip(sketches, errors, want, strict=True):
        assert_same(evaluate_quality(profile, sketch, e, config), theirs)


def test_the_cases_cover_what_they_claim() -> None:
    """The seeds above reach every status of every check, both corrections and range tests, windows of
    several widths for the beta-binomial in one batch, and batches with alerting and quiet windows."""
    statuses: set[tuple[str, str]] = set()
    configs: set[tuple[str, str]] = set()
    mixed_widths = mixed_alerts = truncated = untracked = absent = new_columns = errors = 0
    for seed in range(80):
        profile, sketches, type_errors, config = _case(seed)
        results = _reference(profile, sketches, type_errors, config)
        cfg = config or QualityConfig()
        configs.add((cfg.correction, cfg.range_test))
        statuses |= {(c.check, c.status.value) for r in results for c in _checks(r)}
        widths = {_width(profile, r) for r in results if r.status != _INSUFFICIENT}
        mixed_widths += cfg.range_test == "betabinomial" and len(widths - {0}) >= 2
        mixed_alerts += len({r.status for r in results}) >= 2
        truncated += any("reason" in c.extra for r in results for c in _checks(r))
        untracked += any(c.extra.get("unseen_untracked") for r in results for c in _checks(r))
        absent += any(r.absent_features for r in results)
        new_columns += any(r.new_columns for r in results)
        errors += any(c.count for r in results for c in _checks(r) if c.check == TYPE_ERRORS)
    for check in (MISSING_RATE, OUT_OF_RANGE, OUT_OF_DOMAIN, TYPE_ERRORS):
        for status in ("ok", "alert", "insufficient_data"):
            assert (check, status) in statuses, (check, status)
    assert configs == {(c, t) for c in CORRECTIONS for t in RANGE_TESTS}
    assert min(mixed_widths, mixed_alerts, truncated, untracked, absent, new_columns, errors) >= 3, (
        mixed_widths, mixed_alerts, truncated, untracked, absent, new_columns, errors
    )  # fmt: skip


def _width(profile: ReferenceProfile, result: QualityResult) -> int:
    """How far the beta-binomial sums the window's range tests: the largest k of the tested rows with a
    count between 1 and n (``stats.range_pvalues``)."""
    width = 0
    for name, fq in result.features.items():
        c = fq.checks.get(OUT_OF_RANGE) or fq.checks[OUT_OF_DOMAIN]
        if c.p_value is not None and c.count is not None and c.n is not None and 1 <= c.count <= c.n:
            fp = profile.features[name]
            k = 2 if isinstance(fp, NumericProfile) else c.extra["reference_singletons"] + 1
            width = max(width, min(k, max(fp.n, 1)))
    return width


def test_widths_differ_within_a_batch() -> None:
    """Categorical features of different singleton counts, new categories in different features per window:
    the beta-binomial of each window sums to its own width, whichever windows share its batch (summed to
    the batch's widest, about one p-value in twenty moves in its last bits, as here)."""
    rng = np.random.default_rng(3)
    common = np.array(["a", "b", "c", "d"], dtype=object)
    ref: dict[str, np.ndarray] = {"x": rng.normal(size=3000)}
    for i, ones in enumerate((6, 18, 35)):  # reference singletons: k = 7, 19, 36
        column = rng.choice(common, size=3000)
        column[:ones] = [f"once{j}" for j in range(ones)]
        ref[f"c{i}"] = column
    profile = build_profile(ref)
    sketches = []
    for w in range(40):
        rows = int(rng.integers(1000, 3000))
        cols = {f"c{i}": rng.choice(common, size=rows) for i in range(3)}
        cols["x"] = rng.normal(size=rows)
        for i, share in enumerate((0.6, 0.6, 0.2)):  # the widest feature's new categories are rarer
            if rng.random() < share:
                cols[f"c{i}"][: int(rng.integers(1, 30))] = f"new{w}"
        if w % 4 == 3:
            cols["x"][:3] = 99.0
        sketches.append(WindowSketch.empty(profile).update(cols))
    for config in (QualityConfig(), QualityConfig(correction="bh", alpha=0.5, range_floor=0.0)):
        want = _reference(profile, sketches, [None] * len(sketches), config)
        assert len({_width(profile, r) for r in want}) >= 4
        # the case has teeth: summed to the batch's widest, some window's p-value would differ
        widest = max(_width(profile, r) for r in want)
        moved = 0
        for result in want:
            for name, fq in result.features.items():
                c = fq.checks.get(OUT_OF_RANGE) or fq.checks[OUT_OF_DOMAIN]
                if c.p_value is not None and c.count:
                    k = 2 if name == "x" else c.extra["reference_singletons"] + 1
                    row = [c.count, c.n, profile.features[name].n]
                    wide = outside_range_pvalue(*zip(row + [k], row + [widest], strict=True))[0]
                    moved += float(wide) != c.p_value
        assert moved >= 3, moved
        for mine, theirs in zip(_many(profile, sketches, [None] * len(sketches), config), want, strict=True):
            assert_same(mine, theirs)


# --- batches --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(0, 80, 7))
def test_a_window_does_not_depend_on_its_batch(seed: int) -> None:
    profile, sketches, errors, config = _case(seed)
    rng = np.random.default_rng(seed)
    alone = [_many(profile, [s], [e], config)[0] for s, e in zip(sketches, errors, strict=True)]
    orders = [list(range(len(sketches)))[::-1], list(rng.permutation(len(sketches)))]
    orders += [sorted(rng.choice(len(sketches), size=int(rng.integers(1, len(sketches) + 1)), replace=False))]
    for order in orders:
        got = _many(profile, [sketches[i] for i in order], [errors[i] for i in order], config)
        for i, result in zip(order, got, strict=True):
            assert_same(result, alone[i])
    # one window many times in a batch: equal results, built apart
    twice = _many(profile, [sketches[0]] * 3, [errors[0]] * 3, config)
    for result in twice:
        assert_same(result, alone[0])
    assert twice[0].features is not twice[1].features


def test_empty_batches_defaults_and_lengths() -> None:
    profile, sketches, _, _ = _case(1)
    assert evaluate_quality_many(profile, [], [], None) == []
    assert evaluate_quality_many(profile, []) == []
    default = evaluate_quality_many(profile, sketches)
    for result, sketch in zip(default, sketches, strict=True):
        assert_same(result, _reference_evaluate_quality(profile, sketch, None, None))
    with pytest.raises(InputError, match="1 entries for 2 sketches"):
        evaluate_quality_many(profile, sketches[:2], [None])


@pytest.mark.parametrize(
    ("type_errors", "message"),
    [
        ({"nope": 1}, "features the profile does not have"),
        ({"x": -1}, "must be an integer in"),
        ({"x": 2.0}, "must be an integer in"),
        ({"x": True}, "must be an integer in"),
        ({"x": 10_000}, "must be an integer in"),
        ({"y": 1}, "exceeds the window's 0 missing values"),
    ],
)
def test_a_bad_window_raises_what_it_raises_alone(type_errors: dict[str, Any], message: str) -> None:
    rng = np.random.default_rng(0)
    profile = build_profile({"x": rng.normal(size=500), "y": rng.normal(size=500)})
    good = WindowSketch.empty(profile).update({"x": rng.normal(size=300), "y": rng.normal(size=300)})
    with pytest.raises(InputError) as alone:
        _reference_evaluate_quality(profile, good, type_errors, QualityConfig())
    assert message in str(alone.value)
    for errors in ([None, type_errors], [type_errors, {}], [{}, type_errors, None]):
        with pytest.raises(InputError) as many:
            evaluate_quality_many(profile, [good] * len(errors), errors, QualityConfig())
        assert str(many.value) == str(alone.value)


def _with_features(sketch: WindowSketch, features: Mapping[str, Any]) -> WindowSketch:
    return WindowSketch(sketch.profile, sketch.n_rows, features, sketch.unknown_features)


def test_sketches_of_another_profile_or_kind_raise_as_alone() -> None:
    rng = np.random.default_rng(1)
    cols = {"x": rng.normal(size=400), "c": rng.choice(np.array(["a", "b"], dtype=object), size=400)}
    profile = build_profile(cols)
    good = WindowSketch.empty(profile).update(cols)
    other = WindowSketch.empty(build_profile({"x": rng.normal(size=400)})).update({"x": rng.normal(size=50)})
    with pytest.raises(ProfileMismatchError, match="another reference profile"):
        evaluate_quality_many(profile, [good, other])
    swapped = _with_features(good, {"x": good.features["c"], "c": good.features["x"]})
    missing = _with_features(good, {"x": good.features["x"]})
    for bad in (swapped, missing):
        with pytest.raises((ProfileMismatchError, KeyError)) as alone:
            _reference_evaluate_quality(profile, bad, None, None)
        with pytest.raises(type(alone.value)) as many:
            evaluate_quality_many(profile, [good, bad])
        assert str(many.value) == str(alone.value)


def test_windows_of_subclasses_are_read_as_their_classes() -> None:
    """The kind check is isinstance, as the per-feature loop's: a subclass of a window class passes."""

    @dataclasses.dataclass(frozen=True, eq=False)
    class Numeric(NumericWindow):
        pass

    @dataclasses.dataclass(frozen=True, eq=False)
    class Categorical(CategoricalWindow):
        pass

    profile, sketches, errors, config = _case(5)
    subclassed = []
    for sketch in sketches:
        features = {
            name: (Numeric if isinstance(w, NumericWindow) else Categorical)(**vars(w))
            for name, w in sketch.features.items()
        }
        subclassed.append(_with_features(sketch, features))
    want = _reference(profile, subclassed, errors, config)
    for mine, theirs in zip(_many(profile, subclassed, errors, config), want, strict=True):
        assert_same(mine, theirs)


# --- built when read ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(0, 80, 5))
def test_reading_features_first_or_last_gives_the_same_objects(seed: int) -> None:
    profile, sketches, errors, config = _case(seed)
    first = _many(profile, sketches, errors, config)
    last = _many(profile, sketches, errors, config)
    for result in first:  # every window's features before anything else
        dict(result.features)
    for a, b in zip(first, last, strict=True):
        assert (a.status, a.problems, a.warnings, a.absent_features) == (b.status, b.problems, b.warnings,
                                                                          b.absent_features)  # fmt: skip
        assert_same(b, a)
    for result in (*first, *last):
        # the problems are the alerting checks of the features, as the same objects, in profile order
        alerting = [c for c in _checks(result) if c.status is _ALERT]
        assert [id(c) for c in result.problems if c.check != NEW_COLUMN] == [id(c) for c in alerting]
        # read again: the same objects
        assert all(result.features[n] is fq for n, fq in result.features.items())


def test_reading_one_feature_first_changes_nothing() -> None:
    profile, sketches, errors, config = _case(2)
    want = _reference(profile, sketches, errors, config)
    got = _many(profile, sketches, errors, config)
    name = list(profile.features)[-1]
    for mine, theirs in zip(got, want, strict=True):
        fq = mine.feature(name)
        assert all(_fields(fq.checks[c]) == _fields(theirs.feature(name).checks[c]) for c in fq.checks)
        assert mine.features[name] is fq and name in mine.features and "nope" not in mine.features
    for mine, theirs in zip(got, want, strict=True):
        assert_same(mine, theirs)


def test_features_read_as_the_dict_they_stand_for() -> None:
    profile, sketches, errors, config = _case(7)
    want = _reference(profile, sketches, errors, config)
    for result, theirs in zip(_many(profile, sketches, errors, config), want, strict=True):
        features = result.features
        assert isinstance(features, Mapping)
        assert len(features) == len(theirs.features) and list(features) == list(profile.features)
        with pytest.raises(KeyError):
            features["no such feature"]
        assert features.get("no such feature") is None
        assert features == theirs.features and theirs.features == features
        assert repr(features) == repr(theirs.features)
        assert list(features.keys()) == list(theirs.features.keys())
        assert list(features.values()) == list(theirs.features.values())
        assert list(features.items()) == list(theirs.features.items())
        assert dict(features) == theirs.features
        for restored in (pickle.loads(pickle.dumps(result)), copy.deepcopy(result), copy.copy(result)):
            assert restored == theirs
            assert json.dumps(restored.to_dict()) == json.dumps(theirs.to_dict())
        assert dataclasses.replace(result, config={}).features == theirs.features
        with pytest.raises(dataclasses.FrozenInstanceError):
            result.features = {}  # type: ignore[misc]
        with pytest.raises(TypeError):
            hash(result)


def test_a_pickled_result_is_the_reference_result() -> None:
    profile, sketches, errors, config = _case(11)
    want = _reference(profile, sketches, errors, config)
    for mine, theirs in zip(_many(profile, sketches, errors, config), want, strict=True):
        restored = pickle.loads(pickle.dumps(mine))
        assert type(restored.features) is dict
        assert_same(restored, theirs)
        assert repr(pickle.loads(pickle.dumps(theirs))) == repr(restored)


def test_feature_kinds_are_the_profiles() -> None:
    profile, sketches, errors, config = _case(4)
    kinds: dict[str, FeatureKind] = {
        n: NUMERIC if isinstance(fp, NumericProfile) else CATEGORICAL for n, fp in profile.features.items()
    }
    for result in _many(profile, sketches, errors, config):
        assert {n: fq.kind for n, fq in result.features.items()} == kinds
        assert all(isinstance(fp, (NumericProfile, CategoricalProfile)) for fp in profile.features.values())
        assert result.detector == DETECTOR_NAME


# --- packed windows, as the worker's ------------------------------------------------------------------------


def _packed(sketches: list[WindowSketch]) -> list[WindowSketch]:
    """The same windows held as packed arrays only, as the worker's merged windows are."""
    return [
        WindowSketch(s.profile, s.n_rows, None, s.unknown_features, packed=s._packed_form()) for s in sketches
    ]


@pytest.mark.parametrize("seed", range(80))
def test_packed_windows_are_judged_from_their_arrays_as_the_reference_judges_them(seed: int) -> None:
    """Counts read from the packed arrays of all windows at once (StackedSketches) give each window the
    reference's result; a window none of whose features alerts is never unpacked."""
    profile, sketches, errors, config = _case(seed)
    want = _reference(profile, sketches, errors, config)
    packed = _packed(sketches)
    assert all(s.is_packed for s in packed)
    got = _many(profile, packed, errors, config)
    for sketch, mine in zip(packed, got, strict=True):
        feature_problems = [p for p in mine.problems if p.check != NEW_COLUMN]
        assert sketch.is_packed == (not feature_problems)
    for mine, theirs in zip(got, want, strict=True):
        assert_same(mine, theirs)
