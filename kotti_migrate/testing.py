"""Testing a location's migrations: the checks behind the pytest plugin.

Library code for :mod:`kotti_migrate.pytest_plugin` (and for anyone who
wants the same checks elsewhere): a throwaway database per check
(:class:`DatabaseFactory`), one location on it (:class:`MigrationSite`),
schema snapshots and their differences, and the ready checks
(:data:`CHECKS`), each raising :class:`CheckFailed` with a message that
names the location, the revision and the difference.

Two kinds of history (see :meth:`MigrationSite.history_kind`):

- ``empty``: the first revision starts from a database without the
  location's tables (it creates them); "base" is that database.
- ``models``: the first revision alters tables that no revision creates
  (Kotti's own history, kotti_contactform's): "base" is what create_all
  makes at head, stamped, then downgraded to base.
"""

from __future__ import annotations

import importlib
import os
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import sqlalchemy as sa

from . import database
from .commands import Migrations
from .errors import MigrateError, MigrationFailed
from .locations import KOTTI_LOCATION, Location
from .scripts import revision_label
from .settings import kotti_available, load_app, no_startup

EMPTY = "empty"
MODELS = "models"


class CheckFailed(Exception):
    """A ready check failed; the message is the whole report."""


# -- databases ------------------------------------------------------------------------


@dataclass
class TestDatabase:
    """One throwaway database: its URL and how to remove it."""

    url: str
    drop: Callable[[], None] = lambda: None

    __test__ = False  # not a pytest test class


class DatabaseFactory:
    """Hands out a new, empty database per test.

    :param url: None or a SQLite URL: a new SQLite file in ``folder`` per
        database; a PostgreSQL URL: a new database on that server per
        database (the user needs CREATEDB), dropped afterwards; any other
        URL is used as it is (it must point at an empty database)
    :param folder: where SQLite files go
    """

    def __init__(self, url: str | None, folder: str | os.PathLike[str]) -> None:
        self.url = url
        self.folder = Path(folder)
        self.backend = sa.engine.make_url(url).get_backend_name() if url else "sqlite"

    def new(self) -> TestDatabase:
        """A new empty database."""
        name = "kmt_" + uuid.uuid4().hex[:12]
        if self.url is None or self.backend == "sqlite":
            self.folder.mkdir(parents=True, exist_ok=True)
            path = self.folder / f"{name}.db"
            return TestDatabase(f"sqlite:///{path}", lambda: path.unlink(missing_ok=True))
        if self.backend != "postgresql":
            return TestDatabase(self.url)
        admin = sa.create_engine(self.url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as connection:
                connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
        except sa.exc.DBAPIError as exc:
            reason = database.scrub(str(exc.orig).strip().splitlines()[0], self.url)
            raise MigrateError(
                f"cannot create a test database on {database.mask_url(self.url)}: {reason} "
                f"(the user needs the CREATEDB privilege)"
            ) from None
        finally:
            admin.dispose()
        url = sa.engine.make_url(self.url).set(database=name).render_as_string(hide_password=False)

        def drop() -> None:
            engine = sa.create_engine(self.url, isolation_level="AUTOCOMMIT")
            try:
                with engine.connect() as connection:
                    connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            finally:
                engine.dispose()

        return TestDatabase(url, drop)


# -- the site around one location -------------------------------------------------------


@dataclass
class SiteTemplate:
    """How to build a site for one location: settings, or an app's ini file.

    :ivar spec: the location under test
    :ivar ini: an app's ini file (its settings, locations and metadata), or None
    :ivar settings: extra settings (``kotti_migrate.metadata`` ...)
    :ivar heads: how many heads the location declares (default 1)
    """

    spec: str
    ini: str | None = None
    settings: Mapping[str, str] = field(default_factory=dict)
    heads: int = 1
    _loaded: Any = None
    _kotti_addon: bool | None = None

    @property
    def kotti_addon(self) -> bool:
        """True when Kotti is installed and the location's package is a Kotti add-on."""
        if self._kotti_addon is None:
            self._kotti_addon = bool(self.ini is None and _import_addon(self.spec))
        return self._kotti_addon

    def site_settings(self, url: str) -> tuple[dict, Any, str | None, str | None]:
        """(settings, registry, here, config_file) of the site on ``url``."""
        if self.ini is not None:
            if self._loaded is None:
                with no_startup():
                    self._loaded = load_app(self.ini)
            app = self._loaded
            settings = dict(app.settings)
            settings.update(self.settings)
            settings["sqlalchemy.url"] = url
            return settings, app.registry, app.here, app.config_file
        specs = f"{KOTTI_LOCATION} {self.spec}" if self.kotti_addon else self.spec
        settings = {"kotti.alembic_dirs": specs, "kotti_migrate.cache_dir": "off"}
        settings.update(self.settings)
        settings["sqlalchemy.url"] = url
        return settings, None, os.getcwd(), None

    def site(self, url: str) -> MigrationSite:
        """The location on the database at ``url``."""
        settings, registry, here, config_file = self.site_settings(url)
        migrations = Migrations(settings, registry, here=here, config_file=config_file)
        return MigrationSite(migrations, self.spec)


def _import_addon(spec: str) -> bool:
    """Import the location's package and its models; True for a Kotti add-on.

    A Kotti add-on's ``kotti_configure`` runs with a scratch settings dict
    (it imports its models, as Kotti's start-up would); otherwise the
    package's ``models`` and ``resources`` modules are imported if present.
    """
    from .locations import is_asset_spec, location_path
    from .locations import resolve_location as resolve

    if is_asset_spec(spec):
        package = spec.partition(":")[0]
    else:
        package = resolve(str(location_path(spec))).package
    try:
        module = importlib.import_module(package)
    except ImportError:
        return False
    configure = getattr(module, "kotti_configure", None)
    kotti = kotti_available() and package != "kotti"
    if kotti:
        importlib.import_module("kotti.resources")
    if kotti and callable(configure):
        configure(defaultdict(str, {"kotti.alembic_dirs": KOTTI_LOCATION}))
        return True
    for name in ("models", "resources"):
        if importlib.util.find_spec(f"{package}.{name}") is not None:
            importlib.import_module(f"{package}.{name}")
    if not kotti:
        return False
    import kotti as kotti_module

    return any(
        (mapper.class_.__module__ or "").split(".")[0] == package
        and getattr(mapper.local_table, "metadata", None) is kotti_module.metadata
        for mapper in _all_mappers()
    )


def _all_mappers() -> list[Any]:
    from sqlalchemy.orm import mapperlib

    return [m for registry in list(mapperlib._all_registries()) for m in list(registry.mappers)]


class MigrationSite:
    """One location of a site, on one database: what the checks work with."""

    def __init__(self, migrations: Migrations, spec: str) -> None:
        self.migrations = migrations
        self.location: Location = migrations.location(spec)

    # -- revisions ------------------------------------------------------------------

    @property
    def spec(self) -> str:
        return self.location.spec

    def revisions(self) -> list[Any]:
        """The location's revisions, base first."""
        return list(reversed(self.migrations.history(self.location)))

    def label(self, revision: str | None) -> str:
        """``rev (message)`` of a revision id."""
        if not revision:
            return "base"
        try:
            return revision_label(self.migrations.scripts(self.location).get_revision(revision))
        except Exception:
            return revision

    def where(self, revision: str | None = None) -> str:
        """``location 'x'`` or ``location 'x', revision rev (message)``."""
        text = f"location {self.spec!r}"
        return f"{text}, revision {self.label(revision)}" if revision else text

    def one_down(self, revision: str) -> str:
        """How to undo just ``revision`` (``-1``; ``<rev>@-1`` while several branches are current)."""
        return "-1" if len(self.current()) < 2 else f"{revision}@-1"

    def current(self) -> tuple[str, ...]:
        return self.migrations.current_revisions(self.location) or ()

    def heads(self) -> tuple[str, ...]:
        return tuple(sorted(s.revision for s in self.migrations.heads(self.location)))

    # -- tables -----------------------------------------------------------------------

    def own_tables(self) -> set[str]:
        """The location's tables in the models.

        Those its package's mapped classes define; for a site with one location
        and models defined elsewhere, every table of the metadata.
        """
        owned = self.migrations.owned_tables(self.location)
        metadata = self.migrations.metadata
        if owned or metadata is None:
            return owned
        others = set()
        for loc in self.migrations.locations:
            if loc.path != self.location.path:
                others |= self.migrations.owned_tables(loc)
        if self.migrations.uses_kotti:
            return set()
        return set(metadata.tables) - others

    def version_tables(self) -> set[str]:
        return {loc.version_table for loc in self.migrations.locations}

    def snapshot(self) -> Schema:
        """The database's schema (without version tables)."""
        return Schema.read(self.migrations.engine, self.version_tables())

    # -- changing the database ------------------------------------------------------

    def fresh(self) -> None:
        """Start-up's fresh path on an empty database (create_all + stamp, or migrate)."""
        from .startup import run_startup

        run_startup(self.migrations, "<test site>")

    def create_tables(self, exclude: set[str]) -> None:
        """create_all of the models, except ``exclude``."""
        metadata = self.migrations.metadata
        if metadata is None:
            return
        if self.migrations.uses_kotti:
            from .kotti_site import adjust_for_engine

            adjust_for_engine(self.migrations.engine)
        tables = [t for t in metadata.sorted_tables if t.name not in exclude]
        with self.migrations.engine.begin() as connection:
            metadata.create_all(connection, tables=tables)

    def prepare_base(self, kind: str) -> None:
        """Bring an empty database to the location's base (see the module doc).

        Other locations of the site are at their heads.
        """
        if kind == MODELS:
            self.create_tables(set())
            for loc in self.migrations.locations:
                self.migrations.stamp(loc, "heads")
            self.downgrade("base", "building base (create_all at head, stamped, downgraded to base)")
            return
        self.create_tables(self.own_tables())
        for loc in self.migrations.locations:
            if loc.path != self.location.path:
                self.migrations.stamp(loc, "heads")

    def upgrade(self, revision: str = "heads", doing: str = "upgrade") -> None:
        """Upgrade the location; a failure raises :class:`CheckFailed`."""
        try:
            self.migrations.upgrade(self.location, revision)
        except MigrateError as exc:
            raise self.failed(doing, exc) from None

    def downgrade(self, revision: str, doing: str = "downgrade") -> None:
        """Downgrade the location; a failure raises :class:`CheckFailed`."""
        try:
            self.migrations.downgrade(self.location, revision)
        except MigrateError as exc:
            raise self.failed(doing, exc) from None

    def failed(self, doing: str, exc: MigrateError) -> CheckFailed:
        revision = getattr(exc, "revision", None) if isinstance(exc, MigrationFailed) else None
        text = str(exc)
        prefix = f"location {self.spec!r}: "
        if text.startswith(prefix):
            text = text[len(prefix):]
        if revision and text.startswith(f"revision {revision} failed: "):
            text = text[len(f"revision {revision} failed: "):]
        message = f"{self.where(revision)}: {doing} failed: {text}"
        details = getattr(exc, "details", "")
        if details and details.strip():
            message += "\n" + details.strip()
        return CheckFailed(message)

    def history_kind(self, probe: MigrationSite) -> str:
        """``empty`` or ``models`` (see the module doc), found on ``probe``, an empty database.

        ``models`` when the first revision fails on a database without the
        location's tables while the models define some; ``empty`` otherwise.
        """
        revisions = self.revisions()
        if not revisions or not self.own_tables():
            return EMPTY
        probe.prepare_base(EMPTY)
        try:
            probe.migrations.upgrade(probe.location, revisions[0].revision)
        except MigrationFailed:
            return MODELS
        return EMPTY

    def dispose(self) -> None:
        self.migrations.dispose()


# -- schemas ------------------------------------------------------------------------


@dataclass
class Schema:
    """Tables, columns, indexes and constraints of a database, comparable."""

    tables: dict[str, dict[str, set[str]]]

    @classmethod
    def read(cls, engine: sa.engine.Engine, skip: set[str]) -> Schema:
        tables: dict[str, dict[str, set[str]]] = {}
        with database.connect(engine) as connection:
            inspector = sa.inspect(connection)
            for name in sorted(inspector.get_table_names()):
                if name in skip or name.endswith("_alembic_version") or name == "alembic_version":
                    continue
                parts: dict[str, set[str]] = {}
                parts["column"] = {
                    f"{c['name']} {_type(c['type'])}{'' if c['nullable'] else ' NOT NULL'}"
                    for c in inspector.get_columns(name)
                }
                parts["index"] = {
                    f"{i['name']} ({', '.join(str(c) for c in i['column_names'])})"
                    + (" UNIQUE" if i.get("unique") else "")
                    for i in inspector.get_indexes(name)
                    if not i.get("duplicates_constraint")
                }
                parts["unique constraint"] = {
                    f"({', '.join(u['column_names'])})" for u in inspector.get_unique_constraints(name)
                }
                parts["foreign key"] = {
                    f"({', '.join(f['constrained_columns'])}) -> {f['referred_table']}"
                    f"({', '.join(f['referred_columns'])})"
                    for f in inspector.get_foreign_keys(name)
                }
                pk = inspector.get_pk_constraint(name).get("constrained_columns") or []
                parts["primary key"] = {f"({', '.join(pk)})"} if pk else set()
                tables[name] = parts
        return cls(tables)

    def differences(self, other: Schema, extra: str, missing: str) -> list[str]:
        """What ``other`` has that this one lacks (``extra``) and the reverse (``missing``)."""
        lines = []
        for name in sorted(set(self.tables) | set(other.tables)):
            if name not in self.tables:
                lines.append(f"table {name}: {extra}")
                continue
            if name not in other.tables:
                lines.append(f"table {name}: {missing}")
                continue
            mine, theirs = self.tables[name], other.tables[name]
            for kind in mine:
                for item in sorted(theirs[kind] - mine[kind]):
                    lines.append(f"table {name}: {kind} {item}: {extra}")
                for item in sorted(mine[kind] - theirs[kind]):
                    lines.append(f"table {name}: {kind} {item}: {missing}")
        return lines


def _type(type_: Any) -> str:
    try:
        return str(type_)
    except Exception:
        return type(type_).__name__


def describe_differences(diffs: Sequence[Any]) -> list[str]:
    """Alembic's autogenerate differences as readable lines."""
    lines = []
    for diff in diffs:
        if isinstance(diff, list):
            lines.extend(describe_differences(diff))
            continue
        kind = diff[0]
        if kind == "add_table":
            lines.append(f"table {diff[1].name}: in the models, the migrations never create it")
        elif kind == "remove_table":
            lines.append(f"table {diff[1].name}: in the database, not in the models")
        elif kind == "add_column":
            column = diff[3]
            lines.append(
                f"table {diff[2]}: column {column.name} ({_type(column.type)}) is in the models, "
                f"the migrations never add it"
            )
        elif kind == "remove_column":
            lines.append(f"table {diff[2]}: column {diff[3].name} is in the database, not in the models")
        elif kind in ("add_index", "remove_index"):
            index = diff[1]
            cols = ", ".join(getattr(c, "name", str(c)) for c in index.columns)
            where = "in the models, not in the database" if kind == "add_index" else (
                "in the database, not in the models"
            )
            lines.append(f"table {index.table.name}: index {index.name} ({cols}) {where}")
        elif kind in ("add_constraint", "remove_constraint", "add_fk", "remove_fk"):
            constraint = diff[1]
            cols = ", ".join(getattr(c, "name", str(c)) for c in constraint.columns)
            where = "in the models, not in the database" if kind.startswith("add") else (
                "in the database, not in the models"
            )
            what = "foreign key" if kind.endswith("fk") else type(constraint).__name__
            lines.append(f"table {constraint.table.name}: {what} {constraint.name or ''} ({cols}) {where}")
        elif kind == "modify_type":
            lines.append(
                f"table {diff[2]}: column {diff[3]}: type {_type(diff[5])} in the database, "
                f"{_type(diff[6])} in the models"
            )
        elif kind == "modify_nullable":
            def null(value: Any) -> str:
                return "NULL" if value else "NOT NULL"

            lines.append(
                f"table {diff[2]}: column {diff[3]}: {null(diff[5])} in the database, "
                f"{null(diff[6])} in the models"
            )
        elif kind == "modify_default":
            lines.append(f"table {diff[2]}: column {diff[3]}: server default differs")
        else:
            lines.append(repr(diff))
    return lines


# -- the ready checks ------------------------------------------------------------------


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
            return database.table_names(connection)

    def columns(self, table: str) -> set[str]:
        with database.connect(self.engine) as connection:
            return {c["name"] for c in sa.inspect(connection).get_columns(table)}


def open_database(ctx: CheckContext, revision: str = "base") -> MigrationDB:
    """A new database with the location at ``revision`` (``base``, ``heads`` or an id)."""
    site, kind = ctx.base()
    if revision != "base":
        site.upgrade(revision, f"upgrade to {revision}")
    return MigrationDB(site, str(site.migrations.engine.url.render_as_string(hide_password=False)), kind)

