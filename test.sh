#!/usr/bin/env bash
# Set up and run the whole test suite on three stacks, each on SQLite and on a
# real PostgreSQL server that the tests start themselves:
#   kotti   Kotti 2.0.9 / Pyramid 1.10 / SQLAlchemy 1.4 (python3)
#   modern  Pyramid 2 / SQLAlchemy 2, no Kotti (python3)
#   kotti2  kotti2 3.0.x / Pyramid 1.10 / SQLAlchemy 1.4 on the newest Python
#           (3.13): the tests marked `kotti2` (it also uses .venv/kotti).
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")"
. ./scripts/venv.sh
NEWEST_PYTHON=3.13
ensure_postgresql
ensure_chromium
newest=$(find_python "$NEWEST_PYTHON")
ensure_venv kotti testing
ensure_venv modern testing
ensure_venv kotti2 testing "$newest"
export KOTTI_MIGRATE_REQUIRE_PG=1
status=0
.venv/kotti/bin/ruff check . || status=1
for stack in kotti modern; do
    echo "=== stack: $stack ==="
    .venv/$stack/bin/python -m pytest "$@" tests || status=1
done
echo "=== stack: kotti2 (Python $NEWEST_PYTHON) ==="
.venv/kotti2/bin/python -m pytest -m kotti2 "$@" tests || status=1
exit $status
