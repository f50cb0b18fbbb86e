"""Testing a location's migrations: what the checks behind the pytest plugin work with.

For :mod:`kotti_migrate.pytest_plugin` (and anyone wanting the same checks
elsewhere): a throwaway database per check (:class:`DatabaseFactory`), one
location on it (:class:`MigrationSite`).  The ready checks are
:mod:`kotti_migrate.checks`, schema snapshots :mod:`kotti_migrate.schema`.

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
from typing import Any, Callable, Mapping

import sqlalchemy as sa

from . import database
from .commands import Migrations
from .errors import MigrateError, MigrationFailed
from .loading import load_app
from .locations import KOTTI_LOCATION, Location
from .models import mappers
from .schema import Schema
from .scripts import revision_label
from .settings import kotti_available, no_startup

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
        for mapper in mappers()
    )


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
