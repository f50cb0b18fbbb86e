"""Start-up decisions: make the database follow the code when the app starts.

Runs once per app creation, as a Pyramid config action (so in a Kotti
site before ``initialize_sql``), under a database-wide lock:

==========================================  =============  =======================
Database state                              auto-upgrade   What happens
==========================================  =============  =======================
empty (fresh)                               any            create_all, stamp every
                                                           location at its head(s)
location without version table, its        any            create_all creates them,
tables absent (add-on just installed)                      stamped at head(s)
location without version table, its        any            upgraded from base to
tables there, differing from the models                    head(s), then recorded
location without version table, its        any            stamped at head(s)
tables there, matching the models
location behind its head(s)                 on             upgraded before serving
location behind its head(s)                 off            WARNING with the command
database at a revision the code lacks       on             start-up stops (error)
database at a revision the code lacks       off            WARNING
a migration fails                           any            start-up stops (error)
==========================================  =============  =======================

Every decision is logged at INFO on the ``kotti_migrate`` logger.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from typing import Any, Mapping

from . import database
from .commands import Migrations, RunReport
from .errors import UnknownDatabaseRevision
from .locations import Location
from .settings import Options, kotti_available, startup_disabled

log = logging.getLogger("kotti_migrate")



@dataclass
class Decision:
    """What start-up did (or advised) for one location."""

    location: Location
    action: str  # "stamp", "upgrade", "adopt", "ok", "warn"
    detail: str = ""


def command_hint(settings: Mapping[str, Any], location: Location) -> str:
    """The exact ``kotti-migrate`` command that upgrades ``location``."""
    ini = settings.get("kotti_migrate.config_file")
    if not ini:
        ini = next(
            (arg for arg in sys.argv[1:] if arg.endswith(".ini") and os.path.isfile(arg.split("#")[0])),
            "<config.ini>",
        )
    return f"kotti-migrate {ini} upgrade --scripts={location.spec}"


def on_startup(settings: Mapping[str, Any], registry: Any = None) -> list[Decision]:
    """The start-up hook: does nothing when disabled or while the CLI loads the app."""
    options = Options.from_settings(settings)
    if not options.startup or startup_disabled():
        return []
    engine = None
    if kotti_available():
        from .environment import kotti_bound_engine

        # Kotti's session already bound (Kotti's test fixtures): work on that
        # engine, the same database even for sqlite:// (in memory).
        engine = kotti_bound_engine(settings.get("sqlalchemy.url"))
    migrations = Migrations(settings, registry, here=os.getcwd(), engine=engine)
    try:
        decisions = run_startup(migrations)
        held_back = _held_back_tables(migrations, decisions)
        if held_back and migrations.uses_kotti and isinstance(settings, dict):
            # Kotti's initialize_sql runs create_all after this hook: keep it off them too.
            settings["kotti.use_tables"] = _kotti_use_tables(migrations, held_back)
        return decisions
    finally:
        # Kotti's DBSession and metadata were bound only for each piece of
        # work (environment.kotti_session) and are as the caller left them.
        migrations.dispose()


def _log_report(report: RunReport) -> None:
    for step in report.steps:
        log.info(
            "kotti_migrate: %s %s %s (%s) in %.3f s",
            report.location.spec,
            step.direction,
            step.revision,
            step.description,
            step.seconds,
        )


def run_startup(migrations: Migrations) -> list[Decision]:
    """Bring the database to the code, under the database-wide start-up lock."""
    options = migrations.options
    engine = migrations.engine
    decisions: list[Decision] = []
    with database.database_lock(engine, options.lock_timeout):
        # State is read only once the lock is held: another worker may just
        # have migrated or created everything.
        with database.connect(engine) as connection:
            before = database.table_names(connection)
            versions = database.read_versions(
                connection, [loc.version_table for loc in migrations.locations], before
            )
        fresh = not before
        creates_tables = migrations.metadata is not None and options.create_all
        to_stamp: list[Location] = []
        for loc in migrations.locations:
            current = versions[loc.version_table]
            if (fresh or current is None) and not creates_tables:
                # Nothing creates the tables from models: the migrations must.
                log.info("kotti_migrate: %s has no version table and no models to create "
                         "tables from: upgrading from base to head", loc.spec)
                for report in migrations.upgrade(loc):
                    _log_report(report)
                decisions.append(Decision(loc, "upgrade", "no models to create tables from"))
                continue
            if fresh:
                to_stamp.append(loc)
                decisions.append(Decision(loc, "stamp", "fresh database"))
                continue
            if current is None:
                existing = migrations.owned_tables(loc) & before
                if existing and not migrations.schema_differences(existing):
                    # Created by an earlier create_all from today's models
                    # (an add-on installed after the first boot, never stamped).
                    log.info(
                        "kotti_migrate: %s has no version table; its tables exist and match "
                        "the models (%s): stamped at head",
                        loc.spec,
                        ", ".join(sorted(existing)),
                    )
                    to_stamp.append(loc)
                    decisions.append(Decision(loc, "stamp", "tables match the models"))
                elif existing:
                    log.info(
                        "kotti_migrate: %s has no version table but its tables exist (%s): "
                        "upgrading from base to head",
                        loc.spec,
                        ", ".join(sorted(existing)),
                    )
                    for report in migrations.upgrade(loc):
                        _log_report(report)
                    decisions.append(Decision(loc, "adopt", ", ".join(sorted(existing))))
                else:
                    log.info(
                        "kotti_migrate: %s is new to this database: its tables are "
                        "created and it is stamped at head",
                        loc.spec,
                    )
                    to_stamp.append(loc)
                    decisions.append(Decision(loc, "stamp", "new location"))
                continue
            decisions.append(_follow_head(migrations, loc, current, options.auto_upgrade))
        held_back = _held_back_tables(migrations, decisions)
        if held_back:
            log.info(
                "kotti_migrate: tables of locations not at a known head are left as they are "
                "(not created by create_all): %s",
                ", ".join(sorted(held_back)),
            )
        _create_all(migrations, held_back)
        for loc in to_stamp:
            report = migrations.stamp(loc, "heads")
            log.info("kotti_migrate: %s stamped at %s", loc.spec, ", ".join(report.after))
        if migrations.uses_kotti:
            _run_kotti_populators(migrations)
    return decisions


def _follow_head(
    migrations: Migrations, loc: Location, current: tuple[str, ...], auto_upgrade: bool
) -> Decision:
    index = migrations.index(loc)
    unknown = sorted(set(current) - index.revisions)
    shown = ", ".join(current) or "base"
    heads = ", ".join(index.heads)
    if unknown:
        message = (
            f"kotti_migrate: the database has {loc.spec} at {', '.join(unknown)}, "
            f"a revision this code does not know (heads: {heads}); was the code rolled back?"
        )
        if auto_upgrade:
            raise UnknownDatabaseRevision(message)
        log.warning(message)
        return Decision(loc, "warn", "unknown revision")
    if set(current) == set(index.heads):
        log.info("kotti_migrate: %s is at its head %s", loc.spec, heads)
        return Decision(loc, "ok")
    if auto_upgrade:
        log.info("kotti_migrate: upgrading %s from %s to %s", loc.spec, shown, heads)
        for report in migrations.upgrade(loc):
            _log_report(report)
        return Decision(loc, "upgrade", f"{shown} -> {heads}")
    log.warning(
        "kotti_migrate: %s is at %s, behind its head %s; run: %s",
        loc.spec,
        shown,
        heads,
        command_hint(migrations.settings, loc),
    )
    return Decision(loc, "warn", "pending migrations")


def _held_back_tables(migrations: Migrations, decisions: list[Decision]) -> set[str]:
    """Tables of locations left behind (pending or unknown revision, only warned about).

    create_all must not create them: the location's own migrations will
    (``kotti-migrate upgrade`` would fail on a table create_all made).
    """
    held: set[str] = set()
    for decision in decisions:
        if decision.action == "warn":
            held |= migrations.owned_tables(decision.location)
    return held


def _tables_to_create(migrations: Migrations, held_back: set[str] = frozenset()) -> list[Any] | None:
    """The tables create_all may create (None: all of the metadata)."""
    metadata = migrations.metadata
    tables = None
    if migrations.uses_kotti:
        names = str(migrations.settings.get("kotti.use_tables", "") or "").split()
        if names:
            tables = [metadata.tables[name] for name in names]
    if held_back:
        tables = [table for table in (tables or metadata.sorted_tables) if table.name not in held_back]
    return tables


def _kotti_use_tables(migrations: Migrations, held_back: set[str]) -> str:
    """``kotti.use_tables`` that keeps Kotti's own create_all off ``held_back`` tables."""
    names = [table.name for table in _tables_to_create(migrations, held_back) or []]
    if not names:
        # Kotti reads an empty value as "all tables": name one that exists
        # (create_all skips existing tables).
        with database.connect(migrations.engine) as connection:
            names = sorted(held_back & database.table_names(connection))[:1]
    return " ".join(names)


def _create_all(migrations: Migrations, held_back: set[str] = frozenset()) -> None:
    metadata = migrations.metadata
    if metadata is None or not migrations.options.create_all:
        return
    tables = _tables_to_create(migrations, held_back)
    if migrations.uses_kotti:
        from kotti.resources import _adjust_for_engine

        _adjust_for_engine(migrations.engine)
    metadata.create_all(migrations.engine, tables=tables)


def _run_kotti_populators(migrations: Migrations) -> None:
    """Run Kotti's populators under the lock, so only one worker creates the root."""
    if os.environ.get("KOTTI_DISABLE_POPULATORS", "0").strip().lower() in ("1", "y", "yes", "t", "true"):
        return  # Kotti's own switch, read as Kotti reads it
    import transaction
    from pyramid.path import DottedNameResolver

    from .environment import kotti_session

    populators = migrations.settings.get("kotti.populators") or []
    if isinstance(populators, str):
        populators = [DottedNameResolver().resolve(name) for name in populators.split()]
    with kotti_session(migrations.engine):
        try:
            for populate in populators:
                populate()
            transaction.commit()
        except BaseException:
            transaction.abort()
            raise
