"""`opsloop llm-jobs-runner`, `opsloop prompt approve|reject NAME VERSION`: run prompt-update and fine-tune jobs
from triggers, and decide on the candidate prompts they register.

``register(subparsers)`` is called from ``opsloop/cli.py``; until it is wired, ``python -m opsloop.llm_jobs_cli
...`` runs the same commands. Settings come from ``OPSLOOP_LLMJOBS_*`` (``LLMJobsSettings``) and MLflow's own
``MLFLOW_TRACKING_URI`` (default ``sqlite:///$OPSLOOP_HOME/mlflow.db``, as for the retrain runner). See
``docs/llm_jobs.md``.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import signal
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from opsloop.errors import ConfigError, OpsloopError

log = logging.getLogger("opsloop.llm_jobs")


class LLMJobsSettings(BaseSettings):
    """How the LLM jobs runner drafts prompts and fine-tunes (``OPSLOOP_LLMJOBS_*``)."""

    model_config = SettingsConfigDict(env_prefix="OPSLOOP_LLMJOBS_", extra="ignore")

    # prompt update: enabled when a drafting source is set (draft_model or draft_template)
    prompt_name: str = "{application}"   # MLflow prompt name; {application} is the trigger's application
    draft_model: str = ""                # OpenAI model that drafts the candidate
    draft_template: str = ""             # or a template with {current_prompt} (and {failures})
    answer_model: str = ""               # answers the golden set (default: draft_model)
    golden_set: str = ""                 # JSONL path, {"input": ..., "expected": ...} a line
    scorer: str = "contains"
    initial_prompt: str = ""             # the current prompt when the registry has none
    # fine-tune: enabled unless fine_tune is false
    fine_tune: bool = True
    fine_tune_base_model: str = "gpt-4o-mini-2024-07-18"
    fine_tune_system_prompt: str = ""
    fine_tune_suffix: str = ""
    fine_tune_min_examples: int = Field(default=10, ge=1)
    fine_tune_experiment: str = "opsloop-fine-tune"
    fine_tune_poll_interval_s: float = Field(default=30.0, gt=0)
    fine_tune_poll_timeout_s: float = Field(default=24 * 3600.0, gt=0)
    # OpenAI: the key is read from the variable named here when a job runs, never stored
    openai_base_url: str = ""
    openai_api_key_env: str = "OPENAI_API_KEY"
    openai_timeout_s: float = Field(default=60.0, gt=0)
    # the runner
    examples_limit: int = Field(default=500, ge=1, le=100_000)
    lease_s: float = Field(default=60.0, gt=0, le=86_400)
    max_attempts: int = Field(default=3, ge=1, le=100)
    poll_interval_s: float = Field(default=0.5, gt=0, le=60)
    shutdown_grace_s: float = Field(default=30.0, ge=0)
    session_timeout_s: float = Field(default=10.0, ge=6, le=300)
    models: str = ""                     # comma-separated model names or patterns (llm:<app>); empty: all
    relay: bool = False


def _settings() -> LLMJobsSettings:
    try:
        return LLMJobsSettings()
    except ValidationError as exc:
        msgs = [f"OPSLOOP_LLMJOBS_{'.'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors()]
        raise ConfigError("invalid settings: " + "; ".join(msgs)) from None


def _tracking_uri() -> str:
    from opsloop.jobs_cli import tracking_uri
    from opsloop.settings import Settings

    return tracking_uri(Path(Settings().home))


def runner_config(ks: Any, ls: LLMJobsSettings, tracking_uri: str) -> Any:
    """The runner's config from the settings; a job kind that cannot work as configured is a ``ConfigError``."""
    from retrain.fine_tune import FineTuneConfig
    from retrain.llm_jobs_common import LLMJobConfigError, OpenAIConfig
    from retrain.llm_runner import FAILURE_FLAGS, LLMJobsConfig
    from retrain.prompt_update import PromptUpdateConfig

    try:
        oa = OpenAIConfig(base_url=ls.openai_base_url or None, api_key_env=ls.openai_api_key_env,
                          timeout_s=ls.openai_timeout_s)
        pu = None
        if ls.draft_model or ls.draft_template:
            pu = PromptUpdateConfig(prompt_name=ls.prompt_name or None, tracking_uri=tracking_uri, openai=oa,
                                    draft_model=ls.draft_model or None, draft_template=ls.draft_template or None,
                                    answer_model=ls.answer_model or None, golden_set=ls.golden_set or None,
                                    scorer=ls.scorer, initial_prompt=ls.initial_prompt or None,
                                    flag_keys=FAILURE_FLAGS)
        ft = None
        if ls.fine_tune:
            ft = FineTuneConfig(base_model=ls.fine_tune_base_model, tracking_uri=tracking_uri,
                                experiment=ls.fine_tune_experiment, openai=oa,
                                system_prompt=ls.fine_tune_system_prompt or None, suffix=ls.fine_tune_suffix or None,
                                min_examples=ls.fine_tune_min_examples, flag_keys=FAILURE_FLAGS,
                                poll_interval_s=ls.fine_tune_poll_interval_s,
                                poll_timeout_s=ls.fine_tune_poll_timeout_s)
    except LLMJobConfigError as exc:
        raise ConfigError(str(exc)) from None
    if pu is None and ft is None:
        raise ConfigError("nothing to run: set OPSLOOP_LLMJOBS_DRAFT_MODEL or OPSLOOP_LLMJOBS_DRAFT_TEMPLATE "
                          "(prompt updates) and/or leave OPSLOOP_LLMJOBS_FINE_TUNE on")
    return LLMJobsConfig(namespace=ks.namespace, bootstrap_servers=ks.bootstrap_servers, prompt_update=pu,
                         fine_tune=ft, examples_limit=ls.examples_limit, lease_s=ls.lease_s,
                         max_attempts=ls.max_attempts, poll_interval_s=ls.poll_interval_s,
                         shutdown_grace_s=ls.shutdown_grace_s, session_timeout_s=ls.session_timeout_s,
                         models=tuple(m.strip() for m in ls.models.split(",") if m.strip()))


def cmd_llm_jobs_runner(args: argparse.Namespace) -> int:
    from opsloop import wiring
    from opsloop.settings import load
    from retrain.llm_runner import LLMJobsRunner
    from retrain.mlflow_registry import quiet_mlflow
    from retrain.runner import jobs_topic
    from streams.admin import ensure_topics
    from streams.topics import Topics

    settings, ks, dbs, _ = load()
    ls = _settings()
    uri = _tracking_uri()
    cfg = runner_config(ks, ls, uri)
    wiring.setup_logging(settings.log_level)
    quiet_mlflow()
    db = wiring.database(dbs)
    ensure_topics(ks.bootstrap_servers, ks.partitions, ks.replication_factor,
                  names=[Topics(ks.namespace).triggers, jobs_topic(ks.namespace)])
    runner = LLMJobsRunner(db.sessions, cfg)
    relay = None
    if ls.relay or args.relay:
        relay = wiring.relay(db.sessions, ks)
        relay.start_thread()
    signal.signal(signal.SIGTERM, lambda *_: runner.stop())
    log.info("LLM jobs runner: %s, MLflow %s, database %s", ", ".join(cfg.actions), wiring.redact_url(uri),
             wiring.redact_url(dbs.resolved_url()))
    try:
        runner.run_forever()
    except KeyboardInterrupt:
        pass
    finally:
        if relay is not None:
            relay.close()
    return 0


def cmd_prompt_approve(args: argparse.Namespace) -> int:
    from retrain.llm_jobs_common import LLMJobError
    from retrain.prompt_update import approve_prompt

    try:
        res = approve_prompt(args.name, args.version, tracking_uri=args.tracking_uri or _tracking_uri(),
                             alias=args.alias, approved_by=args.by or getpass.getuser())
    except LLMJobError as exc:
        raise OpsloopError(str(exc)) from None
    was = f" (was v{res.previous_version})" if res.previous_version is not None else ""
    print(f"{res.name}@{res.alias} -> v{res.version}{was}")
    return 0


def cmd_prompt_reject(args: argparse.Namespace) -> int:
    from retrain.llm_jobs_common import LLMJobError
    from retrain.prompt_update import reject_prompt

    try:
        reject_prompt(args.name, args.version, tracking_uri=args.tracking_uri or _tracking_uri(), reason=args.reason)
    except LLMJobError as exc:
        raise OpsloopError(str(exc)) from None
    print(f"{args.name} v{args.version} rejected")
    return 0


def register(subparsers: Any) -> None:
    """Add ``llm-jobs-runner`` and ``prompt approve|reject`` to the ``opsloop`` command's subparsers."""
    r = subparsers.add_parser("llm-jobs-runner", help="consume prompt_update/fine_tune triggers and run the jobs")
    r.add_argument("--relay", action="store_true", help="also publish outbox rows (job events) from this process")
    r.set_defaults(func=cmd_llm_jobs_runner)
    p = subparsers.add_parser("prompt", help="approve or reject a candidate prompt version")
    psub = p.add_subparsers(dest="prompt_command", required=True, metavar="ACTION")
    for name, func, help_ in (("approve", cmd_prompt_approve, "move the production alias to the version"),
                              ("reject", cmd_prompt_reject, "mark the version rejected")):
        a = psub.add_parser(name, help=help_)
        a.add_argument("name", help="the MLflow prompt name")
        a.add_argument("version", type=int)
        a.add_argument("--tracking-uri", help="MLflow store (default: MLFLOW_TRACKING_URI or $OPSLOOP_HOME/mlflow.db)")
        if name == "approve":
            a.add_argument("--alias", default="production")
            a.add_argument("--by", help="who approves (default: the current user)")
        else:
            a.add_argument("--reason")
        a.set_defaults(func=func)

