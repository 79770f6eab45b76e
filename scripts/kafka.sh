#!/usr/bin/env bash
# The local kafka service: scripts/kafka.sh {start,stop,status,restart,jars} [--help for options].
# A thin wrapper around `python -m opsloop.services.kafka`; uses the project's .venv when there is one.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
py="${PYTHON:-$root/.venv/bin/python}"
[ -x "$py" ] || py=python3
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
exec "$py" -m opsloop.services.kafka "$@"
