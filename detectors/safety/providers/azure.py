"""Azure AI Content Safety as a ``SafetyProvider``, through the official ``ContentSafetyClient``.

Per item, each call through ``Resilience`` (retries, breaker, budget, sampling):

- ``text:analyze`` (the SDK's ``analyze_text``, categories Hate, SelfHarm, Sexual, Violence,
  ``FourSeverityLevels``) on the prompt and on the response. Severities 0/2/4/6 map to 0, 1/3, 2/3, 1; a bucket
  takes the larger of prompt and response and is flagged at ``severity_thresholds`` (default 4, "medium").
  Text over ``max_text_chars`` (the service's 10k limit) is split on whitespace into at most ``max_chunks``
  pieces, each analysed (the most severe wins); past that it is truncated and ``details["truncated"]`` says so.
- ``text:shieldPrompt`` (Prompt Shields, api-version 2024-09-01): ``userPrompt`` and ``documents`` ->
  ``injection_attack`` and ``indirect_attack``. Prompt and documents are truncated to the service limits.
- ``text:detectProtectedMaterial`` on the response (skipped under ``protected_material_min_chars``, truncated
  to ``protected_material_max_chars``) -> ``protected_material``.
- ``text:detectGroundedness`` (a preview api-version) for items with documents and a response ->
  ``ungrounded`` (the ungrounded share of the response, 0..1).

The last three are not in the stable SDK, so they go through the same client's ``send_request`` with
``HttpRequest("POST", "/text:shieldPrompt", params={"api-version": ...}, json=...)``: the path is relative to
``{endpoint}/contentsafety``, and the client's key auth (``Ocp-Apim-Subscription-Key``) applies. The SDK's own
retry policy is switched off (``retry_total=0``): ``Resilience`` is the one place that retries.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from azure.ai.contentsafety import ContentSafetyClient
from azure.ai.contentsafety.models import AnalyzeTextOptions, TextCategory
from azure.core.credentials import AzureKeyCredential
from azure.core.exceptions import DecodeError, HttpResponseError, ServiceRequestError, ServiceResponseError
from azure.core.rest import HttpRequest

from detectors.base import ConfigError
from detectors.safety.base import SKIP_BUDGET_EXHAUSTED, SKIP_SAMPLED_OUT, SafetyItem, SafetyVerdict
from detectors.safety.providers.resilience import (
    ProviderCallError,
    Resilience,
    SecretLike,
    http_failure,
    secret_value,
)

PROVIDER_NAME = "azure"
SHIELD_API_VERSION = "2024-09-01"
PROTECTED_MATERIAL_API_VERSION = "2024-09-01"
GROUNDEDNESS_API_VERSION = "2024-09-15-preview"
CATEGORY_TO_BUCKET: Mapping[str, str] = MappingProxyType(
    {"Hate": "hate", "SelfHarm": "self_harm", "Sexual": "sexual", "Violence": "violence"}
)
MAX_SEVERITY = 6


@dataclass(frozen=True)
class AzureContentSafetyConfig:
    endpoint: str
    severity_thresholds: Mapping[str, int] = field(
        default_factory=lambda: {"hate": 4, "self_harm": 4, "sexual": 4, "violence": 4}
    )
    analyze_prompt: bool = True
    analyze_response: bool = True
    prompt_shields: bool = True
    protected_material: bool = True
    groundedness: bool = True
    shield_api_version: str = SHIELD_API_VERSION
    protected_material_api_version: str = PROTECTED_MATERIAL_API_VERSION
    groundedness_api_version: str = GROUNDEDNESS_API_VERSION
    groundedness_domain: str = "Generic"
    max_text_chars: int = 10_000
    max_chunks: int = 3
    shield_max_chars: int = 10_000
    protected_material_min_chars: int = 110
    protected_material_max_chars: int = 1_000
    groundedness_max_text_chars: int = 7_500
    groundedness_max_source_chars: int = 55_000
    connection_timeout_s: float = 5.0
    read_timeout_s: float = 15.0

    def __post_init__(self) -> None:
        if not isinstance(self.endpoint, str) or not self.endpoint.startswith(("http://", "https://")):
            raise ConfigError(
                "endpoint must be an http(s) URL such as https://NAME.cognitiveservices.azure.com"
            )
        object.__setattr__(self, "endpoint", self.endpoint.rstrip("/"))
        unknown = set(self.severity_thresholds) - set(CATEGORY_TO_BUCKET.values())
        if unknown:
            raise ConfigError(
                f"unknown Azure buckets {sorted(unknown)}; expected hate, self_harm, sexual, violence"
            )
        merged = {b: 4 for b in CATEGORY_TO_BUCKET.values()} | dict(self.severity_thresholds)
        for b, t in merged.items():
            if t not in (0, 1, 2, 3, 4, 5, 6, 7):
                raise ConfigError(f"severity threshold of {b!r} must be a severity 0..7, got {t!r}")
        object.__setattr__(self, "severity_thresholds", MappingProxyType(merged))
        for name in (
            "max_text_chars",
            "max_chunks",
            "shield_max_chars",
            "protected_material_max_chars",
            "groundedness_max_text_chars",
            "groundedness_max_source_chars",
        ):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ConfigError(f"{name} must be a positive int")


def split_text(text: str, limit: int, max_chunks: int) -> tuple[list[str], bool]:
    """Pieces of at most ``limit`` characters, cut at the last whitespace when there is one, at most
    ``max_chunks`` of them; and whether anything was left out."""
    chunks: list[str] = []
    rest = text
    while rest and len(chunks) < max_chunks:
        if len(rest) <= limit:
            chunks.append(rest)
            rest = ""
            break
        cut = rest.rfind(" ", limit // 2, limit)
        cut = limit if cut <= 0 else cut
        chunks.append(rest[:cut])
        rest = rest[cut:].lstrip()
    return chunks, bool(rest)


def _truncate_documents(documents: Sequence[str], budget: int) -> list[str]:
    out: list[str] = []
    for doc in documents:
        if budget <= 0:
            break
        out.append(doc[:budget])
        budget -= len(out[-1])
    return out


class AzureContentSafetyProvider:
    """Azure AI Content Safety; ``analyze`` never raises for a service failure (see module doc)."""

    def __init__(
        self,
        config: AzureContentSafetyConfig,
        api_key: str | SecretLike,
        *,
        resilience: Resilience | None = None,
        client: ContentSafetyClient | None = None,
        **client_kwargs: Any,
    ) -> None:
        self.config = config
        self.resilience = resilience or Resilience()
        key = secret_value(api_key)
        self._client = client or ContentSafetyClient(
            config.endpoint,
            AzureKeyCredential(key),
            retry_total=0,
            connection_timeout=config.connection_timeout_s,
            read_timeout=config.read_timeout_s,
            **client_kwargs,
        )

    @property
    def name(self) -> str:
        return PROVIDER_NAME

    def __repr__(self) -> str:
        return f"AzureContentSafetyProvider(endpoint={self.config.endpoint!r})"

    def close(self) -> None:
        self._client.close()

    # ----------------------------------------------------------------------------------------- calls

    def _call(self, fn: Callable[[], Any]) -> Any:
        return self.resilience.call(fn, _classify)

    def _analyze_text(self, text: str) -> dict[str, int]:
        def run() -> dict[str, int]:
            result = self._client.analyze_text(
                AnalyzeTextOptions(
                    text=text,
                    categories=[
                        TextCategory.HATE,
                        TextCategory.SELF_HARM,
                        TextCategory.SEXUAL,
                        TextCategory.VIOLENCE,
                    ],
                    output_type="FourSeverityLevels",
                )
            )
            severities: dict[str, int] = {}
            for entry in result["categoriesAnalysis"]:
                bucket = CATEGORY_TO_BUCKET.get(str(entry["category"]))
                severity = entry.get("severity")
                if bucket is None or not isinstance(severity, int) or not 0 <= severity <= 7:
                    raise _malformed()
                severities[bucket] = severity
            return severities

        return dict(self._call(run))

    def _post(self, path: str, api_version: str, body: dict[str, Any]) -> dict[str, Any]:
        def run() -> dict[str, Any]:
            response = self._client.send_request(
                HttpRequest("POST", path, params={"api-version": api_version}, json=body)
            )
            if response.status_code != 200:
                raise http_failure(response.status_code, "", response.headers)
            data = response.json()
            if not isinstance(data, dict):
                raise _malformed()
            return data

        result: dict[str, Any] = self._call(run)
        return result

    # ----------------------------------------------------------------------------------------- plan

    def _texts(self, text: str) -> tuple[list[str], bool]:
        return split_text(text, self.config.max_text_chars, self.config.max_chunks) if text else ([], False)

    def _plan(self, item: SafetyItem) -> dict[str, Any]:
        cfg = self.config
        prompt_chunks, cut_p = self._texts(item.prompt) if cfg.analyze_prompt else ([], False)
        response_chunks, cut_r = self._texts(item.response) if cfg.analyze_response else ([], False)
        return {
            "chunks": prompt_chunks + response_chunks,
            "truncated": cut_p or cut_r,
            "shield": cfg.prompt_shields and bool(item.prompt or item.documents),
            "protected": cfg.protected_material and len(item.response) >= cfg.protected_material_min_chars,
            "grounded": cfg.groundedness and bool(item.documents) and bool(item.response),
        }

    @staticmethod
    def _n_calls(plan: Mapping[str, Any]) -> int:
        return len(plan["chunks"]) + int(plan["shield"]) + int(plan["protected"]) + int(plan["grounded"])

    # ----------------------------------------------------------------------------------------- verdicts

    def analyze(self, items: Sequence[SafetyItem]) -> list[SafetyVerdict]:
        out: list[SafetyVerdict] = []
        for item in items:
            if not self.resilience.sampled(item.id):
                out.append(SafetyVerdict.skip(item.id, PROVIDER_NAME, SKIP_SAMPLED_OUT))
                continue
            plan = self._plan(item)
            if not self.resilience.reserve(self._n_calls(plan)):
                out.append(SafetyVerdict.skip(item.id, PROVIDER_NAME, SKIP_BUDGET_EXHAUSTED))
                continue
            try:
                out.append(self._analyze_one(item, plan))
            except Exception as exc:  # noqa: BLE001 - never let one item's bug escape analyze()
                out.append(
                    SafetyVerdict.failed(
                        item.id, PROVIDER_NAME, f"{PROVIDER_NAME}: internal error ({type(exc).__name__})"
                    )
                )
        return out

    def _analyze_one(self, item: SafetyItem, plan: Mapping[str, Any]) -> SafetyVerdict:
        cfg = self.config
        errors: list[str] = []
        severities: dict[str, int] = {}
        analysed = 0
        for chunk in plan["chunks"]:
            try:
                for bucket, sev in self._analyze_text(chunk).items():
                    severities[bucket] = max(sev, severities.get(bucket, 0))
                analysed += 1
            except ProviderCallError as err:
                errors.append(f"{PROVIDER_NAME} text:analyze: {err.reason}")
                if err.reason == "circuit open":
                    break

        injection = indirect = protected = None
        ungrounded: float | None = None
        details: dict[str, Any] = {"truncated": plan["truncated"], "chunks": len(plan["chunks"])}
        body: dict[str, Any]
        if plan["shield"]:
            body = {
                "userPrompt": item.prompt[: cfg.shield_max_chars],
                "documents": _truncate_documents(item.documents, cfg.shield_max_chars),
            }
            try:
                data = self._post("/text:shieldPrompt", cfg.shield_api_version, body)
                injection = bool(data["userPromptAnalysis"]["attackDetected"]) if item.prompt else None
                docs = data.get("documentsAnalysis") or []
                indirect = any(bool(d["attackDetected"]) for d in docs) if item.documents else None
            except ProviderCallError as err:
                errors.append(f"{PROVIDER_NAME} text:shieldPrompt: {err.reason}")
            except (KeyError, TypeError):
                errors.append(f"{PROVIDER_NAME} text:shieldPrompt: malformed response")
        if plan["protected"]:
            try:
                data = self._post(
                    "/text:detectProtectedMaterial",
                    cfg.protected_material_api_version,
                    {"text": item.response[: cfg.protected_material_max_chars]},
                )
                protected = bool(data["protectedMaterialAnalysis"]["detected"])
            except ProviderCallError as err:
                errors.append(f"{PROVIDER_NAME} text:detectProtectedMaterial: {err.reason}")
            except (KeyError, TypeError):
                errors.append(f"{PROVIDER_NAME} text:detectProtectedMaterial: malformed response")
        if plan["grounded"]:
            body = {
                "domain": cfg.groundedness_domain,
                "task": "QnA" if item.prompt else "Summarization",
                "text": item.response[: cfg.groundedness_max_text_chars],
                "groundingSources": _truncate_documents(item.documents, cfg.groundedness_max_source_chars),
                "reasoning": False,
            }
            if item.prompt:
                body["qna"] = {"query": item.prompt[: cfg.groundedness_max_text_chars]}
            try:
                data = self._post("/text:detectGroundedness", cfg.groundedness_api_version, body)
                share = float(data["ungroundedPercentage"])
                if not 0.0 <= share <= 1.0:
                    raise ValueError
                ungrounded = share
                details["ungrounded_detected"] = bool(data.get("ungroundedDetected"))
            except ProviderCallError as err:
                errors.append(f"{PROVIDER_NAME} text:detectGroundedness: {err.reason}")
            except (KeyError, TypeError, ValueError):
                errors.append(f"{PROVIDER_NAME} text:detectGroundedness: malformed response")

        harm: dict[str, float] = {}
        flagged: list[str] = []
        if analysed:
            for bucket in CATEGORY_TO_BUCKET.values():
                sev = severities.get(bucket, 0)
                harm[bucket] = min(1.0, sev / MAX_SEVERITY)
                if sev >= cfg.severity_thresholds[bucket] and sev > 0:
                    flagged.append(bucket)
            details["severities"] = dict(severities)
        return SafetyVerdict(
            item_id=item.id,
            provider=PROVIDER_NAME,
            harm=harm,
            flagged=tuple(flagged),
            injection_attack=injection,
            indirect_attack=indirect,
            protected_material=protected,
            ungrounded=ungrounded,
            errors=tuple(errors),
            details=details,
        )


def _malformed() -> ProviderCallError:
    return ProviderCallError("malformed response")


def _classify(exc: BaseException) -> ProviderCallError:
    """A safe, secret-free ``ProviderCallError`` for whatever the SDK raised."""
    if isinstance(exc, DecodeError):
        return _malformed()
    if isinstance(exc, HttpResponseError) and exc.status_code is not None:
        headers = getattr(exc.response, "headers", None)
        return http_failure(exc.status_code, type(exc).__name__, headers)
    if isinstance(exc, (ServiceRequestError, ServiceResponseError)):
        return http_failure(None, type(exc).__name__)
    if isinstance(
        exc, (ValueError, KeyError, TypeError, AttributeError)
    ):  # JSON decode errors are ValueErrors
        return _malformed()
    return ProviderCallError(f"unexpected error ({type(exc).__name__})")


__all__ = [
    "CATEGORY_TO_BUCKET",
    "GROUNDEDNESS_API_VERSION",
    "PROTECTED_MATERIAL_API_VERSION",
    "PROVIDER_NAME",
    "SHIELD_API_VERSION",
    "AzureContentSafetyConfig",
    "AzureContentSafetyProvider",
    "split_text",
]
