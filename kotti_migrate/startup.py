"""Start-up: make the database follow the code when the app starts.

Runs once per app creation, as a Pyramid config action (so in a Kotti
site before ``initialize_sql``), under a database-wide lock, in three steps:

1. :func:`read_state` reads what the database and the code say (version
   tables, revision indexes, which of each location's tables exist);
2. :func:`plan` decides, per location, from that state alone: it reads
   nothing and changes nothing;
3. :func:`apply` carries the plan out (migrations, ``create_all``, stamps,
   Kotti's populators) and logs every decision on the ``kotti_migrate``
   logger.

==========================================  =============  =========================
Database state                              auto-upgrade   What happens
==========================================  =============  =========================
empty (or only empty version tables)        any            create_all, stamp every
                                                           location at its head(s)
location without version rows, its          any            create_all creates them,
tables absent (add-on just installed)                      stamped at head(s)
location without version rows, its          any            upgraded from base to
tables there, differing from the models                    head(s), then recorded
location without version rows, its          any            stamped at head(s)
tables there, matching the models
location behind its head(s)                 on             upgraded before serving
location behind its head(s)                 off            WARNING with the command;
                                                           start-up stops instead when
                                                           a table every page needs is
                                                           missing or lacks columns
database at a revision the code lacks       on             start-up stops (error)
database at a revision the code lacks       off            WARNING
a migration fails                           any            start-up stops (error)
==========================================  =============  =========================
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any, Mapping

import sqlalchemy as sa

from . import database
from .commands import Migrations, RunReport
from .errors import MigrateError, MigrationsRequired, UnknownDatabaseRevision
from .locations import Location
from .settings import Options, kotti_available, startup_disabled

log = logging.getLogger("kotti_migrate")


# -- what start-up reads -----------------------------------------------------------


@dataclass(frozen=True)
class LocationState:
    """What the database and the code say about one location.

    :ivar current: revisions in the version table; None when it is missing
        (an empty version table reads as ``()``)
    :ivar heads: head revisions on disk
    :ivar known: every revision id on disk
    :ivar owned: tables the location's own models define (not read, so empty, for a
        location at its head)
    :ivar existing: those of ``owned`` that exist in the database
    :ivar differences: for a location without version rows whose tables
        exist, what the models would change in them (empty: they match);
        None when not compared
    """

    location: Location
    current: tuple[str, ...] | None
    heads: tuple[str, ...]
    known: frozenset[str]
    owned: frozenset[str] = frozenset()
    existing: frozenset[str] = frozenset()
    differences: tuple[str, ...] | None = None

    @property
    def unstamped(self) -> bool:
        """No version table; or one without rows while the location's tables exist.

        An empty version table (``stamp --rev base``) beside the location's
        tables says nothing about them: they are compared with the models as
        if the table were missing.  Without any of its tables, an empty
        version table means what Alembic says: the location is at base.
        """
        return self.current is None or (not self.current and bool(self.existing) and bool(self.heads))

    @property
    def at_head(self) -> bool:
        """At its head(s); a location without revisions is, once its version table exists."""
        return self.current is not None and set(self.current) == set(self.heads)


@dataclass(frozen=True)
class RequiredTable:
    """A table that every query of a polymorphic base class loads.

    In Kotti every page queries ``Node``, which joins every content type's
    table: while one of them is missing (or lacks a column), no page works.

    :ivar missing_columns: None when the table itself is missing
    """

    name: str
    base: str
    missing_columns: tuple[str, ...] | None


@dataclass(frozen=True)
class SiteState:
    """Everything :func:`plan` decides from."""

    locations: tuple[LocationState, ...]
    fresh: bool
    creates_tables: bool
    auto_upgrade: bool
    config_file: str = "<config.ini>"
    #: Required tables the database lacks (or lacks columns of); read only
    #: when a location is not at its head.
    required: tuple[RequiredTable, ...] = ()
    #: Every table of the database when it was read.
    tables: frozenset[str] = frozenset()


# -- what start-up decides ---------------------------------------------------------


@dataclass
class Decision:
    """What start-up does (or advises) for one location.

    :ivar action: ``stamp`` (record the head(s) after create_all),
        ``upgrade`` (run migrations before create_all), ``adopt`` (upgrade
        from base: tables that predate the migrations), ``ok`` (at head),
        ``warn`` (left as it is, with a warning)
    :ivar reason: ``fresh``, ``new``, ``match``, ``no-models``, ``pending``,
        ``unknown`` or ``head``
    :ivar message: the log line
    """

    location: Location
    action: str
    reason: str = ""
    message: str = ""
    level: int = logging.INFO
    #: Tables of this location that create_all must leave alone.
    held_back: frozenset[str] = frozenset()


@dataclass
class Plan:
    """The decisions of one start-up; ``error`` stops it before anything changes."""

    decisions: list[Decision] = field(default_factory=list)
    error: MigrateError | None = None
    #: Filled by :func:`apply`: what the migrations did, and the tables create_all made.
    reports: list[RunReport] = field(default_factory=list)
    created: list[str] = field(default_factory=list)

    @property
    def held_back(self) -> set[str]:
        """Tables create_all must not create (their locations' migrations will)."""
        held: set[str] = set()
        for decision in self.decisions:
            held |= decision.held_back
        return held

    @property
    def stamps(self) -> list[Location]:
        return [d.location for d in self.decisions if d.action == "stamp"]


def upgrade_command(config_file: str, location: Location) -> str:
    """The exact ``kotti-migrate`` command that upgrades ``location``."""
    return f"kotti-migrate {config_file} upgrade --scripts={location.spec}"


def _tables(names: frozenset[str] | set[str]) -> str:
    return ", ".join(sorted(names))


def plan(state: SiteState) -> Plan:
    """Decide what start-up does: reads nothing, changes nothing."""
    result = Plan()
    for loc_state in state.locations:
        result.decisions.append(_decide(state, loc_state))
    unknown_errors = [d for d in result.decisions if d.action == "error"]
    if unknown_errors:
        result.error = UnknownDatabaseRevision(unknown_errors[0].message)
        return result
    result.error = _cannot_serve(state, result)
    return result


def _decide(state: SiteState, ls: LocationState) -> Decision:
    loc = ls.location
    heads = ", ".join(ls.heads) or "no revisions yet"
    if (state.fresh or ls.unstamped) and not state.creates_tables:
        return Decision(
            loc, "upgrade", "no-models",
            f"{loc.spec} has no version table and no models to create tables from: "
            "upgrading from base to head",
        )  # fmt: skip
    if state.fresh:
        return Decision(loc, "stamp", "fresh")
    if ls.unstamped:
        table = "no version table" if ls.current is None else "an empty version table"
        if ls.existing and not ls.differences:
            return Decision(
                loc, "stamp", "match",
                f"{loc.spec} has {table}; its tables exist and match the models "
                f"({_tables(ls.existing)}): stamped at head",
            )  # fmt: skip
        if ls.existing:
            return Decision(
                loc, "adopt", "differ",
                f"{loc.spec} has {table} but its tables exist ({_tables(ls.existing)}) and "
                "differ from the models: upgrading from base to head",
            )  # fmt: skip
        created = f" ({_tables(ls.owned)})" if ls.owned else ""
        return Decision(
            loc, "stamp", "new",
            f"{loc.spec} is new to this database: its tables{created} are created "
            "and it is stamped at head",
        )  # fmt: skip
    current = ", ".join(ls.current or ()) or "base"
    unknown = sorted(set(ls.current or ()) - ls.known)
    if unknown:
        message = (
            f"the database has {loc.spec} at {', '.join(unknown)}, a revision this code "
            f"does not know (heads: {heads}); was the code rolled back?"
        )
        if state.auto_upgrade:
            return Decision(loc, "error", "unknown", message, logging.ERROR)
        return Decision(loc, "warn", "unknown", message, logging.WARNING, ls.owned)
    if ls.at_head:
        where = f"is at its head {heads}" if ls.heads else "has no revisions yet"
        return Decision(loc, "ok", "head", f"{loc.spec} {where}")
    if state.auto_upgrade:
        return Decision(loc, "upgrade", "pending", f"upgrading {loc.spec} from {current} to {heads}")
    tables = f" ({_tables(ls.owned)})" if ls.owned else ""
    return Decision(
        loc, "warn", "pending",
        f"{loc.spec} is at {current}, behind its head {heads}; pages using its tables{tables} "
        f"may fail until it is upgraded; run: {upgrade_command(state.config_file, loc)}",
        logging.WARNING, ls.owned,
    )  # fmt: skip


def _cannot_serve(state: SiteState, result: Plan) -> MigrateError | None:
    """The error to stop with when a location left behind breaks every page."""
    held = {d.location.spec: d for d in result.decisions if d.action == "warn"}
    if not held:
        return None
    by_spec = {ls.location.spec: ls for ls in state.locations}
    for required in state.required:
        decision = next((d for d in held.values() if required.name in d.held_back), None)
        if decision is None:
            continue
        loc = decision.location
        ls = by_spec[loc.spec]
        if required.missing_columns is None:
            what = f"table {required.name} is missing"
        else:
            what = f"table {required.name} lacks column(s) {', '.join(required.missing_columns)}"
        current = ", ".join(ls.current or ()) or "base"
        return MigrationsRequired(
            f"{loc.spec} is at {current}, behind its head {', '.join(ls.heads)}, and the site "
            f"cannot serve until it is upgraded: {what} (every query of {required.base} "
            f"loads it); run: {upgrade_command(state.config_file, loc)}, "
            "or start with kotti_migrate.auto_upgrade = true"
        )
    return None


# -- reading and applying ----------------------------------------------------------


def read_state(
    migrations: Migrations, options: Options, config_file: str, auto_upgrade: bool | None = None
) -> SiteState:
    """Read what :func:`plan` needs (under the lock: another worker may just have acted)."""
    if auto_upgrade is None:
        auto_upgrade = options.auto_upgrade
    with database.connect(migrations.engine) as connection:
        existing, versions, fresh = database.read_records(
            connection, [loc.version_table for loc in migrations.locations]
        )
    creates_tables = migrations.metadata is not None and options.create_all
    states = []
    for loc in migrations.locations:
        current = versions[loc.version_table]
        index = migrations.index(loc)
        at_head = bool(current) and set(current) == set(index.heads)
        # A location at its head needs no table list (the usual boot): skip walking the mappers.
        owned = frozenset(migrations.owned_tables(loc)) if creates_tables and not at_head else frozenset()
        present = owned & existing
        differences = None
        if not fresh and not current and present:  # unstamped: compare with the models
            differences = tuple(migrations.schema_differences(set(present)))
        states.append(
            LocationState(loc, current, tuple(index.heads), frozenset(index.revisions), owned, present,
                          differences)
        )  # fmt: skip
    required: tuple[RequiredTable, ...] = ()
    if creates_tables and any(s.current is not None and not s.at_head for s in states):
        required = _missing_required(migrations, existing)
    return SiteState(
        tuple(states), fresh, creates_tables, auto_upgrade, config_file, required, frozenset(existing)
    )


def _missing_required(migrations: Migrations, existing: set[str]) -> tuple[RequiredTable, ...]:
    """Tables every query of a polymorphic base loads that the database lacks (or lacks columns of)."""
    found = []
    with database.connect(migrations.engine) as connection:
        inspector = sa.inspect(connection)
        for name, (base, columns) in sorted(migrations.polymorphic_tables().items()):
            if name not in existing:
                found.append(RequiredTable(name, base, None))
                continue
            present = {column["name"] for column in inspector.get_columns(name)}
            missing = tuple(sorted(set(columns) - present))
            if missing:
                found.append(RequiredTable(name, base, missing))
    return tuple(found)


def apply(migrations: Migrations, planned: Plan, state: SiteState) -> None:
    """Carry out a plan: migrations first, then create_all and stamps."""
    if planned.error is not None:
        raise planned.error
    migrated = False
    for decision in planned.decisions:
        if decision.message:
            log.log(decision.level, "%s", decision.message)
        if decision.action in ("upgrade", "adopt"):
            migrated = True
            for report in migrations.upgrade(decision.location):
                planned.reports.append(report)
                _log_report(report)
    held_back = planned.held_back
    if held_back:
        log.info(
            "tables of locations not at a known head are left as they are "
            "(not created by create_all): %s",
            _tables(held_back),
        )
    if state.creates_tables:
        existing = None if migrated else state.tables
        created = planned.created = _create_all(migrations, held_back, existing)
        if created:
            what = f"fresh database {database.mask_url(migrations.engine.url)}: " if state.fresh else ""
            log.info(
                "%screated %d table(s) from the models: %s",
                what, len(created), ", ".join(created),
            )  # fmt: skip
    for loc in planned.stamps:
        report = migrations.stamp(loc, "heads")
        planned.reports.append(report)
        log.info(
            "%s stamped at %s", loc.spec, ", ".join(report.after) or "base (no revisions yet)"
        )


def _create_all(migrations: Migrations, held_back: set[str], existing: frozenset[str] | None) -> list[str]:
    """create_all, except ``held_back`` (and tables Kotti's ``kotti.use_tables`` leaves out).

    :returns: the names of the tables created
    """
    metadata = migrations.metadata
    tables = _tables_to_create(migrations, held_back)
    if existing is None:
        with database.connect(migrations.engine) as connection:
            existing = frozenset(database.table_names(connection))
    if tables is None and not {table.name for table in metadata.tables.values()} - existing:
        return []  # nothing to create (at head, the usual case): no need to sort the tables
    candidates = tables if tables is not None else metadata.sorted_tables
    missing = [table.name for table in candidates if table.name not in existing]
    if not missing:
        return []
    if migrations.uses_kotti:
        from .kotti_site import adjust_for_engine

        adjust_for_engine(migrations.engine)
    with migrations.engine.begin() as connection:
        metadata.create_all(connection, tables=tables)
    return missing


def _tables_to_create(migrations: Migrations, held_back: set[str]) -> list[Any] | None:
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


def _log_report(report: RunReport) -> None:
    for step in report.steps:
        log.info(
            "%s %s %s (%s) in %.3f s",
            report.location.spec,
            step.direction,
            step.revision,
            step.description,
            step.seconds,
        )


def run_startup(
    migrations: Migrations, config_file: str | None = None, auto_upgrade: bool | None = None
) -> Plan:
    """Read, plan and apply under the database-wide start-up lock.

    In a Kotti site, Kotti's populators run under the lock too (so workers
    booting a fresh database together create the root document once).

    :param auto_upgrade: overrides ``kotti_migrate.auto_upgrade`` (``prepare``)
    """
    options = migrations.options
    config_file = config_file or migrations.advice_ini
    with database.database_lock(migrations.engine, options.lock_timeout):
        state = read_state(migrations, options, config_file, auto_upgrade)
        planned = plan(state)
        apply(migrations, planned, state)
        if migrations.uses_kotti:
            from .kotti_site import run_populators

            held = [d.location for d in planned.decisions if d.action == "warn"]
            run_populators(migrations, [upgrade_command(config_file, loc) for loc in held])
    return planned


def preview(
    migrations: Migrations, config_file: str | None = None, auto_upgrade: bool | None = None
) -> tuple[SiteState, Plan]:
    """What :func:`run_startup` would do, without doing it (reads only)."""
    config_file = config_file or migrations.advice_ini
    state = read_state(migrations, migrations.options, config_file, auto_upgrade)
    return state, plan(state)


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
        planned = run_startup(migrations)
        if migrations.uses_kotti and isinstance(settings, dict):
            # Kotti's populators ran under the lock: Kotti's initialize_sql need not run them again.
            from .kotti_site import skip_kotti_rerun

            skip_kotti_rerun(settings, registry, migrations.engine)
        if migrations.uses_kotti and planned.held_back and isinstance(settings, dict):
            # Kotti's initialize_sql runs create_all after this hook: keep it off them too.
            from .kotti_site import use_tables_without

            settings["kotti.use_tables"] = use_tables_without(
                migrations, [t.name for t in _tables_to_create(migrations, planned.held_back) or []],
                planned.held_back,
            )
        return planned.decisions
    except MigrateError as exc:
        log.error("start-up failed: %s", exc)
        raise
    finally:
        migrations.dispose()
