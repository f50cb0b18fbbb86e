"""The start-up planner: :func:`plan` decides from a :class:`SiteState` alone.

It reads nothing and changes nothing; :mod:`kotti_migrate.startup` reads the
state and carries the plan out.  Every row of this table is a case of
:func:`plan` (and of its table-driven test):

==========================================  =============  =========================
Database state                              auto-upgrade   What happens
==========================================  =============  =========================
empty (or only empty version tables)        any            create_all, stamp every
                                                           location at its head(s)
location without version rows, its          any            create_all creates them,
tables absent (add-on just installed)                      stamped at head(s)
empty database, or location without          any            create_all, then its
version rows, owning no model's table,                     migrations run from base
whose revisions create tables no model                     to head(s)
defines, none of them there
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

import datetime
import logging
from typing import TYPE_CHECKING, AbstractSet

from .errors import MigrateError, MigrationsRequired, UnknownDatabaseRevision
from .locations import Location
from .values import Value, factory

if TYPE_CHECKING:  # pragma: no cover
    from .reports import RunReport

# -- what start-up reads -----------------------------------------------------------


class LocationState(Value, frozen=True):
    """What the database and the code say about one location.

    :ivar current: revisions in the version table; None when it is missing
        (an empty version table reads as ``()``)
    :ivar heads: head revisions on disk
    :ivar known: every revision id on disk (a set read on first use)
    :ivar owned: tables the location's own models define (not read, so empty, for a
        location at its head)
    :ivar existing: those of ``owned`` that exist in the database
    :ivar differences: for a location without version rows whose tables
        exist, what the models would change in them (empty: they match);
        None when not compared
    :ivar unmodelled: tables its revision files create that no model
        defines (read only for a location new to the database)
    """

    location: Location
    current: tuple[str, ...] | None
    heads: tuple[str, ...]
    known: AbstractSet[str]
    owned: frozenset[str] = frozenset()
    existing: frozenset[str] = frozenset()
    differences: tuple[str, ...] | None = None
    unmodelled: frozenset[str] = frozenset()

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


class RequiredTable(Value, frozen=True):
    """A table that every query of a polymorphic base class loads.

    In Kotti every page queries ``Node``, which joins every content type's
    table: while one of them is missing (or lacks a column), no page works.

    :ivar missing_columns: None when the table itself is missing
    """

    name: str
    base: str
    missing_columns: tuple[str, ...] | None


class SiteState(Value, frozen=True):
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


class Decision(Value):
    """What start-up does (or advises) for one location.

    :ivar action: ``stamp`` (record the head(s) after create_all),
        ``upgrade`` (run migrations before create_all), ``adopt`` (upgrade
        from base: tables that predate the migrations), ``install`` (run
        its migrations from base after create_all: they create tables no
        model defines), ``ok`` (at head), ``warn`` (left as it is, with a
        warning)
    :ivar reason: ``fresh``, ``new``, ``match``, ``no-models``, ``unmodelled``,
        ``pending``, ``unknown`` or ``head``
    :ivar message: the log line
    """

    location: Location
    action: str
    reason: str = ""
    message: str = ""
    level: int = logging.INFO
    #: Tables of this location that create_all must leave alone.
    held_back: frozenset[str] = frozenset()


class Plan(Value):
    """The decisions of one start-up; ``error`` stops it before anything changes."""

    decisions: list[Decision] = factory(list)
    error: MigrateError | None = None
    #: Filled by :func:`apply`: what the migrations did, and the tables create_all made.
    reports: list[RunReport] = factory(list)
    created: list[str] = factory(list)
    #: Filled by :func:`~kotti_migrate.startup.run_startup`: how long it took (lock
    #: included), when it finished.
    seconds: float | None = None
    finished: datetime.datetime | None = None

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

    @property
    def installs(self) -> list[Location]:
        """Locations whose migrations run from base after create_all."""
        return [d.location for d in self.decisions if d.action == "install"]


def upgrade_command(config_file: str, location: Location) -> str:
    """The exact ``kotti-migrate`` command that upgrades ``location``."""
    return f"kotti-migrate {config_file} upgrade --scripts={location.spec}"


def tables_text(names: frozenset[str] | set[str]) -> str:
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
    if (state.fresh or ls.unstamped) and _unmodelled(state, ls):
        return Decision(
            loc, "install", "unmodelled",
            f"{loc.spec} is new to this database and its revisions create tables no model defines "
            f"({tables_text(ls.unmodelled)}): running its migrations from base to {heads}",
        )  # fmt: skip
    if state.fresh:
        return Decision(loc, "stamp", "fresh")
    if ls.unstamped:
        table = "no version table" if ls.current is None else "an empty version table"
        if ls.existing and not ls.differences:
            return Decision(
                loc, "stamp", "match",
                f"{loc.spec} has {table}; its tables exist and match the models "
                f"({tables_text(ls.existing)}): stamped at head",
            )  # fmt: skip
        if ls.existing:
            return Decision(
                loc, "adopt", "differ",
                f"{loc.spec} has {table} but its tables exist ({tables_text(ls.existing)}) and "
                "differ from the models: upgrading from base to head",
            )  # fmt: skip
        created = f" ({tables_text(ls.owned)})" if ls.owned else ""
        return Decision(
            loc, "stamp", "new",
            f"{loc.spec} is new to this database: its tables{created} are created "
            "and it is stamped at head",
        )  # fmt: skip
    current = ", ".join(ls.current or ()) or "base"
    # A head is known: at its head(s), the location's other revision ids are never read.
    unknown = sorted(r for r in set(ls.current or ()) if r not in ls.heads and r not in ls.known)
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
    tables = f" ({tables_text(ls.owned)})" if ls.owned else ""
    return Decision(
        loc, "warn", "pending",
        f"{loc.spec} is at {current}, behind its head {heads}; pages using its tables{tables} "
        f"may fail until it is upgraded; run: {upgrade_command(state.config_file, loc)}",
        logging.WARNING, ls.owned,
    )  # fmt: skip


def _unmodelled(state: SiteState, ls: LocationState) -> bool:
    """A location of migrations only: no model's table is its own, its revisions create tables
    that no model defines, and none of them exists (create_all cannot make them)."""
    return bool(ls.heads and not ls.owned and ls.unmodelled and not ls.unmodelled & state.tables)


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
