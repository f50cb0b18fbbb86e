"""The library API: one :class:`Migrations` per site, a row of thin verbs.

Verbs return data (revision objects, reports) and never print; the CLI
renders them.  Every verb takes a location (a spec, a package name or a
path); without one, a verb on one location works on the default location
(Kotti's, else the only registered one) and a verb over several works on
all registered locations, in order.

Example::

    from kotti_migrate import Migrations

    migrations = Migrations.from_config_uri("development.ini")
    for status in migrations.status():
        print(status.location, status.current, status.heads)
    migrations.upgrade()            # every location to its head(s)
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, Sequence

from . import database, records
from .errors import ConfigurationError, MigrationFailed, RevisionError
from .locations import KOTTI_LOCATION, Location
from .reports import CheckResult, LocationStatus, RunReport, StepReport
from .revisions import Revisions

if TYPE_CHECKING:  # pragma: no cover

    from .catalog import IndexedRevision

__all__ = ["CheckResult", "LocationStatus", "Migrations", "RunReport", "StepReport"]


class Migrations(Revisions):
    """All migration locations of one site, and the verbs over them.

    What the site is made of (settings, options, locations, engine,
    metadata, tables) is :class:`~kotti_migrate.site.Site`; the verbs on
    revision files and models are :class:`~kotti_migrate.revisions.Revisions`;
    here are the verbs that read and change where the database stands.
    Verbs on one location take ``location=None`` to mean the default one
    (Kotti's, else the only one); verbs over several take it to mean all.
    """

    def current(self, location: Location | str | None = None) -> dict[Location, tuple[str, ...] | None]:
        """Recorded revisions of one or all locations (one database round trip)."""
        selected = self.select(location)
        with database.connect(self.engine) as connection:
            versions = records.read_versions(connection, [loc.version_table for loc in selected])
        return {loc: versions[loc.version_table] for loc in selected}

    def is_fresh(self) -> bool:
        """True when the database is empty (or holds only version tables without rows)."""
        with database.connect(self.engine) as connection:
            return records.read_records(connection, [loc.version_table for loc in self.locations])[2]

    @property
    def creates_tables(self) -> bool:
        """True when start-up creates tables from the models (metadata known, create_all on)."""
        return self.metadata is not None and self.options.create_all

    def builds_from_models(self, locations: Sequence[Location]) -> bool:
        """True when an empty database must be created from the models, not migrated.

        So it is for Kotti's own location, whose history starts from tables
        that ``create_all`` made (its first revision alters ``contents``).
        """
        kotti = any(loc.spec == KOTTI_LOCATION for loc in locations)
        return kotti and self.uses_kotti and self.creates_tables

    def status(self, location: Location | str | None = None) -> list[LocationStatus]:
        """Where every (or one) location stands against its heads (from :meth:`catalog`)."""
        selected = self.select(location)
        current = self.current(location)
        result = []
        for loc in selected:
            catalog = self.catalog(loc)
            revs = current[loc]
            known = catalog.ids()
            unknown = tuple(r for r in (revs or ()) if r not in known)
            pending: list[IndexedRevision] = []
            if not unknown:
                applied = catalog.applied(revs or ())
                pending = [r for r in catalog.revisions if r.revision not in applied]
            result.append(LocationStatus(loc, revs, catalog.heads, pending, unknown))
        return result

    # -- changing the database --------------------------------------------------

    def upgrade(
        self, location: Location | str | None = None, revision: str = "heads", sql: bool = False
    ) -> list[RunReport]:
        """Upgrade one location, or all in order, to ``revision`` (all heads by default).

        Each revision commits on its own, with its version row: a failing
        revision leaves the database at the one before it (on databases
        that can roll back DDL: not MySQL/MariaDB).  Holds the database lock
        (see :meth:`lock`) and reads where the database stands once it holds it.

        With ``sql``, the SQL is returned instead of run; it starts from the
        database's current revision (or ``START:END`` given as ``revision``).
        """
        selected = self.select(location)
        with self.lock() if not sql else contextlib.nullcontext():
            if not sql and self.builds_from_models(selected) and self.is_fresh():
                # Kotti's first revision alters tables that no revision creates: its
                # migrations cannot build the schema.  Refuse before writing anything.
                raise ConfigurationError(
                    f"database {database.mask_url(self.engine.url)} is empty and Kotti's migrations "
                    "cannot create its tables: start the app, or run kotti-migrate <config_uri> "
                    "upgrade (without --rev), which creates and stamps it as start-up does"
                )
            reports: list[RunReport] = []
            try:
                for loc in selected:
                    reports.append(self._upgrade(loc, revision, sql))
            except MigrationFailed as exc:
                exc.reports[:0] = reports  # the locations done before the one that failed
                raise
            return reports

    def _upgrade(self, loc: Location, revision: str, sql: bool) -> RunReport:
        from .failures import committed_before
        from .graph import check_rows, resolve
        from .runner import run, run_each  # Alembic's runtime: only when something runs

        scripts = self.scripts(loc)
        starting_rev, destination = None, revision
        if sql and ":" in revision:
            starting_rev, destination = revision.split(":", 1)
            resolve(scripts, loc, starting_rev)
        resolve(scripts, loc, destination)
        before = self.current_revisions(loc) or () if not sql or starting_rev is None else ()
        if sql and starting_rev is None:
            if set(before) == set(scripts.get_heads()) and destination in ("head", "heads"):
                return RunReport(loc, before, before, [], "")
            if len(before) > 1:
                raise RevisionError(
                    f"location {loc.spec!r}: the database has several heads; "
                    f"give --rev START:END for --sql"
                )
            starting_rev = before[0] if before else None

        def fn(rev: Any, context: Any) -> Any:
            return scripts._upgrade_revs(destination, rev)

        if sql:
            recorder, output = run(
                self, loc, fn, sql=sql, starting_rev=starting_rev, destination_rev=destination
            )
            return RunReport(loc, before, before, recorder.applied, output)
        check_rows(scripts, loc, before, self.command)
        try:
            recorder = run_each(
                self, loc, fn, lambda: scripts._upgrade_revs(destination, before), destination_rev=destination
            )
        except MigrationFailed as exc:
            exc.reports.append(committed_before(scripts, loc, before, exc))
            raise
        after = self.current_revisions(loc) or ()
        return RunReport(loc, before, after, recorder.applied, output=recorder.output)

    def downgrade(
        self, location: Location | str | None, revision: str, sql: bool = False
    ) -> RunReport:
        """Downgrade one location to ``revision`` (``base``, an id, ``-1``...).

        One transaction per revision, under the database lock, as :meth:`upgrade`.
        """
        from .graph import check_rows, resolve
        from .runner import run, run_each  # Alembic's runtime: only when something runs

        loc = self.location(location)
        scripts = self.scripts(loc)
        starting_rev = None
        if sql:
            if ":" not in revision:
                raise RevisionError("downgrade with --sql needs a range START:END")
            starting_rev, revision = revision.split(":", 1)
        resolve(scripts, loc, revision)

        def fn(rev: Any, context: Any) -> Any:
            return scripts._downgrade_revs(revision, rev)

        if sql:
            recorder, output = run(
                self, loc, fn, sql=sql, starting_rev=starting_rev, destination_rev=revision
            )
            return RunReport(loc, (), (), recorder.applied, output)
        with self.lock():
            before = self.current_revisions(loc) or ()
            check_rows(scripts, loc, before, self.command)
            if revision.startswith("-") and len(before) > 1:
                # Alembic would pick one of the heads at random (with a warning).
                raise RevisionError(
                    f"location {loc.spec!r}: downgrade {revision} is ambiguous, the database is at "
                    f"several heads ({', '.join(before)}); give a revision, e.g. {before[0]}@{revision}"
                )
            recorder = run_each(
                self, loc, fn, lambda: scripts._downgrade_revs(revision, before), destination_rev=revision
            )
            return RunReport(
                loc, before, self.current_revisions(loc) or (), recorder.applied, output=recorder.output
            )

    def stamp(
        self,
        location: Location | str | None,
        revision: str | Sequence[str] = "heads",
        sql: bool = False,
        purge: bool = False,
    ) -> RunReport:
        """Record ``revision`` without running migrations (``None``/``base`` clears).

        Holds the database lock (see :meth:`lock`) unless ``sql``.
        """
        from .graph import check_rows, resolve
        from .runner import run  # Alembic's runtime: only when something runs

        loc = self.location(location)
        scripts = self.scripts(loc)
        if revision is None or revision == "None":
            revision = "base"
        revisions = (revision,) if isinstance(revision, str) else tuple(revision)
        for rev in revisions:
            resolve(scripts, loc, rev)

        def fn(rev: Any, context: Any) -> Any:
            return scripts._stamp_revs(revisions if len(revisions) > 1 else revisions[0], rev)

        if sql:
            recorder, output = run(
                self, loc, fn, sql=sql, starting_rev=None, destination_rev=revisions[-1], purge=purge
            )
            return RunReport(loc, (), (), recorder.applied, output)
        with self.lock():
            before = self.current_revisions(loc) or ()
            if not purge:
                check_rows(scripts, loc, before, self.command)
            recorder, output = run(
                self, loc, fn, sql=sql, starting_rev=None, destination_rev=revisions[-1], purge=purge
            )
            after = self.current_revisions(loc) or ()
            return RunReport(loc, before, after, recorder.applied, output, recorder.output)

    def stamp_heads(self) -> list[RunReport]:
        """Stamp every location at its head(s): one row per head (under the database lock)."""
        with self.lock():
            return [self.stamp(loc, "heads") for loc in self.locations]
