"""Settings kotti_migrate reads, and how the CLI loads an app's settings.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

from .errors import ConfigurationError

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


@dataclass(frozen=True)
class Options:
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
            from .scripts import default_cache_dir

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


@dataclass
class LoadedApp:
    """What the CLI learned from an ini file."""

    settings: dict
    registry: Any
    here: str
    config_file: str
    section: str


def split_config_uri(config_uri: str) -> tuple[str, str]:
    """``app.ini#section`` -> (absolute path, section); section defaults to main."""
    path, _, section = config_uri.partition("#")
    if path.startswith("config:"):
        path = path[len("config:"):]
    return os.path.abspath(path), section or "main"


def load_app(config_uri: str) -> LoadedApp:
    """Read an app's settings the way the app sees them, without serving it.

    A Kotti site gets Kotti's defaults and its ``kotti.configurators``
    applied and its includes configured (so add-ons registering
    locations are found), but no database work and no populators.  Any
    other Pyramid app is created through its app factory with
    kotti_migrate's start-up hook turned off.

    :raises ConfigurationError: missing or unreadable file, missing section,
        or an app that fails to load
    """
    path, section = split_config_uri(config_uri)
    if os.path.isdir(path):
        raise ConfigurationError(f"config file {path} is a directory, not an ini file")
    if not os.path.isfile(path):
        raise ConfigurationError(f"config file {path} not found")
    if not os.access(path, os.R_OK):
        raise ConfigurationError(f"config file {path} is not readable")
    _prepend_sys_path(path)
    import plaster

    try:
        loader = plaster.get_loader(f"{path}#{section}", protocols=["wsgi"])
        settings = dict(loader.get_wsgi_app_settings(section))
    except Exception as exc:
        raise _loading_error(exc, path, section) from exc
    here = os.path.dirname(path)
    global_conf = {"here": here, "__file__": path}
    try:
        with no_startup():
            if "kotti.secret" in settings and kotti_available():
                registry = _configure_kotti(global_conf, settings)
            else:
                registry = _configure_plain(loader, section)
    except ConfigurationError:
        raise
    except Exception as exc:
        raise ConfigurationError(
            f"app [app:{section}] of {path} failed to load: {type(exc).__name__}: {exc}{_import_hint(exc)}"
        ) from exc
    return LoadedApp(
        settings=dict(registry.settings),
        registry=registry,
        here=here,
        config_file=path,
        section=section,
    )


def _loading_error(exc: Exception, path: str, section: str) -> ConfigurationError:
    """The error for an ini file whose app section could not be loaded.

    "cannot be read" is said only when reading or parsing the file failed;
    a missing ``egg:`` distribution and a failing import say what they are.
    """
    import configparser
    from importlib.metadata import PackageNotFoundError

    if isinstance(exc, UnicodeDecodeError):
        return ConfigurationError(
            f"config file {path} cannot be read: it is not a text (UTF-8) ini file "
            f"(byte 0x{exc.object[exc.start]:02x} at offset {exc.start})"
        )
    if isinstance(exc, (configparser.Error, OSError)):
        return ConfigurationError(f"config file {path} cannot be read: {_first_line(exc)}")
    if isinstance(exc, PackageNotFoundError):  # before ImportError: it is one
        name = exc.name or str(exc)
        use = _use_line(path, section)
        where = f" (`use = {use}` in [app:{section}] of {path})" if use else f" ([app:{section}] of {path})"
        return ConfigurationError(
            f"distribution {name!r} is not installed{where}: No package metadata was found "
            f"for {name}{_distribution_hint(name)}"
        )
    if isinstance(exc, ImportError):
        return ConfigurationError(
            f"app [app:{section}] of {path} cannot be loaded: {type(exc).__name__}: "
            f"{_first_line(exc)}{_import_hint(exc)}"
        )
    if isinstance(exc, LookupError):
        if str(exc).startswith("No section"):
            return ConfigurationError(f"config file {path} has no app section [app:{section}]")
        return ConfigurationError(f"[app:{section}] of {path}: {_first_line(exc)}")
    return ConfigurationError(
        f"app [app:{section}] of {path} failed to load: {type(exc).__name__}: {_first_line(exc)}"
    )


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _import_hint(exc: BaseException) -> str:
    """Advice for a known import failure ('' otherwise)."""
    if isinstance(exc, ImportError) and (exc.name or "").split(".")[0] == "pkg_resources":
        return (
            " (pkg_resources, which Kotti and Pyramid 1.10 import, was removed in setuptools 82: "
            'pip install "setuptools<82")'
        )
    return ""


def _distribution_hint(name: str) -> str:
    """Advice for ``use = egg:NAME`` when NAME is not installed ('' otherwise)."""
    from importlib.metadata import PackageNotFoundError, distribution

    twins = {"kotti": "kotti2", "kotti2": "kotti"}
    other = twins.get(name.lower())
    if other:
        try:
            installed = distribution(other).metadata["Name"]
        except PackageNotFoundError:
            pass
        else:
            return f"; {installed} is installed: write `use = egg:{other}`"
    return f"; install it (pip install {name}) or fix the `use =` line"


def _use_line(path: str, section: str) -> str | None:
    """The ``use =`` value of ``[app:section]`` as written, None when unreadable."""
    import configparser

    parser = configparser.RawConfigParser(strict=False)
    try:
        parser.read(path, encoding="utf-8")
        return parser.get(f"app:{section}", "use").strip() or None
    except (configparser.Error, OSError, UnicodeError):
        return None
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
    from alembic.config import Config

    try:
        config = Config(path, ini_section=section)
        return dict(config.get_section(section) or {})
    except Exception:  # an unreadable file is reported when the app is loaded
        return {}


def _prepend_sys_path(path: str) -> None:
    """Honour ``prepend_sys_path`` of the ini file's ``[alembic]`` section.

    Alembic puts these folders (relative ones: relative to the working
    directory) in front of ``sys.path`` before it loads an env.py; doing
    the same lets one ini file serve ``alembic -c`` and ``kotti-migrate``
    for an add-on that is not installed (``prepend_sys_path = .``).
    """
    import sys

    from alembic.config import Config

    try:
        folders = Config(path).get_prepend_sys_paths_list() or []
    except Exception:  # an unreadable file is reported when the app is loaded
        return
    sys.path[:0] = [folder for folder in folders if folder not in sys.path]


def _configure_kotti(global_conf: dict, settings: dict) -> Any:
    import kotti

    config = kotti.base_configure(global_conf, **settings)
    return config.registry


def _configure_plain(loader: Any, section: str) -> Any:
    from pyramid.config import global_registries
    from pyramid.threadlocal import get_current_registry

    app = loader.get_wsgi_app(section)
    registry = getattr(app, "registry", None)
    if registry is None:  # the app factory wrapped the router in middleware
        registry = global_registries.last or get_current_registry()
    if getattr(registry, "settings", None) is None:
        raise ConfigurationError(
            f"the app of [app:{section}] is not a Pyramid app (no registry with settings found)"
        )
    return registry
