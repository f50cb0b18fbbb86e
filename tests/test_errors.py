"""Every expected failure of kotti-migrate: one line on stderr, non-zero exit.

The command line and the config file, locations, the database, Kotti sites.
Revisions and failing migrations are in test_errors_revisions.py.  Most tests
use the ``tiny_app`` fixture (conftest.py): a tiny Pyramid app written into
the test's folder under a new package name; it works on both stacks.  The
errors are checked through the real console script for a few cases and
in-process for the rest.
"""

from __future__ import annotations

import pytest
from helpers import (
    CREATE_THINGS,
    ERROR_PREFIX,
    PASSWORD,
    SWALLOWING_ENV,
    assert_verbose_traceback,
    cli,
    cli_process,
    execute,
    free_port,
    one_error_line,
    write_ini,
)

ONE_REVISION = {"r1_create.py": ("aa1000000001", None, CREATE_THINGS)}


def closed_port() -> int:
    """A local port nothing listens on."""
    return free_port()


# -- the command line and the config file ---------------------------------------------


def test_missing_config_file(tmp_path):
    missing = tmp_path / "nosuch.ini"
    result = cli_process(missing, "status")
    line = one_error_line(result)
    assert str(missing) in line and "not found" in line
    verbose = cli_process("-v", missing, "status")
    assert_verbose_traceback(verbose, line)


def test_config_path_is_a_directory(tmp_path):
    line = one_error_line(cli(tmp_path, "status"))
    assert str(tmp_path) in line


def test_missing_section(tiny_app, sqlite_url):
    ini, _, _ = tiny_app(sqlite_url)
    result = cli_process(f"{ini}#nosuch", "status")
    line = one_error_line(result)
    assert "[app:nosuch]" in line and str(ini) in line


def test_unknown_command(tiny_app, sqlite_url):
    ini, _, _ = tiny_app(sqlite_url)
    line = one_error_line(cli_process(ini, "frobnicate"), code=2)
    assert "frobnicate" in line and "--help" in line


def test_unknown_option(tiny_app, sqlite_url):
    ini, _, _ = tiny_app(sqlite_url)
    line = one_error_line(cli(ini, "status", "--frobnicate"), code=2)
    assert "--frobnicate" in line
    line = one_error_line(cli(ini, "upgrade", "--rev"), code=2)
    assert "--rev" in line
    line = one_error_line(cli(ini, "downgrade"), code=2)  # --rev is required
    assert "--rev" in line
    line = one_error_line(cli(), code=2)
    assert "config_uri" in line


def test_verbose_after_the_command_is_accepted(tiny_app, sqlite_url):
    ini, _, _ = tiny_app(sqlite_url)
    quiet = cli(ini, "status", "--scripts=nope:alembic")
    line = one_error_line(quiet)
    for args in (("-v", ini, "status"), (ini, "-v", "status"), (ini, "status", "--verbose")):
        result = cli(*args, "--scripts=nope:alembic")
        assert_verbose_traceback(result, line)


def test_bad_setting_value_names_the_setting(tiny_app, sqlite_url):
    ini, _, _ = tiny_app(sqlite_url, kotti_migrate__lock_timeout="soon")
    line = one_error_line(cli(ini, "status"))
    assert "kotti_migrate.lock_timeout" in line and "'soon'" in line
    ini, _, _ = tiny_app(sqlite_url, kotti_migrate__auto_upgrade="maybe")
    line = one_error_line(cli(ini, "status"))
    assert "kotti_migrate.auto_upgrade" in line and "'maybe'" in line


def test_app_factory_failing_with_a_multi_line_message(tmp_path, sqlite_url, tiny_app):
    ini, name, _ = tiny_app(sqlite_url)
    init = tmp_path / "pkgs" / name / "__init__.py"
    init.write_text(
        init.read_text().replace(
            "    config = Configurator(",
            "    raise RuntimeError('bad\\nsecond line')\n    config = Configurator(",
        )
    )
    line = one_error_line(cli(ini, "status"))
    assert "failed to load" in line and "RuntimeError: bad" in line


def test_metadata_setting_not_importable(tiny_app, sqlite_url):
    ini, _, _ = tiny_app(
        sqlite_url,
        {"r1_create.py": ("r1", None, CREATE_THINGS)},
        kotti_migrate__metadata="nosuchpkg.models.Base",
    )
    line = one_error_line(cli(ini, "check"))
    assert "kotti_migrate.metadata" in line and "nosuchpkg" in line


# -- locations ---------------------------------------------------------------------------


def test_unknown_location_package_not_importable(tiny_app, sqlite_url):
    ini, _, _ = tiny_app(sqlite_url)
    result = cli_process(ini, "upgrade", "--scripts=nope:alembic")
    line = one_error_line(result)
    assert "'nope:alembic'" in line and "not importable" in line


def test_location_folder_missing(tiny_app, sqlite_url, tmp_path):
    ini, _, _ = tiny_app(sqlite_url)
    line = one_error_line(cli(ini, "history", "--scripts", str(tmp_path / "nowhere")))
    assert "does not exist" in line


def test_location_without_versions_folder(tiny_app, sqlite_url, tmp_path):
    ini, _, _ = tiny_app(sqlite_url)
    folder = tmp_path / "addon" / "alembic"
    folder.mkdir(parents=True)
    line = one_error_line(cli(ini, "upgrade", f"--scripts={folder}"))
    assert "no versions/ folder" in line and "init --scripts=" in line


def test_registered_location_without_versions_folder(tiny_app, sqlite_url, tmp_path):
    """A broken registered location fails every command, clearly."""
    folder = tmp_path / "addon" / "alembic"
    folder.mkdir(parents=True)
    ini, _, _ = tiny_app(sqlite_url, kotti__alembic_dirs=str(folder))
    line = one_error_line(cli(ini, "status"))
    assert "no versions/ folder" in line


def test_several_locations_and_no_scripts(tiny_app, sqlite_url, tmp_path):
    other = tmp_path / "other_addon" / "alembic"
    (other / "versions").mkdir(parents=True)
    ini, _, _ = tiny_app(sqlite_url, kotti__alembic_dirs=str(other))
    line = one_error_line(cli(ini, "upgrade"))
    assert "several locations" in line and "--scripts" in line


# -- the database -----------------------------------------------------------------------


def test_database_unreachable_password_never_shown(tiny_app, tmp_path):
    port = closed_port()
    url = f"postgresql+psycopg2://someone:{PASSWORD}@127.0.0.1:{port}/site"
    ini, _, _ = tiny_app(url, ONE_REVISION)
    result = cli_process(ini, "status")
    line = one_error_line(result)
    assert f"postgresql+psycopg2://someone:***@127.0.0.1:{port}/site" in line
    assert "unreachable" in line
    verbose = cli_process(ini, "upgrade", "-v")
    assert PASSWORD not in verbose.out + verbose.err
    assert "Traceback" in verbose.err
    upgrade_line = verbose.err.strip().splitlines()[-1]
    assert upgrade_line.startswith(ERROR_PREFIX) and "***" in upgrade_line and "unreachable" in upgrade_line
    for command in ("current", "check", "stamp_heads", "list_all"):
        for args in ((ini, command), ("-v", ini, command)):
            result = cli(*args)
            assert result.code == 1, (args, result.err)
            assert PASSWORD not in result.out + result.err, args
            assert "***" in result.err, args


def test_invalid_database_url(tiny_app):
    ini, _, _ = tiny_app(f"nosuchdialect://u:{PASSWORD}@host/db", ONE_REVISION)
    line = one_error_line(cli(ini, "status"))
    assert "u:***@host" in line


# -- Kotti ------------------------------------------------------------------------------


@pytest.mark.kotti
def test_kotti_site_unknown_location_and_revision(kotti_ini, sqlite_url):
    ini = kotti_ini(sqlite_url)
    line = one_error_line(cli(ini, "upgrade", "--scripts=kotti_nope:alembic"))
    assert "kotti_nope" in line
    line = one_error_line(cli(ini, "show", "--scripts=kotti:alembic", "--rev=ffffffff"))
    assert "location 'kotti:alembic': unknown revision 'ffffffff'" in line


@pytest.mark.kotti
def test_kotti_sql_refused_for_kottis_env(kotti_ini, sqlite_url):
    ini = kotti_ini(sqlite_url)
    line = one_error_line(cli(ini, "upgrade", "--scripts=kotti:alembic", "--sql"))
    assert "location 'kotti:alembic'" in line and "offline mode" in line


@pytest.mark.kotti
def test_kotti_bad_configurator(kotti_ini, sqlite_url):
    ini = kotti_ini(sqlite_url, addons=False, kotti__configurators="no_such_addon.kotti_configure")
    line = one_error_line(cli(ini, "status"))
    assert "no_such_addon" in line


@pytest.mark.kotti
def test_kotti_database_unreachable(kotti_ini):
    url = f"postgresql+psycopg2://someone:{PASSWORD}@127.0.0.1:{closed_port()}/site"
    ini = kotti_ini(url)
    line = one_error_line(cli_process(ini, "status"))
    assert "***" in line and "unreachable" in line
    verbose = cli_process(ini, "upgrade_all", "-v")
    assert verbose.code == 1 and PASSWORD not in verbose.out + verbose.err



# -- found in review ---------------------------------------------------------------------



def test_env_py_swallowing_an_error_before_any_step_is_still_a_failure(tiny_app, sqlite_url):
    ini, _, versions_dir = tiny_app(sqlite_url, {"a1_things.py": ("a1", None, CREATE_THINGS)})
    (versions_dir.parent / "env.py").write_text(SWALLOWING_ENV)
    assert cli(ini, "upgrade").code == 0
    execute(sqlite_url, f"UPDATE {versions_dir.parent.parent.name}_alembic_version SET version_num = 'zz99'")
    line = one_error_line(cli(ini, "upgrade"))
    assert "the migration environment failed" in line and "zz99" in line


def test_mistyped_url_never_shows_its_password(tiny_app):
    ini, _, _ = tiny_app(f"postgresql//bob:{PASSWORD}@127.0.0.1/db")
    line = one_error_line(cli(ini, "status"))
    # The URL cannot be parsed: it is not shown as the database's name, and
    # where SQLAlchemy's message quotes it, its password is masked.
    start = f"{ERROR_PREFIX} cannot create a database engine for <unparsable database URL>: "
    assert line.startswith(start), line
    assert "Could not parse" in line
    assert "bob:***@" in line or "bob" not in line


def test_infinite_lock_timeout_is_refused(tiny_app, sqlite_url):
    ini, _, _ = tiny_app(sqlite_url, kotti_migrate__lock_timeout="inf")
    line = one_error_line(cli(ini, "status"))
    assert "kotti_migrate.lock_timeout" in line


def test_app_wrapped_in_middleware_is_found(tmp_path, monkeypatch, sqlite_url):
    root = tmp_path / "pkgs"
    (root / "wrapped_app" / "alembic" / "versions").mkdir(parents=True)
    (root / "wrapped_app" / "__init__.py").write_text(
        "from pyramid.config import Configurator\n\n\n"
        "def main(global_config, **settings):\n"
        "    config = Configurator(settings=settings)\n"
        "    config.include('kotti_migrate')\n"
        "    config.add_alembic_dir('wrapped_app:alembic')\n"
        "    app = config.make_wsgi_app()\n"
        "    return lambda environ, start_response: app(environ, start_response)\n"
    )
    monkeypatch.syspath_prepend(str(root))
    ini = write_ini(tmp_path / "wrapped.ini", "call:wrapped_app:main", sqlite_url)
    result = cli(ini, "status")
    assert result.code == 3, result.err  # registered, never stamped
    assert "wrapped_app:alembic" in result.out
