"""The library API: one :class:`Migrations` per site, a row of thin verbs.

Verbs return data (revision objects, reports) and never print; the CLI
renders them.  Every verb takes a location (a spec, a package name or a
path) or works on all registered locations, in order.

Example::

    from kotti_migrate import Migrations

    migrations = Migrations.from_config_uri("development.ini")
    for status in migrations.status():
        print(status.location, status.current, status.heads)
    migrations.upgrade()            # every location to its head(s)
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import sqlalchemy as sa
from alembic.runtime.environment import EnvironmentContext
from alembic.script import Script
from alembic.script.revision import MultipleHeads, ResolutionError
from alembic.script.revision import RevisionError as AlembicRevisionError
from alembic.util import CommandError

from . import database
from .environment import (
    StepRecorder,
    StepReport,
    alembic_config,
    env_lock,
    kotti_session,
    restore_streams,
)
from .errors import (
    ConfigurationError,
    LocationError,
    MigrateError,
    MigrationFailed,
    RevisionError,
)
from .locations import (
    ALEMBIC_VERSION_TABLE,
    KOTTI_LOCATION,
    Location,
    find_location,
    is_asset_spec,
    location_path,
    registered_specs,
    resolve_location,
    resolve_locations,
    split_setting,
)
from .scripts import (
    IndexedRevision,
    LocationScripts,
    RevisionCatalog,
    RevisionIndex,
    catalog_of,
    folder_listing,
    load_scripts,
    remember_index,
    revision_catalog,
    revision_index,
)
from .settings import Options, alembic_ini_options, kotti_available, load_app

log = logging.getLogger("kotti_migrate")


@dataclass
class LocationStatus:
    """Where one location stands.

    :ivar current: revisions in the version table; None when it is missing
    :ivar heads: head revisions on disk
    :ivar pending: revisions an upgrade to heads would apply, newest first
        (:class:`~kotti_migrate.scripts.IndexedRevision`: ``revision``, ``doc``...)
    :ivar unknown: revisions in the database that the code does not know
    """

    location: Location
    current: tuple[str, ...] | None
    heads: tuple[str, ...]
    pending: list[IndexedRevision] = field(default_factory=list)
    unknown: tuple[str, ...] = ()

    @property
    def up_to_date(self) -> bool:
        """True when the database is exactly at the head(s)."""
        return not self.pending and not self.unknown and self.current is not None


@dataclass
class RunReport:
    """What one upgrade, downgrade or stamp did to one location."""

    location: Location
    before: tuple[str, ...]
    after: tuple[str, ...]
    steps: list[StepReport]
    sql: str | None = None


@dataclass
class CheckResult:
    """Differences between the models and the database, for one location."""

    location: Location
    diffs: list[Any]


class Migrations:
    """All migration locations of one site, and the verbs over them.

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
    """

    def __init__(
        self,
        settings: Mapping[str, Any],
        registry: Any = None,
        here: str | os.PathLike[str] | None = None,
        engine: sa.engine.Engine | None = None,
        config_file: str | os.PathLike[str] | None = None,
    ) -> None:
        self.settings = dict(settings)
        self.options = Options.from_settings(self.settings)
        self.here = here
        config_file = config_file or str(self.settings.get("kotti_migrate.config_file", "") or "").strip()
        self.config_file: str | None = os.path.abspath(config_file) if config_file else None
        #: the ini file's ``[alembic]`` options (empty without an ini file)
        self.alembic_options: dict[str, str] = (
            alembic_ini_options(self.config_file) if self.config_file else {}
        )
        specs = registered_specs(self.settings, registry)
        self._kotti_site = KOTTI_LOCATION in specs and kotti_available()
        # Locations Kotti's own tool manages keep Kotti's version table convention.
        kotti_specs = set(split_setting(self.settings.get("kotti.alembic_dirs")) if self._kotti_site else ())
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
    def from_config_uri(cls, config_uri: str) -> Migrations:
        """Load a site from an ini file (``app.ini`` or ``app.ini#section``)."""
        app = load_app(config_uri)
        migrations = cls(app.settings, app.registry, here=app.here, config_file=app.config_file)
        migrations.config_uri = config_uri
        return migrations

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the database-wide lock that start-up holds (re-entrant per thread).

        Every verb that writes takes it, so the CLI and starting workers
        never migrate at the same time; a verb reads the database's state
        only once it holds the lock.  Waits at most ``kotti_migrate.lock_timeout``
        seconds, telling :attr:`on_lock_wait` when it has to wait.

        :raises LockTimeout: the lock was not acquired in time
        """
        with database.database_lock(self.engine, self.options.lock_timeout, self.on_lock_wait):
            yield

    @property
    def advice_ini(self) -> str:
        """The ini file named in advice: ``kotti_migrate.config_file``, the one the
        site was loaded from, the ``.ini`` on the command line, else ``<config.ini>``."""
        ini = self.settings.get("kotti_migrate.config_file") or self.config_uri
        if ini:
            return str(ini)
        return next(
            (a for a in sys.argv[1:] if a.endswith(".ini") and os.path.isfile(a.split("#")[0])),
            "<config.ini>",
        )

    def command(self, arguments: str) -> str:
        """The ``kotti-migrate`` command line with ``arguments``, for advice in messages."""
        return f"kotti-migrate {self.advice_ini} {arguments}"

    # -- what the site is made of --------------------------------------------

    @property
    def uses_kotti(self) -> bool:
        """True for a Kotti site: Kotti importable and its migrations registered."""
        return any(loc.spec == KOTTI_LOCATION for loc in self.locations) and kotti_available()

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
        """The app's metadata: ``kotti_migrate.metadata``, else Kotti's."""
        name = self.options.metadata
        if name is None:
            if self.uses_kotti:
                import kotti

                return kotti.metadata
            return None
        from pyramid.path import DottedNameResolver

        try:
            obj = DottedNameResolver().resolve(name)
        except (ImportError, ValueError) as exc:
            raise ConfigurationError(
                f"setting kotti_migrate.metadata: cannot import {name!r} ({exc})"
            ) from None
        obj = getattr(obj, "metadata", obj)
        if not isinstance(obj, sa.MetaData):
            raise ConfigurationError(
                f"setting kotti_migrate.metadata: {name!r} is not a MetaData "
                f"or declarative base"
            )
        return obj

    def location(self, spec: Location | str | os.PathLike[str] | None = None) -> Location:
        """Find a location by spec, package name or path (default: the first one).

        :raises LocationError: unknown location
        """
        if isinstance(spec, Location):
            return spec
        if spec is None:
            if not self.locations:
                raise LocationError("no migration locations are registered")
            return self.locations[0]
        return find_location(self.locations, str(spec), self.here, self._kotti_site, self.settings)

    def _selected(self, spec: Location | str | None) -> list[Location]:
        return list(self.locations) if spec is None else [self.location(spec)]

    def scripts(self, location: Location | str | None = None) -> LocationScripts:
        """The revision graph of a location (loaded once per object)."""
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
        """Tables that belong to a location.

        From the setting ``kotti_migrate.tables.<package>`` when given, else
        the tables that mapped classes defined in the location's package
        define themselves: a content type's own table, not the tables it
        inherits (``nodes``, ``contents`` of Kotti's ``Content``).
        """
        override = self.settings.get(f"kotti_migrate.tables.{location.package}")
        if override is not None:
            return set(str(override).split())
        metadata = self.metadata
        if metadata is None:
            return set()
        prefix = location.package
        owned: set[str] = set()
        for mapper in _mappers():
            module = getattr(mapper.class_, "__module__", "") or ""
            if module != prefix and not module.startswith(prefix + "."):
                continue
            for table in _own_tables(mapper):
                if table.metadata is metadata and table.name in metadata.tables:
                    owned.add(table.name)
        return owned

    def polymorphic_tables(self) -> dict[str, tuple[str, tuple[str, ...]]]:
        """Tables that every query of a polymorphically loaded base class joins.

        Kotti's ``Node`` loads with ``with_polymorphic="*"``: each content
        type's table is part of every query of nodes, so every page needs it.

        :returns: table name -> (name of the base class, its mapped columns)
        """
        metadata = self.metadata
        found: dict[str, tuple[str, tuple[str, ...]]] = {}
        if metadata is None:
            return found
        for mapper in _mappers():
            if mapper.inherits is not None or not mapper.with_polymorphic:
                continue
            if mapper.with_polymorphic[0] != "*":
                continue
            base = f"{mapper.class_.__module__}.{mapper.class_.__name__}"
            for sub in mapper.self_and_descendants:
                for table in _own_tables(sub):
                    if table.metadata is metadata and table.name in metadata.tables:
                        found[table.name] = (base, tuple(column.name for column in table.columns))
        return found

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

    # -- running an environment -----------------------------------------------

    def _run(
        self,
        location: Location,
        fn: Any,
        *,
        sql: bool = False,
        template_args: dict | None = None,
        autogenerate: bool = False,
        **kw: Any,
    ) -> tuple[StepRecorder, str | None]:
        """Run ``fn`` inside the location's migration environment.

        :returns: the step recorder and, in ``sql`` mode, the SQL emitted
        """
        scripts = self.scripts(location)
        if location.needs_ini and self.config_file is None:
            raise ConfigurationError(
                f"location {location.spec!r} runs its own env.py, which reads the app's ini file "
                f"(config.config_file_name), and kotti_migrate does not know which ini the app was "
                f"loaded from: add kotti_migrate.config_file = %(__file__)s to the app's settings"
            )
        buffer = io.StringIO() if sql else None
        config = alembic_config(
            self, location, stdout=io.StringIO(), sql=sql, autogenerate=autogenerate
        )
        recorder = StepRecorder()
        opts: dict[str, Any] = dict(
            fn=recorder.wrap(fn),
            as_sql=sql,
            version_table=location.version_table,
            **kw,
        )
        if buffer is not None:
            opts["output_buffer"] = buffer
        if template_args is not None:
            opts["template_args"] = template_args
        captured = io.StringIO()
        stderr = sys.stderr
        with env_lock, _restoring_streams(captured, stderr), (
            kotti_session(self.engine) if self.uses_kotti and not sql else contextlib.nullcontext()
        ):
            # An env.py of its own may print (Kotti's prints tracebacks and
            # swallows the error): keep that out of the user's way.
            redirect = (
                contextlib.redirect_stderr(captured)
                if location.env_py is not None
                else contextlib.nullcontext()
            )
            with EnvironmentContext(config, scripts, **opts), redirect:
                try:
                    scripts.run_env()
                except MigrateError:
                    raise
                except (CommandError, AlembicRevisionError) as exc:
                    if recorder.pending_step is not None:
                        raise self._failed(location, recorder, exc, sql, captured) from exc
                    raise RevisionError(f"location {location.spec!r}: {exc}") from exc
                except sa.exc.OperationalError as exc:
                    if recorder.pending_step is None and not recorder.applied:
                        raise database.unreachable(self.engine, exc) from None
                    raise self._failed(location, recorder, exc, sql, captured) from exc
                except Exception as exc:
                    raise self._failed(location, recorder, exc, sql, captured) from exc
        if recorder.pending_step is not None or not recorder.finished:
            # An env.py that swallowed the error (Kotti's does), before or
            # during a step.
            raise self._failed(location, recorder, None, sql, captured)
        if captured.getvalue():
            sys.stderr.write(database.scrub(captured.getvalue(), self.engine.url))
        return recorder, buffer.getvalue() if buffer is not None else None

    def _failed(
        self,
        location: Location,
        recorder: StepRecorder,
        exc: BaseException | None,
        sql: bool,
        captured: io.StringIO,
    ) -> MigrationFailed:
        revision = recorder.failed_revision
        output = captured.getvalue()
        ran_nothing = exc is None and not recorder.called and not output.strip()
        if exc is None:
            last = _last_error_line(output)
            if last:
                reason = f"{last} (reported and rolled back by its env.py)"
            elif ran_nothing:
                reason = (
                    f"its env.py ({location.env_py}) ran no migrations: it returned without "
                    f"calling context.run_migrations() (check the conditions it runs them under)"
                )
            else:
                reason = "its env.py handled the error and rolled back"
            reason = database.scrub(reason, self.engine.url)
        else:
            text = str(exc).strip().splitlines()
            reason = f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")
            reason = database.scrub(reason, self.engine.url)
        current: tuple[str, ...] = ()
        where = ""
        if not sql:
            try:
                current = self.current_revisions(location) or ()
                where = f"; the database is at {', '.join(current) or 'base'}"
            except MigrateError:
                pass
        if revision:
            what = f"revision {revision}"
        elif sql and location.env_py is not None:
            what = "its env.py in offline (--sql) mode"
        else:
            what = "the migration environment"
        backend = self.engine.url.get_backend_name()
        if revision and not sql and backend in ("mysql", "mariadb"):
            # Their DDL commits by itself: the failed revision's schema
            # changes up to the error stay, without its version row.
            previous = ", ".join(current) or "base"
            where += (
                f"; {backend} cannot roll back schema changes, so revision {revision} may be "
                f"half-applied: inspect the database and undo what it did, make sure the version "
                f"table says {previous} ("
                + self.command(f"stamp --scripts={location.spec} --purge --rev {previous}")
                + "), fix the revision and upgrade again"
            )
        failed = "" if ran_nothing else f"{what} failed: "
        error = MigrationFailed(
            f"location {location.spec!r}: {failed}{reason}{where}",
            location=location.spec,
            revision=revision,
            current=current,
        )
        error.details = database.scrub(output, self.engine.url)
        return error

    def _resolve(self, scripts: LocationScripts, location: Location, revision: str) -> None:
        """Check that a revision name exists, with a clear error otherwise."""
        if revision in ("head", "heads", "base") or revision.startswith(("+", "-")) or ":" in revision:
            return
        for part in revision.replace("@", " ").split():
            if part in ("head", "heads", "base") or part.lstrip("+-").isdigit():
                continue
            part = re.sub(r"(?<=\w)[+-]\d+$", "", part)  # ae10+2: relative to ae10 (Alembic's syntax)
            try:
                found = scripts.revision_map.get_revisions(part)
            except MultipleHeads as exc:
                raise RevisionError(f"location {location.spec!r}: {exc}") from None
            except ResolutionError as exc:
                message = str(exc)
                if "ambiguous" in message.lower() or "multiple" in message.lower():
                    raise RevisionError(
                        f"location {location.spec!r}: revision prefix {part!r} is ambiguous"
                    ) from None
                raise RevisionError(
                    f"location {location.spec!r}: unknown revision {part!r}"
                ) from None
            if not found:
                raise RevisionError(f"location {location.spec!r}: unknown revision {part!r}")

    # -- reading ---------------------------------------------------------------

    def current_revisions(self, location: Location | str | None = None) -> tuple[str, ...] | None:
        """Revisions recorded for a location; None when its version table is missing."""
        loc = self.location(location)
        with database.connect(self.engine) as connection:
            return database.read_versions(connection, [loc.version_table])[loc.version_table]

    def current(self, location: Location | str | None = None) -> dict[Location, tuple[str, ...] | None]:
        """Recorded revisions of one or all locations (one database round trip)."""
        selected = self._selected(location)
        with database.connect(self.engine) as connection:
            versions = database.read_versions(connection, [loc.version_table for loc in selected])
        return {loc: versions[loc.version_table] for loc in selected}

    def is_fresh(self) -> bool:
        """True when the database is empty (or holds only version tables without rows)."""
        with database.connect(self.engine) as connection:
            return database.read_records(connection, [loc.version_table for loc in self.locations])[2]

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

    def heads(self, location: Location | str | None = None) -> list[Script]:
        """Head revisions of a location."""
        scripts = self.scripts(location)
        return [scripts.get_revision(rev) for rev in scripts.get_heads()]

    def history(self, location: Location | str | None = None, rev_range: str | None = None) -> list[Script]:
        """Revisions of a location, newest first (optionally ``base:head`` style range)."""
        loc = self.location(location)
        scripts = self.scripts(loc)
        base, head = "base", "heads"
        if rev_range:
            if ":" not in rev_range:
                raise RevisionError(f"history range {rev_range!r} must look like START:END")
            base, _, head = rev_range.partition(":")
            base, head = base or "base", head or "heads"
            for rev in (base, head):
                self._resolve(scripts, loc, rev)
        try:
            return list(scripts.walk_revisions(base=base, head=head))
        except (CommandError, AlembicRevisionError) as exc:
            raise RevisionError(f"location {loc.spec!r}: {exc}") from None

    def show(self, location: Location | str | None, revision: str) -> list[Script]:
        """The revision(s) a name refers to (``head``, an id or prefix)."""
        loc = self.location(location)
        scripts = self.scripts(loc)
        self._resolve(scripts, loc, revision)
        try:
            return [s for s in scripts.get_revisions(revision) if s is not None]
        except (CommandError, AlembicRevisionError) as exc:
            raise RevisionError(f"location {loc.spec!r}: {exc}") from None

    def status(self, location: Location | str | None = None) -> list[LocationStatus]:
        """Where every (or one) location stands against its heads (from :meth:`catalog`)."""
        selected = self._selected(location)
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
        selected = self._selected(location)
        with self.lock() if not sql else contextlib.nullcontext():
            if not sql and self.builds_from_models(selected) and self.is_fresh():
                # Kotti's first revision alters tables that no revision creates: its
                # migrations cannot build the schema.  Refuse before writing anything.
                raise ConfigurationError(
                    f"database {database.mask_url(self.engine.url)} is empty and Kotti's migrations "
                    "cannot create its tables: start the app, or run kotti-migrate <config_uri> "
                    "upgrade (without --rev), which creates and stamps it as start-up does"
                )
            return [self._upgrade(loc, revision, sql) for loc in selected]

    def _upgrade(self, loc: Location, revision: str, sql: bool) -> RunReport:
        scripts = self.scripts(loc)
        starting_rev, destination = None, revision
        if sql and ":" in revision:
            starting_rev, destination = revision.split(":", 1)
            self._resolve(scripts, loc, starting_rev)
        self._resolve(scripts, loc, destination)
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
            recorder, output = self._run(
                loc, fn, sql=sql, starting_rev=starting_rev, destination_rev=destination
            )
            return RunReport(loc, before, before, recorder.applied, output)
        self._check_rows(loc, scripts, before)
        steps = self._run_each(
            loc, fn, lambda: scripts._upgrade_revs(destination, before), destination_rev=destination
        )
        return RunReport(loc, before, self.current_revisions(loc) or (), steps)

    def _run_each(
        self, location: Location, fn: Any, plan: Callable[[], list[Any]], **kw: Any
    ) -> list[StepReport]:
        """Run the steps of ``plan`` one per environment run: one transaction each.

        An ``env.py`` runs all the steps it is given in one transaction
        (Kotti's, Alembic's stock one on PostgreSQL, and kotti_migrate's own
        on Kotti's ``DBSession``), so a failing revision would take the good
        ones before it down with it; given one step at a time, each revision
        and its version row commit (or roll back) together.  A plan that
        cannot be made runs ``fn`` in one run, which reports why.
        """
        try:
            steps = plan()
        except (CommandError, AlembicRevisionError):
            steps = None
        if not steps:  # one run: creates a missing version table, reports what is wrong
            recorder, _ = self._run(location, fn, **kw)
            return recorder.applied
        applied: list[StepReport] = []
        for step in steps:
            recorder, _ = self._run(location, lambda rev, context, step=step: [step], **kw)
            applied.extend(recorder.applied)
        return applied

    def _check_rows(self, location: Location, scripts: LocationScripts, current: Sequence[str]) -> None:
        """Refuse a version table whose rows contradict each other (one an ancestor of another).

        Alembic keeps one row per branch; two rows on one line of history
        (left by a tool that failed halfway, or by hand) would end in an
        Alembic internal error.
        """
        if len(current) < 2:
            return
        try:
            lines = {
                rev: {s.revision for s in scripts.revision_map.iterate_revisions(rev, "base") if s}
                for rev in current
            }
        except (CommandError, AlembicRevisionError):
            return  # unknown revisions: reported where they are met
        for older in current:
            for newer in current:
                if older != newer and older in lines[newer]:
                    raise RevisionError(
                        f"location {location.spec!r}: its version table {location.version_table} "
                        f"has {len(current)} rows ({', '.join(current)}) but {older} is an ancestor "
                        f"of {newer}, and one line of history has one current revision; check which "
                        f"revision the schema is at and record only that one: "
                        + self.command(f"stamp --scripts={location.spec} --purge --rev {newer}")
                    )

    def downgrade(
        self, location: Location | str | None, revision: str, sql: bool = False
    ) -> RunReport:
        """Downgrade one location to ``revision`` (``base``, an id, ``-1``...).

        One transaction per revision, under the database lock, as :meth:`upgrade`.
        """
        loc = self.location(location)
        scripts = self.scripts(loc)
        starting_rev = None
        if sql:
            if ":" not in revision:
                raise RevisionError("downgrade with --sql needs a range START:END")
            starting_rev, revision = revision.split(":", 1)
        self._resolve(scripts, loc, revision)

        def fn(rev: Any, context: Any) -> Any:
            return scripts._downgrade_revs(revision, rev)

        if sql:
            recorder, output = self._run(
                loc, fn, sql=sql, starting_rev=starting_rev, destination_rev=revision
            )
            return RunReport(loc, (), (), recorder.applied, output)
        with self.lock():
            before = self.current_revisions(loc) or ()
            self._check_rows(loc, scripts, before)
            if revision.startswith("-") and len(before) > 1:
                # Alembic would pick one of the heads at random (with a warning).
                raise RevisionError(
                    f"location {loc.spec!r}: downgrade {revision} is ambiguous, the database is at "
                    f"several heads ({', '.join(before)}); give a revision, e.g. {before[0]}@{revision}"
                )
            steps = self._run_each(
                loc, fn, lambda: scripts._downgrade_revs(revision, before), destination_rev=revision
            )
            return RunReport(loc, before, self.current_revisions(loc) or (), steps)

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
        loc = self.location(location)
        scripts = self.scripts(loc)
        if revision is None or revision == "None":
            revision = "base"
        revisions = (revision,) if isinstance(revision, str) else tuple(revision)
        for rev in revisions:
            self._resolve(scripts, loc, rev)

        def fn(rev: Any, context: Any) -> Any:
            return scripts._stamp_revs(revisions if len(revisions) > 1 else revisions[0], rev)

        if sql:
            recorder, output = self._run(
                loc, fn, sql=sql, starting_rev=None, destination_rev=revisions[-1], purge=purge
            )
            return RunReport(loc, (), (), recorder.applied, output)
        with self.lock():
            before = self.current_revisions(loc) or ()
            if not purge:
                self._check_rows(loc, scripts, before)
            recorder, output = self._run(
                loc, fn, sql=sql, starting_rev=None, destination_rev=revisions[-1], purge=purge
            )
            return RunReport(loc, before, self.current_revisions(loc) or (), recorder.applied, output)

    def stamp_heads(self) -> list[RunReport]:
        """Stamp every location at its head(s): one row per head (under the database lock)."""
        with self.lock():
            return [self.stamp(loc, "heads") for loc in self.locations]

    # -- writing revision files --------------------------------------------------

    def revision(
        self,
        location: Location | str | None,
        message: str | None = None,
        autogenerate: bool = False,
        rev_id: str | None = None,
        head: str = "head",
        splice: bool = False,
        branch_label: str | None = None,
        depends_on: str | Sequence[str] | None = None,
    ) -> list[Script]:
        """Create a revision file (autogenerated from the models when asked)."""
        from alembic.autogenerate import RevisionContext

        loc = self.location(location)
        scripts = self.scripts(loc)
        if rev_id is not None and rev_id in {s.revision for s in scripts.walk_revisions()}:
            raise RevisionError(f"location {loc.spec!r}: revision {rev_id!r} already exists")
        if autogenerate and self.metadata is None:
            raise ConfigurationError(
                "autogenerate needs the app's metadata: set kotti_migrate.metadata"
            )
        if head not in ("head", "heads") and "@" not in head:
            self._resolve(scripts, loc, head)
        config = alembic_config(self, loc, stdout=io.StringIO())
        command_args = dict(
            message=message,
            autogenerate=autogenerate,
            sql=False,
            head=head,
            splice=splice,
            branch_label=branch_label,
            version_path=None,
            rev_id=rev_id,
            depends_on=depends_on,
        )
        context = RevisionContext(config, scripts, command_args)
        if autogenerate:

            ours = self.context_options(loc)["include_object"]

            def fn(rev: Any, ctx: Any) -> Any:
                # An env.py of its own may pass no include_object (or its own):
                # version tables and other locations' tables stay out anyway.
                theirs = ctx.opts.get("include_object")
                ctx.opts["include_object"] = (
                    ours if theirs in (None, ours) else _both(ours, theirs)
                )
                context.run_autogenerate(rev, ctx)
                return []

            self._run(
                loc,
                fn,
                template_args=context.template_args,
                autogenerate=True,
                revision_context=context,
            )
        try:
            generated = [s for s in context.generate_scripts() if s is not None]
        except (CommandError, AlembicRevisionError) as exc:
            raise RevisionError(f"location {loc.spec!r}: {exc}") from None
        self._scripts.pop(loc.path, None)
        return generated

    def merge(
        self,
        location: Location | str | None,
        revisions: Sequence[str] = ("heads",),
        message: str | None = None,
        branch_label: str | None = None,
        rev_id: str | None = None,
    ) -> Script:
        """Create a revision that merges several heads (all heads by default)."""
        from alembic.util import rev_id as new_rev_id

        loc = self.location(location)
        scripts = self.scripts(loc)
        for rev in revisions:
            self._resolve(scripts, loc, rev)
        try:
            script = scripts.generate_revision(
                rev_id or new_rev_id(),
                message,
                refresh=True,
                head=list(revisions),
                branch_labels=branch_label,
                config=alembic_config(self, loc),
            )
        except (CommandError, AlembicRevisionError) as exc:
            raise RevisionError(f"location {loc.spec!r}: {exc}") from None
        self._scripts.pop(loc.path, None)
        assert script is not None
        return script

    def check(self, location: Location | str | None = None) -> list[CheckResult]:
        """Compare the models with the database (what autogenerate would write).

        Runs kotti_migrate's own comparison (not the location's env.py), so
        version tables and other locations' tables are left out alike.
        """
        from alembic.autogenerate import compare_metadata
        from alembic.runtime.migration import MigrationContext

        metadata = self.metadata
        if metadata is None:
            raise ConfigurationError(
                "check needs the app's metadata: set kotti_migrate.metadata"
            )
        results = []
        with database.connect(self.engine) as connection:
            for loc in self._selected(location):
                options = self.context_options(loc)
                options.pop("render_as_batch", None)
                context = MigrationContext.configure(connection, opts=options)
                results.append(CheckResult(loc, list(compare_metadata(context, metadata))))
        return results

    def schema_differences(self, tables: set[str]) -> list[Any]:
        """Differences between the models and the database, for ``tables`` only."""
        from alembic.autogenerate import compare_metadata
        from alembic.runtime.migration import MigrationContext

        metadata = self.metadata
        if metadata is None or not tables:
            return []

        def include_object(obj: Any, name: str, type_: str, reflected: bool, compare_to: Any) -> bool:
            if type_ == "table":
                return name in tables
            table = getattr(obj, "table", None)
            return table is None or table.name in tables

        with database.connect(self.engine) as connection:
            context = MigrationContext.configure(
                connection, opts={"include_object": include_object, "compare_type": True}
            )
            return list(compare_metadata(context, metadata))

    def init(self, spec: str, with_env: bool = True) -> Location:
        """Create a migration environment for an add-on at ``spec``.

        Creates the folder with ``versions/``, ``script.py.mako`` and (unless
        ``with_env`` is false) an ``env.py`` that delegates to kotti_migrate,
        so that plain ``alembic -c <ini>`` works too.

        :raises LocationError: the folder exists and is not empty
        """
        path = location_path(spec, self.here)
        if path.exists() and any(path.iterdir()):
            raise LocationError(f"location {spec!r}: folder {path} exists and is not empty")
        template = Path(__file__).parent / "template"
        path.mkdir(parents=True, exist_ok=True)
        (path / "versions").mkdir()
        shutil.copy(template / "script.py.mako", path / "script.py.mako")
        if with_env:
            shutil.copy(template / "env.py", path / "env.py")
        (path / "README").write_text(
            "Migration environment managed with kotti_migrate.\n"
            f"Register it in your add-on: settings['kotti.alembic_dirs'] += ' {spec}'\n"
            "or config.add_alembic_dir(...) in its includeme.\n"
        )
        return resolve_location(spec, self.here)


def _mappers() -> list[Any]:
    """Every configured mapper of every declarative registry."""
    from sqlalchemy.orm import mapperlib

    return [mapper for registry in list(mapperlib._all_registries()) for mapper in list(registry.mappers)]


def _own_tables(mapper: Any) -> list[sa.Table]:
    """The tables a mapped class defines itself (joined-table inheritance: not its parents')."""
    table = mapper.local_table
    if mapper.inherits is not None and table is mapper.inherits.local_table:
        return []  # single-table inheritance: the parent's table
    return [table] if isinstance(table, sa.Table) else []


def _both(first: Any, second: Any) -> Any:
    """An ``include_object`` hook accepting what both hooks accept."""

    def include_object(*args: Any) -> bool:
        return bool(first(*args)) and bool(second(*args))

    return include_object


@contextlib.contextmanager
def _restoring_streams(captured: io.StringIO, original: Any) -> Any:
    """Logging that an env.py set up while stderr was captured writes to stderr afterwards."""
    try:
        yield
    finally:
        restore_streams(captured, original)


def _last_error_line(output: str) -> str:
    """The exception line of the last traceback in ``output``."""
    for line in reversed(output.strip().splitlines()):
        if line and not line[0].isspace() and not line.startswith(("[SQL", "(Background", "[parameters")):
            if "Error" in line or "Exception" in line or ":" in line:
                return line.strip()
    return ""
