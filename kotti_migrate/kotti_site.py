"""What start-up does differently in a Kotti site: Kotti's engine quirks, its
populators, and its ``kotti.use_tables`` setting.

Imported only when Kotti's own location ``kotti:alembic`` is registered and
Kotti is importable.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Any, Callable, Sequence

import sqlalchemy as sa

from . import database
from .errors import MigrationsRequired

#: Values of Kotti's ``KOTTI_DISABLE_POPULATORS`` that turn its populators off.
_TRUE = ("1", "y", "yes", "t", "true")


def adjust_for_engine(engine: sa.engine.Engine) -> None:
    """Kotti's per-dialect adjustments of its metadata, before create_all."""
    from kotti.resources import _adjust_for_engine

    _adjust_for_engine(engine)


def run_populators(migrations: Any, behind: Sequence[str]) -> None:
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

    from .environment import kotti_session

    populators = migrations.settings.get("kotti.populators") or []
    if isinstance(populators, str):
        populators = [DottedNameResolver().resolve(name) for name in populators.split()]
    populators = [p.populate if isinstance(p, RanUnderLock) else p for p in populators]
    # Kotti's DBSession bound to this engine for the populators only, in a
    # transaction of their own: the caller's session is left as it was.
    with kotti_session(migrations.engine):
        try:
            for populate in populators:
                populate()
            transaction.commit()
        except sa.exc.DBAPIError as exc:
            transaction.abort()
            if not behind:
                raise
            reason = database.scrub(str(exc.orig).strip().splitlines()[0], migrations.engine.url)
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
            names = sorted(held_back & database.table_names(connection))[:1]
    return " ".join(names)
