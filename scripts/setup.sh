#!/usr/bin/env bash
# Installs everything opsloop needs into .venv (idempotent): Python packages and the Kafka broker's jars.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if ! "$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
  echo "opsloop: Python 3.11+ is needed (found: $("$PY" --version 2>&1)); set PYTHON=/path/to/python3.11" >&2
  exit 2
fi
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.opsloop-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "==> installing Python packages (first run takes a few minutes)"
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e '.[dev]'
  touch "$stamp"
fi
if [ -z "${KAFKA_BOOTSTRAP_SERVERS:-}" ]; then
  echo "==> resolving Apache Kafka's jars from Maven Central (cached in .cache/)"
  .venv/bin/python -m opsloop.services.kafka jars
fi
