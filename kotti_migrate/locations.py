"""Where migration locations come from and what they resolve to.

A *location* names a folder holding an Alembic migration environment
(a ``versions/`` folder, optionally an ``env.py`` and a
``script.py.mako``).  It is written either as an asset spec
``package:folder`` (``kotti:alembic``) or as a filesystem path, absolute or
relative to the folder of the configuration file.

Locations are registered through the ``kotti.alembic_dirs`` setting
(whitespace separated, Kotti's convention) and through the Pyramid
directive ``config.add_alembic_dir(location)``.  Every location records its
revision in one version table, the one its ``env.py`` writes under Alembic's
own CLI too (see :func:`kotti_migrate.version_tables.version_table_of`).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any, Collection, Iterable, Mapping, Sequence

from .errors import ConfigurationError, LocationError
from .values import Value

#: Kotti's own migrations; listed first whenever registered.
KOTTI_LOCATION = "kotti:alembic"

#: Registry key under which ``add_alembic_dir`` stores its locations.
REGISTRY_KEY = "kotti_migrate.registered_locations"



class Location(Value, frozen=True):
    """A resolved migration location.

    :ivar spec: the location as registered (``kotti:alembic``, a path)
    :ivar path: absolute path of the migration environment folder
    :ivar package: the Python package the location belongs to
    :ivar version_table: the table recording its revision(s)
    :ivar table_reason: why that table (shown in configuration errors)
    :ivar needs_ini: True when the location's ``env.py`` is written for
        Alembic's CLI (not kotti_migrate's, not a Kotti add-on's): it reads
        the app's ini file (``config.config_file_name``)
    """

    spec: str
    path: Path
    package: str
    version_table: str
    table_reason: str = "kotti_migrate's convention <package>_alembic_version"
    needs_ini: bool = False

    @property
    def versions_path(self) -> Path:
        """The folder of revision files."""
        return self.path / "versions"

    @property
    def env_py(self) -> Path | None:
        """The location's own ``env.py``, or None for the default environment."""
        env = self.path / "env.py"
        return env if env.is_file() else None

    def __str__(self) -> str:
        return self.spec


def is_asset_spec(spec: str) -> bool:
    """True when ``spec`` is ``package:folder`` rather than a path."""
    if os.path.isabs(spec) or ":" not in spec:
        return False
    package = spec.split(":", 1)[0]
    return all(part.isidentifier() for part in package.split("."))  # a dotted name


def package_folder(package: str, spec: str) -> Path:
    """The folder of an importable package (without importing it)."""
    return Path(_package_folder(package, spec))


def _package_folder(package: str, spec: str) -> str:
    try:
        found = importlib.util.find_spec(package)
    except (ImportError, ValueError) as exc:
        raise LocationError(
            f"location {spec!r}: package {package!r} is not importable ({exc})"
        ) from None
    if found is None:
        raise LocationError(
            f"location {spec!r}: package {package!r} is not importable"
        )
    if found.submodule_search_locations:
        return str(list(found.submodule_search_locations)[0])
    if found.origin:
        return os.path.dirname(found.origin)
    raise LocationError(f"location {spec!r}: package {package!r} has no folder")


def _package_of_path(folder: Path) -> str:
    """The dotted name of the package holding ``folder``, or its parent's name."""
    parts: list[str] = []
    current = folder.parent
    while (current / "__init__.py").is_file():
        parts.insert(0, current.name)
        if current.parent == current:
            break
        current = current.parent
    if parts:
        return ".".join(parts)
    return folder.parent.name or folder.name


def location_path(spec: str, here: str | os.PathLike[str] | None = None) -> Path:
    """The folder a spec names (it need not exist yet).

    :raises LocationError: the package of an asset spec is not importable
    """
    return Path(location_folder(spec, here))


def location_folder(spec: str, here: str | os.PathLike[str] | None = None) -> str:
    """:func:`location_path` as a string (what an at-head boot compares, cheaply)."""
    if is_asset_spec(spec):
        package, _, folder = spec.partition(":")
        return os.path.join(_package_folder(package, spec), folder)
    path = os.path.expanduser(spec)
    if not os.path.isabs(path):
        path = os.path.join(os.fspath(here) if here else os.getcwd(), path)
    return os.path.normpath(path)


def resolve_location(
    spec: str,
    here: str | os.PathLike[str] | None = None,
    kotti_convention: bool = True,
    overrides: Mapping[str, Any] | None = None,
) -> Location:
    """Resolve one location spec into a :class:`Location`.

    :param spec: ``package:folder`` or a filesystem path
    :param here: folder that relative paths are relative to (the folder
        of the configuration file); the working directory when None
    :param kotti_convention: the location is managed the way Kotti's tool
        does (see :func:`version_table_of`)
    :param overrides: settings holding ``kotti_migrate.version_table.<package>``
    :raises LocationError: the package is not importable, the folder does
        not exist or has no ``versions/`` folder
    """
    spec = spec.strip()
    if not spec:
        raise LocationError("empty migration location")
    path = location_path(spec, here)
    package = spec.partition(":")[0] if is_asset_spec(spec) else _package_of_path(path)
    if not path.is_dir():
        raise LocationError(f"location {spec!r}: folder {path} does not exist")
    if not (path / "versions").is_dir():
        raise LocationError(
            f"location {spec!r}: folder {path} has no versions/ folder "
            f"(create one with: kotti-migrate <config_uri> init --scripts={spec})"
        )
    path = path.resolve()
    from .version_tables import version_table_of  # reads env.py: not needed by an at-head boot

    override = str((overrides or {}).get(f"kotti_migrate.version_table.{package}", "") or "").strip()
    table, reason, needs_ini = version_table_of(path, package, kotti_convention, override or None)
    return Location(
        spec=spec,
        path=path,
        package=package,
        version_table=table,
        table_reason=reason,
        needs_ini=needs_ini,
    )


def split_setting(value: str | Iterable[str] | None) -> list[str]:
    """Split a whitespace separated setting value (or pass a list through)."""
    if value is None:
        return []
    if isinstance(value, str):
        return value.split()
    return [str(item) for item in value]


def resolve_locations(
    specs: Sequence[str],
    here: str | os.PathLike[str] | None = None,
    kotti_specs: Collection[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> list[Location]:
    """Resolve, de-duplicate and order registered location specs.

    The same folder registered twice (even once as an asset spec and once
    as a path) counts once; Kotti's own location comes first, the others
    keep their registration order.

    :param kotti_specs: the specs Kotti's own tool would manage (listed in
        ``kotti.alembic_dirs`` of a Kotti site); None: all of them
    :raises ConfigurationError: two locations map to the same version table
    """
    by_path: dict[Path, Location] = {}
    for spec in specs:
        convention = kotti_specs is None or spec in kotti_specs
        location = resolve_location(spec, here, convention, overrides)
        by_path.setdefault(location.path, location)
    locations = sorted(
        by_path.values(), key=lambda loc: 0 if loc.spec == KOTTI_LOCATION else 1
    )
    by_table: dict[str, Location] = {}
    for location in locations:
        other = by_table.get(location.version_table)
        if other is not None:
            raise clash(other, location)
        by_table[location.version_table] = location
    return locations


def clash(one: Location, other: Location) -> ConfigurationError:
    """Two locations would write the same version table."""
    return ConfigurationError(
        f"locations {one.spec!r} and {other.spec!r} both use the version table "
        f"{one.version_table!r} ({one.table_reason}; {other.table_reason}); give one of them "
        f"its own: version_table='...' in its env.py's context.configure(), or the setting "
        f"kotti_migrate.version_table.<package>"
    )


def default_location(locations: Sequence[Location]) -> Location:
    """The location a verb on one location works on when none is named (library and CLI alike).

    Kotti's own location when registered, else the only registered one.

    :raises LocationError: none registered, or several and none of them Kotti's
    """
    for location in locations:
        if location.spec == KOTTI_LOCATION:
            return location
    if len(locations) == 1:
        return locations[0]
    if not locations:
        raise LocationError("no migration locations are registered (kotti.alembic_dirs)")
    raise LocationError(
        "several locations are registered; choose one with --scripts=<location>: "
        + ", ".join(location.spec for location in locations)
    )


def find_location(
    locations: Sequence[Location],
    spec: str,
    here: str | os.PathLike[str] | None = None,
    kotti_convention: bool = True,
    overrides: Mapping[str, Any] | None = None,
) -> Location:
    """Pick a location by spec, package name or path among the registered ones.

    A location that is not registered but exists on disk is accepted too
    (Kotti's tool accepts any ``--scripts``), as long as its version
    table does not clash with a registered location's.

    :raises LocationError: the spec is neither registered nor resolvable
    """
    for location in locations:
        if spec in (location.spec, location.package):
            return location
    candidate = resolve_location(spec, here, kotti_convention, overrides)
    for location in locations:
        if location.path == candidate.path:
            return location
        if location.version_table == candidate.version_table:
            raise clash(location, candidate)
    return candidate


def add_alembic_dir(config, location: str) -> None:
    """Pyramid directive: register a migration location.

    Call it from an add-on's ``includeme``::

        config.add_alembic_dir('my_addon:alembic')

    The directive exists once kotti_migrate is included (before the
    add-on); called as a function it works in any include order::

        kotti_migrate.add_alembic_dir(config, 'my_addon:alembic')

    The location is checked when the configuration is committed.
    """
    registered = config.registry.setdefault(REGISTRY_KEY, [])

    def register() -> None:
        if location not in registered:
            registered.append(location)

    config.action(None, register)


def registered_specs(settings: dict, registry=None) -> list[str]:
    """All location specs: the ``kotti.alembic_dirs`` setting, then directives."""
    specs = split_setting(settings.get("kotti.alembic_dirs"))
    if registry is not None:
        specs.extend(registry.get(REGISTRY_KEY, ()))
    return specs
