"""``evaluate_quality`` and ``QualityResult.to_dict`` against a frozen reference of their output.

``data/quality_reference.json.gz`` holds seeded random cases (numeric and categorical features, missing
values, type errors, out-of-range values, unseen categories, windows under ``min_window_rows``, truncated
categorical profiles, both corrections and range tests, new columns, invalid type errors) with the output
of the straightforward implementation the fast one replaced: per case the profile and sketch (as their
``to_dict``), the type errors and config, then ``json.dumps(result.to_dict())`` (key order kept) and
``repr(result)`` (every field of every object, with its Python type), or the error raised. The fast path
must reproduce both strings exactly: same keys, same order, the same floats bit for bit.

The cases are rebuilt from the stored inputs, not from the seeds, so that later changes to profile or
sketch building do not move them; ``build_case(seed)`` documents how each was made, and
``python -m tests.detectors.test_quality_fast --write`` rewrites the file (only ever with an implementation
known to be right). On 2026-11-29 the status enum became ``detectors.base.AlertStatus`` (``QualityStatus``
is its alias), so the stored ``repr`` strings name it; nothing else in them was changed, and that was checked
case by case before rewriting them.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import pickle
import sys
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import pytest
from scipy import special

from detectors.base import InputError, json_safe
from detectors.drift import ReferenceProfile, WindowSketch, build_profile
from detectors.drift.correction import CORRECTIONS
from detectors.quality import (
    Check,
    QualityConfig,
    QualityResult,
    QualityStatus,
    evaluate_quality,
    fisher_greater,
    outside_range_pvalue,
)
from detectors.quality import stats as quality_stats
from detectors.quality.stats import RANGE_TESTS, clear_caches, fisher_pvalues, range_pvalues

DATA = Path(__file__).parent / "data" / "quality_reference.json.gz"
N_CASES = 400

# --- how each case was made ------------------------------------------------------------------------------


def _config(rng: np.random.Generator) -> dict[str, Any]:
    if rng.random() < 0.3:
        return {}
    out: dict[str, Any] = {
        "alpha": float(rng.choice([0.005, 0.05, 0.2, 0.5])),
        "correction": str(rng.choice(CORRECTIONS)),
        "missing_floor": [0.05, 0.0, 0, 0.01, 0.2][rng.integers(5)],  # 0 (int) keeps its type in the output
        "range_floor": [0.01, 0.0, 0, 0.001, 0.1, 1.0, 1][rng.integers(7)],
        "range_test": str(rng.choice(RANGE_TESTS)),
        "type_error_floor": [0.01, 0.001, 0.5, 1.0, 1][rng.integers(5)],
        "type_errors_counted_as_missing": bool(rng.random() < 0.5),
        "new_columns_alert": bool(rng.random() < 0.3),
        "min_window_rows": int(rng.choice([100, 1, 10, 50, 300])),
        "min_reference_rows": int(rng.choice([100, 2, 20, 500])),
    }
    # drop some keys so defaults mix with set values
    return {k: v for k, v in out.items() if rng.random() < 0.8}


def _numeric(rng: np.random.Generator, n: int, shift: float, scale: float, missing: float) -> np.ndarray:
    shape = rng.integers(4)
    if shape == 0:
        x = rng.normal(shift, scale, size=n)
    elif shape == 1:
        x = rng.uniform(shift, shift + scale, size=n)
    elif shape == 2:
        x = rng.integers(0, 5, size=n).astype(np.float64) * scale + shift  # ties
    else:
        x = rng.exponential(scale, size=n) + shift
    x[rng.random(n) < missing] = np.nan
    if rng.random() < 0.1:
        x[rng.random(n) < 0.01] = np.inf
    return x


def _categorical(rng: np.random.Generator, n: int, alphabet: list[str], missing: float) -> np.ndarray:
    weights = 1.0 / np.arange(1, len(alphabet) + 1) ** rng.uniform(0.5, 2.5)  # Zipf-like: rare ones too
    c = rng.choice(np.array(alphabet, dtype=object), p=weights / weights.sum(), size=n)
    c[rng.random(n) < missing] = None
    return c


def _missing_share(rng: np.random.Generator) -> float:
    return float(rng.choice([0.0, 0.0, 0.005, 0.02, 0.1, 0.4, 1.0]))


def build_case(seed: int) -> tuple[ReferenceProfile, WindowSketch, Any, dict[str, Any]]:
    """Profile, sketch, type errors (a dict, None, or an invalid mapping) and config kwargs of one case."""
    rng = np.random.default_rng(seed)
    big = seed % 25 == 0  # a few cases of the benchmark's size
    n_num = 20 if big else int(rng.integers(0, 6))
    n_cat = 3 if big else int(rng.integers(0 if n_num else 1, 5))
    n_ref = 10_000 if big else int(rng.choice([1, 5, 30, 99, 150, 1000, 5000]))
    alphabets = {f"c{i}": [f"k{j}" for j in range(int(rng.choice([1, 3, 8, 30, 200])))] for i in range(n_cat)}
    ref: dict[str, np.ndarray] = {}
    for i in range(n_num):
        ref[f"x{i}"] = _numeric(rng, n_ref, 0.0, 1.0, _missing_share(rng) if rng.random() < 0.5 else 0.0)
    for name, alphabet in alphabets.items():
        ref[name] = _categorical(rng, n_ref, alphabet, _missing_share(rng) if rng.random() < 0.5 else 0.0)
    fine = int(rng.choice([5, 10, 20]))
    profile = build_profile(
        ref,
        fine_bins=fine,
        coarse_bins=int(rng.integers(2, fine + 1)),
        max_categories=int(rng.choice([1000, 1000, 3, 5])),
    )

    sketch = WindowSketch.empty(profile)
    for _ in range(int(rng.integers(0, 4))):
        rows = 1000 if big else int(rng.choice([0, 1, 5, 50, 99, 100, 200, 1000, 3000]))
        batch: dict[str, np.ndarray] = {}
        for i in range(n_num):
            if rng.random() < 0.05:
                continue  # absent from the batch: missing in every row
            drift = rng.random() < 0.3
            shift = float(rng.normal(0, 2)) if drift else 0.0
            scale = float(rng.uniform(0.5, 3)) if drift else 1.0
            batch[f"x{i}"] = _numeric(rng, rows, shift, scale, _missing_share(rng))
        for name, alphabet in alphabets.items():
            if rng.random() < 0.05:
                continue
            extra = int(rng.choice([0, 0, 2, 15, 150]))
            batch[name] = _categorical(
                rng, rows, alphabet + [f"new{j}" for j in range(extra)], _missing_share(rng)
            )
        for j in range(int(rng.choice([0, 0, 0, 1, 3]))):
            batch[f"new_col_{j}"] = rng.normal(size=rows)
        sketch = sketch.update(batch)

    config = _config(rng)
    counted = config.get("type_errors_counted_as_missing", True)
    errors: Any = None if rng.random() < 0.2 else {}
    if errors is not None:
        for name, window in sketch.features.items():
            if rng.random() < 0.5:
                limit = window.missing if counted else sketch.n_rows
                count = int(rng.integers(0, limit + 1)) if rng.random() < 0.7 else limit
                errors[name] = np.int64(count) if rng.random() < 0.2 else count
        if rng.random() < 0.04 and profile.features:
            name = next(iter(profile.features))
            errors[name] = [-1, sketch.n_rows + 1, True, 1.5][rng.integers(4)]
        elif rng.random() < 0.02:
            errors["not_a_feature"] = 0
    return profile, sketch, errors, config


# --- the frozen reference -------------------------------------------------------------------------------


def _encode_errors(errors: Any) -> Any:
    if errors is None:
        return None
    return [
        [name, type(v).__name__, v.item() if isinstance(v, np.generic) else v] for name, v in errors.items()
    ]


def _decode_errors(encoded: Any) -> Any:
    if encoded is None:
        return None
    out: dict[str, Any] = {}
    for name, kind, value in encoded:
        out[name] = np.int64(value) if kind == "int64" else value
    return out


def _outcome(
    profile: ReferenceProfile, sketch: WindowSketch, errors: Any, config: dict[str, Any]
) -> dict[str, Any]:
    try:
        result = evaluate_quality(profile, sketch, errors, QualityConfig(**config))
    except InputError as exc:
        return {"error": [type(exc).__name__, str(exc)]}
    assert isinstance(result, QualityResult)
    return {"result": json.dumps(result.to_dict(), sort_keys=False, allow_nan=False), "repr": repr(result)}


def write_reference() -> None:
    cases = []
    for seed in range(N_CASES):
        profile, sketch, errors, config = build_case(seed)
        cases.append(
            {
                "seed": seed,
                "profile": profile.to_dict(),
                "sketch": sketch.to_dict(),
                "type_errors": _encode_errors(errors),
                "config": config,
                **_outcome(profile, sketch, errors, config),
            }
        )
    DATA.parent.mkdir(exist_ok=True)
    with gzip.open(DATA, "wt", encoding="utf-8") as f:
        json.dump({"version": 1, "cases": cases}, f, sort_keys=False, separators=(",", ":"))


def _load() -> list[dict[str, Any]]:
    with gzip.open(DATA, "rt", encoding="utf-8") as f:
        cases: list[dict[str, Any]] = json.load(f)["cases"]
    return cases


CASES = _load() if DATA.exists() else []


def test_reference_covers_the_cases_it_claims() -> None:
    assert len(CASES) == N_CASES
    results = [json.loads(c["result"]) for c in CASES if "result" in c]
    assert sum("error" in c for c in CASES) >= 3
    checks = [ch for r in results for f in r["features"].values() for ch in f["checks"].values()]
    statuses = {(ch["check"], ch["status"]) for ch in checks}
    for check in ("missing_rate", "out_of_range", "out_of_domain", "type_errors"):
        for status in ("ok", "alert", "insufficient_data"):
            assert (check, status) in statuses, (check, status)
    assert any(r["absent_features"] for r in results)
    assert any(r["new_columns"] for r in results)
    assert any(r["warnings"] for r in results)
    assert any("reason" in ch["extra"] for ch in checks if ch["check"] == "out_of_domain")  # truncated
    assert any(ch["extra"].get("unseen_untracked") for ch in checks)
    assert {r["config"]["range_test"] for r in results} == set(RANGE_TESTS)
    assert {r["config"]["correction"] for r in results} == set(CORRECTIONS)
    assert any(0.0 < (ch["p_value"] or 1.0) < 1e-12 for ch in checks)


@pytest.mark.parametrize("case", CASES, ids=[str(c["seed"]) for c in CASES])
def test_output_matches_reference(case: dict[str, Any]) -> None:
    profile = ReferenceProfile.from_dict(case["profile"])
    sketch = WindowSketch.from_dict(case["sketch"], profile)
    outcome = _outcome(profile, sketch, _decode_errors(case["type_errors"]), case["config"])
    if "error" in case:
        assert outcome == {"error": case["error"]}
        return
    assert outcome.get("result") == case["result"]
    assert outcome.get("repr") == case["repr"]


def test_to_dict_is_fresh_each_call() -> None:
    """Callers may change what ``to_dict`` returns without changing the result or the next call."""
    profile = ReferenceProfile.from_dict(CASES[0]["profile"])
    sketch = WindowSketch.from_dict(CASES[0]["sketch"], profile)
    result = evaluate_quality(profile, sketch, None, QualityConfig(**CASES[0]["config"]))
    first = result.to_dict()
    expected = json.dumps(first)
    first["config"]["alpha"] = -1
    first["problems"].append("x")
    for feature in first["features"].values():
        for check in feature["checks"].values():
            check["extra"]["changed"] = True
            check["extra"].get("unseen_categories", {})["changed"] = 1
    assert json.dumps(result.to_dict()) == expected
    assert result.config["alpha"] != -1
    again = evaluate_quality(profile, sketch, None, QualityConfig(**CASES[0]["config"]))
    assert json.dumps(again.to_dict()) == expected


def _rebuilt(case: dict[str, Any]) -> tuple[ReferenceProfile, WindowSketch, Any, dict[str, Any]]:
    profile = ReferenceProfile.from_dict(case["profile"])
    return (
        profile,
        WindowSketch.from_dict(case["sketch"], profile),
        _decode_errors(case["type_errors"]),
        case["config"],
    )


def test_remembered_p_values_change_nothing() -> None:
    """Every case again, backwards, from no remembered p-value, then with all of them remembered."""
    rebuilt = [(case, _rebuilt(case)) for case in reversed(CASES)]
    for clear in (True, False):
        if clear:
            clear_caches()
        for case, (profile, sketch, errors, config) in rebuilt:
            outcome = _outcome(profile, sketch, errors, config)
            assert outcome == {k: case[k] for k in ("error", "result", "repr") if k in case}, case["seed"]


# --- the pieces the fast path stands on ------------------------------------------------------------------


def _lse_rows(rng: np.random.Generator, rows: int, width: int) -> np.ndarray:
    a = rng.normal(0.0, float(rng.choice([1e-3, 1.0, 30.0, 700.0])), size=(rows, width)) - float(
        rng.choice([0.0, 50.0, 1e4])
    )
    lengths = rng.integers(1, width + 1, size=rows)
    a[np.arange(width)[None, :] >= lengths[:, None]] = -np.inf  # padded like betabinom_sf's terms
    if rng.random() < 0.3:  # ties at the maximum
        a[:, min(1, width - 1)] = a[:, 0]
    return a


def test_logsumexp_rows_is_scipys_bit_for_bit() -> None:
    rng = np.random.default_rng(7)
    for _ in range(2000):
        a = _lse_rows(rng, int(rng.integers(1, 9)), int(rng.integers(1, 40)))
        ours, theirs = quality_stats._logsumexp_rows(a), special.logsumexp(a, axis=1)
        assert ours.tobytes() == np.asarray(theirs, dtype=np.float64).tobytes()
    # rows without a finite maximum, overflow, no columns: scipy's own answer
    for a in (
        np.array([[-np.inf, -np.inf], [0.0, 1.0]]),
        np.array([[np.nan, 1.0], [0.0, np.inf]]),
        np.array([[1e308, 1e308], [0.0, 0.0]]),
        np.zeros((2, 0)),
    ):
        ours, theirs = quality_stats._logsumexp_rows(a), special.logsumexp(a, axis=1)
        np.testing.assert_array_equal(ours, theirs)


def _range_pool(rng: np.random.Generator) -> list[tuple[int, int, int, int]]:
    rows = []
    for _ in range(60):
        n = int(rng.choice([2, 10, 100, 1000, 10_000, 100_000]))
        m = int(rng.integers(1, 3000))
        c = int(rng.choice([0, 0, 1, 2, 5, 40, m]))
        k = int(min(rng.choice([1, 2, 2, 3, 9, 17, 40, 130]), n))
        rows.append((min(c, m), m, n, k))
    return rows


@pytest.mark.parametrize("test", RANGE_TESTS)
def test_range_pvalues_equal_the_array_function_whatever_is_remembered(test: str) -> None:
    """Each batch against the array function on exactly that batch, while the p-values remembered come from
    other batches sharing rows with it (a beta-binomial p-value is remembered with the width its batch sums
    to, so a row recurs under several widths)."""
    rng = np.random.default_rng(11)
    pool = _range_pool(rng)
    clear_caches()
    batches = [
        [pool[i] for i in rng.integers(0, len(pool), size=int(rng.integers(1, 12)))] for _ in range(600)
    ]
    for batch in batches:
        expected = outside_range_pvalue(*np.array(batch, dtype=np.int64).T, test=test).tolist()
        got = range_pvalues(batch, test)
        assert [float(x).hex() for x in got] == [float(x).hex() for x in expected], batch
        # each row with the widest row only gives the same bits: the rows of a batch do not interact
        widest = max(batch, key=lambda r: r[3] if 1 <= r[0] <= r[1] else 0)
        pairs = outside_range_pvalue(
            *np.array([x for row in batch for x in (row, widest)], dtype=np.int64).T, test=test
        )[::2]
        assert [float(x).hex() for x in pairs] == [float(x).hex() for x in got], batch


def test_range_and_fisher_pvalues_take_what_the_array_functions_take() -> None:
    odd = [
        (np.int64(3), 100, np.int64(1000), 2),
        (0, 0, 10, 2),
        (5, 3, 10, 2),
        (-1, 10, 10, 2),
        (2.0, 10, 10, 2),
    ]
    for test in RANGE_TESTS:
        expected = outside_range_pvalue(*np.array(odd, dtype=np.int64).T, test=test).tolist()
        assert range_pvalues(odd, test) == expected
        assert range_pvalues([], test) == []
    with pytest.raises(ValueError, match="unknown range test"):
        range_pvalues([(1, 10, 10, 2)], "normal")
    fisher = [
        (0, 100, 5, 1000),
        (3, 100, 1000, 1000),
        (3, 100, 5, 1000),
        (np.int64(3), 100, 5, 1000),
        (2.0, 10, 1, 10),
    ]
    assert fisher_pvalues(fisher) == fisher_greater(*np.array(fisher, dtype=np.int64).T).tolist()


def test_fisher_pvalues_equal_the_array_function_whatever_is_remembered() -> None:
    rng = np.random.default_rng(5)
    clear_caches()
    batches = []
    for _ in range(300):
        nw = rng.integers(1, 2000, size=int(rng.integers(1, 10)))
        nr = rng.choice([1, 50, 1000, 10_000], size=nw.size)
        xw = np.minimum(rng.choice([0, 0, 1, 3, 20, 300], size=nw.size), nw)
        xr = np.minimum(rng.choice([0, 1, 30, 10_000], size=nw.size), nr)
        batches.append([tuple(int(x) for x in row) for row in zip(xw, nw, xr, nr, strict=True)])
    for _ in range(2):
        for batch in batches:
            expected = fisher_greater(*np.array(batch, dtype=np.int64).T).tolist()
            assert [x.hex() for x in fisher_pvalues(batch)] == [float(x).hex() for x in expected]


def _result_objects(result: QualityResult) -> list[Any]:
    out: list[Any] = [*result.new_columns]
    for fq in result.features.values():
        out.append(fq)
        out += list(fq.checks.values())
    return out


def test_fast_builders_make_what_the_constructors_make() -> None:
    """Check and FeatureQuality are built by filling ``__dict__``: the same objects as ``cls(...)``."""
    for case in CASES[::10]:
        if "error" in case:
            continue
        profile, sketch, errors, config = _rebuilt(case)
        result = evaluate_quality(profile, sketch, errors, QualityConfig(**config))
        for obj in _result_objects(result):
            state = vars(obj)
            rebuilt = type(obj)(**{f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)})
            assert rebuilt == obj and repr(rebuilt) == repr(obj)
            assert list(vars(rebuilt).items()) == list(state.items())  # same fields, same order, nothing else
            assert pickle.loads(pickle.dumps(obj)) == obj
            with pytest.raises(dataclasses.FrozenInstanceError):
                obj.status = QualityStatus.OK  # type: ignore[misc]


def _generic_check_dict(c: Check) -> dict[str, Any]:
    out: dict[str, Any] = json_safe(dataclasses.asdict(c))
    out["status"] = c.status.value
    return out


def _generic_problem(c: Check) -> dict[str, Any]:
    keys = ("value", "expected", "count", "n", "p_value", "p_adjusted", "floor")
    out: dict[str, Any] = json_safe(
        {"check": c.problem_check, "feature": c.feature, **{k: getattr(c, k) for k in keys}}
    )
    return out


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"value": float("nan"), "p_value": float("inf"), "floor": 0},
        {"value": np.float64(0.25), "count": np.int64(3), "n": np.int32(12)},
        {"p_adjusted": np.float32(0.5), "expected": True},
        {"extra": {"a": np.int64(1), "b": float("-inf"), "c": {"x": 1}}},
        {"extra": {"a": (1, 2.5, float("nan")), "b": [np.float64(1.0)], "c": {"k": {"deep": np.nan}}}},
        {"extra": {1: "int key", "s": {2: 3}}},
        {"extra": MappingProxyType({"a": 1, "b": {"c": 2.0}})},
        {"extra": {"tracked": frozenset({"b", "a"}), "status": QualityStatus.ALERT}},
        {"feature": np.str_("x"), "test": None, "check": "missing_rate"},
        {"extra": {"absent": True}, "check": "missing_rate"},
    ],
)
def test_to_dict_and_problem_equal_the_generic_json_safe_forms(changes: dict[str, Any]) -> None:
    base = Check("out_of_range", "x", QualityStatus.ALERT, 0.1, 0.002, 3, 30, "betabinomial", 1e-9, 2e-8, 0.01,
                 {"below": 1, "above": 2, "window_min": -1.5, "nested": {"a": 1}})  # fmt: skip
    check = dataclasses.replace(base, **changes)
    assert json.dumps(check.problem()) == json.dumps(_generic_problem(check))
    try:
        generic = _generic_check_dict(check)
    except TypeError as exc:  # asdict cannot copy a mappingproxy: the fast path must not hide that
        with pytest.raises(type(exc)):
            check.to_dict()
        return
    assert json.dumps(check.to_dict()) == json.dumps(generic)
    assert check.to_dict() == generic


def test_result_to_dict_config_takes_any_mapping() -> None:
    profile, sketch, errors, config = _rebuilt(CASES[1])
    result = evaluate_quality(profile, sketch, errors, QualityConfig(**config))
    odd: Mapping[str, Any] = MappingProxyType({"alpha": np.float64(0.01), "x": float("nan"), "y": (1, 2)})
    for cfg in (odd, {"alpha": 0.01, "nested": {"a": np.int64(2)}}, {}):
        out = dataclasses.replace(result, config=cfg).to_dict()
        assert json.dumps(out["config"]) == json.dumps(json_safe(cfg))


def test_config_to_dict_is_json_safe_asdict_and_fresh() -> None:
    for kwargs in (
        {},
        {"range_floor": 0, "missing_floor": 0.2, "correction": "bh", "new_columns_alert": True},
    ):
        config = QualityConfig(**kwargs)  # type: ignore[arg-type]
        first = config.to_dict()
        assert json.dumps(first) == json.dumps(json_safe(dataclasses.asdict(config)))
        first["alpha"] = 0.9
        assert config.to_dict()["alpha"] == config.alpha
        assert config == QualityConfig(**kwargs) and repr(config) == repr(QualityConfig(**kwargs))  # type: ignore[arg-type]
        assert pickle.loads(pickle.dumps(config)) == config


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python -m tests.detectors.test_quality_fast --write")
    write_reference()
    print(f"wrote {DATA} ({DATA.stat().st_size} bytes)")
