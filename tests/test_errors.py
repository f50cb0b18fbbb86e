"""Every expected failure of kotti-migrate: one line on stderr, non-zero exit.

Most tests use a tiny Pyramid app written into the test's folder (a new
package name per test, so nothing is cached between tests); it works on
both stacks.  The errors are checked through the real console script for a
few cases and in-process for the rest.
"""

from __future__ import annotations

import os
import re
import socket
import uuid

import pytest
from conftest import cli, cli_process, columns, execute, query, tables, versions, write_ini

PASSWORD = "s3cret-pw"
PREFIX = "kotti-migrate: error:"

APP_INIT = '''\
import sqlalchemy as sa
from pyramid.config import Configurator

metadata = sa.MetaData()
things = sa.Table(
    "things",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(50)),
)


def main(global_config, **settings):
    settings.setdefault("kotti_migrate.metadata", "{name}.metadata")
    config = Configurator(settings=settings)
    config.include("kotti_migrate")
    config.add_alembic_dir("{name}:alembic")
    return config.make_wsgi_app()
'''

REVISION = '''\
"""{doc}

Revision ID: {rev}
Revises: {down}
"""
import sqlalchemy as sa
from alembic import op

revision = {rev!r}
down_revision = {down!r}


def upgrade():
{upgrade}


def downgrade():
    pass
'''

CREATE_THINGS = """\
    op.create_table(
        "things",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(50)),
    )"""


#: The progress lines of an upgrade or downgrade (tests/test_progress.py), on stderr before the error.
PROGRESS = re.compile(r"\[\d+/\d+\] .* (\.\.\.|done in \d+\.\d{3} s|failed after \d+\.\d{3} s)")


def one_error_line(result, code: int = 1) -> str:
    """The single error line of a failed run (asserts the shape of the failure)."""
    assert result.code == code, (result.code, result.out, result.err)
    assert "Traceback" not in result.err, result.err
    every = result.err.strip("\n").splitlines()
    lines = [line for line in every if not PROGRESS.fullmatch(line)]  # the revisions run before it
    assert len(lines) == 1 and every[-1] == lines[0], result.err
    assert lines[0].startswith(PREFIX), result.err
    assert PASSWORD not in result.out + result.err
    return lines[0]


def assert_verbose_traceback(result, line: str) -> None:
    """With -v: a traceback, and still the same one-line error at the end."""
    assert result.code == 1, result.err
    assert "Traceback (most recent call last)" in result.err, result.err
    assert result.err.strip("\n").splitlines()[-1] == line
    assert PASSWORD not in result.out + result.err


@pytest.fixture
def tiny_app(tmp_path, monkeypatch):
    """Factory: a new app package under tmp_path, its revisions and an ini file.

    ``revisions`` maps file names to ``(rev, down, upgrade body)`` (or to the
    file's text).  Returns ``(ini, package name, versions folder)``.
    """
    root = tmp_path / "pkgs"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(root), os.environ["PYTHONPATH"]]))

    def make(url: str, revisions: dict | None = None, **settings):
        name = "tiny_" + uuid.uuid4().hex[:10]
        package = root / name
        (package / "alembic" / "versions").mkdir(parents=True)
        (package / "__init__.py").write_text(APP_INIT.format(name=name))
        for filename, spec in (revisions or {}).items():
            if isinstance(spec, str):
                text = spec
            else:
                rev, down, upgrade = spec
                text = REVISION.format(doc=f"Revision {rev}", rev=rev, down=down, upgrade=upgrade)
            (package / "alembic" / "versions" / filename).write_text(text)
        ini = write_ini(
            tmp_path / f"{name}.ini",
            f"call:{name}:main",
            url,
            {k.replace("__", "."): v for k, v in settings.items()},
        )
        return ini, name, package / "alembic" / "versions"

    return make


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket is closed


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


# -- revisions -----------------------------------------------------------------------------

def add_column(name: str) -> str:
    return f'    op.add_column("things", sa.Column("{name}", sa.Integer))'


LINEAR = {
    "r1_create.py": ("aa1000000001", None, CREATE_THINGS),
    "r2_add.py": ("aa2000000002", "aa1000000001", add_column("size")),
}


def test_unknown_revision(tiny_app, sqlite_url):
    ini, _, _ = tiny_app(sqlite_url, LINEAR)
    for args in (
        ("upgrade", "--rev=ffff"),
        ("downgrade", "--rev=ffff"),
        ("show", "--rev=ffff"),
        ("stamp_head", "--rev=ffff"),
        ("history", "--range=ffff:heads"),
        ("merge", "-m", "m", "ffff", "aa1000000001"),
        ("revision", "-m", "x", "--head=ffff"),
    ):
        line = one_error_line(cli(ini, *args))
        assert "unknown revision 'ffff'" in line, args
    assert "ffff" not in str(tables(sqlite_url))


def test_ambiguous_revision_prefix(tiny_app, sqlite_url):
    ini, _, _ = tiny_app(sqlite_url, LINEAR)
    result = cli_process(ini, "show", "--rev=aa")
    line = one_error_line(result)
    assert "'aa' is ambiguous" in line
    line = one_error_line(cli(ini, "upgrade", "--rev=aa"))
    assert "'aa' is ambiguous" in line
    # An unambiguous prefix is fine.
    assert cli(ini, "show", "--rev=aa2").code == 0


def test_bad_history_range(tiny_app, sqlite_url):
    ini, _, _ = tiny_app(sqlite_url, LINEAR)
    line = one_error_line(cli(ini, "history", "--range=aa1000000001"))
    assert "START:END" in line


def test_downgrade_sql_needs_a_range(tiny_app, sqlite_url):
    ini, _, _ = tiny_app(sqlite_url, LINEAR)
    line = one_error_line(cli(ini, "downgrade", "--rev=base", "--sql"))
    assert "START:END" in line


def test_revision_id_already_exists(tiny_app, sqlite_url):
    ini, _, versions_dir = tiny_app(sqlite_url, LINEAR)
    line = one_error_line(cli(ini, "revision", "-m", "again", "--rev-id=aa1000000001"))
    assert "'aa1000000001' already exists" in line
    assert len(list(versions_dir.glob("*.py"))) == 2


BRANCHED = {
    "r1_create.py": ("bb1000000001", None, CREATE_THINGS),
    "r2_left.py": ("bb2000000002", "bb1000000001", add_column("a")),
    "r3_right.py": ("cc3000000003", "bb1000000001", add_column("b")),
}


def test_several_heads_where_one_is_required(tiny_app, sqlite_url):
    ini, name, versions_dir = tiny_app(sqlite_url, BRANCHED)
    assert cli(ini, "upgrade").code == 0  # "upgrade" means all heads
    # A new revision needs one parent: Alembic refuses "head" with two heads.
    line = one_error_line(cli(ini, "revision", "-m", "next"))
    assert "head" in line.lower() and "merge" in line.lower()
    assert len(list(versions_dir.glob("*.py"))) == 3
    # A single head is asked for, there are two.
    for args in (("upgrade", "--rev=head"), ("show", "--rev=head")):
        line = one_error_line(cli(ini, *args))
        assert "head" in line, args
    # One step down from two heads is ambiguous (Alembic would pick one).
    line = one_error_line(cli(ini, "downgrade", "--rev=-1"))
    assert "downgrade -1 is ambiguous" in line and "bb2000000002, cc3000000003" in line
    assert versions(sqlite_url, f"{name}_alembic_version") == ["bb2000000002", "cc3000000003"]
    # Naming the head works.
    assert cli(ini, "downgrade", "--rev=cc3000000003@-1").code == 0
    assert versions(sqlite_url, f"{name}_alembic_version") == ["bb2000000002"]


def test_revision_file_that_fails_to_import_is_named(tiny_app, sqlite_url):
    broken = LINEAR | {
        "r3_broken.py": REVISION.format(
            doc="broken", rev="aa3000000003", down="aa2000000002", upgrade="    pass"
        ).replace("import sqlalchemy as sa\n", "import sqlalchemy as sa\nimport no_such_module_xyz\n")
    }
    ini, _, versions_dir = tiny_app(sqlite_url, broken)
    result = cli_process(ini, "upgrade")
    line = one_error_line(result)
    assert str(versions_dir / "r3_broken.py") in line
    assert "no_such_module_xyz" in line
    assert_verbose_traceback(cli_process("-v", ini, "upgrade"), line)


def test_revision_file_with_a_syntax_error_is_named(tiny_app, sqlite_url):
    ini, _, versions_dir = tiny_app(sqlite_url, LINEAR | {"r3_syntax.py": "revision = 'x'\ndef upgrade(:\n"})
    line = one_error_line(cli(ini, "history"))
    assert str(versions_dir / "r3_syntax.py") in line and "SyntaxError" in line


def test_cycle_in_the_revision_graph(tiny_app, sqlite_url):
    cycle = {
        "r1_create.py": ("dd1000000001", None, CREATE_THINGS),
        "r2.py": ("dd2000000002", "dd3000000003", "    pass"),
        "r3.py": ("dd3000000003", "dd2000000002", "    pass"),
    }
    ini, _, _ = tiny_app(sqlite_url, cycle)
    line = one_error_line(cli_process(ini, "status"))
    assert "cycle in the revision graph" in line
    for command in ("upgrade", "heads"):
        line = one_error_line(cli(ini, command))
        assert "cycle" in line.lower(), line
        assert "dd2000000002" in line or "dd3000000003" in line


def test_dangling_down_revision(tiny_app, sqlite_url):
    ini, _, versions_dir = tiny_app(sqlite_url, {"r1.py": ("ee1000000001", "ee0000000000", "    pass")})
    line = one_error_line(cli_process(ini, "status"))  # Alembic's warning does not leak either
    assert f"revision ee1000000001 ({versions_dir / 'r1.py'}) refers to 'ee0000000000'" in line
    assert "does not exist" in line


def test_two_files_with_the_same_revision_id(tiny_app, sqlite_url):
    ini, _, _ = tiny_app(
        sqlite_url,
        {"r1.py": ("ee1000000001", None, CREATE_THINGS), "r1_copy.py": ("ee1000000001", None, "    pass")},
    )
    line = one_error_line(cli_process(ini, "heads"))
    assert "revision ee1000000001 is defined by several files: r1.py, r1_copy.py" in line


def test_database_at_unknown_revision_cannot_be_upgraded(tiny_app, sqlite_url):
    ini, name, _ = tiny_app(sqlite_url, LINEAR)
    execute(
        sqlite_url,
        f"CREATE TABLE {name}_alembic_version (version_num VARCHAR(32) NOT NULL)",
        f"INSERT INTO {name}_alembic_version VALUES ('ab0000000000')",
    )
    status = cli(ini, "status")
    assert status.code == 3
    assert "unknown revision" in status.out
    line = one_error_line(cli(ini, "upgrade"))
    assert "ab0000000000" in line


# -- the database -----------------------------------------------------------------------


def test_database_unreachable_password_never_shown(tiny_app, tmp_path):
    port = closed_port()
    url = f"postgresql+psycopg2://someone:{PASSWORD}@127.0.0.1:{port}/site"
    ini, _, _ = tiny_app(url, LINEAR)
    result = cli_process(ini, "status")
    line = one_error_line(result)
    assert f"postgresql+psycopg2://someone:***@127.0.0.1:{port}/site" in line
    assert "unreachable" in line
    verbose = cli_process(ini, "upgrade", "-v")
    assert PASSWORD not in verbose.out + verbose.err
    assert "Traceback" in verbose.err
    upgrade_line = verbose.err.strip().splitlines()[-1]
    assert upgrade_line.startswith(PREFIX) and "***" in upgrade_line and "unreachable" in upgrade_line
    for command in ("current", "check", "stamp_heads", "list_all"):
        for args in ((ini, command), ("-v", ini, command)):
            result = cli(*args)
            assert result.code == 1, (args, result.err)
            assert PASSWORD not in result.out + result.err, args
            assert "***" in result.err, args


def test_invalid_database_url(tiny_app):
    ini, _, _ = tiny_app(f"nosuchdialect://u:{PASSWORD}@host/db", LINEAR)
    line = one_error_line(cli(ini, "status"))
    assert "u:***@host" in line


# -- failing migrations ------------------------------------------------------------------

FAILING = {
    "r1_create.py": ("ff1000000001", None, CREATE_THINGS),
    "r2_add.py": (
        "ff2000000002",
        "ff1000000001",
        '    op.add_column("things", sa.Column("size", sa.Integer))\n'
        '    op.execute("INSERT INTO things (id, name) VALUES (1, \'one\')")',
    ),
    "r3_fail.py": (
        "ff3000000003",
        "ff2000000002",
        '    op.add_column("things", sa.Column("colour", sa.String(10)))\n'
        "    op.execute(\"UPDATE things SET name = 'changed'\")\n"
        '    raise RuntimeError("boom in r3")',
    ),
}


def test_failing_migration_names_location_and_revision(tiny_app, db_url):
    ini, name, _ = tiny_app(db_url, FAILING)
    result = cli_process(ini, "upgrade")
    line = one_error_line(result)
    assert f"location '{name}:alembic': revision ff3000000003 failed" in line
    assert "RuntimeError: boom in r3" in line
    assert "the database is at ff2000000002" in line
    # The revisions before the failing one are kept (one transaction per migration).
    assert versions(db_url, f"{name}_alembic_version") == ["ff2000000002"]
    assert query(db_url, "SELECT id, name FROM things") == [(1, "one")]
    # DDL is transactional on both (SQLite too): nothing of r3 remains.
    assert columns(db_url, "things") == {"id", "name", "size"}
    assert_verbose_traceback(cli(ini, "-v", "upgrade"), line)
    assert versions(db_url, f"{name}_alembic_version") == ["ff2000000002"]


def test_failing_migration_upgrade_all_and_downgrade(tiny_app, db_url):
    failing_down = {
        "r1_create.py": ("ff1000000001", None, CREATE_THINGS),
        "r2_bad_down.py": REVISION.format(
            doc="bad downgrade", rev="ff2000000002", down="ff1000000001", upgrade="    pass"
        ).replace("def downgrade():\n    pass", "def downgrade():\n    raise ValueError('cannot go back')"),
    }
    ini, name, _ = tiny_app(db_url, failing_down)
    assert cli(ini, "upgrade_all").code == 0
    line = one_error_line(cli(ini, "downgrade", "--rev=base"))
    assert f"location '{name}:alembic': revision ff2000000002 failed" in line
    assert "ValueError: cannot go back" in line
    assert versions(db_url, f"{name}_alembic_version") == ["ff2000000002"]
    assert "things" in tables(db_url)


def test_failing_sql_error_is_one_line_without_password(tiny_app, pg_server):
    url = pg_server.new_database()
    assert PASSWORD in url
    bad = {
        "r1_create.py": ("ff1000000001", None, CREATE_THINGS),
        "r2_bad_sql.py": ("ff2000000002", "ff1000000001", '    op.execute("SELECT * FROM no_such_table")'),
    }
    ini, name, _ = tiny_app(url, bad)
    result = cli_process(ini, "upgrade_all")
    line = one_error_line(result)
    assert "revision ff2000000002 failed" in line and "no_such_table" in line
    assert versions(url, f"{name}_alembic_version") == ["ff1000000001"]
    verbose = cli_process(ini, "upgrade_all", "-v")
    assert "Traceback" in verbose.err and PASSWORD not in verbose.err + verbose.out


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

SWALLOWING_ENV = '''\
import traceback

from alembic import context

from kotti_migrate.environment import run_default_environment

try:  # like Kotti's env.py: print the error, carry on
    run_default_environment()
except Exception:
    traceback.print_exc()
'''


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
    assert "bob" in line or "URL" in line or "url" in line


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
