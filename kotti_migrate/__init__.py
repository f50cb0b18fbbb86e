"""kotti_migrate: the database of a Kotti (or Pyramid) site follows its code.

Library entry point: :class:`Migrations`.  Pyramid entry point:
``config.include('kotti_migrate')`` (or ``pyramid.includes = kotti_migrate``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .commands import CheckResult, LocationStatus, Migrations, RunReport
    from .errors import (
        ConfigurationError,
        DatabaseError,
        LocationError,
        LockTimeout,
        MigrateError,
        MigrationFailed,
        MigrationsRequired,
        RevisionError,
        UnknownDatabaseRevision,
    )
    from .locations import Location, resolve_location

#: Where each name of the public API lives: imported on first use, so that
#: ``config.include('kotti_migrate')`` in an app at head imports only what
#: start-up needs.
_API = {
    "CheckResult": "commands",
    "LocationStatus": "commands",
    "Migrations": "commands",
    "RunReport": "commands",
    "ConfigurationError": "errors",
    "DatabaseError": "errors",
    "LocationError": "errors",
    "LockTimeout": "errors",
    "MigrateError": "errors",
    "MigrationFailed": "errors",
    "MigrationsRequired": "errors",
    "RevisionError": "errors",
    "UnknownDatabaseRevision": "errors",
    "Location": "locations",
    "add_alembic_dir": "locations",
    "resolve_location": "locations",
}


def __getattr__(name: str) -> Any:
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'kotti_migrate' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))


__version__ = "0.1.0"

__all__ = [
    "CheckResult",
    "ConfigurationError",
    "DatabaseError",
    "Location",
    "LocationError",
    "LocationStatus",
    "LockTimeout",
    "MigrateError",
    "MigrationFailed",
    "Migrations",
    "MigrationsRequired",
    "RevisionError",
    "RunReport",
    "UnknownDatabaseRevision",
    "add_alembic_dir",
    "includeme",
    "resolve_location",
]

#: Start-up runs after every other action of the same commit (so after
#: ``add_alembic_dir`` calls of add-ons included alongside).
STARTUP_ORDER = 1000


def includeme(config: Any) -> None:
    """Hook kotti_migrate into a Pyramid app.

    Adds the directive ``config.add_alembic_dir(location)`` and registers
    the start-up work (see :mod:`kotti_migrate.boot`), which runs when
    the configuration is committed: in a Kotti site before Kotti creates
    its tables; in any app before it serves a request.

    Settings read (all optional; see :mod:`kotti_migrate.settings`):

    - ``sqlalchemy.url`` (and other ``sqlalchemy.*``): the database.
    - ``kotti.alembic_dirs``: whitespace separated migration locations.
    - ``kotti_migrate.auto_upgrade`` (bool, default false; environment
      variable ``KOTTI_MIGRATE_AUTO_UPGRADE`` overrides it): run pending
      migrations at start-up instead of only warning.
    - ``kotti_migrate.lock_timeout`` (seconds, default 300): how long a
      worker waits for another one's start-up work.
    - ``kotti_migrate.metadata`` (dotted name): the app's MetaData or
      declarative base; Kotti's metadata by default in a Kotti site.
    - ``kotti_migrate.startup`` (bool, default true): false disables the
      start-up work.
    - ``kotti_migrate.create_all`` (bool, default true): create missing
      tables from the metadata at start-up.
    - ``kotti_migrate.cache_dir`` (folder, or ``off``): revision index cache.
    - ``kotti_migrate.tables.<package>``: tables belonging to a location.
    - ``kotti_migrate.config_file``: the ini file the app was loaded from
      (default: the one PasteDeploy is loading, as ``pserve`` does); a
      location's own ``env.py`` reads it as ``config.config_file_name``, its
      ``[alembic]`` section is read, and it is named in the advice logged for
      pending migrations.
    - ``kotti_migrate.version_table.<package>``: the version table of that
      package's location (see :mod:`kotti_migrate.locations`).
    - ``kotti_migrate.status_path`` (URL path, default off): the readiness
      endpoint (:mod:`kotti_migrate.probe`); ``kotti_migrate.status_details``
      (bool, default false) shows its per-location details to everybody.

    In a Kotti site it also adds the Site Setup page ``@@migrations``
    (:mod:`kotti_migrate.views`).
    """
    from .boot import start_up
    from .errors import MigrateError
    from .locations import add_alembic_dir
    from .settings import Options, pastedeploy_config_file

    config.add_directive("add_alembic_dir", add_alembic_dir)
    settings = config.get_settings()
    options = Options.from_settings(settings)  # a bad value fails now, clearly
    if options.status_path:
        from .probe import add_status_route

        add_status_route(config, options.status_path, options.status_details, options)
    if settings is not None and _is_kotti_site(settings):
        _add_migrations_page(config)  # Site Setup -> Migrations
        from pyramid.events import ApplicationCreated

        config.add_subscriber(_warn_without_transaction_manager, ApplicationCreated)
    if settings is not None and not settings.get("kotti_migrate.config_file"):
        found = pastedeploy_config_file()
        if found:
            settings["kotti_migrate.config_file"] = found
    info = _StartupInfo()

    def startup() -> None:
        try:
            # The options parsed above: settings are parsed once per boot.
            start_up(config.registry.settings, config.registry, options)
        except MigrateError as exc:
            info.failure = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise

    # Pyramid re-raises an action's error as ConfigurationExecutionError,
    # whose message ends with the action's "info": make that the one line
    # an operator needs (under pserve, the last line of the traceback).
    previous = config.info
    config.info = info
    try:
        config.action(("kotti_migrate.startup",), startup, order=STARTUP_ORDER)
    finally:
        config.info = previous


def _is_kotti_site(settings: Any) -> bool:
    """True in a Kotti site: Kotti importable and its migrations registered."""
    from .kotti_site import is_kotti_site
    from .locations import split_setting

    return is_kotti_site(split_setting(settings.get("kotti.alembic_dirs")))


def _add_migrations_page(config: Any) -> None:
    """Register the admin page ``@@migrations`` and its Site Setup link (Kotti sites only)."""
    from .kotti_site import PAGE_NAME, PAGE_TITLE, add_site_setup_link

    config.add_view(
        _migrations_view, name=PAGE_NAME, permission="admin", renderer="kotti_migrate:templates/migrations.pt"
    )
    add_site_setup_link(PAGE_NAME, PAGE_TITLE)


def _migrations_view(context: Any, request: Any) -> Any:
    """``@@migrations``: :func:`kotti_migrate.views.migrations_view`, imported on the first request
    (an app at head that nobody asks for the page needs none of it)."""
    from .views import migrations_view

    return migrations_view(context, request)


def _warn_without_transaction_manager(event: Any) -> None:
    """Warn (once the app is made, when start-up runs) about a Kotti site without ``pyramid_tm``."""
    import logging

    from .kotti_site import NO_TRANSACTION_MANAGER, has_transaction_manager
    from .settings import startup_disabled

    registry = event.app.registry
    if not startup_disabled() and not has_transaction_manager(registry):
        logging.getLogger("kotti_migrate").warning("%s", NO_TRANSACTION_MANAGER)


class _StartupInfo:
    """Where the start-up action comes from, as Pyramid shows it in errors."""

    failure = ""

    def __str__(self) -> str:
        if self.failure:
            return f"kotti_migrate: start-up failed: {self.failure}"
        return "kotti_migrate start-up (config.include('kotti_migrate'))"

    def __bool__(self) -> bool:
        return True
