"""The fine-tune job against the local OpenAI fake (through the real ``openai`` client) and a real MLflow
tracking store on SQLite: the dataset, the upload and the job on the wire, polling to the end, the recorded
model id, failures, resuming a trigger, and that no personal data is uploaded."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from retrain.fine_tune import FineTuneConfig, build_dataset, find_fine_tune, run_fine_tune, validate_dataset
from retrain.llm_jobs_common import Example, LLMJobConfigError, LLMJobError, OpenAIConfig, mlflow_client
from tests.fakes.openai_server import FakeOpenAI

PLANTED = [
    "jane.doe@example.com",
    "j.smith+work@corp.co.uk",
    "+44 20 7946 0958",
    "(415) 555-0134",
    "4111 1111 1111 1111",
    "5500-0000-0000-0004",
    "378282246310005",
    "4111111111111111",
    "5500000000000004",
]


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


class Clock:
    """A monotonic clock that sleeping advances: polling runs instantly and its waits are recorded."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _config(fake: FakeOpenAI, tracking_uri: str, **kw: Any) -> FineTuneConfig:
    defaults: dict[str, Any] = {
        "base_model": "gpt-4o-mini-2024-07-18",
        "tracking_uri": tracking_uri,
        "openai": OpenAIConfig(base_url=fake.base_url, timeout_s=10),
        "system_prompt": "You are the support assistant of Acme.",
        "min_examples": 3,
        "poll_interval_s": 5.0,
        "suffix": "support",
    }
    defaults.update(kw)
    return FineTuneConfig(**defaults)


def _trigger(tid: str = "t-ft-1") -> dict[str, Any]:
    return {"id": tid, "action": "fine_tune", "model": "support-bot", "model_version": "3"}


def _examples() -> list[Example]:
    return [
        Example(
            "Where is my refund? Mail me at jane.doe@example.com",
            "No idea.",
            corrected_response="Refunds take 5 days; we will write to [EMAIL].",
        ),
        Example("What are your hours?", "Nine to five, Monday to Friday.", rating=1),
        Example("Can I pay with 4111 1111 1111 1111?", "Yes, card 4111 1111 1111 1111 works.", rating=1),
        Example("Call me on +44 20 7946 0958", "Sure", rating=-1),  # badly rated, not corrected: skipped
        Example("Leak it", "Here: 5500-0000-0000-0004", rating=1, flags={"pii": True}),  # flagged: skipped
        Example("Do you ship abroad?", "Yes, to 30 countries.", rating=1),
        Example("Do you ship abroad?", "Yes, to 30 countries.", rating=1),  # duplicate
        Example("Reach (415) 555-0134 or j.smith+work@corp.co.uk", "Noted.", rating=None),  # unrated
        Example(
            "Card 378282246310005 declined",
            "Try again",
            corrected_response="Please contact your bank about card [CARD].",
        ),
    ]


def _assert_nothing_planted(texts: list[str]) -> None:
    leaked = [s for s in PLANTED for t in texts if s in t]
    assert leaked == []


# ---------------------------------------------------------------------------------------------- dataset


def test_the_dataset_holds_curated_redacted_examples_only() -> None:
    config = FineTuneConfig(system_prompt="Be kind.", min_examples=3)
    ds = build_dataset(_examples(), config)
    lines = ds.lines()
    assert ds.n_examples == len(lines) == 5
    assert dict(ds.skipped) == {"duplicate": 1, "flagged": 1, "not_curated": 2}
    assert all([m["role"] for m in line["messages"]] == ["system", "user", "assistant"] for line in lines)
    assert lines[0]["messages"] == [
        {"role": "system", "content": "Be kind."},
        {"role": "user", "content": "Where is my refund? Mail me at [EMAIL]"},
        {"role": "assistant", "content": "Refunds take 5 days; we will write to [EMAIL]."},
    ]
    assert lines[2]["messages"][2]["content"] == "Yes, card [CARD] works."
    assert ds.redactions == {"card": 3, "email": 1}
    _assert_nothing_planted([ds.content.decode()])
    assert validate_dataset(ds, config) is None

    too_few = validate_dataset(ds, FineTuneConfig(min_examples=10))
    assert too_few is not None and too_few[0] == "insufficient_data"
    too_big = validate_dataset(ds, FineTuneConfig(min_examples=1, max_total_tokens=10))
    assert too_big is not None and too_big[0] == "invalid_dataset"
    long = build_dataset([Example("x " * 200, "y", rating=1)], FineTuneConfig(max_tokens_per_example=50))
    assert long.n_examples == 0 and long.skipped == {"too_long": 1}
    lenient = build_dataset(_examples(), FineTuneConfig(include_flagged_corrected=True))
    assert lenient.skipped["flagged"] == 1  # flagged and not corrected: still skipped
    # a flags dict may carry facts that are no failure (the user's own prompt held PII): flag_keys picks
    facts = [Example("I am jane.doe@example.com", "Hi [EMAIL]", rating=1, flags={"pii_prompt": ["email"]})]
    assert build_dataset(facts, FineTuneConfig()).skipped == {"flagged": 1}
    picked = build_dataset(facts, FineTuneConfig(flag_keys=("injection", "pii_response", "harm")))
    assert picked.n_examples == 1 and picked.lines()[0]["messages"][0]["content"] == "I am [EMAIL]"


# ----------------------------------------------------------------------------------------------- the job


def test_fine_tune_on_the_wire_polls_to_success_and_records_the_model(
    fake: FakeOpenAI, tracking_uri: str
) -> None:
    fake.job_running_polls = 3
    clock = Clock()
    result = run_fine_tune(
        _trigger(),
        _examples(),
        _config(fake, tracking_uri),
        api_key=fake.api_key,
        sleep=clock.sleep,
        clock=clock,
    )

    assert result.status == "succeeded" and result.succeeded
    assert result.fine_tuned_model == f"ft:gpt-4o-mini-2024-07-18:fake::{result.job_id}"
    assert result.error is None and result.trained_tokens == 1234 and result.n_examples == 5
    assert result.polls == 4 and clock.sleeps == [5.0, 5.0, 5.0]
    assert result.events[0].message == "The job has successfully completed"

    job_path = f"/v1/fine_tuning/jobs/{result.job_id}"
    assert [(r.method, r.path) for r in fake.requests] == [
        ("GET", "/v1/fine_tuning/jobs"),  # no job of this trigger yet
        ("POST", "/v1/files"),
        ("POST", "/v1/fine_tuning/jobs"),
        *[("GET", job_path)] * 4,
        ("GET", job_path + "/events"),
    ]
    assert all(r.headers["authorization"] == f"Bearer {fake.api_key}" for r in fake.requests)

    assert fake.requests[0].query["metadata[opsloop_trigger_id]"] == ["t-ft-1"]
    upload = fake.requests[1]
    assert upload.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert b'name="purpose"\r\n\r\nfine-tune' in upload.body
    assert b'filename="opsloop-support-bot-t-ft-1.jsonl"' in upload.body
    stored = fake.files[result.training_file]
    assert stored["purpose"] == "fine-tune"
    lines = [json.loads(line) for line in stored["content"].decode().splitlines()]
    assert len(lines) == 5 and lines[0]["messages"][0] == {
        "role": "system",
        "content": "You are the support assistant of Acme.",
    }
    assert lines[-1]["messages"][2]["content"] == "Please contact your bank about card [CARD]."

    create = fake.requests[2].json
    assert create == {
        "model": "gpt-4o-mini-2024-07-18",
        "training_file": result.training_file,
        "suffix": "support",
        "metadata": {"opsloop_trigger_id": "t-ft-1", "opsloop_model": "support-bot"},
    }
    assert fake.requests[-1].param("limit") == "20"

    # findable in MLflow by the model id
    mlf = mlflow_client(tracking_uri)
    exp = mlf.get_experiment_by_name("opsloop-fine-tune")
    runs = mlf.search_runs(
        [exp.experiment_id], filter_string=f"tags.`openai.fine_tuned_model` = '{result.fine_tuned_model}'"
    )
    assert [r.info.run_id for r in runs] == [result.run_id]
    run = runs[0]
    assert run.info.status == "FINISHED"
    assert run.data.tags["opsloop.status"] == "succeeded" and run.data.tags["openai.job_id"] == result.job_id
    assert run.data.tags["opsloop.trigger_id"] == "t-ft-1" and run.data.tags["opsloop.model"] == "support-bot"
    assert run.data.params["n_examples"] == "5" and run.data.params["base_model"] == "gpt-4o-mini-2024-07-18"
    assert run.data.metrics["trained_tokens"] == 1234 and run.data.metrics["polls"] == 4

    # the same trigger again: the recorded result, no call at all
    calls = len(fake.requests)
    again = run_fine_tune(
        _trigger(),
        _examples(),
        _config(fake, tracking_uri),
        api_key=fake.api_key,
        sleep=clock.sleep,
        clock=clock,
    )
    assert again.resumed and again.fine_tuned_model == result.fine_tuned_model and len(fake.requests) == calls
    found = find_fine_tune("t-ft-1", tracking_uri=tracking_uri)
    assert found is not None and found.fine_tuned_model == result.fine_tuned_model and found.n_examples == 5


def test_a_failed_job_is_reported_with_its_error(fake: FakeOpenAI, tracking_uri: str) -> None:
    fake.job_error = {
        "code": "invalid_training_file",
        "message": "Line 2: too few assistant tokens",
        "param": "training_file",
    }
    clock = Clock()
    result = run_fine_tune(
        _trigger(),
        _examples(),
        _config(fake, tracking_uri),
        api_key=fake.api_key,
        sleep=clock.sleep,
        clock=clock,
    )
    assert result.status == "failed" and not result.succeeded and result.fine_tuned_model is None
    assert result.error == {
        "code": "invalid_training_file",
        "message": "Line 2: too few assistant tokens",
        "param": "training_file",
    }
    assert result.events[0].level == "error"
    run = mlflow_client(tracking_uri).get_run(result.run_id)
    assert run.info.status == "FAILED"
    assert run.data.tags["opsloop.status"] == "failed"
    assert run.data.tags["opsloop.error_code"] == "invalid_training_file"
    found = find_fine_tune("t-ft-1", tracking_uri=tracking_uri)
    assert found is not None and found.status == "failed" and found.error is not None
    assert found.error["code"] == "invalid_training_file"


def test_no_personal_data_is_uploaded_or_recorded(fake: FakeOpenAI, tracking_uri: str) -> None:
    examples = _examples() + [
        Example(f"My card is {c}, mail {e}, phone {p}", f"Saved {c} for {e}; we call {p}", rating=1)
        for c, e, p in [
            ("4111 1111 1111 1111", "jane.doe@example.com", "+44 20 7946 0958"),
            ("5500-0000-0000-0004", "j.smith+work@corp.co.uk", "(415) 555-0134"),
        ]
    ]
    config = _config(fake, tracking_uri, system_prompt="Escalate to jane.doe@example.com")
    clock = Clock()
    result = run_fine_tune(_trigger(), examples, config, api_key=fake.api_key, sleep=clock.sleep, clock=clock)
    assert result.succeeded and result.redactions["card"] >= 4 and result.redactions["phone"] == 4

    wire = [r.body.decode("utf-8", "replace") for r in fake.requests]
    wire += [f["content"].decode() for f in fake.files.values()]
    _assert_nothing_planted(wire)
    assert "[EMAIL]" in fake.files[result.training_file]["content"].decode()

    run = mlflow_client(tracking_uri).get_run(result.run_id)
    _assert_nothing_planted([json.dumps(run.data.tags), json.dumps(run.data.params)])


def test_too_few_examples_start_nothing(fake: FakeOpenAI, tracking_uri: str) -> None:
    result = run_fine_tune(_trigger(), _examples()[:2], _config(fake, tracking_uri), api_key=fake.api_key)
    assert result.status == "insufficient_data" and result.job_id is None and fake.requests == []
    assert result.error is not None and "2 usable examples, at least 3 needed" in result.error["message"]
    run = mlflow_client(tracking_uri).get_run(result.run_id)
    assert run.data.tags["opsloop.status"] == "insufficient_data" and run.info.status == "FINISHED"


def test_a_timed_out_job_is_followed_again_not_restarted(fake: FakeOpenAI, tracking_uri: str) -> None:
    fake.job_running_polls = 10
    clock = Clock()
    config = _config(fake, tracking_uri, poll_timeout_s=12.0)
    first = run_fine_tune(
        _trigger(), _examples(), config, api_key=fake.api_key, sleep=clock.sleep, clock=clock
    )
    assert first.status == "timed_out" and first.job_id is not None and first.fine_tuned_model is None
    assert mlflow_client(tracking_uri).get_run(first.run_id).info.status == "RUNNING"

    fake.requests.clear()
    second = run_fine_tune(
        _trigger(),
        [],
        _config(fake, tracking_uri, poll_timeout_s=3600.0),
        api_key=fake.api_key,
        sleep=clock.sleep,
        clock=clock,
    )
    assert second.status == "succeeded" and second.resumed
    assert (second.job_id, second.run_id, second.n_examples) == (first.job_id, first.run_id, 5)
    assert {r.path for r in fake.requests} == {
        f"/v1/fine_tuning/jobs/{first.job_id}",
        f"/v1/fine_tuning/jobs/{first.job_id}/events",
    }


def test_polling_survives_transient_errors_and_stops_on_refusals(
    fake: FakeOpenAI, tracking_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", fake.api_key)  # the default: the key comes from the environment
    clock = Clock()
    fake.fail_next(503, times=2, path="/v1/fine_tuning/jobs/")
    ok = run_fine_tune(
        _trigger("t-transient"), _examples(), _config(fake, tracking_uri), sleep=clock.sleep, clock=clock
    )
    assert ok.succeeded and ok.polls == 4

    fake.fail_next(400, path="/v1/files")
    with pytest.raises(LLMJobError) as info:
        run_fine_tune(
            _trigger("t-refused"), _examples(), _config(fake, tracking_uri), sleep=clock.sleep, clock=clock
        )
    assert (
        str(info.value) == "uploading the training file failed: http 400 (400)" and not info.value.retryable
    )

    fake.fail_next(503, times=3, path="/v1/fine_tuning/jobs/")
    with pytest.raises(LLMJobError) as info:
        run_fine_tune(
            _trigger("t-down"),
            _examples(),
            _config(fake, tracking_uri, max_poll_errors=3),
            sleep=clock.sleep,
            clock=clock,
        )
    assert info.value.retryable and "3 times in a row" in str(info.value)
    # running it again follows the job that was started, it does not start a second one
    fake.requests.clear()
    resumed = run_fine_tune(
        _trigger("t-down"), _examples(), _config(fake, tracking_uri), sleep=clock.sleep, clock=clock
    )
    assert resumed.succeeded and not any(r.path.endswith(("/files", "/jobs")) for r in fake.requests)

    # a run that stopped before its job existed is superseded by a fresh attempt
    retried = run_fine_tune(
        _trigger("t-refused"), _examples(), _config(fake, tracking_uri), sleep=clock.sleep, clock=clock
    )
    assert retried.succeeded and not retried.resumed


def test_configuration_errors(tracking_uri: str) -> None:
    with pytest.raises(LLMJobConfigError, match="suffix"):
        FineTuneConfig(suffix="has spaces")
    with pytest.raises(LLMJobConfigError, match="max_examples"):
        FineTuneConfig(min_examples=20, max_examples=10)
    with pytest.raises(LLMJobConfigError, match="fine_tune"):
        run_fine_tune({"id": "x", "action": "retrain"}, [], FineTuneConfig(tracking_uri=tracking_uri))
    with pytest.raises(LLMJobConfigError, match="OPSLOOP_NO_SUCH_KEY"):
        run_fine_tune(
            _trigger(),
            _examples(),
            FineTuneConfig(
                tracking_uri=tracking_uri,
                min_examples=1,
                openai=OpenAIConfig(api_key_env="OPSLOOP_NO_SUCH_KEY"),
            ),
        )


def test_a_job_started_by_a_lost_attempt_is_adopted_not_started_again(
    fake: FakeOpenAI, tracking_uri: str
) -> None:
    # an earlier attempt started the job, then died before MLflow recorded it: OpenAI still knows it by metadata
    client = openai.OpenAI(base_url=fake.base_url, api_key=fake.api_key, max_retries=0)
    uploaded = client.files.create(file=("earlier.jsonl", b"{}\n"), purpose="fine-tune")
    earlier = client.fine_tuning.jobs.create(
        model="gpt-4o-mini-2024-07-18", training_file=uploaded.id, metadata={"opsloop_trigger_id": "t-lost"}
    )
    client.close()
    fake.requests.clear()
    clock = Clock()
    result = run_fine_tune(
        _trigger("t-lost"),
        _examples(),
        _config(fake, tracking_uri),
        api_key=fake.api_key,
        sleep=clock.sleep,
        clock=clock,
    )
    assert result.succeeded and result.job_id == earlier.id and result.training_file == uploaded.id
    assert not any(r.method == "POST" for r in fake.requests)
    tags = mlflow_client(tracking_uri).get_run(result.run_id).data.tags
    assert tags["opsloop.adopted_job"] == "true" and tags["openai.job_id"] == earlier.id
