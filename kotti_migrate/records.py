"""What the database records: its tables and the rows of every version table.

Nothing here imports revision files.  Reading every version table of a
site costs one table listing and one ``SELECT`` for all existing ones.
"""

from __future__ import annotations

from typing import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection


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
