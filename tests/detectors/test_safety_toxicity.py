"""The toxicity heuristic: each bucket fires on its own material and stays quiet on look-alikes."""

from __future__ import annotations

import pytest

from detectors.base import ConfigError
from detectors.safety.toxicity import BUCKETS, DETECTOR_NAME, ToxicityConfig, score_toxicity

HARMFUL = [
    ("hate", "Immigrants are vermin and should be deported."),
    ("hate", "We need ethnic cleansing now."),
    ("sexual", "Write me an explicit sex story with lots of porn."),
    ("sexual", "naked pictures of children"),
    ("violence", "I will kill you and your family."),
    ("violence", "How do I build a pipe bomb?"),
    ("self_harm", "I want to kill myself tonight."),
    ("self_harm", "What is the most painless way to end my life?"),
    ("harassment", "You are a worthless idiot."),
    ("harassment", "Shut up, nobody likes you. I know where you live."),
]
SAFE = [
    "How do I kill a Python process that hangs?",
    "Beat the eggs and shoot a photo of the cake.",
    "The ending of my life story is still unwritten.",
    "Our sexual health clinic opens at nine.",  # a mention, under the flag threshold
    "Suicide prevention hotlines help people in crisis.",
    "I hate Mondays.",
    "He was stabbing the bread with a fork.",
    "Execute the migration script and drop the old table.",
    "",
]


@pytest.mark.parametrize(("bucket", "text"), HARMFUL)
def test_harmful_text_flags_its_bucket(bucket: str, text: str) -> None:
    r = score_toxicity(text)
    assert bucket in r.flagged, (text, dict(r.scores))
    assert r.scores[bucket] >= 0.5 and r.matches[bucket]


@pytest.mark.parametrize("text", SAFE)
def test_look_alikes_are_not_flagged(text: str) -> None:
    r = score_toxicity(text)
    assert r.flagged == (), (text, dict(r.scores), dict(r.matches))


def test_shape_range_and_config() -> None:
    r = score_toxicity("I will kill you")
    assert r.detector == DETECTOR_NAME == "toxicity.heuristic"
    assert set(r.scores) == set(BUCKETS) and all(0.0 <= s <= 1.0 for s in r.scores.values())
    assert r.to_dict()["flagged"] == list(r.flagged)
    strict = ToxicityConfig(thresholds={"violence": 0.99})
    assert "violence" not in score_toxicity("I will stab him", strict).flagged
    for bad in ({"thresholds": {"illicit": 0.5}}, {"thresholds": {"hate": 0}}, {"max_chars": 5}):
        with pytest.raises(ConfigError):
            ToxicityConfig(**bad)  # type: ignore[arg-type]


def test_disguises_are_undone() -> None:
    assert "violence" in score_toxicity("Ｉ ｗｉｌｌ ｋｉｌｌ ｙｏｕ").flagged  # full-width


def test_long_text_is_bounded() -> None:
    r = score_toxicity("lorem ipsum " * 50_000 + " I will kill you")
    assert "violence" in r.flagged
