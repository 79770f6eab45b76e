"""JSON columns: written by orjson, a detector result stored as itself reads back as its to_dict()."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from detectors.drift import FeatureDriftConfig, WindowSketch, build_profile, evaluate_drift
from storage.db import json_dumps


def _columns(rng: np.random.Generator, n: int, shift: float = 0.0) -> dict[str, np.ndarray]:
    cols: dict[str, np.ndarray] = {f"n{i}": rng.normal(shift if i == 0 else 0.0, 1.0, n) for i in range(5)}
    cols["n4"][:7] = np.nan  # missing values
    cols["c"] = rng.choice(np.array(["a", "b", "c"], dtype=object), n, p=[0.5, 0.3, 0.2])
    return cols


@pytest.mark.parametrize("case", ["quiet", "drifted", "too_small", "unseen"])
def test_a_drift_result_encodes_as_its_to_dict(case: str) -> None:
    rng = np.random.default_rng(7)
    prof = build_profile(_columns(rng, 3000), {**{f"n{i}": "numeric" for i in range(5)}, "c": "categorical"})
    n = 20 if case == "too_small" else 1000
    cols = _columns(rng, n, shift=1.0 if case == "drifted" else 0.0)
    if case == "unseen":
        cols["c"][:50] = "new"
    result = evaluate_drift(prof, WindowSketch.empty(prof).update(cols), FeatureDriftConfig())
    encoded = json_dumps(result)
    assert encoded == json_dumps(result.to_dict())
    back = json.loads(encoded)
    assert back == result.to_dict()
    assert back["status"] == {"quiet": "ok", "drifted": "drift", "too_small": "insufficient_data",
                              "unseen": "drift"}[case]


def test_non_finite_numbers_numpy_and_big_integers() -> None:
    assert json.loads(json_dumps({"a": math.nan, "b": math.inf, "c": np.float64(0.5), "d": np.int64(3),
                                  "e": np.arange(3), 1: "int key"})) == {
        "a": None, "b": None, "c": 0.5, "d": 3, "e": [0, 1, 2], "1": "int key"}
    # beyond 64 bits orjson refuses; the json fallback writes it
    assert json.loads(json_dumps({"big": 2**70})) == {"big": 2**70}
    with pytest.raises(TypeError):
        json_dumps({"x": object()})
