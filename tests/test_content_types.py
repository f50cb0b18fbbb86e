"""Kotti add-ons that define content types (joined-table inheritance).

``kotti-migrate`` runs in its own process here: loading kotti_recipes would
add its models to Kotti's metadata in the test process for good.

``kotti_recipes`` (tests/projects) has two content types whose tables join
Kotti's ``contents`` and ``nodes``; Kotti loads nodes polymorphically, so
every page's query joins ``recipes`` and ``menus``.  Its history:
c1 creates recipes, c2 creates menus, c3 adds recipes.servings.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from helpers import (
    KOTTI_HEAD,
    boot,
    cli_process,
    columns,
    execute,
    failed,
    logged,
    query,
    serve,
    started,
    tables,
    versions,
)

pytestmark = pytest.mark.kotti

SPEC = "kotti_recipes:alembic"
TABLE = "kotti_recipes_alembic_version"
CREATE_RECIPES, CREATE_MENUS, ADD_SERVINGS = "c1000000000a", "c2000000000b", "c3000000000c"


def recipes_ini(kotti_ini, url, **settings):
    return kotti_ini(url, kotti__configurators="kotti_recipes.kotti_configure", **settings)


def add_recipe(ini) -> None:
    """Add a Recipe below the root through Kotti's ORM, as the site would."""
    script = textwrap.dedent(
        f"""
        import transaction
        from pyramid.paster import get_app
        get_app({str(ini)!r})
        from kotti.resources import get_root
        from kotti_recipes.resources import Recipe
        get_root()["soup"] = Recipe(title="Soup", servings=4)
        transaction.commit()
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ini.parent)
    assert proc.returncode == 0, proc.stderr


def recipes(url) -> list[tuple]:
    return query(url, "SELECT n.name, r.servings FROM recipes r JOIN nodes n ON n.id = r.id")


def test_content_type_addon_added_later_owns_only_its_own_tables(kotti_ini, db_url):
    """Kotti's tables differing from its models do not make the add-on "adopted"."""
    started(boot(kotti_ini(db_url, addons=False)))
    # A site's own tweak of a Kotti table: Kotti's tables now differ from Kotti's models.
    execute(db_url, "ALTER TABLE contents ADD COLUMN legacy_flag INTEGER")

    result = boot(recipes_ini(kotti_ini, db_url))
    started(result)
    assert versions(db_url, TABLE) == [ADD_SERVINGS]
    assert columns(db_url, "recipes") == {"id", "servings"}
    assert columns(db_url, "menus") == {"id", "course"}
    info = [line for line in logged(result.err, "INFO") if SPEC in line]
    assert any(
        f"{SPEC} is new to this database: its tables (menus, recipes) are created" in line for line in info
    ), result.err
    assert any(f"{SPEC} stamped at {ADD_SERVINGS}" in line for line in info)
    for line in info:
        assert "contents" not in line and "nodes" not in line, line
    assert not any(f"{SPEC} upgrade" in line for line in info)  # nothing migrated

    add_recipe(recipes_ini(kotti_ini, db_url))
    assert recipes(db_url) == [("soup", 4)]


def test_pending_content_type_whose_table_is_missing_stops_startup_clearly(kotti_ini, db_url):
    ini = recipes_ini(kotti_ini, db_url)
    started(boot(ini))
    add_recipe(ini)
    # The database as the add-on's previous release left it: no menus table yet.
    down = cli_process(ini, "downgrade", f"--scripts={SPEC}", f"--rev={CREATE_RECIPES}")
    assert down.code == 0, down.err
    assert "menus" not in tables(db_url) and "servings" not in columns(db_url, "recipes")

    served = serve(ini)
    assert served.code not in (None, 0) and served.status is None, served.err
    last = served.err.strip().splitlines()[-1].strip()
    assert last.startswith("kotti_migrate: start-up failed: ")
    assert f"{SPEC} is at {CREATE_RECIPES}, behind its head {ADD_SERVINGS}" in last
    assert "table menus is missing (every query of kotti.resources.Node loads it)" in last
    assert f"run: kotti-migrate {ini} upgrade --scripts={SPEC}" in last
    assert "kotti_migrate.auto_upgrade = true" in last
    # Never a raw SQL error, and nothing changed.
    assert "no such table" not in served.err and "does not exist" not in served.err
    assert versions(db_url, TABLE) == [CREATE_RECIPES]
    assert "menus" not in tables(db_url)
    errors = logged(served.err, "ERROR")
    assert len(errors) == 1 and "table menus is missing" in errors[0]

    # The second fix: auto-upgrade.  The site serves, the recipe is still there.
    result = boot(recipes_ini(kotti_ini, db_url, kotti_migrate__auto_upgrade="true"))
    started(result)
    assert versions(db_url, TABLE) == [ADD_SERVINGS]
    assert recipes(db_url) == [("soup", None)]  # servings added by c3, empty for old rows


def test_pending_content_type_column_missing_stops_startup_and_the_command_fixes_it(
    kotti_ini, db_url, tmp_path
):
    ini = recipes_ini(kotti_ini, db_url, kotti_migrate__config_file=tmp_path / "site.ini")
    started(boot(ini))
    assert cli_process(ini, "downgrade", f"--scripts={SPEC}", f"--rev={CREATE_MENUS}").code == 0

    result = boot(ini)
    line = failed(result)
    assert "kotti_migrate.errors.MigrationsRequired" in result.err
    assert f"{SPEC} is at {CREATE_MENUS}, behind its head {ADD_SERVINGS}" in line
    assert "table recipes lacks column(s) servings" in line
    assert "no such column" not in result.err and "does not exist" not in result.err

    # The first fix, exactly as advised.
    command = line.split("run: ", 1)[1].split(", or ")[0]
    assert command == f"kotti-migrate {ini} upgrade --scripts={SPEC}"
    fixed = cli_process(*command.split()[1:])
    assert fixed.code == 0, fixed.err
    assert versions(db_url, TABLE) == [ADD_SERVINGS]
    started(boot(ini))


def test_pending_content_type_with_flag_off_holds_back_only_its_own_tables(kotti_ini, db_url):
    """A content type whose pending revision breaks nothing: warned, served, Kotti's tables untouched."""
    ini = recipes_ini(kotti_ini, db_url)
    started(boot(ini))
    # c3 pending, but the column is already there (added by hand): every page works.
    assert cli_process(ini, "stamp", f"--scripts={SPEC}", f"--rev={CREATE_MENUS}").code == 0

    result = boot(ini)
    started(result)
    [warning] = logged(result.err, "WARNING")
    assert f"{SPEC} is at {CREATE_MENUS}, behind its head {ADD_SERVINGS}" in warning
    assert "pages using its tables (menus, recipes) may fail until it is upgraded" in warning
    held = [line for line in logged(result.err, "INFO") if "left as they are" in line]
    assert held and held[0].endswith("(not created by create_all): menus, recipes")
    assert versions(db_url, "kotti_alembic_version") == [KOTTI_HEAD]
