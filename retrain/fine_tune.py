"""The fine-tune job: from a trigger and its curated interactions to an OpenAI fine-tuned model, recorded as an
MLflow run. See ``docs/llm_jobs.md``.

    examples ─ curate (corrected, or rated well; flagged skipped) ─ scrub ─▶ chat JSONL ─ validate
        ─▶ files.create(purpose="fine-tune") ─▶ fine_tuning.jobs.create ─▶ poll jobs.retrieve to the end
        ─▶ MLflow run: params, metrics, tags (openai.job_id, openai.fine_tuned_model, opsloop.status)

The MLflow run is opened before anything is uploaded and tagged with the trigger id and, as soon as it exists,
the OpenAI job id. Running the same trigger again therefore never starts a second job: a finished run is
returned as recorded, a run whose job is still going is followed further, a run that stopped before its job
was recorded is taken up again: first OpenAI is asked for a job carrying the trigger id in its metadata (the job
may have been started just before the crash), and only if there is none is a new file uploaded.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import openai

from retrain.llm_jobs_common import (
    Example,
    LLMJobConfigError,
    LLMJobError,
    OpenAIConfig,
    RedactionTally,
    SecretLike,
    api_error,
    check_action,
    clip,
    describe_api_error,
    estimate_chat_tokens,
    estimate_tokens,
    is_transient,
    make_client,
    mlflow_client,
    scrub,
    tag_value,
    trigger_field,
)

log = logging.getLogger(__name__)

JOB_TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
RECORDED_FINAL = JOB_TERMINAL | {"insufficient_data", "invalid_dataset"}
DEFAULT_EXPERIMENT = "opsloop-fine-tune"
TRIGGER_METADATA = "opsloop_trigger_id"  # on every job we start: finds it again after a crash
OPENAI_MIN_EXAMPLES = 10  # OpenAI refuses training files with fewer examples

Status = Literal["succeeded", "failed", "cancelled", "timed_out", "insufficient_data", "invalid_dataset"]


@dataclass(frozen=True)
class FineTuneConfig:
    """How the dataset is curated and checked, which model is tuned, and how the job is followed.

    An example is used when a person corrected its response (the correction is the target) or its rating is at
    least ``good_rating_min`` (the response is the target); flagged examples are skipped (unless corrected and
    ``include_flagged_corrected``); ``flag_keys`` names the flags that count (default: any flag set).
    ``system_prompt`` (redacted too) opens every conversation when set.
    Token counts are estimates (``count_tokens``, default about 3.5 characters a token, on the high side)."""

    base_model: str = "gpt-4o-mini-2024-07-18"
    tracking_uri: str | None = None
    experiment: str = DEFAULT_EXPERIMENT
    openai: OpenAIConfig = field(default_factory=OpenAIConfig)
    system_prompt: str | None = None
    good_rating_min: int = 1
    include_flagged_corrected: bool = False
    flag_keys: tuple[str, ...] | None = None
    min_examples: int = OPENAI_MIN_EXAMPLES
    max_examples: int = 5000
    max_tokens_per_example: int = 16_384
    max_total_tokens: int | None = None
    suffix: str | None = None
    n_epochs: int | None = None
    seed: int | None = None
    poll_interval_s: float = 30.0
    poll_timeout_s: float = 24 * 3600.0
    max_poll_errors: int = 10
    events_limit: int = 20
    count_tokens: Callable[[str], int] = estimate_tokens

    def __post_init__(self) -> None:
        if not self.base_model:
            raise LLMJobConfigError("base_model is required")
        if not isinstance(self.min_examples, int) or self.min_examples < 1:
            raise LLMJobConfigError(f"min_examples must be a positive int, got {self.min_examples!r}")
        if not isinstance(self.max_examples, int) or self.max_examples < self.min_examples:
            raise LLMJobConfigError(f"max_examples must be an int >= min_examples, got {self.max_examples!r}")
        if self.max_tokens_per_example < 16:
            raise LLMJobConfigError(f"max_tokens_per_example is too small: {self.max_tokens_per_example!r}")
        if self.max_total_tokens is not None and self.max_total_tokens < 1:
            raise LLMJobConfigError(f"max_total_tokens must be positive, got {self.max_total_tokens!r}")
        if self.suffix is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", self.suffix):
            raise LLMJobConfigError("suffix: 1 to 40 letters, digits, '-' or '_'")
        if self.n_epochs is not None and not 1 <= self.n_epochs <= 50:
            raise LLMJobConfigError(f"n_epochs must be in 1..50, got {self.n_epochs!r}")
        if not self.poll_interval_s > 0 or not self.poll_timeout_s > 0:
            raise LLMJobConfigError("poll_interval_s and poll_timeout_s must be > 0")
        if self.max_poll_errors < 1:
            raise LLMJobConfigError("max_poll_errors must be >= 1")


@dataclass(frozen=True)
class Dataset:
    """A validated training file: ``content`` is the JSONL bytes uploaded."""

    content: bytes
    n_examples: int
    est_tokens: int
    skipped: Mapping[str, int]
    redactions: Mapping[str, int]

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.content.decode("utf-8").splitlines()]


@dataclass(frozen=True)
class JobEvent:
    created_at: int
    level: str
    message: str


@dataclass(frozen=True)
class FineTuneResult:
    """What the job did. ``status`` is the OpenAI job's end state (``succeeded``, ``failed``, ``cancelled``),
    ``timed_out`` (the job goes on at OpenAI; running the trigger again follows it further), or, when nothing
    was uploaded, ``insufficient_data`` / ``invalid_dataset``. ``error`` holds OpenAI's ``{code, message,
    param}`` for a failed job, or the reason the dataset was refused."""

    status: Status
    trigger_id: str
    job_id: str | None = None
    fine_tuned_model: str | None = None
    error: Mapping[str, Any] | None = None
    training_file: str | None = None
    base_model: str = ""
    n_examples: int = 0
    skipped: Mapping[str, int] = field(default_factory=dict)
    est_tokens: int = 0
    trained_tokens: int | None = None
    run_id: str | None = None
    polls: int = 0
    events: tuple[JobEvent, ...] = ()
    redactions: Mapping[str, int] = field(default_factory=dict)
    resumed: bool = False

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "trigger_id": self.trigger_id,
            "job_id": self.job_id,
            "fine_tuned_model": self.fine_tuned_model,
            "error": None if self.error is None else dict(self.error),
            "training_file": self.training_file,
            "base_model": self.base_model,
            "n_examples": self.n_examples,
            "skipped": dict(self.skipped),
            "est_tokens": self.est_tokens,
            "trained_tokens": self.trained_tokens,
            "run_id": self.run_id,
            "polls": self.polls,
            "events": [
                {"created_at": e.created_at, "level": e.level, "message": e.message} for e in self.events
            ],
            "redactions": dict(self.redactions),
            "resumed": self.resumed,
        }


# -------------------------------------------------------------------------------------------- dataset


def curate(example: Example, config: FineTuneConfig) -> tuple[str, str] | str:
    """``(prompt, target)`` when the example may be trained on, else the reason it is skipped."""
    if example.is_flagged(config.flag_keys) and not (config.include_flagged_corrected and example.corrected):
        return "flagged"
    if example.corrected and example.corrected_response is not None:
        target = example.corrected_response
    elif example.rating is not None and example.rating >= config.good_rating_min:
        target = example.response
    else:
        return "not_curated"
    if not example.prompt.strip() or not target.strip():
        return "empty"
    return example.prompt, target


def build_dataset(examples: Sequence[Example], config: FineTuneConfig) -> Dataset:
    """Curated examples as chat JSONL (``{"messages": [system?, user, assistant]}``), every text redacted,
    duplicates and over-long examples left out, at most ``max_examples``."""
    tally = RedactionTally()
    skipped: Counter[str] = Counter()
    system = scrub(config.system_prompt, tally) if config.system_prompt else None
    seen: set[tuple[str, str]] = set()
    lines: list[bytes] = []
    total = 0
    for example in examples:
        curated = curate(example, config)
        if isinstance(curated, str):
            skipped[curated] += 1
            continue
        prompt, target = scrub(curated[0], tally), scrub(curated[1], tally)
        if (prompt, target) in seen:
            skipped["duplicate"] += 1
            continue
        if len(lines) >= config.max_examples:
            skipped["over_max_examples"] += 1
            continue
        messages = ([{"role": "system", "content": system}] if system else []) + [
            {"role": "user", "content": prompt},
            {"role": "assistant", "content": target},
        ]
        tokens = estimate_chat_tokens(messages, config.count_tokens)
        if tokens > config.max_tokens_per_example:
            skipped["too_long"] += 1
            continue
        seen.add((prompt, target))
        total += tokens
        lines.append(json.dumps({"messages": messages}, ensure_ascii=False).encode("utf-8"))
    content = b"\n".join(lines) + (b"\n" if lines else b"")
    return Dataset(content, len(lines), total, dict(sorted(skipped.items())), tally.as_dict())


def validate_dataset(dataset: Dataset, config: FineTuneConfig) -> tuple[Status, str] | None:
    """None when the dataset may be uploaded, else the status and reason it is refused."""
    if dataset.n_examples < config.min_examples:
        return "insufficient_data", (
            f"{dataset.n_examples} usable examples, at least {config.min_examples} needed "
            f"(skipped: {dict(dataset.skipped) or 'none'})"
        )
    if config.max_total_tokens is not None and dataset.est_tokens > config.max_total_tokens:
        return (
            "invalid_dataset",
            f"about {dataset.est_tokens} tokens, more than max_total_tokens {config.max_total_tokens}",
        )
    for n, line in enumerate(dataset.lines(), 1):  # what we built, checked as OpenAI will check it
        roles = [m.get("role") for m in line.get("messages", [])]
        if roles not in (["user", "assistant"], ["system", "user", "assistant"]):
            return "invalid_dataset", f"line {n}: roles {roles}"
        if not all(isinstance(m.get("content"), str) and m["content"].strip() for m in line["messages"]):
            return "invalid_dataset", f"line {n}: an empty message"
    return None


# ----------------------------------------------------------------------------------------------- the job


def run_fine_tune(
    trigger: Mapping[str, Any],
    examples: Sequence[Example],
    config: FineTuneConfig,
    *,
    api_key: str | SecretLike | None = None,
    client: openai.OpenAI | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> FineTuneResult:
    """Build, upload, start and follow a fine-tuning job for ``trigger``; see the module doc. Raises
    ``LLMJobError`` when a call fails before the job ends (``retryable``: run the trigger again; a job already
    started is then followed, not started twice)."""
    check_action(trigger, "fine_tune")
    tid = trigger_field(trigger, "id")
    mlf = mlflow_client(config.tracking_uri)
    exp_id = _experiment_id(mlf, config.experiment)

    run = _run_for_trigger(mlf, exp_id, tid)
    if run is not None and run.data.tags.get("opsloop.status") in RECORDED_FINAL:
        log.info(
            "fine-tune for trigger %s: already %s (run %s)",
            tid,
            run.data.tags["opsloop.status"],
            run.info.run_id,
        )
        return _result_from_run(run, resumed=True)
    job_id = run.data.tags.get("openai.job_id") if run is not None else None
    if run is not None and job_id is None:
        # stopped before its job existed: nothing runs at OpenAI; a new run records the new attempt (params of
        # a run cannot change, and the examples may have)
        _set_tags(mlf, run.info.run_id, {"opsloop.status": "superseded"})
        mlf.set_terminated(run.info.run_id, "FAILED")
        run = None

    dataset: Dataset | None = None
    if job_id is None:
        dataset = build_dataset(examples, config)
    if run is None:
        run = mlf.create_run(
            exp_id,
            run_name=f"fine-tune {trigger_field(trigger, 'model')} {tid[:12]}",
            tags={
                "opsloop.trigger_id": tid,
                "opsloop.job": "fine_tune",
                "opsloop.model": trigger_field(trigger, "model"),
                "opsloop.model_version": trigger_field(trigger, "model_version"),
                "opsloop.status": "preparing",
                "openai.base_model": config.base_model,
            },
        )
    run_id = run.info.run_id
    if dataset is not None:
        _log_dataset(mlf, run_id, dataset, config)
        refused = validate_dataset(dataset, config)
        if refused is not None:
            status, reason = refused
            log.warning("fine-tune for trigger %s: %s: %s", tid, status, reason)
            _set_tags(
                mlf, run_id, {"opsloop.status": status, "opsloop.error_code": status, "opsloop.error": reason}
            )
            mlf.set_terminated(run_id, "FINISHED")
            return FineTuneResult(
                status,
                tid,
                error={"code": status, "message": reason, "param": None},
                base_model=config.base_model,
                n_examples=dataset.n_examples,
                skipped=dataset.skipped,
                est_tokens=dataset.est_tokens,
                run_id=run_id,
                redactions=dataset.redactions,
            )

    own_client = client is None
    if client is None:
        client = make_client(config.openai, api_key)
    started = clock()
    try:
        training_file = run.data.tags.get("openai.training_file")
        if job_id is None:
            adopted = _job_for_trigger(client, tid)
            if adopted is not None:  # started by an attempt that died before MLflow heard of it
                job_id, training_file = adopted.id, adopted.training_file
                log.warning("fine-tune for trigger %s: following job %s found at OpenAI", tid, job_id)
                _set_tags(
                    mlf,
                    run_id,
                    {
                        "openai.job_id": job_id,
                        "openai.training_file": training_file,
                        "opsloop.status": "running",
                        "opsloop.adopted_job": "true",
                    },
                )
            else:
                assert dataset is not None
                training_file, job_id = _start_job(client, mlf, run_id, trigger, dataset, config)
        job, polls = _follow(client, job_id, config, sleep, clock, tid)
        events = _events(client, job_id, config.events_limit)
    except LLMJobError as exc:
        _set_tags(
            mlf, run_id, {"opsloop.error_code": "call_failed", "opsloop.error": tag_value(str(exc), 1000)}
        )
        raise
    finally:
        if own_client:
            client.close()

    status: Status = job.status if job.status in JOB_TERMINAL else "timed_out"
    error = None
    if job.error is not None and (job.error.code or job.error.message):
        error = {"code": job.error.code, "message": scrub(job.error.message or ""), "param": job.error.param}
    elif status == "cancelled":
        error = {"code": "cancelled", "message": "the job was cancelled", "param": None}
    elif status == "failed":
        error = {"code": "failed", "message": "the job failed without an error from OpenAI", "param": None}
    tags = {"opsloop.status": status, "openai.job_status": job.status}
    if job.fine_tuned_model:
        tags["openai.fine_tuned_model"] = job.fine_tuned_model
    if error is not None:
        tags["opsloop.error_code"] = str(error["code"] or status)
        tags["opsloop.error"] = tag_value(error["message"], 1000)
    _set_tags(mlf, run_id, tags)
    metrics = {"polls": float(polls), "follow_s": float(clock() - started)}
    if job.trained_tokens is not None:
        metrics["trained_tokens"] = float(job.trained_tokens)
    _log_metrics(mlf, run_id, metrics)
    if status != "timed_out":
        mlf.set_terminated(
            run_id, "FINISHED" if status == "succeeded" else ("KILLED" if status == "cancelled" else "FAILED")
        )
    log.info(
        "fine-tune for trigger %s: job %s %s%s",
        tid,
        job_id,
        status,
        f", model {job.fine_tuned_model}" if job.fine_tuned_model else "",
    )
    recorded = _result_from_run(mlf.get_run(run_id), resumed=dataset is None)
    return FineTuneResult(
        status,
        tid,
        job_id=job_id,
        fine_tuned_model=job.fine_tuned_model,
        error=error,
        training_file=training_file or job.training_file,
        base_model=config.base_model,
        n_examples=recorded.n_examples,
        skipped=recorded.skipped,
        est_tokens=recorded.est_tokens,
        trained_tokens=job.trained_tokens,
        run_id=run_id,
        polls=polls,
        events=events,
        redactions=dataset.redactions if dataset is not None else recorded.redactions,
        resumed=dataset is None,
    )


def find_fine_tune(
    trigger_id: str, *, tracking_uri: str | None = None, experiment: str = DEFAULT_EXPERIMENT
) -> FineTuneResult | None:
    """The recorded result of the fine-tune run of ``trigger_id``, or None."""
    mlf = mlflow_client(tracking_uri)
    exp = mlf.get_experiment_by_name(experiment)
    if exp is None:
        return None
    run = _run_for_trigger(mlf, exp.experiment_id, trigger_id)
    return None if run is None else _result_from_run(run, resumed=True)


# -------------------------------------------------------------------------------------------- OpenAI


def _start_job(
    client: openai.OpenAI,
    mlf: Any,
    run_id: str,
    trigger: Mapping[str, Any],
    dataset: Dataset,
    config: FineTuneConfig,
) -> tuple[str, str]:
    tid = trigger_field(trigger, "id")
    model = re.sub(r"[^A-Za-z0-9_.-]+", "-", trigger_field(trigger, "model", "model"))[:60]
    filename = f"opsloop-{model}-{tid[:16]}.jsonl"
    try:
        uploaded = client.files.create(
            file=(filename, dataset.content, "application/jsonl"), purpose="fine-tune"
        )
    except openai.OpenAIError as exc:
        raise api_error("uploading the training file", exc) from None
    _set_tags(mlf, run_id, {"openai.training_file": uploaded.id})
    params: dict[str, Any] = {
        "metadata": {TRIGGER_METADATA: tid[:512], "opsloop_model": trigger_field(trigger, "model")[:512]}
    }
    if config.suffix:
        params["suffix"] = config.suffix
    if config.seed is not None:
        params["seed"] = config.seed
    if config.n_epochs is not None:
        params["method"] = {
            "type": "supervised",
            "supervised": {"hyperparameters": {"n_epochs": config.n_epochs}},
        }
    try:
        job = client.fine_tuning.jobs.create(model=config.base_model, training_file=uploaded.id, **params)
    except openai.OpenAIError as exc:
        raise api_error("starting the fine-tuning job", exc) from None
    _set_tags(
        mlf, run_id, {"openai.job_id": job.id, "opsloop.status": "running", "openai.job_status": job.status}
    )
    log.info(
        "fine-tune for trigger %s: job %s started on %s with %s (%d examples)",
        tid,
        job.id,
        config.base_model,
        uploaded.id,
        dataset.n_examples,
    )
    return uploaded.id, job.id


def _job_for_trigger(client: openai.OpenAI, tid: str) -> Any | None:
    """A job already started for the trigger (found by the metadata every job of ours carries), or None. A
    server that cannot list jobs by metadata (some OpenAI-compatible ones) is taken to have none."""
    try:
        page = client.fine_tuning.jobs.list(metadata={TRIGGER_METADATA: tid[:512]}, limit=10)
    except openai.OpenAIError as exc:
        if is_transient(exc):
            raise api_error("looking for an earlier job", exc) from None
        log.warning("fine-tune for trigger %s: jobs not listed (%s)", tid, describe_api_error(exc))
        return None
    for job in page.data:
        if (job.metadata or {}).get(TRIGGER_METADATA) == tid[:512]:
            return job
    return None


def _follow(
    client: openai.OpenAI,
    job_id: str,
    config: FineTuneConfig,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
    tid: str,
) -> tuple[Any, int]:
    """Poll until the job ends or ``poll_timeout_s`` passes; transient errors are retried at the next poll."""
    deadline = clock() + config.poll_timeout_s
    polls = errors = 0
    last_status = None
    job = None
    while True:
        try:
            job = client.fine_tuning.jobs.retrieve(job_id)
            errors = 0
        except openai.OpenAIError as exc:
            if not is_transient(exc):
                raise api_error(f"following job {job_id}", exc) from None
            errors += 1
            log.warning(
                "fine-tune for trigger %s: polling job %s: %s (%d in a row)",
                tid,
                job_id,
                describe_api_error(exc),
                errors,
            )
            if errors >= config.max_poll_errors:
                raise LLMJobError(
                    f"following job {job_id} failed {errors} times in a row: {describe_api_error(exc)}",
                    retryable=True,
                ) from None
        polls += 1
        if job is not None and job.status != last_status:
            log.info("fine-tune for trigger %s: job %s %s -> %s", tid, job_id, last_status, job.status)
            last_status = job.status
        if job is not None and job.status in JOB_TERMINAL:
            return job, polls
        if clock() >= deadline:
            if job is None:
                raise LLMJobError(f"job {job_id} could not be read before the poll timeout", retryable=True)
            log.warning(
                "fine-tune for trigger %s: job %s still %s after %.0f s; run the trigger again to follow it",
                tid,
                job_id,
                job.status,
                config.poll_timeout_s,
            )
            return job, polls
        sleep(config.poll_interval_s)


def _events(client: openai.OpenAI, job_id: str, limit: int) -> tuple[JobEvent, ...]:
    if limit < 1:
        return ()
    try:
        page = client.fine_tuning.jobs.list_events(job_id, limit=limit)
    except openai.OpenAIError as exc:
        log.warning("fine-tune job %s: events not read: %s", job_id, describe_api_error(exc))
        return ()
    return tuple(
        JobEvent(int(e.created_at), str(e.level), clip(scrub(e.message or ""), 500)) for e in page.data
    )


# -------------------------------------------------------------------------------------------- MLflow


def _experiment_id(mlf: Any, name: str) -> str:
    from mlflow.exceptions import MlflowException

    exp = mlf.get_experiment_by_name(name)
    if exp is not None:
        return str(exp.experiment_id)
    try:
        return str(mlf.create_experiment(name))
    except MlflowException:  # created meanwhile by another runner
        exp = mlf.get_experiment_by_name(name)
        if exp is None:
            raise
        return str(exp.experiment_id)


def _run_for_trigger(mlf: Any, exp_id: str, tid: str) -> Any | None:
    safe = tid.replace("'", "")
    runs = mlf.search_runs(
        [exp_id],
        filter_string=f"tags.`opsloop.trigger_id` = '{safe}'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return runs[0] if runs else None


def _set_tags(mlf: Any, run_id: str, tags: Mapping[str, str]) -> None:
    from mlflow.entities import RunTag

    mlf.log_batch(run_id, tags=[RunTag(k, tag_value(v)) for k, v in tags.items()])


def _log_metrics(mlf: Any, run_id: str, metrics: Mapping[str, float]) -> None:
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    mlf.log_batch(run_id, metrics=[Metric(k, v, now, 0) for k, v in metrics.items()])


def _log_dataset(mlf: Any, run_id: str, dataset: Dataset, config: FineTuneConfig) -> None:
    from mlflow.entities import Param

    params = {
        "base_model": config.base_model,
        "n_examples": dataset.n_examples,
        "est_tokens": dataset.est_tokens,
        "dataset_sha256": dataset.sha256,
        "skipped": json.dumps(dict(dataset.skipped), sort_keys=True),
        "min_examples": config.min_examples,
        "suffix": config.suffix or "",
        "n_epochs": config.n_epochs if config.n_epochs is not None else "auto",
        "seed": config.seed if config.seed is not None else "",
        "redactions": json.dumps(dict(dataset.redactions), sort_keys=True),
    }
    mlf.log_batch(run_id, params=[Param(k, str(v)) for k, v in params.items()])
    _log_metrics(
        mlf,
        run_id,
        {
            "n_examples": float(dataset.n_examples),
            "est_tokens": float(dataset.est_tokens),
            "n_skipped": float(sum(dataset.skipped.values())),
        },
    )


def _result_from_run(run: Any, *, resumed: bool) -> FineTuneResult:
    tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
    status = tags.get("opsloop.status", "")
    error = None
    if "opsloop.error" in tags and status in RECORDED_FINAL - {"succeeded"}:
        error = {
            "code": tags.get("opsloop.error_code", status),
            "message": tags["opsloop.error"],
            "param": None,
        }
    return FineTuneResult(
        status if status in RECORDED_FINAL or status == "timed_out" else "timed_out",  # type: ignore[arg-type]
        tags.get("opsloop.trigger_id", ""),
        job_id=tags.get("openai.job_id"),
        fine_tuned_model=tags.get("openai.fine_tuned_model"),
        error=error,
        training_file=tags.get("openai.training_file"),
        base_model=params.get("base_model", tags.get("openai.base_model", "")),
        n_examples=int(params.get("n_examples", 0)),
        skipped=json.loads(params.get("skipped", "{}")),
        est_tokens=int(params.get("est_tokens", 0)),
        trained_tokens=int(metrics["trained_tokens"]) if "trained_tokens" in metrics else None,
        run_id=run.info.run_id,
        polls=int(metrics.get("polls", 0)),
        redactions=json.loads(params.get("redactions", "{}")),
        resumed=resumed,
    )


__all__ = [
    "DEFAULT_EXPERIMENT",
    "JOB_TERMINAL",
    "Dataset",
    "FineTuneConfig",
    "FineTuneResult",
    "JobEvent",
    "build_dataset",
    "curate",
    "find_fine_tune",
    "run_fine_tune",
    "validate_dataset",
]
