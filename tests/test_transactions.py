"""No half-applied state, the CLI and start-up never in each other's way, SQLite URLs.

Each revision commits with its version row, or rolls back with it, on
SQLite as on PostgreSQL, in a Kotti site (migrations on Kotti's
``DBSession``) and in a plain app: a revision that raises, or a
``kotti-migrate`` killed with -9 halfway through one, leaves the database
at the last revision that completed, with that revision's schema only,
and the next start carries on.  Every command that writes takes start-up's
lock.  Tests run on the stack of the virtualenv: a Kotti site with the
kotti_notes add-on on the Kotti stack, the example app on the modern one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from helpers import (
    ADD_MORE,
    CREATE_STEPS,
    STACK,
    boot,
    cli,
    cli_process,
    columns,
    execute,
    query,
    steps_location,
    tables,
    versions,
    write_location,
)
from helpers import STEPS_TABLE as TABLE

from kotti_migrate.database import database_lock, mask_url

R1, R2, R3 = "5e0000000001", "5e0000000002", "5e0000000003"
ADD_EXTRA = """
op.add_column("steps", sa.Column("extra", sa.Integer))
op.execute("UPDATE steps SET name = 'two'")
"""


@pytest.fixture
def site(kotti_ini, modern_ini, booted_kotti_site):
    """Factory: the ini file of this stack's site (Kotti + kotti_notes, or the example app).

    ``extra``: migration locations registered besides the site's own.
    """

    def make(url: str, name: str = "site.ini", extra: tuple = (), **settings) -> Path:
        if STACK == "kotti":
            if extra:
                settings["kotti__alembic_dirs"] = " ".join(["kotti:alembic", *map(str, extra)])
            return kotti_ini(url, name=name, **settings)
        if extra:
            settings["kotti__alembic_dirs"] = " ".join(map(str, extra))
        return modern_ini(url, name=name, **settings)

    def fresh(url: str) -> None:
        if STACK == "kotti":
            booted_kotti_site(url)  # a copy of a Kotti site booted once
        else:
            served(boot(make(url, name="first.ini")))

    make.fresh = fresh
    return make


def served(result) -> None:
    assert result.code == 0, result.err[-3000:]
    assert "STATUS 200" in result.out, result.out + result.err[-3000:]


def last_line(result) -> str:
    lines = result.err.strip().splitlines()
    assert result.code == 1, result.out + result.err
    assert lines, "no error line"
    return lines[-1]


def fresh_site(site, url: str) -> None:
    """The site booted once on ``url``, before the add-on under test is registered."""
    site.fresh(url)


# -- section 4: each revision commits with its version row ------------------------------------


def test_failing_revision_leaves_the_revisions_before_it(site, db_url, tmp_path):
    fresh_site(site, db_url)
    failing = ADD_MORE + 'raise RuntimeError("boom in r3")\n'
    loc = steps_location(tmp_path, [(R1, None, CREATE_STEPS), (R2, R1, ADD_EXTRA), (R3, R2, failing)])
    ini = site(db_url, extra=[loc], kotti_migrate__auto_upgrade="true")

    line = last_line(cli_process(ini, "upgrade", f"--scripts={loc}"))
    assert f"revision {R3} failed: RuntimeError: boom in r3" in line
    assert f"the database is at {R2}" in line
    # Exactly revision 2: its schema and data, nothing of revision 3 (its table,
    # column and update rolled back with it, on SQLite too).
    assert versions(db_url, TABLE) == [R2]
    assert columns(db_url, "steps") == {"id", "name", "extra"}
    assert "steps_more" not in tables(db_url)
    assert query(db_url, "SELECT name FROM steps") == [("two",)]

    # The revision fixed, the next start carries on to the head.
    write_location(loc, [(R3, R2, ADD_MORE)])
    served(boot(ini))
    assert versions(db_url, TABLE) == [R3]
    assert columns(db_url, "steps") == {"id", "name", "extra", "more"}
    assert "steps_more" in tables(db_url)
    assert query(db_url, "SELECT name FROM steps") == [("more",)]


ROOT_TEXT = (
    "SELECT n.title, c.description FROM nodes n JOIN contents c ON c.id = n.id WHERE n.parent_id IS NULL"
)
ORM_R2 = """
from kotti import DBSession
from kotti.resources import Node
DBSession.query(Node).filter(Node.parent_id == None).one().title = "renamed by r2"
DBSession.execute(sa.text("UPDATE steps SET name = 'two'"))
"""
ORM_R3 = """
from kotti import DBSession
from kotti.resources import Node
DBSession.query(Node).filter(Node.parent_id == None).one().description = "written by r3"
op.add_column("steps", sa.Column("extra", sa.Integer))
"""


@pytest.mark.kotti
def test_revisions_writing_through_kottis_session_commit_with_their_step(site, db_url, tmp_path):
    """A step that used ``DBSession`` commits its ORM changes with its version row; a failing one
    rolls them back with its schema changes; steps that did not use it are committed alike."""
    fresh_site(site, db_url)
    failing = ORM_R3 + 'raise RuntimeError("boom in r3")\n'
    loc = steps_location(tmp_path, [(R1, None, CREATE_STEPS), (R2, R1, ORM_R2), (R3, R2, failing)])
    ini = site(db_url, extra=[loc])
    line = last_line(cli_process(ini, "upgrade", f"--scripts={loc}"))
    assert f"revision {R3} failed: RuntimeError: boom in r3" in line
    assert versions(db_url, TABLE) == [R2]
    assert query(db_url, "SELECT name FROM steps") == [("two",)]
    assert query(db_url, ROOT_TEXT) == [
        ("renamed by r2", "Congratulations! You have successfully installed Kotti.")
    ]
    assert columns(db_url, "steps") == {"id", "name"}

    write_location(loc, [(R3, R2, ORM_R3)])
    assert cli(ini, "upgrade", f"--scripts={loc}").code == 0
    assert versions(db_url, TABLE) == [R3]
    assert query(db_url, ROOT_TEXT) == [
        ("renamed by r2", "written by r3")
    ]
    assert columns(db_url, "steps") == {"id", "name", "extra"}


def test_killed_upgrade_leaves_the_last_completed_revision(site, db_url, tmp_path):
    fresh_site(site, db_url)
    marker = tmp_path / "in-revision-2"
    slow = ADD_EXTRA + textwrap.dedent(
        """
        import os, time
        open(os.environ["STEPS_MARKER"], "w").close()
        time.sleep(120)
        """
    )
    loc = steps_location(tmp_path, [(R1, None, CREATE_STEPS), (R2, R1, slow), (R3, R2, ADD_MORE)])
    ini = site(db_url, extra=[loc], kotti_migrate__auto_upgrade="true")

    exe = Path(sys.executable).parent / "kotti-migrate"
    with open(tmp_path / "upgrade.err", "w") as err:
        proc = subprocess.Popen(
            [str(exe), str(ini), "upgrade", f"--scripts={loc}"],
            stdout=err,
            stderr=err,
            env={**os.environ, "STEPS_MARKER": str(marker)},
        )
    try:
        deadline = time.monotonic() + 90
        while not marker.exists():
            assert proc.poll() is None, (tmp_path / "upgrade.err").read_text()
            assert time.monotonic() < deadline, "revision 2 never started"
            time.sleep(0.05)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL

    assert versions(db_url, TABLE) == [R1]
    assert columns(db_url, "steps") == {"id", "name"}  # revision 2's column is gone
    assert query(db_url, "SELECT name FROM steps") == [("one",)]

    write_location(loc, [(R2, R1, ADD_EXTRA)])  # the slow step made quick
    served(boot(ini))
    assert versions(db_url, TABLE) == [R3]
    assert columns(db_url, "steps") == {"id", "name", "extra", "more"}
    assert query(db_url, "SELECT name FROM steps") == [("more",)]


# -- section 5: commands that write wait for start-up's lock -----------------------------------

HOLD = """
import os, time
open(os.path.join(os.environ["HOLD_DIR"], "started"), "w").close()
go = os.path.join(os.environ["HOLD_DIR"], "go")
deadline = time.monotonic() + 120
while not os.path.exists(go) and time.monotonic() < deadline:
    time.sleep(0.05)
"""
BOOT = textwrap.dedent(
    """
    import sys
    from pyramid.paster import get_app
    import webtest
    app = get_app(sys.argv[1])
    print("STATUS", webtest.TestApp(app).get("/", status="*").status_int)
    """
)


def test_cli_waits_for_startup_then_finds_nothing_to_do(site, db_url, tmp_path):
    fresh_site(site, db_url)
    log = "INSERT INTO migration_log (revision, pid) VALUES ('{rev}', %d)\" % os.getpid()"
    loc = steps_location(
        tmp_path,
        [
            (R1, None, 'op.create_table("migration_log", sa.Column("revision", sa.String(20)), '
                       'sa.Column("pid", sa.Integer))'),
            (R2, R1, f'import os\nop.execute("{log.format(rev=R2)})\n' + HOLD),
            (R3, R2, f'import os\nop.add_column("migration_log", sa.Column("note", sa.String(20)))\n'
                     f'op.execute("{log.format(rev=R3)})'),
        ],
    )  # fmt: skip
    ini = site(db_url, extra=[loc], kotti_migrate__auto_upgrade="true")
    impatient = site(db_url, name="impatient.ini", extra=[loc], kotti_migrate__lock_timeout="1")
    assert cli(ini, "upgrade", f"--scripts={loc}", f"--rev={R1}").code == 0

    hold_dir = tmp_path / "hold"
    hold_dir.mkdir()
    env = {**os.environ, "HOLD_DIR": str(hold_dir)}
    (tmp_path / "boot.py").write_text(BOOT)
    outputs = {name: (tmp_path / f"{name}.out", tmp_path / f"{name}.err") for name in ("boot", "cli")}
    procs: dict[str, subprocess.Popen] = {}

    def start(name: str, argv: list[str]) -> None:
        out, err = outputs[name]
        with open(out, "w") as stdout, open(err, "w") as stderr:
            procs[name] = subprocess.Popen(argv, stdout=stdout, stderr=stderr, env=env, cwd=str(tmp_path))

    try:
        # A starting worker upgrades; it holds the lock while in revision 2.
        start("boot", [sys.executable, str(tmp_path / "boot.py"), str(ini)])
        deadline = time.monotonic() + 90
        while not (hold_dir / "started").exists():
            assert procs["boot"].poll() is None, outputs["boot"][1].read_text()
            assert time.monotonic() < deadline, "start-up never reached revision 2"
            time.sleep(0.05)

        # Within its lock timeout a command gives up, naming the setting.
        result = cli_process(impatient, "upgrade", f"--scripts={loc}")
        line = last_line(result)
        assert line.startswith("kotti-migrate: error: could not acquire the kotti_migrate")
        assert "within 1 s (setting kotti_migrate.lock_timeout)" in line
        assert "waiting for the kotti_migrate lock" in result.err

        # A patient one says that it waits, and waits.
        start("cli", [str(Path(sys.executable).parent / "kotti-migrate"), str(ini), "upgrade",
                      f"--scripts={loc}"])  # fmt: skip
        deadline = time.monotonic() + 90
        while "waiting for the kotti_migrate lock" not in outputs["cli"][1].read_text():
            assert procs["cli"].poll() is None, outputs["cli"][1].read_text()
            assert time.monotonic() < deadline, "the command never said it waits"
            time.sleep(0.05)
        time.sleep(0.5)
        assert procs["cli"].poll() is None  # still waiting
        (hold_dir / "go").touch()
        codes = {name: proc.wait(timeout=120) for name, proc in procs.items()}
    finally:
        (hold_dir / "go").touch()
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    boot_out, boot_err = (path.read_text() for path in outputs["boot"])
    cli_out, cli_err = (path.read_text() for path in outputs["cli"])
    assert codes["boot"] == 0 and "STATUS 200" in boot_out, boot_err[-3000:]
    assert codes["cli"] == 0, cli_err
    waiting = [text for text in cli_err.splitlines() if "waiting for the kotti_migrate lock" in text]
    assert waiting == [
        f"kotti-migrate: waiting for the kotti_migrate lock on {mask_url(db_url)} "
        f"(held by another process) ..."
    ]
    assert "already up to date" in cli_out
    # Each data migration ran once, by the worker; no duplicate column.
    rows = query(db_url, "SELECT revision, pid FROM migration_log ORDER BY revision")
    assert [rev for rev, _ in rows] == [R2, R3]
    assert len({pid for _, pid in rows}) == 1
    assert versions(db_url, TABLE) == [R3]


# -- section 6: SQLite URLs of every form -----------------------------------------------------


def lock_files(*folders: Path) -> list[Path]:
    return [path for folder in folders for path in folder.rglob("*.kotti_migrate.lock")]


def test_sqlite_uri_url_locks_the_real_file(site, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    url = f"sqlite:///file:{data}/x.db?uri=true"
    ini = site(url)
    served(boot(ini))
    assert (data / "x.db").exists()
    assert lock_files(tmp_path) == [data / "x.db.kotti_migrate.lock"]
    assert not list(tmp_path.glob("file:*"))
    result = cli_process(ini, "stamp_heads", cwd=str(tmp_path))
    assert result.code == 0, result.err
    # The command locks the same file as start-up: it waits for a holder.
    engine = sa.create_engine(f"sqlite:///{data}/x.db")
    try:
        with database_lock(engine, 10):
            impatient = site(url, name="impatient.ini", kotti_migrate__lock_timeout="1")
            line = last_line(cli_process(impatient, "stamp_heads", cwd=str(tmp_path)))
    finally:
        engine.dispose()
    assert "kotti_migrate.lock_timeout" in line


def test_sqlite_relative_url_locks_beside_the_file_it_opens(site, tmp_path):
    folder = tmp_path / "site"
    folder.mkdir()
    ini = site("sqlite:///relative.db", name="site/site.ini")
    served(boot(ini))  # started from the ini's folder
    assert (folder / "relative.db").exists()
    assert lock_files(tmp_path) == [folder / "relative.db.kotti_migrate.lock"]
    # Started from the same folder, a command locks the same file as a worker
    # holding the lock through the file's absolute path.
    engine = sa.create_engine(f"sqlite:///{folder}/relative.db")
    try:
        with database_lock(engine, 10):
            impatient = site("sqlite:///relative.db", name="site/impatient.ini",
                             kotti_migrate__lock_timeout="1")  # fmt: skip
            line = last_line(cli_process(impatient, "stamp_heads", cwd=str(folder)))
        assert "kotti_migrate.lock_timeout" in line
    finally:
        engine.dispose()
    result = cli_process(ini, "stamp_heads", cwd=str(folder))
    assert result.code == 0, result.err


CREATE_APP = textwrap.dedent(
    """
    import logging, sys
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s [%(name)s] %(message)s")
    from pyramid.paster import get_app
    get_app(sys.argv[1])
    print("CREATED")
    """
)

# SQLAlchemy 1.4 pools a ``file::memory:`` URI as a file (NullPool: the database
# is gone with each connection); ``mode=memory`` is what it reads as memory.
SHARED_MEMORY = (
    "sqlite:///file:shared?mode=memory&cache=shared&uri=true"
    if STACK == "kotti"
    else "sqlite:///file::memory:?cache=shared&uri=true"
)


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", SHARED_MEMORY])
def test_sqlite_memory_urls_need_no_lock_file(site, tmp_path, url):
    ini = site(url)
    proc = subprocess.run(
        [sys.executable, "-c", CREATE_APP, str(ini)], capture_output=True, text=True, cwd=str(tmp_path)
    )
    assert proc.returncode == 0 and "CREATED" in proc.stdout, proc.stderr[-3000:]
    assert "stamped at" in proc.stderr  # start-up did its work, under the (thread) lock
    result = cli_process(ini, "stamp_heads", cwd=str(tmp_path))
    assert result.code == 0, result.err
    assert "Stamping" in result.out
    assert lock_files(tmp_path) == []
    assert not [path for path in tmp_path.rglob("*") if "memory" in path.name or "shared" in path.name]


# -- section 9 ----------------------------------------------------------------------------------


def test_two_rows_on_a_linear_history_name_location_table_and_fix(site, db_url):
    ini = site(db_url)
    served(boot(ini))
    if STACK == "kotti":
        spec, table, older, head = "kotti_notes:alembic", "kotti_notes_alembic_version", \
            "a1b2c3d4e5f6", "b2c3d4e5f6a7"  # fmt: skip
    else:
        spec, table, older, head = "example_app:alembic", "example_app_alembic_version", \
            "e1000000000a", "e2000000000b"  # fmt: skip
    execute(db_url, f"INSERT INTO {table} (version_num) VALUES ('{older}')")
    for command in ("upgrade", "downgrade"):
        args = [ini, command, f"--scripts={spec}"] + (["--rev=-1"] if command == "downgrade" else [])
        line = last_line(cli(*args))
        assert f"location '{spec}': its version table {table} has 2 rows ({older}, {head})" in line
        assert f"{older} is an ancestor of {head}" in line
        assert line.endswith(f"kotti-migrate {ini} stamp --scripts={spec} --purge --rev {head}")
    assert versions(db_url, table) == sorted([older, head])  # nothing changed
    result = cli(ini, "stamp", f"--scripts={spec}", "--purge", "--rev", head)
    assert result.code == 0, result.err
    assert versions(db_url, table) == [head]
    assert cli(ini, "upgrade", f"--scripts={spec}").code == 0


QUIET_ENV = """\
import os

from kotti_migrate.environment import run_environment

if os.environ.get("QUIET_ADDON_ONLINE"):
    run_environment()
"""


def test_env_py_that_ran_nothing_is_named(site, db_url, tmp_path, monkeypatch):
    fresh_site(site, db_url)
    loc = write_location(tmp_path / "pkgs" / "quiet_addon" / "alembic", [(R1, None, CREATE_STEPS)])
    (loc / "env.py").write_text(QUIET_ENV)
    ini = site(db_url, extra=[loc])
    line = last_line(cli(ini, "upgrade", f"--scripts={loc}"))
    assert line.startswith(
        f"kotti-migrate: error: location '{loc}': its env.py ({loc / 'env.py'}) ran no migrations: "
        f"it returned without calling context.run_migrations() (check the conditions it runs them under)"
    )
    assert "handled the error" not in line
    monkeypatch.setenv("QUIET_ADDON_ONLINE", "1")
    result = cli(ini, "upgrade", f"--scripts={loc}")
    assert result.code == 0, result.err
    assert versions(db_url, "quiet_addon_alembic_version") == [R1]
