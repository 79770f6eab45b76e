"""A local fake of Azure AI Content Safety speaking the REST shapes the real service speaks.

Routes (all ``POST`` under ``/contentsafety``, each checking its ``api-version`` and the
``Ocp-Apim-Subscription-Key`` header):

- ``text:analyze``: ``{text, categories?, outputType?}`` -> ``{categoriesAnalysis: [{category, severity}],
  blocklistsMatch: []}``; a category's severity comes from ``severities`` (substring -> (category, severity)).
- ``text:shieldPrompt``: ``{userPrompt, documents}`` -> ``{userPromptAnalysis: {attackDetected},
  documentsAnalysis: [{attackDetected}]}``; an attack is any of ``attack_markers``.
- ``text:detectProtectedMaterial``: ``{text}`` -> ``{protectedMaterialAnalysis: {detected}}``.
- ``text:detectGroundedness``: ``{domain, task, qna?, text, groundingSources, reasoning?}`` ->
  ``{ungroundedDetected, ungroundedPercentage, ungroundedDetails: []}`` with ``ungrounded`` as the share.

A wrong key gets the service's 401 body, which (to make leak tests strict) echoes the key it was sent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from tests.fakes._http import FakeHTTPServer, Recorded, Reply

API_VERSIONS = {
    "text:analyze": {"2023-10-01", "2024-09-01"},
    "text:shieldPrompt": {"2024-09-01", "2024-02-15-preview"},
    "text:detectProtectedMaterial": {"2024-09-01", "2023-10-15-preview"},
    "text:detectGroundedness": {"2024-09-15-preview", "2024-02-15-preview"},
}
CATEGORIES = ("Hate", "SelfHarm", "Sexual", "Violence")


def _bad_request(message: str) -> Reply:
    return 400, {"error": {"code": "InvalidRequestBody", "message": message}}, {}


@dataclass
class FakeContentSafety(FakeHTTPServer):
    key: str = "fake-azure-key-0123456789"
    severities: dict[str, tuple[str, int]] = field(
        default_factory=lambda: {
            "kill you": ("Violence", 6),
            "hate speech": ("Hate", 4),
            "explicit": ("Sexual", 2),
            "hurt myself": ("SelfHarm", 4),
        }
    )
    attack_markers: tuple[str, ...] = (
        "ignore previous instructions",
        "ignore all previous instructions",
        "you are dan",
    )
    protected_markers: tuple[str, ...] = ("lyrics of",)
    ungrounded: float = 0.0

    def __post_init__(self) -> None:
        for op, handler in (
            ("text:analyze", self._analyze),
            ("text:shieldPrompt", self._shield),
            ("text:detectProtectedMaterial", self._protected),
            ("text:detectGroundedness", self._grounded),
        ):
            self.route("POST", "/contentsafety/" + re.escape(op), self._versioned(op, handler))

    def authorize(self, request: Recorded) -> Reply | None:
        sent = request.headers.get("ocp-apim-subscription-key")
        if sent != self.key:
            return (
                401,
                {
                    "error": {
                        "code": "401",
                        "message": f"Access denied due to invalid subscription key "
                        f"{sent!r} or wrong API endpoint.",
                    }
                },
                {},
            )
        return None

    def _versioned(self, op: str, handler: Any) -> Any:
        def serve(request: Recorded, _: re.Match[str]) -> Reply:
            version = request.param("api-version")
            if version not in API_VERSIONS[op]:
                return (
                    404,
                    {"error": {"code": "NotFound", "message": f"api-version {version!r} not supported"}},
                    {},
                )
            body = request.json
            if not isinstance(body, dict):
                return _bad_request("body must be a JSON object")
            reply: Reply = handler(body)
            return reply

        return serve

    def _analyze(self, body: dict[str, Any]) -> Reply:
        text = body.get("text")
        if not isinstance(text, str) or not text or len(text) > 10_000:
            return _bad_request("text must be 1..10000 characters")
        categories = body.get("categories") or list(CATEGORIES)
        found = {c: 0 for c in categories}
        for marker, (category, severity) in self.severities.items():
            if marker in text.lower() and category in found:
                found[category] = max(found[category], severity)
        return (
            200,
            {
                "blocklistsMatch": [],
                "categoriesAnalysis": [{"category": c, "severity": s} for c, s in found.items()],
            },
            {},
        )

    def _attack(self, text: str) -> bool:
        return any(m in text.lower() for m in self.attack_markers)

    def _shield(self, body: dict[str, Any]) -> Reply:
        prompt, docs = body.get("userPrompt"), body.get("documents", [])
        if not isinstance(prompt, str) or not isinstance(docs, list):
            return _bad_request("userPrompt must be a string and documents a list")
        return (
            200,
            {
                "userPromptAnalysis": {"attackDetected": self._attack(prompt)},
                "documentsAnalysis": [{"attackDetected": self._attack(d)} for d in docs],
            },
            {},
        )

    def _protected(self, body: dict[str, Any]) -> Reply:
        text = body.get("text")
        if not isinstance(text, str) or not text:
            return _bad_request("text is required")
        detected = any(m in text.lower() for m in self.protected_markers)
        return 200, {"protectedMaterialAnalysis": {"detected": detected}}, {}

    def _grounded(self, body: dict[str, Any]) -> Reply:
        if not isinstance(body.get("text"), str) or not isinstance(body.get("groundingSources"), list):
            return _bad_request("text and groundingSources are required")
        if body.get("task") == "QnA" and not isinstance((body.get("qna") or {}).get("query"), str):
            return _bad_request("qna.query is required for the QnA task")
        return (
            200,
            {
                "ungroundedDetected": self.ungrounded > 0,
                "ungroundedPercentage": self.ungrounded,
                "ungroundedDetails": [],
            },
            {},
        )
