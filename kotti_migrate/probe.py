"""The readiness endpoint: ``GET <kotti_migrate.status_path>``.

Answers whether every location is at its head(s): ``200 {"up_to_date": true}``
or ``503 {"up_to_date": false}`` (also when the database cannot be read,
with the reason, password masked).  Per-location details are shown to a
principal with the ``admin`` permission on Kotti's root, or to everybody
with ``kotti_migrate.status_details = true``.

Cheap enough for a probe every second: the heads are read once per
process (from the revision index: no revision file is imported), then each
request costs one query, on a connection of the probe's own pool (kept
open between requests, also for an SQLite file; any thread may use it, one
at a time).  A database error closes the pool's connections: the next
request connects anew.
"""

from __future__ import annotations

import threading
from typing import Any

import sqlalchemy as sa

from . import database, records
from .errors import MigrateError
from .locations import Location
from .settings import Options, app_folder
from .site import Site

#: Route name of the endpoint.
ROUTE = "kotti_migrate.status"


class Probe:
    """Where the locations of one site stand, cheaply, for a running app."""

    def __init__(self, settings: Any, registry: Any, details: bool, options: Options | None = None) -> None:
        self.settings = settings
        self.registry = registry
        self.details = details
        self.options = options
        self._migrations: Site | None = None
        self._heads: dict[Location, tuple[str, ...]] = {}
        self._guard = threading.Lock()

    def _site(self) -> tuple[Site, dict[Location, tuple[str, ...]]]:
        with self._guard:
            if self._migrations is None:
                engine = probe_engine(self.settings)
                try:
                    migrations = Site(
                        self.settings,
                        self.registry,
                        here=app_folder(self.settings),
                        options=self.options,
                        engine=engine,
                    )
                    self._heads = {loc: tuple(migrations.index(loc).heads) for loc in migrations.locations}
                except BaseException:
                    engine.dispose()
                    raise
                self._migrations = migrations
            return self._migrations, self._heads

    def dispose(self) -> None:
        """Close the pool's connections (the next request connects anew)."""
        if self._migrations is not None:
            self._migrations.engine.dispose()

    def check(self) -> dict[str, Any]:
        """``{"up_to_date": bool, "locations": [...]}`` (one query at head).

        :raises MigrateError: the database cannot be read
        """
        migrations, heads = self._site()
        tables = [loc.version_table for loc in heads]
        engine = migrations.engine
        try:
            try:
                with database.connect(engine) as connection:
                    versions = records.read_versions(connection, tables, set(tables))
            except sa.exc.DBAPIError:  # a version table is missing: ask which exist
                with database.connect(engine) as connection:
                    versions = records.read_versions(connection, tables)
        except sa.exc.DBAPIError as exc:
            self.dispose()  # a connection the server dropped is not handed out again
            raise database.unreachable(engine, exc) from None
        except BaseException:
            self.dispose()
            raise
        locations = []
        for loc, loc_heads in heads.items():
            current = versions[loc.version_table]
            locations.append(
                {
                    "location": loc.spec,
                    "current": list(current) if current is not None else None,
                    "heads": list(loc_heads),
                    "up_to_date": current is not None and set(current) == set(loc_heads) and bool(current),
                }
            )
        return {"up_to_date": all(item["up_to_date"] for item in locations), "locations": locations}


def probe_engine(settings: Any) -> sa.engine.Engine:
    """The probe's engine: its connections are kept between requests, for an SQLite file too.

    SQLAlchemy 1.4 gives an SQLite file no pool (every use opens the file
    and SQLite reads its schema again); here it gets a ``QueuePool``, as
    SQLAlchemy 2 does by default, whose connections may be handed from one
    thread to another (``check_same_thread=False``: the ``sqlite3`` module
    serialises calls, and the pool gives a connection to one thread at a
    time).  Other databases pool by default.

    :raises ConfigurationError: ``sqlalchemy.url`` is missing or invalid
    """
    overrides: dict[str, Any] = {}
    try:
        url = sa.engine.make_url(settings.get("sqlalchemy.url"))
    except Exception:  # reported by engine_from_settings
        url = None
    if url is not None and url.drivername in ("sqlite", "sqlite+pysqlite") and database.sqlite_file(url):
        overrides = {"poolclass": sa.pool.QueuePool, "connect_args": {"check_same_thread": False}}
    return database.engine_from_settings(settings, **overrides)


def status_view(request: Any) -> Any:
    """The endpoint's view: JSON, 200 when every location is at its head(s), else 503."""
    from pyramid.response import Response

    probe: Probe = request.registry.kotti_migrate_probe
    try:
        result = probe.check()
    except MigrateError as exc:
        body: dict[str, Any] = {"up_to_date": False, "error": database.scrub(str(exc))}
    else:
        body = {"up_to_date": result["up_to_date"]}
        if probe.details or _is_admin(request):
            body["locations"] = result["locations"]
    response = Response(json=body, status=200 if body["up_to_date"] else 503)
    response.cache_control = "no-store"
    # Kotti sets caching headers on every response; its "No Cache" policy is this one's.
    response.headers["X-Caching-Policy"] = "No Cache"
    return response


def _is_admin(request: Any) -> bool:
    """True for a principal with Kotti's ``admin`` permission on the site root."""
    if not probe_is_kotti(request.registry.kotti_migrate_probe):
        return False
    try:
        from kotti.resources import get_root

        return bool(request.has_permission("admin", get_root()))
    except Exception:  # the database cannot say: no details
        return False


def probe_is_kotti(probe: Probe) -> bool:
    """True when the probe's site is a Kotti site (Kotti's location registered)."""
    return probe._migrations is not None and probe._migrations.uses_kotti


def add_status_route(config: Any, path: str, details: bool, options: Options | None = None) -> None:
    """Register the endpoint at ``path`` (called by ``includeme`` with the options it parsed)."""
    config.registry.kotti_migrate_probe = Probe(config.registry.settings, config.registry, details, options)
    config.add_route(ROUTE, path, factory=lambda request: None)
    config.add_view(status_view, route_name=ROUTE, request_method="GET")
