"""Which version table a location records its revision in.

Read from the location's ``env.py`` source (never run), so that
kotti_migrate and ``alembic -c <ini>`` keep one record.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from .errors import ConfigurationError, LocationError

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

#: PostgreSQL truncates identifiers longer than this; we refuse them.
MAX_IDENTIFIER = 63


def version_table_for(package: str) -> str:
    """The version table of a package: ``<package>_alembic_version``.

    Dots of a dotted package name become underscores so that the name is a
    plain SQL identifier (``kotti_alembic_version`` for Kotti).
    """
    name = re.sub(r"[^A-Za-z0-9_]", "_", package) + "_alembic_version"
    if not _IDENTIFIER.match(name):
        name = "_" + name
    if len(name) > MAX_IDENTIFIER:
        raise LocationError(
            f"version table name {name!r} for package {package!r} is longer "
            f"than {MAX_IDENTIFIER} characters"
        )
    return name


#: Alembic's own version table, written by an env.py that names none.
ALEMBIC_VERSION_TABLE = "alembic_version"

#: What :func:`env_py_version_table` finds in an ``env.py``.
ENV_KOTTI_MIGRATE = "kotti_migrate"  # delegates to kotti_migrate (``kotti-migrate init``)
ENV_NAMED = "named"  # names a literal version_table
ENV_COMPUTED = "computed"  # passes a version_table kotti_migrate cannot read
ENV_UNNAMED = "unnamed"  # names none


def env_py_version_table(env_py: Path) -> tuple[str, str | None]:
    """What version table an ``env.py`` writes, read from its source (never run).

    :returns: ``(kind, table)``: ``(ENV_KOTTI_MIGRATE, None)`` for an env.py
        importing kotti_migrate; ``(ENV_NAMED, "name")`` when every
        ``configure(version_table=...)`` call passes the same string (a
        literal or a module-level constant); ``(ENV_COMPUTED, None)`` for any
        other value; ``(ENV_UNNAMED, None)`` when it passes none.
    """
    try:
        source = env_py.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LocationError(f"cannot read {env_py}: {exc}") from None
    if "kotti_migrate" not in source and "version_table" not in source:
        return ENV_UNNAMED, None  # the common case costs no parsing
    try:
        tree = ast.parse(source, filename=str(env_py))
    except SyntaxError as exc:
        raise LocationError(f"{env_py} is not valid Python: {exc}") from None
    constants: dict[str, str] = {}
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    constants[target.id] = node.value.value
    names: set[str | None] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "kotti_migrate":
            return ENV_KOTTI_MIGRATE, None
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "kotti_migrate" for a in node.names):
            return ENV_KOTTI_MIGRATE, None
        if isinstance(node, ast.Call):
            for keyword in node.keywords:
                if keyword.arg == "version_table":
                    value = keyword.value
                    if isinstance(value, ast.Constant) and isinstance(value.value, str):
                        names.add(value.value)
                    elif isinstance(value, ast.Name) and value.id in constants:
                        names.add(constants[value.id])
                    else:
                        names.add(None)
                elif keyword.arg is None:  # configure(**options): cannot tell
                    names.add(None)
    if not names:
        return ENV_UNNAMED, None
    if len(names) == 1 and None not in names:
        return ENV_NAMED, names.pop()
    return ENV_COMPUTED, None


def version_table_of(
    path: Path, package: str, kotti_convention: bool, override: str | None = None
) -> tuple[str, str, bool]:
    """The version table of the location at ``path``: ``(table, reason, needs_ini)``.

    The table is the one the location's ``env.py`` writes, so that
    kotti_migrate and ``alembic -c <ini>`` keep one record:

    - setting ``kotti_migrate.version_table.<package>`` (``override``): that;
    - no ``env.py``, an env.py that delegates to kotti_migrate
      (``kotti-migrate init``), or Kotti's own ``kotti:alembic``:
      ``<package>_alembic_version``;
    - an env.py passing a literal ``version_table="name"``: that name;
    - an env.py naming none: Alembic's ``alembic_version``, except for a
      location that Kotti's own tool manages (``kotti_convention``: listed in
      ``kotti.alembic_dirs`` of a Kotti site), which keeps
      ``<package>_alembic_version`` (Kotti's tool passed it to the env.py);
    - an env.py computing its version_table: ``<package>_alembic_version``
      under Kotti's convention, else an error asking for the setting.

    :raises ConfigurationError: the table cannot be told
    """
    env_py = path / "env.py"
    default = version_table_for(package)
    if not env_py.is_file():
        return override or default, "no env.py: kotti_migrate's <package>_alembic_version", False
    if package == "kotti" and path.name == "alembic":
        return override or default, "Kotti's own migrations", False
    kind, name = env_py_version_table(env_py)
    if kind == ENV_KOTTI_MIGRATE:
        return override or default, "env.py delegates to kotti_migrate: <package>_alembic_version", False
    needs_ini = not kotti_convention
    if override:
        return override, f"setting kotti_migrate.version_table.{package}", needs_ini
    if kind == ENV_NAMED:
        assert name is not None
        return name, f"named in {env_py}", needs_ini
    if kotti_convention:
        return default, "Kotti add-on (kotti.alembic_dirs): <package>_alembic_version", False
    if kind == ENV_COMPUTED:
        raise ConfigurationError(
            f"{env_py} computes its version_table and kotti_migrate cannot tell which table "
            f"it writes: set kotti_migrate.version_table.{package} = <table> in the app's settings"
        )
    return ALEMBIC_VERSION_TABLE, f"{env_py} names no version_table: Alembic's default", True
