"""A private MariaDB server for the test session.

``KOTTI_MIGRATE_TEST_MYSQL`` may name an existing server
(``mysql+pymysql://user:password@host:port/db``, a user that may create
databases); otherwise a throwaway server is set up with the machine's
``mariadb-install-db`` in a temporary folder and ``mariadbd`` is started
on a free local port and a socket of its own (``--user=root`` when running
as root), with a user that logs in with a password over TCP, as a site
would.  It is stopped and its folder removed at the end of the session.
The server reads no option files (``--no-defaults``); the character set is
Debian's default (utf8mb4).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid

import sqlalchemy as sa

PASSWORD = "s3cret-pw"
USER = "kotti_migrate"

#: Server options: Debian's character set, and quick rather than durable.
OPTIONS = [
    "--character-set-server=utf8mb4",
    "--collation-server=utf8mb4_general_ci",
    "--innodb-flush-log-at-trx-commit=0",
    "--innodb-doublewrite=0",
    "--innodb-buffer-pool-size=64M",
    "--innodb-log-file-size=16M",
    "--skip-name-resolve",
    "--max-connections=200",
]


def _binary(*names: str) -> str | None:
    for name in names:
        for found in (shutil.which(name), f"/usr/sbin/{name}", f"/usr/bin/{name}"):
            if found and os.access(found, os.X_OK):
                return found
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    """The server gets SIGTERM when the test process dies (a killed pytest leaves no server behind)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class MariaDBServer:
    """A running server and a way to hand out fresh databases."""

    def __init__(self) -> None:
        self.admin_url: str | None = None
        self.base: str | None = None
        self.version: str = ""
        self._proc: subprocess.Popen | None = None

    def start(self) -> None:
        external = os.environ.get("KOTTI_MIGRATE_TEST_MYSQL")
        if external:
            self.admin_url = external
            self.version = self._scalar("SELECT VERSION()")
            return
        server = _binary("mariadbd", "mysqld")
        install = _binary("mariadb-install-db", "mysql_install_db")
        if server is None or install is None:
            raise RuntimeError(
                "MariaDB server binaries (mariadbd, mariadb-install-db) not found; "
                "install Debian's mariadb-server (scripts/venv.sh: ensure_mariadb)"
            )
        self.base = tempfile.mkdtemp(prefix="kotti_migrate_mariadb_")
        datadir = os.path.join(self.base, "data")
        user = ["--user=root"] if os.geteuid() == 0 else []
        subprocess.run(
            [install, "--no-defaults", f"--datadir={datadir}", "--skip-test-db",
             "--auth-root-authentication-method=normal", *user, *OPTIONS],
            check=True, capture_output=True,
        )  # fmt: skip
        sock = os.path.join(self.base, "sock")
        log = os.path.join(self.base, "log")
        # Each pytest-xdist worker starts a server of its own: another one may
        # take the free port between the probe and the start; try again.
        for attempt in range(5):
            port = _free_port()
            with open(log, "w") as out:
                self._proc = subprocess.Popen(
                    [server, "--no-defaults", f"--datadir={datadir}", *user, f"--port={port}",
                     "--bind-address=127.0.0.1", f"--socket={sock}",
                     f"--pid-file={os.path.join(self.base, 'pid')}", *OPTIONS],
                    stdout=out, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent,
                )  # fmt: skip
            if self._wait_ready(sock, log):
                break
            if attempt == 4:
                raise RuntimeError(f"mariadbd did not start:\n{open(log).read()[-2000:]}")
        # The administrator (root, over the socket) makes the tests' user.
        root = sa.create_engine("mysql+pymysql://root@localhost/", connect_args={"unix_socket": sock})
        try:
            with root.begin() as conn:
                for host in ("127.0.0.1", "localhost"):
                    conn.execute(sa.text(f"CREATE USER '{USER}'@'{host}' IDENTIFIED BY '{PASSWORD}'"))
                    conn.execute(sa.text(f"GRANT ALL ON *.* TO '{USER}'@'{host}'"))
        finally:
            root.dispose()
        self.admin_url = f"mysql+pymysql://{USER}:{PASSWORD}@127.0.0.1:{port}/mysql?charset=utf8mb4"
        self.version = self._scalar("SELECT VERSION()")

    def _wait_ready(self, sock: str, log: str) -> bool:
        """Wait until the server accepts connections; False when it exited (a port taken)."""
        import pymysql

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                return False
            try:
                pymysql.connect(unix_socket=sock, user="root").close()
                return True
            except pymysql.err.OperationalError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"mariadbd did not accept connections in 60 s:\n{open(log).read()[-2000:]}")

    def _scalar(self, sql: str) -> str:
        engine = sa.create_engine(self.admin_url)
        try:
            with engine.connect() as conn:
                return str(conn.execute(sa.text(sql)).scalar())
        finally:
            engine.dispose()

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self.base:
            shutil.rmtree(self.base, ignore_errors=True)

    def new_database(self) -> str:
        """Create an empty database; return its URL (``mysql+pymysql://...?charset=utf8mb4``)."""
        name = "t_" + uuid.uuid4().hex[:12]
        engine = sa.create_engine(self.admin_url)
        try:
            with engine.begin() as conn:
                conn.execute(sa.text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
        finally:
            engine.dispose()
        url = sa.engine.make_url(self.admin_url).set(database=name)
        return url.render_as_string(hide_password=False)

    def clone_database(self, template_url: str, url: str) -> None:
        """Make the (empty) database of ``url`` a copy of the one of ``template_url``:
        each table's ``SHOW CREATE TABLE`` (foreign keys included), then its rows."""
        template = sa.engine.make_url(template_url).database
        name = sa.engine.make_url(url).database
        engine = sa.create_engine(self.admin_url)
        try:
            with engine.begin() as conn:
                shown = f"SHOW FULL TABLES FROM `{template}` WHERE Table_type = 'BASE TABLE'"
                names = [row[0] for row in conn.exec_driver_sql(shown)]
                conn.execute(sa.text("SET foreign_key_checks = 0"))
                conn.execute(sa.text(f"USE `{name}`"))
                for table in names:
                    create = conn.exec_driver_sql(f"SHOW CREATE TABLE `{template}`.`{table}`").fetchone()[1]
                    conn.exec_driver_sql(create)
                    conn.exec_driver_sql(f"INSERT INTO `{table}` SELECT * FROM `{template}`.`{table}`")
                conn.execute(sa.text("SET foreign_key_checks = 1"))
        finally:
            engine.dispose()
