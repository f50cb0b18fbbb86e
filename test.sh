#!/usr/bin/env bash
# Set up and run the whole test suite: both stacks (Kotti 2.0.9 / SQLAlchemy 1.4
# and Pyramid 2 / SQLAlchemy 2), each on SQLite and on a real PostgreSQL server
# that the tests start themselves.  Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")"
. ./scripts/venv.sh
ensure_postgresql
ensure_venv kotti testing
ensure_venv modern testing
export KOTTI_MIGRATE_REQUIRE_PG=1
status=0
.venv/kotti/bin/ruff check . || status=1
for stack in kotti modern; do
    echo "=== stack: $stack ==="
    .venv/$stack/bin/python -m pytest "$@" tests || status=1
done
exit $status
