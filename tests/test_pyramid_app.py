"""Adopting kotti_migrate in an existing Pyramid app (README: "Adopting kotti_migrate
in an existing Pyramid app").

The app is ``tests/projects/starter_project``, shaped like the Pyramid starter
(pyramid-cookiecutter-starter, sqlalchemy backend): ``starter_app/models/meta.py``,
the starter's ``alembic/env.py`` (``get_appsettings(config.config_file_name)``,
``setup_logging``, no version_table: Alembic's ``alembic_version``), an
``[alembic]`` section in ``development.ini`` and a first revision.  Each test
copies it, migrates it the way its team does (the real ``alembic`` command),
adds the README's two lines and then uses the real app factory (``boot``,
``pserve``) and the real ``kotti-migrate`` command, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import (
    PROJECTS,
    Result,
    boot,
    cli,
    columns,
    execute,
    free_port,
    logged,
    query,
    serve,
    started,
    tables,
    versions,
)

pytestmark = pytest.mark.modern

BIN = Path(sys.executable).parent
PROJECT = PROJECTS / "starter_project"
FIRST = "5a1f0c2d3b4e"
SPEC = "starter_app/alembic"

#: The two lines of the README's recipe, added to [app:main].
RECIPE = "pyramid.includes = kotti_migrate\nkotti_migrate.metadata = starter_app.models.meta.Base\n"

#: Appended to the copied env.py: records what Alembic's config told it, per run.
PROBE = '''

import json as _json, os as _os, sys as _sys
with open(config.get_main_option("here") + "/env_probe.jsonl", "a") as _probe:
    _probe.write(_json.dumps({
        "tool": _os.path.basename(_sys.argv[0]),
        "config_file_name": config.config_file_name,
        "section": config.config_ini_section,
        "file_template": config.get_main_option("file_template"),
        "has_app_section": "sqlalchemy.url" in config.get_section("app:main", {}),
        "sql": bool(getattr(config.cmd_opts, "sql", None)),
        "x": context.get_x_argument(),
        "offline": context.is_offline_mode(),
    }) + "\\n")
'''

NOTE_MODEL = "    note: Mapped[Optional[str]]\n"

NOTE_REVISION = '''"""add note

Revision ID: 6c2e1d0f9a8b
Revises: 5a1f0c2d3b4e
Create Date: 2025-03-02 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


revision = '6c2e1d0f9a8b'
down_revision = '5a1f0c2d3b4e'
branch_labels = None
depends_on = None

def upgrade():
    op.add_column('models', sa.Column('note', sa.String(), nullable=True))

def downgrade():
    with op.batch_alter_table('models') as batch_op:
        batch_op.drop_column('note')
'''
SECOND = "6c2e1d0f9a8b"


@dataclass
class App:
    root: Path
    url: str

    @property
    def ini(self) -> Path:
        return self.root / "development.ini"

    @property
    def env(self) -> dict:
        return {"PYTHONPATH": os.pathsep.join([str(self.root), os.environ.get("PYTHONPATH", "")])}

    def run(self, tool: str, *args: str) -> Result:
        proc = subprocess.run(
            [str(BIN / tool), *map(str, args)],
            capture_output=True,
            text=True,
            cwd=str(self.root),
            env={**os.environ, **self.env},
            timeout=180,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def alembic(self, *args: str) -> Result:
        return self.run("alembic", "-c", "development.ini", *args)

    def kotti_migrate(self, *args: str) -> Result:
        return self.run("kotti-migrate", "development.ini", *args)

    def boot(self, **env: str) -> Result:
        return boot(self.ini, env={**self.env, **env})

    def adopt(self) -> None:
        """The README's recipe: two lines in [app:main]."""
        text = self.ini.read_text()
        assert "pyramid.includes =\n" in text
        self.ini.write_text(text.replace("pyramid.includes =\n", RECIPE, 1))

    def change_model(self) -> None:
        model = self.root / "starter_app" / "models" / "mymodel.py"
        text = model.read_text()
        value = "    value: Mapped[Optional[int]]\n"
        model.write_text(text.replace(value, value + NOTE_MODEL))

    def probe(self) -> list[dict]:
        path = self.root / "env_probe.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    @property
    def versions_dir(self) -> Path:
        return self.root / "starter_app" / "alembic" / "versions"


def ok(result: Result) -> Result:
    assert result.code == 0, f"exit {result.code}\nstdout:\n{result.out}\nstderr:\n{result.err}"
    return result


@pytest.fixture
def app(tmp_path, db_url) -> App:
    """A copy of the starter project on ``db_url``, before kotti_migrate."""
    root = tmp_path / "project"
    shutil.copytree(PROJECT, root, ignore=shutil.ignore_patterns("__pycache__", "*.sqlite"))
    ini = root / "development.ini"
    text = ini.read_text()
    text = re.sub(r"(?m)^sqlalchemy\.url = .*$", f"sqlalchemy.url = {db_url}", text)
    text = text.replace("listen = localhost:6543", f"listen = 127.0.0.1:{free_port()}")
    ini.write_text(text)
    return App(root, db_url)


@pytest.fixture
def migrated(app) -> App:
    """Migrated the team's way (``alembic upgrade head``), with rows, then adopted."""
    ok(app.alembic("upgrade", "head"))
    execute(app.url, "INSERT INTO models (id, name, value) VALUES (1, 'one', 1)",
            "INSERT INTO models (id, name, value) VALUES (2, 'two', 2)")
    app.adopt()
    return app


def test_first_boot_of_an_alembic_migrated_app_runs_nothing_and_keeps_rows(migrated):
    app = migrated
    result = started(app.boot())
    info = "\n".join(logged(result.err, "INFO"))
    assert f"using [alembic] script_location = {SPEC} of {app.ini}" in info
    assert f"{SPEC} is at its head {FIRST}" in info
    assert "upgrad" not in info and "stamped" not in info
    assert logged(result.err, "WARNING") == []
    # One record: Alembic's own, untouched; no second version table appeared.
    assert tables(app.url) == {"models", "alembic_version"}
    assert versions(app.url, "alembic_version") == [FIRST]
    assert query(app.url, "SELECT id, name, value FROM models ORDER BY id") == [(1, "one", 1), (2, "two", 2)]

    status = ok(app.kotti_migrate("status"))
    assert status.out.split("\n")[1].split() == [SPEC, "alembic_version", FIRST, FIRST, "0"]
    check = ok(app.kotti_migrate("check"))
    assert check.out == f"{SPEC}: no differences\n"
    assert f"{FIRST} (head)" in ok(app.alembic("current")).out


def test_autogenerated_revision_is_applied_once_by_a_boot_with_auto_upgrade(migrated):
    app = migrated
    app.change_model()
    made = ok(app.alembic("revision", "--autogenerate", "-m", "add note"))
    [path] = [p for p in app.versions_dir.glob("*.py") if FIRST not in p.name]
    assert re.fullmatch(r"\d{8}_[0-9a-f]{12}\.py", path.name), made.err  # the ini's file_template
    new = path.name[9:21]
    assert "add_column('models'" in path.read_text()

    held = started(app.boot())
    [warning] = logged(held.err, "WARNING")
    assert f"{SPEC} is at {FIRST}, behind its head {new}" in warning
    assert f"kotti-migrate {app.ini} upgrade --scripts={SPEC}" in warning
    assert "note" not in columns(app.url, "models")
    pending = app.kotti_migrate("status")
    assert pending.code == 3, pending.out + pending.err
    assert pending.out.split("\n")[1].split() == [SPEC, "alembic_version", FIRST, new, "1"]

    upgraded = started(app.boot(KOTTI_MIGRATE_AUTO_UPGRADE="true"))
    steps = [
        line for line in logged(upgraded.err, "INFO")
        if " upgrade " in line and "kotti_migrate.progress" not in line
    ]
    assert len(steps) == 1 and f"{SPEC} upgrade {new} (add note)" in steps[0], upgraded.err
    assert "note" in columns(app.url, "models")
    assert versions(app.url, "alembic_version") == [new]
    assert tables(app.url) == {"models", "alembic_version"}
    assert query(app.url, "SELECT count(*) FROM models") == [(2,)]

    assert f"{new} (head)" in ok(app.alembic("current")).out
    again = ok(app.alembic("upgrade", "head"))
    assert "Running upgrade" not in again.err
    assert ok(app.kotti_migrate("status")).out.split("\n")[1].split()[2:] == [new, new, "0"]
    quiet = started(app.boot(KOTTI_MIGRATE_AUTO_UPGRADE="true"))
    assert f"{SPEC} is at its head {new}" in "\n".join(logged(quiet.err, "INFO"))


def test_downgrade_and_upgrade_run_the_apps_own_env_py(migrated):
    app = migrated
    env_py = app.root / "starter_app" / "alembic" / "env.py"
    env_py.write_text(env_py.read_text() + PROBE)
    app.change_model()
    (app.versions_dir / f"20250302_{SECOND}.py").write_text(NOTE_REVISION)

    up = ok(app.kotti_migrate("upgrade", f"--scripts={SPEC}"))
    assert f"upgrade {SECOND} (add note)" in up.out
    assert f"{SECOND} (head)" in ok(app.alembic("current")).out

    down = ok(app.kotti_migrate("downgrade", f"--scripts={SPEC}", "--rev=-1"))
    assert f"downgrade {SECOND}" in down.out
    assert "note" not in columns(app.url, "models")
    current = ok(app.alembic("current")).out
    assert FIRST in current and "(head)" not in current

    ok(app.kotti_migrate("upgrade", f"--scripts={SPEC}"))
    assert "note" in columns(app.url, "models")
    assert f"{SECOND} (head)" in ok(app.alembic("current")).out
    assert versions(app.url, "alembic_version") == [SECOND]

    sql = ok(app.kotti_migrate("upgrade", f"--scripts={SPEC}", f"--rev={FIRST}:{SECOND}", "--sql"))
    assert re.search(r"ALTER TABLE models ADD COLUMN note", sql.out), sql.out
    assert f"UPDATE alembic_version SET version_num='{SECOND}'" in sql.out

    # Under kotti-migrate the env.py saw what Alembic's CLI gives it.
    runs = [run for run in app.probe() if run["tool"] == "kotti-migrate"]
    assert len(runs) == 4
    for run in runs:
        assert run["config_file_name"] == str(app.ini)
        assert run["section"] == "alembic"
        assert run["file_template"] == "%(year)d%(month).2d%(day).2d_%(rev)s"
        assert run["has_app_section"] and run["x"] == []
    assert [(run["sql"], run["offline"]) for run in runs] == [(False, False)] * 3 + [(True, True)]

    # And a boot applies a downgraded revision through it as well.
    ok(app.kotti_migrate("downgrade", f"--scripts={SPEC}", f"--rev={FIRST}"))
    started(app.boot(KOTTI_MIGRATE_AUTO_UPGRADE="true"))
    assert versions(app.url, "alembic_version") == [SECOND]
    assert app.probe()[-1]["config_file_name"] == str(app.ini)


def test_kotti_migrate_autogenerate_uses_the_apps_env_py_and_leaves_version_tables_alone(migrated):
    app = migrated
    # Another location's record in the same database: never proposed for removal.
    execute(app.url, "CREATE TABLE other_alembic_version (version_num VARCHAR(32) NOT NULL)")
    app.change_model()
    made = ok(app.kotti_migrate("revision", f"--scripts={SPEC}", "-m", "add note", "--autogenerate"))
    [path] = [p for p in app.versions_dir.glob("*.py") if FIRST not in p.name]
    assert re.fullmatch(r"\d{8}_[0-9a-f]{12}\.py", path.name), made.out
    text = path.read_text()
    assert "add_column('models'" in text
    assert "alembic_version" not in text
    check = app.kotti_migrate("check")
    assert check.code == 3 and "add_column: models.note" in check.out and "alembic_version" not in check.out


def test_fresh_database_first_boot_records_the_head_where_alembic_sees_it(app):
    app.adopt()
    served = serve(app.ini, env=app.env)
    assert served.code is None, served.err
    assert (served.status, served.body) == (200, "models: 0")
    assert f"{SPEC} stamped at {FIRST}" in served.err
    assert tables(app.url) == {"models", "alembic_version"}
    assert versions(app.url, "alembic_version") == [FIRST]
    assert f"{FIRST} (head)" in ok(app.alembic("current")).out
    assert "Running upgrade" not in ok(app.alembic("upgrade", "head")).err
    assert ok(app.alembic("check")).code == 0  # create_all made what the revisions make


def test_location_registered_and_in_alembic_section_counts_once(migrated):
    app = migrated
    text = app.ini.read_text().replace(RECIPE, RECIPE + "kotti.alembic_dirs = starter_app:alembic\n")
    app.ini.write_text(text)
    result = started(app.boot())
    info = "\n".join(logged(result.err, "INFO"))
    assert "using [alembic]" not in info
    assert f"starter_app:alembic is at its head {FIRST}" in info
    status = ok(app.kotti_migrate("status"))
    rows = status.out.strip().split("\n")[1:]
    assert [row.split() for row in rows] == [["starter_app:alembic", "alembic_version", FIRST, FIRST, "0"]]


def test_two_locations_writing_alembic_version_are_a_configuration_error(migrated, tmp_path):
    other = tmp_path / "other_pkg" / "migrations"
    (other / "versions").mkdir(parents=True)
    (other.parent / "__init__.py").touch()
    shutil.copy(migrated.root / "starter_app" / "alembic" / "env.py", other / "env.py")
    text = migrated.ini.read_text().replace(
        RECIPE, RECIPE + f"kotti.alembic_dirs = starter_app:alembic {other}\n"
    )
    migrated.ini.write_text(text)
    result = migrated.kotti_migrate("status")
    assert result.code == 1
    [line] = result.err.strip().splitlines()[-1:]
    assert "starter_app:alembic" in line and str(other) in line and "'alembic_version'" in line
    booted = migrated.boot()
    assert booted.code != 0 and "ConfigurationError" in booted.err and "'alembic_version'" in booted.err


def test_check_ignores_alembic_version_of_another_tool(modern_ini, db_url):
    """kotti_migrate's default environment: a table ``alembic_version`` is nobody's model."""
    ini = modern_ini(db_url)
    started(boot(ini))
    execute(db_url, "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
    result = cli(ini, "check")
    assert result.code == 0, result.out + result.err
    assert "alembic_version" not in result.out
