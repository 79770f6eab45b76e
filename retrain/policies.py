"""Trigger policies from a YAML file, validated with pydantic, with errors that name the line and the field.

``load_policies(path)`` reads a policy file (see ``docs/policies.md``) into a ``PolicySet``; a bad file raises
one ``PolicyFileError`` listing every problem as ``file:line: path.to.field: message``. A rule becomes the
pure ``retrain.policy.TriggerPolicy`` (M of N windows, cooldown) through ``BoundRule.trigger_policy()``, and
budgets are checked by the pure ``BudgetLedger``.
"""

from __future__ import annotations

import difflib
import math
import re
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from detectors.base import ConfigError as DetectorConfigError
from detectors.drift.features import FeatureDriftConfig
from retrain.policy import Action, TriggerPolicy

SUPPORTED_VERSION = 1
MODEL_ACTIONS: tuple[str, ...] = ("alert", "retrain")
APPLICATION_ACTIONS: tuple[str, ...] = ("alert", "prompt_update", "fine_tune")
RISKY_ACTIONS: frozenset[str] = frozenset({"prompt_update", "fine_tune"})  # approval on unless turned off
ANY = "*"


class PolicyFileError(ValueError):
    """A policy file that cannot be used. ``str()`` is one ``file:line: field: message`` line per problem."""

    def __init__(self, issues: Iterable[PolicyIssue]) -> None:
        self.issues: tuple[PolicyIssue, ...] = tuple(issues)
        super().__init__("\n".join(str(i) for i in self.issues))


@dataclass(frozen=True)
class PolicyIssue:
    source: str
    line: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{self.source}:{self.line}: {where}{self.message}"


# --- durations --------------------------------------------------------------------------------------

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_DURATION = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w))+")


def parse_duration(value: object) -> float:
    """Seconds from ``30s``, ``10m``, ``6h``, ``1d``, ``1h30m`` or a plain number of seconds."""
    seconds: float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower()
        if re.fullmatch(r"\d+(?:\.\d+)?", text):
            seconds = float(text)
        elif _DURATION.fullmatch(text):
            seconds = sum(float(n) * _UNITS[u] for n, u in _DURATION_PART.findall(text))
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        raise PydanticCustomError("duration", "not a duration: {value} (use e.g. 30s, 10m, 6h, 1d)",
                                  {"value": repr(value)})
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]


def _positive(v: float) -> float:
    if v <= 0:
        raise PydanticCustomError("duration_zero", "must be longer than 0 s")
    return v


PositiveDuration = Annotated[float, BeforeValidator(parse_duration), AfterValidator(_positive)]

Name = Annotated[str, Field(min_length=1, max_length=200)]


# --- the file's schema ------------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class CountWindows(_Strict):
    kind: Literal["count"]
    size: int = Field(ge=1)


class TimeWindows(_Strict):
    kind: Literal["time"]
    seconds: PositiveDuration
    allowed_lateness: Duration = 0.0


Windows = Annotated[CountWindows | TimeWindows, Field(discriminator="kind")]


class Budgets(_Strict):
    per_model_per_day: int | None = Field(default=3, ge=0)
    fleet_per_day: int | None = Field(default=20, ge=0)
    applies_to: tuple[Action, ...] = ("retrain", "prompt_update", "fine_tune")


class ModelBudgets(_Strict):
    """A model's own daily limit; an explicit ``null`` means unlimited, absence means the default."""

    per_model_per_day: int | None = Field(default=None, ge=0)


class DriftSettings(_Strict):
    """Fields of ``detectors.drift.features.FeatureDriftConfig``; unset ones keep the detector's defaults."""

    alpha: Annotated[float, Field(gt=0, lt=1)] | None = None
    correction: Literal["bonferroni", "bh"] | None = None
    numeric_test: Literal["ks", "chi2"] | None = None
    categorical_test: Literal["chi2"] | None = None
    psi_floor_numeric: Annotated[float, Field(ge=0)] | None = None
    psi_floor_categorical: Annotated[float, Field(ge=0)] | None = None
    numeric_effect: Literal["psi", "wasserstein"] | None = None
    wasserstein_floor: Annotated[float, Field(ge=0)] | None = None
    min_window_rows: Annotated[int, Field(ge=1)] | None = None
    min_reference_rows: Annotated[int, Field(ge=1)] | None = None
    dataset_drift_share: Annotated[float, Field(ge=0, lt=1)] | None = None

    @model_validator(mode="after")
    def _detector_accepts(self) -> DriftSettings:
        try:
            self.to_config()
        except DetectorConfigError as exc:  # the detector's own checks stay the one truth
            raise PydanticCustomError("drift_config", str(exc)) from None
        return self

    def to_config(self) -> FeatureDriftConfig:
        return FeatureDriftConfig(**{k: v for k, v in self.model_dump().items() if v is not None})


class FairnessSettings(_Strict):
    attributes: tuple[Name, ...] = Field(min_length=1)
    min_group_size: int = Field(default=100, ge=1)


class DetectorSettings(_Strict):
    drift: DriftSettings | None = None
    fairness: FairnessSettings | None = None


@dataclass(frozen=True)
class Observation:
    """What a rule's condition is tested on: one detector's result in one window."""

    detector: str
    status: str | None = None
    metrics: Mapping[str, float | None] = field(default_factory=dict)


class Condition(_Strict):
    """A finding's ``status``, or a ``metric`` of a window result ``above`` or ``below`` a threshold."""

    detector: Name
    status: Name | None = None
    metric: Name | None = None
    above: float | None = None
    below: float | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Condition:
        if self.status is not None and (self.metric is not None or self.above is not None or self.below is not None):
            raise PydanticCustomError("condition", "give either status, or metric with above/below, not both")
        if self.status is None:
            if self.metric is None:
                raise PydanticCustomError("condition", "needs status (of a finding) or metric with above or below")
            if (self.above is None) == (self.below is None):
                raise PydanticCustomError("condition", "metric needs exactly one of above or below")
        return self

    def holds(self, observations: Iterable[Observation]) -> bool:
        """True when any observation of this detector meets the condition (a missing metric never does)."""
        for obs in observations:
            if obs.detector != self.detector:
                continue
            if self.status is not None:
                if obs.status == self.status:
                    return True
                continue
            value = obs.metrics.get(self.metric or "")
            if value is None or not math.isfinite(value):
                continue
            if (self.above is not None and value > self.above) or (self.below is not None and value < self.below):
                return True
        return False


class Rule(_Strict):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,100}$")] | None = None
    when: Condition
    count: int = Field(default=1, ge=1)
    in_last: int | None = Field(default=None, ge=1)
    action: Action
    severity: Literal["warn", "critical"] = "warn"
    cooldown: Duration = 3600.0
    approval: bool | None = None

    @field_validator("in_last")
    @classmethod
    def _n_at_least_m(cls, v: int | None, info: ValidationInfo) -> int | None:
        count = info.data.get("count")
        if v is not None and isinstance(count, int) and v < count:
            raise PydanticCustomError("in_last_below_count", "must be >= the count (got {in_last} < {count})",
                                      {"in_last": v, "count": count})
        return v

    @property
    def m(self) -> int:
        return self.count

    @property
    def n(self) -> int:
        return self.in_last if self.in_last is not None else self.count

    @property
    def needs_approval(self) -> bool:
        return self.approval if self.approval is not None else self.action in RISKY_ACTIONS

    def to_trigger_policy(self) -> TriggerPolicy:
        return TriggerPolicy(action=self.action, m=self.m, n=self.n, cooldown_s=self.cooldown)


# The detectors whose per-window results rules are tested on: what streams/model_stream.py and
# streams/llm_stream.py observe at a window close (tests/test_policies.py keeps the two in step). A rule naming
# anything else would load and never hold, so it is refused at load time.
WINDOW_RULE_DETECTORS = ("drift.features", "drift.prediction", "quality.data", "quality.volume", "fairness.parity")
# judged when labels arrive, outside any window close: their rules decide then (streams/labels.py)
LABEL_RULE_DETECTORS = ("performance", "concept.adwin", "concept.page_hinkley", "fairness.labels")
MODEL_RULE_DETECTORS = WINDOW_RULE_DETECTORS + LABEL_RULE_DETECTORS
APPLICATION_RULE_DETECTORS = ("safety.window", "llm.quality", "llm.drift", "safety.provider_health")


def _nameable(when: Condition, names: tuple[str, ...], scope: str) -> Condition:
    if when.detector in names:
        return when
    hint = difflib.get_close_matches(when.detector, names, n=1)
    why = f" (did you mean {hint[0]!r}?)" if hint else ""
    raise PydanticCustomError(
        "rule_detector", "{scope} rules cannot name detector {detector}{why}; they can name: {names}",
        {"scope": scope, "detector": repr(when.detector), "why": why, "names": ", ".join(names)})


class ModelRule(Rule):
    action: Literal["alert", "retrain"]

    @field_validator("when")
    @classmethod
    def _model_detector(cls, when: Condition) -> Condition:
        return _nameable(when, MODEL_RULE_DETECTORS, "model")


class ApplicationRule(Rule):
    action: Literal["alert", "prompt_update", "fine_tune"]

    @field_validator("when")
    @classmethod
    def _application_detector(cls, when: Condition) -> Condition:
        return _nameable(when, APPLICATION_RULE_DETECTORS, "application")


class ModelPolicy(_Strict):
    windows: Windows | None = None
    budgets: ModelBudgets | None = None
    detectors: DetectorSettings | None = None
    rules: tuple[ModelRule, ...] = ()


class ApplicationPolicy(_Strict):
    windows: Windows | None = None
    budgets: ModelBudgets | None = None
    rules: tuple[ApplicationRule, ...] = ()


class Defaults(_Strict):
    windows: Windows = CountWindows(kind="count", size=1000)
    budgets: Budgets = Budgets()
    detectors: DetectorSettings = DetectorSettings()


class PolicyFile(_Strict):
    version: int
    defaults: Defaults = Defaults()
    models: dict[Name, ModelPolicy] = Field(default_factory=dict)
    applications: dict[Name, ApplicationPolicy] = Field(default_factory=dict)

    @field_validator("version", mode="before")
    @classmethod
    def _known_version(cls, v: object) -> object:
        if v != SUPPORTED_VERSION or isinstance(v, bool):
            raise PydanticCustomError("version", "unsupported version {value} (this opsloop reads version {ours})",
                                      {"value": repr(v), "ours": SUPPORTED_VERSION})
        return v


# --- the loaded set ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Budget:
    """Daily trigger limits; ``None`` is unlimited. Actions outside ``applies_to`` (alerts) are never refused."""

    per_model_per_day: int | None = 3
    fleet_per_day: int | None = 20
    applies_to: frozenset[str] = frozenset({"retrain", "prompt_update", "fine_tune"})


@dataclass(frozen=True)
class BoundRule:
    """A rule with where it came from: ``id`` is stable across loads and fit for dedupe keys and state keys."""

    scope: Literal["models", "applications"]
    target: str
    index: int
    rule: Rule

    @property
    def id(self) -> str:
        return f"{self.scope}/{self.target}/{self.rule.name if self.rule.name else self.index}"

    def trigger_policy(self) -> TriggerPolicy:
        return self.rule.to_trigger_policy()

    def holds(self, observations: Iterable[Observation]) -> bool:
        return self.rule.when.holds(observations)


@dataclass(frozen=True)
class PolicySet:
    file: PolicyFile
    source: str = "<policies>"

    def rules_for(self, model: str) -> tuple[BoundRule, ...]:
        """The rules of ``model``'s own entry, else those of ``"*"`` (an exact name replaces the wildcard)."""
        return self._rules("models", self.file.models, model)

    def rules_for_application(self, application: str) -> tuple[BoundRule, ...]:
        return self._rules("applications", self.file.applications, application)

    def windows_for(self, model: str) -> CountWindows | TimeWindows:
        entry = self._entry(self.file.models, model)
        return entry.windows if entry is not None and entry.windows is not None else self.file.defaults.windows

    def windows_for_application(self, application: str) -> CountWindows | TimeWindows:
        entry = self._entry(self.file.applications, application)
        return entry.windows if entry is not None and entry.windows is not None else self.file.defaults.windows

    def detectors_for(self, model: str) -> DetectorSettings:
        """Each detector section of the model's entry replaces the default's section as a whole."""
        base = self.file.defaults.detectors
        entry = self._entry(self.file.models, model)
        if entry is None or entry.detectors is None:
            return base
        own = entry.detectors
        return DetectorSettings(drift=own.drift if "drift" in own.model_fields_set else base.drift,
                                fairness=own.fairness if "fairness" in own.model_fields_set else base.fairness)

    def budget_for(self, name: str, *, application: bool = False) -> Budget:
        d = self.file.defaults.budgets
        per_model = d.per_model_per_day
        entry = self._entry(self.file.applications if application else self.file.models, name)
        if entry is not None and entry.budgets is not None and "per_model_per_day" in entry.budgets.model_fields_set:
            per_model = entry.budgets.per_model_per_day
        return Budget(per_model, d.fleet_per_day, frozenset(d.applies_to))

    @staticmethod
    def _entry(entries: Mapping[str, Any], name: str) -> Any:
        return entries.get(name, entries.get(ANY))

    def _rules(self, scope: Literal["models", "applications"], entries: Mapping[str, ModelPolicy | ApplicationPolicy],
               name: str) -> tuple[BoundRule, ...]:
        target = name if name in entries else ANY if ANY in entries else None
        if target is None:
            return ()
        return tuple(BoundRule(scope, target, i, r) for i, r in enumerate(entries[target].rules))


# --- budgets ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BudgetDecision:
    allowed: bool
    reason: str


def check_budget(budget: Budget, *, model: str, action: str, model_today: int, fleet_today: int) -> BudgetDecision:
    """``model_today``: triggers of ``action`` fired today for ``model``; ``fleet_today``: budgeted triggers
    of any action fired today across all models."""
    if action not in budget.applies_to:
        return BudgetDecision(True, f"budget: {action} is not budgeted")
    limit = budget.per_model_per_day
    if limit is not None and model_today >= limit:
        return BudgetDecision(False, f"budget: {model_today} {action} triggers for {model} today (limit {limit})")
    fleet = budget.fleet_per_day
    if fleet is not None and fleet_today >= fleet:
        return BudgetDecision(False, f"budget: {fleet_today} triggers across the fleet today (limit {fleet})")
    used = f"{model_today + 1} of {limit}" if limit is not None else f"{model_today + 1} (no limit)"
    fleet_used = f"{fleet_today + 1} of {fleet}" if fleet is not None else f"{fleet_today + 1} (no limit)"
    return BudgetDecision(True, f"budget: {action} trigger {used} for {model} today, {fleet_used} across the fleet")


@dataclass(frozen=True)
class BudgetLedger:
    """Counts of triggers fired on one (UTC) day: per (model, action), and budgeted ones across the fleet.

    Pure: ``check`` decides, ``record`` returns a new ledger; the caller loads the counts (e.g. from the
    triggers table) and owns what "today" means.
    """

    day: date
    per_model: Mapping[tuple[str, str], int] = field(default_factory=dict)
    fleet: int = 0

    @classmethod
    def from_counts(cls, day: date, counts: Iterable[tuple[str, str, int]],
                    budgeted: Iterable[str] = Budget().applies_to) -> BudgetLedger:
        per_model: dict[tuple[str, str], int] = {}
        budgeted = frozenset(budgeted)
        fleet = 0
        for model, action, n in counts:
            per_model[(model, action)] = per_model.get((model, action), 0) + n
            if action in budgeted:
                fleet += n
        return cls(day, per_model, fleet)

    def on(self, day: date) -> BudgetLedger:
        """This ledger, or an empty one when ``day`` is a new day."""
        return self if day == self.day else BudgetLedger(day)

    def check(self, budget: Budget, model: str, action: str) -> BudgetDecision:
        return check_budget(budget, model=model, action=action, model_today=self.per_model.get((model, action), 0),
                            fleet_today=self.fleet)

    def record(self, budget: Budget, model: str, action: str) -> BudgetLedger:
        per_model = dict(self.per_model)
        per_model[(model, action)] = per_model.get((model, action), 0) + 1
        return BudgetLedger(self.day, per_model, self.fleet + (1 if action in budget.applies_to else 0))


# --- loading with line numbers ----------------------------------------------------------------------


def load_policies(path: str | Path) -> PolicySet:
    """Read and validate a policy file; raises ``PolicyFileError`` naming the line and field of each problem."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyFileError([PolicyIssue(source, 0, "", f"cannot read: {exc}")]) from None
    return parse_policies(text, source)


def parse_policies(text: str, source: str = "<policies>") -> PolicySet:
    node, data = _compose(text, source)
    if data is None:
        raise PolicyFileError([PolicyIssue(source, 1, "", "empty policy file (expected at least 'version: 1')")])
    if not isinstance(data, dict):
        raise PolicyFileError([PolicyIssue(source, _line(node), "", "the top level must be a mapping")])
    try:
        file = PolicyFile.model_validate(data)
    except ValidationError as exc:
        raise PolicyFileError(_issues(exc, node, source)) from None
    return PolicySet(file, source)


def _compose(text: str, source: str) -> tuple[yaml.Node | None, Any]:
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, None
        _refuse_duplicate_keys(node, source)
        return node, loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 0
        raise PolicyFileError([PolicyIssue(source, line, "", f"YAML syntax error: {exc.problem or exc}")]) from None
    except yaml.YAMLError as exc:
        raise PolicyFileError([PolicyIssue(source, 0, "", f"YAML error: {exc}")]) from None
    finally:
        loader.dispose()


def _refuse_duplicate_keys(node: yaml.Node, source: str) -> None:
    """YAML keeps the last of two equal keys silently; in a policy file that hides a mistake."""
    issues = []
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, yaml.MappingNode):
            seen: dict[str, int] = {}
            for k, v in n.value:
                if isinstance(k, yaml.ScalarNode) and k.value != "<<":
                    if k.value in seen:
                        issues.append(PolicyIssue(source, _line(k), k.value,
                                                  f"duplicate key (first on line {seen[k.value]})"))
                    seen.setdefault(k.value, _line(k))
                stack.append(v)
        elif isinstance(n, yaml.SequenceNode):
            stack.extend(n.value)
    if issues:
        raise PolicyFileError(sorted(issues, key=lambda i: i.line))


def _line(node: yaml.Node | None) -> int:
    return node.start_mark.line + 1 if node is not None else 1


_DICT_FIELDS = {"models", "applications"}


def _issues(exc: ValidationError, root: yaml.Node | None, source: str) -> list[PolicyIssue]:
    issues = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        line, path = _locate(root, loc)
        issues.append(PolicyIssue(source, line, path, _message(err, loc)))
    return sorted(issues, key=lambda i: (i.line, i.path))


def _locate(root: yaml.Node | None, loc: tuple[Any, ...]) -> tuple[int, str]:
    """The line of the deepest YAML node on ``loc``, and the path in the file's own terms.

    Parts of ``loc`` that are not in the YAML (a discriminated union's tag, ``[key]``) are left out of the
    path; a missing field stays in it (it is the thing to add) and takes its parent's line.
    """
    node, line, parts = root, _line(root), []
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        if part == "[key]":
            continue
        child = None
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if isinstance(k, yaml.ScalarNode) and k.value == str(part):
                    child, line = v, _line(k)
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            child = node.value[part]
            line = _line(child)
        if child is None and not last and not isinstance(part, int):
            continue  # a union tag such as windows' "time"
        parts.append(part)
        node = child
    return line, _path(parts)


def _path(parts: list[Any]) -> str:
    out = ""
    for i, part in enumerate(parts):
        if isinstance(part, int) or (i > 0 and parts[i - 1] in _DICT_FIELDS):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _message(err: Any, loc: tuple[Any, ...]) -> str:
    kind, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
    got = f" (got {value!r})" if isinstance(value, (str, int, float, bool)) or value is None else ""
    if kind == "extra_forbidden":
        name = str(loc[-1])
        known = _fields_at(loc[:-1])
        hint = difflib.get_close_matches(name, known, n=1)
        expected = f"; expected one of: {', '.join(known)}" if known else ""
        return f"unknown field{expected}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
    if kind == "missing":
        return "required field is missing"
    if kind == "union_tag_not_found":
        tags = [str(t) for tp in _types_at(loc) if "kind" in getattr(tp, "model_fields", {})
                for t in get_args(tp.model_fields["kind"].annotation)]
        return f"needs kind: {' or '.join(tags) or '?'}"
    if kind == "union_tag_invalid":
        return f"must be one of {ctx.get('expected_tags')} (got {ctx.get('tag')!r})"
    if kind == "literal_error":
        hint = ""
        if loc and loc[-1] == "action" and loc[0] in _DICT_FIELDS:
            hint = ("; prompt_update and fine_tune are for applications" if loc[0] == "models"
                    else "; retrain is for models")
        return f"must be {ctx.get('expected')}{got}{hint}"
    simple = {
        "greater_than_equal": f"must be >= {ctx.get('ge')}{got}",
        "greater_than": f"must be > {ctx.get('gt')}{got}",
        "less_than_equal": f"must be <= {ctx.get('le')}{got}",
        "less_than": f"must be < {ctx.get('lt')}{got}",
        "too_short": "must not be empty",
        "string_too_short": "must not be empty",
        "string_too_long": f"is too long (at most {ctx.get('max_length')} characters)",
        "string_pattern_mismatch": f"must match {ctx.get('pattern')}{got}",
        "int_type": f"must be an integer{got}", "int_parsing": f"must be an integer{got}",
        "int_from_float": f"must be an integer{got}",
        "float_type": f"must be a number{got}", "float_parsing": f"must be a number{got}",
        "finite_number": f"must be a finite number{got}",
        "bool_type": f"must be true or false{got}", "bool_parsing": f"must be true or false{got}",
        "string_type": f"must be a string{got}",
        "dict_type": "must be a mapping", "model_type": "must be a mapping", "model_attributes_type": "must be a mapping",
        "tuple_type": "must be a list", "list_type": "must be a list",
    }
    if kind in simple:
        return simple[kind]
    msg = str(err["msg"])
    return msg.removeprefix("Value error, ")


def _fields_at(loc: tuple[Any, ...]) -> list[str]:
    """Field names of the schema model(s) at ``loc``, to suggest a fix for an unknown field."""
    names: list[str] = []
    for tp in _types_at(loc):
        names.extend(n for n in tp.model_fields if n not in names)
    return names


def _types_at(loc: tuple[Any, ...]) -> list[type[BaseModel]]:
    """The schema model(s) that validate the value at ``loc``."""
    current: list[Any] = [PolicyFile]
    for part in loc:
        current = _expand(current)
        nxt: list[Any] = []
        for tp in current:
            origin = get_origin(tp)
            if isinstance(tp, type) and issubclass(tp, BaseModel) and isinstance(part, str) and part in tp.model_fields:
                nxt.append(tp.model_fields[part].annotation)
            elif origin is dict and isinstance(part, str):
                nxt.append(get_args(tp)[1])
            elif origin in (tuple, list) and isinstance(part, int):
                nxt.append(get_args(tp)[0])
        if not nxt:  # a discriminated union's tag: keep the members whose "kind" is that tag
            nxt = [tp for tp in current if isinstance(tp, type) and issubclass(tp, BaseModel)
                   and "kind" in tp.model_fields and part in get_args(tp.model_fields["kind"].annotation)]
        current = nxt or current
    return [tp for tp in _expand(current) if isinstance(tp, type) and issubclass(tp, BaseModel)]


def _expand(types_: list[Any]) -> list[Any]:
    out: list[Any] = []
    for tp in types_:
        origin = get_origin(tp)
        if origin is Annotated:
            out.extend(_expand([get_args(tp)[0]]))
        elif origin is Union or origin is types.UnionType:
            out.extend(_expand([a for a in get_args(tp) if a is not type(None)]))
        else:
            out.append(tp)
    return out
