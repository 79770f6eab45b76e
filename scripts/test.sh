#!/usr/bin/env bash
# Installs everything, starts the real Kafka broker and PostgreSQL, and runs the whole test suite.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit $?
# strict typing on detectors/ and storage/ ([tool.mypy] in pyproject.toml), before any service starts: a type
# error fails the run
.venv/bin/python -m mypy || exit $?

started_kafka=""
if [ -z "${KAFKA_BOOTSTRAP_SERVERS:-}" ]; then
  # started here, found by the tests' fixture (which would start it too); not exported, so the tests that
  # restart the project's own broker run
  .venv/bin/python -m opsloop.services.kafka start || exit $?
  started_kafka=1
fi
if [ -z "${OPSLOOP_TEST_PG_URL:-}" ]; then
  .venv/bin/python -m opsloop.services.postgres start || exit $?
  OPSLOOP_TEST_PG_URL=$(.venv/bin/python -m opsloop.services.postgres url) || exit $?
  export OPSLOOP_TEST_PG_URL
fi

.venv/bin/python -m pytest "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "opsloop: pytest collected no tests; that is a failure, not a pass" >&2
  rc=1
fi
if [ -n "$started_kafka" ] && [ -z "${OPSLOOP_KEEP_SERVICES:-}" ]; then
  .venv/bin/python -m opsloop.services.kafka stop >/dev/null 2>&1 || true
fi
exit "$rc"
