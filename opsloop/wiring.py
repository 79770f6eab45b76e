"""Wiring: settings -> engines, processor, worker app, relay. Called from entry points only."""

from __future__ import annotations

import logging
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from detectors.drift import FeatureDriftConfig
from opsloop.settings import DbSettings, KafkaSettings, Settings, WorkerSettings
from retrain.policies import load_policies
from storage.db import make_engine, migrate, session_factory
from streams.labels import LabelConfig
from streams.model_stream import StreamConfig, default_rules
from streams.processor import BatchProcessor, ProcessorConfig
from streams.topics import Topics
from streams.worker import WorkerConfig

_SECRET_RE = re.compile(r"(://[^:/@\s]+:)([^@\s]+)(@)")


def redact_url(url: str) -> str:
    """Hide the password of a database URL before it is printed or logged."""
    return _SECRET_RE.sub(r"\1***\3", url)


class _RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and "://" in record.msg:
            record.msg = redact_url(record.msg)
        return True


def setup_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    handler.addFilter(_RedactSecrets())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("kafka", "aiokafka", "faust", "mode", "alembic", "urllib3"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))


@dataclass
class Database:
    engine: Engine
    sessions: sessionmaker[Session]


def database(db: DbSettings, *, upgrade: bool = True) -> Database:
    engine = make_engine(db.resolved_url(), echo=db.echo)
    if upgrade:
        migrate(engine)
    return Database(engine, session_factory(engine))


def processor(sessions: sessionmaker[Session], ks: KafkaSettings, ws: WorkerSettings) -> BatchProcessor:
    stream = StreamConfig(window_kind=ws.window_kind, window_size=ws.window_size, sliding_panes=ws.sliding_panes,
                          window_seconds=ws.window_seconds,
                          allowed_lateness_s=ws.allowed_lateness_s, reference_size=ws.reference_size,
                          drift=FeatureDriftConfig(alpha=ws.drift_alpha, correction=ws.drift_correction),
                          rules=default_rules(ws.trigger_cooldown_s))
    policies = load_policies(ws.policies_file) if ws.policies_file else None
    labels = LabelConfig(log_predictions=ws.log_predictions, label_delay_s=ws.label_delay_s)
    return BatchProcessor(sessions, ProcessorConfig(consumer_group=ws.app_id, stream=stream, policies=policies,
                                                    topics=Topics(ks.namespace), labels=labels,
                                                    slice_by=tuple(f for f in ws.slice_by.split(",") if f)))


def worker_config(ks: KafkaSettings, ws: WorkerSettings, home: Path | None = None) -> WorkerConfig:
    """``home``: faust's data directory goes under it (``<home>/faust``), not into the working directory."""
    return WorkerConfig(app_id=ws.app_id, bootstrap_servers=ks.bootstrap_servers, partitions=ks.partitions,
                        batch_size=ws.batch_size, batch_within_s=ws.batch_within_s,
                        session_timeout_s=ws.session_timeout_s,
                        topics=Topics(ks.namespace), datadir=str(home / "faust") if home else None)


def home(settings: Settings) -> str:
    os.makedirs(settings.home, exist_ok=True)
    return str(settings.home)


def ensure_topics(ks: KafkaSettings, partitions: int | None = None) -> list[str]:
    from streams.admin import ensure_topics as _ensure

    return _ensure(ks.bootstrap_servers, partitions or ks.partitions, ks.replication_factor,
                   names=Topics(ks.namespace).all())


def relay(sessions: sessionmaker[Session], ks: KafkaSettings):  # type: ignore[no-untyped-def]
    from retrain.relay import Relay

    return Relay(sessions, ks.bootstrap_servers, triggers_topic=Topics(ks.namespace).triggers)


def llm_processor(sessions: sessionmaker[Session], settings: Settings, ks: KafkaSettings, ws: WorkerSettings):  # type: ignore[no-untyped-def]
    """The LLM stream's processor; a cloud safety provider is added when its credentials are set."""
    from pathlib import Path

    from detectors.safety.providers.azure import AzureContentSafetyConfig
    from detectors.safety.providers.openai_moderation import OpenAIModerationConfig
    from detectors.safety.providers.resilience import ResilienceConfig
    from opsloop.settings import LLMSettings
    from streams.llm_stream import LLMProcessor, LLMStreamConfig, RemoteProvider

    ls = LLMSettings()
    resilience = ResilienceConfig(sample_rate=ls.remote_sample_rate, budget_calls=ls.remote_budget_calls_per_min,
                                  budget_window_s=60.0)
    remote = []
    if ls.azure_endpoint and ls.azure_key is not None:
        remote.append(RemoteProvider(AzureContentSafetyConfig(endpoint=ls.azure_endpoint), ls.azure_key, resilience))
    if ls.openai_api_key is not None:
        remote.append(RemoteProvider(OpenAIModerationConfig(base_url=ls.openai_base_url or None),
                                     ls.openai_api_key, resilience))
        if ls.judge_model:
            from dataclasses import replace as _replace

            from detectors.safety.providers.openai_judge import OpenAIJudgeConfig

            remote.append(RemoteProvider(OpenAIJudgeConfig(base_url=ls.openai_base_url or None, model=ls.judge_model),
                                         ls.openai_api_key, _replace(resilience, sample_rate=ls.judge_sample_rate)))
    policies = load_policies(ws.policies_file) if ws.policies_file else None
    cfg = LLMStreamConfig(consumer_group=ws.app_id, fingerprint_key=ls.resolved_fingerprint_key(Path(settings.home)),
                          topics=Topics(ks.namespace), window_size=ls.window_size, reference_size=ls.reference_size,
                          remote=tuple(remote), policies=policies)
    return LLMProcessor(sessions, cfg)
