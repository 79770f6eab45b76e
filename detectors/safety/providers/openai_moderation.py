"""OpenAI moderation as a ``SafetyProvider``: ``client.moderations.create(model="omni-moderation-latest",
input=[...])`` through the official ``openai.OpenAI`` client (``max_retries=0``: ``Resilience`` retries).

Items are sent in batches: one request carries the prompt and the response of up to ``batch_items`` items
(``input`` is the list of their non-empty texts) and the answer's ``results`` come back in the same order. The
13 categories map onto the harm buckets (a bucket's score is the largest of its categories' scores):

    hate        <- hate, hate/threatening
    harassment  <- harassment, harassment/threatening
    self_harm   <- self-harm, self-harm/intent, self-harm/instructions
    sexual      <- sexual, sexual/minors
    violence    <- violence, violence/graphic
    illicit     <- illicit, illicit/violent

A bucket is flagged when OpenAI flags one of its categories, or, if ``score_thresholds`` names the bucket, when
its score reaches that threshold. Texts are cut to ``max_chars``. Moderation says nothing about injection,
PII, protected material or groundedness: those stay unset.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

import openai

from detectors.base import ConfigError
from detectors.safety.base import (
    HARM_BUCKETS,
    SKIP_BUDGET_EXHAUSTED,
    SKIP_SAMPLED_OUT,
    SafetyItem,
    SafetyVerdict,
)
from detectors.safety.providers.resilience import (
    ProviderCallError,
    Resilience,
    SecretLike,
    http_failure,
    secret_value,
)

PROVIDER_NAME = "openai"
DEFAULT_MODEL = "omni-moderation-latest"
CATEGORY_TO_BUCKET: Mapping[str, str] = MappingProxyType(
    {
        "hate": "hate",
        "hate/threatening": "hate",
        "harassment": "harassment",
        "harassment/threatening": "harassment",
        "self-harm": "self_harm",
        "self-harm/intent": "self_harm",
        "self-harm/instructions": "self_harm",
        "sexual": "sexual",
        "sexual/minors": "sexual",
        "violence": "violence",
        "violence/graphic": "violence",
        "illicit": "illicit",
        "illicit/violent": "illicit",
    }
)


@dataclass(frozen=True)
class OpenAIModerationConfig:
    base_url: str | None = None
    model: str = DEFAULT_MODEL
    batch_items: int = 8
    max_chars: int = 32_000
    score_thresholds: Mapping[str, float] = field(default_factory=dict)
    timeout_s: float = 15.0

    def __post_init__(self) -> None:
        if not isinstance(self.batch_items, int) or self.batch_items < 1:
            raise ConfigError(f"batch_items must be a positive int, got {self.batch_items!r}")
        if not isinstance(self.max_chars, int) or self.max_chars < 1:
            raise ConfigError(f"max_chars must be a positive int, got {self.max_chars!r}")
        unknown = set(self.score_thresholds) - set(HARM_BUCKETS)
        if unknown:
            raise ConfigError(f"unknown harm buckets {sorted(unknown)}; expected some of {HARM_BUCKETS}")
        for b, t in self.score_thresholds.items():
            if not (isinstance(t, (int, float)) and 0.0 < t <= 1.0):
                raise ConfigError(f"score threshold of {b!r} must be in (0, 1], got {t!r}")
        object.__setattr__(self, "score_thresholds", MappingProxyType(dict(self.score_thresholds)))


class OpenAIModerationProvider:
    """OpenAI moderation; ``analyze`` never raises for a service failure."""

    def __init__(
        self,
        config: OpenAIModerationConfig,
        api_key: str | SecretLike,
        *,
        resilience: Resilience | None = None,
        client: openai.OpenAI | None = None,
    ) -> None:
        self.config = config
        self.resilience = resilience or Resilience()
        self._client = client or openai.OpenAI(
            base_url=config.base_url, api_key=secret_value(api_key), max_retries=0, timeout=config.timeout_s
        )

    @property
    def name(self) -> str:
        return PROVIDER_NAME

    def __repr__(self) -> str:
        return f"OpenAIModerationProvider(base_url={self.config.base_url!r}, model={self.config.model!r})"

    def close(self) -> None:
        self._client.close()

    def analyze(self, items: Sequence[SafetyItem]) -> list[SafetyVerdict]:
        verdicts: dict[int, SafetyVerdict] = {}
        todo: list[int] = []
        for i, item in enumerate(items):
            if self.resilience.sampled(item.id):
                todo.append(i)
            else:
                verdicts[i] = SafetyVerdict.skip(item.id, PROVIDER_NAME, SKIP_SAMPLED_OUT)
        size = self.config.batch_items
        for start in range(0, len(todo), size):
            batch = [items[i] for i in todo[start : start + size]]
            if not self.resilience.reserve(1):
                results = [SafetyVerdict.skip(it.id, PROVIDER_NAME, SKIP_BUDGET_EXHAUSTED) for it in batch]
            else:
                try:
                    results = self._analyze_batch(batch)
                except Exception as exc:  # noqa: BLE001 - never let a bug escape analyze()
                    results = [
                        SafetyVerdict.failed(
                            it.id, PROVIDER_NAME, f"{PROVIDER_NAME}: internal error ({type(exc).__name__})"
                        )
                        for it in batch
                    ]
            for i, v in zip(todo[start : start + size], results, strict=True):
                verdicts[i] = v
        return [verdicts[i] for i in range(len(items))]

    def _analyze_batch(self, batch: Sequence[SafetyItem]) -> list[SafetyVerdict]:
        texts: list[str] = []
        owners: list[int] = []
        for k, item in enumerate(batch):
            for text in (item.prompt, item.response):
                if text:
                    texts.append(text[: self.config.max_chars])
                    owners.append(k)
        if not texts:
            return [
                SafetyVerdict(item_id=it.id, provider=PROVIDER_NAME, harm={b: 0.0 for b in HARM_BUCKETS})
                for it in batch
            ]
        try:
            results = self.resilience.call(lambda: self._moderate(texts), _classify)
        except ProviderCallError as err:
            return [
                SafetyVerdict.failed(it.id, PROVIDER_NAME, f"{PROVIDER_NAME} moderations: {err.reason}")
                for it in batch
            ]
        harm: list[dict[str, float]] = [dict.fromkeys(HARM_BUCKETS, 0.0) for _ in batch]
        flagged: list[set[str]] = [set() for _ in batch]
        categories: list[set[str]] = [set() for _ in batch]
        for owner, (scores, flags) in zip(owners, results, strict=True):
            for category, bucket in CATEGORY_TO_BUCKET.items():
                score = scores.get(category, 0.0)
                harm[owner][bucket] = max(harm[owner][bucket], score)
                threshold = self.config.score_thresholds.get(bucket)
                if flags.get(category) or (threshold is not None and score >= threshold):
                    flagged[owner].add(bucket)
                    categories[owner].add(category)
        return [
            SafetyVerdict(
                item_id=it.id,
                provider=PROVIDER_NAME,
                harm=harm[k],
                flagged=tuple(flagged[k]),
                details={"categories": sorted(categories[k])},
            )
            for k, it in enumerate(batch)
        ]

    def _moderate(self, texts: list[str]) -> list[tuple[dict[str, float], dict[str, bool]]]:
        response = self._client.moderations.create(model=self.config.model, input=texts)
        data = response.model_dump(by_alias=True)
        results = data.get("results")
        if not isinstance(results, list) or len(results) != len(texts):
            raise ProviderCallError("malformed response")
        out: list[tuple[dict[str, float], dict[str, bool]]] = []
        for r in results:
            scores, flags = r.get("category_scores"), r.get("categories")
            if not isinstance(scores, dict) or not isinstance(flags, dict):
                raise ProviderCallError("malformed response")
            clean: dict[str, float] = {}
            for category in CATEGORY_TO_BUCKET:
                value = scores.get(category)
                if value is None:
                    continue
                if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                    raise ProviderCallError("malformed response")
                clean[category] = float(value)
            out.append((clean, {c: bool(v) for c, v in flags.items() if c in CATEGORY_TO_BUCKET}))
        return out


def _classify(exc: BaseException) -> ProviderCallError:
    """A safe, secret-free ``ProviderCallError`` for whatever the SDK raised."""
    if isinstance(exc, openai.APIStatusError):
        return http_failure(exc.status_code, type(exc).__name__, exc.response.headers)
    if isinstance(exc, (openai.APITimeoutError, openai.APIConnectionError)):
        return http_failure(None, type(exc).__name__)
    if isinstance(exc, (openai.APIResponseValidationError, ValueError, KeyError, TypeError, AttributeError)):
        return ProviderCallError("malformed response")
    return ProviderCallError(f"unexpected error ({type(exc).__name__})")


__all__ = [
    "CATEGORY_TO_BUCKET",
    "DEFAULT_MODEL",
    "PROVIDER_NAME",
    "OpenAIModerationConfig",
    "OpenAIModerationProvider",
]
