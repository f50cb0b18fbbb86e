"""The ready checks of a location's migrations (run by :mod:`kotti_migrate.pytest_plugin`).

Each check of :data:`CHECKS` gets a :class:`CheckContext` (the location,
new empty databases on demand) and returns a one-line summary or raises
:class:`~kotti_migrate.testing.CheckFailed` naming the location, the
revision and the difference.  :func:`open_database` gives authors' own
tests a database at a revision (:class:`MigrationDB`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import sqlalchemy as sa

from . import database, records
from .errors import MigrateError
from .schema import describe_differences
from .scripts import revision_label
from .testing import MODELS, CheckFailed, DatabaseFactory, MigrationSite, SiteTemplate, TestDatabase


@dataclass
class CheckContext:
    """What a check gets: the location and new empty databases on demand."""

    template: SiteTemplate
    databases: DatabaseFactory
    kinds: dict[str, str]
    opened: list[tuple[MigrationSite, TestDatabase]] = field(default_factory=list)

    def site(self) -> MigrationSite:
        """The location on a new empty database (removed by :meth:`close`)."""
        db = self.databases.new()
        try:
            site = self.template.site(db.url)
        except BaseException:
            db.drop()
            raise
        self.opened.append((site, db))
        return site

    def kind(self, site: MigrationSite) -> str:
        """The history kind of the location (found once per location)."""
        if self.template.spec not in self.kinds:
            self.kinds[self.template.spec] = site.history_kind(self.site())
        return self.kinds[self.template.spec]

    def base(self) -> tuple[MigrationSite, str]:
        """A new database at the location's base; and the history kind."""
        site = self.site()
        kind = self.kind(site)
        site.prepare_base(kind)
        return site, kind

    def close(self) -> None:
        for site, db in reversed(self.opened):
            site.dispose()
            db.drop()
        self.opened.clear()


def _history(kind: str) -> str:
    if kind == MODELS:
        return "history starts from create_all's tables"
    return "history starts from an empty table set"


def check_single_head(ctx: CheckContext) -> str:
    site = ctx.template.site("sqlite://")  # reads files only
    try:
        try:
            heads = site.migrations.heads(site.location)
        except MigrateError as exc:
            raise CheckFailed(str(exc)) from None
        if len(heads) != ctx.template.heads:
            names = "; ".join(revision_label(s) for s in heads)
            raise CheckFailed(
                f"{site.where()}: {len(heads)} heads, {ctx.template.heads} expected: {names}; merge them "
                f"(kotti-migrate <ini> merge --scripts={site.spec}) or declare them "
                f"(kotti_migrate_heads = {site.spec}={len(heads)})"
            )
        return f"{site.where()}: head {', '.join(revision_label(s) for s in heads) or '(no revisions)'}"
    finally:
        site.dispose()


def check_upgrade_fresh(ctx: CheckContext) -> str:
    site = ctx.site()
    try:
        site.fresh()
    except MigrateError as exc:
        raise site.failed("start-up on an empty database", exc) from None
    if set(site.current()) != set(site.heads()):
        raise CheckFailed(
            f"{site.where()}: after start-up on an empty database it is at "
            f"{', '.join(site.current()) or 'base'}, not at its head {', '.join(site.heads())}"
        )
    return f"{site.where()}: start-up's fresh path stamped it at {', '.join(site.heads())}"


def check_upgrade_stepwise(ctx: CheckContext) -> str:
    site, kind = ctx.base()
    for script in site.revisions():
        site.upgrade(script.revision, f"upgrade (one revision at a time, {_history(kind)})")
    return f"{site.where()}: {_history(kind)}; {len(site.revisions())} revision(s) applied one at a time"


def check_stairway(ctx: CheckContext) -> str:
    site, kind = ctx.base()
    for script in site.revisions():
        rev = script.revision
        site.upgrade(rev, f"stairway: upgrade to {rev}")
        site.downgrade(site.one_down(rev), f"stairway: downgrade of {rev}")
        site.upgrade(rev, f"stairway: upgrade to {rev} again after its downgrade")
    return f"{site.where()}: {_history(kind)}; up, down and up again at every revision"


def check_models_match(ctx: CheckContext) -> str:
    site, kind = ctx.base()
    if site.migrations.metadata is None:
        raise CheckFailed(
            f"{site.where()}: no models to compare with: set kotti_migrate.metadata "
            f"(--kotti-migrate-setting kotti_migrate.metadata=package.models.Base)"
        )
    site.upgrade("heads", f"upgrade to head ({_history(kind)})")
    tables = site.own_tables()
    if not tables:
        raise CheckFailed(f"{site.where()}: the models define no table of package {site.location.package}")
    lines = describe_differences(site.migrations.schema_differences(tables))
    if lines:
        heads = "; ".join(site.label(h) for h in site.heads())
        raise CheckFailed(
            f"{site.where()} at head {heads}: the models and the migrated database differ "
            f"({_history(kind)}):\n  " + "\n  ".join(lines)
        )
    return f"{site.where()}: models match tables {', '.join(sorted(tables))}"


def check_downgrade(ctx: CheckContext) -> str:
    site, kind = ctx.base()
    base = site.snapshot()
    for script in site.revisions():
        rev = script.revision
        before = site.snapshot()
        site.upgrade(rev)
        site.downgrade(site.one_down(rev), f"downgrade of {rev}")
        after = site.snapshot()
        lines = before.differences(after, "left behind by its downgrade", "gone after its downgrade")
        if lines:
            raise CheckFailed(
                f"{site.where(rev)}: upgrade then downgrade does not restore the schema "
                f"({_history(kind)}):\n  " + "\n  ".join(lines)
            )
        site.upgrade(rev)
    site.downgrade("base", "downgrade from head to base")
    lines = base.differences(site.snapshot(), "left behind", "gone")
    if lines:
        raise CheckFailed(
            f"{site.where()}: downgrade from head to base does not restore the schema "
            f"({_history(kind)}):\n  " + "\n  ".join(lines)
        )
    return f"{site.where()}: {_history(kind)}; every downgrade leaves no trace"


def check_fresh_equals_migrated(ctx: CheckContext) -> str:
    migrated, kind = ctx.base()
    migrated.upgrade("heads", f"upgrade to head ({_history(kind)})")
    fresh = ctx.site()
    try:
        fresh.fresh()
    except MigrateError as exc:
        raise fresh.failed("start-up on an empty database", exc) from None
    lines = fresh.snapshot().differences(
        migrated.snapshot(), "only in the migrated database", "only in the fresh database"
    )
    if lines:
        raise CheckFailed(
            f"{migrated.where()}: the database start-up creates (create_all + stamp) differs from the "
            f"one the migrations make ({_history(kind)}):\n  " + "\n  ".join(lines)
        )
    return f"{migrated.where()}: fresh equals migrated ({_history(kind)})"


#: name -> check; each returns a one-line summary or raises :class:`CheckFailed`.
CHECKS: dict[str, Callable[[CheckContext], str]] = {
    "single_head": check_single_head,
    "upgrade_fresh": check_upgrade_fresh,
    "upgrade_stepwise": check_upgrade_stepwise,
    "stairway": check_stairway,
    "models_match": check_models_match,
    "downgrade_leaves_no_trace": check_downgrade,
    "fresh_equals_migrated": check_fresh_equals_migrated,
}


# -- a database for authors' own tests ------------------------------------------------


class MigrationDB:
    """A database at a revision of a location, and the verbs to step it.

    :ivar url: the database URL
    :ivar engine: an engine on it
    :ivar site: the :class:`MigrationSite` (``site.migrations``: the library object)
    """

    def __init__(self, site: MigrationSite, url: str, kind: str) -> None:
        self.site = site
        self.url = url
        self.kind = kind
        self.engine = site.migrations.engine
        self.location = site.location

    def upgrade(self, revision: str = "heads") -> tuple[str, ...]:
        """Upgrade (``"heads"``, ``"+1"``, an id); returns the revisions now current."""
        __tracebackhide__ = True
        try:
            self.site.upgrade(revision)
        except CheckFailed as exc:
            raise CheckFailed(str(exc)) from None
        return self.current

    def downgrade(self, revision: str = "-1") -> tuple[str, ...]:
        """Downgrade (``"-1"``, ``"base"``, an id); returns the revisions now current."""
        __tracebackhide__ = True
        try:
            self.site.downgrade(revision)
        except CheckFailed as exc:
            raise CheckFailed(str(exc)) from None
        return self.current

    @property
    def current(self) -> tuple[str, ...]:
        """The location's revisions in its version table (``()`` at base)."""
        return self.site.current()

    def execute(self, sql: str, **params: Any) -> list[Any]:
        """Run one SQL statement in its own transaction; rows for a SELECT."""
        with self.engine.begin() as connection:
            result = connection.execute(sa.text(sql), params)
            return list(result.fetchall()) if result.returns_rows else []

    def tables(self) -> set[str]:
        with database.connect(self.engine) as connection:
            return records.table_names(connection)

    def columns(self, table: str) -> set[str]:
        with database.connect(self.engine) as connection:
            return {c["name"] for c in sa.inspect(connection).get_columns(table)}


def open_database(ctx: CheckContext, revision: str = "base") -> MigrationDB:
    """A new database with the location at ``revision`` (``base``, ``heads`` or an id)."""
    site, kind = ctx.base()
    if revision != "base":
        site.upgrade(revision, f"upgrade to {revision}")
    return MigrationDB(site, str(site.migrations.engine.url.render_as_string(hide_password=False)), kind)
