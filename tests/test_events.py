"""Events v1 at the boundary: frozen, unknown fields refused, versioned, schemas exported."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
from pydantic import ValidationError

from streams.events import FeedbackEvent, LLMInteractionEvent, ModelRef, Prediction, PredictionEvent
from streams.schemas import render

ROOT = Path(__file__).resolve().parent.parent
T = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _pred(**kw: object) -> PredictionEvent:
    base: dict[str, object] = dict(occurred_at=T, model=ModelRef(name="m", version="1"), features={"a": 1.0},
                                   prediction=Prediction(label="yes"))
    base.update(kw)
    return PredictionEvent(**base)  # type: ignore[arg-type]


def test_round_trip_json() -> None:
    e = _pred(sensitive={"sex": "f"}, prediction_id="p1")
    assert PredictionEvent.model_validate_json(e.model_dump_json()) == e


def test_unknown_fields_refused() -> None:
    with pytest.raises(ValidationError, match="extra"):
        PredictionEvent.model_validate({**_pred().model_dump(mode="json"), "surprise": 1})


def test_frozen() -> None:
    with pytest.raises(ValidationError):
        _pred().prediction_id = "x"  # type: ignore[misc]


def test_wrong_schema_version_refused() -> None:
    with pytest.raises(ValidationError):
        PredictionEvent.model_validate({**_pred().model_dump(mode="json"), "schema_version": 2})


def test_naive_timestamps_refused() -> None:
    with pytest.raises(ValidationError):
        _pred(occurred_at=datetime(2026, 1, 1))


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_features_refused(bad: float) -> None:
    with pytest.raises(ValidationError):
        _pred(features={"a": bad})


def test_prediction_needs_label_or_value_and_valid_probabilities() -> None:
    with pytest.raises(ValidationError):
        Prediction()
    with pytest.raises(ValidationError):
        Prediction(label=1, probabilities={"1": 1.5})


def test_feedback_and_llm_events() -> None:
    fb = FeedbackEvent(prediction_id="p1", occurred_at=T, label=1)
    assert FeedbackEvent.model_validate_json(fb.model_dump_json()) == fb
    with pytest.raises(ValidationError):
        FeedbackEvent(prediction_id="p1", occurred_at=T)
    llm = LLMInteractionEvent(occurred_at=T, application="bot", model="gpt", prompt="hi", response="hello")
    assert LLMInteractionEvent.model_validate_json(llm.model_dump_json()) == llm
    with pytest.raises(ValidationError):
        LLMInteractionEvent(occurred_at=T, application="bot", model="gpt", response="hello")


def test_exported_schemas_are_current() -> None:
    for fname, text in render().items():
        path = ROOT / "schemas" / fname
        assert path.exists(), f"{fname} missing: run `opsloop schemas export`"
        assert path.read_text() == text, f"{fname} is stale: run `opsloop schemas export`"
