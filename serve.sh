#!/usr/bin/env bash
# Set up (once) and run the demo Kotti site with kotti_migrate included:
#   ./serve.sh                       pserve development.ini (SQLite file kotti.db)
#   ./serve.sh auto_upgrade=true     ... running pending migrations before serving
set -euo pipefail
cd "$(dirname "$0")"
. ./scripts/venv.sh
ensure_venv kotti
exec .venv/kotti/bin/pserve development.ini "$@"
