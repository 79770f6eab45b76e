"""A simulated app: prediction events whose chosen features drift after a while (demo and tests)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import numpy as np

from streams.events import FeedbackEvent, ModelRef, Prediction, PredictionEvent

NUMERIC = tuple(f"x{i}" for i in range(8))
CATEGORICAL = ("country", "device")
_COUNTRIES = ("de", "fr", "us", "in", "br")
_COUNTRY_P = (0.3, 0.2, 0.25, 0.15, 0.1)
_DEVICES = ("ios", "android", "web")
_DEVICE_P = (0.4, 0.4, 0.2)


@dataclass(frozen=True)
class Scenario:
    model: str = "credit-risk"
    version: str = "1"
    n_events: int = 10_000
    drift_after: int = 6_000
    drifted: Sequence[str] = ("x1", "x4", "country")
    shift_sd: float = 1.0
    seed: int = 7
    start: datetime = field(default_factory=lambda: datetime(2026, 1, 1, tzinfo=timezone.utc))
    step: timedelta = timedelta(milliseconds=200)
    bias_against: str | None = None  # a sensitive group whose positive predictions are withheld ...
    bias: float = 0.0                # ... with this probability (a planted fairness problem)
    flap_every: int = 0              # drift on and off every this many events (0: no flapping)
    score_shift: float = 0.0         # added to the model's logit while drifting (the outputs move, not the inputs)


def events(sc: Scenario) -> Iterator[PredictionEvent]:
    """Deterministic for a given scenario: the same seed yields the same events (and event ids)."""
    rng = np.random.default_rng(sc.seed)
    shift_country = ("de", "fr", "us", "in", "br")
    drift_country_p = (0.1, 0.2, 0.25, 0.15, 0.3)
    for i in range(sc.n_events):
        drifting = i >= sc.drift_after and (not sc.flap_every or ((i - sc.drift_after) // sc.flap_every) % 2 == 0)
        x = rng.normal(0.0, 1.0, len(NUMERIC))
        feats: dict[str, float | str | None] = {}
        for j, name in enumerate(NUMERIC):
            v = float(x[j])
            if drifting and name in sc.drifted:
                v += sc.shift_sd
            feats[name] = round(v, 6)
        cp = drift_country_p if drifting and "country" in sc.drifted else _COUNTRY_P
        feats["country"] = str(rng.choice(shift_country, p=cp))
        dp = (0.1, 0.3, 0.6) if drifting and "device" in sc.drifted else _DEVICE_P
        feats["device"] = str(rng.choice(_DEVICES, p=dp))
        logit = x[0] + 0.5 * x[1] + (sc.score_shift if drifting else 0.0)
        score = float(1 / (1 + np.exp(-logit)))
        group = str(rng.choice(("a", "b")))
        label = int(score > 0.5)
        if label and group == sc.bias_against and rng.random() < sc.bias:
            label = 0
        yield PredictionEvent(
            event_id=f"{sc.model}-{sc.seed}-{i}",
            occurred_at=sc.start + i * sc.step,
            model=ModelRef(name=sc.model, version=sc.version),
            features=feats,
            prediction=Prediction(label=label, probabilities={"1": round(score, 6)}),
            sensitive={"group": group},
            prediction_id=f"{sc.model}-{sc.seed}-{i}",
        )


@dataclass(frozen=True)
class LabelScenario:
    """Ground truth for a scenario's predictions: correct with ``accuracy``, then ``degraded_accuracy`` from
    ``degrade_after`` on; each label arrives ``delay`` after its prediction (in event time)."""

    accuracy: float = 0.9
    degraded_accuracy: float = 0.9
    degrade_after: int = 10**12
    delay: timedelta = timedelta(minutes=10)
    share: float = 1.0
    seed: int = 11
    missed_positives_in: str | None = None  # a sensitive group whose refused cases turn out positive ...
    missed_rate: float = 0.0                # ... this often (a planted equal-opportunity gap)


def feedback(sc: Scenario, ls: LabelScenario) -> Iterator[FeedbackEvent]:
    rng = np.random.default_rng(ls.seed)
    for i, e in enumerate(events(sc)):
        if rng.random() >= ls.share or e.prediction_id is None:
            continue
        acc = ls.degraded_accuracy if i >= ls.degrade_after else ls.accuracy
        truth = e.prediction.label if rng.random() < acc else 1 - int(e.prediction.label or 0)
        if (ls.missed_positives_in and e.sensitive.get("group") == ls.missed_positives_in
                and not e.prediction.label and rng.random() < ls.missed_rate):
            truth = 1
        yield FeedbackEvent(event_id=f"fb-{e.event_id}", prediction_id=e.prediction_id, model=e.model,
                            occurred_at=e.occurred_at + ls.delay, label=truth, source="simulated")
