"""A single-node Kafka broker (KRaft, broker and controller in one JVM) run from Maven Central's jars.

No Docker and no Apache tarball: ``ensure_jars`` resolves ``kafka_2.13`` and a log4j2 binding with Maven into
``<cache>/kafka/<version>/libs``; ``start`` writes the configuration into the data dir, formats the storage
once and runs ``kafka.Kafka`` detached. When ``KAFKA_BOOTSTRAP_SERVERS`` is set, that broker is used and
nothing is started.

CLI: ``python -m opsloop.services.kafka {start,stop,status,restart,jars}``.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import logging
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from string import Template

from opsloop.services import _common
from opsloop.services.errors import ServiceError, ServiceStartError, ServiceUnavailable
from opsloop.services.versions import (
    KAFKA_VERSION,
    LOG4J_VERSION,
    MAVEN_DEPENDENCY_PLUGIN_VERSION,
    SCALA_VERSION,
    SLF4J_VERSION,
)

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
DEFAULT_PORT = 9092
BOOTSTRAP_ENV = "KAFKA_BOOTSTRAP_SERVERS"
DATA_DIR_ENV = "OPSLOOP_KAFKA_DATA_DIR"
MIN_JAVA = 17
JAVA_MISSING = (
    "Java 17+ and Maven are needed to run the local Kafka broker; set KAFKA_BOOTSTRAP_SERVERS to use an "
    "existing broker, or run `docker compose up kafka`"
)
JVM_OPTIONS = (
    "-Xms512m",
    "-Xmx512m",
    "-XX:+UseSerialGC",
    "-XX:MaxDirectMemorySize=256m",
    "-Djava.awt.headless=true",
)
STOP_GRACE_SECONDS = 30.0

_POM = Template("""\
<?xml version="1.0" encoding="UTF-8"?>
<!-- Throw-away POM written by opsloop.services.kafka: only used to copy the broker's runtime jars. -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.opsloop.local</groupId>
  <artifactId>kafka-broker-runtime</artifactId>
  <version>$kafka</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_$scala</artifactId>
      <version>$kafka</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-core</artifactId>
      <version>$log4j</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j2-impl</artifactId>
      <version>$log4j</version>
    </dependency>
    <!-- A direct dependency wins over kafka's slf4j-api 1.7.x: the log4j binding needs SLF4J 2. -->
    <dependency>
      <groupId>org.slf4j</groupId>
      <artifactId>slf4j-api</artifactId>
      <version>$slf4j</version>
    </dependency>
  </dependencies>
  <build>
    <plugins>
      <plugin>
        <groupId>org.apache.maven.plugins</groupId>
        <artifactId>maven-dependency-plugin</artifactId>
        <version>$plugin</version>
      </plugin>
    </plugins>
  </build>
</project>
""")


@dataclass(frozen=True)
class KafkaStatus:
    bootstrap: str
    ready: bool
    managed: bool  # False when the broker is external (KAFKA_BOOTSTRAP_SERVERS) or not started by opsloop
    pid: int | None
    data_dir: Path | None
    version: str | None


# --------------------------------------------------------------------------------------------- paths


def external_bootstrap() -> str | None:
    value = os.environ.get(BOOTSTRAP_ENV, "").strip()
    return value or None


def default_data_dir() -> Path:
    env = os.environ.get(DATA_DIR_ENV)
    return Path(env).expanduser().resolve() if env else _common.cache_dir() / "kafka-data"


def _pid_file(data_dir: Path) -> Path:
    return data_dir / "kafka.pid"


def _out_file(data_dir: Path) -> Path:
    return data_dir / "kafka.out"


def _server_log(data_dir: Path) -> Path:
    return data_dir / "logs" / "server.log"


# ---------------------------------------------------------------------------------------- the tools


def _java_major(java: str) -> int | None:
    try:
        out = subprocess.run(
            [java, "-version"], check=False, capture_output=True, text=True, timeout=30
        ).stderr
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def find_java() -> str:
    """The ``java`` executable, 17 or newer; raises ServiceUnavailable otherwise."""
    java = shutil.which("java")
    if java is None:
        raise ServiceUnavailable(JAVA_MISSING)
    major = _java_major(java)
    if major is None or major < MIN_JAVA:
        raise ServiceUnavailable(f"{JAVA_MISSING} (found {java}: Java {major or 'unknown'})")
    return java


def _find_mvn() -> str:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise ServiceUnavailable(JAVA_MISSING)
    return mvn


# ---------------------------------------------------------------------------------------------- jars


def pom_xml(version: str = KAFKA_VERSION) -> str:
    return _POM.substitute(
        kafka=version,
        scala=SCALA_VERSION,
        log4j=LOG4J_VERSION,
        slf4j=SLF4J_VERSION,
        plugin=MAVEN_DEPENDENCY_PLUGIN_VERSION,
    )


def ensure_jars(cache_dir: Path | None = None, version: str = KAFKA_VERSION) -> Path:
    """Copy the broker's runtime jars into ``<cache>/kafka/<version>/libs`` and return that folder.

    Fast when done before: a marker holding the POM's digest is written last, after the folder is complete.
    """
    base = (cache_dir or _common.cache_dir()) / "kafka" / version
    libs = base / "libs"
    marker = base / "libs.complete"
    pom = pom_xml(version)
    digest = hashlib.sha256(pom.encode()).hexdigest()[:16]
    if _marker_matches(marker, digest) and libs.is_dir():
        return libs

    mvn = _find_mvn()
    base.mkdir(parents=True, exist_ok=True)
    with (base / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be resolving the same version
        if _marker_matches(marker, digest) and libs.is_dir():
            return libs
        marker.unlink(missing_ok=True)
        staging = base / "libs.partial"
        shutil.rmtree(staging, ignore_errors=True)
        log = base / "maven.log"
        started = time.monotonic()
        logger.info("resolving Kafka %s jars with Maven (log: %s)", version, log)
        with tempfile.TemporaryDirectory(prefix="opsloop-kafka-pom-") as tmp:
            pom_path = Path(tmp) / "pom.xml"
            pom_path.write_text(pom)
            cmd = [
                mvn,
                "-B",
                "--no-transfer-progress",
                "-Dstyle.color=never",
                "-f",
                str(pom_path),
                "dependency:copy-dependencies",
                "-DincludeScope=runtime",
                f"-DoutputDirectory={staging}",
            ]
            with log.open("w") as fh:
                rc = subprocess.run(
                    cmd, check=False, cwd=tmp, stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT
                ).returncode
        if rc != 0:
            raise ServiceError(
                f"Maven could not resolve Kafka {version} (exit {rc}); {log}:\n{_common.log_tail(log)}"
            )
        _check_jars(staging, version)
        shutil.rmtree(libs, ignore_errors=True)
        staging.rename(libs)
        marker.write_text(digest + "\n")
        logger.info("Kafka %s jars ready in %.1f s: %s", version, time.monotonic() - started, libs)
    return libs


def _marker_matches(marker: Path, digest: str) -> bool:
    try:
        return marker.read_text().strip() == digest
    except OSError:
        return False


def _check_jars(folder: Path, version: str) -> None:
    names = sorted(p.name for p in folder.glob("*.jar"))
    problems = []
    if f"kafka_{SCALA_VERSION}-{version}.jar" not in names:
        problems.append(f"kafka_{SCALA_VERSION}-{version}.jar is missing")
    slf4j = [n for n in names if n.startswith("slf4j-api-")]
    if slf4j != [f"slf4j-api-{SLF4J_VERSION}.jar"]:
        problems.append(f"expected exactly slf4j-api-{SLF4J_VERSION}.jar, found {slf4j}")
    if not any(n.startswith("log4j-slf4j2-impl-") for n in names):
        problems.append("the log4j-slf4j2-impl binding is missing")
    if problems:
        raise ServiceError(f"unexpected jars in {folder}: " + "; ".join(problems))


# -------------------------------------------------------------------------------------- readiness


def _addresses(bootstrap: str) -> list[tuple[str, int]]:
    return [_common.split_host_port(a, DEFAULT_PORT) for a in bootstrap.split(",") if a.strip()]


def is_ready(bootstrap: str, timeout: float = 5.0) -> bool:
    """True when an admin call (describe cluster) succeeds and names at least one broker."""
    if not any(_common.port_open(h, p) for h, p in _addresses(bootstrap)):
        return False  # skip the client: it would log connection errors for a closed port
    from kafka import KafkaAdminClient  # imported late: the CLI's stop/status need no client

    ms = max(1000, int(timeout * 1000))
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap,
            client_id="opsloop-readiness",
            bootstrap_timeout_ms=ms,
            request_timeout_ms=ms,
            reconnect_backoff_max_ms=500,
        )
    except Exception:  # noqa: BLE001 - any failure to bootstrap means "not ready yet"
        return False
    try:
        return bool(admin.describe_cluster().get("brokers"))
    except Exception:  # noqa: BLE001
        return False
    finally:
        admin.close()


def wait_ready(
    bootstrap: str, timeout: float = 90.0, *, pid: int | None = None, data_dir: Path | None = None
) -> None:
    """Block until the broker at ``bootstrap`` answers an admin call.

    With ``pid`` (a broker started here), raise ServiceStartError with the log tail as soon as it dies.
    """
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if is_ready(bootstrap, timeout=max(1.0, min(5.0, remaining))):
            return
        if pid is not None and not _common.pid_alive(pid):
            if data_dir is not None:
                _pid_file(data_dir).unlink(missing_ok=True)
            raise ServiceStartError(f"the Kafka broker (pid {pid}) exited while starting{_tails(data_dir)}")
        if time.monotonic() >= deadline:
            raise ServiceStartError(
                f"Kafka at {bootstrap} was not ready after {timeout:.0f} s{_tails(data_dir)}"
            )
        time.sleep(0.5)


def _tails(data_dir: Path | None) -> str:
    if data_dir is None:
        return ""
    parts = []
    for path in (_out_file(data_dir), _server_log(data_dir)):
        if path.is_file() and path.stat().st_size:
            parts.append(f"\n--- {path} (tail) ---\n{_common.log_tail(path)}")
    return "".join(parts)


# ------------------------------------------------------------------------------------ start / stop


def managed_pid(data_dir: Path | None = None) -> int | None:
    """The pid of the broker that opsloop started from ``data_dir``, if it still runs."""
    data_dir = (data_dir or default_data_dir()).resolve()
    pid_file = _pid_file(data_dir)
    pid = _common.read_pid(pid_file)
    if pid is None:
        return None
    if _common.pid_alive(pid) and "kafka.Kafka" in _common.pid_cmdline(pid):
        return pid
    pid_file.unlink(missing_ok=True)  # stale: the broker died or the pid was reused
    return None


def start(
    *,
    port: int = DEFAULT_PORT,
    controller_port: int | None = None,
    data_dir: Path | None = None,
    cache_dir: Path | None = None,
    version: str = KAFKA_VERSION,
    timeout: float = 90.0,
) -> str:
    """Start the local broker (or find one running) and return its bootstrap servers once it is ready."""
    external = external_bootstrap()
    if external:
        logger.info("using the broker at %s=%s", BOOTSTRAP_ENV, external)
        wait_ready(external, timeout)
        return external

    data_dir = (data_dir or default_data_dir()).resolve()
    bootstrap = f"{HOST}:{port}"
    pid = managed_pid(data_dir)
    if pid is not None:
        wait_ready(bootstrap, timeout, pid=pid, data_dir=data_dir)
        return bootstrap
    if is_ready(bootstrap, timeout=3.0):
        logger.info("a Kafka broker already answers at %s; starting none", bootstrap)
        return bootstrap

    java = find_java()
    libs = ensure_jars(cache_dir, version)
    config = _write_config(data_dir, port, controller_port or port + 1)
    _format_storage(java, libs, data_dir, config, version)
    pid = _launch(java, libs, data_dir, config, version)
    started = time.monotonic()
    wait_ready(bootstrap, timeout, pid=pid, data_dir=data_dir)
    logger.info(
        "Kafka %s ready at %s in %.1f s (pid %d)", version, bootstrap, time.monotonic() - started, pid
    )
    return bootstrap


def _write_config(data_dir: Path, port: int, controller_port: int) -> Path:
    config_dir = data_dir / "config"
    config_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "logs").mkdir(exist_ok=True)
    templates = resources.files("opsloop") / "kafka"
    server = Template(templates.joinpath("server.properties").read_text()).substitute(
        host=HOST,
        port=port,
        controller_port=controller_port,
        log_dirs=data_dir / "kraft-logs",
    )
    (config_dir / "server.properties").write_text(server)
    (config_dir / "log4j2.properties").write_text(templates.joinpath("log4j2.properties").read_text())
    return config_dir


def _java_command(java: str, libs: Path, data_dir: Path, config: Path, main: str) -> list[str]:
    return [
        java,
        *JVM_OPTIONS,
        f"-Dlog4j2.configurationFile={config / 'log4j2.properties'}",
        f"-Dkafka.logs.dir={data_dir / 'logs'}",
        "-cp",
        f"{libs}/*",  # the JVM expands the glob, no shell involved
        main,
    ]


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", version))


def new_cluster_id() -> str:
    """A KRaft cluster id as Kafka's ``Uuid.randomUuid()`` makes one: 16 random bytes, URL-safe base64 without
    padding, drawn again when the text starts with "-", which the storage tool's argument parser would read
    as an option (1 format in 64 failed with "argument --cluster-id/-t: expected one argument")."""
    while True:
        cluster_id = base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):
            return cluster_id


def _format_storage(java: str, libs: Path, data_dir: Path, config: Path, version: str) -> None:
    formatted_by = data_dir / "formatted-by"
    if (data_dir / "kraft-logs" / "meta.properties").is_file():
        # Formatting records the release's newest metadata.version, which older releases cannot read.
        old = formatted_by.read_text().strip() if formatted_by.is_file() else None
        if old and _version_tuple(old) > _version_tuple(version):
            raise ServiceStartError(
                f"the Kafka data in {data_dir} was formatted by Kafka {old}, which Kafka {version} cannot read; "
                f"delete that folder or point {DATA_DIR_ENV} elsewhere"
            )
        return
    cluster_id = new_cluster_id()
    cmd = _java_command(java, libs, data_dir, config, "kafka.tools.StorageTool")
    cmd += ["format", "-t", cluster_id, "-c", str(config / "server.properties"), "--ignore-formatted"]
    result = subprocess.run(
        cmd, check=False, cwd=data_dir, stdin=subprocess.DEVNULL, capture_output=True, text=True
    )
    if result.returncode != 0:
        raise ServiceStartError(
            f"formatting the Kafka storage in {data_dir} failed (exit {result.returncode}):\n"
            f"{(result.stdout + result.stderr).strip()[-4000:]}"
        )
    formatted_by.write_text(version + "\n")
    said = result.stdout.strip().splitlines()
    logger.info("formatted Kafka storage (cluster id %s): %s", cluster_id, said[-1] if said else "")


# Popen objects of brokers started by this process, kept so they are not finalised while running.
_children: dict[int, subprocess.Popen[bytes]] = {}


def _launch(java: str, libs: Path, data_dir: Path, config: Path, version: str) -> int:
    cmd = _java_command(java, libs, data_dir, config, "kafka.Kafka") + [str(config / "server.properties")]
    with _out_file(data_dir).open("ab") as out:
        out.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} starting Kafka {version}\n".encode())
        out.flush()
        proc = subprocess.Popen(
            cmd,
            cwd=data_dir,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # survives the caller's terminal and process group
        )
    _children[proc.pid] = proc
    _pid_file(data_dir).write_text(f"{proc.pid}\n")
    (data_dir / "version").write_text(version + "\n")
    logger.info("started Kafka %s (pid %d), logs in %s", version, proc.pid, data_dir)
    return proc.pid


def stop(*, data_dir: Path | None = None, grace: float = STOP_GRACE_SECONDS) -> bool:
    """Stop the broker opsloop started: SIGTERM, up to ``grace`` s for a clean shutdown, then SIGKILL.

    Returns True if a broker was running. An external broker (KAFKA_BOOTSTRAP_SERVERS) is never touched.
    """
    if external_bootstrap():
        logger.info("%s is set: the external broker is not stopped", BOOTSTRAP_ENV)
        return False
    data_dir = (data_dir or default_data_dir()).resolve()
    pid = managed_pid(data_dir)
    if pid is None:
        return False
    began = time.monotonic()
    clean = _common.terminate(pid, grace)
    _children.pop(pid, None)
    _pid_file(data_dir).unlink(missing_ok=True)
    if clean:
        logger.info("Kafka (pid %d) stopped in %.1f s", pid, time.monotonic() - began)
    else:
        logger.warning("Kafka (pid %d) did not stop within %.0f s and was killed", pid, grace)
    return True


def restart(
    *,
    port: int = DEFAULT_PORT,
    controller_port: int | None = None,
    data_dir: Path | None = None,
    cache_dir: Path | None = None,
    version: str = KAFKA_VERSION,
    timeout: float = 90.0,
) -> str:
    """Stop and start the local broker (keeping its data); for broker-outage tests."""
    if external_bootstrap():
        raise ServiceError(f"cannot restart the external broker at {BOOTSTRAP_ENV}={external_bootstrap()}")
    stop(data_dir=data_dir)
    return start(
        port=port,
        controller_port=controller_port,
        data_dir=data_dir,
        cache_dir=cache_dir,
        version=version,
        timeout=timeout,
    )


def status(*, port: int = DEFAULT_PORT, data_dir: Path | None = None) -> KafkaStatus:
    external = external_bootstrap()
    if external:
        return KafkaStatus(external, is_ready(external), managed=False, pid=None, data_dir=None, version=None)
    data_dir = (data_dir or default_data_dir()).resolve()
    bootstrap = f"{HOST}:{port}"
    pid = managed_pid(data_dir)
    version_file = data_dir / "version"
    version = version_file.read_text().strip() if pid is not None and version_file.is_file() else None
    return KafkaStatus(
        bootstrap,
        is_ready(bootstrap),
        managed=pid is not None,
        pid=pid,
        data_dir=data_dir if pid is not None else None,
        version=version,
    )


if __name__ == "__main__":
    from opsloop.services.cli import kafka_main

    raise SystemExit(kafka_main())
