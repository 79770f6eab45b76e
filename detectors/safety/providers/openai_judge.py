"""LLM-as-judge through ``openai`` chat completions: groundedness and relevance of a response, sampled.

For each sampled item the judge model gets the (redacted) question, the retrieved documents and the answer,
and must reply with JSON ``{"groundedness": g, "relevance": r}`` in [0, 1]. The verdict carries
``ungrounded = 1 - g`` (so the safety window's ungrounded rate counts it) and ``details.relevance``.
Personal data is redacted before any text leaves (``detectors.safety.redact``). Paid calls go through
``Resilience``: sampling (default 5 % of items), a call budget, retries with backoff, a circuit breaker; a
failure is an error verdict, never an exception.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass

import openai

from detectors.base import ConfigError
from detectors.safety.base import SKIP_BUDGET_EXHAUSTED, SKIP_SAMPLED_OUT, SafetyItem, SafetyVerdict
from detectors.safety.providers.openai_moderation import _classify
from detectors.safety.providers.resilience import ProviderCallError, Resilience, SecretLike, secret_value
from detectors.safety.redact import redact

PROVIDER_NAME = "openai-judge"
RUBRIC = (
    "You grade an assistant's answer. Groundedness: the share of the answer's claims supported by the documents "
    "(1 when there are no documents and the answer makes no factual claims). Relevance: how well the answer "
    'addresses the question. Reply with JSON only: {"groundedness": <0..1>, "relevance": <0..1>}.'
)


@dataclass(frozen=True)
class OpenAIJudgeConfig:
    base_url: str | None = None
    model: str = "gpt-4o-mini"
    max_chars: int = 6_000
    timeout_s: float = 30.0

    def __post_init__(self) -> None:
        if not isinstance(self.max_chars, int) or self.max_chars < 100:
            raise ConfigError(f"max_chars must be an int >= 100, got {self.max_chars!r}")


class OpenAIJudgeProvider:
    def __init__(self, config: OpenAIJudgeConfig, api_key: str | SecretLike, *,
                 resilience: Resilience | None = None, client: openai.OpenAI | None = None) -> None:
        self.config = config
        self.resilience = resilience or Resilience()
        self._client = client or openai.OpenAI(base_url=config.base_url, api_key=secret_value(api_key),
                                               max_retries=0, timeout=config.timeout_s)

    @property
    def name(self) -> str:
        return PROVIDER_NAME

    def __repr__(self) -> str:
        return f"OpenAIJudgeProvider(base_url={self.config.base_url!r}, model={self.config.model!r})"

    def close(self) -> None:
        self._client.close()

    def analyze(self, items: Sequence[SafetyItem]) -> list[SafetyVerdict]:
        out: list[SafetyVerdict] = []
        for item in items:
            if not item.response or not self.resilience.sampled(item.id):
                out.append(SafetyVerdict.skip(item.id, PROVIDER_NAME, SKIP_SAMPLED_OUT))
            elif not self.resilience.reserve(1):
                out.append(SafetyVerdict.skip(item.id, PROVIDER_NAME, SKIP_BUDGET_EXHAUSTED))
            else:
                try:
                    g, r = self.resilience.call(functools.partial(self._judge, item), _classify)
                    out.append(SafetyVerdict(item_id=item.id, provider=PROVIDER_NAME, ungrounded=1.0 - g,
                                             details={"groundedness": g, "relevance": r}))
                except ProviderCallError as err:
                    out.append(SafetyVerdict.failed(item.id, PROVIDER_NAME, f"{PROVIDER_NAME}: {err.reason}"))
                except Exception as exc:  # noqa: BLE001 - never let a bug escape analyze()
                    out.append(SafetyVerdict.failed(item.id, PROVIDER_NAME,
                                                    f"{PROVIDER_NAME}: internal error ({type(exc).__name__})"))
        return out

    def _judge(self, item: SafetyItem) -> tuple[float, float]:
        cut = self.config.max_chars

        def clean(text: str) -> str:
            return redact(text[:cut]).text

        docs = "\n---\n".join(clean(d) for d in item.documents) or "(no documents)"
        user = f"Question:\n{clean(item.prompt or '')}\n\nDocuments:\n{docs}\n\nAnswer:\n{clean(item.response)}"
        response = self._client.chat.completions.create(
            model=self.config.model, temperature=0, response_format={"type": "json_object"},
            messages=[{"role": "system", "content": RUBRIC}, {"role": "user", "content": user}])
        try:
            content = response.choices[0].message.content or ""
            data = json.loads(content)
            g, r = float(data["groundedness"]), float(data["relevance"])
        except (IndexError, KeyError, TypeError, ValueError, json.JSONDecodeError):
            raise ProviderCallError("malformed response") from None
        if not (0.0 <= g <= 1.0 and 0.0 <= r <= 1.0):
            raise ProviderCallError("malformed response")
        return g, r
