"""The adapter to Kotti: everything kotti_migrate does differently in a Kotti site.

Whether a site is one (:func:`is_kotti_site`), Kotti's ``DBSession`` bound to
the engine kotti_migrate works on, migrations run in Kotti's transaction,
Kotti's engine quirks, its populators and its ``kotti.use_tables`` setting.
Kotti is imported inside the functions only: the other modules use this
one and never import Kotti themselves.
"""

from __future__ import annotations

import contextlib
import os
import threading
import weakref
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import sqlalchemy as sa

from . import database, records
from .errors import MigrationsRequired
from .locations import KOTTI_LOCATION
from .settings import kotti_available

#: Values of Kotti's ``KOTTI_DISABLE_POPULATORS`` that turn its populators off.
_TRUE = ("1", "y", "yes", "t", "true")


def is_kotti_site(specs: Iterable[str]) -> bool:
    """True for a Kotti site: Kotti's own location ``kotti:alembic`` registered and Kotti importable."""
    return KOTTI_LOCATION in set(specs) and kotti_available()


def adjust_for_engine(engine: sa.engine.Engine) -> None:
    """Kotti's per-dialect adjustments of its metadata, before create_all."""
    from kotti.resources import _adjust_for_engine

    _adjust_for_engine(engine)


def run_populators(settings: Mapping[str, Any], engine: sa.engine.Engine, behind: Sequence[str]) -> None:
    """Run Kotti's populators (root document, admin user) once, under the lock.

    :param behind: the ``kotti-migrate ... upgrade`` commands of locations
        left behind their head; a populator that fails on the database then
        fails with that advice, not with a bare SQL error
    :raises MigrationsRequired: a populator failed on the database while
        locations are behind their head
    """
    if os.environ.get("KOTTI_DISABLE_POPULATORS", "0").strip().lower() in _TRUE:
        return  # Kotti's own switch, read as Kotti reads it
    import transaction
    from pyramid.path import DottedNameResolver

    populators = settings.get("kotti.populators") or []
    if isinstance(populators, str):
        populators = [DottedNameResolver().resolve(name) for name in populators.split()]
    populators = [p.populate if isinstance(p, RanUnderLock) else p for p in populators]
    # Kotti's DBSession bound to this engine for the populators only, in a
    # transaction of their own: the caller's session is left as it was.
    with kotti_session(engine):
        try:
            for populate in populators:
                populate()
            transaction.commit()
        except sa.exc.DBAPIError as exc:
            transaction.abort()
            if not behind:
                raise
            reason = database.scrub(str(exc.orig).strip().splitlines()[0], engine.url)
            raise MigrationsRequired(
                f"Kotti's populator {getattr(populate, '__name__', populate)} failed ({reason}) while "
                f"locations are behind their head; upgrade them ({'; '.join(behind)}), "
                "or start with kotti_migrate.auto_upgrade = true"
            ) from exc
        except BaseException:
            transaction.abort()
            raise


class RanUnderLock:
    """One of Kotti's populators, already run by start-up under its lock.

    Kotti's ``initialize_sql`` runs the populators again right after
    start-up, in the same app creation: that call is skipped, once, when it
    is for the same database (Kotti's ``DBSession`` bound to start-up's
    engine, or to an engine of the same URL that is not an in-memory
    database).  Any other call runs the populator: a later one, one after
    ``metadata.drop_all`` (Kotti's test set-up), one on another database,
    and every call once the app is created.
    """

    def __init__(self, populate: Callable[[], Any], engine: Any) -> None:
        self.populate = populate
        self.armed = True
        self._url = engine.url
        self._engine = weakref.ref(engine)
        self.__name__ = getattr(populate, "__name__", type(self).__name__)
        self.__doc__ = getattr(populate, "__doc__", None)
        self.__wrapped__ = populate
        with _armed_lock:
            _armed.add(self)

    def __call__(self) -> Any:
        skip, self.armed = self.armed and self._same_database(), False
        if skip:
            return None
        return self.populate()

    def disarm(self) -> None:
        self.armed = False

    def _same_database(self) -> bool:
        from kotti import DBSession

        bind = getattr(DBSession.session_factory.kw.get("bind"), "engine", None)
        if bind is None:
            return False
        if bind is self._engine():
            return True
        url = self._url
        in_memory = url.get_backend_name() == "sqlite" and (
            url.database in (None, "", ":memory:") or "memory" in str(url.query)
        )
        return not in_memory and bind.url == url

    def __repr__(self) -> str:
        return f"<kotti_migrate: {self.populate!r}, run under the start-up lock>"


_armed: weakref.WeakSet[RanUnderLock] = weakref.WeakSet()
_armed_lock = threading.Lock()
_listening = False


def _disarm_all(*args: Any, **kw: Any) -> None:
    with _armed_lock:
        for populator in list(_armed):
            populator.disarm()


def skip_kotti_rerun(settings: dict, registry: Any, engine: Any) -> None:
    """Keep Kotti's ``initialize_sql`` from running the populators start-up just ran.

    Replaces ``kotti.populators`` of ``settings`` (the registry's) with
    :class:`RanUnderLock` wrappers; they run every call but the one Kotti
    makes right after start-up on the same database.
    """
    global _listening
    if os.environ.get("KOTTI_DISABLE_POPULATORS", "0").strip().lower() in _TRUE:
        return  # start-up ran none: Kotti runs none either
    populators = settings.get("kotti.populators")
    if not populators or isinstance(populators, str):
        return  # not resolved yet (not Kotti's main): leave them to whoever runs them
    settings["kotti.populators"] = [
        RanUnderLock(p.populate if isinstance(p, RanUnderLock) else p, engine) for p in populators
    ]
    if not _listening:
        from kotti import metadata

        # Tables dropped (Kotti's test set-up drops and recreates them): populate again.
        sa.event.listen(metadata, "after_drop", _disarm_all)
        _listening = True
    register = getattr(registry, "registerHandler", None)
    if register is not None:
        from pyramid.interfaces import IApplicationCreated

        register(_disarm_all, (IApplicationCreated,))


def use_tables_without(migrations: Any, names: list[str], held_back: set[str]) -> str:
    """A ``kotti.use_tables`` value that keeps Kotti's own create_all off ``held_back``."""
    if not names:
        # Kotti reads an empty value as "all tables": name one that exists
        # (create_all skips existing tables).
        with database.connect(migrations.engine) as connection:
            names = sorted(held_back & records.table_names(connection))[:1]
    return " ".join(names)


#: Kotti's Site Setup page of kotti_migrate (:mod:`kotti_migrate.views`): view name, title.
PAGE_NAME, PAGE_TITLE = "migrations", "Migrations"


def add_site_setup_link(name: str, title: str) -> None:
    """Link the view ``name`` from Kotti's Site Setup menu (once)."""
    from kotti.util import Link
    from kotti.views.site_setup import CONTROL_PANEL_LINKS

    link = Link(name, title=title)
    if link not in CONTROL_PANEL_LINKS:
        CONTROL_PANEL_LINKS.append(link)


#: Logged when a Kotti site is created without a transaction manager tween.
NO_TRANSACTION_MANAGER = (
    "no transaction manager: Kotti's DBSession is never committed nor closed after a request, "
    "so changes are lost and (on an SQLite file served by several threads) every request after "
    "the first one fails; add pyramid_tm to pyramid.includes, as Kotti's app.ini does"
)


def has_transaction_manager(registry: Any) -> bool:
    """True when the app's tweens include ``pyramid_tm``'s (which ends Kotti's session per request)."""
    from pyramid.interfaces import ITweens

    tweens = registry.queryUtility(ITweens)
    if tweens is None:
        return False
    names = [name for name, _ in (tweens.explicit or tweens.implicit())]
    return any(name.startswith("pyramid_tm.") for name in names)


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

    binds = [DBSession.session_factory.kw.get("bind"), getattr(metadata, "bind", None)]
    binds = [bind for bind in binds if bind is not None]
    if not binds:  # nothing bound (pserve): no URL to parse
        return None
    try:
        wanted = make_url(url) if isinstance(url, str) else url
    except Exception:  # a bad URL is reported where the engine is built
        return None
    for bind in binds:
        engine = getattr(bind, "engine", None)  # an Engine's engine is itself; a Connection's
        if engine is not None and getattr(engine, "url", None) == wanted:
            return engine
    return None


def run_in_kotti_transaction(context: Any, engine: Any, options: dict) -> None:
    """Run on Kotti's ``DBSession`` so that migrations may use the ORM, one transaction per step.

    ``DBSession`` is bound to the connection of ``engine`` the migrations run
    on.  Each step (its schema changes, whatever it did through the ORM, its
    version row) runs in a transaction of that connection, which commits as
    the step completes; a failing step rolls back alone.  A step that used
    ``DBSession`` (it joined the step's transaction and Kotti's transaction
    manager) is first committed through the manager, which flushes it; a
    step that did not costs no two-phase commit.  Unlike Kotti's env.py, an
    error is not swallowed: it reaches the caller.
    """
    import transaction
    from kotti import DBSession
    from zope.sqlalchemy import mark_changed

    def end_step(commit: bool) -> None:
        session = DBSession() if DBSession.registry.has() else None
        if session is not None and (session.in_transaction() or session.new or session.dirty
                                    or session.deleted):
            if commit:
                mark_changed(session)
                transaction.commit()  # flushes; the connection's transaction commits below
            else:
                transaction.abort()
            DBSession.remove()
        step = steps.pop()
        step.commit() if commit else step.rollback()

    def commit_step(**kw: Any) -> None:
        end_step(commit=True)
        steps.append(connection.begin())  # the transaction manager begins its next one when used

    callbacks = [*(options.get("on_version_apply") or ()), commit_step]
    with engine.connect() as connection, kotti_session(connection):
        steps = [connection.begin()]
        try:
            context.configure(connection=connection, **{**options, "on_version_apply": callbacks})
            context.run_migrations()
        except BaseException:
            if steps:
                end_step(commit=False)
            raise
        end_step(commit=True)
