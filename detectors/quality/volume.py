"""Sudden changes of event volume, one closed window at a time ("quality.volume").

A window's rate is ``n_events / duration_s``. The baseline is the median rate of the last ``history`` (12)
windows observed before it; until ``min_history`` (5) windows have been seen there is no verdict. A window is
a ``spike`` when ``rate / baseline >= factor`` (3.0) and a ``drop`` when ``rate / baseline <= 1 / factor``,
in both cases only if a one-sided test of ``n_events`` against ``expected = baseline * duration_s`` is
significant at ``alpha`` (0.005): the ratio says "big enough to matter", the test "not Poisson noise" (at 2
expected events, 6 happen by chance once in 60 windows; at 5,000 expected, 15,000 never do).

The test (``test``):

* ``"conditional"`` (default): the exact conditional test of two Poisson rates, the window's count against
  the history's (``baseline * total history duration`` events: the median rate, so a past spike does not
  weigh). It carries the baseline's own noise, which a plain Poisson test ignores: at 2-10 events per window
  the plain test flags 0.3-1.5 % of steady windows, the conditional one at most 0.44 % (docs/quality.md).
* ``"poisson"``: ``n_events`` against a Poisson with the known mean ``expected``.

Above ~20 expected events per window both agree and the factor decides.

Every window with a usable duration enters the history, flagged or not: a lasting change is an alert for
about ``history / 2`` windows (until it holds the median), then the new normal. A window with
``duration_s <= 0`` (or not finite) gets no verdict and leaves the history alone; so does, for the verdict
only, a baseline of 0 events per second (there is no rate to compare with). The median ignores a few
unusual windows, so one spike does not make the next normal window look like a drop.

``VolumeMonitor.observe`` is the stateful form (its state round-trips through ``to_dict`` / ``from_dict``);
``volume_verdict(history, n_events, duration_s, config)`` is the pure decision behind it.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from detectors.base import (
    ConfigError,
    InputError,
    fast_constructor,
    finite_number,
    finite_or_none,
    int_at_least,
    json_safe,
)
from detectors.quality.checks import QualityStatus
from detectors.quality.stats import conditional_poisson_pvalue, poisson_pvalue

DETECTOR_NAME = "quality.volume"
STATE_VERSION = 1
SPIKE = "spike"
DROP = "drop"
VOLUME_TESTS: tuple[str, ...] = ("conditional", "poisson")

Window = tuple[float, float]  # (rate in events per second, duration in seconds) of one past window


@dataclass(frozen=True)
class VolumeConfig:
    history: int = 12
    min_history: int = 5
    factor: float = 3.0
    alpha: float = 0.005
    test: str = "conditional"

    def __post_init__(self) -> None:
        for name in ("history", "min_history"):
            int_at_least(name, getattr(self, name), 1)
        if self.min_history > self.history:
            raise ConfigError(
                f"min_history ({self.min_history}) must not exceed history ({self.history}): "
                "the baseline never holds more than history windows"
            )
        for name in ("factor", "alpha"):
            finite_number(name, getattr(self, name))
        if self.factor <= 1.0:
            raise ConfigError(f"factor must be > 1 (a spike is factor x the baseline), got {self.factor!r}")
        if not 0.0 < self.alpha < 1.0:
            raise ConfigError(f"alpha must be in (0, 1), got {self.alpha!r}")
        if self.test not in VOLUME_TESTS:
            raise ConfigError(f"test must be one of {VOLUME_TESTS}, got {self.test!r}")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = json_safe(asdict(self))
        return out


@dataclass(frozen=True)
class VolumeResult:
    """One window's volume verdict.

    ``rate`` is events per second (None when the duration is unusable), ``baseline`` the median rate of the
    ``n_history`` windows before it, ``ratio = rate / baseline``, ``expected = baseline * duration_s`` the
    event count the baseline predicts, ``p_value`` the one-sided p-value in the direction of the ratio
    (above the baseline: of a spike, below: of a drop). ``direction`` is set only when flagged.
    """

    detector: str
    status: QualityStatus
    direction: str | None
    n_events: int
    duration_s: float | None
    rate: float | None
    baseline: float | None
    ratio: float | None
    expected: float | None
    p_value: float | None
    n_history: int
    test: str
    factor: float
    alpha: float

    @property
    def flagged(self) -> bool:
        return self.status == QualityStatus.ALERT

    def to_dict(self) -> dict[str, Any]:
        # flat fields of known types, written out (json_safe over a dict comprehension cost ~3x more; a
        # sliding window closes one window per step): non-finite floats become None as json_safe makes them
        f = finite_or_none
        return {
            "detector": self.detector, "status": self.status.value, "direction": self.direction,
            "n_events": self.n_events, "duration_s": f(self.duration_s), "rate": f(self.rate),
            "baseline": f(self.baseline), "ratio": f(self.ratio), "expected": f(self.expected),
            "p_value": f(self.p_value), "n_history": self.n_history, "test": self.test,
            "factor": f(self.factor), "alpha": f(self.alpha),
        }  # fmt: skip


# one result per closed window and pane: built field by field (the class has no __post_init__)
_new_result = fast_constructor(VolumeResult)


def _usable(duration_s: object) -> bool:
    if not isinstance(duration_s, (int, float, np.floating, np.integer)) or isinstance(duration_s, bool):
        return False
    return bool(math.isfinite(duration_s) and duration_s > 0)


def _window(entry: Sequence[float]) -> Window:
    try:
        rate, duration = (float(x) for x in entry)
    except (TypeError, ValueError):
        raise InputError(f"history entries must be (rate, duration) pairs, got {entry!r}") from None
    if not (math.isfinite(rate) and rate >= 0 and math.isfinite(duration) and duration > 0):
        raise InputError(f"history entries must be (rate >= 0, duration > 0), got {tuple(entry)!r}")
    return rate, duration


def volume_verdict(
    history: Sequence[Sequence[float]], n_events: int, duration_s: float, config: VolumeConfig | None = None
) -> VolumeResult:
    """The verdict on one window given ``(rate, duration_s)`` of the windows before it (the last
    ``config.history`` are used)."""
    config = config if config is not None else VolumeConfig()
    return _verdict([_window(h) for h in history][-config.history :], n_events, duration_s, config)


def _verdict(recent: Sequence[Window], n_events: int, duration_s: float, config: VolumeConfig) -> VolumeResult:
    """``volume_verdict`` on a history already checked and cut to ``config.history`` windows."""
    if not isinstance(n_events, (int, np.integer)) or isinstance(n_events, bool) or n_events < 0:
        raise InputError(f"n_events must be an integer >= 0, got {n_events!r}")
    n = int(n_events)
    n_history, test, factor, alpha = len(recent), config.test, float(config.factor), float(config.alpha)
    if not _usable(duration_s):
        return _new_result(
            DETECTOR_NAME, QualityStatus.INSUFFICIENT_DATA, None, n, None, None, None, None, None, None, n_history,
            test, factor, alpha,
        )  # fmt: skip
    duration = float(duration_s)
    rate = n / duration
    # statistics.median: the same floats as np.median (the middle value, or (a + b) / 2 of the middle two), in
    # ~1 us instead of ~35 us; a sliding window observes every pane
    baseline = float(statistics.median([r for r, _ in recent])) if recent else None
    expected = None if baseline is None else baseline * duration
    if baseline is None or len(recent) < config.min_history or baseline <= 0.0:
        return _new_result(
            DETECTOR_NAME, QualityStatus.INSUFFICIENT_DATA, None, n, duration, rate, baseline, None, expected, None,
            n_history, test, factor, alpha,
        )  # fmt: skip
    assert expected is not None
    ratio = rate / baseline
    side = SPIKE if ratio >= 1.0 else DROP
    if test == "conditional":
        history_duration = sum(d for _, d in recent)
        p = conditional_poisson_pvalue(n, duration, baseline * history_duration, history_duration, side)
    else:
        p = poisson_pvalue(n, expected, side)
    big = ratio >= config.factor if side == SPIKE else ratio <= 1.0 / config.factor
    flagged = big and p < config.alpha
    return _new_result(
        DETECTOR_NAME, QualityStatus.ALERT if flagged else QualityStatus.OK, side if flagged else None, n, duration,
        rate, baseline, ratio, expected, p, n_history, test, factor, alpha,
    )  # fmt: skip


class VolumeMonitor:
    """The volume detector of one stream: call ``observe`` once per closed window, in order.

    ``history`` holds ``(rate, duration_s)`` of the last ``config.history`` windows with a usable duration.
    """

    def __init__(
        self,
        config: VolumeConfig | None = None,
        history: Sequence[Sequence[float]] = (),
        n_observed: int = 0,
        n_flagged: int = 0,
    ) -> None:
        self.config = config if config is not None else VolumeConfig()
        self.history: list[Window] = [_window(h) for h in history][-self.config.history :]
        self.n_observed = int(n_observed)
        self.n_flagged = int(n_flagged)

    @property
    def rates(self) -> list[float]:
        return [r for r, _ in self.history]

    def observe(self, n_events: int, duration_s: float) -> VolumeResult:
        result = _verdict(self.history, n_events, duration_s, self.config)
        self.n_observed += 1
        if result.rate is not None and result.duration_s is not None:
            self.history = [*self.history, (result.rate, result.duration_s)][-self.config.history :]
        if result.flagged:
            self.n_flagged += 1
        return result

    def state(self) -> dict[str, Any]:
        """What a stream keeps between windows (``to_dict`` without the version and the config)."""
        return {"history": [[rate, duration] for rate, duration in self.history], "n_observed": self.n_observed,
                "n_flagged": self.n_flagged}

    def to_dict(self) -> dict[str, Any]:
        return {"version": STATE_VERSION, "detector": DETECTOR_NAME, "config": self.config.to_dict(), **self.state()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VolumeMonitor:
        if data.get("version") != STATE_VERSION or data.get("detector") != DETECTOR_NAME:
            raise InputError(f"unsupported volume state (version {data.get('version')!r})")
        return cls(
            config=VolumeConfig(**data["config"]),
            history=data["history"],
            n_observed=int(data["n_observed"]),
            n_flagged=int(data["n_flagged"]),
        )
