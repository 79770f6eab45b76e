"""Page–Hinkley test for a change in the mean of a stream (Page 1954), as ``river.drift.PageHinkley``.

With x̄_t the running mean of the items so far (the current item included), the test keeps two fading
cumulative sums of deviations, one biased down and one up by ``delta``:

    up_t   = alpha * up_{t-1}   + (x_t - x̄_t) - delta      (rises when the mean increases)
    down_t = alpha * down_{t-1} + (x_t - x̄_t) + delta      (falls when the mean decreases)

and their running extremes ``min(up)`` and ``max(down)``. Once ``min_instances`` items have been seen, an
item is a detection when ``up_t - min(up) > threshold`` (mode "up"), ``max(down) - down_t > threshold``
(mode "down"), or either (mode "both").

The arithmetic is river 0.26.1's, operation for operation, so the detection indices are the same (the
oracle tests check equality). Two of river's details are kept on purpose: ``max(down)`` starts at -1, not
at minus infinity, and the detector restarts from scratch on the item *after* a detection.

``update(state, values)`` returns a new ``PageHinkleyState`` and the indices (into ``values``) of the
detections; chunked updates equal one-at-a-time updates and the state round-trips through JSON
(``min_increase`` is ``None`` there while no item has been seen, standing for +infinity).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import numpy.typing as npt

from detectors.base import ConfigError, InputError, finite_number
from detectors.concept.adwin import stream_values

DETECTOR_NAME = "concept.page_hinkley"
STATE_VERSION = 1
MODES: tuple[str, ...] = ("up", "down", "both")




@dataclass(frozen=True)
class PageHinkleyConfig:
    min_instances: int = 30
    delta: float = 0.005
    threshold: float = 50.0
    alpha: float = 1 - 0.0001
    mode: str = "both"

    def __post_init__(self) -> None:
        if (
            not isinstance(self.min_instances, int)
            or isinstance(self.min_instances, bool)
            or self.min_instances < 1
        ):
            raise ConfigError(f"min_instances must be an integer >= 1, got {self.min_instances!r}")
        for name in ("delta", "threshold", "alpha"):
            object.__setattr__(self, name, finite_number(name, getattr(self, name)))
        if self.delta < 0:
            raise ConfigError(f"delta must be >= 0, got {self.delta!r}")
        if self.threshold <= 0:
            raise ConfigError(f"threshold must be > 0, got {self.threshold!r}")
        if not 0.0 < self.alpha <= 1.0:
            raise ConfigError(f"alpha must be in (0, 1], got {self.alpha!r}")
        if self.mode not in MODES:
            raise ConfigError(f"mode must be one of {MODES}, got {self.mode!r}")


@dataclass(frozen=True)
class PageHinkleyState:
    """One Page–Hinkley detector between two batches (``n`` and ``mean`` since the last restart)."""

    name: ClassVar[str] = DETECTOR_NAME

    config: PageHinkleyConfig
    n: int = 0
    mean: float = 0.0
    sum_increase: float = 0.0
    sum_decrease: float = 0.0
    min_increase: float = math.inf
    max_decrease: float = -1.0
    reset_pending: bool = False
    n_seen: int = 0
    n_detections: int = 0

    def __post_init__(self) -> None:
        for name in ("mean", "sum_increase", "sum_decrease", "max_decrease"):
            if not math.isfinite(getattr(self, name)):
                raise InputError(f"{name} must be finite")
        if math.isnan(self.min_increase) or self.min_increase == -math.inf:
            raise InputError("min_increase must be a number or +infinity")

    @property
    def test_increase(self) -> float:
        return self.sum_increase - self.min_increase

    @property
    def test_decrease(self) -> float:
        return self.max_decrease - self.sum_decrease

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "detector": DETECTOR_NAME,
            "config": asdict(self.config),
            "n": self.n,
            "mean": self.mean,
            "sum_increase": self.sum_increase,
            "sum_decrease": self.sum_decrease,
            "min_increase": self.min_increase if math.isfinite(self.min_increase) else None,
            "max_decrease": self.max_decrease,
            "reset_pending": self.reset_pending,
            "n_seen": self.n_seen,
            "n_detections": self.n_detections,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PageHinkleyState:
        if data.get("version") != STATE_VERSION or data.get("detector") != DETECTOR_NAME:
            raise InputError(f"unsupported Page-Hinkley state (version {data.get('version')!r})")
        min_increase = data["min_increase"]
        return cls(
            config=PageHinkleyConfig(**data["config"]),
            n=int(data["n"]),
            mean=float(data["mean"]),
            sum_increase=float(data["sum_increase"]),
            sum_decrease=float(data["sum_decrease"]),
            min_increase=math.inf if min_increase is None else float(min_increase),
            max_decrease=float(data["max_decrease"]),
            reset_pending=bool(data["reset_pending"]),
            n_seen=int(data["n_seen"]),
            n_detections=int(data["n_detections"]),
        )


def init_state(config: PageHinkleyConfig | None = None) -> PageHinkleyState:
    return PageHinkleyState(config=config if config is not None else PageHinkleyConfig())


def update(state: PageHinkleyState, values: npt.ArrayLike) -> tuple[PageHinkleyState, list[int]]:
    """Feed ``values`` in order; return the new state and the indices (into ``values``) of detections."""
    xs = stream_values(values)
    cfg = state.config
    alpha, delta, threshold = cfg.alpha, cfg.delta, cfg.threshold
    min_instances = float(cfg.min_instances)
    check_up = cfg.mode in ("up", "both")
    check_down = cfg.mode in ("down", "both")

    n = float(state.n)
    mean = state.mean
    up, down = state.sum_increase, state.sum_decrease
    min_up, max_down = state.min_increase, state.max_decrease
    reset_pending = state.reset_pending
    detections: list[int] = []

    for i, x in enumerate(xs):
        if reset_pending:
            n, mean, up, down, min_up, max_down = 0.0, 0.0, 0.0, 0.0, math.inf, -1.0
            reset_pending = False
        n += 1.0
        mean += (1.0 / n) * (x - mean)
        dev = x - mean
        up = alpha * up + dev - delta
        down = alpha * down + dev + delta
        min_up = min(min_up, up)
        max_down = max(max_down, down)
        if n >= min_instances and (
            (check_up and up - min_up > threshold) or (check_down and max_down - down > threshold)
        ):
            detections.append(i)
            reset_pending = True

    new_state = PageHinkleyState(
        config=cfg,
        n=int(n),
        mean=mean,
        sum_increase=up,
        sum_decrease=down,
        min_increase=min_up,
        max_decrease=max_down,
        reset_pending=reset_pending,
        n_seen=state.n_seen + len(xs),
        n_detections=state.n_detections + len(detections),
    )
    return new_state, detections
