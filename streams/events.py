"""Events v1: the boundary schema between apps and opsloop.

Pydantic models live at the boundary only (frozen, unknown fields refused, explicit ``schema_version``);
inside the worker, events become numpy columns. A breaking change gets a new topic (``.v2``).
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Literal
from uuid import uuid4

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

SCHEMA_VERSION = 1

FeatureValue = float | int | str | bool | None
Name = Annotated[str, Field(min_length=1, max_length=200)]


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False, str_max_length=100_000)


class ModelRef(_Event):
    name: Name
    version: Annotated[str, Field(min_length=1, max_length=100)]


class Prediction(_Event):
    """What the model said: a label or a value, with optional class probabilities."""

    label: str | int | bool | None = None
    value: float | None = None
    probabilities: dict[str, float] | None = None

    @model_validator(mode="after")
    def _one_of(self) -> Prediction:
        if self.label is None and self.value is None:
            raise ValueError("prediction needs a label or a value")
        if self.probabilities is not None:
            for k, p in self.probabilities.items():
                if not 0.0 <= p <= 1.0:
                    raise ValueError(f"probability of {k!r} is {p}, outside [0, 1]")
        return self


def _new_id() -> str:
    return uuid4().hex


class PredictionEvent(_Event):
    schema_version: Literal[1] = SCHEMA_VERSION
    event_id: Annotated[str, Field(min_length=1, max_length=100)] = Field(default_factory=_new_id)
    occurred_at: AwareDatetime
    model: ModelRef
    features: dict[Name, FeatureValue] = Field(max_length=1000)
    prediction: Prediction
    sensitive: dict[Name, str | int | bool | None] = Field(default_factory=dict, max_length=50)
    prediction_id: str | None = Field(default=None, max_length=100)
    tags: dict[Name, str] = Field(default_factory=dict, max_length=50)

    @field_validator("features")
    @classmethod
    def _finite(cls, v: dict[str, FeatureValue]) -> dict[str, FeatureValue]:
        for name, x in v.items():
            if isinstance(x, float) and not math.isfinite(x):
                raise ValueError(f"feature {name!r} is not a finite number")
        return v


class FeedbackEvent(_Event):
    schema_version: Literal[1] = SCHEMA_VERSION
    event_id: Annotated[str, Field(min_length=1, max_length=100)] = Field(default_factory=_new_id)
    prediction_id: Annotated[str, Field(min_length=1, max_length=100)]
    model: ModelRef | None = None
    occurred_at: AwareDatetime
    label: str | int | bool | None = None
    value: float | None = None
    source: str | None = Field(default=None, max_length=200)

    @model_validator(mode="after")
    def _one_of(self) -> FeedbackEvent:
        if self.label is None and self.value is None:
            raise ValueError("feedback needs a label or a value")
        return self


class Message(_Event):
    role: Literal["system", "user", "assistant", "tool"]
    content: str


class Tokens(_Event):
    prompt: int = Field(ge=0)
    completion: int = Field(ge=0)


class LLMInteractionEvent(_Event):
    schema_version: Literal[1] = SCHEMA_VERSION
    event_id: Annotated[str, Field(min_length=1, max_length=100)] = Field(default_factory=_new_id)
    occurred_at: AwareDatetime
    application: Name
    model: Name
    prompt: str | None = None
    messages: list[Message] | None = Field(default=None, max_length=500)
    response: str
    retrieved_context: list[str] = Field(default_factory=list, max_length=100)
    latency_ms: float | None = Field(default=None, ge=0)
    tokens: Tokens | None = None
    cost_usd: float | None = Field(default=None, ge=0)
    user_rating: Literal[-1, 0, 1] | None = None
    tags: dict[Name, str] = Field(default_factory=dict, max_length=50)

    @model_validator(mode="after")
    def _has_prompt(self) -> LLMInteractionEvent:
        if self.prompt is None and not self.messages:
            raise ValueError("an LLM interaction needs a prompt or messages")
        return self


EVENT_MODELS: dict[str, type[_Event]] = {
    "prediction": PredictionEvent,
    "feedback": FeedbackEvent,
    "llm_interaction": LLMInteractionEvent,
}


def event_time(e: PredictionEvent | FeedbackEvent | LLMInteractionEvent) -> datetime:
    return e.occurred_at
