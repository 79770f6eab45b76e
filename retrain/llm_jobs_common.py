"""What the prompt-update and fine-tune jobs share: the input type, redaction on the way out, the OpenAI client,
MLflow access and errors. See ``docs/llm_jobs.md``.

The redaction rule is enforced here, at the one place text leaves: every string that goes into an OpenAI
request (chat messages, the uploaded training file) passes through ``scrub``, which runs ``redact`` until
nothing is found any more and fails closed if that does not converge. The jobs scrub once more when they gather
the examples, so what is stored (prompt versions, run tags) is redacted too.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

import openai

from detectors.safety.redact import find_pii, redact

if TYPE_CHECKING:  # mlflow takes seconds to import: only the functions that talk to it import it
    from mlflow import MlflowClient

log = logging.getLogger(__name__)

DEFAULT_API_KEY_ENV = "OPENAI_API_KEY"
MAX_SCRUB_PASSES = 4
JobPurpose = Literal["prompt_update", "fine_tune"]


class LLMJobError(Exception):
    """A job could not run to its end. ``str()`` is safe to log and store: it never holds an API key or the
    text of an example. ``retryable`` says whether running the same trigger again may succeed."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


class LLMJobConfigError(LLMJobError, ValueError):
    """A job configured so that it cannot work (no drafting source, a bad scorer, an unreadable golden set)."""


class UnredactableText(LLMJobError):
    """Redaction did not converge on a text; it is not sent anywhere."""


# --------------------------------------------------------------------------------------------- the input


@dataclass(frozen=True)
class Example:
    """One LLM interaction as the jobs see it. ``rating``: -1 bad, +1 good (thumbs), None unrated. ``flags``:
    detector name -> verdict (truthy means flagged, e.g. ``{"pii": True, "toxicity": 0.0}``); the jobs' ``flag_keys``
    setting says which names count (default: all)."""

    prompt: str
    response: str
    corrected_response: str | None = None
    rating: int | None = None
    flags: dict[str, Any] = field(default_factory=dict)

    def flag_names(self, keys: Collection[str] | None = None) -> tuple[str, ...]:
        """The flags set (truthy), among ``keys`` when given (the flags that mean "this interaction failed":
        a flags dict may also carry facts such as the user's own prompt holding PII)."""
        return tuple(sorted(k for k, v in self.flags.items() if v and (keys is None or k in keys)))

    def is_flagged(self, keys: Collection[str] | None = None) -> bool:
        return bool(self.flag_names(keys))

    @property
    def corrected(self) -> bool:
        return bool(self.corrected_response and self.corrected_response.strip())

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Example:
        rating = d.get("rating")
        return cls(
            prompt=str(d.get("prompt") or ""),
            response=str(d.get("response") or ""),
            corrected_response=None if d.get("corrected_response") is None else str(d["corrected_response"]),
            rating=None if rating is None else int(rating),
            flags=dict(d.get("flags") or {}),
        )


class ExampleLoader(Protocol):
    """Where a runner gets the examples behind a trigger (the lead connects it to the LLM interactions table).

    ``purpose`` tells what they are for: ``prompt_update`` wants the failing ones (flagged, badly rated or
    corrected), ``fine_tune`` the curated ones (corrected or well rated). A loader may return more than asked
    for in kind: the jobs filter again. Newest first, at most ``limit``."""

    def load_examples(
        self, trigger: Mapping[str, Any], *, purpose: JobPurpose, limit: int
    ) -> Sequence[Example]: ...


# ------------------------------------------------------------------------------------------- redaction


@dataclass
class RedactionTally:
    """How many spans of each kind were redacted on the way out (counts only, never values)."""

    counts: Counter[str] = field(default_factory=Counter)

    def add(self, counts: Mapping[str, int]) -> None:
        self.counts.update(counts)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def as_dict(self) -> dict[str, int]:
        return dict(sorted(self.counts.items()))

    def as_tag(self) -> str:
        return ",".join(f"{k}={v}" for k, v in sorted(self.counts.items())) or "none"


def scrub(text: str, tally: RedactionTally | None = None) -> str:
    """``text`` with all personal data and secrets replaced by placeholders. Redaction runs again on its own
    output until nothing is found (removing one span can, in theory, bring two pieces together that match);
    if that does not settle, ``UnredactableText`` is raised and the text goes nowhere."""
    if not isinstance(text, str):
        raise TypeError(f"text must be str, not {type(text).__name__}")
    for _ in range(MAX_SCRUB_PASSES):
        result = redact(text)
        if not result.total:
            return text
        if tally is not None:
            tally.add(result.counts)
        text = result.text
    if find_pii(text):
        raise UnredactableText("a text still holds personal data after repeated redaction; it was not sent")
    return text


def scrub_messages(
    messages: Sequence[Mapping[str, Any]], tally: RedactionTally | None = None
) -> list[dict[str, Any]]:
    """Chat messages with every string content scrubbed (also the text parts of multi-part contents)."""
    out: list[dict[str, Any]] = []
    for m in messages:
        msg = dict(m)
        content = msg.get("content")
        if isinstance(content, str):
            msg["content"] = scrub(content, tally)
        elif isinstance(content, list):
            parts = []
            for part in content:
                if isinstance(part, Mapping) and isinstance(part.get("text"), str):
                    part = {**part, "text": scrub(part["text"], tally)}
                parts.append(part)
            msg["content"] = parts
        out.append(msg)
    return out


def clip(text: str, max_chars: int) -> str:
    """Cut to ``max_chars`` (after redaction: cutting first could leave half a card number undetected)."""
    return text if len(text) <= max_chars else text[: max_chars - 1] + "…"


# ---------------------------------------------------------------------------------------------- OpenAI


@dataclass(frozen=True)
class OpenAIConfig:
    """Where the OpenAI-compatible API is. The key is read from the environment variable ``api_key_env`` at
    run time (or passed to the job as ``api_key=``); it is never part of a config or a log line."""

    base_url: str | None = None
    api_key_env: str = DEFAULT_API_KEY_ENV
    timeout_s: float = 60.0

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,199}", self.api_key_env):
            raise LLMJobConfigError(
                f"api_key_env must be an environment variable name, got {self.api_key_env!r}"
            )
        if not self.timeout_s > 0:
            raise LLMJobConfigError(f"timeout_s must be > 0, got {self.timeout_s!r}")


class SecretLike(Protocol):
    def get_secret_value(self) -> str: ...


def resolve_api_key(cfg: OpenAIConfig, api_key: str | SecretLike | None) -> str:
    if api_key is not None:
        value = api_key.get_secret_value() if hasattr(api_key, "get_secret_value") else api_key
    else:
        value = os.environ.get(cfg.api_key_env, "")
    if not isinstance(value, str) or not value.strip():
        raise LLMJobConfigError(f"no OpenAI API key: set the environment variable {cfg.api_key_env}")
    return value


def make_client(cfg: OpenAIConfig, api_key: str | SecretLike | None) -> openai.OpenAI:
    """The official client with its own retries off (``max_retries=0``): the jobs decide what to retry."""
    return openai.OpenAI(
        base_url=cfg.base_url, api_key=resolve_api_key(cfg, api_key), max_retries=0, timeout=cfg.timeout_s
    )


_TRANSIENT_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, (openai.APIConnectionError, openai.APITimeoutError)):
        return True
    return isinstance(exc, openai.APIStatusError) and exc.status_code in _TRANSIENT_STATUS


def describe_api_error(exc: BaseException) -> str:
    """A safe one-line description: status and error code only. The server's message is left out on purpose
    (a 401 from OpenAI quotes the key it was sent; a 400 may quote the request)."""
    if isinstance(exc, openai.APIStatusError):
        body = exc.body if isinstance(exc.body, Mapping) else {}
        err = body.get("error", body) if isinstance(body, Mapping) else {}
        code = err.get("code") if isinstance(err, Mapping) else None
        return f"http {exc.status_code}" + (f" ({code})" if code else "")
    if isinstance(exc, openai.APITimeoutError):
        return "timeout"
    if isinstance(exc, openai.APIConnectionError):
        return "connection error"
    return type(exc).__name__


def api_error(what: str, exc: BaseException) -> LLMJobError:
    return LLMJobError(f"{what} failed: {describe_api_error(exc)}", retryable=is_transient(exc))


def safe_chat(
    client: openai.OpenAI,
    *,
    model: str,
    messages: Sequence[Mapping[str, Any]],
    tally: RedactionTally | None = None,
    what: str = "chat completion",
    **params: Any,
) -> str:
    """One chat completion whose messages are scrubbed right before they are sent; returns the reply text."""
    try:
        reply = client.chat.completions.create(
            model=model, messages=scrub_messages(messages, tally), **params
        )
    except openai.OpenAIError as exc:
        raise api_error(what, exc) from None
    if not reply.choices:
        raise LLMJobError(f"{what} returned no choices", retryable=True)
    return reply.choices[0].message.content or ""


# ---------------------------------------------------------------------------------------------- MLflow


def mlflow_client(tracking_uri: str | None) -> MlflowClient:
    """An ``MlflowClient`` on ``tracking_uri`` (registry on the same store); None means MLflow's own default
    (``MLFLOW_TRACKING_URI``). No global MLflow state is touched."""
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def tag_value(value: object, limit: int = 4000) -> str:
    """MLflow tag values are strings of bounded length."""
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ------------------------------------------------------------------------------------------------ misc


def trigger_field(trigger: Mapping[str, Any], name: str, default: str = "") -> str:
    value = trigger.get(name)
    return default if value is None else str(value)


def check_action(trigger: Mapping[str, Any], expected: str) -> None:
    action = trigger.get("action")
    if action is not None and action != expected:
        raise LLMJobConfigError(f"trigger {trigger.get('id')!r} is a {action!r} trigger, not {expected!r}")
    if not trigger.get("id"):
        raise LLMJobConfigError("the trigger has no id")


def estimate_tokens(text: str) -> int:
    """A rough, deliberately high token count (no tokenizer is installed): a token per 3.5 characters, and
    never fewer than the words."""
    return max(math.ceil(len(text) / 3.5), len(text.split()))


def estimate_chat_tokens(
    messages: Sequence[Mapping[str, Any]], count: Callable[[str], int] = estimate_tokens
) -> int:
    """Tokens of a chat example after OpenAI's cookbook recipe: 3 per message, 3 to prime the reply."""
    return 3 + sum(3 + count(str(m.get("role", ""))) + count(str(m.get("content") or "")) for m in messages)


__all__ = [
    "DEFAULT_API_KEY_ENV",
    "Example",
    "ExampleLoader",
    "JobPurpose",
    "LLMJobConfigError",
    "LLMJobError",
    "OpenAIConfig",
    "RedactionTally",
    "UnredactableText",
    "api_error",
    "check_action",
    "clip",
    "describe_api_error",
    "estimate_chat_tokens",
    "estimate_tokens",
    "is_transient",
    "make_client",
    "mlflow_client",
    "resolve_api_key",
    "safe_chat",
    "scrub",
    "scrub_messages",
    "tag_value",
    "trigger_field",
]
