"""A private PostgreSQL server for the test session.

``KOTTI_MIGRATE_TEST_PG`` may name an existing server
(``postgresql://user:password@host:port/db``); otherwise a throwaway
cluster is created with the machine's ``initdb`` / ``pg_ctl`` (as the
``postgres`` user when running as root), listening on a free local port,
and removed at the end of the session.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid

import sqlalchemy as sa

PASSWORD = "s3cret-pw"
USER = "kotti_migrate"


def _pg_bin() -> str | None:
    found = shutil.which("pg_ctl")
    if found:
        return os.path.dirname(found)
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return os.path.dirname(candidates[-1]) if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """A running server and a way to hand out fresh databases."""

    def __init__(self) -> None:
        self.admin_url: str | None = None
        self.datadir: str | None = None
        self._run_as: list[str] = []
        self._bin: str | None = None

    def start(self) -> None:
        external = os.environ.get("KOTTI_MIGRATE_TEST_PG")
        if external:
            self.admin_url = external
            return
        self._bin = _pg_bin()
        if self._bin is None:
            raise RuntimeError("PostgreSQL server binaries (initdb, pg_ctl) not found")
        base = tempfile.mkdtemp(prefix="kotti_migrate_pg_")
        self.datadir = os.path.join(base, "data")
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(base, pw.pw_uid, pw.pw_gid)
            self._run_as = ["runuser", "-u", "postgres", "--"]
        pwfile = os.path.join(base, "pw")
        with open(pwfile, "w") as fh:
            fh.write(PASSWORD)
        if self._run_as:
            os.chown(pwfile, pwd.getpwnam("postgres").pw_uid, -1)
        self._cmd(
            [
                "initdb", "-D", self.datadir, "-U", USER, "--pwfile", pwfile,
                "-A", "md5", "-E", "UTF8", "--no-sync",
            ]
        )
        conf = os.path.join(self.datadir, "postgresql.conf")
        with open(conf) as fh:
            initial = fh.read()
        # Each pytest-xdist worker starts a cluster of its own: another one
        # may take the free port between the probe and the start; try again.
        for attempt in range(5):
            port = _free_port()
            with open(conf, "w") as fh:
                fh.write(
                    initial + f"\nport = {port}\nlisten_addresses = '127.0.0.1'\n"
                    f"unix_socket_directories = '{base}'\nfsync = off\n"
                    "synchronous_commit = off\nfull_page_writes = off\nmax_connections = 200\n"
                )
            try:
                self._cmd(["pg_ctl", "-D", self.datadir, "-w", "-t", "60", "-l",
                           os.path.join(base, "log"), "start"])
                break
            except subprocess.CalledProcessError:
                if attempt == 4:
                    raise
        # The driver is named: SQLAlchemy 2.1 defaults to psycopg 3, the
        # test stacks install psycopg2.
        self.admin_url = f"postgresql+psycopg2://{USER}:{PASSWORD}@127.0.0.1:{port}/postgres"

    def _cmd(self, argv: list[str]) -> None:
        argv = [os.path.join(self._bin, argv[0])] + argv[1:]
        subprocess.run(self._run_as + argv, check=True, capture_output=True)

    def stop(self) -> None:
        if self.datadir and self._bin:
            try:
                self._cmd(["pg_ctl", "-D", self.datadir, "-m", "immediate", "stop"])
            except subprocess.CalledProcessError:
                pass
            shutil.rmtree(os.path.dirname(self.datadir), ignore_errors=True)

    def new_database(self) -> str:
        """Create an empty database; return its URL."""
        name = "t_" + uuid.uuid4().hex[:12]
        engine = sa.create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        for _ in range(50):
            try:
                with engine.connect() as conn:
                    conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
                break
            except sa.exc.OperationalError:
                time.sleep(0.2)
        engine.dispose()
        url = sa.engine.make_url(self.admin_url).set(database=name)
        return url.render_as_string(hide_password=False)

    def clone_database(self, template_url: str, url: str) -> None:
        """Make the database of ``url`` a copy of the one of ``template_url``
        (``CREATE DATABASE ... TEMPLATE``; nobody may be connected to either)."""
        template = sa.engine.make_url(template_url).database
        name = sa.engine.make_url(url).database
        engine = sa.create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        try:
            for attempt in range(50):
                try:
                    with engine.connect() as conn:
                        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
                        conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
                    return
                except sa.exc.OperationalError:
                    # The template's last session may still be closing.
                    if attempt == 49:
                        raise
                    time.sleep(0.2)
        finally:
            engine.dispose()
