"""The prompt-update job against the local OpenAI fake (through the real ``openai`` client) and a real MLflow
prompt registry on SQLite: what goes over the wire, that nothing unredacted does, that the candidate waits for
approval and that approval moves the alias."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from retrain.llm_jobs_common import (
    Example,
    LLMJobConfigError,
    LLMJobError,
    OpenAIConfig,
    mlflow_client,
    scrub,
)
from retrain.prompt_update import (
    AWAITING_APPROVAL,
    DRAFT_SYSTEM_MESSAGE,
    PromptUpdateConfig,
    approve_prompt,
    draft_from_template,
    golden_messages,
    reject_prompt,
    run_prompt_update,
)
from tests.fakes.openai_server import FakeOpenAI

NAME = "support-bot"
BASE_PROMPT = "You are the support assistant of Acme. Answer the question: {{question}}"
CANDIDATE = "You are the support assistant of Acme. Cite the refund policy. Answer the question: {{question}}"

# Personal data planted in every kind of text the job handles: none of it may reach the server.
PLANTED = {
    "emails": ["jane.doe@example.com", "j.smith+work@corp.co.uk", "ops-lead@acme.io"],
    "phones": ["+44 20 7946 0958", "(415) 555-0134", "415-555-0199"],
    "cards": ["4111 1111 1111 1111", "5500-0000-0000-0004", "378282246310005"],
}
RAW = [s for group in PLANTED.values() for s in group]
COMPACT = [s.replace(" ", "").replace("-", "") for s in PLANTED["cards"]]


def _mlflow_template(base: Path) -> Path:
    """One migrated MLflow store per test session (creating its tables takes seconds); tests get copies."""
    template = base / "mlflow-template" / "mlflow.db"
    if not template.exists():
        template.parent.mkdir(parents=True, exist_ok=True)
        mlflow_client(f"sqlite:///{template}").search_experiments()
    return template


@pytest.fixture(scope="session")
def mlflow_db_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _mlflow_template(tmp_path_factory.getbasetemp())


@pytest.fixture
def tracking_uri(tmp_path: Path, mlflow_db_template: Path) -> str:
    db = tmp_path / "mlflow.db"
    shutil.copy(mlflow_db_template, db)
    return f"sqlite:///{db}"


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as f:
        yield f


def _config(fake: FakeOpenAI | None, tracking_uri: str, **kw: Any) -> PromptUpdateConfig:
    defaults: dict[str, Any] = {
        "prompt_name": NAME,
        "tracking_uri": tracking_uri,
        "openai": OpenAIConfig(base_url=fake.base_url if fake else "http://127.0.0.1:9/v1", timeout_s=10),
        "draft_model": "gpt-4o" if fake else None,
    }
    defaults.update(kw)
    return PromptUpdateConfig(**defaults)


def _trigger(tid: str = "t-prompt-1") -> dict[str, Any]:
    return {
        "id": tid,
        "action": "prompt_update",
        "model": NAME,
        "model_version": "1",
        "reason": "safety.pii flagged in 3 of last 5 windows",
    }


def _seed_production(tracking_uri: str, template: str = BASE_PROMPT) -> int:
    mlf = mlflow_client(tracking_uri)
    pv = mlf.register_prompt(name=NAME, template=template, commit_message="hand-written")
    mlf.set_prompt_alias(NAME, "production", int(pv.version))
    return int(pv.version)


def _examples() -> list[Example]:
    return [
        Example("Where is my refund? I am jane.doe@example.com", "No idea.", rating=-1),
        Example(
            "Can I pay with 4111 1111 1111 1111?",
            "Sure, card 4111 1111 1111 1111 is charged.",
            flags={"pii": True, "toxicity": 0.0},
        ),
        Example(
            "Call me on +44 20 7946 0958",
            "Calling (415) 555-0134 now",
            corrected_response="We cannot call customers; write to support.",
        ),
        Example("What are your hours?", "Nine to five.", rating=1),  # fine: not a failure
    ]


def _wire_texts(fake: FakeOpenAI) -> list[str]:
    out = []
    for r in fake.requests:
        out.append(r.body.decode("utf-8", "replace"))
        if r.body and r.headers.get("content-type", "").startswith("application/json"):
            out.append(json.dumps(json.loads(r.body), ensure_ascii=False))
    return out


def _assert_nothing_planted(texts: list[str]) -> None:
    leaked = [s for s in RAW + COMPACT for t in texts if s in t]
    assert leaked == []


# ------------------------------------------------------------------------------------------ the job


def test_candidate_is_drafted_over_the_wire_and_awaits_approval(fake: FakeOpenAI, tracking_uri: str) -> None:
    v1 = _seed_production(tracking_uri)
    fake.chat_reply = f"```\n{CANDIDATE}\n```"
    result = run_prompt_update(_trigger(), _examples(), _config(fake, tracking_uri), api_key=fake.api_key)

    assert result.status == AWAITING_APPROVAL == "awaiting_approval"
    assert (result.version, result.base_version, result.n_failures) == (v1 + 1, v1, 3)
    assert result.drafted_by == "openai:gpt-4o" and result.uri == f"prompts:/{NAME}/{v1 + 1}"

    # the request: one chat completion, our key, the system message, the current prompt and the failures
    assert [(r.method, r.path) for r in fake.requests] == [("POST", "/v1/chat/completions")]
    req = fake.requests[0]
    assert req.headers["authorization"] == f"Bearer {fake.api_key}"
    body = req.json
    assert body["model"] == "gpt-4o"
    system, user = body["messages"]
    assert system == {"role": "system", "content": DRAFT_SYSTEM_MESSAGE}
    assert user["role"] == "user" and BASE_PROMPT in user["content"]
    assert "flagged: pii" in user["content"] and "user rating -1" in user["content"]
    assert "Wanted answer: We cannot call customers; write to support." in user["content"]
    assert "[EMAIL]" in user["content"] and "[CARD]" in user["content"] and "[PHONE]" in user["content"]
    assert "What are your hours?" not in user["content"]  # well-rated interactions are not failures

    # the registry: a new version, tagged, fences stripped; production still on v1
    mlf = mlflow_client(tracking_uri)
    pv = mlf.get_prompt_version(NAME, result.version)
    assert pv.template == CANDIDATE
    assert pv.tags["opsloop.status"] == "awaiting_approval"
    assert pv.tags["opsloop.trigger_id"] == "t-prompt-1"
    assert pv.tags["opsloop.base_version"] == str(v1) and pv.tags["opsloop.failures"] == "3"
    assert "t-prompt-1" in pv.commit_message
    assert pv.aliases == []
    assert int(mlf.get_prompt_version_by_alias(NAME, "production").version) == v1


def test_approval_moves_the_production_alias(fake: FakeOpenAI, tracking_uri: str) -> None:
    v1 = _seed_production(tracking_uri)
    fake.chat_reply = CANDIDATE
    first = run_prompt_update(_trigger("t-a"), _examples(), _config(fake, tracking_uri), api_key=fake.api_key)
    fake.chat_reply = CANDIDATE + " Be brief."
    second = run_prompt_update(
        _trigger("t-b"), _examples(), _config(fake, tracking_uri), api_key=fake.api_key
    )
    assert second.base_version == v1  # candidates waiting for approval are not built upon

    mlf = mlflow_client(tracking_uri)
    approval = approve_prompt(NAME, first.version, tracking_uri=tracking_uri, approved_by="lead")
    assert (approval.version, approval.previous_version, approval.alias) == (first.version, v1, "production")
    assert int(mlf.get_prompt_version_by_alias(NAME, "production").version) == first.version
    approved = mlf.get_prompt_version(NAME, first.version)
    assert approved.tags["opsloop.status"] == "approved" and approved.tags["opsloop.approved_by"] == "lead"
    assert mlf.get_prompt_version(NAME, v1).tags["opsloop.status"] == "superseded"

    reject_prompt(
        NAME, second.version, tracking_uri=tracking_uri, reason="too terse, ask jane.doe@example.com"
    )
    rejected = mlf.get_prompt_version(NAME, second.version)
    assert (
        rejected.tags["opsloop.status"] == "rejected"
        and "[EMAIL]" in rejected.tags["opsloop.rejected_reason"]
    )
    with pytest.raises(LLMJobError, match="rejected"):
        approve_prompt(NAME, second.version, tracking_uri=tracking_uri)
    with pytest.raises(LLMJobError, match="in production"):
        reject_prompt(NAME, first.version, tracking_uri=tracking_uri)
    with pytest.raises(LLMJobError, match="no prompt version"):
        approve_prompt(NAME, 99, tracking_uri=tracking_uri)
    assert int(mlf.get_prompt_version_by_alias(NAME, "production").version) == first.version


def test_no_personal_data_reaches_the_server_or_the_registry(
    fake: FakeOpenAI, tracking_uri: str, tmp_path: Path
) -> None:
    # personal data everywhere: examples, the current prompt, the golden set, even the model's own answer
    _seed_production(tracking_uri, BASE_PROMPT + " Escalate to ops-lead@acme.io or 415-555-0199.")
    golden = tmp_path / "golden.jsonl"
    golden.write_text(
        "\n".join(
            json.dumps(row)
            for row in [
                {"input": "Refund for card 5500-0000-0000-0004?", "expected": "refund policy"},
                {
                    "input": {"question": "Email j.smith+work@corp.co.uk my invoice"},
                    "expected": "refund policy",
                },
            ]
        )
        + "\n"
    )
    fake.chat_responder = lambda body: (
        CANDIDATE + " If unsure, call (415) 555-0134."
        if body["messages"][0]["content"] == DRAFT_SYSTEM_MESSAGE
        else "See the refund policy, jane.doe@example.com"
    )
    examples = _examples() + [
        Example(
            "Phone (415) 555-0134, email j.smith+work@corp.co.uk, card 378282246310005",
            "Noted: 378282246310005",
            rating=-1,
            flags={"pii": True},
        ),
    ]
    trigger = _trigger() | {"reason": "pii seen: 4111 1111 1111 1111"}
    result = run_prompt_update(
        trigger, examples, _config(fake, tracking_uri, golden_set=golden), api_key=fake.api_key
    )

    assert len(fake.requests) == 1 + 2 + 2  # draft, golden set with the candidate, and with the baseline
    _assert_nothing_planted(_wire_texts(fake))
    assert (
        result.redactions["email"] >= 3 and result.redactions["card"] >= 3 and result.redactions["phone"] >= 3
    )
    assert any("current prompt held personal data" in w for w in result.warnings)

    pv = mlflow_client(tracking_uri).get_prompt_version(NAME, result.version)
    _assert_nothing_planted([pv.template, pv.commit_message, json.dumps(pv.tags)])
    assert "[PHONE]" in pv.template


def test_golden_set_scores_candidate_and_baseline(
    fake: FakeOpenAI, tracking_uri: str, tmp_path: Path
) -> None:
    _seed_production(tracking_uri)
    golden = tmp_path / "golden.jsonl"
    golden.write_text(
        '{"input": "Can I get a refund?", "expected": "Refund policy"}\n\n'
        '{"input": {"question": "Refund after 40 days?"}, "expected": "refund policy"}\n'
    )

    def answer(body: dict[str, Any]) -> str:
        text = " ".join(m["content"] for m in body["messages"])
        if text.startswith(DRAFT_SYSTEM_MESSAGE):
            return CANDIDATE
        return "Per our refund policy: yes." if "Cite the refund policy" in text else "Yes."

    fake.chat_responder = answer
    result = run_prompt_update(
        _trigger(),
        _examples(),
        _config(fake, tracking_uri, golden_set=golden, answer_model="gpt-4o-mini"),
        api_key=fake.api_key,
    )
    assert (result.score, result.baseline_score, result.n_golden) == (1.0, 0.0, 2)
    scoring = [r.json for r in fake.requests[1:]]
    assert {b["model"] for b in scoring} == {"gpt-4o-mini"}
    # the prompt has one variable: the input is filled in as the user message
    assert scoring[0]["messages"] == [
        {"role": "user", "content": CANDIDATE.replace("{{question}}", "Can I get a refund?")}
    ]
    tags = mlflow_client(tracking_uri).get_prompt_version(NAME, result.version).tags
    assert (
        tags["opsloop.golden.score"],
        tags["opsloop.golden.baseline_score"],
        tags["opsloop.golden.n"],
    ) == ("1", "0", "2")

    fake.requests.clear()
    custom = run_prompt_update(
        _trigger("t-custom"),
        _examples(),
        _config(
            fake,
            tracking_uri,
            golden_set=golden,
            score_baseline=False,
            scorer="tests.test_prompt_update:half_scorer",
        ),
        api_key=fake.api_key,
    )
    assert custom.score == 0.5 and custom.baseline_score is None and len(fake.requests) == 3


def half_scorer(_input: Any, _expected: str, _output: str) -> float:
    return 0.5


def test_template_drafting_needs_no_openai(tracking_uri: str) -> None:
    config = _config(
        None,
        tracking_uri,
        initial_prompt="Answer {{question}} politely.",
        draft_template="{current_prompt}\nNever repeat personal data. Past failures:\n{failures}",
    )
    result = run_prompt_update(_trigger(), _examples(), config)
    assert (
        result.status == AWAITING_APPROVAL and result.drafted_by == "template" and result.base_version is None
    )
    pv = mlflow_client(tracking_uri).get_prompt_version(NAME, result.version)
    assert pv.template.startswith("Answer {{question}} politely.\nNever repeat personal data.")
    assert pv.variables == {"question"} and "[CARD]" in pv.template
    _assert_nothing_planted([pv.template])
    assert draft_from_template("{current_prompt} {{x}} {other}", "P", "F") == "P {{x}} {other}"


def test_the_same_trigger_registers_once(fake: FakeOpenAI, tracking_uri: str) -> None:
    _seed_production(tracking_uri)
    fake.chat_reply = CANDIDATE
    first = run_prompt_update(_trigger(), _examples(), _config(fake, tracking_uri), api_key=fake.api_key)
    calls = len(fake.requests)
    again = run_prompt_update(_trigger(), _examples(), _config(fake, tracking_uri), api_key=fake.api_key)
    assert again.resumed and again.version == first.version and len(fake.requests) == calls


def test_nothing_to_learn_from_and_unchanged_drafts(fake: FakeOpenAI, tracking_uri: str) -> None:
    _seed_production(tracking_uri)
    none = run_prompt_update(
        _trigger(), [Example("hi", "hello", rating=1)], _config(fake, tracking_uri), api_key=fake.api_key
    )
    assert none.status == "no_failures" and none.version is None and fake.requests == []
    facts_only = [
        Example("I am jane.doe@example.com", "Hi", rating=1, flags={"pii_prompt": ["email"], "harm": []})
    ]
    picky = _config(fake, tracking_uri, flag_keys=("injection", "pii_response", "harm"))
    assert run_prompt_update(_trigger(), facts_only, picky, api_key=fake.api_key).status == "no_failures"
    fake.chat_reply = BASE_PROMPT
    same = run_prompt_update(_trigger(), _examples(), _config(fake, tracking_uri), api_key=fake.api_key)
    assert same.status == "unchanged" and same.version is None
    assert len(mlflow_client(tracking_uri).search_prompt_versions(NAME)) == 1


def test_a_refused_key_never_shows_up_in_errors_or_logs(
    fake: FakeOpenAI, tracking_uri: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _seed_production(tracking_uri)
    wrong = "sk-wrong-key-that-must-not-leak-0123456789"
    monkeypatch.setenv("OPSLOOP_TEST_OPENAI_KEY", wrong)
    config = _config(
        fake, tracking_uri, openai=OpenAIConfig(base_url=fake.base_url, api_key_env="OPSLOOP_TEST_OPENAI_KEY")
    )
    caplog.set_level(logging.DEBUG)
    with pytest.raises(LLMJobError) as info:
        run_prompt_update(_trigger(), _examples(), config)
    assert str(info.value) == "drafting the prompt failed: http 401 (invalid_api_key)"
    assert not info.value.retryable
    assert fake.requests[0].headers["authorization"] == f"Bearer {wrong}"  # the key was read from the env
    assert wrong not in caplog.text and wrong not in repr(info.value)
    assert len(mlflow_client(tracking_uri).search_prompt_versions(NAME)) == 1  # nothing registered

    fake.fail_next(503)
    with pytest.raises(LLMJobError) as info:
        run_prompt_update(_trigger(), _examples(), _config(fake, tracking_uri), api_key=fake.api_key)
    assert info.value.retryable


def test_configuration_errors(tracking_uri: str, tmp_path: Path) -> None:
    with pytest.raises(LLMJobConfigError, match="draft_model"):
        PromptUpdateConfig(prompt_name=NAME)
    with pytest.raises(LLMJobConfigError, match="current_prompt"):
        PromptUpdateConfig(draft_template="no placeholder")
    with pytest.raises(LLMJobConfigError, match="scorer"):
        PromptUpdateConfig(draft_model="m", scorer="not a scorer")
    with pytest.raises(LLMJobConfigError, match="not a 'prompt_update' trigger|is a 'fine_tune' trigger"):
        run_prompt_update(
            {"id": "x", "action": "fine_tune"},
            _examples(),
            _config(None, tracking_uri, draft_template="{current_prompt}"),
        )
    with pytest.raises(LLMJobConfigError, match="no version to improve"):
        run_prompt_update(
            _trigger(), _examples(), _config(None, tracking_uri, draft_template="{current_prompt}")
        )
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"input": "x", "expected": "y"}\nnot json\n')
    with pytest.raises(LLMJobConfigError, match="bad.jsonl:2"):
        run_prompt_update(
            _trigger(),
            _examples(),
            _config(
                None, tracking_uri, golden_set=bad, initial_prompt="P", draft_template="{current_prompt}!"
            ),
        )


def test_golden_inputs_fill_the_prompt_variables() -> None:
    assert golden_messages("Be kind.", "hi") == [
        {"role": "system", "content": "Be kind."},
        {"role": "user", "content": "hi"},
    ]
    assert golden_messages("Q: {{ q }} in {{lang}}", {"q": "hi", "lang": "fr"}) == [
        {"role": "user", "content": "Q: hi in fr"}
    ]
    with pytest.raises(LLMJobConfigError, match="as an object"):
        golden_messages("{{a}} {{b}}", "hi")
    assert scrub("card 4111 1111 1111 1111") == "card [CARD]"
