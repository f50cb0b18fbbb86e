"""One site: its settings, options, migration locations, engine, metadata and tables.

:class:`Site` is what every verb works on; it reads what the site is made of
once (settings parsed once, metadata resolved once, each revision graph
loaded once) and runs no migrations.  The verbs are added by
:class:`kotti_migrate.revisions.Revisions` and
:class:`kotti_migrate.commands.Migrations`.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, TypeVar

import sqlalchemy as sa

from . import database, records
from .catalog import RevisionCatalog, catalog_of
from .errors import ConfigurationError, LocationError
from .kotti_site import is_kotti_site
from .locations import (
    Location,
    default_location,
    find_location,
    is_asset_spec,
    location_path,
    registered_specs,
    resolve_locations,
    split_setting,
)
from .scripts import (
    RevisionIndex,
    folder_listing,
    remember_index,
    revision_catalog,
    revision_index,
)
from .settings import Options, alembic_ini_options
from .version_tables import ALEMBIC_VERSION_TABLE

if TYPE_CHECKING:  # pragma: no cover
    from .graph import LocationScripts

log = logging.getLogger("kotti_migrate")

SiteT = TypeVar("SiteT", bound="Site")

#: ``metadata`` not resolved yet.
_UNRESOLVED: Any = object()

#: The ini file named in advice when the site was loaded from none.
NO_INI = "<config.ini>"


class Site:
    """All migration locations of one site, and what they are made of.

    :param settings: the app's settings (``sqlalchemy.url``,
        ``kotti.alembic_dirs``, ``kotti_migrate.*``)
    :param registry: the Pyramid registry, for locations registered with
        ``config.add_alembic_dir``
    :param here: folder that relative location paths are relative to
    :param engine: an engine to use instead of one built from settings
    :param config_file: the app's ini file (default: the setting
        ``kotti_migrate.config_file``); locations with an ``env.py`` of their
        own read it as under ``alembic -c <ini>``, and its ``[alembic]``
        ``script_location`` is the location of an app that registers none
    :param options: the parsed ``kotti_migrate.*`` settings, when the caller
        parsed them already (``config.include('kotti_migrate')`` does)
    """

    def __init__(
        self,
        settings: Mapping[str, Any],
        registry: Any = None,
        here: str | os.PathLike[str] | None = None,
        engine: sa.engine.Engine | None = None,
        config_file: str | os.PathLike[str] | None = None,
        options: Options | None = None,
    ) -> None:
        self.settings = dict(settings)
        self.options = options if options is not None else Options.from_settings(self.settings)
        self.here = here
        config_file = config_file or str(self.settings.get("kotti_migrate.config_file", "") or "").strip()
        self.config_file: str | None = os.path.abspath(config_file) if config_file else None
        #: the ini file's ``[alembic]`` options (empty without an ini file)
        self.alembic_options: dict[str, str] = (
            alembic_ini_options(self.config_file) if self.config_file else {}
        )
        specs = registered_specs(self.settings, registry)
        #: True for a Kotti site: Kotti importable and its migrations registered.
        self.uses_kotti = is_kotti_site(specs)
        # Locations Kotti's own tool manages keep Kotti's version table convention.
        kotti_specs = set(split_setting(self.settings.get("kotti.alembic_dirs")) if self.uses_kotti else ())
        self._ini_location: Path | None = None
        ini_spec = self._ini_script_location()
        if ini_spec is not None:
            try:
                self._ini_location = location_path(ini_spec, here)
            except LocationError:
                if not specs:
                    raise
            if not specs:
                log.info(
                    "no migration location registered; using [alembic] "
                    "script_location = %s of %s",
                    self.alembic_options["script_location"],
                    self.config_file,
                )
                specs = [ini_spec]
        self.locations: list[Location] = resolve_locations(specs, here, kotti_specs, self.settings)
        self._engine = engine
        self._owns_engine = engine is None
        self._metadata: Any = _UNRESOLVED
        self._scripts: dict[Path, LocationScripts] = {}
        #: The ini file the site was loaded from, named in advice (``kotti-migrate <ini> ...``).
        self.config_uri: str | None = None
        #: Called with a message when a verb that writes has to wait for the
        #: database lock (another process holds it): the CLI prints it.
        self.on_lock_wait: Callable[[str], None] | None = None

    def _ini_script_location(self) -> str | None:
        """``script_location`` of the ini's ``[alembic]`` section, as a spec for ``here``."""
        value = self.alembic_options.get("script_location", "").strip()
        if not value or self.config_file is None:
            return None
        if is_asset_spec(value) or os.path.isabs(value):
            return value
        # Alembic reads it relative to the working directory; kotti_migrate
        # relative to the ini file's folder (the same when run from there).
        path = os.path.normpath(os.path.join(os.path.dirname(self.config_file), value))
        if os.path.normpath(os.path.join(str(self.here or os.getcwd()), value)) == path:
            return value
        return path

    @classmethod
    def from_config_uri(cls: type[SiteT], config_uri: str, light: bool = False) -> SiteT:
        """Load a site from an ini file (``app.ini`` or ``app.ini#section``).

        ``light``: for verbs that read only locations, revisions and version
        tables (not the models): a Kotti site's views and models are not
        loaded (see :func:`kotti_migrate.loading.load_app`).
        """
        from .loading import load_app  # PasteDeploy: the CLI's way in, not a running app's

        app = load_app(config_uri, light=light)
        site = cls(app.settings, app.registry, here=app.here, config_file=app.config_file)
        site.config_uri = config_uri
        return site

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the database-wide lock that start-up holds (re-entrant per thread).

        Every verb that writes takes it, so the CLI and starting workers
        never migrate at the same time; a verb reads the database's state
        only once it holds it.  Waits at most ``kotti_migrate.lock_timeout``
        seconds, telling :attr:`on_lock_wait` when it has to wait.

        :raises LockTimeout: the lock was not acquired in time
        """
        with database.database_lock(self.engine, self.options.lock_timeout, self.on_lock_wait):
            yield

    @property
    def advice_ini(self) -> str:
        """The ini file named in advice: ``kotti_migrate.config_file`` (which
        ``config.include('kotti_migrate')`` captures from PasteDeploy), the one
        the site was loaded from or given as ``config_file``, else ``<config.ini>``."""
        ini = self.settings.get("kotti_migrate.config_file") or self.config_uri or self.config_file
        return str(ini) if ini else NO_INI

    def command(self, arguments: str) -> str:
        """The ``kotti-migrate`` command line with ``arguments``, for advice in messages."""
        return f"kotti-migrate {self.advice_ini} {arguments}"

    # -- what the site is made of --------------------------------------------

    @property
    def engine(self) -> sa.engine.Engine:
        """The app's engine (built from ``sqlalchemy.*`` settings on first use)."""
        if self._engine is None:
            self._engine = database.engine_from_settings(self.settings)
        return self._engine

    def dispose(self) -> None:
        """Close the connections of an engine this object created."""
        if self._engine is not None and self._owns_engine:
            self._engine.dispose()

    @property
    def metadata(self) -> sa.MetaData | None:
        """The app's metadata: ``kotti_migrate.metadata``, else Kotti's (resolved once)."""
        if self._metadata is _UNRESOLVED:
            self._metadata = resolve_metadata(self.options.metadata, self.uses_kotti)
        return self._metadata

    def location(self, spec: Location | str | os.PathLike[str] | None = None) -> Location:
        """Find a location by spec, package name or path.

        Without ``spec``: the default location (:func:`~kotti_migrate.locations.default_location`:
        Kotti's, else the only registered one), the same rule as the CLI's.

        :raises LocationError: unknown location, or several and none chosen
        """
        if isinstance(spec, Location):
            return spec
        if spec is None:
            return default_location(self.locations)
        return find_location(self.locations, str(spec), self.here, self.uses_kotti, self.settings)

    def select(self, spec: Location | str | None) -> list[Location]:
        """The locations a verb over several works on: all of them, or the one given."""
        return list(self.locations) if spec is None else [self.location(spec)]

    def scripts(self, location: Location | str | None = None) -> LocationScripts:
        """The revision graph of a location (loaded once per object)."""
        from .graph import load_scripts

        loc = self.location(location)
        if loc.path not in self._scripts:
            listing = folder_listing(loc, self.options.cache_dir)
            file_template = None
            if self._ini_location is not None and loc.path == self._ini_location.resolve():
                # The ini's [alembic] location: new revision files named as by ``alembic revision``.
                file_template = self.alembic_options.get("file_template")
            scripts = load_scripts(loc, file_template)
            remember_index(scripts, self.options.cache_dir, listing)  # fresh for the next start-up
            self._scripts[loc.path] = scripts
        return self._scripts[loc.path]

    def forget_scripts(self, location: Location) -> None:
        """Load the revision graph again next time (a revision file was written)."""
        self._scripts.pop(location.path, None)

    def index(self, location: Location) -> RevisionIndex:
        """Heads and revision ids of a location, from the on-disk cache."""
        return revision_index(location, self.options.cache_dir)

    def catalog(self, location: Location | str | None = None) -> RevisionCatalog:
        """Every revision of a location (id, down revisions, message), newest first.

        From the on-disk index while every revision file is unchanged (one
        ``stat`` each, no import); else the files are loaded (and the index
        refreshed).  What read-only commands show.
        """
        loc = self.location(location)
        if loc.path not in self._scripts:
            cached = revision_catalog(loc, self.options.cache_dir)
            if cached is not None:
                return cached
        return catalog_of(self.scripts(loc))

    def owned_tables(self, location: Location) -> set[str]:
        """Tables that belong to a location (see :func:`kotti_migrate.models.owned_tables`)."""
        from .models import owned_tables

        return owned_tables(self.settings, self.metadata, location)

    def polymorphic_tables(self) -> dict[str, tuple[str, tuple[str, ...]]]:
        """Tables every polymorphic query loads (:func:`kotti_migrate.models.polymorphic_tables`)."""
        from .models import polymorphic_tables

        return polymorphic_tables(self.metadata)

    def current_revisions(self, location: Location | str | None = None) -> tuple[str, ...] | None:
        """Revisions recorded for a location; None when its version table is missing."""
        loc = self.location(location)
        with database.connect(self.engine) as connection:
            return records.read_versions(connection, [loc.version_table])[loc.version_table]

    def context_options(self, location: Location) -> dict[str, Any]:
        """Options for ``context.configure`` in kotti_migrate's environment."""
        version_tables = {loc.version_table for loc in self.locations}
        version_tables.add(location.version_table)
        others_own: set[str] = set()
        # ``location`` may be unregistered (``alembic -c`` or ``--scripts`` on
        # a path): the registered ones (Kotti's) still keep their tables.
        others = [other for other in self.locations if other.path != location.path]
        if others and self.metadata is not None:
            mine = self.owned_tables(location)
            for other in others:
                others_own |= self.owned_tables(other) - mine

        def include_object(obj: Any, name: str, type_: str, reflected: bool, compare_to: Any) -> bool:
            if type_ == "table":
                if name in version_tables or name.endswith("_alembic_version"):
                    return False
                if name == ALEMBIC_VERSION_TABLE:
                    return False
                if name in others_own:
                    return False
            return True

        options: dict[str, Any] = {
            "target_metadata": self.metadata,
            "version_table": location.version_table,
            "include_object": include_object,
            "compare_type": True,
        }
        if self.engine.url.get_backend_name() == "sqlite":
            options["render_as_batch"] = True
        return options


def resolve_metadata(name: str | None, uses_kotti: bool) -> sa.MetaData | None:
    """The app's metadata: the dotted ``name`` (a MetaData or a declarative base), else Kotti's.

    :raises ConfigurationError: ``name`` cannot be imported or is no metadata
    """
    if name is None:
        if uses_kotti:
            import kotti

            return kotti.metadata
        return None
    from pyramid.path import DottedNameResolver

    try:
        obj = DottedNameResolver().resolve(name)
    except (ImportError, ValueError) as exc:
        raise ConfigurationError(f"setting kotti_migrate.metadata: cannot import {name!r} ({exc})") from None
    obj = getattr(obj, "metadata", obj)
    if not isinstance(obj, sa.MetaData):
        raise ConfigurationError(
            f"setting kotti_migrate.metadata: {name!r} is not a MetaData or declarative base"
        )
    return obj
