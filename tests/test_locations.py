"""Locations: asset specs and paths, version table names, order, conflicts."""

from __future__ import annotations

import pytest

from kotti_migrate.errors import ConfigurationError, LocationError
from kotti_migrate.locations import resolve_location, resolve_locations, version_table_for


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
