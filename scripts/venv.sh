# Shared set-up helpers for serve.sh and test.sh (sourced, not run).

# find_python VERSION: path of a working pythonVERSION (e.g. 3.13): on the PATH,
# else the newest pyenv build of it, else /usr/local/bin or /usr/bin.  Fails
# loudly when there is none.
find_python() {
    local version=$1 candidate found=
    local pyenv_root=${PYENV_ROOT:-$HOME/.pyenv}
    for candidate in \
        "$(command -v "python$version" 2>/dev/null || true)" \
        $(ls -d "$pyenv_root"/versions/"$version".*/bin/"python$version" 2>/dev/null | sort -V -r) \
        "/usr/local/bin/python$version" "/usr/bin/python$version"; do
        [ -n "$candidate" ] && [ -x "$candidate" ] || continue
        if [ "$("$candidate" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" = "$version" ]; then
            found=$candidate
            break
        fi
    done
    if [ -z "$found" ]; then
        echo "error: Python $version not found (looked on the PATH, in $pyenv_root/versions/$version.*," \
            "/usr/local/bin, /usr/bin); install it, e.g. \`pyenv install $version\`" >&2
        return 1
    fi
    echo "$found"
}

# ensure_venv STACK [EXTRA] [PYTHON]: .venv/STACK with requirements/STACK.txt,
# requirements/EXTRA.txt (e.g. testing) and kotti_migrate itself (editable),
# created with PYTHON (default python3); rebuilt when a requirements file or
# the Python version changes.
ensure_venv() {
    local stack=$1 extra=${2:-} python=${3:-python3}
    local venv=.venv/$stack
    local files="requirements/$stack.txt setup.cfg setup.py"
    [ -n "$extra" ] && files="$files requirements/$extra.txt"
    # Real add-ons from PyPI the tests try kotti_migrate on, installed without
    # their (stale) pinned dependencies: with the testing extra only.
    local addons=requirements/$stack-addons.txt
    [ -n "$extra" ] && [ -f "$addons" ] || addons=
    [ -n "$addons" ] && files="$files $addons"
    local pyversion stamp
    pyversion=$("$python" -c 'import sys; print(sys.version)') \
        || { echo "error: $python does not run" >&2; exit 1; }
    stamp=$( (cat $files; echo "$pyversion") | sha1sum | cut -c1-40)
    if [ -f "$venv/.stamp" ] && [ "$(cat "$venv/.stamp")" = "$stamp" ]; then
        return
    fi
    echo "setting up $venv (Python ${pyversion%% *}) ..." >&2
    rm -rf "$venv"
    "$python" -m venv "$venv"
    local reqs="-r requirements/$stack.txt"
    [ -n "$extra" ] && reqs="$reqs -r requirements/$extra.txt"
    _pip "$venv" $reqs || { echo "install of $venv failed (pip install $reqs)" >&2; exit 1; }
    if [ -n "$addons" ]; then
        _pip "$venv" --no-deps -r "$addons" || { echo "install of $addons into $venv failed" >&2; exit 1; }
    fi
    # Kotti and kotti2 ship a `kotti-migrate` script of their own: install
    # kotti_migrate last (into a fresh venv) so that its script is on the PATH.
    _pip "$venv" -e . || { echo "install of kotti_migrate into $venv failed" >&2; exit 1; }
    "$venv/bin/python" -c "import kotti_migrate" && grep -q kotti_migrate "$venv/bin/kotti-migrate" \
        || { echo "install of $venv failed" >&2; exit 1; }
    echo "$stamp" > "$venv/.stamp"
}

# _pip VENV ARGS...: quiet pip install, keeping pip's exit status.
_pip() {
    local venv=$1
    shift
    "$venv/bin/pip" install -q --disable-pip-version-check "$@" 2>&1 \
        | { grep -v "^WARNING: Location" >&2 || true; }
    return "${PIPESTATUS[0]}"
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

# ensure_mariadb: Debian's MariaDB server (mariadbd, mariadb-install-db); the
# tests start a private server with it (tests/mariadb.py), never the system's.
ensure_mariadb() {
    if command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || [ -x /usr/sbin/mysqld ]; then
        return
    fi
    echo "installing mariadb-server ..." >&2
    if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
    $SUDO apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq mariadb-server >&2
}

# ensure_chromium: Debian's headless Chromium and its chromedriver, for the
# browser test of the Site Setup page (tests/test_migrations_page.py).  Selenium
# is pointed at /usr/bin/chromedriver, so it never downloads a browser.
ensure_chromium() {
    if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
        return
    fi
    echo "installing chromium and chromium-driver ..." >&2
    if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
    $SUDO apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >&2
}
