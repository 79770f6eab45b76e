"""Policy files: the documented example loads; every mistake is reported with its line and field; rules become
TriggerPolicy values; budgets refuse with a reason."""

from __future__ import annotations

import re
import textwrap
from datetime import UTC, date
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from retrain.policies import (
    Budget,
    BudgetLedger,
    Observation,
    PolicyFileError,
    PolicySet,
    check_budget,
    load_policies,
    parse_duration,
    parse_policies,
)
from retrain.policy import PolicyState, TriggerPolicy, decide

ROOT = Path(__file__).resolve().parent.parent


def _doc_example() -> str:
    text = (ROOT / "docs" / "policies.md").read_text()
    match = re.search(r"## A full example.*?```yaml\n(.*?)```", text, re.DOTALL)
    assert match, "docs/policies.md lost its full example"
    return match.group(1)


@pytest.fixture
def example(tmp_path: Path) -> PolicySet:
    path = tmp_path / "policies.yaml"
    path.write_text(_doc_example())
    return load_policies(path)


def _errors(yaml_text: str) -> list[str]:
    with pytest.raises(PolicyFileError) as info:
        parse_policies(textwrap.dedent(yaml_text).lstrip("\n"), "policies.yaml")
    return str(info.value).splitlines()


# --- the documented example -------------------------------------------------------------------------------------


def test_documented_example_loads(example: PolicySet) -> None:
    rules = example.rules_for("credit-risk")
    assert [r.id for r in rules] == ["models/credit-risk/drift-retrain", "models/credit-risk/1"]
    assert rules[0].trigger_policy() == TriggerPolicy(action="retrain", m=3, n=5, cooldown_s=6 * 3600)
    assert rules[1].trigger_policy() == TriggerPolicy(action="alert", m=1, n=1, cooldown_s=1800)
    assert rules[0].rule.severity == "critical" and not rules[0].rule.needs_approval
    assert example.windows_for("credit-risk").kind == "time"
    assert example.windows_for("fraud").model_dump() == {"kind": "count", "size": 1000}
    assert example.budget_for("credit-risk").per_model_per_day == 1
    assert example.budget_for("fraud") == Budget(3, 20)
    assert example.detectors_for("credit-risk").drift.to_config().alpha == 0.005  # type: ignore[union-attr]
    assert example.detectors_for("fraud").drift.to_config().alpha == 0.05  # type: ignore[union-attr]
    assert example.detectors_for("credit-risk").fairness.attributes == ("sex", "age_band")  # type: ignore[union-attr]
    apps = example.rules_for_application("support-bot")
    assert [r.rule.action for r in apps] == ["alert", "prompt_update"]
    assert [r.rule.needs_approval for r in apps] == [False, True]
    assert example.rules_for_application("other-bot") == ()


def test_exact_name_replaces_the_wildcard(example: PolicySet) -> None:
    assert all(r.target == "credit-risk" for r in example.rules_for("credit-risk"))
    (wild,) = example.rules_for("fraud")
    assert wild.target == "*" and wild.trigger_policy() == TriggerPolicy(action="alert", m=2, n=3, cooldown_s=3600)


def test_policy_models_are_frozen(example: PolicySet) -> None:
    rule = example.rules_for("credit-risk")[0].rule
    with pytest.raises(ValidationError):
        rule.count = 9  # type: ignore[misc]


def test_rule_drives_the_existing_trigger_policy(example: PolicySet) -> None:
    bound = example.rules_for("credit-risk")[0]  # 3 of the last 5 windows
    policy, state = bound.trigger_policy(), PolicyState()
    drift = [Observation("drift.features", "drift")]
    calm = [Observation("drift.features", "ok")]
    fired = []
    from datetime import datetime, timedelta

    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    for i, obs in enumerate([drift, calm, drift, drift, drift]):
        d = decide(policy, state, bound.holds(obs), t0 + timedelta(minutes=5 * i))
        state = d.state
        fired.append(d.fire)
    assert fired == [False, False, False, True, False]  # fires at the 3rd hit; the 4th is in cooldown


def test_conditions_on_status_and_metrics() -> None:
    ps = parse_policies(textwrap.dedent("""
        version: 1
        applications:
          bot:
            rules:
              - when: {detector: safety.window, metric: injection_attempt_rate, above: 0.02}
                action: alert
              - when: {detector: llm.quality, metric: rating, below: 3.5}
                action: alert
    """))
    above, below = ps.rules_for_application("bot")
    assert above.holds([Observation("safety.window", metrics={"injection_attempt_rate": 0.03})])
    assert not above.holds([Observation("safety.window", metrics={"injection_attempt_rate": 0.02})])
    assert not above.holds([Observation("other", metrics={"injection_attempt_rate": 0.9})])
    assert not above.holds([Observation("safety.window", metrics={"injection_attempt_rate": None})])
    assert not above.holds([Observation("safety.window", metrics={"injection_attempt_rate": float("nan")})])
    assert not above.holds([Observation("safety.window", metrics={})])
    assert below.holds([Observation("llm.quality", metrics={"rating": 3.0})])
    assert not below.holds([Observation("llm.quality", metrics={"rating": 4.0})])


# --- errors name the line and the field ---------------------------------------------------------------------------


def test_the_briefs_example_error() -> None:
    lines = _errors("""
        version: 1
        models:
          credit-risk:
            rules:
              - when: {detector: drift.features, status: drift}
                count: 3
                in_last: 2
                action: retrain
    """)
    assert lines == ["policies.yaml:7: models[credit-risk].rules[0].in_last: must be >= the count (got 2 < 3)"]


@pytest.mark.parametrize(("text", "expected"), [
    ("version: 2\n", "policies.yaml:1: version: unsupported version 2 (this opsloop reads version 1)"),
    ("defaults: {}\n", "policies.yaml:1: version: required field is missing"),
    ("version: 1\nmodel: {}\n", ("policies.yaml:2: model: unknown field; expected one of: version, defaults, models, "
                                "applications (did you mean 'models'?)")),
    ("version: 1\ndefaults:\n  windows: {kind: count, size: 0}\n",
     "policies.yaml:3: defaults.windows.size: must be >= 1 (got 0)"),
    ("version: 1\ndefaults:\n  windows:\n    kind: sliding\n",
     "policies.yaml:3: defaults.windows: must be one of 'count', 'time' (got 'sliding')"),
    ("version: 1\ndefaults:\n  windows: {size: 5}\n", "policies.yaml:3: defaults.windows: needs kind: count or time"),
    ("version: 1\ndefaults:\n  windows:\n    kind: time\n    seconds: 5 minutes\n",
     "policies.yaml:5: defaults.windows.seconds: not a duration: '5 minutes' (use e.g. 30s, 10m, 6h, 1d)"),
    ("version: 1\ndefaults:\n  windows:\n    kind: time\n    seconds: 0s\n",
     "policies.yaml:5: defaults.windows.seconds: must be longer than 0 s"),
    ("version: 1\ndefaults:\n  windows:\n    kind: time\n",
     "policies.yaml:3: defaults.windows.seconds: required field is missing"),
    ("version: 1\ndefaults:\n  budgets: {per_model_per_day: -1}\n",
     "policies.yaml:3: defaults.budgets.per_model_per_day: must be >= 0 (got -1)"),
    ("version: 1\nmodels:\n  m:\n    budgets: {fleet_per_day: 3}\n",
     "policies.yaml:4: models[m].budgets.fleet_per_day: unknown field; expected one of: per_model_per_day"),
    ("version: 1\nmodels:\n  m:\n    detectors:\n      drift:\n        alpha: 1.5\n",
     "policies.yaml:6: models[m].detectors.drift.alpha: must be < 1.0 (got 1.5)"),
    ("version: 1\nmodels:\n  m:\n    detectors:\n      drift:\n        correction: holm\n",
     "policies.yaml:6: models[m].detectors.drift.correction: must be 'bonferroni' or 'bh' (got 'holm')"),
    ("version: 1\nmodels:\n  m:\n    detectors:\n      fairness: {attributes: []}\n",
     "policies.yaml:5: models[m].detectors.fairness.attributes: must not be empty"),
    ("version: 1\nmodels:\n  m:\n    rules:\n      - when: {detector: drift.features, status: drift}\n        action: prompt_update\n",
     ("policies.yaml:6: models[m].rules[0].action: must be 'alert' or 'retrain' (got 'prompt_update'); "
     "prompt_update and fine_tune are for applications")),
    ("version: 1\napplications:\n  a:\n    rules:\n      - when: {detector: llm.drift, status: x}\n        action: retrain\n",
     ("policies.yaml:6: applications[a].rules[0].action: must be 'alert', 'prompt_update' or 'fine_tune' "
     "(got 'retrain'); retrain is for models")),
    ("version: 1\nmodels:\n  m:\n    rules:\n      - when: {detector: drift.features, metric: x}\n        action: alert\n",
     "policies.yaml:5: models[m].rules[0].when: metric needs exactly one of above or below"),
    ("version: 1\nmodels:\n  m:\n    rules:\n      - when: {detector: drift.features, status: x, above: 1}\n        action: alert\n",
     "policies.yaml:5: models[m].rules[0].when: give either status, or metric with above/below, not both"),
    ("version: 1\nmodels:\n  m:\n    rules:\n      - when: {detector: drift.features}\n        action: alert\n",
     "policies.yaml:5: models[m].rules[0].when: needs status (of a finding) or metric with above or below"),
    ("version: 1\nmodels:\n  m:\n    rules:\n      - when: {detector: drift.features, status: x}\n",
     "policies.yaml:5: models[m].rules[0].action: required field is missing"),
    (("version: 1\nmodels:\n  m:\n    rules:\n      - when: {detector: drift.features, status: x}\n        action: alert\n"
     "        severity: high\n"),
     "policies.yaml:7: models[m].rules[0].severity: must be 'warn' or 'critical' (got 'high')"),
    (("version: 1\nmodels:\n  m:\n    rules:\n      - when: {detector: drift.features, status: x}\n        action: alert\n"
     "        cooldown: soon\n"),
     "policies.yaml:7: models[m].rules[0].cooldown: not a duration: 'soon' (use e.g. 30s, 10m, 6h, 1d)"),
    (("version: 1\nmodels:\n  m:\n    rules:\n      - when: {detector: drift.features, status: x}\n        action: alert\n"
     "        count: two\n"),
     "policies.yaml:7: models[m].rules[0].count: must be an integer (got 'two')"),
    (("version: 1\nmodels:\n  m:\n    rules:\n      - when: {detector: drift.features, status: x}\n        action: alert\n"
     "        approval: maybe\n"),
     "policies.yaml:7: models[m].rules[0].approval: must be true or false (got 'maybe')"),
    ("version: 1\nmodels:\n  m:\n    rules: {when: x}\n", "policies.yaml:4: models[m].rules: must be a list"),
    (("version: 1\nmodels:\n  m:\n    rules:\n      - when: {detector: drift.features, status: x}\n        action: alert\n"
     "        in_last: 0\n"),
     "policies.yaml:7: models[m].rules[0].in_last: must be >= 1 (got 0)"),
    (("version: 1\nmodels:\n  m:\n    rules:\n      - when: {detector: drift.features, status: x}\n        action: alert\n"
     "        thresold: 2\n"),
     "policies.yaml:7: models[m].rules[0].thresold: unknown field"),
    ("version: 1\nmodels:\n  m:\n    detectors:\n      drift: {alpha: .nan}\n",
     "policies.yaml:5: models[m].detectors.drift.alpha: must be a finite number"),
])
def test_errors_name_line_and_field(text: str, expected: str) -> None:
    lines = _errors(text)
    assert len(lines) == 1, lines
    assert lines[0].startswith(expected), lines[0]


def test_every_problem_is_reported_at_once() -> None:
    lines = _errors("""
        version: 1
        defaults:
          windows: {kind: count, size: 0}
        models:
          credit-risk:
            rules:
              - when: {detector: drift.features, status: drift}
                count: 3
                in_last: 2
                action: retrain
                cooldown: 6 hours
    """)
    assert [ln.split(": ", 1)[0] for ln in lines] == ["policies.yaml:3", "policies.yaml:9", "policies.yaml:11"]


def test_yaml_problems_are_reported_with_lines(tmp_path: Path) -> None:
    assert _errors("version: 1\nmodels:\n  m: [unclosed\n")[0].startswith("policies.yaml:4: YAML syntax error")
    dup = _errors("version: 1\nmodels:\n  m:\n    rules: []\n  m:\n    rules: []\n")
    assert dup == ["policies.yaml:5: m: duplicate key (first on line 3)"]
    assert _errors("") == ["policies.yaml:1: empty policy file (expected at least 'version: 1')"]
    assert _errors("- 1\n- 2\n") == ["policies.yaml:1: the top level must be a mapping"]
    with pytest.raises(PolicyFileError, match="cannot read"):
        load_policies(tmp_path / "missing.yaml")
    assert issubclass(PolicyFileError, ValueError)


def test_file_name_and_line_come_from_the_path(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("# comment\n\nversion: 1\nmodels:\n  m:\n    rules:\n      - {when: {detector: drift.features, status: s}, "
                    "action: alert, count: 0}\n")
    with pytest.raises(PolicyFileError) as info:
        load_policies(path)
    assert str(info.value) == f"{path}:7: models[m].rules[0].count: must be >= 1 (got 0)"
    assert info.value.issues[0].line == 7


@pytest.mark.parametrize(("text", "seconds"), [
    ("30s", 30), ("10m", 600), ("6h", 21600), ("1d", 86400), ("1w", 604800), ("500ms", 0.5), ("1h30m", 5400),
    ("90", 90), (45, 45), (2.5, 2.5), (" 2H ", 7200),
])
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "6 hours", "h", "-5s", "1y", True, None, [], float("inf"), -1])
def test_bad_durations(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


# --- budgets --------------------------------------------------------------------------------------------------


def test_budget_refuses_with_a_reason() -> None:
    budget = Budget(per_model_per_day=3, fleet_per_day=20)
    refused = check_budget(budget, model="credit-risk", action="retrain", model_today=3, fleet_today=5)
    assert not refused.allowed and refused.reason == "budget: 3 retrain triggers for credit-risk today (limit 3)"
    fleet = check_budget(budget, model="fraud", action="retrain", model_today=0, fleet_today=20)
    assert not fleet.allowed and fleet.reason == "budget: 20 triggers across the fleet today (limit 20)"
    ok = check_budget(budget, model="fraud", action="retrain", model_today=1, fleet_today=4)
    assert ok.allowed and ok.reason == "budget: retrain trigger 2 of 3 for fraud today, 5 of 20 across the fleet"
    alert = check_budget(budget, model="fraud", action="alert", model_today=100, fleet_today=100)
    assert alert.allowed and alert.reason == "budget: alert is not budgeted"
    assert check_budget(Budget(None, None), model="m", action="retrain", model_today=10**6, fleet_today=10**6).allowed


def test_ledger_counts_per_model_action_and_fleet() -> None:
    today = date(2026, 11, 29)
    budget = Budget(per_model_per_day=3, fleet_per_day=4)
    ledger = BudgetLedger.from_counts(today, [("credit-risk", "retrain", 3), ("fraud", "retrain", 1),
                                              ("fraud", "alert", 7)])
    assert ledger.fleet == 4
    assert ledger.check(budget, "credit-risk", "retrain").reason == \
        "budget: 3 retrain triggers for credit-risk today (limit 3)"
    assert not ledger.check(budget, "fraud", "retrain").allowed  # the fleet is full
    assert ledger.check(budget, "fraud", "alert").allowed
    tomorrow = ledger.on(date(2026, 11, 30))
    assert tomorrow.check(budget, "credit-risk", "retrain").allowed and ledger.on(today) is ledger
    after = tomorrow.record(budget, "credit-risk", "retrain").record(budget, "credit-risk", "alert")
    assert after.per_model[("credit-risk", "retrain")] == 1 and after.fleet == 1
    assert tomorrow.fleet == 0  # record returns a new ledger


@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.sampled_from(["retrain", "alert", "fine_tune"])),
                max_size=60),
       st.integers(0, 5), st.integers(0, 12))
def test_ledger_never_allows_more_than_the_limits(requests: list[tuple[str, str]], per_model: int, fleet: int) -> None:
    budget = Budget(per_model_per_day=per_model, fleet_per_day=fleet, applies_to=frozenset({"retrain", "fine_tune"}))
    ledger = BudgetLedger(date(2026, 1, 1))
    allowed: list[tuple[str, str]] = []
    for model, action in requests:
        if ledger.check(budget, model, action).allowed:
            ledger = ledger.record(budget, model, action)
            allowed.append((model, action))
    budgeted = [x for x in allowed if x[1] in budget.applies_to]
    assert len(budgeted) <= fleet
    assert all(budgeted.count(key) <= per_model for key in set(budgeted))
    assert [x for x in allowed if x[1] == "alert"] == [x for x in requests if x[1] == "alert"]


# --- which detectors a rule can name ------------------------------------------------------------------------------


@pytest.mark.parametrize(("scope", "detector", "message"), [
    ("models", "accuracy", ("model rules cannot name detector 'accuracy'; they can name: drift.features, "
                            "drift.prediction, quality.data, quality.volume, fairness.parity, performance, "
                            "concept.adwin, concept.page_hinkley, fairness.labels")),
    ("models", "drift.feature", "model rules cannot name detector 'drift.feature' (did you mean 'drift.features'?)"),
    ("models", "performance.window", "(did you mean 'performance'?)"),
    ("models", "safety.window", "model rules cannot name detector 'safety.window'"),  # the other scope's
    ("applications", "drift.features", "application rules cannot name detector 'drift.features'"),
    ("applications", "performance", "application rules cannot name detector 'performance'"),
])
def test_a_rule_naming_a_detector_it_never_observes_is_refused(scope: str, detector: str, message: str) -> None:
    """Such a rule used to load and never hold, silently (docs/policies.md's own example had one)."""
    action = "retrain" if scope == "models" else "alert"
    lines = _errors(f"""
        version: 1
        {scope}:
          x:
            rules:
              - when: {{detector: {detector}, status: drift}}
                action: {action}
    """)
    assert len(lines) == 1 and lines[0].startswith(f"policies.yaml:5: {scope}[x].rules[0].when: ")
    assert message in lines[0]


def test_the_nameable_detectors_are_those_the_streams_observe() -> None:
    """The lists the loader checks against stay in step with what a window close observes."""
    from detectors.concept import adwin, page_hinkley
    from retrain.policies import (
        APPLICATION_RULE_DETECTORS,
        LABEL_RULE_DETECTORS,
        MODEL_RULE_DETECTORS,
        WINDOW_RULE_DETECTORS,
    )
    from streams import labels, llm_stream, model_stream

    assert set(WINDOW_RULE_DETECTORS) == {model_stream.DRIFT_DETECTOR, model_stream.PREDICTION_DRIFT_DETECTOR,
                                          model_stream.QUALITY_DETECTOR, model_stream.VOLUME_DETECTOR,
                                          model_stream.FAIRNESS_DETECTOR}
    assert set(LABEL_RULE_DETECTORS) == {labels.PERFORMANCE_DETECTOR, adwin.DETECTOR_NAME, page_hinkley.DETECTOR_NAME,
                                         labels.LABEL_FAIRNESS_DETECTOR}
    assert set(MODEL_RULE_DETECTORS) == set(WINDOW_RULE_DETECTORS) | set(LABEL_RULE_DETECTORS)
    assert set(APPLICATION_RULE_DETECTORS) == {llm_stream.SAFETY_DETECTOR, llm_stream.QUALITY_DETECTOR,
                                               llm_stream.DRIFT_DETECTOR, llm_stream.HEALTH_DETECTOR}
