"""What the database says: engines, version tables, and the start-up lock.

Nothing here imports revision files.  Reading every version table of a
site costs one table listing and one ``SELECT`` per existing table.
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
from typing import Iterator, Mapping, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, make_url

from .errors import ConfigurationError, DatabaseError, LockTimeout

log = logging.getLogger(__name__)

#: Name hashed into the PostgreSQL advisory lock key and MySQL lock name.
LOCK_NAME = "kotti_migrate.startup"


def mask_url(url: str | sa.engine.URL) -> str:
    """The URL as text with its password replaced by ``***``."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparsable database URL>"


_URL_PASSWORD = re.compile(r"(\w[\w+.-]*://[^:/@\s]*:)[^@\s]+@")


def scrub(text: str, url: str | sa.engine.URL | None = None) -> str:
    """Remove passwords from ``text``: any ``scheme://user:password@`` and,
    when ``url`` is given, its password wherever it appears."""
    text = _URL_PASSWORD.sub(r"\1***@", text)
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


def engine_from_settings(settings: Mapping[str, object]) -> Engine:
    """An engine built from the ``sqlalchemy.*`` settings of the app.

    :raises ConfigurationError: ``sqlalchemy.url`` is missing or invalid
    """
    url = settings.get("sqlalchemy.url")
    if not url:
        raise ConfigurationError("setting 'sqlalchemy.url' is missing")
    try:
        return sa.engine_from_config(dict(settings), prefix="sqlalchemy.")
    except Exception as exc:
        raise ConfigurationError(
            f"cannot create a database engine for {mask_url(str(url))}: "
            f"{scrub(str(exc), str(url))}"
        ) from None


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


def table_names(connection: Connection) -> set[str]:
    """Names of the tables of the connection's default schema."""
    return set(sa.inspect(connection).get_table_names())


def read_versions(
    connection: Connection, version_tables: Sequence[str], existing: set[str] | None = None
) -> dict[str, tuple[str, ...] | None]:
    """Current revisions per version table; None where the table is missing."""
    if existing is None:
        existing = table_names(connection)
    present = [name for name in dict.fromkeys(version_tables) if name in existing]
    found: dict[str, list[str]] = {name: [] for name in present}
    if present:
        # One round trip for all of them (a site may have many locations).
        quote = connection.dialect.identifier_preparer.quote
        sql = " UNION ALL ".join(
            f"SELECT {i} AS n, version_num FROM {quote(name)}" for i, name in enumerate(present)
        )
        for n, version in connection.execute(sa.text(sql)):
            found[present[n]].append(version)
    return {
        name: tuple(sorted(found[name])) if name in found else None for name in version_tables
    }


#: Alembic's default version table (an app's own env.py that names none).
ALEMBIC_DEFAULT_VERSION_TABLE = "alembic_version"


def read_records(
    connection: Connection, version_tables: Sequence[str]
) -> tuple[set[str], dict[str, tuple[str, ...] | None], bool]:
    """The database's tables, the rows of every version table, and whether it is fresh.

    Version tables read: ``version_tables`` and any other table that looks
    like one (Alembic's default, an add-on's removed since).  A database
    is *fresh* when its only tables are version tables without rows.
    """
    existing = table_names(connection)
    others = sorted(
        name
        for name in existing - set(version_tables)
        if name == ALEMBIC_DEFAULT_VERSION_TABLE or name.endswith("_alembic_version")
    )
    versions = read_versions(connection, list(version_tables) + others, existing)
    records = (set(version_tables) | set(others)) & existing
    fresh = existing <= records and not any(versions[name] for name in records)
    return existing, versions, fresh


# -- the start-up lock ---------------------------------------------------------

_thread_locks: dict[str, threading.Lock] = {}
_thread_locks_guard = threading.Lock()


def _thread_lock(key: str) -> threading.Lock:
    with _thread_locks_guard:
        return _thread_locks.setdefault(key, threading.Lock())


def _advisory_key() -> int:
    digest = hashlib.sha1(LOCK_NAME.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextlib.contextmanager
def database_lock(engine: Engine, timeout: float) -> Iterator[None]:
    """Hold a database-wide lock for start-up work, waiting at most ``timeout`` s.

    - PostgreSQL: a session-level advisory lock on a dedicated connection;
      held by the database, so it serialises workers on every host.
    - SQLite: an exclusive ``flock`` on ``<database file>.kotti_migrate.lock``
      (every process on the host that opens the same file).
    - MySQL / MariaDB: ``GET_LOCK``.
    - Other databases: only processes of one host are not serialised; a
      warning is logged.

    Threads of one process are serialised in every case.

    :raises LockTimeout: the lock was not acquired within ``timeout``
    """
    url = engine.url
    key = mask_url(url)
    deadline = time.monotonic() + timeout
    thread_lock = _thread_lock(key)
    if not thread_lock.acquire(timeout=max(timeout, 0)):
        raise _timeout(engine, timeout)
    try:
        backend = url.get_backend_name()
        if backend == "postgresql":
            with _pg_lock(engine, deadline, timeout):
                yield
        elif backend == "sqlite":
            with _file_lock(url, engine, deadline, timeout):
                yield
        elif backend in ("mysql", "mariadb"):
            with _mysql_lock(engine, deadline, timeout):
                yield
        else:
            log.warning(
                "kotti_migrate: no cross-process lock for %s databases; "
                "start one worker first when migrations are pending",
                backend,
            )
            yield
    finally:
        thread_lock.release()


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
def _pg_lock(engine: Engine, deadline: float, timeout: float) -> Iterator[None]:
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
            time.sleep(0.05)
        try:
            yield
        finally:
            # A dropped connection released the lock already: keep the real error.
            with contextlib.suppress(sa.exc.DBAPIError):
                connection.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": key})
            _end_transaction(connection)


@contextlib.contextmanager
def _mysql_lock(engine: Engine, deadline: float, timeout: float) -> Iterator[None]:
    with connect(engine) as connection:
        got = connection.execute(
            sa.text("SELECT GET_LOCK(:name, :timeout)"),
            {"name": LOCK_NAME, "timeout": max(0, math.ceil(deadline - time.monotonic()))},
        ).scalar()
        if not got:
            raise _timeout(engine, timeout)
        try:
            yield
        finally:
            with contextlib.suppress(sa.exc.DBAPIError):
                connection.execute(sa.text("SELECT RELEASE_LOCK(:name)"), {"name": LOCK_NAME})


@contextlib.contextmanager
def _file_lock(url: sa.engine.URL, engine: Engine, deadline: float, timeout: float) -> Iterator[None]:
    database = url.database
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        yield  # private to this process: the thread lock suffices
        return
    lock_path = os.path.abspath(database) + ".kotti_migrate.lock"
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
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
