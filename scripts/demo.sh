#!/usr/bin/env bash
# Installs everything, then runs the live demo: local Kafka, SQLite, worker + relay, and a drifting app.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/opsloop demo "$@"
