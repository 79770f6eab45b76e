"""Command-line front of the local services.

``register(subparsers)`` adds ``kafka {start,stop,status}`` and ``postgres {start,stop,status,url}`` to an
argparse subparsers object; each leaf sets ``func`` to a ``cmd_*(args) -> int`` function, so the caller
runs ``return args.func(args)``. ``kafka_main`` / ``postgres_main`` are the ``python -m`` entry points.
Results (bootstrap servers, URLs) go to stdout, messages to stderr. Exit codes: 0 ok, 1 failure,
2 the machine lacks what the service needs, 3 (status) not running.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from opsloop.services import kafka, postgres
from opsloop.services.errors import ServiceError, ServiceUnavailable

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_UNAVAILABLE = 2
EXIT_NOT_RUNNING = 3

Command = Callable[[argparse.Namespace], int]


def _guarded(func: Command) -> Command:
    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except ServiceUnavailable as exc:
            print(f"opsloop: {exc}", file=sys.stderr)
            return EXIT_UNAVAILABLE
        except ServiceError as exc:
            print(f"opsloop: {exc}", file=sys.stderr)
            return EXIT_FAILED

    run.__name__ = func.__name__
    run.__doc__ = func.__doc__
    return run


# -------------------------------------------------------------------------------------------- kafka


def _kafka_options(args: argparse.Namespace) -> dict[str, object]:
    return {
        "port": args.port,
        "controller_port": args.controller_port,
        "data_dir": args.data_dir,
        "version": args.kafka_version,
        "timeout": args.timeout,
    }


@_guarded
def cmd_kafka_start(args: argparse.Namespace) -> int:
    """Start the local broker (or find it running); print its bootstrap servers."""
    print(kafka.start(**_kafka_options(args)))  # type: ignore[arg-type]
    return EXIT_OK


@_guarded
def cmd_kafka_restart(args: argparse.Namespace) -> int:
    """Stop and start the local broker, keeping its data."""
    print(kafka.restart(**_kafka_options(args)))  # type: ignore[arg-type]
    return EXIT_OK


@_guarded
def cmd_kafka_stop(args: argparse.Namespace) -> int:
    """Stop the broker opsloop started."""
    stopped = kafka.stop(data_dir=args.data_dir)
    print("kafka: stopped" if stopped else "kafka: not running (nothing to stop)", file=sys.stderr)
    return EXIT_OK


@_guarded
def cmd_kafka_status(args: argparse.Namespace) -> int:
    """Tell whether a broker answers; exit 3 if not."""
    st = kafka.status(port=args.port, data_dir=args.data_dir)
    if st.managed:
        how = f"started by opsloop, pid {st.pid}, Kafka {st.version or '?'}, data in {st.data_dir}"
    elif kafka.external_bootstrap():
        how = f"external, from {kafka.BOOTSTRAP_ENV}"
    else:
        how = "not started by opsloop"
    state = "ready" if st.ready else "not answering"
    print(f"kafka: {state} at {st.bootstrap} ({how})")
    return EXIT_OK if st.ready else EXIT_NOT_RUNNING


@_guarded
def cmd_kafka_jars(args: argparse.Namespace) -> int:
    """Resolve the broker's jars into the cache; print the folder."""
    print(kafka.ensure_jars(version=args.kafka_version))
    return EXIT_OK


def _kafka_actions(actions: argparse._SubParsersAction, *, extended: bool) -> None:  # type: ignore[type-arg]
    commands: list[tuple[str, Command, str]] = [
        ("start", cmd_kafka_start, "start the broker (idempotent); prints the bootstrap servers"),
        ("stop", cmd_kafka_stop, "stop the broker opsloop started"),
        ("status", cmd_kafka_status, "tell whether the broker answers (exit 3 if not)"),
    ]
    if extended:
        commands += [
            ("restart", cmd_kafka_restart, "stop and start the broker, keeping its data"),
            ("jars", cmd_kafka_jars, "resolve the broker's jars with Maven into the cache"),
        ]
    for name, func, text in commands:
        sub = actions.add_parser(name, help=text, description=text)
        sub.add_argument(
            "--port", type=int, default=kafka.DEFAULT_PORT, help="client port (default %(default)s)"
        )
        sub.add_argument("--controller-port", type=int, default=None, help="controller port (default port+1)")
        sub.add_argument(
            "--data-dir", type=Path, default=None, help=f"default ${kafka.DATA_DIR_ENV} or .cache/kafka-data"
        )
        sub.add_argument("--timeout", type=float, default=90.0, help="seconds to wait for readiness")
        sub.add_argument("--kafka-version", default=kafka.KAFKA_VERSION, help=argparse.SUPPRESS)
        sub.set_defaults(func=func)


# ----------------------------------------------------------------------------------------- postgres


@_guarded
def cmd_postgres_start(args: argparse.Namespace) -> int:
    """Start the local PostgreSQL (or find it running); print its SQLAlchemy URL."""
    print(postgres.start(port=args.port, data_dir=args.data_dir, timeout=args.timeout))
    return EXIT_OK


@_guarded
def cmd_postgres_stop(args: argparse.Namespace) -> int:
    """Stop the PostgreSQL opsloop started."""
    stopped = postgres.stop(data_dir=args.data_dir)
    print("postgres: stopped" if stopped else "postgres: not running (nothing to stop)", file=sys.stderr)
    return EXIT_OK


@_guarded
def cmd_postgres_status(args: argparse.Namespace) -> int:
    """Tell whether the server answers; exit 3 if not."""
    st = postgres.status(port=args.port, data_dir=args.data_dir)
    state = "ready" if st.ready else "not answering"
    where = f"data in {st.data_dir}" if st.data_dir else f"external, from {postgres.URL_ENV}"
    print(f"postgres: {state} at {st.url} ({where})")
    return EXIT_OK if st.ready else EXIT_NOT_RUNNING


@_guarded
def cmd_postgres_url(args: argparse.Namespace) -> int:
    """Print the SQLAlchemy URL of the test database."""
    print(postgres.url(port=args.port))
    return EXIT_OK


def _postgres_actions(actions: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    commands: list[tuple[str, Command, str]] = [
        ("start", cmd_postgres_start, "start the server (idempotent); prints the SQLAlchemy URL"),
        ("stop", cmd_postgres_stop, "stop the server opsloop started"),
        ("status", cmd_postgres_status, "tell whether the server answers (exit 3 if not)"),
        ("url", cmd_postgres_url, "print the SQLAlchemy URL of the test database"),
    ]
    for name, func, text in commands:
        sub = actions.add_parser(name, help=text, description=text)
        sub.add_argument("--port", type=int, default=postgres.DEFAULT_PORT, help="default %(default)s")
        sub.add_argument(
            "--data-dir", type=Path, default=None, help=f"default ${postgres.DATA_DIR_ENV} or .cache/pg-data"
        )
        sub.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for readiness")
        sub.set_defaults(func=func)


# ------------------------------------------------------------------------------------------ entries


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``kafka {start,stop,status}`` and ``postgres {start,stop,status,url}``."""
    kafka_parser = subparsers.add_parser("kafka", help="the local single-node Kafka broker")
    _kafka_actions(kafka_parser.add_subparsers(dest="kafka_command", required=True), extended=False)
    pg_parser = subparsers.add_parser("postgres", help="the local PostgreSQL server")
    _postgres_actions(pg_parser.add_subparsers(dest="postgres_command", required=True))


def configure_logging() -> None:
    """Logging for the ``python -m`` entry points (the opsloop CLI configures its own)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    # kafka-python reports every refused connection while a broker starts; the readiness loop handles those.
    logging.getLogger("kafka").setLevel(logging.CRITICAL)


def kafka_main(argv: Sequence[str] | None = None) -> int:
    """``python -m opsloop.services.kafka {start,stop,status,restart,jars}``."""
    parser = argparse.ArgumentParser(
        prog="python -m opsloop.services.kafka", description=(kafka.__doc__ or "").splitlines()[0]
    )
    _kafka_actions(parser.add_subparsers(dest="kafka_command", required=True), extended=True)
    args = parser.parse_args(argv)
    configure_logging()
    return int(args.func(args))


def postgres_main(argv: Sequence[str] | None = None) -> int:
    """``python -m opsloop.services.postgres {start,stop,status,url}``."""
    parser = argparse.ArgumentParser(
        prog="python -m opsloop.services.postgres", description=(postgres.__doc__ or "").splitlines()[0]
    )
    _postgres_actions(parser.add_subparsers(dest="postgres_command", required=True))
    args = parser.parse_args(argv)
    configure_logging()
    return int(args.func(args))
