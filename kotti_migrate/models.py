"""What the app's models say: which tables each location owns, which tables every page needs.

Reads SQLAlchemy's mappers only; knows nothing of Alembic, the database or Kotti.
"""

from __future__ import annotations

from typing import Any, Mapping

import sqlalchemy as sa

from .locations import Location


def owned_tables(settings: Mapping[str, Any], metadata: sa.MetaData | None, location: Location) -> set[str]:
    """Tables that belong to a location.

    From the setting ``kotti_migrate.tables.<package>`` when given, else the
    tables that mapped classes defined in the location's package define
    themselves: a content type's own table, not the tables it inherits
    (``nodes``, ``contents`` of Kotti's ``Content``).
    """
    override = settings.get(f"kotti_migrate.tables.{location.package}")
    if override is not None:
        return set(str(override).split())
    if metadata is None:
        return set()
    prefix = location.package
    owned: set[str] = set()
    for mapper in mappers():
        module = getattr(mapper.class_, "__module__", "") or ""
        if module != prefix and not module.startswith(prefix + "."):
            continue
        for table in own_tables(mapper):
            if table.metadata is metadata and table.name in metadata.tables:
                owned.add(table.name)
    return owned


def polymorphic_tables(metadata: sa.MetaData | None) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Tables that every query of a polymorphically loaded base class joins.

    Kotti's ``Node`` loads with ``with_polymorphic="*"``: each content type's
    table is part of every query of nodes, so every page needs it.

    :returns: table name -> (name of the base class, its mapped columns)
    """
    found: dict[str, tuple[str, tuple[str, ...]]] = {}
    if metadata is None:
        return found
    for mapper in mappers():
        if mapper.inherits is not None or not mapper.with_polymorphic:
            continue
        if mapper.with_polymorphic[0] != "*":
            continue
        base = f"{mapper.class_.__module__}.{mapper.class_.__name__}"
        for sub in mapper.self_and_descendants:
            for table in own_tables(sub):
                if table.metadata is metadata and table.name in metadata.tables:
                    found[table.name] = (base, tuple(column.name for column in table.columns))
    return found


def mappers() -> list[Any]:
    """Every configured mapper of every declarative registry."""
    from sqlalchemy.orm import mapperlib

    return [mapper for registry in list(mapperlib._all_registries()) for mapper in list(registry.mappers)]


def own_tables(mapper: Any) -> list[sa.Table]:
    """The tables a mapped class defines itself (joined-table inheritance: not its parents')."""
    table = mapper.local_table
    if mapper.inherits is not None and table is mapper.inherits.local_table:
        return []  # single-table inheritance: the parent's table
    return [table] if isinstance(table, sa.Table) else []
