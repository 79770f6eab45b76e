"""docker-compose.yml cannot run here (no Docker engine), so its shape is checked against the code."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from opsloop.cli import build_parser
from opsloop.services.versions import KAFKA_VERSION
from opsloop.settings import DbSettings, KafkaSettings, Settings, WorkerSettings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def _known_env() -> set[str]:
    names = {"KAFKA_BOOTSTRAP_SERVERS", "MLFLOW_TRACKING_URI"}
    for cls in (Settings, KafkaSettings, DbSettings, WorkerSettings):
        prefix = cls.model_config.get("env_prefix", "")
        names.update(f"{prefix}{f}".upper() for f in cls.model_fields)
    return names


def test_services_present() -> None:
    assert {"kafka", "postgres", "migrate", "worker", "relay", "mlflow"} <= set(SERVICES)


def test_kafka_image_matches_the_pinned_version() -> None:
    assert SERVICES["kafka"]["image"] == f"apache/kafka:{KAFKA_VERSION}"
    env = SERVICES["kafka"]["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    advertised = env["KAFKA_ADVERTISED_LISTENERS"]
    assert "INTERNAL://kafka:19092" in advertised
    for svc in ("worker", "relay", "migrate"):
        assert SERVICES[svc]["environment"]["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:19092"


@pytest.mark.parametrize("svc", ["migrate", "worker", "relay"])
def test_opsloop_services_use_real_settings_and_commands(svc: str) -> None:
    spec = SERVICES[svc]
    unknown = set(spec["environment"]) - _known_env()
    assert unknown == set()
    build_parser().parse_args(spec["command"])  # raises SystemExit on a command the CLI does not have
    db = spec["environment"]["OPSLOOP_DB_URL"]
    assert db.startswith("postgresql+psycopg://") and "${OPSLOOP_PG_PASSWORD}" in db


def test_no_literal_secrets() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    assert "POSTGRES_PASSWORD: ${OPSLOOP_PG_PASSWORD:?" in text
    assert not re.search(r"PASSWORD:\s*[A-Za-z0-9]+\s*$", text, re.M)


def test_workers_wait_for_healthy_dependencies() -> None:
    for svc in ("worker", "relay"):
        deps = SERVICES[svc]["depends_on"]
        assert deps["kafka"]["condition"] == "service_healthy"
        assert deps["migrate"]["condition"] == "service_completed_successfully"
    assert SERVICES["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_dockerfile_copies_every_package() -> None:
    text = (ROOT / "Dockerfile").read_text()
    for pkg in ("opsloop", "streams", "detectors", "retrain", "storage"):
        assert f"COPY {pkg} ./{pkg}" in text


@pytest.mark.skipif(not shutil.which("docker"), reason="no docker client")
def test_docker_compose_config_accepts_the_file() -> None:
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip("docker client without the compose plugin")
    r = subprocess.run(["docker", "compose", "-f", str(ROOT / "docker-compose.yml"), "config", "--quiet"],
                       capture_output=True, text=True, env={"OPSLOOP_PG_PASSWORD": "x", "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
