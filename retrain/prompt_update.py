"""The prompt-update job: from a trigger and its failing interactions to a candidate prompt version in MLflow's
prompt registry that waits for a person's approval. See ``docs/llm_jobs.md``.

    failing examples ─ scrub ─▶ draft (OpenAI chat, or the user's template) ─▶ score on the golden set
        ─▶ register_prompt(name, template, commit_message, tags={"opsloop.status": "awaiting_approval", ...})

No alias moves here: ``approve_prompt(name, version)`` moves ``production`` later, ``reject_prompt`` marks a
candidate as refused. The job is idempotent per trigger: a version already registered for the trigger's id is
returned as it is, without calling anything.
"""

from __future__ import annotations

import importlib
import json
import logging
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import openai

from retrain.llm_jobs_common import (
    Example,
    LLMJobConfigError,
    LLMJobError,
    OpenAIConfig,
    RedactionTally,
    SecretLike,
    check_action,
    clip,
    make_client,
    mlflow_client,
    safe_chat,
    scrub,
    tag_value,
    trigger_field,
)

log = logging.getLogger(__name__)

TAG_STATUS = "opsloop.status"
TAG_TRIGGER = "opsloop.trigger_id"
AWAITING_APPROVAL = "awaiting_approval"
APPROVED = "approved"
REJECTED = "rejected"
SUPERSEDED = "superseded"
PRODUCTION_ALIAS = "production"
BUILTIN_SCORERS = ("exact", "contains")

DRAFT_SYSTEM_MESSAGE = (
    "You improve the prompt of an LLM application. You get the current prompt and interactions where the "
    "application failed: flagged by a safety or quality check, rated badly by the user, or corrected by a "
    "person (the corrected answer shows what was wanted). Write an improved prompt that keeps what works and "
    "prevents these failures. Keep every {{variable}} placeholder exactly as it is. Personal data in the "
    "examples was replaced by placeholders such as [EMAIL] or [CARD]: never put real-looking personal data "
    "into the prompt. Answer with the improved prompt text only, no explanation, no code fences."
)

_VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_FENCE = re.compile(r"^```[A-Za-z0-9_-]*\n(?P<body>.*)\n```$", re.DOTALL)

Scorer = Callable[[Any, str, str], float | bool]


@dataclass(frozen=True)
class PromptUpdateConfig:
    """How a candidate is drafted, scored and registered.

    ``prompt_name``: the MLflow prompt (default: the trigger's ``model``, i.e. the application). The candidate
    improves the version behind ``base_alias``; without one, the newest version that is not an opsloop candidate
    still waiting or rejected; with no version at all, ``initial_prompt``.
    Drafting: OpenAI chat with ``draft_model`` when set, else ``draft_template`` with ``{current_prompt}`` and
    ``{failures}`` placeholders. Scoring (when ``golden_set`` names a JSONL file of ``{"input", "expected"}``):
    ``answer_model`` (default ``draft_model``) answers each input with the candidate, ``scorer`` is ``exact``,
    ``contains`` or ``module:function`` taking ``(input, expected, output)`` and returning a bool or a float in
    [0, 1]. ``flag_keys``: the flag names that make an interaction a failure (default: any flag set)."""

    prompt_name: str | None = None
    tracking_uri: str | None = None
    openai: OpenAIConfig = field(default_factory=OpenAIConfig)
    draft_model: str | None = None
    draft_template: str | None = None
    draft_temperature: float | None = None
    initial_prompt: str | None = None
    base_alias: str = PRODUCTION_ALIAS
    golden_set: str | Path | None = None
    answer_model: str | None = None
    scorer: str = "contains"
    score_baseline: bool = True
    max_failures: int = 20
    max_chars: int = 2000
    max_golden: int = 200
    bad_rating_max: int = -1
    flag_keys: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if not self.draft_model and not self.draft_template:
            raise LLMJobConfigError(
                "set draft_model (draft with OpenAI) or draft_template (draft from a template)"
            )
        if self.draft_template is not None and "{current_prompt}" not in self.draft_template:
            raise LLMJobConfigError("draft_template must contain {current_prompt}")
        if self.scorer not in BUILTIN_SCORERS and not re.fullmatch(r"[\w.]+:[\w.]+", self.scorer):
            raise LLMJobConfigError(f"scorer must be exact, contains or module:function, got {self.scorer!r}")
        for name in ("max_failures", "max_chars", "max_golden"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise LLMJobConfigError(f"{name} must be a positive int, got {getattr(self, name)!r}")

    @property
    def scoring_model(self) -> str | None:
        return self.answer_model or self.draft_model


Status = Literal["awaiting_approval", "no_failures", "unchanged"]


@dataclass(frozen=True)
class PromptUpdateResult:
    """What the job did. ``status``: ``awaiting_approval`` (a candidate version was registered, or had been for
    this trigger: ``resumed``), ``no_failures`` (nothing to learn from), ``unchanged`` (the draft equals the
    current prompt). Texts are never part of it; ``redactions`` counts what was redacted, by kind."""

    status: Status
    trigger_id: str
    prompt_name: str
    version: int | None = None
    base_version: int | None = None
    n_failures: int = 0
    drafted_by: str = ""
    score: float | None = None
    baseline_score: float | None = None
    n_golden: int = 0
    redactions: Mapping[str, int] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    resumed: bool = False

    @property
    def uri(self) -> str | None:
        return None if self.version is None else f"prompts:/{self.prompt_name}/{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "trigger_id": self.trigger_id,
            "prompt_name": self.prompt_name,
            "version": self.version,
            "uri": self.uri,
            "base_version": self.base_version,
            "n_failures": self.n_failures,
            "drafted_by": self.drafted_by,
            "score": self.score,
            "baseline_score": self.baseline_score,
            "n_golden": self.n_golden,
            "redactions": dict(self.redactions),
            "warnings": list(self.warnings),
            "resumed": self.resumed,
        }


@dataclass(frozen=True)
class GoldenItem:
    input: str | dict[str, Any]
    expected: str


@dataclass(frozen=True)
class ApprovalResult:
    name: str
    version: int
    alias: str
    previous_version: int | None


# ------------------------------------------------------------------------------------------ the job


def run_prompt_update(
    trigger: Mapping[str, Any],
    examples: Sequence[Example],
    config: PromptUpdateConfig,
    *,
    api_key: str | SecretLike | None = None,
    client: openai.OpenAI | None = None,
) -> PromptUpdateResult:
    """Draft, score and register a candidate prompt for ``trigger`` from its ``examples``; see the module doc.
    Raises ``LLMJobConfigError`` for a job that cannot work as configured, ``LLMJobError`` when a call fails
    (``retryable`` says whether to run the trigger again); nothing is registered then."""
    check_action(trigger, "prompt_update")
    tid = trigger_field(trigger, "id")
    name = config.prompt_name or trigger_field(trigger, "model")
    if not name:
        raise LLMJobConfigError("no prompt name: set prompt_name or give the trigger a model")
    mlf = mlflow_client(config.tracking_uri)

    existing = _version_for_trigger(mlf, name, tid)
    if existing is not None:
        log.info("prompt update for trigger %s: %s v%s already registered", tid, name, existing.version)
        return _result_from_version(existing, tid, name)

    tally = RedactionTally()
    failures = select_failures(examples, config)
    if not failures:
        log.info("prompt update for trigger %s (%s): no failing interactions, nothing drafted", tid, name)
        return PromptUpdateResult("no_failures", tid, name)
    warnings: list[str] = []
    base_version, current = _current_prompt(mlf, name, config)
    in_current = RedactionTally()
    current_clean = scrub(current, in_current)
    if in_current.total:
        tally.add(in_current.counts)
        warnings.append(
            f"the current prompt held personal data or secrets ({in_current.as_tag()}); "
            "the candidate has placeholders there"
        )
    failures_text = format_failures(failures, config, tally)
    golden = load_golden_set(config.golden_set, config.max_golden) if config.golden_set else []

    needs_client = bool(config.draft_model) or bool(golden and config.scoring_model)
    own_client = client is None and needs_client
    if own_client:
        client = make_client(config.openai, api_key)
    try:
        if config.draft_model:
            assert client is not None
            drafted_by = f"openai:{config.draft_model}"
            candidate = draft_with_chat(client, config, current_clean, failures_text, tally)
        else:
            assert config.draft_template is not None
            drafted_by = "template"
            candidate = draft_from_template(config.draft_template, current_clean, failures_text)
        candidate = scrub(candidate, tally)  # the model could echo or invent personal data
        if not candidate.strip():
            raise LLMJobError("the drafted prompt is empty", retryable=bool(config.draft_model))
        if candidate.strip() == current_clean.strip():
            log.info("prompt update for trigger %s (%s): the draft equals the current prompt", tid, name)
            return PromptUpdateResult(
                "unchanged",
                tid,
                name,
                base_version=base_version,
                n_failures=len(failures),
                drafted_by=drafted_by,
                redactions=tally.as_dict(),
            )
        lost = sorted(set(_VARIABLE.findall(current)) - set(_VARIABLE.findall(candidate)))
        if lost:
            warnings.append(f"the candidate drops the variables {', '.join(lost)}")

        score = baseline = None
        if golden and config.scoring_model:
            assert client is not None
            scorer = resolve_scorer(config.scorer)
            score = score_prompt(client, config.scoring_model, candidate, golden, scorer, tally)
            if config.score_baseline:
                baseline = score_prompt(client, config.scoring_model, current_clean, golden, scorer, tally)
        elif golden:
            warnings.append("a golden set is configured but no answer_model or draft_model to answer it")
    finally:
        if own_client and client is not None:
            client.close()

    tags = {
        TAG_STATUS: AWAITING_APPROVAL,
        TAG_TRIGGER: tid,
        "opsloop.job": "prompt_update",
        "opsloop.model": trigger_field(trigger, "model"),
        "opsloop.model_version": trigger_field(trigger, "model_version"),
        "opsloop.base_version": "none" if base_version is None else str(base_version),
        "opsloop.drafted_by": drafted_by,
        "opsloop.failures": str(len(failures)),
        "opsloop.redactions": tally.as_tag(),
        "opsloop.created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if score is not None:
        tags.update(
            {
                "opsloop.golden.score": f"{score:.6g}",
                "opsloop.golden.n": str(len(golden)),
                "opsloop.golden.scorer": config.scorer,
            }
        )
    if baseline is not None:
        tags["opsloop.golden.baseline_score"] = f"{baseline:.6g}"
    if warnings:
        tags["opsloop.warnings"] = tag_value("; ".join(warnings))
    reason = scrub(trigger_field(trigger, "reason"))
    message = tag_value(
        f"opsloop candidate for trigger {tid}: {len(failures)} failing interactions"
        + (f" ({clip(reason, 300)})" if reason else ""),
        1000,
    )
    pv = mlf.register_prompt(name=name, template=candidate, commit_message=message, tags=tags)
    log.info(
        "prompt update for trigger %s: registered %s v%s, awaiting approval (score %s, baseline %s)",
        tid,
        name,
        pv.version,
        score,
        baseline,
    )
    return PromptUpdateResult(
        AWAITING_APPROVAL,
        tid,
        name,
        version=int(pv.version),
        base_version=base_version,
        n_failures=len(failures),
        drafted_by=drafted_by,
        score=score,
        baseline_score=baseline,
        n_golden=len(golden) if score is not None else 0,
        redactions=tally.as_dict(),
        warnings=tuple(warnings),
    )


# ---------------------------------------------------------------------------------- gathering, drafting


def is_failure(example: Example, bad_rating_max: int = -1, flag_keys: Collection[str] | None = None) -> bool:
    """Flagged (by one of ``flag_keys``, default any), rated at or below ``bad_rating_max``, or corrected."""
    bad = example.rating is not None and example.rating <= bad_rating_max
    return example.is_flagged(flag_keys) or bad or example.corrected


def select_failures(examples: Sequence[Example], config: PromptUpdateConfig) -> list[Example]:
    return [e for e in examples if is_failure(e, config.bad_rating_max, config.flag_keys)][
        : config.max_failures
    ]


def format_failures(failures: Sequence[Example], config: PromptUpdateConfig, tally: RedactionTally) -> str:
    """The failing interactions as plain text, every text redacted and then cut to ``max_chars``."""
    blocks = []
    for i, e in enumerate(failures, 1):
        why = []
        if e.is_flagged(config.flag_keys):
            why.append("flagged: " + ", ".join(e.flag_names(config.flag_keys)))
        if e.rating is not None and e.rating <= config.bad_rating_max:
            why.append(f"user rating {e.rating}")
        if e.corrected:
            why.append("corrected by a person")
        lines = [
            f"### Failure {i} ({'; '.join(why)})",
            "User: " + clip(scrub(e.prompt, tally), config.max_chars),
            "Assistant: " + clip(scrub(e.response, tally), config.max_chars),
        ]
        if e.corrected and e.corrected_response is not None:
            lines.append("Wanted answer: " + clip(scrub(e.corrected_response, tally), config.max_chars))
        blocks.append("\n".join(lines))
    return scrub("\n\n".join(blocks), tally)


def draft_with_chat(
    client: openai.OpenAI, config: PromptUpdateConfig, current: str, failures: str, tally: RedactionTally
) -> str:
    assert config.draft_model is not None
    user = f"Current prompt:\n<<<\n{current}\n>>>\n\nFailing interactions:\n\n{failures}"
    params: dict[str, Any] = {}
    if config.draft_temperature is not None:
        params["temperature"] = config.draft_temperature
    text = safe_chat(
        client,
        model=config.draft_model,
        messages=[{"role": "system", "content": DRAFT_SYSTEM_MESSAGE}, {"role": "user", "content": user}],
        tally=tally,
        what="drafting the prompt",
        **params,
    )
    text = text.strip()
    fenced = _FENCE.match(text)
    return fenced["body"].strip() if fenced else text


def draft_from_template(template: str, current: str, failures: str) -> str:
    """The template with ``{current_prompt}`` and ``{failures}`` filled in. Only these two are replaced (not
    ``str.format``): MLflow's ``{{variable}}`` placeholders and any other braces stay as written."""
    return template.replace("{current_prompt}", current).replace("{failures}", failures)


# -------------------------------------------------------------------------------------------- scoring


def load_golden_set(path: str | Path, limit: int = 200) -> list[GoldenItem]:
    """A JSONL file of ``{"input": str | object, "expected": str}``; blank lines are skipped."""
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise LLMJobConfigError(f"cannot read the golden set {p}: {exc.strerror}") from None
    items: list[GoldenItem] = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise LLMJobConfigError(f"{p}:{n}: not JSON ({exc.msg})") from None
        if not isinstance(row, dict) or "input" not in row or "expected" not in row:
            raise LLMJobConfigError(f"{p}:{n}: expected an object with input and expected")
        if not isinstance(row["input"], (str, dict)) or not isinstance(row["expected"], str):
            raise LLMJobConfigError(f"{p}:{n}: input must be a string or an object, expected a string")
        items.append(GoldenItem(row["input"], row["expected"]))
        if len(items) >= limit:
            break
    return items


def resolve_scorer(spec: str) -> Scorer:
    if spec == "exact":
        return lambda _input, expected, output: _norm(output) == _norm(expected)
    if spec == "contains":
        return lambda _input, expected, output: _norm(expected) in _norm(output)
    module_name, _, attr = spec.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise LLMJobConfigError(f"cannot load the scorer {spec!r}: {type(exc).__name__}") from None
    if not callable(obj):
        raise LLMJobConfigError(f"the scorer {spec!r} is not callable")
    return obj  # type: ignore[no-any-return]


def golden_messages(template: str, item_input: str | dict[str, Any]) -> list[dict[str, str]]:
    """How a prompt answers one golden input: filled in when the prompt has ``{{variables}}``, else the prompt
    is the system message and the input the user message."""
    names = list(dict.fromkeys(_VARIABLE.findall(template)))
    if isinstance(item_input, dict):
        values = {k: v if isinstance(v, str) else json.dumps(v) for k, v in item_input.items()}
        if names:
            return [{"role": "user", "content": _render(template, values)}]
        return [
            {"role": "system", "content": template},
            {"role": "user", "content": "\n".join(f"{k}: {v}" for k, v in values.items())},
        ]
    if len(names) == 1:
        return [{"role": "user", "content": _render(template, {names[0]: item_input})}]
    if names:
        raise LLMJobConfigError(
            f"a golden input is a string but the prompt has the variables {', '.join(names)}: give it as an object"
        )
    return [{"role": "system", "content": template}, {"role": "user", "content": item_input}]


def score_prompt(
    client: openai.OpenAI,
    model: str,
    template: str,
    golden: Sequence[GoldenItem],
    scorer: Scorer,
    tally: RedactionTally,
) -> float:
    """Mean score of ``template`` over the golden set. Inputs are redacted before they are sent, so expected
    answers are compared redacted too."""
    total = 0.0
    for item in golden:
        output = safe_chat(
            client,
            model=model,
            messages=golden_messages(template, item.input),
            tally=tally,
            what="scoring on the golden set",
        )
        value = scorer(item.input, scrub(item.expected), output)
        if isinstance(value, bool):
            value = float(value)
        if not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
            raise LLMJobConfigError(f"a scorer must return a bool or a number in [0, 1], got {value!r}")
        total += float(value)
    return total / len(golden)


def _norm(text: str) -> str:
    return " ".join(text.casefold().split())


def _render(template: str, values: Mapping[str, str]) -> str:
    return _VARIABLE.sub(lambda m: values.get(m[1], m[0]), template)


# ----------------------------------------------------------------------------------- registry helpers


def _current_prompt(mlf: Any, name: str, config: PromptUpdateConfig) -> tuple[int | None, str]:
    from mlflow.exceptions import MlflowException

    if mlf.get_prompt(name) is not None:
        try:
            pv = mlf.get_prompt_version_by_alias(name, config.base_alias)
            return int(pv.version), _template_text(pv)
        except MlflowException:
            pass
        for pv in sorted(_all_versions(mlf, name), key=lambda v: -int(v.version)):
            if pv.tags.get(TAG_STATUS) not in (AWAITING_APPROVAL, REJECTED):
                return int(pv.version), _template_text(pv)
    if config.initial_prompt:
        return None, config.initial_prompt
    raise LLMJobConfigError(
        f"the prompt {name!r} has no version to improve (no {config.base_alias!r} alias, no approved version) "
        "and no initial_prompt is configured"
    )


def _template_text(pv: Any) -> str:
    template = pv.template
    return template if isinstance(template, str) else json.dumps(template)


def _all_versions(mlf: Any, name: str) -> list[Any]:
    versions: list[Any] = []
    token = None
    while True:
        page = mlf.search_prompt_versions(name, max_results=100, page_token=token)
        versions.extend(page)
        token = getattr(page, "token", None)
        if not token:
            return versions


def _version_for_trigger(mlf: Any, name: str, tid: str) -> Any | None:
    if mlf.get_prompt(name) is None:
        return None
    for pv in _all_versions(mlf, name):
        if pv.tags.get(TAG_TRIGGER) == tid:
            return pv
    return None


def _result_from_version(pv: Any, tid: str, name: str) -> PromptUpdateResult:
    tags = pv.tags

    def num(key: str) -> float | None:
        return float(tags[key]) if key in tags else None

    base = tags.get("opsloop.base_version", "none")
    return PromptUpdateResult(
        AWAITING_APPROVAL,
        tid,
        name,
        version=int(pv.version),
        base_version=None if base == "none" else int(base),
        n_failures=int(tags.get("opsloop.failures", 0)),
        drafted_by=tags.get("opsloop.drafted_by", ""),
        score=num("opsloop.golden.score"),
        baseline_score=num("opsloop.golden.baseline_score"),
        n_golden=int(tags.get("opsloop.golden.n", 0)),
        resumed=True,
    )


# ------------------------------------------------------------------------------------------ approval


def approve_prompt(
    name: str,
    version: int | str,
    *,
    tracking_uri: str | None = None,
    alias: str = PRODUCTION_ALIAS,
    approved_by: str | None = None,
) -> ApprovalResult:
    """Move ``alias`` (``production``) to ``version`` and mark it approved; the version that held the alias is
    marked superseded. A rejected version cannot be approved."""
    from mlflow.exceptions import MlflowException

    mlf = mlflow_client(tracking_uri)
    pv = _get_version(mlf, name, version)
    if pv.tags.get(TAG_STATUS) == REJECTED:
        raise LLMJobError(f"{name} v{pv.version} was rejected; register a new candidate instead")
    try:
        previous: int | None = int(mlf.get_prompt_version_by_alias(name, alias).version)
    except MlflowException:
        previous = None
    v = int(pv.version)
    mlf.set_prompt_alias(name, alias, v)
    mlf.set_prompt_version_tag(name, v, TAG_STATUS, APPROVED)
    mlf.set_prompt_version_tag(
        name, v, "opsloop.approved_at", datetime.now(UTC).isoformat(timespec="seconds")
    )
    if approved_by:
        mlf.set_prompt_version_tag(name, v, "opsloop.approved_by", tag_value(approved_by, 200))
    if previous is not None and previous != v:
        mlf.set_prompt_version_tag(name, previous, TAG_STATUS, SUPERSEDED)
    log.info("prompt %s: alias %s moved to v%s (was %s)", name, alias, v, previous)
    return ApprovalResult(name, v, alias, previous)


def reject_prompt(
    name: str, version: int | str, *, tracking_uri: str | None = None, reason: str | None = None
) -> None:
    """Mark a candidate as rejected (no alias moves). The version holding ``production`` cannot be rejected."""
    from mlflow.exceptions import MlflowException

    mlf = mlflow_client(tracking_uri)
    pv = _get_version(mlf, name, version)
    try:
        live = int(mlf.get_prompt_version_by_alias(name, PRODUCTION_ALIAS).version)
    except MlflowException:
        live = None
    if live == int(pv.version):
        raise LLMJobError(f"{name} v{pv.version} is in production; approve another version first")
    mlf.set_prompt_version_tag(name, int(pv.version), TAG_STATUS, REJECTED)
    if reason:
        mlf.set_prompt_version_tag(
            name, int(pv.version), "opsloop.rejected_reason", tag_value(scrub(reason), 1000)
        )
    log.info("prompt %s: v%s rejected", name, pv.version)


def _get_version(mlf: Any, name: str, version: int | str) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        pv = mlf.get_prompt_version(name, str(version))
    except MlflowException:
        pv = None
    if pv is None:
        raise LLMJobError(f"no prompt version {name} v{version}")
    return pv


__all__ = [
    "APPROVED",
    "AWAITING_APPROVAL",
    "DRAFT_SYSTEM_MESSAGE",
    "PRODUCTION_ALIAS",
    "REJECTED",
    "SUPERSEDED",
    "TAG_STATUS",
    "TAG_TRIGGER",
    "ApprovalResult",
    "GoldenItem",
    "PromptUpdateConfig",
    "PromptUpdateResult",
    "approve_prompt",
    "draft_from_template",
    "draft_with_chat",
    "format_failures",
    "golden_messages",
    "is_failure",
    "load_golden_set",
    "reject_prompt",
    "resolve_scorer",
    "run_prompt_update",
    "score_prompt",
    "select_failures",
]
