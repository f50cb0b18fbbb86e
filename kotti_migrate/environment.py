"""The migration environment: how a location's migrations meet the database.

A location with its own ``env.py`` runs it; one without runs
:func:`run_default_environment`, which connects to the app's database
(``sqlalchemy.url``), records the revision in the location's version table
and compares against the app's metadata for autogenerate.  Both work online
and offline (``--sql``).

An ``env.py`` created by ``kotti-migrate init`` calls :func:`run_environment`,
so the same folder works under ``kotti-migrate`` and under Alembic's own
``alembic -c <ini>`` command.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

from alembic.config import Config

if TYPE_CHECKING:  # pragma: no cover
    from .commands import Migrations
    from .locations import Location

#: Key of :attr:`alembic.config.Config.attributes` holding ``(Migrations, Location)``.
ATTRIBUTE = "kotti_migrate"

#: The ini section Alembic reads its options from (``alembic -c <ini>``, no ``--name``).
INI_SECTION = "alembic"

#: Alembic's ``alembic.context`` is a module-level proxy: one environment
#: runs at a time in a process.
env_lock = threading.RLock()


@dataclass
class StepReport:
    """One revision applied (or stamped) by a run."""

    revision: str
    description: str
    direction: str
    seconds: float


@dataclass
class StepRecorder:
    """Follows the steps Alembic runs, to time them and find the one that failed.

    ``wrap`` wraps the function handed to the environment.  Alembic asks it
    for the steps one at a time and runs each (migration, version table
    update) before asking for the next, so a step is complete when the next
    one is asked for.  A step handed out but never completed is the one that
    failed, even when an ``env.py`` swallowed the exception.
    """

    applied: list[StepReport] = field(default_factory=list)
    pending_step: Any = None
    #: True once Alembic asked for the steps: the env.py ran its migrations.
    called: bool = False
    #: True once Alembic asked for every step: the run got to its end.
    finished: bool = False
    _started: float = 0.0

    def wrap(self, fn: Callable[[Any, Any], Iterable[Any]]) -> Callable[[Any, Any], Iterator[Any]]:
        def steps(heads: Any, context: Any) -> Iterator[Any]:
            self.called = True
            for step in fn(heads, context) or ():
                self.pending_step = step
                self._started = time.perf_counter()
                yield step
                self._completed(step)
            self.finished = True

        return steps

    def _completed(self, step: Any) -> None:
        info = step.info
        if info.is_stamp:
            revs, direction = info.destination_revision_ids, "stamp"
        else:
            revs = info.up_revision_ids
            direction = "upgrade" if info.is_upgrade else "downgrade"
        doc = "" if info.is_stamp else (getattr(step, "doc", None) or "")
        lines = doc.strip().splitlines()
        self.applied.append(
            StepReport(
                revision=", ".join(revs) or "base",
                description=lines[0] if lines else "",
                direction=direction,
                seconds=time.perf_counter() - self._started,
            )
        )
        self.pending_step = None

    @property
    def failed_revision(self) -> str | None:
        """The revision of the step that started but never completed."""
        step = self.pending_step
        if step is None:
            return None
        revision = getattr(step, "revision", None)
        if revision is not None:
            return revision.revision
        return ", ".join(getattr(step, "to_revisions", ()) or ()) or "stamp"


def alembic_config(
    migrations: Migrations, location: Location, stdout: Any = None, **cmd_opts: Any
) -> Config:
    """An Alembic :class:`~alembic.config.Config` for one location.

    As under ``alembic -c <ini>``: ``config_file_name`` is the app's ini file
    (when kotti_migrate knows it: :attr:`Migrations.config_file`), its
    ``[alembic]`` options are there, ``cmd_opts`` holds ``config``, ``name``,
    ``x`` and the command's options (``sql``, ``autogenerate``, ...).  The
    script location and ``sqlalchemy.url`` are the location's and the app's.
    ``attributes`` carries what kotti_migrate's own environment needs.
    """
    kwargs: dict[str, Any] = {"stdout": stdout} if stdout is not None else {}
    ini = migrations.config_file
    options = argparse.Namespace(
        config=ini,
        name=INI_SECTION,
        raiseerr=False,
        quiet=False,
        x=[],
        sql=False,
        autogenerate=False,
        tag=None,
    )
    for key, value in cmd_opts.items():
        setattr(options, key, value)
    config = Config(file_=ini, ini_section=INI_SECTION, cmd_opts=options, **kwargs)
    config.set_main_option("script_location", str(location.path).replace("%", "%%"))
    url = migrations.settings.get("sqlalchemy.url")
    if url:
        text = url if isinstance(url, str) else url.render_as_string(hide_password=False)
        config.set_main_option("sqlalchemy.url", text.replace("%", "%%"))
    config.attributes[ATTRIBUTE] = (migrations, location)
    return config


def restore_streams(replaced: Any, original: Any) -> None:
    """Point logging handlers bound to ``replaced`` back at ``original``.

    An ``env.py`` that configures logging from the ini file (``setup_logging``,
    ``fileConfig``: ``args = (sys.stderr,)``) while kotti_migrate captures
    stderr would leave the app's handlers writing into the capture.
    """
    import logging

    for ref in list(getattr(logging, "_handlerList", ())):
        handler = ref() if callable(ref) else ref
        if isinstance(handler, logging.StreamHandler) and handler.stream is replaced:
            handler.setStream(original)


def bind_kotti_session(engine: Any) -> None:
    """Bind Kotti's ``DBSession`` (and metadata) to ``engine``, as Kotti does."""
    from kotti import DBSession, metadata

    DBSession.remove()
    DBSession.registry.clear()
    DBSession.configure(bind=engine)
    if hasattr(metadata, "bind"):  # SQLAlchemy < 2
        metadata.bind = engine


@contextlib.contextmanager
def kotti_session(engine: Any) -> Iterator[None]:
    """Kotti's ``DBSession`` and metadata bound to ``engine`` for a while, then as they were.

    Inside, ``DBSession()`` is a new session of a registry of its own, in a
    transaction of its own (a new ``transaction`` manager for this thread),
    and no request is current (Kotti caches principals and roots on the
    current request).  So whatever the caller holds - Kotti's test fixtures
    bind their session to a connection in an open transaction, and register
    a dummy request - is neither used, committed, closed nor filled with
    objects of a session that is gone.  On exit the temporary session is
    closed and the caller's registry, transaction manager, request, the
    session factory's ``bind`` and ``metadata.bind`` (SQLAlchemy < 2) are
    restored.
    """
    import transaction
    from kotti import DBSession, metadata
    from pyramid.threadlocal import get_current_registry, manager
    from sqlalchemy.util import ScopedRegistry, ThreadLocalRegistry

    saved_registry = DBSession.registry
    kw = DBSession.session_factory.kw
    had_bind, saved_bind = "bind" in kw, kw.get("bind")
    has_metadata_bind = hasattr(metadata, "bind")  # SQLAlchemy < 2
    saved_metadata_bind = metadata.bind if has_metadata_bind else None
    saved_transactions = transaction.manager.manager

    if isinstance(saved_registry, ThreadLocalRegistry):
        DBSession.registry = ThreadLocalRegistry(DBSession.session_factory)
    else:
        DBSession.registry = ScopedRegistry(DBSession.session_factory, saved_registry.scopefunc)
    kw["bind"] = engine
    if has_metadata_bind:
        metadata.bind = engine
    transaction.manager.manager = transaction.TransactionManager()
    manager.push({"registry": get_current_registry(), "request": None})
    try:
        yield
    finally:
        try:
            transaction.abort()  # nothing left open by the work done inside
            DBSession.remove()
        finally:
            manager.pop()
            transaction.manager.manager = saved_transactions
            DBSession.registry = saved_registry
            if had_bind:
                kw["bind"] = saved_bind
            else:
                kw.pop("bind", None)
            if has_metadata_bind:
                metadata.bind = saved_metadata_bind


def kotti_bound_engine(url: Any) -> Any:
    """The engine the caller bound Kotti's ``DBSession`` (or metadata) to, if it is for ``url``.

    Kotti's test fixtures (and apps that set up Kotti's session themselves)
    bind ``DBSession`` before the app is created.  Start-up must work on that
    engine, not on a second one: a second engine for ``sqlite://`` is another,
    empty, in-memory database.  ``None`` when nothing is bound, or something
    bound to another database.
    """
    from kotti import DBSession, metadata
    from sqlalchemy.engine import make_url

    try:
        wanted = make_url(url) if isinstance(url, str) else url
    except Exception:  # a bad URL is reported where the engine is built
        return None
    for bind in (DBSession.session_factory.kw.get("bind"), getattr(metadata, "bind", None)):
        engine = getattr(bind, "engine", None)  # an Engine's engine is itself; a Connection's
        if engine is not None and getattr(engine, "url", None) == wanted:
            return engine
    return None


def run_environment() -> None:
    """Entry point of an ``env.py``: works for kotti-migrate and plain alembic.

    Under ``kotti-migrate`` (and at start-up) the running
    :class:`~kotti_migrate.commands.Migrations` is handed over through the
    Alembic config.  Under ``alembic -c app.ini ...`` the app's settings are
    read from that ini file (the section named by the ``app`` option of
    ``[alembic]``, ``main`` by default), so both tools use the same
    database, version table and metadata.
    """
    from alembic import context

    if ATTRIBUTE not in context.config.attributes:
        from alembic.util import CommandError

        from .cli import _setup_logging
        from .commands import Migrations
        from .errors import MigrateError

        ini = context.config.config_file_name
        if not ini:
            raise CommandError(
                "kotti_migrate's env.py needs an ini file with the app's settings "
                "(alembic -c <ini>)"
            )
        # As Alembic's own env.py does: the ini file's logging configuration.
        _setup_logging(str(ini))
        section = context.config.get_main_option("app", "main")
        try:
            migrations = Migrations.from_config_uri(f"{ini}#{section}")
            # Alembic keeps script_location as written: relative to the
            # working directory, not to the ini file.
            location = migrations.location(os.path.abspath(context.script.dir))
        except MigrateError as exc:  # Alembic shows a CommandError as one line
            raise CommandError(f"kotti_migrate: {exc}") from exc
        if migrations.uses_kotti:
            bind_kotti_session(migrations.engine)
        context.config.attributes[ATTRIBUTE] = (migrations, location)
    run_default_environment()


def run_default_environment() -> None:
    """The environment of locations without an ``env.py`` of their own."""
    from alembic import context

    migrations, location = context.config.attributes[ATTRIBUTE]
    options = migrations.context_options(location)
    if context.is_offline_mode():
        context.configure(
            url=migrations.engine.url,
            literal_binds=True,
            dialect_opts={"paramstyle": "named"},
            **options,
        )
        with context.begin_transaction():
            context.run_migrations()
    elif migrations.uses_kotti:
        _run_in_kotti_transaction(context, options)
    else:
        with migrations.engine.connect() as connection:
            context.configure(
                connection=connection, transaction_per_migration=True, **options
            )
            with context.begin_transaction():
                context.run_migrations()
            if hasattr(connection, "commit") and connection.in_transaction():
                connection.commit()


def _run_in_kotti_transaction(context: Any, options: dict) -> None:
    """Run on Kotti's ``DBSession`` so that migrations may use the ORM.

    Unlike Kotti's env.py, an error is not swallowed: the transaction is
    aborted and the error reaches the caller.
    """
    import transaction
    from kotti import DBSession
    from zope.sqlalchemy import mark_changed

    transaction.begin()
    try:
        context.configure(connection=DBSession.connection(), **options)
        context.run_migrations()
        mark_changed(DBSession())
    except BaseException:
        transaction.abort()
        raise
    transaction.commit()
