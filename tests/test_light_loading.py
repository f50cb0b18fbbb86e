"""Read-only commands load a Kotti site light, and still find every location.

`status`, `current`, `heads`, `history`, `list_all` and `show` load a Kotti
site as far as its migration locations need: Kotti's defaults and
`kotti.configurators` applied, then only the includes that can call
`config.add_alembic_dir` (not Kotti's views, not its dotted settings); an
include that cannot run that way makes them load the site fully.  These
tests use real add-on packages registering their locations both ways, and
compare with the full load (`Migrations.from_config_uri`).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import (
    KOTTI_HEAD,
    NOTES_HEAD,
    add_pserve_sections,
    boot,
    cli,
    cli_process,
    new_package,
    ok,
    one_error_line,
    started,
    versions,
    write_location,
)

from kotti_migrate import Migrations

pytestmark = pytest.mark.kotti

#: ``__init__.py`` of an add-on registering its location in its includeme; ``{before}`` runs first.
INCLUDEME_ADDON = '''\
def includeme(config):
{before}
    config.add_alembic_dir("{name}:alembic")
'''


@pytest.fixture
def packages(tmp_path, monkeypatch):
    """Factory: an add-on package (new name) with one revision, registering its location per ``body``."""
    root = tmp_path / "pkgs"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(root), os.environ["PYTHONPATH"]]))

    def make(prefix: str, before: str = "    pass", rev: str = "c0ffee000001") -> str:
        name, package = new_package(root, prefix)
        (package / "__init__.py").write_text(INCLUDEME_ADDON.format(name=name, before=before))
        write_location(package / "alembic", [(rev, None, "pass")])
        return name

    return make


def full_load(ini) -> list[str]:
    migrations = Migrations.from_config_uri(str(ini))
    try:
        return [loc.spec for loc in migrations.locations]
    finally:
        migrations.dispose()


def light_load(ini) -> list[str]:
    migrations = Migrations.from_config_uri(str(ini), light=True)
    try:
        return [loc.spec for loc in migrations.locations]
    finally:
        migrations.dispose()


def heavy_imports(ini, *args: str, prefixes: tuple[str, ...] = ("kotti.views.edit",)) -> tuple[int, list]:
    """``kotti-migrate <ini> *args`` in a fresh process: exit code, the modules of ``prefixes`` imported.

    Kotti's edit views are imported by the full load only (Kotti's base includes).  (Alembic is imported to
    read revision files the index does not cover: those changed in the last 2 s.)
    """
    script = (
        "import sys\nfrom kotti_migrate.cli import main\n"
        f"code = main([{str(ini)!r}, *{list(args)!r}])\n"
        f"print(code, *sorted(m for m in sys.modules if m.startswith({prefixes!r})))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    code, *modules = result.stdout.splitlines()[-1].split()
    return int(code), modules


def test_status_finds_configurator_and_includeme_locations(kotti_ini, db_url, booted_kotti_site, packages):
    """kotti_notes registers through kotti_configure, the new add-on through its includeme."""
    booted_kotti_site(db_url)
    addon = packages("light_addon")
    ini = kotti_ini(db_url, pyramid__includes=f"pyramid_tm kotti_migrate {addon}")
    expected = ["kotti:alembic", "kotti_notes:alembic", f"{addon}:alembic"]
    assert full_load(ini) == expected
    assert light_load(ini) == expected
    status = cli(ini, "status")
    assert status.code == 3, status.err  # the new add-on: no version table yet
    rows = [line.split() for line in status.out.splitlines()[1:]]
    assert rows[0] == ["kotti:alembic", "kotti_alembic_version", KOTTI_HEAD, KOTTI_HEAD, "0"]
    assert rows[1] == ["kotti_notes:alembic", "kotti_notes_alembic_version", NOTES_HEAD, NOTES_HEAD, "0"]
    assert rows[2][:2] == [f"{addon}:alembic", f"{addon}_alembic_version"]
    assert rows[2][-2:] == ["c0ffee000001", "1"]
    assert f"{addon}:alembic ({addon}_alembic_version):" in ok(cli(ini, "list_all"))
    assert f"{addon}:alembic ({addon}_alembic_version): (no version table)" in ok(cli(ini, "current"))
    assert f"{addon}:alembic: c0ffee000001 (Revision c0ffee000001) (head)" in ok(cli(ini, "heads"))
    history = ok(cli(ini, "history", f"--scripts={addon}:alembic"))
    assert history == "<base> -> c0ffee000001 (head), Revision c0ffee000001\n"
    assert heavy_imports(ini, "heads") == (0, [])  # light: no fallback to the full load


def test_includes_added_by_a_configurator_and_custom_base_includes(kotti_ini, sqlite_url, packages, tmp_path):
    """An add-on put in pyramid.includes by a configurator, one in a custom kotti.base_includes."""
    by_configurator = packages("light_cfg")
    in_base = packages("light_base", rev="c0ffee000002")
    configure = tmp_path / "pkgs" / f"{by_configurator}_setup.py"
    configure.write_text(
        "def kotti_configure(settings):\n"
        f"    settings['pyramid.includes'] += ' {by_configurator}'\n"
    )
    import kotti

    base = kotti.conf_defaults["kotti.base_includes"] + f" {in_base}"
    ini = kotti_ini(
        sqlite_url,
        addons=False,
        kotti__configurators=f"{by_configurator}_setup.kotti_configure",
        kotti__base_includes=base,
        pyramid__includes="kotti_migrate",
    )
    # kotti_migrate's directive exists for the base include too: it is included by the add-on.
    (tmp_path / "pkgs" / in_base / "__init__.py").write_text(
        INCLUDEME_ADDON.format(name=in_base, before="    config.include('kotti_migrate')")
    )
    expected = ["kotti:alembic", f"{in_base}:alembic", f"{by_configurator}:alembic"]
    assert full_load(ini) == expected
    assert light_load(ini) == expected
    assert heavy_imports(ini, "heads") == (0, [])


def test_include_that_needs_the_full_load_falls_back_to_it(kotti_ini, sqlite_url, packages):
    """An includeme reading a setting Kotti resolves to callables fails light: the full load finds it."""
    addon = packages("light_needs", before="    config.get_settings()['kotti.populators'][0].__name__")
    ini = kotti_ini(sqlite_url, pyramid__includes=f"kotti_migrate {addon}")
    expected = ["kotti:alembic", "kotti_notes:alembic", f"{addon}:alembic"]
    assert full_load(ini) == expected
    assert light_load(ini) == expected
    assert f"{addon}:alembic ({addon}_alembic_version):" in ok(cli(ini, "list_all"))
    code, modules = heavy_imports(ini, "heads")
    assert code == 0 and "kotti.views.edit" in modules  # loaded fully


def test_errors_of_the_app_are_the_full_loads(kotti_ini, sqlite_url, packages):
    """A failing include, a directive used before kotti_migrate is included: the same line as `check`."""
    failing = packages("light_fails", before="    import no_such_module_for_light_loading  # noqa")
    ini = kotti_ini(sqlite_url, pyramid__includes=f"kotti_migrate {failing}")
    line = one_error_line(cli(ini, "status"))
    assert "No module named 'no_such_module_for_light_loading'" in line
    assert line == one_error_line(cli(ini, "check"))  # check loads fully


def test_an_addon_included_before_kotti_migrate(kotti_ini, sqlite_url, packages):
    """Its config.add_alembic_dir fails (Pyramid: "AttributeError: add_alembic_dir"): the error says the fix.

    Under pserve kotti_migrate is not loaded yet when the add-on fails (Pyramid's bare AttributeError is
    the last line); kotti_migrate.add_alembic_dir(config, ...) works in any order, under pserve too.
    """
    early = packages("light_early")
    ini = kotti_ini(sqlite_url, name="early.ini", pyramid__includes=f"pyramid_tm {early} kotti_migrate")
    line = one_error_line(cli(ini, "status"))
    assert line.endswith(
        f"failed to load: {early} calls config.add_alembic_dir before kotti_migrate is included: "
        f"include kotti_migrate before {early} (put kotti_migrate first in pyramid.includes), or let "
        f"{early} call kotti_migrate.add_alembic_dir(config, ...), which works in any order"
    ), line
    assert line == one_error_line(cli(ini, "upgrade_all"))  # loads fully
    assert boot(ini).code != 0
    # The function instead of the directive: the site starts and its location is stamped.
    helper = packages("light_helper", rev="c0ffee000003")
    (Path(sqlite_url.split("///", 1)[1])).unlink(missing_ok=True)
    (ini.parent / "pkgs" / helper / "__init__.py").write_text(
        "import kotti_migrate\n\n\ndef includeme(config):\n"
        f"    kotti_migrate.add_alembic_dir(config, '{helper}:alembic')\n"
    )
    ini = kotti_ini(sqlite_url, name="helper.ini", pyramid__includes=f"pyramid_tm {helper} kotti_migrate")
    started(boot(ini))
    assert versions(sqlite_url, f"{helper}_alembic_version") == ["c0ffee000003"]
    assert f"{helper}:alembic ({helper}_alembic_version): c0ffee000003" in ok(cli(ini, "current"))


@pytest.mark.parametrize(
    "setting, value",
    [
        ("kotti.populators", "no_such_populate_mod.populate"),
        ("kotti.root_factory", "kotti.no_such_resources:get_root"),
        ("kotti.available_types", "kotti.resources.Document kotti.resources.No_Such_Type"),
        ("kotti.search_content", "kotti.views.util.no_such_search"),
    ],
)
def test_a_dotted_setting_that_cannot_be_imported_fails_read_only_commands(
    kotti_ini, sqlite_url, setting, value
):
    """pserve fails on it: `status --wait && pserve` must not pass the gate (the full load's line and code).

    A missing module, or an attribute its source does not mention (checked without importing Kotti's views).
    """
    ini = kotti_ini(sqlite_url, **{setting.replace(".", "__"): value})
    line = one_error_line(cli_process(ini, "status"))  # a fresh process: nothing of Kotti's imported yet
    assert line.startswith("kotti-migrate: error: app [app:main] of ") and "no_such" in line.lower(), line
    assert line == one_error_line(cli(ini, "check"))  # the full load's
    for command in ("current", "heads", "list_all"):
        assert one_error_line(cli(ini, command)) == line
    if setting == "kotti.populators":
        result = boot(ini)  # what pserve does
        last = result.err.strip().splitlines()[-1]
        assert result.code != 0 and "No module named 'no_such_populate_mod'" in last, result.err


def test_an_ini_with_logging_imports_no_autogenerate_and_shows_no_plugin_lines(
    kotti_ini, sqlite_url, booted_kotti_site
):
    """[loggers] showing alembic's INFO: `status` stays light; `check` (autogenerate) adds no plugin lines."""
    booted_kotti_site(sqlite_url)
    ini = kotti_ini(sqlite_url)
    add_pserve_sections(ini)  # the root logger at INFO on stderr
    ok(cli_process(ini, "status"))  # builds the revision index
    assert heavy_imports(ini, "status", prefixes=("alembic.autogenerate",)) == (0, [])
    check = cli_process(ini, "check")
    assert check.code == 0, check.err
    assert "INFO [alembic" in check.err  # the ini's logging is applied
    assert "plugin" not in check.err
