"""Settings kotti_migrate reads (parsed once into :class:`Options`), and the ini file they come from.

Settings (all optional):

``kotti.alembic_dirs``
    Whitespace separated migration locations (Kotti's setting; add-ons
    append to it in their ``kotti_configure``).
``kotti_migrate.auto_upgrade``
    Boolean, default false.  Run pending migrations at start-up.  The
    environment variable ``KOTTI_MIGRATE_AUTO_UPGRADE`` overrides it.
``kotti_migrate.lock_timeout``
    Seconds a starting worker waits for the start-up lock; default 300.
``kotti_migrate.metadata``
    Dotted name of the app's ``MetaData`` (or of a declarative base).
    Default for Kotti sites: ``kotti.metadata``.
``kotti_migrate.startup``
    Boolean, default true.  False turns the start-up hook off entirely.
``kotti_migrate.create_all``
    Boolean, default true.  Create missing tables from the metadata at
    start-up (Kotti does this anyway).
``kotti_migrate.cache_dir``
    Folder for the revision index cache; default
    ``$XDG_CACHE_HOME/kotti_migrate``; ``off`` disables the cache.
``kotti_migrate.tables.<package>``
    Whitespace separated table names that belong to the location of
    ``<package>``; overrides what is derived from where models are defined.
``kotti_migrate.version_table.<package>``
    The version table of the location of ``<package>``; overrides what is
    read from its ``env.py`` (see :func:`kotti_migrate.locations.version_table_of`).
``kotti_migrate.config_file``
    The app's ini file (default: the one PasteDeploy loads the app from):
    ``config.config_file_name`` of a location's own ``env.py``; its
    ``[alembic]`` section is read.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import os
from pathlib import Path
from typing import Any, Iterator, Mapping

from .errors import ConfigurationError
from .values import Value

ENV_AUTO_UPGRADE = "KOTTI_MIGRATE_AUTO_UPGRADE"
DEFAULT_LOCK_TIMEOUT = 300.0

_TRUE = {"1", "true", "yes", "on", "y", "t"}
_FALSE = {"0", "false", "no", "off", "n", "f", "", "none"}

#: Set while the CLI loads an app: the start-up hook does nothing then.
_startup_disabled: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "kotti_migrate_startup_disabled", default=False
)


def asbool(value: Any, name: str) -> bool:
    """Parse a boolean setting, with an error naming the setting."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigurationError(f"setting {name}: {value!r} is not a boolean (true/false)")


class Options(Value, frozen=True):
    """kotti_migrate's own settings, parsed."""

    auto_upgrade: bool
    lock_timeout: float
    startup: bool
    create_all: bool
    cache_dir: Path | None
    metadata: str | None
    #: Path of the readiness endpoint ("" : none).
    status_path: str = ""
    #: Show per-location details at the endpoint to everybody.
    status_details: bool = False

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> Options:
        """Parse ``kotti_migrate.*`` settings and the environment.

        :raises ConfigurationError: a value cannot be parsed
        """
        auto = asbool(settings.get("kotti_migrate.auto_upgrade", False), "kotti_migrate.auto_upgrade")
        env = os.environ.get(ENV_AUTO_UPGRADE)
        if env is not None and env.strip():
            auto = asbool(env, ENV_AUTO_UPGRADE)
        raw_timeout = settings.get("kotti_migrate.lock_timeout", DEFAULT_LOCK_TIMEOUT)
        try:
            timeout = float(raw_timeout)
            if timeout < 0 or not math.isfinite(timeout):
                raise ValueError
        except (TypeError, ValueError):
            raise ConfigurationError(
                f"setting kotti_migrate.lock_timeout: {raw_timeout!r} is not a "
                f"number of seconds"
            ) from None
        cache = str(settings.get("kotti_migrate.cache_dir", "") or "").strip()
        if cache.lower() in ("off", "false", "none", "0"):
            cache_dir = None
        elif cache:
            cache_dir = Path(cache).expanduser()
        else:
            cache_dir = default_cache_dir()
        metadata = str(settings.get("kotti_migrate.metadata", "") or "").strip() or None
        return cls(
            auto_upgrade=auto,
            lock_timeout=timeout,
            startup=asbool(settings.get("kotti_migrate.startup", True), "kotti_migrate.startup"),
            create_all=asbool(settings.get("kotti_migrate.create_all", True), "kotti_migrate.create_all"),
            cache_dir=cache_dir,
            metadata=metadata,
            status_path=_status_path(settings.get("kotti_migrate.status_path")),
            status_details=asbool(
                settings.get("kotti_migrate.status_details", False), "kotti_migrate.status_details"
            ),
        )


def _status_path(value: Any) -> str:
    """``kotti_migrate.status_path``: empty, or a URL path starting with ``/``."""
    path = str(value or "").strip()
    if path and (not path.startswith("/") or any(c.isspace() for c in path)):
        raise ConfigurationError(
            f"setting kotti_migrate.status_path: {path!r} is not a URL path (e.g. /-/migrations)"
        )
    return path


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/kotti_migrate`` (``~/.cache/kotti_migrate``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "kotti_migrate"


def startup_disabled() -> bool:
    """True while the CLI loads an app (the start-up hook must stay idle)."""
    return _startup_disabled.get()


@contextlib.contextmanager
def no_startup() -> Iterator[None]:
    """Load an app without kotti_migrate's start-up work."""
    token = _startup_disabled.set(True)
    try:
        yield
    finally:
        _startup_disabled.reset(token)


def kotti_available() -> bool:
    """True when Kotti can be imported."""
    import importlib.util

    return importlib.util.find_spec("kotti") is not None


def pastedeploy_config_file() -> str | None:
    """The ini file PasteDeploy is loading the app from, when called while it does.

    ``pserve``, ``pyramid.paster.get_app`` and other PasteDeploy loaders call
    the app factory with a ``global_config`` holding ``__file__``; Pyramid
    keeps none of it, so it is read from PasteDeploy's loader context up the
    call stack.  None when the app is not being loaded by PasteDeploy.
    """
    import sys

    try:
        from paste.deploy.loadwsgi import LoaderContext
    except ImportError:  # pragma: no cover - Pyramid depends on PasteDeploy via plaster
        return None
    frame = sys._getframe(1)
    while frame is not None:
        if "context" not in frame.f_code.co_varnames:  # f_locals would copy every frame's locals
            frame = frame.f_back
            continue
        context = frame.f_locals.get("context")
        if isinstance(context, LoaderContext):
            path = (getattr(context, "global_conf", None) or {}).get("__file__")
            if path and os.path.isfile(path):
                return os.path.abspath(path)
        frame = frame.f_back
    return None


def alembic_ini_options(path: str, section: str = "alembic") -> dict[str, str]:
    """The options of the ini file's ``[alembic]`` section, as Alembic reads them
    (``%(here)s`` interpolated); empty when the file or section is missing."""
    if not ini_has(path, section):
        return {}  # without importing Alembic (what read-only commands save)
    from alembic.config import Config

    try:
        config = Config(path, ini_section=section)
        return dict(config.get_section(section) or {})
    except Exception:  # an unreadable file is reported when the app is loaded
        return {}


def app_folder(settings: Mapping[str, Any]) -> str:
    """The folder relative location paths of a running app are relative to.

    The folder of the app's ini file (``kotti_migrate.config_file``, which
    ``config.include('kotti_migrate')`` fills in when PasteDeploy loads the
    app), as for ``kotti-migrate <ini>``; the working directory when the
    ini file is not known.
    """
    config_file = str(settings.get("kotti_migrate.config_file", "") or "").strip()
    return os.path.dirname(os.path.abspath(config_file)) if config_file else os.getcwd()


def ini_has(path: str, section: str, option: str | None = None) -> bool:
    """True when the ini file has ``[section]`` (and ``option`` in it or in ``[DEFAULT]``).

    True as well when the file cannot be read: the caller's own reading reports it.
    """
    import configparser

    parser = configparser.RawConfigParser(strict=False)
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, OSError, UnicodeError):
        return True
    return parser.has_option(section, option) if option else parser.has_section(section)
