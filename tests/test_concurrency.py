"""Many workers starting one Kotti site at once, on PostgreSQL and on SQLite.

Four processes create the app from the same ini file (as four ``pserve``
workers would) and are released together through a file barrier once their
imports are done, so that they reach kotti_migrate's start-up work at the
same moment.  Every one must come up and serve "/", and the database must
look as if a single worker had started: one row per version table, one root
document, one note, each migration applied exactly once.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import KOTTI_HEAD, NOTES_HEAD, boot, cli, columns, execute, query, tables, versions

pytestmark = pytest.mark.kotti

WORKERS = 4
TRACKED_REVISIONS = ("c0ffee000001", "c0ffee000002")

WORKER_SCRIPT = textwrap.dedent(
    """
    import logging, os, sys, time
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(process)d %(levelname)s [%(name)s] %(message)s")
    ini, barrier, number = sys.argv[1], sys.argv[2], sys.argv[3]
    # Import everything before the barrier, so that the workers reach the
    # start-up work together rather than in the order their imports finish.
    from pyramid.paster import get_app
    import webtest, kotti, kotti.resources, kotti.views, kotti_migrate, kotti_notes  # noqa
    open(os.path.join(barrier, "ready." + number), "w").close()
    go = os.path.join(barrier, "go")
    deadline = time.monotonic() + 120
    while not os.path.exists(go):
        if time.monotonic() > deadline:
            sys.exit("barrier never opened")
        time.sleep(0.01)
    app = get_app(ini)
    res = webtest.TestApp(app).get(os.environ.get("WORKER_REQUEST", "/"), status="*")
    print("STATUS", res.status_int)
    """
)


@dataclass
class Worker:
    code: int
    out: str
    err: str


def start_together(ini: Path, workdir: Path, count: int = WORKERS, env: dict | None = None) -> list[Worker]:
    """Create the app from ``ini`` in ``count`` processes released at the same moment."""
    workdir.mkdir(exist_ok=True)
    script = workdir / "worker.py"
    script.write_text(WORKER_SCRIPT)
    barrier = workdir / "barrier"
    barrier.mkdir()
    outputs = [(workdir / f"out.{n}", workdir / f"err.{n}") for n in range(count)]
    procs = []
    for n, (out, err) in enumerate(outputs):
        with open(out, "w") as stdout, open(err, "w") as stderr:
            procs.append(
                subprocess.Popen(
                    [sys.executable, str(script), str(ini), str(barrier), str(n)],
                    stdout=stdout,
                    stderr=stderr,
                    cwd=str(ini.parent),
                    env={**os.environ, **(env or {})},
                )
            )
    try:
        deadline = time.monotonic() + 120
        while len(list(barrier.glob("ready.*"))) < count:
            assert all(p.poll() is None for p in procs), "a worker died before the barrier"
            assert time.monotonic() < deadline, "workers did not get ready in time"
            time.sleep(0.02)
        (barrier / "go").touch()
        codes = [p.wait(timeout=180) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return [Worker(code, out.read_text(), err.read_text()) for code, (out, err) in zip(codes, outputs)]


def assert_all_served(workers: list[Worker]) -> None:
    for n, worker in enumerate(workers):
        assert worker.code == 0, f"worker {n} failed:\n{worker.err[-3000:]}"
        assert "STATUS 200" in worker.out, f"worker {n}: {worker.out}\n{worker.err[-3000:]}"


def log_lines(workers: list[Worker], text: str) -> list[str]:
    return [line for w in workers for line in w.err.splitlines() if text in line]


def test_workers_booting_a_fresh_database_create_it_once(kotti_ini, db_url, tmp_path):
    ini = kotti_ini(db_url)
    workers = start_together(ini, tmp_path)
    assert_all_served(workers)
    assert versions(db_url, "kotti_alembic_version") == [KOTTI_HEAD]
    assert versions(db_url, "kotti_notes_alembic_version") == [NOTES_HEAD]
    assert query(db_url, "SELECT count(*) FROM nodes WHERE parent_id IS NULL")[0][0] == 1
    assert query(db_url, "SELECT count(*) FROM nodes")[0][0] == 2  # root and "about"
    assert query(db_url, "SELECT count(*) FROM notes")[0][0] == 1
    assert query(db_url, "SELECT count(*) FROM principals WHERE name = 'admin'")[0][0] == 1
    # One worker found the database empty and stamped it; the others found it done.
    assert len(log_lines(workers, "kotti:alembic stamped at")) == 1
    assert len(log_lines(workers, "kotti_notes:alembic stamped at")) == 1


def tracked_location(root: Path, pause: str = "time.sleep(0.3)") -> Path:
    """An add-on's migration folder whose upgrades leave a trace in ``migration_log``,
    then pause (``pause``: Python code) to widen the window in which others could race."""
    package = root / "tracked_addon"
    versions_dir = package / "alembic" / "versions"
    versions_dir.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    previous = None
    for n, rev in enumerate(TRACKED_REVISIONS, 1):
        (versions_dir / f"{rev}_step_{n}.py").write_text(
            textwrap.dedent(
                f'''
                """Step {n}

                Revision ID: {rev}
                Revises: {previous or ""}
                """
                import os
                import time

                from alembic import op

                revision = {rev!r}
                down_revision = {previous!r}


                def upgrade():
                    op.execute(
                        "INSERT INTO migration_log (revision, pid) VALUES ('{rev}', %d)" % os.getpid()
                    )
                    {pause}


                def downgrade():
                    pass
                '''
            )
        )
        previous = rev
    return package / "alembic"


def test_workers_upgrading_an_existing_database_migrate_once(kotti_ini, db_url, tmp_path):
    tracked = tracked_location(tmp_path)
    ini = kotti_ini(
        db_url,
        kotti__alembic_dirs=f"kotti:alembic {tracked}",
        kotti_migrate__auto_upgrade="true",
    )
    prepared = boot(ini)
    assert prepared.code == 0, prepared.err
    assert versions(db_url, "tracked_addon_alembic_version") == [TRACKED_REVISIONS[-1]]
    execute(db_url, "CREATE TABLE migration_log (revision VARCHAR(32) NOT NULL, pid INTEGER NOT NULL)")
    for location in ("kotti_notes:alembic", str(tracked)):
        result = cli(ini, "downgrade", f"--scripts={location}", "--rev=base")
        assert result.code == 0, result.err
    assert versions(db_url, "kotti_notes_alembic_version") == []
    assert versions(db_url, "tracked_addon_alembic_version") == []
    assert "note_links" not in tables(db_url)
    assert "body" not in columns(db_url, "notes")

    workers = start_together(ini, tmp_path / "run")
    assert_all_served(workers)
    assert versions(db_url, "kotti_alembic_version") == [KOTTI_HEAD]
    assert versions(db_url, "kotti_notes_alembic_version") == [NOTES_HEAD]
    assert versions(db_url, "tracked_addon_alembic_version") == [TRACKED_REVISIONS[-1]]
    log = query(db_url, "SELECT revision, pid FROM migration_log")
    assert sorted(rev for rev, _ in log) == sorted(TRACKED_REVISIONS)
    assert len({pid for _, pid in log}) == 1  # one worker ran them all
    # kotti_notes' migrations ran once too: the column and table are back,
    # and one worker (only) reports having upgraded each location.
    assert "note_links" in tables(db_url)
    assert "body" in columns(db_url, "notes")
    assert query(db_url, "SELECT count(*) FROM notes")[0][0] == 1
    # (kotti_notes' empty version table beside its old notes table: adopted.)
    assert len(log_lines(workers, "kotti_notes:alembic has an empty version table")) == 1
    assert len(log_lines(workers, f"upgrading {tracked} from base")) == 1
    assert query(db_url, "SELECT count(*) FROM nodes WHERE parent_id IS NULL")[0][0] == 1


def test_lock_holds_under_idle_in_transaction_timeout(kotti_ini, pg_server, tmp_path):
    """A server that ends sessions idle in a transaction (a common production
    setting) must not end the session holding the start-up lock while the
    migrations run: the others would go ahead and migrate too."""
    url = pg_server.new_database()
    tracked = tracked_location(tmp_path, pause='op.execute("SELECT pg_sleep(1.5)")')
    ini = kotti_ini(
        url,
        kotti__alembic_dirs=f"kotti:alembic {tracked}",
        kotti_migrate__auto_upgrade="true",
    )
    prepared = boot(ini)
    assert prepared.code == 0, prepared.err
    execute(url, "CREATE TABLE migration_log (revision VARCHAR(32) NOT NULL, pid INTEGER NOT NULL)")
    assert cli(ini, "downgrade", f"--scripts={tracked}", "--rev=base").code == 0
    database = query(url, "SELECT current_database()")[0][0]
    # Shorter than the lock is held (two revisions of 1.5 s each).
    execute(url, f"ALTER DATABASE \"{database}\" SET idle_in_transaction_session_timeout = '2s'")

    # The page each worker fetches is a static file: a page that compiles
    # Kotti's templates on a loaded machine can keep its own request's
    # transaction idle for longer than that (the app's business, not start-up's).
    workers = start_together(
        ini, tmp_path / "run", count=3, env={"WORKER_REQUEST": "/static-kotti/base.css"}
    )
    assert_all_served(workers)
    log = query(url, "SELECT revision FROM migration_log")
    assert sorted(rev for rev, in log) == sorted(TRACKED_REVISIONS)
    assert versions(url, "tracked_addon_alembic_version") == [TRACKED_REVISIONS[-1]]
