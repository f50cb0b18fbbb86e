"""The database: engines, connections, passwords kept out of messages, and the start-up lock.

What the database records (tables, version rows) is read by :mod:`kotti_migrate.records`.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import math
import os
import re
import threading
import time
import urllib.parse
from typing import Callable, Iterator, Mapping

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, make_url

from .errors import ConfigurationError, DatabaseError, LockTimeout

log = logging.getLogger(__name__)

#: Hashed into the PostgreSQL advisory lock key; MySQL's (server-wide) lock names add the database's sha1.
LOCK_NAME = "kotti_migrate.startup"
_MYSQL_NAME = "CONCAT(:name, '.', SHA1(IFNULL(DATABASE(), '')))"


def mask_url(url: str | sa.engine.URL) -> str:
    """The URL as text with its password replaced by ``***``."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparsable database URL>"


_URL_PASSWORD = r"(\w[\w+.-]*://[^:/@\s]*:)[^@\s]+@"


def scrub(text: str, url: str | sa.engine.URL | None = None) -> str:
    """Remove passwords from ``text``: any ``scheme://user:password@`` and,
    when ``url`` is given, its password wherever it appears."""
    text = re.sub(_URL_PASSWORD, r"\1***@", text)
    if url is None:
        return text
    try:
        password = make_url(url).password
    except Exception:  # unparsable (a typo): find the password by its shape
        match = re.search(r":([^:@/\s]+)@", str(url))
        password = match.group(1) if match else None
    # A very short password would mangle the text; the URL-shaped
    # occurrences are masked above already.
    if password and len(str(password)) >= 4:
        text = text.replace(str(password), "***")
    return text


def engine_from_settings(settings: Mapping[str, object], **overrides: object) -> Engine:
    """An engine built from the ``sqlalchemy.*`` settings of the app.

    :param overrides: arguments of ``create_engine`` taking precedence over the settings
    :raises ConfigurationError: ``sqlalchemy.url`` is missing or invalid
    """
    url = settings.get("sqlalchemy.url")
    if not url:
        raise ConfigurationError("setting 'sqlalchemy.url' is missing")
    try:
        engine = sa.engine_from_config(dict(settings), prefix="sqlalchemy.", **overrides)
    except Exception as exc:
        raise ConfigurationError(
            f"cannot create a database engine for {mask_url(str(url))}: "
            f"{scrub(str(exc), str(url))}"
        ) from None
    if engine.dialect.name == "sqlite" and engine.dialect.driver == "pysqlite":
        transactional_sqlite(engine)
    return engine


def transactional_sqlite(engine: Engine) -> None:
    """Make the SQLite engine's transactions hold DDL too.

    The ``sqlite3`` driver opens transactions by itself, and only before
    ``INSERT``/``UPDATE``/``DELETE``: a ``CREATE``/``ALTER`` issued first runs
    outside any transaction and is committed at once, so a revision that
    fails halfway would leave its schema changes behind without its version
    row.  Here the driver opens none and SQLAlchemy's ``begin`` emits
    ``BEGIN`` (the recipe of SQLAlchemy's SQLite dialect documentation):
    a revision's DDL and its version row commit or roll back together.
    Statements run outside a SQLAlchemy transaction commit one by one, as
    before.
    """

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_connection: object, connection_record: object) -> None:
        dbapi_connection.isolation_level = None  # type: ignore[attr-defined]

    @sa.event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN")


def unreachable(engine: Engine, exc: BaseException) -> DatabaseError:
    """A one-line error for a database that cannot be reached."""
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    first = reason[0] if reason else type(exc).__name__
    return DatabaseError(
        f"database {mask_url(engine.url)} is unreachable: {scrub(first, engine.url)}"
    )


@contextlib.contextmanager
def connect(engine: Engine) -> Iterator[Connection]:
    """Connect, turning connection failures into :class:`DatabaseError`."""
    try:
        connection = engine.connect()
    except sa.exc.DBAPIError as exc:
        raise unreachable(engine, exc) from None
    except sa.exc.ArgumentError as exc:
        raise ConfigurationError(f"database {mask_url(engine.url)}: {exc}") from None
    try:
        yield connection
    finally:
        connection.close()


# -- the start-up lock ---------------------------------------------------------

_thread_locks: dict[str, threading.RLock] = {}
_thread_locks_guard = threading.Lock()
#: Per thread: how many times it holds the lock of each database (re-entrance).
_held = threading.local()


def _thread_lock(key: str) -> threading.RLock:
    with _thread_locks_guard:
        return _thread_locks.setdefault(key, threading.RLock())


def _advisory_key() -> int:
    digest = hashlib.sha1(LOCK_NAME.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


#: Called once when the lock is held by another process or thread and has to be waited for.
OnWait = Callable[[str], None]


@contextlib.contextmanager
def database_lock(engine: Engine, timeout: float, on_wait: OnWait | None = None) -> Iterator[None]:
    """Hold a database-wide lock for start-up work, waiting at most ``timeout`` s.

    - PostgreSQL: a session-level advisory lock on a dedicated connection;
      held by the database, so it serialises workers on every host.
    - SQLite: an exclusive ``flock`` on ``<database file>.kotti_migrate.lock``
      (every process on the host that opens the same file); none for a
      database in memory.
    - MySQL / MariaDB: ``GET_LOCK``, one per database.
    - Other databases: only processes of one host are not serialised; a
      warning is logged.

    Threads of one process are serialised in every case.  The lock is
    re-entrant: a thread holding it (start-up) may take it again (the
    upgrade it calls) without waiting.

    :param on_wait: called with a message (naming the database, its
        password masked) once, when another process or thread holds the lock
        and it has to be waited for; the message is logged at INFO as well
    :raises LockTimeout: the lock was not acquired within ``timeout``
    """
    url = engine.url
    key = mask_url(url)
    depth: dict[str, int] = _held.__dict__.setdefault("depth", {})
    if depth.get(key):
        depth[key] += 1
        try:
            yield
        finally:
            depth[key] -= 1
        return
    deadline = time.monotonic() + timeout
    waiting = _Waiting(engine, on_wait)
    thread_lock = _thread_lock(key)
    if not thread_lock.acquire(blocking=False):
        waiting.notify()
        if not thread_lock.acquire(timeout=max(timeout, 0)):
            raise _timeout(engine, timeout)
    depth[key] = 1
    try:
        backend = url.get_backend_name()
        if backend == "postgresql":
            with _pg_lock(engine, deadline, timeout, waiting):
                yield
        elif backend == "sqlite":
            with _file_lock(url, engine, deadline, timeout, waiting):
                yield
        elif backend in ("mysql", "mariadb"):
            with _mysql_lock(engine, deadline, timeout, waiting):
                yield
        else:
            log.warning(
                "no cross-process lock for %s databases; "
                "start one worker first when migrations are pending",
                backend,
            )
            yield
    finally:
        depth[key] = 0
        thread_lock.release()


class _Waiting:
    """Tells (once) that the lock is taken and will be waited for."""

    def __init__(self, engine: Engine, on_wait: OnWait | None) -> None:
        self.engine = engine
        self.on_wait = on_wait
        self.told = False

    def notify(self) -> None:
        if self.told:
            return
        self.told = True
        message = (
            f"waiting for the kotti_migrate lock on {mask_url(self.engine.url)} "
            f"(held by another process) ..."
        )
        log.info("%s", message)
        if self.on_wait is not None:
            self.on_wait(message)


def _timeout(engine: Engine, timeout: float) -> LockTimeout:
    return LockTimeout(
        f"could not acquire the kotti_migrate start-up lock on {mask_url(engine.url)} "
        f"within {timeout:g} s (setting kotti_migrate.lock_timeout); another "
        f"process is migrating the database or holds the lock"
    )


def _end_transaction(connection: Connection) -> None:
    # SQLAlchemy 2 (and 1.4 "future" mode) autobegins; 1.4 legacy mode does not.
    commit = getattr(connection, "commit", None)
    if commit is not None:
        commit()


@contextlib.contextmanager
def _pg_lock(engine: Engine, deadline: float, timeout: float, waiting: _Waiting) -> Iterator[None]:
    key = _advisory_key()
    with connect(engine) as connection:
        # Outside any transaction (SQLAlchemy 1.4's legacy mode would leave one
        # open): a session idle in a transaction for the whole start-up may be
        # ended by the server (idle_in_transaction_session_timeout), and the
        # lock with it, letting other workers migrate at the same time.
        connection = connection.execution_options(isolation_level="AUTOCOMMIT")
        while True:
            got = connection.execute(
                sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": key}
            ).scalar()
            _end_transaction(connection)
            if got:
                break
            if time.monotonic() >= deadline:
                raise _timeout(engine, timeout)
            waiting.notify()
            time.sleep(0.05)
        try:
            yield
        finally:
            # A dropped connection released the lock already: keep the real error.
            with contextlib.suppress(sa.exc.DBAPIError):
                connection.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": key})
            _end_transaction(connection)


@contextlib.contextmanager
def _mysql_lock(engine: Engine, deadline: float, timeout: float, waiting: _Waiting) -> Iterator[None]:
    with connect(engine) as connection:
        connection = connection.execution_options(isolation_level="AUTOCOMMIT")  # as for PostgreSQL
        sql = sa.text(f"SELECT GET_LOCK({_MYSQL_NAME}, :timeout)")
        got = connection.execute(sql, {"name": LOCK_NAME, "timeout": 0}).scalar()
        if not got:
            waiting.notify()
            got = connection.execute(
                sql, {"name": LOCK_NAME, "timeout": max(0, math.ceil(deadline - time.monotonic()))}
            ).scalar()
        if not got:
            raise _timeout(engine, timeout)
        try:
            yield
        finally:
            with contextlib.suppress(sa.exc.DBAPIError):
                connection.execute(sa.text(f"SELECT RELEASE_LOCK({_MYSQL_NAME})"), {"name": LOCK_NAME})


def sqlite_file(url: sa.engine.URL) -> str | None:
    """The file a SQLite URL opens, as an absolute path; None for a database in memory.

    As the ``sqlite3`` driver opens it: a plain name is relative to the
    working directory; with ``?uri=true`` the name is a SQLite URI
    (``file:/abs/x.db``, ``file:rel.db``, ``file:///abs/x.db``,
    ``file::memory:``, ``?mode=memory``), percent-decoded.
    """
    database = url.database or ""
    query = {key: str(value) for key, value in url.query.items()}
    if str(query.get("uri", "")).lower() in ("true", "1", "yes", "on"):
        if query.get("mode") == "memory":
            return None
        if database.startswith("file:"):
            database = database[len("file:"):]
            if database.startswith("//"):  # file://[host]/path: the host must be empty or localhost
                database = "/" + database[2:].partition("/")[2]
            database = urllib.parse.unquote(database.partition("#")[0])
    if database in ("", ":memory:"):
        return None
    return os.path.realpath(database)


@contextlib.contextmanager
def _file_lock(
    url: sa.engine.URL, engine: Engine, deadline: float, timeout: float, waiting: _Waiting
) -> Iterator[None]:
    database = sqlite_file(url)
    if database is None:
        yield  # private to this process: the thread lock suffices
        return
    lock_path = database + ".kotti_migrate.lock"
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise DatabaseError(f"cannot open lock file {lock_path}: {exc.strerror}") from None
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise _timeout(engine, timeout) from None
                waiting.notify()
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
