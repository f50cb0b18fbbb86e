"""Start-up the long way: make the database follow the code when the app starts.

The start-up hook (:mod:`kotti_migrate.boot`) comes here when the cheap
at-head check cannot tell (a fresh database, a location new or behind, a
changed folder); ``kotti-migrate <ini> plan`` and ``prepare`` too.  Under a
database-wide lock, in three steps:

1. :func:`read_state` reads what the database and the code say (version
   tables, revision indexes, which of each location's tables exist);
2. :func:`kotti_migrate.plan.plan` decides, per location, from that state
   alone (the decision table is in :mod:`kotti_migrate.plan`);
3. :func:`apply` carries the plan out (migrations, ``create_all``, stamps,
   Kotti's populators) and logs every decision on the ``kotti_migrate``
   logger.
"""

from __future__ import annotations

import datetime
import logging
import time
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from . import database, records
from .kotti_site import adjust_for_engine, run_populators
from .plan import LocationState, Plan, RequiredTable, SiteState, plan, tables_text, upgrade_command
from .scripts import created_tables
from .settings import Options

if TYPE_CHECKING:  # pragma: no cover
    from .commands import Migrations, RunReport

log = logging.getLogger("kotti_migrate")



# -- reading and applying ----------------------------------------------------------


def read_state(
    migrations: Migrations, options: Options, config_file: str, auto_upgrade: bool | None = None
) -> SiteState:
    """Read what :func:`plan` needs (under the lock: another worker may just have acted)."""
    if auto_upgrade is None:
        auto_upgrade = options.auto_upgrade
    with database.connect(migrations.engine) as connection:
        existing, versions, fresh = records.read_records(
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
        unmodelled: frozenset[str] = frozenset()
        if creates_tables and index.heads and not owned and (fresh or current is None):
            # New to the database, no model of its own: do its revisions create tables?
            modelled = {table.name for table in migrations.metadata.tables.values()}
            unmodelled = created_tables(loc) - modelled
        states.append(
            LocationState(loc, current, tuple(index.heads), index.revisions, owned, present,
                          differences, unmodelled)
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
            "tables of locations not at a known head are left as they are (not created by create_all): %s",
            tables_text(held_back),
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
    for loc in planned.installs:  # after create_all: their revisions may use the models' tables
        for report in migrations.upgrade(loc):
            planned.reports.append(report)
            _log_report(report)
    for loc in planned.stamps:
        report = migrations.stamp(loc, "heads")
        planned.reports.append(report)
        log.info("%s stamped at %s", loc.spec, ", ".join(report.after) or "base (no revisions yet)")


def _create_all(migrations: Migrations, held_back: set[str], existing: frozenset[str] | None) -> list[str]:
    """create_all, except ``held_back`` (and tables Kotti's ``kotti.use_tables`` leaves out).

    :returns: the names of the tables created
    """
    metadata = migrations.metadata
    tables = tables_to_create(migrations, held_back)
    if existing is None:
        with database.connect(migrations.engine) as connection:
            existing = frozenset(records.table_names(connection))
    if tables is None and not {table.name for table in metadata.tables.values()} - existing:
        return []  # nothing to create (at head, the usual case): no need to sort the tables
    candidates = tables if tables is not None else metadata.sorted_tables
    missing = [table.name for table in candidates if table.name not in existing]
    if not missing:
        return []
    if migrations.uses_kotti:
        adjust_for_engine(migrations.engine)
    with migrations.engine.begin() as connection:
        metadata.create_all(connection, tables=tables)
    return missing


def tables_to_create(migrations: Migrations, held_back: set[str]) -> list[Any] | None:
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
    if report.output.strip():
        log.info("%s: its env.py wrote:\n%s", report.location.spec, report.output.rstrip())
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
    started = time.perf_counter()
    with database.database_lock(migrations.engine, options.lock_timeout):
        state = read_state(migrations, options, config_file, auto_upgrade)
        planned = plan(state)
        apply(migrations, planned, state)
        if migrations.uses_kotti:
            held = [d.location for d in planned.decisions if d.action == "warn"]
            behind = [upgrade_command(config_file, loc) for loc in held]
            run_populators(migrations.settings, migrations.engine, behind)
    planned.seconds = time.perf_counter() - started
    planned.finished = datetime.datetime.now().astimezone()
    return planned


def preview(
    migrations: Migrations, config_file: str | None = None, auto_upgrade: bool | None = None
) -> tuple[SiteState, Plan]:
    """What :func:`run_startup` would do, without doing it (reads only)."""
    config_file = config_file or migrations.advice_ini
    state = read_state(migrations, migrations.options, config_file, auto_upgrade)
    return state, plan(state)
