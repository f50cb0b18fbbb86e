"""Locations: asset specs and paths, version table names, order, conflicts."""

from __future__ import annotations

import pytest

from kotti_migrate.errors import ConfigurationError, LocationError
from kotti_migrate.locations import resolve_location, resolve_locations
from kotti_migrate.version_tables import version_table_for


def make_env(root, *parts, package=True):
    """A migration environment folder at root/parts, optionally inside a package."""
    folder = root.joinpath(*parts)
    (folder / "versions").mkdir(parents=True)
    if package:
        for i in range(1, len(parts)):
            (root.joinpath(*parts[:i]) / "__init__.py").touch()
    return folder


def test_path_inside_package_uses_package_version_table(tmp_path):
    folder = make_env(tmp_path, "kotti_addon", "alembic")
    loc = resolve_location(str(folder))
    assert loc.package == "kotti_addon"
    assert loc.version_table == "kotti_addon_alembic_version"
    assert "/" not in loc.version_table


def test_path_in_nested_package_uses_dotted_package(tmp_path):
    folder = make_env(tmp_path, "acme", "blog", "migrations")
    loc = resolve_location(str(folder))
    assert loc.package == "acme.blog"
    assert loc.version_table == "acme_blog_alembic_version"


def test_path_outside_package_uses_parent_folder_name(tmp_path):
    folder = make_env(tmp_path, "my-site", "alembic", package=False)
    loc = resolve_location(str(folder))
    assert loc.version_table == "my_site_alembic_version"


def test_relative_path_is_relative_to_here(tmp_path):
    make_env(tmp_path, "kotti_addon", "alembic")
    loc = resolve_location("kotti_addon/alembic", here=tmp_path)
    assert loc.path == (tmp_path / "kotti_addon" / "alembic").resolve()


def test_asset_spec_resolves_into_package():
    loc = resolve_location("example_app:alembic") if _has("example_app") else None
    if loc is None:
        loc = resolve_location("kotti_notes:alembic")
    assert loc.path.name == "alembic"
    assert loc.version_table == f"{loc.package}_alembic_version"


def _has(name):
    import importlib.util

    return importlib.util.find_spec(name) is not None


def test_dotted_package_gives_underscored_table():
    assert version_table_for("kotti") == "kotti_alembic_version"
    assert version_table_for("acme.blog") == "acme_blog_alembic_version"


def test_overlong_version_table_is_refused():
    with pytest.raises(LocationError, match="longer than 63"):
        version_table_for("x" * 60)


def test_missing_package(tmp_path):
    with pytest.raises(LocationError, match="package 'no_such_pkg' is not importable"):
        resolve_location("no_such_pkg:alembic")


def test_missing_folder(tmp_path):
    with pytest.raises(LocationError, match="does not exist"):
        resolve_location(str(tmp_path / "nowhere"))


def test_folder_without_versions(tmp_path):
    (tmp_path / "pkg" / "alembic").mkdir(parents=True)
    with pytest.raises(LocationError, match="has no versions/ folder"):
        resolve_location(str(tmp_path / "pkg" / "alembic"))


def test_same_location_twice_counts_once(tmp_path):
    folder = make_env(tmp_path, "kotti_addon", "alembic")
    locs = resolve_locations([str(folder), "kotti_addon/alembic", str(folder) + "/"], here=tmp_path)
    assert len(locs) == 1


def test_order_is_registration_order(tmp_path):
    a = make_env(tmp_path, "pkg_b", "alembic")
    b = make_env(tmp_path, "pkg_a", "alembic")
    locs = resolve_locations([str(a), str(b)])
    assert [loc.package for loc in locs] == ["pkg_b", "pkg_a"]


def test_two_locations_same_version_table_is_an_error(tmp_path):
    a = make_env(tmp_path, "addon", "alembic")
    b = make_env(tmp_path, "addon", "migrations")
    with pytest.raises(ConfigurationError) as info:
        resolve_locations([str(a), str(b)])
    message = str(info.value)
    assert str(a) in message and str(b) in message and "addon_alembic_version" in message


# -- which version table a location's env.py writes (README "Migration locations") ---------

STOCK_ENV = """\
from alembic import context
from sqlalchemy import engine_from_config

config = context.config


def run_migrations_online():
    engine = engine_from_config(config.get_section(config.config_ini_section), prefix="sqlalchemy.")
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=None{extra})
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
"""


def env_with(tmp_path, package, extra="", source=None):
    folder = make_env(tmp_path, package, "alembic")
    (folder / "env.py").write_text(source if source is not None else STOCK_ENV.format(extra=extra))
    return folder


def test_own_env_py_naming_no_version_table_shares_alembic_version(tmp_path):
    folder = env_with(tmp_path, "pyramid_app")
    loc = resolve_location(str(folder), kotti_convention=False)
    assert loc.version_table == "alembic_version" and loc.needs_ini
    assert "names no version_table" in loc.table_reason


def test_kotti_add_on_with_stock_env_py_keeps_its_package_table(tmp_path):
    """Kotti's tool handed <package>_alembic_version to such an env.py: that record stays."""
    folder = env_with(tmp_path, "kotti_pdf")
    loc = resolve_location(str(folder), kotti_convention=True)
    assert loc.version_table == "kotti_pdf_alembic_version" and not loc.needs_ini


@pytest.mark.parametrize("convention", [True, False])
def test_literal_version_table_in_env_py_is_used(tmp_path, convention):
    folder = env_with(tmp_path, "app_a", extra=', version_table="app_a_versions"')
    assert resolve_location(str(folder), kotti_convention=convention).version_table == "app_a_versions"
    source = "VERSIONS = 'app_b_versions'\n" + STOCK_ENV.format(extra=", version_table=VERSIONS")
    folder = env_with(tmp_path, "app_b", source=source)
    assert resolve_location(str(folder), kotti_convention=convention).version_table == "app_b_versions"


def test_env_py_delegating_to_kotti_migrate_keeps_package_table(tmp_path):
    folder = env_with(tmp_path, "addon", source="from kotti_migrate.environment import run_environment\n")
    loc = resolve_location(str(folder), kotti_convention=False)
    assert loc.version_table == "addon_alembic_version" and not loc.needs_ini


def test_computed_version_table_needs_the_setting(tmp_path):
    folder = env_with(tmp_path, "app_c", extra=", version_table=config.get_main_option('vt')")
    with pytest.raises(ConfigurationError, match=r"kotti_migrate\.version_table\.app_c = <table>"):
        resolve_location(str(folder), kotti_convention=False)
    loc = resolve_location(
        str(folder), kotti_convention=False, overrides={"kotti_migrate.version_table.app_c": "vt_c"}
    )
    assert loc.version_table == "vt_c"


def test_two_env_pys_writing_alembic_version_are_an_error_naming_both(tmp_path):
    a = env_with(tmp_path, "app_one")
    b = env_with(tmp_path, "app_two")
    with pytest.raises(ConfigurationError) as info:
        resolve_locations([str(a), str(b)], kotti_specs=())
    message = str(info.value)
    assert str(a) in message and str(b) in message and "'alembic_version'" in message
    # Managed the way Kotti's tool does, each keeps its own table.
    tables = [loc.version_table for loc in resolve_locations([str(a), str(b)])]
    assert tables == ["app_one_alembic_version", "app_two_alembic_version"]


@pytest.mark.kotti
def test_kotti_site_keeps_package_tables_for_kotti_alembic_dirs(tmp_path):
    from kotti_migrate import Migrations

    addon = env_with(tmp_path, "kotti_pdf")
    migrations = Migrations(
        {"sqlalchemy.url": f"sqlite:///{tmp_path}/x.db", "kotti.alembic_dirs": f"kotti:alembic {addon}"}
    )
    assert [loc.version_table for loc in migrations.locations] == [
        "kotti_alembic_version",
        "kotti_pdf_alembic_version",
    ]
