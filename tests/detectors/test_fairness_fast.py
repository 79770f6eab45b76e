"""The fast ``evaluate_fairness`` / ``FairnessResult.to_dict`` give exactly the output of the old ones.

``data/fairness_reference.json.gz`` (gzipped JSON, 3.4 MB unpacked) was written by the implementation
*before* the speed-up (numpy-vectorised metrics and intervals, ``asdict`` + ``json_safe`` in ``to_dict``),
from the seeded count tables of ``_cases`` below: 1 to 3 attributes (with and without an intersection), 1
to 8 groups, labelled, partly labelled and unlabelled windows, empty windows, empty and tiny groups, groups
without positives, tied groups, and several configs (confidence, min_group_size, thresholds, label
coverage, pairwise correction) so that alerts, ``None`` values and clipped intervals all occur. Each case
keeps its inputs, the expected ``to_dict()`` and a digest of the result *objects* (every dataclass field
with its exact type and, for floats, its bits).

The comparison is exact: ``json.dumps`` strings (so 1 vs 1.0, -0.0 vs 0.0 and key order all count) and the
object digest. One platform caveat: the ratio (Katz) intervals come from numpy's ``log`` and ``exp``,
whose last bit depends on the CPU's SIMD code path, and did before the speed-up too. The fixture records a
fingerprint of numpy's ``log``/``exp``; where it differs, those intervals are compared to 4 ulps and the
object digest is skipped, everything else stays exact. ``test_scalar_intervals_*`` compare the new scalar
intervals with the vectorised ones bit for bit on the machine at hand, whatever it is.

Regenerate only from the reference implementation:
``.venv/bin/python tests/detectors/test_fairness_fast.py --write``.

On 2026-11-29 the status enum became ``detectors.base.AlertStatus`` (``FairnessStatus`` is its alias), so
the object digests were recomputed with that class name; each was first checked to equal the stored one
with the old name, so nothing else moved.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import math
import pickle
import struct
import sys
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np
import pytest

if __name__ == "__main__":  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from detectors.fairness import COLUMNS, FairnessConfig, FairnessCounts, evaluate_fairness, intervals
from detectors.fairness import detector as fairness_detector

FIXTURE = Path(__file__).resolve().parent / "data" / "fairness_reference.json.gz"


def snapshot(obj: Any) -> Any:
    """Every dataclass field of a result, with exact types (``float.hex`` for floats), as JSON data."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        fields = [[f.name, snapshot(getattr(obj, f.name))] for f in dataclasses.fields(obj)]
        return {"dataclass": type(obj).__name__, "fields": fields}
    if isinstance(obj, Enum):
        return {"enum": type(obj).__name__, "value": obj.value}
    if isinstance(obj, dict):
        return {"dict": type(obj).__name__, "items": [[snapshot(k), snapshot(v)] for k, v in obj.items()]}
    if isinstance(obj, (tuple, list)):
        return {type(obj).__name__: [snapshot(v) for v in obj]}
    if type(obj) is float:
        return {"float": obj.hex()}
    if obj is None or type(obj) in (bool, int, str):
        return {type(obj).__name__: obj}
    raise TypeError(f"unexpected type in a fairness result: {type(obj)!r}")


def objects_digest(result: Any) -> str:
    return hashlib.sha256(json.dumps(snapshot(result)).encode()).hexdigest()


def _dumps(data: Any) -> str:
    return json.dumps(data, allow_nan=False)


def log_exp_fingerprint() -> str:
    """Which last bits numpy's float64 ``log`` and ``exp`` give on this machine (they vary with SIMD)."""
    rng = np.random.default_rng(7)
    x = rng.uniform(1e-6, 60.0, 4096)
    y = rng.uniform(-30.0, 30.0, 4096)
    return hashlib.sha256(np.log(x).tobytes() + np.exp(y).tobytes()).hexdigest()


# --- the seeded inputs (used only to write the fixture; the test reads the inputs stored in it) ---------


def _group_row(rng: np.random.Generator, kind: str, labels: str) -> list[int]:
    """One consistent row of ``COLUMNS`` counts."""
    if kind == "empty":
        n = 0
    elif kind == "tiny":
        n = int(rng.integers(1, 6))
    elif kind == "small":
        n = int(rng.integers(6, 120))
    elif kind == "huge":
        n = int(rng.integers(10**5, 10**6))
    else:
        n = int(rng.integers(80, 3000))
    if labels == "none":
        n_labelled = 0
    elif labels == "all":
        n_labelled = n
    else:
        n_labelled = int(rng.binomial(n, rng.uniform(0.0, 1.0)))
    shape = rng.choice(["random", "no_pos_pred", "all_pos_pred", "no_pos_label", "no_neg_label", "perfect"])
    p_pred = {"no_pos_pred": 0.0, "all_pos_pred": 1.0}.get(str(shape), float(rng.uniform(0.05, 0.95)))
    p_true = {"no_pos_label": 0.0, "no_neg_label": 1.0}.get(str(shape), float(rng.uniform(0.05, 0.95)))
    pred = rng.random(n_labelled) < p_pred
    true = pred.copy() if shape == "perfect" else rng.random(n_labelled) < p_true
    tp, fp = int((pred & true).sum()), int((pred & ~true).sum())
    tn, fn = int((~pred & ~true).sum()), int((~pred & true).sum())
    unlabelled_pos = int(rng.binomial(n - n_labelled, p_pred))
    return [n, tp + fp + unlabelled_pos, n_labelled, tp, fp, tn, fn]


def _table(rng: np.random.Generator, n_groups: int, labels: str) -> dict[str, Any]:
    kinds = rng.choice(["empty", "tiny", "small", "normal", "normal", "normal", "huge"], size=n_groups)
    groups = sorted({f"g{int(v)}" for v in rng.choice(50, size=n_groups, replace=False)})
    rows = [_group_row(rng, str(k), labels) for k in kinds[: len(groups)]]
    if len(rows) >= 2 and rng.random() < 0.25:  # tied groups: same counts, different labels
        rows[-1] = list(rows[0])
    return {"groups": groups, "counts": rows}


def _config(
    rng: np.random.Generator, attributes: list[str], intersections: list[list[str]]
) -> dict[str, Any]:
    cfg: dict[str, Any] = {"attributes": attributes, "intersections": intersections}
    if rng.random() < 0.3:
        return cfg  # the defaults
    cfg["min_group_size"] = int(rng.choice([1, 2, 5, 30, 100, 500]))
    cfg["confidence"] = float(rng.choice([0.5, 0.8, 0.9, 0.95, 0.99, 0.999]))
    cfg["dp_difference_threshold"] = float(rng.choice([0.0, 0.02, 0.1, 0.3]))
    cfg["dp_ratio_threshold"] = float(rng.choice([0.5, 0.8, 0.95, 1.0]))
    cfg["eo_difference_threshold"] = float(rng.choice([0.0, 0.05, 0.1]))
    cfg["eodds_difference_threshold"] = float(rng.choice([0.0, 0.05, 0.1, 0.5]))
    cfg["predictive_parity_threshold"] = float(rng.choice([0.0, 0.05, 0.1]))
    cfg["min_label_coverage"] = float(rng.choice([0.0, 0.3, 0.5, 1.0]))
    cfg["pairwise_correction"] = str(rng.choice(["bonferroni", "none"]))
    return cfg


def _counts_from_tables(rng: np.random.Generator, n_attributes: int) -> tuple[dict[str, Any], dict[str, Any]]:
    attributes = [f"attr{i}" for i in range(n_attributes)]
    intersections = [[attributes[0], attributes[1]]] if n_attributes >= 2 and rng.random() < 0.4 else []
    labels = str(rng.choice(["none", "all", "some", "some"]))
    names = attributes + [f"{a}&{b}" for a, b in intersections]
    tables = {}
    for name in names:
        n_groups = 0 if rng.random() < 0.05 else int(rng.integers(1, 9))
        tables[name] = _table(rng, n_groups, labels)
    n_rows = max((sum(r[0] for r in t["counts"]) for t in tables.values()), default=0)
    counts = {
        "version": 1,
        "columns": list(COLUMNS),
        "attributes": attributes,
        "intersections": intersections,
        "n_rows": n_rows,
        "tables": tables,
    }
    return counts, _config(rng, attributes, intersections)


def _counts_from_rows(rng: np.random.Generator) -> tuple[dict[str, Any], dict[str, Any]]:
    """A window as the stream worker builds it: ``update`` on rows."""
    n = int(rng.choice([0, 1, 7, 50, 300, 1000, 1000, 5000]))
    attributes = ["gender", "age_band"] + (["region"] if rng.random() < 0.3 else [])
    values = {
        "gender": np.array(["f", "m", None], dtype=object)[: int(rng.integers(1, 4))],
        "age_band": np.array(["18-30", "31-50", "51+", "65+"], dtype=object)[: int(rng.integers(1, 5))],
        "region": np.array([f"r{i}" for i in range(8)], dtype=object)[: int(rng.integers(1, 9))],
    }
    groups = {a: rng.choice(values[a], size=n) for a in attributes}
    y_pred = (rng.random(n) < rng.uniform(0.0, 1.0)).astype(np.int64)
    mode = str(rng.choice(["none", "all", "some"]))
    y_true = None
    if mode != "none":
        y_true = (rng.random(n) < rng.uniform(0.0, 1.0)).astype(np.float64)
        if mode == "some":
            y_true[rng.random(n) < rng.uniform(0.0, 1.0)] = np.nan
    intersections = [["gender", "age_band"]] if rng.random() < 0.3 else []
    counts = FairnessCounts.empty(attributes, intersections).update(groups, y_pred, y_true)
    return counts.to_dict(), _config(rng, attributes, intersections)


def _cases() -> list[tuple[dict[str, Any], dict[str, Any]]]:
    rng = np.random.default_rng(20240611)
    cases = [_counts_from_rows(rng) for _ in range(60)]
    for n_attributes in (1, 2, 2, 3):
        cases += [_counts_from_tables(rng, n_attributes) for _ in range(45)]
    return cases


def write_fixture() -> None:
    out: list[dict[str, Any]] = []
    for counts_data, config_data in _cases():
        counts = FairnessCounts.from_dict(counts_data)
        result = evaluate_fairness(counts, FairnessConfig(**config_data))
        data = result.to_dict()
        out.append(
            {
                "config": config_data,
                "counts": counts_data,
                "expected": json.loads(_dumps(data)),
                "objects_sha256": objects_digest(result),
            }
        )
    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    fixture = {"numpy_log_exp": log_exp_fingerprint(), "cases": out}
    FIXTURE.write_bytes(gzip.compress((json.dumps(fixture, separators=(",", ":")) + "\n").encode(), mtime=0))
    alerts = sum(bool(c["expected"]["alerts"]) for c in out)
    print(f"wrote {len(out)} cases ({alerts} with alerts) to {FIXTURE}")


# --- the test -------------------------------------------------------------------------------------------


def _reference() -> dict[str, Any]:
    fixture: dict[str, Any] = json.loads(gzip.decompress(FIXTURE.read_bytes()))
    return fixture


FIXTURE_DATA = _reference() if FIXTURE.exists() else {"numpy_log_exp": "", "cases": []}
REFERENCE: list[dict[str, Any]] = FIXTURE_DATA["cases"]
SAME_LOG_EXP = FIXTURE_DATA["numpy_log_exp"] == log_exp_fingerprint()


def _from_log_exp(path: tuple[Any, ...], expected_root: dict[str, Any]) -> bool:
    """Is this JSON path a ratio (Katz) interval, the one thing that numpy's log and exp decide?"""
    match path:
        case ("attributes", _, "ratio", _, "interval"):
            return True
        case ("attributes", _, "gaps", "demographic_parity_ratio", "interval"):
            return True
        case ("alerts", int(i), "interval"):
            return bool(expected_root["alerts"][i]["metric"] == "demographic_parity_ratio")
    return False


def _assert_equal_but_katz_ulps(
    actual: Any, expected: Any, root: dict[str, Any], path: tuple[Any, ...] = ()
) -> None:
    """Exact equality, types included, except ratio intervals: within 4 ulps (another SIMD path)."""
    if isinstance(expected, list) and expected and _from_log_exp(path, root):
        assert isinstance(actual, list) and len(actual) == len(expected), path
        for a, e in zip(actual, expected):
            assert (a is None and e is None) or abs(a - e) <= 4 * math.ulp(e), (path, a, e)
        return
    assert type(actual) is type(expected), (path, actual, expected)
    if isinstance(expected, dict):
        assert list(actual) == list(expected), path
        for key in expected:
            _assert_equal_but_katz_ulps(actual[key], expected[key], root, (*path, key))
    elif isinstance(expected, list):
        assert len(actual) == len(expected), path
        for i, (a, e) in enumerate(zip(actual, expected)):
            _assert_equal_but_katz_ulps(a, e, root, (*path, i))
    else:
        assert _dumps(actual) == _dumps(expected), (path, actual, expected)


def test_fixture_covers_the_edge_cases() -> None:
    assert len(REFERENCE) >= 200
    alerts = [c for c in REFERENCE if c["expected"]["alerts"]]
    labelled = [c for c in REFERENCE if any(t["counts"] and any(r[2] for r in t["counts"])
                                            for t in c["counts"]["tables"].values())]  # fmt: skip
    unlabelled = [c for c in REFERENCE if all(r[2] == 0 for t in c["counts"]["tables"].values()
                                              for r in t["counts"])]  # fmt: skip
    empty_groups = [c for c in REFERENCE if any(r[0] == 0 for t in c["counts"]["tables"].values()
                                                for r in t["counts"])]  # fmt: skip
    no_groups = [c for c in REFERENCE if any(not t["groups"] for t in c["counts"]["tables"].values())]
    assert min(len(alerts), len(labelled), len(unlabelled), len(empty_groups), len(no_groups)) >= 5


@pytest.mark.parametrize("i", range(len(REFERENCE)))
def test_to_dict_and_result_objects_equal_the_reference(i: int) -> None:
    case = REFERENCE[i]
    counts = FairnessCounts.from_dict(case["counts"])
    config = FairnessConfig(**case["config"])
    result = evaluate_fairness(counts, config)
    data = result.to_dict()
    if SAME_LOG_EXP:
        assert data == case["expected"]
        assert _dumps(data) == _dumps(case["expected"])  # exact: float bits, int vs float, key order
        assert objects_digest(result) == case["objects_sha256"]
    else:  # another numpy log/exp: the ratio intervals may move by an ulp, the rest may not
        _assert_equal_but_katz_ulps(data, case["expected"], case["expected"])
    # a second evaluation (warm caches) and a second to_dict give the same again
    again = evaluate_fairness(counts, FairnessConfig(**case["config"]))
    assert _dumps(again.to_dict()) == _dumps(data) and _dumps(result.to_dict()) == _dumps(data)
    assert objects_digest(again) == objects_digest(result)


def test_to_dict_returns_fresh_containers() -> None:
    """Cached pieces (e.g. the config) must not leak: mutating one output leaves the next one intact."""
    case = REFERENCE[0]
    counts = FairnessCounts.from_dict(case["counts"])
    config = FairnessConfig(**case["config"])
    first = evaluate_fairness(counts, config).to_dict()
    first["config"]["attributes"].append("tampered")
    first["config"]["min_group_size"] = -1
    for attr in first["attributes"].values():
        attr["eligible"].append("tampered")
    assert _dumps(evaluate_fairness(counts, config).to_dict()) == _dumps(case["expected"])


def _bits(values: Any) -> list[Any]:
    """Floats as their bits, every NaN as one value (0/0 gives a negative NaN on x86, math.nan does not)."""
    return [None if math.isnan(v) else struct.pack("<d", v) for v in np.asarray(values, dtype=float).tolist()]


def _random_counts(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    trials = rng.choice([0, 1, 2, 5, 30, 100, 1000, 10**6], size=size) + rng.integers(0, 50, size=size)
    trials[rng.random(size) < 0.05] = 0
    successes = rng.binomial(trials, rng.choice([0.0, 0.01, 0.3, 0.5, 0.9, 1.0], size=size))
    return successes, trials


CONFIDENCES = [0.5, 0.8, 0.9, 0.95, 0.99, 0.999, 1.0 - 0.05 / 28, 1.0 - (1.0 - 0.9) / 3]


def test_z_scalar_is_z_value() -> None:
    for c in CONFIDENCES:
        assert struct.pack("<d", intervals.z_scalar(c)) == struct.pack("<d", float(intervals.z_value(c)))


def test_scalar_intervals_equal_the_vectorised_ones_bit_for_bit() -> None:
    rng = np.random.default_rng(11)
    x1, n1 = _random_counts(rng, 4000)
    x2, n2 = _random_counts(rng, 4000)
    conf = rng.choice(CONFIDENCES, size=4000)
    zs = [intervals.z_scalar(c) for c in conf.tolist()]
    pairs = list(zip(x1.tolist(), n1.tolist(), x2.tolist(), n2.tolist()))
    with np.errstate(all="ignore"):
        w_low, w_high = intervals.wilson_interval(x1, n1, conf)
        d_low, d_high = intervals.newcombe_difference(x1, n1, x2, n2, conf)
        r_low, r_high = intervals.katz_ratio(x1, n1, x2, n2, conf)
    wilson = [intervals.wilson_bounds(a, n, z) for (a, n, _, _), z in zip(pairs, zs)]
    newcombe = [intervals.newcombe_bounds(a, n, b, m, z) for (a, n, b, m), z in zip(pairs, zs)]
    katz = intervals.katz_bounds(pairs, zs)
    assert _bits([w[0] for w in wilson]) == _bits(w_low) and _bits([w[1] for w in wilson]) == _bits(w_high)
    assert _bits([d[0] for d in newcombe]) == _bits(d_low) and _bits([d[1] for d in newcombe]) == _bits(
        d_high
    )
    assert _bits([r[0] for r in katz]) == _bits(r_low) and _bits([r[1] for r in katz]) == _bits(r_high)


def _result_objects(result: Any) -> list[Any]:
    out = []
    for attr in result.attributes.values():
        out += list(attr.gaps.values())
        for d in attr.metrics.values():
            out.append(d)
            out += list(d.by_group.values())
    return out


def test_fast_builders_make_what_the_constructors_make() -> None:
    """GroupMetric, Disparity and Gap are built by filling ``__dict__``: the same objects as ``cls(...)``."""
    for case in REFERENCE[::10]:
        result = evaluate_fairness(FairnessCounts.from_dict(case["counts"]), FairnessConfig(**case["config"]))
        objects = _result_objects(result)
        assert {type(o).__name__ for o in objects} == {"GroupMetric", "Disparity", "Gap"} or not objects[:1]
        for obj in objects:
            state = vars(obj)
            rebuilt = type(obj)(**{f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)})
            assert rebuilt == obj and repr(rebuilt) == repr(obj)
            if not isinstance(obj, fairness_detector.Disparity):  # its by_group dict makes it unhashable
                assert hash(rebuilt) == hash(obj)
            assert list(vars(rebuilt).items()) == list(state.items())  # same fields, same order, nothing else
            assert pickle.loads(pickle.dumps(obj)) == obj
            with pytest.raises(dataclasses.FrozenInstanceError):
                obj.eligible = None  # still frozen


def test_fast_constructor_refuses_classes_whose_init_does_more() -> None:
    from detectors.base import fast_constructor

    @dataclasses.dataclass(frozen=True)
    class WithPostInit:
        value: float

        def __post_init__(self) -> None:
            pass

    @dataclasses.dataclass
    class NotFrozen:
        value: float

    @dataclasses.dataclass(frozen=True)
    class Plain:
        value: float
        n: int

    for cls in (WithPostInit, NotFrozen):
        with pytest.raises(TypeError):
            fast_constructor(cls)
    assert fast_constructor(Plain)(1.5, 2) == Plain(1.5, 2)
    with pytest.raises(TypeError):  # every field, no more and no less
        fast_constructor(Plain)(1.5)
    # a caller whose values are already checked may skip a __post_init__, but not make a mutable class frozen
    assert fast_constructor(WithPostInit, values_checked=True)(2.5) == WithPostInit(2.5)
    with pytest.raises(TypeError):
        fast_constructor(NotFrozen, values_checked=True)


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: test_fairness_fast.py --write  (only from the reference implementation)")
    write_fixture()
