"""What start-up does differently in a Kotti site: Kotti's engine quirks, its
populators, and its ``kotti.use_tables`` setting.

Imported only when Kotti's own location ``kotti:alembic`` is registered and
Kotti is importable.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

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


def use_tables_without(migrations: Any, names: list[str], held_back: set[str]) -> str:
    """A ``kotti.use_tables`` value that keeps Kotti's own create_all off ``held_back``."""
    if not names:
        # Kotti reads an empty value as "all tables": name one that exists
        # (create_all skips existing tables).
        with database.connect(migrations.engine) as connection:
            names = sorted(held_back & database.table_names(connection))[:1]
    return " ".join(names)
