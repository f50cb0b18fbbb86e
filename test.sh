#!/usr/bin/env bash
# Set up and run the whole test suite on three stacks, each on SQLite and on a
# real PostgreSQL server that the tests start themselves (and the tests of what
# differs by database on a MariaDB server they start too):
#   kotti   Kotti 2.0.9 / Pyramid 1.10 / SQLAlchemy 1.4 (python3)
#   modern  Pyramid 2 / SQLAlchemy 2, no Kotti (python3)
#   kotti2  kotti2 3.0.x / Pyramid 1.10 / SQLAlchemy 1.4 on the newest Python
#           (3.13): the tests marked `kotti2` (it also uses .venv/kotti).
# The stacks run at the same time, each on pytest-xdist workers; their output
# is printed stack by stack, then the time each took.  Extra arguments go to
# pytest.
set -euo pipefail
cd "$(dirname "$0")"
. ./scripts/venv.sh
NEWEST_PYTHON=3.13
ensure_postgresql
ensure_mariadb
ensure_chromium
newest=$(find_python "$NEWEST_PYTHON")
ensure_venv kotti testing
ensure_venv modern testing
ensure_venv kotti2 testing "$newest"
export KOTTI_MIGRATE_REQUIRE_PG=1
# pytest-xdist workers per stack; the three stacks run at the same time (most
# tests wait on subprocesses).  KOTTI_MIGRATE_TEST_WORKERS=0: no workers.
workers=${KOTTI_MIGRATE_TEST_WORKERS:-2}
status=0
.venv/kotti/bin/ruff check . || status=1

logs=$(mktemp -d "${TMPDIR:-/tmp}/kotti_migrate_tests.XXXXXX")
trap 'rm -rf "$logs"' EXIT

# run_stack NAME COMMAND...: run COMMAND, its output into $logs/NAME.log,
# "EXIT-STATUS SECONDS" into $logs/NAME.result.
run_stack() {
    local name=$1 begun=$SECONDS code=0
    shift
    "$@" > "$logs/$name.log" 2>&1 || code=$?
    echo "$code $((SECONDS - begun))" > "$logs/$name.result"
}

begun=$SECONDS
echo "running the kotti, modern and kotti2 stacks at once ($workers workers each) ..."
run_stack kotti .venv/kotti/bin/python -m pytest -n "$workers" "$@" tests &
run_stack modern .venv/modern/bin/python -m pytest -n "$workers" "$@" tests &
run_stack kotti2 .venv/kotti2/bin/python -m pytest -n "$workers" -m kotti2 "$@" tests &
wait
summary=
for stack in kotti modern kotti2; do
    label=$stack
    [ "$stack" = kotti2 ] && label="kotti2 (Python $NEWEST_PYTHON)"
    echo "=== stack: $label ==="
    cat "$logs/$stack.log"
    read -r code seconds < "$logs/$stack.result"
    [ "$code" = 0 ] || status=1
    line=$(printf "stack %-6s %dm%02ds, pytest exit status %s" "$stack" $((seconds / 60)) $((seconds % 60)) "$code")
    summary="$summary$line"$'\n'
done
total=$((SECONDS - begun))
echo "=== times ==="
printf "%s" "$summary"
printf "all stacks  %dm%02ds (run at the same time)\n" $((total / 60)) $((total % 60))
exit $status
