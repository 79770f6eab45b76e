#!/usr/bin/env bash
# The local postgres service: scripts/postgres.sh {start,stop,status,url} [--help for options].
# A thin wrapper around `python -m opsloop.services.postgres`; uses the project's .venv when there is one.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
py="${PYTHON:-$root/.venv/bin/python}"
[ -x "$py" ] || py=python3
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
exec "$py" -m opsloop.services.postgres "$@"
