"""kotti_migrate on a real MariaDB server (Debian's mariadb-server, tests/mariadb.py).

Only what differs by database runs here (the rest of the suite runs on
SQLite and PostgreSQL through ``db_url``): a fresh database created and
stamped, pending revisions upgraded at start-up, ``status``, the
``GET_LOCK`` lock (workers and commands wait for the one that migrates; a
lock per database, not per server), a failing revision (MariaDB commits
DDL as it goes: the error names the revision that may be half-applied and
the way back, and that way works), and passwords kept out of every
message.  On the Kotti stack the site is Kotti 2.0.9 with kotti_notes, on
the modern stack the example app.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from helpers import (
    ADD_MORE,
    CREATE_STEPS,
    KOTTI_HEAD,
    NOTES_HEAD,
    PASSWORD,
    STACK,
    SWALLOWING_ENV,
    boot,
    cli,
    cli_process,
    columns,
    execute,
    failed,
    logged,
    one_error_line,
    query,
    started,
    steps_location,
    tables,
    versions,
    write_location,
)
from helpers import STEPS_TABLE as TABLE

from kotti_migrate.database import mask_url

R0, R1, R2 = "3a0000000000", "3a0000000001", "3a0000000002"
#: Signals that the revision runs, then waits for the test to let it go on.
HOLD = """
import os, time
open(os.path.join(os.environ["HOLD_DIR"], "started"), "w").close()
deadline = time.monotonic() + 120
while not os.path.exists(os.path.join(os.environ["HOLD_DIR"], "go")) and time.monotonic() < deadline:
    time.sleep(0.05)
"""
#: Records which process ran revision ``{rev}``.
LOG_PID = """
import os
op.execute("INSERT INTO migration_log (revision, pid) VALUES ('{rev}', %d)" % os.getpid())
"""
CREATE_LOG = """
op.create_table("migration_log", sa.Column("revision", sa.String(20)), sa.Column("pid", sa.Integer))
"""
#: A Python process creating the app from an ini file (as pserve does), then getting "/".
BOOT = """
import logging, sys, webtest
from pyramid.paster import get_app
logging.basicConfig(level=logging.INFO)
print("STATUS", webtest.TestApp(get_app(sys.argv[1])).get("/", status="*").status_int)
"""


@pytest.fixture
def site(kotti_ini, modern_ini, booted_kotti_site):
    """Factory: the ini file of this stack's site on ``url`` (``extra``: more locations)."""

    def make(url: str, name: str = "site.ini", extra: tuple = (), **settings) -> Path:
        if STACK == "kotti":
            if extra:
                settings["kotti__alembic_dirs"] = " ".join(["kotti:alembic", *map(str, extra)])
            return kotti_ini(url, name=name, **settings)
        if extra:
            settings["kotti__alembic_dirs"] = " ".join(map(str, extra))
        return modern_ini(url, name=name, **settings)

    def fresh(url: str) -> None:
        """The site as its first boot on an empty database left it."""
        if STACK == "kotti":
            booted_kotti_site(url)
        else:
            assert_served(boot(make(url, name="first.ini")))

    make.fresh = fresh
    return make


def assert_served(result) -> None:
    started(result)
    assert PASSWORD not in result.out + result.err


def at_revision(url: str, revision: str, *statements: str) -> None:
    """The add-on's tables and version table as its revisions up to ``revision`` leave them."""
    execute(url, *statements, f"CREATE TABLE {TABLE} (version_num VARCHAR(32) NOT NULL PRIMARY KEY)",
            f"INSERT INTO {TABLE} VALUES ('{revision}')")  # fmt: skip


def failing_site(site, url: str, tmp_path: Path, env_py: str | None = None, **settings) -> tuple[Path, Path]:
    """The site, and the add-on whose revision R2 raises after its DDL (MariaDB keeps that DDL).

    ``env_py``: the location's own env.py.  Returns (ini file, location).
    """
    site.fresh(url)
    failing = ADD_MORE + 'raise RuntimeError("boom")'
    loc = steps_location(tmp_path, [(R1, None, CREATE_STEPS), (R2, R1, failing)])
    if env_py is not None:
        (loc / "env.py").write_text(env_py)
    return site(url, extra=[loc], **settings), loc


def heads() -> dict[str, str]:
    """Version table -> head of the site's own locations on this stack."""
    if STACK == "kotti":
        return {"kotti_alembic_version": KOTTI_HEAD, "kotti_notes_alembic_version": NOTES_HEAD}
    return {"example_app_alembic_version": "e2000000000b"}


def status_rows(ini: Path, code: int) -> dict[str, list[str]]:
    result = cli(ini, "status")
    assert result.code == code, result.out + result.err
    assert PASSWORD not in result.out + result.err
    return {line.split()[0]: line.split()[1:] for line in result.out.splitlines()[1:]}


@pytest.mark.kotti
@pytest.mark.modern
def test_fresh_database_is_created_and_stamped(site, mariadb_url):
    ini = site(mariadb_url)
    result = boot(ini)
    assert_served(result)
    assert logged(result.err, "WARNING") == []
    assert {name: versions(mariadb_url, name) for name in heads()} == {
        name: [head] for name, head in heads().items()
    }
    assert f"fresh database {mask_url(mariadb_url)}: created" in result.err
    locations = ("kotti:alembic", "kotti_notes:alembic") if STACK == "kotti" else ("example_app:alembic",)
    for location in locations:
        assert f"{location} stamped at" in result.err
    if STACK == "kotti":
        assert query(mariadb_url, "SELECT count(*) FROM nodes WHERE parent_id IS NULL") == [(1,)]
        assert query(mariadb_url, "SELECT title FROM notes") == [("first note",)]
    else:
        assert {"items", "tags"} <= tables(mariadb_url)
    rows = status_rows(ini, 0)
    assert [row[-1] for row in rows.values()] == ["0"] * len(heads())


@pytest.mark.kotti
@pytest.mark.modern
def test_pending_revisions_are_upgraded_at_start_up(site, mariadb_url, tmp_path):
    site.fresh(mariadb_url)
    loc = steps_location(tmp_path, [(R1, None, CREATE_STEPS), (R2, R1, ADD_MORE)])
    ini = site(mariadb_url, extra=[loc], kotti_migrate__auto_upgrade="true")
    assert cli(ini, "upgrade", f"--scripts={loc}", f"--rev={R1}").code == 0
    assert status_rows(ini, 3)[str(loc)] == [TABLE, R1, R2, "1"]

    result = boot(ini)
    assert_served(result)
    assert f"upgrading {loc} from {R1}" in result.err
    assert versions(mariadb_url, TABLE) == [R2]
    assert columns(mariadb_url, "steps") == {"id", "name", "more"}
    assert query(mariadb_url, "SELECT name FROM steps") == [("more",)]


@pytest.mark.kotti
@pytest.mark.modern
def test_failing_revision_names_what_may_be_half_applied_and_the_advice_works(site, mariadb_url, tmp_path):
    ini, loc = failing_site(site, mariadb_url, tmp_path, kotti_migrate__auto_upgrade="true")
    at_revision(mariadb_url, R1, "CREATE TABLE steps (id INTEGER PRIMARY KEY, name VARCHAR(20))",
                "INSERT INTO steps (id, name) VALUES (1, 'one')")  # fmt: skip

    line = failed(boot(ini))
    assert PASSWORD not in line
    advice = (
        f"; mysql cannot roll back schema changes, so revision {R2} may be half-applied: inspect the "
        f"database and undo what it did, make sure the version table says {R1} (kotti-migrate {ini} "
        f"stamp --scripts={loc} --purge --rev {R1}), fix the revision and upgrade again"
    )
    assert line == (
        f"kotti_migrate: start-up failed: location '{loc}': revision {R2} failed: RuntimeError: boom; "
        f"the database is at {R1}" + advice
    )
    # MariaDB committed revision 2's DDL (not its UPDATE, nor its version row).
    assert versions(mariadb_url, TABLE) == [R1]
    assert "steps_more" in tables(mariadb_url)
    assert columns(mariadb_url, "steps") == {"id", "name", "more"}
    assert query(mariadb_url, "SELECT name FROM steps") == [("one",)]

    # Upgrading again without undoing it fails on what is left, with the same advice.
    again = one_error_line(cli(ini, "upgrade", f"--scripts={loc}"))
    assert again.startswith(f"kotti-migrate: error: location '{loc}': revision {R2} failed: OperationalError")
    assert "Table 'steps_more' already exists" in again and again.endswith(advice)

    # The advice followed: undo, the stamp command as printed, the revision fixed.
    execute(mariadb_url, "DROP TABLE steps_more", "ALTER TABLE steps DROP COLUMN more")
    stamp = re.search(r"\(kotti-migrate (.*?)\)", line).group(1).split()
    assert stamp[0] == str(ini)
    result = cli_process(*stamp)
    assert result.code == 0, result.err
    assert PASSWORD not in result.out + result.err
    write_location(loc, [(R2, R1, ADD_MORE)])
    assert_served(boot(ini))
    assert versions(mariadb_url, TABLE) == [R2]
    assert columns(mariadb_url, "steps") == {"id", "name", "more"}
    assert query(mariadb_url, "SELECT name FROM steps") == [("more",)]

    # A failing downgrade: the same advice, to downgrade again.
    source = loc / "versions" / f"{R2}_step.py"
    down = 'def downgrade():\n    op.drop_table("steps_more")\n    raise RuntimeError("boom down")\n'
    source.write_text(source.read_text().replace("def downgrade():\n    pass\n", down))
    line = one_error_line(cli(ini, "downgrade", f"--scripts={loc}", f"--rev={R1}"))
    assert f"revision {R2} failed: RuntimeError: boom down; the database is at {R2}; " in line
    assert line.endswith(f"stamp --scripts={loc} --purge --rev {R2}), fix the revision and downgrade again")
    assert versions(mariadb_url, TABLE) == [R2]
    assert "steps_more" not in tables(mariadb_url)


@pytest.mark.kotti
@pytest.mark.modern
def test_env_py_that_swallows_the_error_is_not_said_to_have_rolled_it_back(site, mariadb_url, tmp_path):
    ini, loc = failing_site(site, mariadb_url, tmp_path, env_py=SWALLOWING_ENV)  # prints the error (Kotti's)

    line = one_error_line(cli(ini, "upgrade", f"--scripts={loc}"))
    reason = "RuntimeError: boom (reported by its env.py)"
    assert f"revision {R2} failed: {reason}; the database is at {R1}; " in line
    assert "rolled back" not in line  # MariaDB kept revision 2's DDL: nobody rolled it back
    assert f"so revision {R2} may be half-applied" in line and PASSWORD not in line


@pytest.mark.kotti
@pytest.mark.modern
def test_worker_and_upgrade_wait_for_the_worker_that_migrates(site, mariadb_url, tmp_path):
    """GET_LOCK: a second worker and ``kotti-migrate upgrade`` started while a worker is
    in a revision wait for it (and say so), then find the work done: each revision ran once."""
    site.fresh(mariadb_url)
    loc = steps_location(
        tmp_path,
        [(R0, None, CREATE_LOG), (R1, R0, LOG_PID.format(rev=R1) + HOLD), (R2, R1, LOG_PID.format(rev=R2))],
    )
    ini = site(mariadb_url, extra=[loc], kotti_migrate__auto_upgrade="true")
    at_revision(mariadb_url, R0, "CREATE TABLE migration_log (revision VARCHAR(20), pid INTEGER)")
    hold = tmp_path / "hold"
    hold.mkdir()
    env = {**os.environ, "HOLD_DIR": str(hold)}
    kotti_migrate = str(Path(sys.executable).parent / "kotti-migrate")
    commands = {
        "first": [sys.executable, "-c", BOOT, str(ini)],
        "second": [sys.executable, "-c", BOOT, str(ini)],
        "upgrade": [kotti_migrate, str(ini), "upgrade", f"--scripts={loc}"],
    }
    procs: dict[str, subprocess.Popen] = {}
    err = {name: tmp_path / f"{name}.err" for name in commands}
    out = {name: tmp_path / f"{name}.out" for name in commands}

    def start(name: str) -> None:
        with open(out[name], "w") as stdout, open(err[name], "w") as stderr:
            procs[name] = subprocess.Popen(
                commands[name], stdout=stdout, stderr=stderr, env=env, cwd=tmp_path
            )

    def wait_for(name: str, condition) -> None:
        deadline = time.monotonic() + 90
        while not condition():
            assert procs[name].poll() is None, err[name].read_text()
            assert time.monotonic() < deadline, f"{name}: {err[name].read_text()}"
            time.sleep(0.05)

    try:
        start("first")
        wait_for("first", (hold / "started").exists)
        start("second")
        start("upgrade")
        for name in ("second", "upgrade"):
            wait_for(name, lambda name=name: "waiting for the kotti_migrate lock" in err[name].read_text())
        (hold / "go").touch()
        codes = {name: proc.wait(timeout=120) for name, proc in procs.items()}
    finally:
        (hold / "go").touch()
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    text = {name: out[name].read_text() + err[name].read_text() for name in commands}
    assert codes == {"first": 0, "second": 0, "upgrade": 0}, text
    assert "STATUS 200" in text["first"] and "STATUS 200" in text["second"]
    assert f"waiting for the kotti_migrate lock on {mask_url(mariadb_url)} (held by another process)" in (
        text["upgrade"]
    )
    assert "already up to date" in text["upgrade"]
    assert f"upgrading {loc}" not in text["second"]
    assert not any(PASSWORD in value for value in text.values())
    rows = query(mariadb_url, "SELECT revision, pid FROM migration_log ORDER BY revision")
    assert [rev for rev, _ in rows] == [R1, R2]
    assert {pid for _, pid in rows} == {procs["first"].pid}
    assert versions(mariadb_url, TABLE) == [R2]


@pytest.mark.kotti
@pytest.mark.modern
def test_lock_is_per_database_and_its_timeout_names_the_setting(site, mariadb_server, tmp_path):
    """Sites on one server do not wait for each other; a site waits for its own lock at most
    ``kotti_migrate.lock_timeout`` (``mariadb+pymysql://`` URLs are MariaDB too)."""
    held_url, other_url = mariadb_server.new_database(), mariadb_server.new_database()
    other_url = other_url.replace("mysql+pymysql://", "mariadb+pymysql://")
    loc = steps_location(tmp_path, [(R1, None, CREATE_STEPS)])
    held = site(held_url, name="held.ini", extra=[loc], kotti_migrate__lock_timeout="1")
    other = site(other_url, name="other.ini", extra=[loc], kotti_migrate__lock_timeout="1")
    # Held as kotti_migrate holds it, by another session (this process's own lock would be re-entrant).
    holder = sa.create_engine(held_url)
    try:
        with holder.connect() as conn:
            database = sa.engine.make_url(held_url).database
            name = f"kotti_migrate.startup.{hashlib.sha1(database.encode()).hexdigest()}"  # README
            assert conn.execute(sa.text("SELECT GET_LOCK(:name, 0)"), {"name": name}).scalar() == 1
            timed_out = cli(held, "upgrade", f"--scripts={loc}")
            result = cli(other, "upgrade", f"--scripts={loc}")
    finally:
        holder.dispose()
    assert timed_out.code == 1 and PASSWORD not in timed_out.err
    assert timed_out.err.splitlines()[0] == (
        f"kotti-migrate: waiting for the kotti_migrate lock on {mask_url(held_url)} "
        "(held by another process) ..."
    )
    assert len(timed_out.err.splitlines()) == 2
    assert timed_out.err.splitlines()[-1] == (
        f"kotti-migrate: error: could not acquire the kotti_migrate start-up lock on {mask_url(held_url)} "
        "within 1 s (setting kotti_migrate.lock_timeout); another process is migrating the database "
        "or holds the lock"
    )
    assert result.code == 0, result.err
    assert "waiting" not in result.err and PASSWORD not in result.out + result.err
    assert versions(other_url, TABLE) == [R1]
    assert TABLE not in tables(held_url)


@pytest.mark.kotti
@pytest.mark.modern
def test_wrong_password_is_one_line_without_the_password(site, mariadb_url):
    wrong = "wr0ng-pass-word"
    url = sa.engine.make_url(mariadb_url).set(password=wrong).render_as_string(hide_password=False)
    ini = site(url)
    line = one_error_line(cli(ini, "status"))
    assert line.startswith(f"kotti-migrate: error: database {mask_url(url)} is unreachable: ")
    assert "Access denied for user 'kotti_migrate'" in line
    result = boot(ini)
    assert "Access denied" in failed(result)
    assert wrong not in line and wrong not in result.out + result.err
