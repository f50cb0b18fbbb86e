# Shared set-up helpers for serve.sh and test.sh (sourced, not run).

# ensure_venv STACK [testing]: .venv/STACK with requirements/STACK.txt and
# kotti_migrate itself (editable); reinstalled when a requirements file changes.
ensure_venv() {
    local stack=$1 extra=${2:-}
    local venv=.venv/$stack
    local files="requirements/$stack.txt setup.cfg setup.py"
    [ -n "$extra" ] && files="$files requirements/$extra.txt"
    local stamp
    stamp=$(cat $files | sha1sum | cut -c1-40)
    if [ -f "$venv/.stamp" ] && [ "$(cat "$venv/.stamp")" = "$stamp" ]; then
        return
    fi
    echo "setting up $venv ..." >&2
    rm -rf "$venv"
    python3 -m venv "$venv"
    local reqs="-r requirements/$stack.txt"
    [ -n "$extra" ] && reqs="$reqs -r requirements/$extra.txt"
    "$venv/bin/pip" install -q --disable-pip-version-check $reqs 2>&1 \
        | grep -v "^WARNING: Location" >&2 || true
    # Kotti ships a `kotti-migrate` script of its own: install kotti_migrate
    # last so that its script is the one on the PATH.
    "$venv/bin/pip" install -q --disable-pip-version-check -e . 2>&1 \
        | grep -v "^WARNING: Location" >&2 || true
    "$venv/bin/python" -c "import kotti_migrate" && grep -q kotti_migrate "$venv/bin/kotti-migrate" \
        || { echo "install of $venv failed" >&2; exit 1; }
    echo "$stamp" > "$venv/.stamp"
}

# ensure_postgresql: the PostgreSQL server binaries the tests start a cluster with.
ensure_postgresql() {
    if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1; then
        return
    fi
    echo "installing PostgreSQL ..." >&2
    if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
    $SUDO apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >&2
}
