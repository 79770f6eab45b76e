"""Settings from the environment (pydantic-settings), one class per part.

Secrets are ``SecretStr`` and never logged. Built in entry points, never at import time.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from opsloop.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parent.parent


def _default_home() -> Path:
    return Path(os.environ.get("OPSLOOP_HOME", str(Path.cwd() / ".opsloop")))


class KafkaSettings(BaseSettings):
    """``KAFKA_BOOTSTRAP_SERVERS`` (or ``OPSLOOP_KAFKA_BOOTSTRAP_SERVERS``) selects an existing broker."""

    model_config = SettingsConfigDict(env_prefix="OPSLOOP_KAFKA_", extra="ignore")

    bootstrap_servers: str = Field(default="127.0.0.1:9092")
    partitions: int = Field(default=6, ge=1, le=10_000)
    replication_factor: int = Field(default=1, ge=1, le=10)
    client_id: str = "opsloop"
    namespace: str = Field(default="", pattern=r"^[A-Za-z0-9_-]{0,100}$")

    @model_validator(mode="before")
    @classmethod
    def _plain_env(cls, data: object) -> object:
        if isinstance(data, dict) and "bootstrap_servers" not in data:
            plain = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
            if plain and not os.environ.get("OPSLOOP_KAFKA_BOOTSTRAP_SERVERS"):
                data = {**data, "bootstrap_servers": plain}
        return data


class DbSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OPSLOOP_DB_", extra="ignore")

    url: str = ""
    echo: bool = False

    def resolved_url(self) -> str:
        if self.url:
            return self.url
        home = _default_home()
        home.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{home / 'opsloop.db'}"

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, v: str) -> str:
        if v and not v.split(":", 1)[0].split("+", 1)[0] in {"sqlite", "postgresql"}:
            raise ValueError("OPSLOOP_DB_URL must be a sqlite:// or postgresql:// URL")
        return v


class WorkerSettings(BaseSettings):
    """How the worker windows and judges a model's stream (defaults for every model)."""

    model_config = SettingsConfigDict(env_prefix="OPSLOOP_WORKER_", extra="ignore")

    app_id: str = "opsloop-worker"
    batch_size: int = Field(default=1000, ge=1, le=100_000)
    batch_within_s: float = Field(default=1.0, gt=0, le=60)
    window_kind: Literal["count", "time", "sliding"] = "count"
    sliding_panes: int = Field(default=10, ge=2, le=100)
    window_size: int = Field(default=1000, ge=10, le=10_000_000)
    window_seconds: float = Field(default=300.0, gt=0)
    allowed_lateness_s: float = Field(default=60.0, ge=0)
    reference_size: int = Field(default=10_000, ge=10, le=1_000_000)
    drift_alpha: float = Field(default=0.005, gt=0, lt=1)
    drift_correction: Literal["bonferroni", "bh"] = "bonferroni"
    trigger_cooldown_s: float = Field(default=3600.0, ge=0)
    slice_by: str = ""  # comma-separated low-cardinality features monitored per value as well
    policies_file: str = ""  # a YAML policy file (docs/policies.md); empty: the default rules
    log_predictions: Literal["all", "with_id", "none"] = "all"
    label_delay_s: float = Field(default=7 * 86400.0, gt=0)
    session_timeout_s: float = Field(default=15.0, ge=6, le=300)
    relay: bool = True
    relay_interval_s: float = Field(default=0.5, gt=0)
    web_port: int = Field(default=6066, ge=0, le=65535)


_PLACEHOLDERS = {"changeme", "change-me", "secret", "password", "xxx", "todo", "your-key-here", "<key>"}


def _real_secret(name: str, v: SecretStr | None) -> SecretStr | None:
    if v is not None and v.get_secret_value().strip().lower() in _PLACEHOLDERS:
        raise ValueError(f"{name} is a placeholder, not a key")
    return v


class LLMSettings(BaseSettings):
    """The LLM stream. Offline detectors always run; a cloud provider switches on when its key is set."""

    model_config = SettingsConfigDict(env_prefix="OPSLOOP_LLM_", extra="ignore")

    enabled: bool = True
    fingerprint_key: SecretStr | None = None  # keys the stored hashes; default: a generated key in OPSLOOP_HOME
    window_size: int = Field(default=500, ge=10, le=1_000_000)
    reference_size: int = Field(default=500, ge=10, le=1_000_000)
    azure_endpoint: str = ""
    azure_key: SecretStr | None = None
    openai_api_key: SecretStr | None = None
    openai_base_url: str = ""
    remote_sample_rate: float = Field(default=0.1, gt=0, le=1)
    judge_model: str = ""  # LLM-as-judge (groundedness, relevance) through openai when set with the OpenAI key
    judge_sample_rate: float = Field(default=0.05, gt=0, le=1)
    remote_budget_calls_per_min: int = Field(default=600, ge=1)

    @field_validator("fingerprint_key", "azure_key", "openai_api_key")
    @classmethod
    def _no_placeholders(cls, v: SecretStr | None, info: Any) -> SecretStr | None:
        return _real_secret(f"OPSLOOP_LLM_{info.field_name.upper()}", v)

    def resolved_fingerprint_key(self, home: Path) -> SecretStr:
        if self.fingerprint_key is not None:
            if len(self.fingerprint_key.get_secret_value().encode()) < 16:
                raise ConfigError("OPSLOOP_LLM_FINGERPRINT_KEY must be at least 16 bytes")
            return self.fingerprint_key
        import secrets

        path = home / "llm-fingerprint.key"
        if not path.exists():
            home.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_hex(32))
            path.chmod(0o600)
        return SecretStr(path.read_text().strip())


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OPSLOOP_", extra="ignore")

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    home: Path = Field(default_factory=_default_home)


def load() -> tuple[Settings, KafkaSettings, DbSettings, WorkerSettings]:
    """Read every settings class; a bad value becomes one ``ConfigError`` naming the variable."""
    from pydantic import ValidationError

    parts = []
    for cls in (Settings, KafkaSettings, DbSettings, WorkerSettings):
        try:
            parts.append(cls())
        except ValidationError as exc:
            prefix = cls.model_config.get("env_prefix", "")
            msgs = []
            for err in exc.errors():
                field = ".".join(str(p) for p in err["loc"])
                msgs.append(f"{prefix}{field.upper()}: {err['msg']}")
            raise ConfigError("invalid settings: " + "; ".join(msgs)) from None
    return parts[0], parts[1], parts[2], parts[3]  # type: ignore[return-value]
