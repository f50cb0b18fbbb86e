"""The start-up hook: what ``config.include('kotti_migrate')`` runs when the app is made.

Most boots find the database at the head of every location.  :func:`start_up`
checks that first, cheaply (:func:`at_head`): the site index of
:mod:`kotti_migrate.cache` says which locations the site has and their heads
(a few ``stat`` calls, one file read), and one query under the start-up lock
reads every version table.  No revision file, model, table list or Alembic
is read or imported.  Anything else (a location unknown to the index, not at
its head, a fresh database, a changed folder) takes the long way:
:func:`kotti_migrate.startup.run_startup` reads, plans and applies.
"""

from __future__ import annotations

import datetime
import logging
import time
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import sqlalchemy as sa

from . import database, records
from .cache import read_site, remember_site, site_key
from .errors import MigrateError
from .kotti_site import is_kotti_site, kotti_bound_engine, run_populators, skip_kotti_rerun
from .locations import Location, registered_specs, split_setting
from .settings import Options, app_folder, kotti_available, startup_disabled

if TYPE_CHECKING:  # pragma: no cover
    from .plan import Decision, Plan

log = logging.getLogger("kotti_migrate")

#: The registry attribute :func:`start_up` records what it did on: a
#: :class:`~kotti_migrate.plan.Plan`, or an :class:`AtHead` (the Site Setup
#: "Migrations" page shows it).
STARTUP_RECORD = "kotti_migrate_startup"


class AtHead:
    """What an at-head start-up did: nothing but check (read like a :class:`~kotti_migrate.plan.Plan`)."""

    created: Sequence[str] = ()
    reports: Sequence[Any] = ()
    error = None

    def __init__(
        self, locations: list[tuple[Location, tuple[str, ...]]], auto_upgrade: bool, config_file: str
    ) -> None:
        self.locations = locations
        self.auto_upgrade = auto_upgrade
        self.config_file = config_file
        self.seconds: float | None = None
        self.finished: datetime.datetime | None = None

    @property
    def decisions(self) -> list[Decision]:
        """The planner's decisions for this state (every location ``ok``)."""
        from .plan import LocationState, SiteState, plan

        states = tuple(LocationState(loc, heads, heads, frozenset()) for loc, heads in self.locations)
        return plan(SiteState(states, False, False, self.auto_upgrade, self.config_file)).decisions


def on_startup(
    settings: Mapping[str, Any], registry: Any = None, options: Options | None = None
) -> list[Decision]:
    """Run start-up (:func:`start_up`) and return its decisions (the library's form)."""
    record = start_up(settings, registry, options)
    return list(record.decisions) if record is not None else []


def start_up(
    settings: Mapping[str, Any], registry: Any = None, options: Options | None = None
) -> Plan | AtHead | None:
    """The start-up hook: does nothing (None) when disabled or while the CLI loads the app.

    :param options: the settings as ``config.include('kotti_migrate')``
        parsed them (parsed here when not given)
    :raises MigrateError: start-up failed (logged, with the advice)
    """
    if options is None:
        options = Options.from_settings(settings)
    if not options.startup or startup_disabled():
        return None
    engine = None
    if kotti_available():
        # Kotti's session already bound (Kotti's test fixtures): work on that
        # engine, the same database even for sqlite:// (in memory).
        engine = kotti_bound_engine(settings.get("sqlalchemy.url"))
    here = app_folder(settings)
    specs = registered_specs(settings, registry)
    uses_kotti = is_kotti_site(specs)
    kotti_specs = split_setting(settings.get("kotti.alembic_dirs")) if uses_kotti else []
    key = site_key(specs, here, kotti_specs, settings)
    try:
        record: Plan | AtHead | None = None
        used_engine = None
        use_tables = None
        if specs:
            record, used_engine = at_head(settings, options, here, key, engine, uses_kotti)
        if record is None:
            from .commands import Migrations  # the long way: revision graphs, models, Alembic
            from .kotti_site import use_tables_without
            from .startup import run_startup, tables_to_create

            migrations = Migrations(settings, registry, here=here, engine=engine, options=options)
            try:
                record = run_startup(migrations)
                used_engine = migrations.engine
                held_back = record.held_back
                if migrations.uses_kotti and held_back:
                    names = [t.name for t in tables_to_create(migrations, held_back) or []]
                    use_tables = use_tables_without(migrations, names, held_back)
                if specs and migrations.locations:
                    remember_site(options.cache_dir, key, here, migrations.locations)
            finally:
                migrations.dispose()
        if registry is not None:
            setattr(registry, STARTUP_RECORD, record)
        if uses_kotti and isinstance(settings, dict):
            # Kotti's populators ran under the lock: Kotti's initialize_sql need not run them again.
            skip_kotti_rerun(settings, registry, used_engine)
            if use_tables is not None:
                # Kotti's initialize_sql runs create_all after this hook: keep it off them too.
                settings["kotti.use_tables"] = use_tables
        return record
    except MigrateError as exc:
        log.error("start-up failed: %s", exc)
        raise


def at_head(
    settings: Mapping[str, Any],
    options: Options,
    here: str,
    key: str,
    engine: sa.engine.Engine | None,
    uses_kotti: bool,
) -> tuple[AtHead | None, sa.engine.Engine | None]:
    """Start-up's usual case, cheaply: every location known and at its head(s).

    Reads the site index and, under the start-up lock, the version tables
    (one query); in a Kotti site Kotti's populators run under the lock as on
    the long way.  Nothing else is read: no revision file, no model, no
    table list (Kotti's ``initialize_sql`` creates missing tables of its
    models right after; an app relying on kotti_migrate's own
    ``create_all`` gets one table listing).

    :returns: the record and the engine used, or ``(None, None)`` when
        start-up must take the long way
    """
    found = read_site(options.cache_dir, key, here)
    if not found:
        return None, None
    started = time.perf_counter()
    owns_engine = engine is None
    if engine is None:
        engine = database.engine_from_settings(settings)
    tables = [loc.version_table for loc, _ in found]
    config_file = str(settings.get("kotti_migrate.config_file", "") or "") or "<config.ini>"
    record = AtHead(found, options.auto_upgrade, config_file)
    try:
        with database.database_lock(engine, options.lock_timeout):
            try:
                with database.connect(engine) as connection:
                    versions = records.read_versions(connection, tables, set(tables))
                    if not _tables_exist(connection, options, uses_kotti):
                        return None, None
            except sa.exc.DBAPIError:  # a version table is missing
                return None, None
            for loc, heads in found:
                current = versions[loc.version_table]
                if current is None or set(current) != set(heads):
                    return None, None
            if log.isEnabledFor(logging.INFO):
                for decision in record.decisions:
                    log.log(decision.level, "%s", decision.message)
            if uses_kotti:
                run_populators(settings, engine, [])
    finally:
        if owns_engine:
            engine.dispose()
    record.seconds = time.perf_counter() - started
    record.finished = datetime.datetime.now().astimezone()
    return record, engine


def _tables_exist(connection: Any, options: Options, uses_kotti: bool) -> bool:
    """True unless start-up's own create_all (an app that is not a Kotti site) has tables to create."""
    if uses_kotti or not options.create_all or options.metadata is None:
        return True
    from .site import resolve_metadata

    metadata = resolve_metadata(options.metadata, False)
    names = {table.name for table in metadata.tables.values()} if metadata is not None else set()
    return names <= records.table_names(connection)
