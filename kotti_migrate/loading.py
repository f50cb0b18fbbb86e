"""How the CLI (and ``alembic -c``) loads an app from its ini file, without serving it."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

from .errors import ConfigurationError
from .settings import ini_has, kotti_available, no_startup

log = logging.getLogger("kotti_migrate")


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


def load_app(config_uri: str, light: bool = False) -> LoadedApp:
    """Read an app's settings the way the app sees them, without serving it.

    A Kotti site gets Kotti's defaults and its ``kotti.configurators``
    applied and its includes configured (so add-ons registering
    locations are found), but no database work and no populators.  Any
    other Pyramid app is created through its app factory with
    kotti_migrate's start-up hook turned off.

    With ``light`` (read-only commands that need neither the app's models
    nor its views), a Kotti site is loaded as far as locations need:
    see :func:`_configure_kotti_light`; whatever that cannot do, the full
    load does (so errors are the full load's).

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
                registry = _configure_kotti_light(settings) if light else None
                if registry is None:
                    registry = _configure_kotti(global_conf, settings)
            else:
                registry = _configure_plain(loader, section)
    except ConfigurationError:
        raise
    except Exception as exc:
        reason = _too_early(exc) or f"{type(exc).__name__}: {exc}{_import_hint(exc)}"
        raise ConfigurationError(f"app [app:{section}] of {path} failed to load: {reason}") from exc
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


def _too_early(exc: BaseException) -> str:
    """What to do when an add-on used ``config.add_alembic_dir`` before kotti_migrate was included ('').

    Pyramid says only ``AttributeError: add_alembic_dir``; the add-on is the
    module that asked the Configurator for it.
    """
    if not isinstance(exc, AttributeError) or str(exc) != "add_alembic_dir":
        return ""
    addon, tb = "the add-on", exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_name != "__getattr__":
        addon, tb = tb.tb_frame.f_globals.get("__name__", addon), tb.tb_next
    return (
        f"{addon} calls config.add_alembic_dir before kotti_migrate is included: include kotti_migrate "
        f"before {addon} (put kotti_migrate first in pyramid.includes), or let {addon} call "
        f"kotti_migrate.add_alembic_dir(config, ...), which works in any order"
    )


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


def _prepend_sys_path(path: str) -> None:
    """Honour ``prepend_sys_path`` of the ini file's ``[alembic]`` section.

    Alembic puts these folders (relative ones: relative to the working
    directory) in front of ``sys.path`` before it loads an env.py; doing
    the same lets one ini file serve ``alembic -c`` and ``kotti-migrate``
    for an add-on that is not installed (``prepend_sys_path = .``).
    """
    import sys

    if not ini_has(path, "alembic", "prepend_sys_path"):
        return  # nothing to do: Alembic not imported (Config reads no pyproject.toml here)
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


def _configure_kotti_light(settings: dict) -> Any:
    """The registry of a Kotti site as far as migration locations need it, or None when unsure.

    Kotti's defaults and ``kotti.configurators`` applied (add-ons append
    to ``kotti.alembic_dirs`` there), then every module that can call
    ``config.add_alembic_dir``: those of ``pyramid.includes`` (and of
    ``kotti.base_includes`` other than Kotti's own) included into a
    Configurator of their own and committed.  Not done: Kotti's base
    includes (Kotti registers no location) and the resolution of Kotti's
    dotted settings, which import Kotti's views and the content types'
    models (about 1 s): they are only looked up (:func:`.dotted.importable`,
    a miss gives None); ``kotti_migrate`` itself only adds its directive.
    The settings keep dotted names as strings.  Any failure (an include
    that needs Kotti's configuration or its resolved settings) gives None:
    the caller does the full load, which finds what it finds and reports
    errors as it always did.
    """
    try:
        return _kotti_registrations(dict(settings))
    except Exception as exc:  # the full load decides (and reports) instead
        log.debug("light load of the Kotti site failed (%s: %s); loading it fully", type(exc).__name__, exc)
        return None


def _kotti_registrations(settings: dict) -> Any:
    import kotti

    from .dotted import importable
    from .locations import add_alembic_dir, split_setting

    # As kotti.base_configure, up to what imports Kotti's views and models:
    for key, value in kotti.conf_defaults.items():
        settings.setdefault(key, value)
    for key, value in settings.items():
        if key.startswith("kotti") and isinstance(value, bytes):
            settings[key] = value.decode("utf8")
    name = "kotti.configurators"
    for configure in kotti._resolve_dotted(settings, keys=(name,))[name]:
        configure(settings)
    # What the full load resolves (and pserve imports): a module that is not there makes it fail.
    for key in (*sorted(getattr(kotti, "conf_dotted", ())), "pyramid.includes"):
        value = settings.get(key)
        for dotted in value.split() if isinstance(value, str) else ():
            if not importable(dotted):
                raise ImportError(f"{key}: {dotted} cannot be imported")  # the full load says why
    settings.setdefault("kotti.secret2", settings["kotti.secret"])
    includes = settings.pop("pyramid.includes", "")  # as Kotti: not included by the Configurator
    modules = split_setting(settings["kotti.base_includes"]) + split_setting(includes)
    settings["pyramid.includes"] = includes
    # Kotti's own modules register no location (Kotti does not know kotti_migrate).
    modules = [m for m in modules if m != "kotti" and not m.startswith("kotti.")]
    if all(module == "kotti_migrate" for module in modules):
        return _Registry(settings)  # nothing else can register a location
    from pyramid.config import Configurator

    config = Configurator(settings={k: v for k, v in settings.items() if k != "pyramid.includes"})
    config.registry.settings["pyramid.includes"] = includes
    config.begin()
    try:
        for module in modules:
            if module == "kotti_migrate":  # its includeme registers no location (it may include views)
                config.add_directive("add_alembic_dir", add_alembic_dir)
            else:
                config.include(module)
        config.commit()
    finally:
        config.end()
    return config.registry


class _Registry(dict):
    """A registry holding only settings (no location registered by a directive)."""

    def __init__(self, settings: dict) -> None:
        super().__init__()
        self.settings = settings


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
