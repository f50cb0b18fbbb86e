"""The seed tutorial, run as written: plain ``alembic -c alembic.ini`` and
``kotti-migrate alembic.ini ...`` on one scratch add-on, one ini file.

Every command is the real console script of this virtualenv, run in its own
process in a temporary project folder; the add-on ``kotti_addon`` lives in
that folder and is importable only through the ini file's
``[alembic] prepend_sys_path`` (honoured by both tools).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from helpers import columns, tables, versions

pytestmark = pytest.mark.kotti

BIN = Path(sys.executable).parent
VERSION_TABLE = "kotti_addon_alembic_version"

LOGGING = """
[loggers]
keys = root,sqlalchemy,alembic

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = WARN
handlers = console
qualname =

[logger_sqlalchemy]
level = WARN
handlers =
qualname = sqlalchemy.engine

[logger_alembic]
level = INFO
handlers =
qualname = alembic

[handler_console]
class = StreamHandler
args = (sys.stderr,)
level = NOTSET
formatter = generic

[formatter_generic]
format = %(levelname)-5.5s [%(name)s] %(message)s
"""

ACCOUNT_UPGRADE = """\
def upgrade():
    op.create_table(
        'account',
        sa.Column('id', sa.Integer, primary_key=True),
        sa.Column('name', sa.String(50), nullable=False),
        sa.Column('description', sa.Unicode(200)),
    )


def downgrade():
    op.drop_table('account')
"""

ACCOUNT_MODEL = """\
import sqlalchemy as sa
from kotti import Base


class Account(Base):
    __tablename__ = "account"
    id = sa.Column(sa.Integer, primary_key=True)
    name = sa.Column(sa.String(50), nullable=False)
    description = sa.Column(sa.Unicode(200))
"""


@dataclass
class Run:
    code: int
    out: str
    err: str


def run(tool: str, *args: str, cwd: Path) -> Run:
    """Run the virtualenv's ``alembic`` or ``kotti-migrate`` in ``cwd``.

    Empty ``PYTHONPATH`` entries (meaning: the working directory) are dropped,
    so that the add-on is importable only the way the ini file says.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p)
    proc = subprocess.run(
        [str(BIN / tool), *map(str, args)],
        capture_output=True,
        text=True,
        cwd=str(cwd),
        env=env,
        timeout=180,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


def ok(result: Run) -> Run:
    assert result.code == 0, f"exit {result.code}\nstdout:\n{result.out}\nstderr:\n{result.err}"
    return result


@dataclass
class Project:
    """A project folder: ``alembic.ini`` and the add-on package ``kotti_addon``."""

    root: Path
    url: str

    @property
    def ini(self) -> Path:
        return self.root / "alembic.ini"

    @property
    def location(self) -> Path:
        return self.root / "kotti_addon" / "alembic"

    def revision_files(self) -> list[Path]:
        return sorted(self.location.joinpath("versions").glob("*.py"))


def make_project(
    root: Path,
    url: str,
    *,
    registered: bool = True,
    models: bool = False,
    script_location: str = "kotti_addon/alembic",
    prepend_sys_path: str | None = ".",
) -> Project:
    """An empty project: the add-on (no migrations yet) and one ini for both tools.

    ``registered``: the add-on registers ``kotti_addon:alembic`` in its
    ``kotti_configure`` (as Kotti add-ons do); otherwise it is only named by
    ``[alembic] script_location`` and ``--scripts``.
    """
    package = root / "kotti_addon"
    package.mkdir(parents=True)
    body = ["def kotti_configure(settings):"]
    if models:
        body.append("    from . import models  # noqa: F401  (the tables join kotti.metadata)")
    if registered:
        body.append("    settings['kotti.alembic_dirs'] += ' kotti_addon:alembic'")
    if len(body) == 1:
        body.append("    pass")
    (package / "__init__.py").write_text("\n".join(body) + "\n")
    if models:
        (package / "models.py").write_text(ACCOUNT_MODEL)
    alembic = [f"script_location = {script_location}", "path_separator = os"]
    if prepend_sys_path is not None:
        alembic.append(f"prepend_sys_path = {prepend_sys_path}")
    (root / "alembic.ini").write_text(
        textwrap.dedent(
            f"""\
            [app:main]
            use = egg:kotti
            sqlalchemy.url = {url}
            kotti.secret = secret
            kotti.site_title = tutorial site
            kotti.configurators = kotti_addon.kotti_configure

            [alembic]
            """
        )
        + "\n".join(alembic)
        + "\n"
        + LOGGING
    )
    return Project(root, url)


@pytest.fixture
def project(tmp_path, db_url):
    """Factory of a project folder under ``tmp_path`` on the test's database."""

    def make(name: str = "project", **kw) -> Project:
        return make_project(tmp_path / name, db_url, **kw)

    return make


def init(project: Project, cwd: Path | None = None) -> None:
    result = ok(run("kotti-migrate", "alembic.ini", "init", "--scripts=kotti_addon/alembic",
                    cwd=cwd or project.root))
    assert f"Created migration environment {project.location}" in result.out
    assert f"version table: {VERSION_TABLE}" in result.out
    for name in ("env.py", "script.py.mako", "versions"):
        assert (project.location / name).exists(), name


def alembic_revision(project: Project, message: str, *extra: str) -> tuple[str, Path]:
    """``alembic -c alembic.ini revision -m MESSAGE``: the new revision id and file."""
    before = set(project.revision_files())
    result = ok(run("alembic", "-c", "alembic.ini", "revision", "-m", message, *extra, cwd=project.root))
    (path,) = set(project.revision_files()) - before
    assert f"Generating {path} ...  done" in result.out
    rev = re.search(r"^revision = '([0-9a-f]+)'$", path.read_text(), re.M).group(1)
    assert path.name == f"{rev}_{message.replace(' ', '_')}.py"
    return rev, path


def fill_in_account_table(path: Path) -> None:
    """Write the tutorial's ``create_table('account', ...)`` into a revision file."""
    text = path.read_text()
    start = text.index("def upgrade():")
    path.write_text(text[:start] + ACCOUNT_UPGRADE)


def assert_account_table(url: str) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            cols = {c["name"]: c for c in sa.inspect(conn).get_columns("account")}
            pk = sa.inspect(conn).get_pk_constraint("account")["constrained_columns"]
    finally:
        engine.dispose()
    assert set(cols) == {"id", "name", "description"}
    assert pk == ["id"]
    assert isinstance(cols["id"]["type"], sa.Integer)
    assert cols["name"]["nullable"] is False and cols["name"]["type"].length == 50
    assert cols["description"]["nullable"] is True and cols["description"]["type"].length == 200


def assert_version_tables(url: str) -> None:
    """Only the add-on's version table, and no Kotti-style ``path/_alembic_version``."""
    names = tables(url)
    assert not [name for name in names if "/" in name]
    assert {name for name in names if name.endswith("alembic_version")} == {VERSION_TABLE}


# -- the tutorial, as written ------------------------------------------------------


@pytest.mark.parametrize("registered", [True, False], ids=["registered", "unregistered"])
def test_tutorial_from_an_empty_folder(project, registered):
    """init, alembic revision, fill in, kotti-migrate upgrade, alembic current."""
    p = project(registered=registered)
    init(p)
    rev, path = alembic_revision(p, "create account table")
    text = path.read_text()
    assert '"""create account table' in text and "down_revision = None" in text
    fill_in_account_table(path)

    result = ok(
        run("kotti-migrate", "alembic.ini", "upgrade", "--scripts", "kotti_addon/alembic", cwd=p.root)
    )
    spec = "kotti_addon:alembic" if registered else "kotti_addon/alembic"
    assert f"Upgrading {spec} ({VERSION_TABLE}): base -> {rev}" in result.out
    assert f"  - upgrade {rev} (create account table):" in result.out
    assert "1 step(s)" in result.out

    current = ok(run("alembic", "-c", "alembic.ini", "current", cwd=p.root))
    assert current.out.strip() == f"{rev} (head)"
    assert "Context impl" in current.err  # the ini's logging configuration applies

    assert {"account", VERSION_TABLE} <= tables(p.url)
    assert versions(p.url, VERSION_TABLE) == [rev]
    assert_account_table(p.url)
    assert_version_tables(p.url)

    history = ok(run("alembic", "-c", "alembic.ini", "history", cwd=p.root))
    assert history.out.strip() == f"<base> -> {rev} (head), create account table"

    # upgrading again is a no-op for both tools
    again = ok(run("kotti-migrate", "alembic.ini", "upgrade", "--scripts", "kotti_addon/alembic", cwd=p.root))
    assert f"({VERSION_TABLE}): {rev} -> {rev}" in again.out and "already up to date" in again.out
    ok(run("alembic", "-c", "alembic.ini", "upgrade", "head", cwd=p.root))
    assert versions(p.url, VERSION_TABLE) == [rev]


#: (how the ini file is named, --scripts argument(s), where the command runs)
FORMS = {
    # ("space-relative" is the tutorial's own form: test_tutorial_from_an_empty_folder)
    "equals-relative": ("alembic.ini", ["--scripts=kotti_addon/alembic"], "root"),
    "dot-relative": ("alembic.ini", ["--scripts=./kotti_addon/alembic"], "root"),
    "space-absolute": ("alembic.ini", ["--scripts", "{location}"], "root"),
    "equals-absolute-elsewhere": ("{ini}", ["--scripts={location}"], "elsewhere"),
    # a relative --scripts is relative to the ini file's folder, wherever the command runs
    "space-relative-ini-elsewhere": ("project/alembic.ini", ["--scripts", "kotti_addon/alembic"], "parent"),
    "equals-relative-ini-elsewhere": ("{ini}", ["--scripts=kotti_addon/alembic"], "elsewhere"),
    "asset-spec": ("alembic.ini", ["--scripts", "kotti_addon:alembic"], "root"),
}


@pytest.mark.parametrize("form", list(FORMS))
def test_kotti_migrate_scripts_option_forms(project, tmp_path, form):
    ini_arg, scripts, where = FORMS[form]
    p = project()
    init(p)
    rev, path = alembic_revision(p, "create account table")
    fill_in_account_table(path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    cwd = {"root": p.root, "parent": tmp_path, "elsewhere": elsewhere}[where]
    fmt = {"ini": p.ini, "location": p.location}
    args = [ini_arg.format(**fmt), "upgrade", *(arg.format(**fmt) for arg in scripts)]
    if where != "root":
        # the add-on is importable through prepend_sys_path = . only from its folder
        p.ini.write_text(p.ini.read_text().replace("prepend_sys_path = .", "prepend_sys_path = %(here)s"))

    result = ok(run("kotti-migrate", *args, cwd=cwd))
    assert f"Upgrading kotti_addon:alembic ({VERSION_TABLE}): base -> {rev}" in result.out

    current = ok(run("alembic", "-c", "alembic.ini", "current", cwd=p.root))
    assert current.out.strip() == f"{rev} (head)"
    assert versions(p.url, VERSION_TABLE) == [rev]
    assert_account_table(p.url)
    assert_version_tables(p.url)


# -- plain alembic and kotti-migrate see each other -------------------------------


def test_alembic_autogenerate_upgrade_and_kotti_migrate_see_each_other(project):
    p = project(models=True)
    init(p)

    # autogenerate compares kotti.metadata (with the add-on's model) to the
    # empty database: only the add-on's table, not Kotti's nor version tables
    rev1, path1 = alembic_revision(p, "create account table", "--autogenerate")
    text = path1.read_text()
    assert text.count("op.create_table(") == 1
    assert "op.create_table('account'," in text
    assert "sa.Column('name', sa.String(length=50), nullable=False)" in text
    assert "sa.Column('description', sa.Unicode(length=200), nullable=True)" in text
    assert "op.drop_table('account')" in text

    # offline SQL from plain alembic writes the add-on's version table
    sql = ok(run("alembic", "-c", "alembic.ini", "upgrade", "head", "--sql", cwd=p.root))
    assert "CREATE TABLE account" in sql.out
    assert f"INSERT INTO {VERSION_TABLE} (version_num) VALUES ('{rev1}')" in sql.out
    # (autogenerate, as in any Alembic environment, created the empty version table)
    assert tables(p.url) == {VERSION_TABLE}
    assert versions(p.url, VERSION_TABLE) == []

    # before any upgrade: both tools agree there is nothing recorded
    status = run("kotti-migrate", "alembic.ini", "status", "--scripts=kotti_addon:alembic", cwd=p.root)
    assert status.code == 3
    # (Only an empty version table: the database is still empty, status says so first.)
    assert status.out.splitlines()[0].startswith("empty database ")
    assert status.out.splitlines()[2].split() == ["kotti_addon:alembic", VERSION_TABLE, "base", rev1, "1"]
    assert ok(run("alembic", "-c", "alembic.ini", "current", cwd=p.root)).out.strip() == ""

    # alembic upgrades, kotti-migrate sees it
    up = ok(run("alembic", "-c", "alembic.ini", "upgrade", "head", cwd=p.root))
    assert f"Running upgrade  -> {rev1}, create account table" in up.err
    assert versions(p.url, VERSION_TABLE) == [rev1]
    assert_account_table(p.url)
    assert_version_tables(p.url)
    status = ok(run("kotti-migrate", "alembic.ini", "status", "--scripts", "kotti_addon/alembic", cwd=p.root))
    assert status.out.splitlines()[1].split() == ["kotti_addon:alembic", VERSION_TABLE, rev1, rev1, "0"]
    current = ok(run("kotti-migrate", "alembic.ini", "current", "--scripts=kotti_addon:alembic", cwd=p.root))
    assert current.out.strip() == f"kotti_addon:alembic ({VERSION_TABLE}): {rev1} (head)"
    check = ok(run("alembic", "-c", "alembic.ini", "check", cwd=p.root))
    assert "No new upgrade operations detected." in check.out

    # kotti-migrate writes and applies the next revision, alembic sees it
    models = p.root / "kotti_addon" / "models.py"
    models.write_text(models.read_text() + "    email = sa.Column(sa.String(100))\n")
    new = ok(run("kotti-migrate", "alembic.ini", "revision", "--scripts=kotti_addon:alembic",
                 "-m", "add account email", "--autogenerate", cwd=p.root))
    (path2,) = set(p.revision_files()) - {path1}
    assert f"Generated {path2}" in new.out
    rev2 = re.search(r"^revision = '([0-9a-f]+)'$", path2.read_text(), re.M).group(1)
    # op.add_column('account', ...) on PostgreSQL, batch_op.add_column(...) on SQLite
    assert "add_column(" in path2.read_text()
    assert "sa.Column('email', sa.String(length=100), nullable=True)" in path2.read_text()
    history = ok(run("alembic", "-c", "alembic.ini", "history", cwd=p.root))
    assert history.out.strip().splitlines() == [
        f"{rev1} -> {rev2} (head), add account email",
        f"<base> -> {rev1}, create account table",
    ]
    assert ok(run("alembic", "-c", "alembic.ini", "current", cwd=p.root)).out.strip() == rev1
    ok(run("kotti-migrate", "alembic.ini", "upgrade", "--scripts=kotti_addon:alembic", cwd=p.root))
    assert ok(run("alembic", "-c", "alembic.ini", "current", cwd=p.root)).out.strip() == f"{rev2} (head)"
    assert "email" in columns(p.url, "account")

    # alembic downgrades, kotti-migrate sees it; and the other way round
    down = ok(run("alembic", "-c", "alembic.ini", "downgrade", "-1", cwd=p.root))
    assert f"Running downgrade {rev2} -> {rev1}, add account email" in down.err
    assert "email" not in columns(p.url, "account")
    current = ok(
        run("kotti-migrate", "alembic.ini", "current", "--scripts", "kotti_addon/alembic", cwd=p.root)
    )
    assert current.out.strip() == f"kotti_addon:alembic ({VERSION_TABLE}): {rev1}"
    ok(run("kotti-migrate", "alembic.ini", "downgrade", "--scripts=kotti_addon:alembic", "--rev=base",
           cwd=p.root))
    assert ok(run("alembic", "-c", "alembic.ini", "current", cwd=p.root)).out.strip() == ""
    assert "account" not in tables(p.url)
    assert versions(p.url, VERSION_TABLE) == []
    assert_version_tables(p.url)


def test_alembic_with_here_paths_works_from_any_folder(project, tmp_path):
    """``%(here)s`` in ``[alembic]`` makes plain alembic independent of the working directory."""
    p = project(script_location="%(here)s/kotti_addon/alembic", prepend_sys_path="%(here)s")
    init(p)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = ok(run("alembic", "-c", str(p.ini), "revision", "-m", "create account table", cwd=elsewhere))
    (path,) = p.revision_files()
    assert f"Generating {path} ...  done" in result.out
    rev = re.search(r"^revision = '([0-9a-f]+)'$", path.read_text(), re.M).group(1)
    fill_in_account_table(path)

    ok(run("alembic", "-c", str(p.ini), "upgrade", "head", cwd=elsewhere))
    assert versions(p.url, VERSION_TABLE) == [rev]
    assert_account_table(p.url)
    status = ok(run("kotti-migrate", str(p.ini), "status", "--scripts=kotti_addon:alembic", cwd=elsewhere))
    assert status.out.splitlines()[1].split() == ["kotti_addon:alembic", VERSION_TABLE, rev, rev, "0"]
    assert ok(run("alembic", "-c", str(p.ini), "current", cwd=elsewhere)).out.strip() == f"{rev} (head)"


def test_relative_script_location_from_another_folder(project, tmp_path):
    """Alembic reads a relative script_location from the working directory; so does the env.py."""
    p = project(prepend_sys_path="%(here)s")
    init(p)
    rev, path = alembic_revision(p, "create account table")
    fill_in_account_table(path)
    (tmp_path / "alembic2.ini").write_text(
        p.ini.read_text()
        .replace("script_location = kotti_addon/alembic", "script_location = project/kotti_addon/alembic")
        .replace("prepend_sys_path = %(here)s", "prepend_sys_path = %(here)s/project")
    )
    ok(run("alembic", "-c", "alembic2.ini", "upgrade", "head", cwd=tmp_path))
    assert versions(p.url, VERSION_TABLE) == [rev]
    current = ok(run("alembic", "-c", "alembic2.ini", "current", cwd=tmp_path))
    assert current.out.strip() == f"{rev} (head)"
    status = ok(run("kotti-migrate", "alembic2.ini", "status", "--scripts=project/kotti_addon/alembic",
                    cwd=tmp_path))
    assert status.out.splitlines()[1].split() == ["kotti_addon:alembic", VERSION_TABLE, rev, rev, "0"]


def test_unimportable_addon_is_one_line_for_both_tools(project):
    """Without prepend_sys_path (and not installed) the add-on cannot be imported."""
    p = project(prepend_sys_path=None)
    init(p)
    rev, path = alembic_revision(p, "create account table")  # needs no env.py, no app
    fill_in_account_table(path)

    result = run("alembic", "-c", "alembic.ini", "upgrade", "head", cwd=p.root)
    assert result.code == 255  # Alembic's exit code for a command that failed
    assert "Traceback" not in result.out + result.err
    (line,) = result.out.splitlines()
    assert line.startswith("FAILED: kotti_migrate: app [app:main] of ")
    assert "No module named 'kotti_addon'" in line

    result = run("kotti-migrate", "alembic.ini", "upgrade", "--scripts", "kotti_addon/alembic", cwd=p.root)
    assert result.code == 1
    assert result.err.strip().startswith("kotti-migrate: error: app [app:main] of ")
    assert "No module named 'kotti_addon'" in result.err
    assert VERSION_TABLE not in tables(p.url)
