#!/usr/bin/env bash
# Set up (once) and run the demo Kotti site with kotti_migrate included:
#   ./serve.sh                       pserve development.ini (SQLite file kotti.db)
#   ./serve.sh auto_upgrade=true     ... running pending migrations before serving
#   ./serve.sh port=8080             ... on another port
# It shares .venv/kotti with ./test.sh (and ./kotti-migrate).
set -euo pipefail
cd "$(dirname "$0")"
. ./scripts/venv.sh
ensure_venv kotti testing
exec .venv/kotti/bin/pserve development.ini "$@"
