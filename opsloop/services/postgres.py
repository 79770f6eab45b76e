"""A local PostgreSQL server for development and tests, run from Debian's packages with ``pg_ctl``.

PostgreSQL refuses to run as root: as root, the cluster belongs to the ``postgres`` system user and every
server program runs through ``runuser -u postgres --``; as any other user it runs as that user. The server
listens on 127.0.0.1 only (no Unix socket), trusts local TCP connections, and trades durability for speed
(fsync and synchronous_commit off): it holds test data only. When ``OPSLOOP_TEST_PG_URL`` is set, that
server is used and nothing is started.

CLI: ``python -m opsloop.services.postgres {start,stop,status,url}``.
"""

from __future__ import annotations

import glob
import logging
import os
import pwd
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from opsloop.services import _common
from opsloop.services.errors import ServiceError, ServiceStartError, ServiceUnavailable

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
DEFAULT_PORT = 55432
DATABASE = "opsloop_test"
SUPERUSER = "postgres"
SYSTEM_USER = "postgres"  # the Debian package's system user, who owns the cluster when we are root
URL_ENV = "OPSLOOP_TEST_PG_URL"
DATA_DIR_ENV = "OPSLOOP_PG_DATA_DIR"
BIN_GLOB = "/usr/lib/postgresql/*/bin"
CONF_NAME = "opsloop.conf"

_SETTINGS = """\
# Written by opsloop.services.postgres on every start: a throw-away test server, not a durable one.
listen_addresses = '{host}'
port = {port}
unix_socket_directories = ''
max_connections = 100
fsync = off
synchronous_commit = off
full_page_writes = off
"""


@dataclass(frozen=True)
class PostgresStatus:
    url: str
    ready: bool
    data_dir: Path | None  # None for an external server (OPSLOOP_TEST_PG_URL)
    pid: int | None


# ------------------------------------------------------------------------------------- installation


def find_bin_dir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<major>/bin`` holding initdb and pg_ctl."""
    candidates = [
        Path(p)
        for p in glob.glob(BIN_GLOB)
        if (Path(p) / "initdb").is_file() and (Path(p) / "pg_ctl").is_file()
    ]
    if not candidates:
        return None
    return max(candidates, key=lambda p: [int(x) for x in re.findall(r"\d+", p.parent.name)] or [0])


def ensure_installed() -> Path:
    """Return the server's bin dir; as root, install Debian's ``postgresql`` package when it is missing."""
    found = find_bin_dir()
    if found is not None:
        return found
    if os.geteuid() != 0:
        raise ServiceUnavailable(
            f"PostgreSQL server programs (initdb, pg_ctl) not found under {BIN_GLOB}; install them "
            f"(`sudo apt-get install postgresql`) or set {URL_ENV} to use an existing server"
        )
    apt = shutil.which("apt-get")
    if apt is None:
        raise ServiceUnavailable(f"PostgreSQL is not installed and apt-get is missing; set {URL_ENV}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    log = _common.cache_dir() / "apt-postgresql.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    logger.info("installing PostgreSQL with apt-get (log: %s)", log)
    with log.open("w") as fh:
        for cmd in ([apt, "update"], [apt, "install", "-y", "--no-install-recommends", "postgresql"]):
            rc = subprocess.run(
                cmd, check=False, env=env, stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT
            ).returncode
            if rc != 0:
                raise ServiceUnavailable(
                    f"`{' '.join(cmd[1:])}` failed (exit {rc}); {log}:\n{_common.log_tail(log)}"
                )
    found = find_bin_dir()
    if found is None:
        raise ServiceUnavailable(
            f"apt-get installed postgresql but no initdb/pg_ctl appeared under {BIN_GLOB}"
        )
    return found


# ------------------------------------------------------------------------------------ who, and where


def _as_root() -> bool:
    return os.geteuid() == 0


def _run_as() -> list[str]:
    """The command prefix that runs a server program as the cluster's owner."""
    if not _as_root():
        return []
    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        raise ServiceUnavailable(
            f"running as root, but there is no `{SYSTEM_USER}` system user to own the PostgreSQL cluster"
        ) from None
    runuser = shutil.which("runuser")
    if runuser is None:
        raise ServiceUnavailable("running as root, but `runuser` (util-linux) is missing")
    return [runuser, "-u", SYSTEM_USER, "--"]


def _owner_ids() -> tuple[int, int]:
    if not _as_root():
        return os.geteuid(), os.getegid()
    entry = pwd.getpwnam(SYSTEM_USER)
    return entry.pw_uid, entry.pw_gid


def _fallback_data_dir() -> Path:
    return Path(f"/tmp/opsloop-pg-{os.getuid()}") / "pg-data"


def default_data_dir() -> Path:
    env = os.environ.get(DATA_DIR_ENV)
    return Path(env).expanduser().resolve() if env else _common.cache_dir() / "pg-data"


def resolve_data_dir(data_dir: Path | None = None) -> Path:
    """The data dir to use: as root, one that the ``postgres`` user can reach.

    The default ``<cache>/pg-data`` needs execute permission for ``postgres`` on every parent folder; when
    that is missing, the default moves to ``/tmp/opsloop-pg-<uid>/pg-data``. An explicit dir is kept as given.
    """
    explicit = data_dir is not None or DATA_DIR_ENV in os.environ
    chosen = (data_dir or default_data_dir()).resolve()
    if not _as_root() or _owner_can_reach(chosen.parent):
        return chosen
    if explicit:
        raise ServiceUnavailable(
            f"the `{SYSTEM_USER}` user cannot reach {chosen.parent} (it needs execute permission on every "
            f"parent folder); choose another data dir"
        )
    fallback = _fallback_data_dir()
    logger.debug("%s is not reachable by %s; using %s", chosen.parent, SYSTEM_USER, fallback)
    return fallback


def _owner_can_reach(folder: Path) -> bool:
    # Folders still to be made will be made by us, readable by all: the nearest existing one decides.
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    cmd = [*_run_as(), "test", "-x", str(folder)]
    return (
        subprocess.run(cmd, check=False, cwd="/", stdin=subprocess.DEVNULL, capture_output=True).returncode
        == 0
    )


# ---------------------------------------------------------------------------------------------- URLs


def url(port: int = DEFAULT_PORT) -> str:
    """SQLAlchemy URL of the test database: ``$OPSLOOP_TEST_PG_URL`` or the local server's."""
    return os.environ.get(URL_ENV) or f"postgresql+psycopg://{SUPERUSER}@{HOST}:{port}/{DATABASE}"


def libpq_url(sqlalchemy_url: str) -> str:
    """The same URL without the SQLAlchemy driver part (``postgresql+psycopg://`` -> ``postgresql://``)."""
    return re.sub(r"^postgres(?:ql)?\+\w+://", "postgresql://", sqlalchemy_url)


def _connectable(conninfo: str, timeout: float = 3.0) -> bool:
    import psycopg

    try:
        with psycopg.connect(conninfo, connect_timeout=max(1, int(timeout))) as conn:
            conn.execute("select 1")
        return True
    except psycopg.Error:
        return False


def _admin_conninfo(port: int) -> str:
    return f"host={HOST} port={port} user={SUPERUSER} dbname=postgres"


def _wait_connectable(conninfo: str, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not _connectable(conninfo):
        if time.monotonic() >= deadline:
            raise ServiceStartError(f"{what} did not accept connections within {timeout:.0f} s")
        time.sleep(0.5)


def _serving_data_dir(port: int) -> Path | None:
    """The data directory of the server answering on ``port`` (None if it will not say)."""
    import psycopg

    try:
        with psycopg.connect(_admin_conninfo(port), connect_timeout=3) as conn:
            row = conn.execute("show data_directory").fetchone()
    except psycopg.Error:
        return None
    return Path(str(row[0])).resolve() if row else None


def _ensure_database(port: int) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(_admin_conninfo(port), autocommit=True, connect_timeout=10) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", (DATABASE,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(DATABASE)))
            logger.info("created database %s", DATABASE)


# ------------------------------------------------------------------------------------ start / stop


def _pg(
    bin_dir: Path, program: str, *args: str, timeout: float | None = None
) -> subprocess.CompletedProcess[str]:
    cmd = [*_run_as(), str(bin_dir / program), *args]
    return subprocess.run(
        cmd, check=False, cwd="/", stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout
    )


def _initialised(data_dir: Path) -> bool:
    return (data_dir / "PG_VERSION").is_file()


def _init_cluster(bin_dir: Path, data_dir: Path) -> None:
    uid, gid = _owner_ids()
    data_dir.mkdir(parents=True, exist_ok=True)
    os.chown(data_dir, uid, gid)
    data_dir.chmod(0o700)
    result = _pg(
        bin_dir,
        "initdb",
        "-D",
        str(data_dir),
        "-U",
        SUPERUSER,
        "--auth=trust",
        "-E",
        "UTF8",
        "--no-locale",
        "--no-sync",
    )
    if result.returncode != 0:
        raise ServiceStartError(
            f"initdb failed in {data_dir} (exit {result.returncode}):\n{result.stdout}{result.stderr}"
        )
    with (data_dir / "postgresql.conf").open("a") as fh:
        fh.write(f"\n# opsloop: test settings\ninclude_if_exists = '{CONF_NAME}'\n")
    logger.info("initialised a PostgreSQL cluster in %s", data_dir)


def _write_settings(data_dir: Path, port: int) -> None:
    conf = data_dir / CONF_NAME
    conf.write_text(_SETTINGS.format(host=HOST, port=port))
    uid, gid = _owner_ids()
    os.chown(conf, uid, gid)


def _server_log(data_dir: Path) -> Path:
    return data_dir / "server.log"


def _running_pid(bin_dir: Path, data_dir: Path) -> int | None:
    if not _initialised(data_dir):
        return None
    result = _pg(bin_dir, "pg_ctl", "-D", str(data_dir), "status")
    match = re.search(r"PID: (\d+)", result.stdout)
    return int(match.group(1)) if result.returncode == 0 and match else None


def start(*, port: int = DEFAULT_PORT, data_dir: Path | None = None, timeout: float = 60.0) -> str:
    """Start the local server (or find it running), create the test database; return its SQLAlchemy URL."""
    external = os.environ.get(URL_ENV)
    if external:
        logger.info("using the server at %s", URL_ENV)
        _wait_connectable(libpq_url(external), timeout, f"the server at {URL_ENV}")
        return external

    if _connectable(_admin_conninfo(port), timeout=2):
        # reuse it only if it is ours: a server of another checkout would not stop when this one stops its own
        mine, serving = resolve_data_dir(data_dir), _serving_data_dir(port)
        if serving is not None and serving != mine:
            raise ServiceStartError(
                f"port {port} is served by the PostgreSQL whose data is in {serving}, not by this checkout's "
                f"({mine}): stop that server (`python -m opsloop.services.postgres stop` in its checkout), or use "
                f"it on purpose by setting {URL_ENV}"
            )
        _ensure_database(port)
        logger.info("using the PostgreSQL already running on %s:%d (data in %s)", HOST, port, mine)
        return url(port)

    bin_dir = ensure_installed()
    data_dir = resolve_data_dir(data_dir)
    if not _initialised(data_dir):
        _init_cluster(bin_dir, data_dir)
    _write_settings(data_dir, port)
    started = time.monotonic()
    result = _pg(
        bin_dir,
        "pg_ctl",
        "-D",
        str(data_dir),
        "-l",
        str(_server_log(data_dir)),
        "-w",
        "-t",
        str(int(timeout)),
        "start",
    )
    if result.returncode != 0:
        raise ServiceStartError(
            f"pg_ctl start failed (exit {result.returncode}): {result.stdout.strip()} {result.stderr.strip()}\n"
            f"--- {_server_log(data_dir)} (tail) ---\n{_common.log_tail(_server_log(data_dir))}"
        )
    _wait_connectable(_admin_conninfo(port), timeout, f"PostgreSQL on {HOST}:{port}")
    _ensure_database(port)
    logger.info(
        "PostgreSQL ready on %s:%d in %.1f s (data in %s)", HOST, port, time.monotonic() - started, data_dir
    )
    return url(port)


def stop(*, data_dir: Path | None = None, timeout: float = 60.0) -> bool:
    """Stop the server opsloop started from ``data_dir`` (fast shutdown). True if one was running."""
    if os.environ.get(URL_ENV):
        logger.info("%s is set: the external server is not stopped", URL_ENV)
        return False
    bin_dir = find_bin_dir()
    if bin_dir is None:
        return False
    data_dir = resolve_data_dir(data_dir)
    if _running_pid(bin_dir, data_dir) is None:
        return False
    result = _pg(bin_dir, "pg_ctl", "-D", str(data_dir), "-m", "fast", "-w", "-t", str(int(timeout)), "stop")
    if result.returncode != 0:
        raise ServiceError(f"pg_ctl stop failed (exit {result.returncode}): {result.stdout}{result.stderr}")
    return True


def status(*, port: int = DEFAULT_PORT, data_dir: Path | None = None) -> PostgresStatus:
    external = os.environ.get(URL_ENV)
    if external:
        return PostgresStatus(external, _connectable(libpq_url(external)), data_dir=None, pid=None)
    bin_dir = find_bin_dir()
    data_dir = resolve_data_dir(data_dir) if bin_dir is not None else data_dir or default_data_dir()
    pid = _running_pid(bin_dir, data_dir) if bin_dir is not None else None
    return PostgresStatus(url(port), _connectable(_admin_conninfo(port)), data_dir=data_dir, pid=pid)


if __name__ == "__main__":
    from opsloop.services.cli import postgres_main

    raise SystemExit(postgres_main())
