"""LLM-as-judge (groundedness, relevance) through the real openai client against our local fake."""

from __future__ import annotations

import json
import random

from pydantic import SecretStr

from detectors.safety.base import SafetyItem
from detectors.safety.providers.openai_judge import OpenAIJudgeConfig, OpenAIJudgeProvider
from detectors.safety.providers.resilience import Resilience, ResilienceConfig
from tests.fakes.openai_server import FakeOpenAI


def _judge(fake: FakeOpenAI, **res: object) -> OpenAIJudgeProvider:
    return OpenAIJudgeProvider(OpenAIJudgeConfig(base_url=fake.base_url), SecretStr(fake.api_key),
                               resilience=Resilience(ResilienceConfig(**res), sleep=lambda s: None,  # type: ignore[arg-type]
                                                     rng=random.Random(0)))


ITEM = SafetyItem(id="i1", prompt="When does my card 4111 1111 1111 1111 renew? mail me: ana@example.com",
                  response="It renews in March.", documents=("Cards renew every March.",))


def test_request_on_the_wire_is_redacted_and_the_verdict_maps_scores() -> None:
    with FakeOpenAI() as fake:
        fake.chat_reply = json.dumps({"groundedness": 0.8, "relevance": 0.9})
        v = _judge(fake).analyze([ITEM])[0]
        (req,) = [r for r in fake.requests if r.path == "/v1/chat/completions"]
    assert req.headers["authorization"] == f"Bearer {fake.api_key}"
    body = req.json
    assert body["response_format"] == {"type": "json_object"} and body["temperature"] == 0
    sent = json.dumps(body)
    assert "ana@example.com" not in sent and "4111 1111 1111 1111" not in sent
    assert "Cards renew every March." in sent and "It renews in March." in sent
    assert abs(v.ungrounded - 0.2) < 1e-12 and v.details["relevance"] == 0.9 and not v.errors


def test_malformed_and_out_of_range_answers_are_error_verdicts() -> None:
    for reply in ("not json", json.dumps({"groundedness": 1.7, "relevance": 0.2}), json.dumps({"x": 1})):
        with FakeOpenAI() as fake:
            fake.chat_reply = reply
            v = _judge(fake, max_attempts=1).analyze([ITEM])[0]
        assert v.errors and v.ungrounded is None


def test_sampling_skips_without_calls() -> None:
    with FakeOpenAI() as fake:
        fake.chat_reply = json.dumps({"groundedness": 1, "relevance": 1})
        items = [SafetyItem(id=f"i{i}", prompt="q", response="a", documents=()) for i in range(200)]
        verdicts = _judge(fake, sample_rate=0.05).analyze(items)
        calls = [r for r in fake.requests if r.path == "/v1/chat/completions"]
    judged = [v for v in verdicts if v.skipped is None]
    assert len(judged) == len(calls) and 2 <= len(calls) <= 25
