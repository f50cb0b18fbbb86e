"""Deploy tools: ``prepare``, ``plan``, ``status --json`` and ``status --wait``."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from helpers import (
    KOTTI_HEAD,
    NOTES_FIRST,
    NOTES_HEAD,
    STACK,
    boot,
    cli,
    columns,
    execute,
    query,
    started,
    tables,
    versions,
)

APP_FIRST, APP_HEAD = "e1000000000a", "e2000000000b"


@pytest.mark.kotti
def test_prepare_creates_a_fresh_kotti_site_and_is_idempotent(kotti_ini, db_url):
    ini = kotti_ini(db_url)
    result = cli(ini, "prepare")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert "kotti:alembic: fresh database: create its tables from the models, stamp at head" in lines
    assert any(line.startswith("created ") and "nodes" in line for line in lines)
    assert versions(db_url, "kotti_alembic_version") == [KOTTI_HEAD]
    assert versions(db_url, "kotti_notes_alembic_version") == [NOTES_HEAD]
    assert query(db_url, "SELECT count(*) FROM nodes WHERE parent_id IS NULL")[0][0] == 1  # populated

    again = cli(ini, "prepare")
    assert again.code == 0, again.err
    assert again.out.splitlines()[:2] == ["kotti:alembic: up to date", "kotti_notes:alembic: up to date"]
    assert "created" not in again.out
    started(boot(ini))


@pytest.mark.kotti
def test_plan_then_prepare_on_a_site_with_pending_migrations(kotti_ini, db_url, booted_kotti_site):
    ini = kotti_ini(db_url)
    booted_kotti_site(db_url)
    assert cli(ini, "downgrade", "--scripts=kotti_notes:alembic", f"--rev={NOTES_FIRST}").code == 0

    planned = cli(ini, "plan")
    assert planned.code == 3, planned.err
    assert planned.out.splitlines() == [
        f"kotti:alembic: up to date at {KOTTI_HEAD}",
        f"kotti_notes:alembic: upgrade from {NOTES_FIRST} to {NOTES_HEAD}: {NOTES_HEAD} (Create note_links)",
    ]
    with_sql = cli(ini, "plan", "--sql")
    assert "CREATE TABLE note_links" in with_sql.out
    off = cli(ini, "plan", "--no-upgrade")
    assert f"kotti_notes:alembic is at {NOTES_FIRST}, behind its head {NOTES_HEAD}" in off.out
    assert "note_links" not in tables(db_url)  # plan changes nothing
    assert versions(db_url, "kotti_notes_alembic_version") == [NOTES_FIRST]

    short = cli(ini, "prepare", "--no-upgrade")
    assert short.code == 3, short.err
    assert versions(db_url, "kotti_notes_alembic_version") == [NOTES_FIRST]

    done = cli(ini, "prepare")
    assert done.code == 0, done.err
    upgraded = f"Upgrading kotti_notes:alembic (kotti_notes_alembic_version): {NOTES_FIRST} -> {NOTES_HEAD}"
    assert upgraded in done.out
    assert f"upgrade {NOTES_HEAD} (Create note_links)" in done.out
    assert columns(db_url, "note_links") == {"id", "note_id", "url"}
    assert cli(ini, "plan").code == 0


@pytest.mark.modern
def test_plan_and_prepare_adopt_an_app_whose_tables_predate_its_migrations(modern_ini, db_url):
    execute(db_url, "CREATE TABLE items (id INTEGER NOT NULL PRIMARY KEY, name VARCHAR(50) NOT NULL)")
    ini = modern_ini(db_url)
    planned = cli(ini, "plan")
    assert planned.code == 3, planned.err
    assert planned.out.splitlines() == [
        "example_app:alembic: its tables exist and differ from the models: upgrade from base to "
        f"{APP_HEAD}: {APP_FIRST} (Add Item.price), {APP_HEAD} (Create tags)"
    ]
    assert "example_app_alembic_version" not in tables(db_url)
    done = cli(ini, "prepare")
    assert done.code == 0, done.err
    assert versions(db_url, "example_app_alembic_version") == [APP_HEAD]
    assert "price" in columns(db_url, "items")


@pytest.mark.kotti
def test_status_json_document(kotti_ini, db_url, booted_kotti_site):
    ini = kotti_ini(db_url)
    empty = json.loads(cli(ini, "status", "--json").out)
    assert empty["empty_database"] is True and empty["up_to_date"] is False

    booted_kotti_site(db_url)
    assert cli(ini, "downgrade", "--scripts=kotti_notes:alembic", f"--rev={NOTES_FIRST}").code == 0
    result = cli(ini, "status", "--json")
    assert result.code == 3
    document = json.loads(result.out)
    assert document["up_to_date"] is False and document["empty_database"] is False
    kotti, notes = document["locations"]
    assert kotti == {
        "location": "kotti:alembic",
        "version_table": "kotti_alembic_version",
        "current": [KOTTI_HEAD],
        "heads": [KOTTI_HEAD],
        "pending": [],
        "unknown": [],
        "up_to_date": True,
    }
    assert notes["current"] == [NOTES_FIRST]
    assert notes["pending"] == [{"revision": NOTES_HEAD, "message": "Create note_links"}]
    assert notes["up_to_date"] is False

    assert cli(ini, "upgrade", "--scripts=kotti_notes:alembic").code == 0
    result = cli(ini, "status", "--json")
    assert result.code == 0 and json.loads(result.out)["up_to_date"] is True


@pytest.mark.kotti
def test_status_wait_returns_when_a_migration_job_finished(kotti_ini, db_url, booted_kotti_site):
    ini = kotti_ini(db_url)
    booted_kotti_site(db_url)
    assert cli(ini, "downgrade", "--scripts=kotti_notes:alembic", f"--rev={NOTES_FIRST}").code == 0

    begun = time.monotonic()
    assert cli(ini, "status", "--wait", "0").code == 3  # nothing changes: gives up at once
    assert cli(ini, "status", "--wait", "1.5").code == 3
    assert 1.4 < time.monotonic() - begun < 30

    # A worker waiting for the migration job that another process runs a little later.
    exe = Path(sys.executable).parent / "kotti-migrate"
    waiter = subprocess.Popen(
        [str(exe), str(ini), "status", "--wait", "60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    timer = threading.Timer(2, lambda: cli(ini, "upgrade", "--scripts=kotti_notes:alembic"))
    timer.start()
    try:
        out, err = waiter.communicate(timeout=90)
    finally:
        timer.join()
    assert waiter.returncode == 0, err
    assert f"kotti_notes:alembic  kotti_notes_alembic_version  {NOTES_HEAD}" in out


@pytest.mark.parametrize("value", ["soon", "-1", "inf"])
def test_status_wait_needs_a_number_of_seconds(tmp_path, value):
    result = cli(tmp_path / "site.ini", "status", "--wait", value)
    assert result.code == 2
    assert result.err.count("\n") == 1
    assert f"argument --wait: {value!r} is not a number of seconds" in result.err


# -- the readiness endpoint ------------------------------------------------------------------


def probe(ini: Path, admin_password: str | None = None) -> list[tuple[int, dict]]:
    """GET the endpoint of the app of ``ini`` (in a fresh process): anonymous, then as admin."""
    script = textwrap.dedent(
        f"""
        import json
        from pyramid.paster import get_app
        import webtest
        app = webtest.TestApp(get_app({str(ini)!r}))
        res = app.get("/-/migrations", status="*")
        print(json.dumps([res.status_int, res.json, res.headers.get("Cache-Control")]))
        if {admin_password!r}:
            app.post("/@@login", {{"login": "admin", "password": {admin_password!r}, "submit": "1"}})
            res = app.get("/-/migrations", status="*")
            print(json.dumps([res.status_int, res.json, res.headers.get("Cache-Control")]))
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ini.parent)
    assert proc.returncode == 0, proc.stderr
    answers = [json.loads(line) for line in proc.stdout.splitlines()]
    # Never cached (Kotti rewrites the header as its "No Cache" policy says).
    assert all(cache == "no-store" or "max-age=0" in cache for _, _, cache in answers), answers
    return [(status, body) for status, body, _ in answers]


@pytest.mark.kotti
def test_readiness_endpoint_on_a_kotti_site(kotti_ini, db_url):
    ini = kotti_ini(db_url, kotti_migrate__status_path="/-/migrations")
    [(status, body), (_, admin)] = probe(ini, admin_password="secret")  # boots a fresh database first
    assert (status, body) == (200, {"up_to_date": True})
    assert [item["location"] for item in admin["locations"]] == ["kotti:alembic", "kotti_notes:alembic"]
    assert admin["locations"][1] == {
        "location": "kotti_notes:alembic", "current": [NOTES_HEAD], "heads": [NOTES_HEAD], "up_to_date": True,
    }  # fmt: skip

    assert cli(ini, "downgrade", "--scripts=kotti_notes:alembic", f"--rev={NOTES_FIRST}").code == 0
    [(status, body), (_, admin)] = probe(ini, admin_password="secret")
    assert (status, body) == (503, {"up_to_date": False})  # anonymous: no details
    assert admin["locations"][1]["current"] == [NOTES_FIRST] and admin["up_to_date"] is False

    public = kotti_ini(
        db_url, kotti_migrate__status_path="/-/migrations", kotti_migrate__status_details="true"
    )
    [(status, body)] = probe(public)
    assert status == 503 and body["locations"][1]["up_to_date"] is False


@pytest.mark.modern
def test_readiness_endpoint_on_an_unreachable_database_says_why_without_password(modern_ini, tmp_path):
    from helpers import free_port

    url = f"postgresql+psycopg2://app:pw-s3cret-x@127.0.0.1:{free_port()}/app"
    ini = modern_ini(url, kotti_migrate__status_path="/-/migrations", kotti_migrate__startup="false")
    [(status, body)] = probe(ini)
    assert status == 503 and body["up_to_date"] is False
    assert body["error"].startswith("database postgresql+psycopg2://app:***@127.0.0.1:")
    assert "is unreachable" in body["error"] and "pw-s3cret-x" not in json.dumps(body)


@pytest.mark.modern
def test_readiness_endpoint_on_a_plain_app(modern_ini, db_url):
    ini = modern_ini(db_url, kotti_migrate__status_path="/-/migrations")
    [(status, body)] = probe(ini)
    assert (status, body) == (200, {"up_to_date": True})
    assert cli(ini, "downgrade", "--scripts=example_app:alembic", f"--rev={APP_FIRST}").code == 0
    [(status, body)] = probe(modern_ini(db_url, kotti_migrate__status_path="/-/migrations",
                                        kotti_migrate__status_details="yes"))  # fmt: skip
    assert status == 503
    assert body["locations"] == [
        {"location": "example_app:alembic", "current": [APP_FIRST], "heads": [APP_HEAD], "up_to_date": False}
    ]


def test_status_path_setting_must_be_a_path(tmp_path):
    from kotti_migrate.errors import ConfigurationError
    from kotti_migrate.settings import Options

    with pytest.raises(ConfigurationError, match="kotti_migrate.status_path: 'migrations' is not a URL path"):
        Options.from_settings({"kotti_migrate.status_path": "migrations"})


#: Run in a fresh process: one app probed from 8 threads at once and one after another (counting
#: the connections opened), while ``kotti-migrate`` downgrades and upgrades the database, and
#: after the server dropped every connection (PostgreSQL).
KEPT_CONNECTIONS = """
import json, subprocess, sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
import sqlalchemy as sa, webtest
from pyramid.paster import get_app

ini, location, first, url = sys.argv[1:]
app = webtest.TestApp(get_app(ini))
found = {}

def probe(_=None):
    res = app.get("/-/migrations", status="*")
    return res.status_int

def kotti_migrate(*args):
    exe = Path(sys.executable).parent / "kotti-migrate"
    return subprocess.run([str(exe), ini, *args], capture_output=True).returncode

found["first"] = probe()
engine = app.app.registry.kotti_migrate_probe._migrations.engine
opened = []
sa.event.listen(engine, "connect", lambda *args: opened.append(1))
with ThreadPoolExecutor(8) as pool:
    found["threads"] = sorted(set(pool.map(probe, range(80))))
opened.clear()
found["sequential"] = sorted(set(probe() for _ in range(20)))
found["opened"] = len(opened)
found["downgrade"] = kotti_migrate("downgrade", "--scripts=" + location, "--rev=" + first)
res = app.get("/-/migrations", status="*")
found["behind"] = [res.status_int, res.json["locations"][-1]["current"]]
found["upgrade"] = kotti_migrate("upgrade", "--scripts=" + location)
found["again"] = probe()
if url.startswith("postgresql"):
    other = sa.create_engine(url)
    with other.connect() as connection:
        connection.execute(sa.text(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
    other.dispose()
    found["dropped"] = [probe(), probe()]
print(json.dumps(found))
"""


def test_readiness_endpoint_keeps_its_connections_and_follows_the_database(
    kotti_ini, modern_ini, db_url, booted_kotti_site
):
    """The probe's connections are kept between requests (none opened anew), work from any
    thread, see what another process migrates (and hold no lock that would stop it), and a
    connection the server dropped is replaced."""
    settings = {"kotti_migrate__status_path": "/-/migrations", "kotti_migrate__status_details": "true"}
    if STACK == "modern":
        ini, location = modern_ini(db_url, **settings), "example_app:alembic"
        first, head = APP_FIRST, APP_HEAD
    else:
        booted_kotti_site(db_url)
        ini, location = kotti_ini(db_url, **settings), "kotti_notes:alembic"
        first, head = NOTES_FIRST, NOTES_HEAD
    proc = subprocess.run(
        [sys.executable, "-c", KEPT_CONNECTIONS, str(ini), location, first, db_url],
        capture_output=True, text=True, cwd=ini.parent,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout.splitlines()[-1])
    assert found["first"] == 200
    assert found["threads"] == [200]  # a connection bound to the thread that opened it would fail
    assert found["sequential"] == [200]
    assert found["opened"] == 0
    assert found["downgrade"] == 0 and found["behind"] == [503, [first]]
    assert found["upgrade"] == 0 and found["again"] == 200
    assert versions(db_url, location.split(":")[0] + "_alembic_version") == [head]
    if db_url.startswith("postgresql"):
        assert found["dropped"] == [200, 200]
