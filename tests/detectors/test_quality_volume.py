"""The volume monitor: spikes and drops against the median rate, Poisson noise, state round-trips."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scipy import stats

from detectors.base import ConfigError, InputError
from detectors.quality import DROP, SPIKE, QualityStatus, VolumeConfig, VolumeMonitor, volume_verdict

WINDOW_S = 60.0


def _json(obj: dict[str, Any]) -> Any:
    return json.loads(json.dumps(obj, allow_nan=False))


def _warmed(rate: float = 50.0, windows: int = 12, seed: int = 0) -> VolumeMonitor:
    rng = np.random.default_rng(seed)
    monitor = VolumeMonitor()
    for _ in range(windows):
        assert not monitor.observe(int(rng.poisson(rate * WINDOW_S)), WINDOW_S).flagged
    return monitor


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("history", 0, "history must be an integer >= 1"),
        ("min_history", 0, "min_history must be an integer >= 1"),
        ("min_history", 13, r"min_history \(13\) must not exceed history \(12\)"),
        ("factor", 1.0, "factor must be > 1"),
        ("factor", float("inf"), "factor must be a finite number"),
        ("alpha", 0.0, "alpha must be in"),
        ("alpha", "0.1", "alpha must be a finite number"),
        ("test", "gaussian", "test must be one of"),
    ],
)
def test_bad_config_values_are_refused(field: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        VolumeConfig(**{field: value})


def test_no_verdict_before_min_history() -> None:
    monitor = VolumeMonitor()
    for i in range(5):
        result = monitor.observe(1000 if i < 4 else 50_000, WINDOW_S)
        assert result.status == QualityStatus.INSUFFICIENT_DATA
        assert result.n_history == i
    # the fifth window had four before it; the sixth has five and gets a verdict
    assert monitor.observe(3000, WINDOW_S).status != QualityStatus.INSUFFICIENT_DATA


def test_a_spike_of_five_times_is_flagged_with_its_numbers() -> None:
    monitor = _warmed()
    baseline = float(np.median(monitor.rates))
    n = int(5 * baseline * WINDOW_S)
    result = monitor.observe(n, WINDOW_S)
    assert result.status == QualityStatus.ALERT and result.direction == SPIKE
    assert result.rate == pytest.approx(n / WINDOW_S)
    assert result.baseline == pytest.approx(baseline)
    assert result.ratio == pytest.approx(n / WINDOW_S / baseline)
    assert result.expected == pytest.approx(baseline * WINDOW_S)
    history_s = WINDOW_S * 12
    assert (
        result.p_value
        == pytest.approx(
            stats.binomtest(n, n + round(baseline * history_s), 1 / 13, alternative="greater").pvalue,
            abs=1e-300,
        )
        or result.p_value < 1e-300
    )
    data = result.to_dict()
    assert _json(data) == data and data["status"] == "alert" and data["direction"] == "spike"
    assert set(data) == {
        "detector", "status", "direction", "n_events", "duration_s", "rate", "baseline", "ratio",
        "expected", "p_value", "n_history", "test", "factor", "alpha",
    }  # fmt: skip


def test_a_drop_to_a_fifth_is_flagged() -> None:
    monitor = _warmed()
    baseline = float(np.median(monitor.rates))
    result = monitor.observe(int(0.2 * baseline * WINDOW_S), WINDOW_S)
    assert result.status == QualityStatus.ALERT and result.direction == DROP
    assert result.ratio == pytest.approx(0.2, rel=0.01)
    assert result.p_value == pytest.approx(
        stats.poisson.cdf(int(0.2 * baseline * WINDOW_S), baseline * WINDOW_S)
    )


def test_the_rate_not_the_count_is_compared() -> None:
    """A window twice as long with twice the events is the same rate: no spike."""
    monitor = _warmed()
    baseline = float(np.median(monitor.rates))
    result = monitor.observe(int(baseline * 2 * WINDOW_S), 2 * WINDOW_S)
    assert result.status == QualityStatus.OK and result.ratio == pytest.approx(1.0, rel=0.01)


@pytest.mark.parametrize("rate", [0.5, 5.0, 50.0, 5000.0])
def test_a_steady_rate_with_poisson_noise_never_flags(rate: float) -> None:
    """2,000 windows of Poisson counts at a steady rate, 30 to 300,000 expected events per window."""
    rng = np.random.default_rng(int(rate * 100))
    monitor = VolumeMonitor()
    flagged = 0
    for _ in range(2000):
        n = int(rng.poisson(rate * WINDOW_S))
        flagged += monitor.observe(n, WINDOW_S).flagged
    assert flagged == 0
    assert monitor.n_observed == 2000 and monitor.n_flagged == 0


def test_at_a_few_events_per_window_noise_flags_about_alpha() -> None:
    """With 1-10 expected events per window a one-sided test at alpha = 0.005 flags by chance. Measured over
    20,000 steady windows: at most 4.2 per 1,000 with the conditional test, up to 14.3 per 1,000 with the
    plain Poisson test, which ignores the baseline's own noise (docs/quality.md). Here 4,000 windows at 3
    expected events."""
    flagged = {}
    for test in ("conditional", "poisson"):
        rng = np.random.default_rng(3)
        monitor = VolumeMonitor(VolumeConfig(test=test))
        flagged[test] = sum(monitor.observe(int(rng.poisson(3.0)), 1.0).flagged for _ in range(4000))
    assert flagged["conditional"] <= 25  # 0.6 %
    assert flagged["poisson"] > flagged["conditional"]


def test_small_counts_need_more_than_the_ratio() -> None:
    """At 2 expected events a ratio of 3 (6 events) is within Poisson noise: the test holds it back."""
    history = [(2.0 / WINDOW_S, WINDOW_S)] * 12
    for test in ("conditional", "poisson"):
        result = volume_verdict(history, 6, WINDOW_S, VolumeConfig(test=test))
        assert result.ratio == pytest.approx(3.0)
        assert result.p_value is not None and result.p_value > 0.005 and result.status == QualityStatus.OK
    plain = volume_verdict(history, 6, WINDOW_S, VolumeConfig(test="poisson"))
    assert plain.p_value == pytest.approx(stats.poisson.sf(5, 2.0))
    # the conditional test compares with the history's 24 events over 12 windows
    conditional = volume_verdict(history, 6, WINDOW_S)
    assert conditional.p_value == pytest.approx(stats.binomtest(6, 30, 1 / 13, alternative="greater").pvalue)
    assert volume_verdict(history, 14, WINDOW_S).status == QualityStatus.ALERT


def test_an_empty_window_is_a_drop_once_the_baseline_expects_about_six_events() -> None:
    """A stream that closes empty windows on a timer gets the outage at once (docs/quality.md)."""
    assert volume_verdict([(6.0 / WINDOW_S, WINDOW_S)] * 12, 0, WINDOW_S).direction == DROP
    assert volume_verdict([(5.0 / WINDOW_S, WINDOW_S)] * 12, 0, WINDOW_S).status == QualityStatus.OK


def test_large_counts_need_the_ratio() -> None:
    """At 100,000 expected events a 50 % rise is overwhelmingly significant but below the factor of 3."""
    result = volume_verdict([(100_000 / WINDOW_S, WINDOW_S)] * 12, 150_000, WINDOW_S)
    assert result.p_value is not None and result.p_value < 1e-100 and result.status == QualityStatus.OK


def test_a_lasting_change_becomes_the_new_normal_after_about_half_the_history() -> None:
    monitor = _warmed(rate=50.0)
    flags = [monitor.observe(int(50.0 * 5 * WINDOW_S), WINDOW_S).flagged for _ in range(12)]
    # the median of 12 is the mean of the 6th and 7th values: after 6 new windows it is (old + new) / 2,
    # a ratio of 5 / 3 < 3
    assert flags == [True] * 6 + [False] * 6


def test_one_spike_does_not_make_the_next_window_a_drop() -> None:
    monitor = _warmed()
    assert monitor.observe(50 * 20 * int(WINDOW_S), WINDOW_S).direction == SPIKE
    assert monitor.observe(50 * int(WINDOW_S), WINDOW_S).status == QualityStatus.OK


@pytest.mark.parametrize("duration", [0.0, -1.0, float("nan"), float("inf")])
def test_an_unusable_duration_gets_no_verdict_and_leaves_the_history(duration: float) -> None:
    monitor = _warmed()
    before = list(monitor.rates)
    result = monitor.observe(10, duration)
    assert result.status == QualityStatus.INSUFFICIENT_DATA
    assert result.rate is None and result.direction is None and result.duration_s is None
    assert monitor.rates == before
    assert _json(result.to_dict())["rate"] is None


def test_a_zero_baseline_gets_no_verdict() -> None:
    result = volume_verdict([(0.0, WINDOW_S)] * 12, 100, WINDOW_S)
    assert result.status == QualityStatus.INSUFFICIENT_DATA and result.baseline == 0.0


@pytest.mark.parametrize("n", [-1, 1.5, True, "3"])
def test_bad_event_counts_are_refused(n: Any) -> None:
    with pytest.raises(InputError, match="n_events"):
        VolumeMonitor().observe(n, WINDOW_S)


def test_the_history_keeps_the_last_windows_only() -> None:
    monitor = VolumeMonitor(VolumeConfig(history=4, min_history=2))
    for n in (60, 120, 180, 240, 300, 360):
        monitor.observe(n, WINDOW_S)
    assert monitor.rates == [3.0, 4.0, 5.0, 6.0]
    assert monitor.history == [(3.0, WINDOW_S), (4.0, WINDOW_S), (5.0, WINDOW_S), (6.0, WINDOW_S)]


def test_state_round_trips_through_json_and_keeps_deciding_alike() -> None:
    monitor = _warmed(windows=9)
    copy = VolumeMonitor.from_dict(_json(monitor.to_dict()))
    assert copy.to_dict() == monitor.to_dict()
    assert monitor.to_dict()["detector"] == "quality.volume" and monitor.to_dict()["version"] == 1
    for n, duration in ((3000, 60.0), (20_000, 60.0), (10, 0.0), (500, 60.0), (3100, 62.5)):
        assert copy.observe(n, duration).to_dict() == monitor.observe(n, duration).to_dict()
    assert copy.to_dict() == monitor.to_dict()


def test_unknown_state_versions_and_bad_rates_are_refused() -> None:
    data = VolumeMonitor().to_dict()
    with pytest.raises(InputError, match="unsupported volume state"):
        VolumeMonitor.from_dict(data | {"version": 2})
    with pytest.raises(InputError, match="history entries must be"):
        VolumeMonitor.from_dict(data | {"history": [[1.0, 60.0], [-2.0, 60.0]]})
    with pytest.raises(InputError, match="history entries must be"):
        VolumeMonitor.from_dict(data | {"history": [[1.0, 0.0]]})
    with pytest.raises(InputError, match="history entries must be"):
        VolumeMonitor.from_dict(data | {"history": [1.0]})
    with pytest.raises(ConfigError):
        VolumeMonitor.from_dict(data | {"config": data["config"] | {"factor": 0.5}})


@settings(max_examples=300, deadline=None)
@given(
    rates=st.lists(
        # rates a stream can have: n / duration, 0 or at least ~1e-6 events per second
        st.floats(min_value=1e-6, max_value=1e9) | st.sampled_from([0.0, 1.0, 2.0]),
        min_size=1,
        max_size=40,
    ),
    durations=st.floats(min_value=1e-3, max_value=1e6),
)
def test_the_baseline_is_numpys_median_to_the_bit(rates: list[float], durations: float) -> None:
    """The baseline is taken with statistics.median (cheaper per window): the same float np.median gives."""
    config = VolumeConfig(history=len(rates), min_history=1)
    result = volume_verdict([(r, durations) for r in rates], 10, 60.0, config)
    assert result.baseline is not None
    assert result.baseline.hex() == float(np.median(rates)).hex()


@settings(max_examples=300, deadline=None)
@given(
    rates=st.lists(st.floats(min_value=0.0, max_value=1e6), min_size=0, max_size=14),
    n=st.integers(min_value=0, max_value=10**6),
    duration=st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([0.0, 1.0, 60.0]),
    test=st.sampled_from(["conditional", "poisson"]),
)
@example(rates=[1.0] * 6, n=10, duration=1e-308, test="poisson")  # a rate beyond float range: None
def test_to_dict_is_the_generic_conversion_of_every_field(rates: list[float], n: int, duration: float,
                                                          test: str) -> None:
    """to_dict writes the fields out one by one (one result per window close): it must stay what converting
    every field with json_safe gives, key order included, for every kind of verdict."""
    from dataclasses import fields

    from detectors.base import json_safe

    config = VolumeConfig(history=14, min_history=min(5, max(1, len(rates))), test=test)
    history = [(r, 10.0) for r in rates]
    result = volume_verdict(history, n, duration, config)
    generic = json_safe({f.name: getattr(result, f.name) for f in fields(result)})
    generic["status"] = result.status.value
    assert list(result.to_dict().items()) == list(generic.items())


@settings(max_examples=300, deadline=None)
@given(st.floats(allow_nan=True, allow_infinity=True))
def test_the_p_value_clip_is_numpys(p: float) -> None:
    from detectors.quality.stats import _unit

    expected = float(np.clip(p, 0.0, 1.0))
    got = _unit(p)
    assert (np.isnan(got) and np.isnan(expected)) or got.hex() == expected.hex()
