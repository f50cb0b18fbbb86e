"""kotti-migrate on a plain Pyramid 2 / SQLAlchemy 2 app (example_app), every command.

Tests that only read or migrate use tests/projects/example_app itself.  Tests
that write revision files work on a copy of it in the test's folder, under a
new package name per test (imported modules are cached per process).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import PROJECTS, cli, cli_process, columns, execute, query, tables, versions, write_ini

pytestmark = pytest.mark.modern

FIRST = "e1000000000a"
HEAD = "e2000000000b"
VT = "example_app_alembic_version"
LOC = "example_app:alembic"

COMMANDS = [
    "list_all", "upgrade", "upgrade_all", "stamp_head", "stamp_heads", "status", "current",
    "heads", "history", "show", "downgrade", "revision", "merge", "check", "init",
]  # fmt: skip


def parser_commands() -> list[str]:
    """Every command the parser knows (so a command added later gets its --help test)."""
    from kotti_migrate.cli import build_parser

    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return list(action.choices)


def legacy(url: str) -> None:
    """The app's database before its first migration: ``items`` without ``price``."""
    execute(url, "CREATE TABLE items (id INTEGER NOT NULL PRIMARY KEY, name VARCHAR(50) NOT NULL)")


@pytest.fixture
def app(modern_ini, db_url):
    """example_app with a database that predates its migrations."""
    legacy(db_url)
    return modern_ini(db_url), db_url


@pytest.fixture
def at_head(app):
    ini, url = app
    result = cli(ini, "upgrade")
    assert result.code == 0, result.err
    return ini, url


#: The progress lines upgrades and downgrades write to stderr (tests/test_progress.py).
PROGRESS = re.compile(r"\[\d+/\d+\] .* (\.\.\.|done in \d+\.\d{3} s)")


def ok(result):
    assert result.code == 0, (result.code, result.out, result.err)
    assert [line for line in result.err.splitlines() if not PROGRESS.fullmatch(line)] == [], result.err
    return result.out


# -- copies of example_app ------------------------------------------------------------


@dataclass
class Copy:
    ini: Path
    name: str
    package: Path
    url: str

    @property
    def loc(self) -> str:
        return f"{self.name}:alembic"

    @property
    def versions_dir(self) -> Path:
        return self.package / "alembic" / "versions"

    @property
    def version_table(self) -> str:
        return f"{self.name}_alembic_version"

    def add_revision(self, rev: str, down, doc: str, upgrade: str, downgrade: str = "pass") -> Path:
        path = self.versions_dir / f"{rev}_{doc.lower().replace(' ', '_')}.py"
        path.write_text(
            f'"""{doc}\n\nRevision ID: {rev}\nRevises: {down}\n"""\n'
            "import sqlalchemy as sa\nfrom alembic import op\n\n"
            f"revision = {rev!r}\ndown_revision = {down!r}\n\n\n"
            f"def upgrade():\n    {upgrade}\n\n\ndef downgrade():\n    {downgrade}\n"
        )
        return path

    def revision_files(self) -> list[Path]:
        return sorted(self.versions_dir.glob("*.py"))


@pytest.fixture
def copy_app(tmp_path, monkeypatch):
    """Factory: a copy of example_app under a new package name, with its ini file.

    ``models`` replaces the copy's models.py (its ``Base`` is the app's metadata).
    """
    root = tmp_path / "pkgs"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(root), os.environ["PYTHONPATH"]]))

    def make(url: str, models: str | None = None, **settings) -> Copy:
        name = "example_app_" + uuid.uuid4().hex[:10]
        package = root / name
        shutil.copytree(PROJECTS / "example_app", package, ignore=shutil.ignore_patterns("__pycache__"))
        init = package / "__init__.py"
        init.write_text(init.read_text().replace("example_app", name))
        if models is not None:
            (package / "models.py").write_text(models)
        ini = write_ini(
            tmp_path / f"{name}.ini",
            f"call:{name}:main",
            url,
            {k.replace("__", "."): v for k, v in settings.items()},
        )
        return Copy(ini, name, package, url)

    return make


def parents(path: Path) -> tuple[str, ...]:
    """The down revision(s) written in a revision file."""
    namespace: dict = {}
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    down = namespace["down_revision"]
    return tuple(sorted(down)) if isinstance(down, (tuple, list)) else (down,)


def generated(result) -> Path:
    match = re.search(r"^Generated (.+\.py)$", result.out, re.M)
    assert match, result.out
    path = Path(match.group(1))
    assert path.is_file()
    return path


# -- reading ------------------------------------------------------------------------------


def test_list_all(app):
    ini, _ = app
    out = ok(cli(ini, "list_all"))
    assert out.splitlines() == [
        f"{LOC} ({VT}):",
        f"  - None -> {FIRST}: Add Item.price",
        f"  - {FIRST} -> {HEAD}: Create tags",
        "  - current revision: None",
        "",
    ]
    assert ok(cli(ini, "upgrade", f"--rev={FIRST}"))
    assert f"  - current revision: {FIRST}" in ok(cli(ini, "list_all"))


def test_status_exit_codes(app):
    ini, url = app
    fresh = cli(ini, "status")
    assert fresh.code == 3, fresh.err
    lines = fresh.out.splitlines()
    assert lines[0].split() == ["LOCATION", "VERSION", "TABLE", "CURRENT", "HEAD(S)", "PENDING"]
    assert lines[1].split() == [LOC, VT, "(no", "version", "table)", HEAD, "2"]

    ok(cli(ini, "upgrade"))
    at_head = cli(ini, "status")
    assert at_head.code == 0, at_head.err
    assert at_head.out.splitlines()[1].split() == [LOC, VT, HEAD, HEAD, "0"]

    execute(url, f"UPDATE {VT} SET version_num = '{FIRST}'")
    behind = cli(ini, "status", "--scripts", LOC)
    assert behind.code == 3
    assert behind.out.splitlines()[1].split() == [LOC, VT, FIRST, HEAD, "1"]

    execute(url, f"DELETE FROM {VT}")
    empty = cli(ini, "status")
    assert empty.code == 3
    assert empty.out.splitlines()[1].split() == [LOC, VT, "base", HEAD, "2"]


def test_current_heads_history_show(at_head):
    ini, _ = at_head
    assert ok(cli(ini, "current")) == f"{LOC} ({VT}): {HEAD} (head)\n"
    assert ok(cli(ini, "current", f"--scripts={LOC}")) == f"{LOC} ({VT}): {HEAD} (head)\n"
    assert ok(cli(ini, "heads")) == f"{LOC}: {HEAD} (Create tags) (head)\n"
    assert ok(cli(ini, "heads", "--scripts", "example_app")) == f"{LOC}: {HEAD} (Create tags) (head)\n"
    assert ok(cli(ini, "history")).splitlines() == [
        f"{FIRST} -> {HEAD} (head), Create tags",
        f"<base> -> {FIRST}, Add Item.price",
    ]
    assert ok(cli(ini, "history", f"--range={FIRST}:heads")).splitlines() == [
        f"{FIRST} -> {HEAD} (head), Create tags",
        f"<base> -> {FIRST}, Add Item.price",
    ]
    assert ok(cli(ini, "history", "--range", f"base:{FIRST}")).splitlines() == [
        f"<base> -> {FIRST}, Add Item.price",
    ]
    assert ok(cli(ini, "history", f"--range=:{FIRST}")).splitlines() == [f"<base> -> {FIRST}, Add Item.price"]
    show = ok(cli(ini, "show", "--rev=e2"))
    assert show.splitlines()[:2] == [f"Rev: {HEAD}", f"Parent: {FIRST}"]
    assert "Path: " in show and show.rstrip().endswith("Create tags")
    assert ok(cli(ini, "show", "--rev", "head")).startswith(f"Rev: {HEAD}\n")
    assert "Parent: <base>" in ok(cli(ini, "show", f"--scripts={LOC}", f"--rev={FIRST}"))
    # Reading commands change nothing.
    assert versions(at_head[1], VT) == [HEAD]


def test_current_without_version_table(app):
    ini, _ = app
    assert ok(cli(ini, "current")) == f"{LOC} ({VT}): (no version table)\n"


# -- upgrade, stamp, downgrade -------------------------------------------------------------


def test_upgrade_scripts_forms_and_rev(app, tmp_path):
    ini, url = app
    out = ok(cli(ini, "upgrade", "--scripts", LOC, "--rev", FIRST))
    assert out.splitlines()[0] == f"Upgrading {LOC} ({VT}): base -> {FIRST}"
    assert re.match(rf"  - upgrade {FIRST} \(Add Item.price\): \d+\.\d{{3}} s$", out.splitlines()[1])
    assert re.match(r"  1 step\(s\) in \d+\.\d{3} s$", out.splitlines()[2])
    assert versions(url, VT) == [FIRST]
    assert "price" in columns(url, "items") and "tags" not in tables(url)

    out = ok(cli(ini, "upgrade", f"--scripts={LOC}"))
    assert out.splitlines()[0] == f"Upgrading {LOC} ({VT}): {FIRST} -> {HEAD}"
    assert f"  - upgrade {HEAD} (Create tags):" in out
    assert versions(url, VT) == [HEAD]
    assert "tags" in tables(url)

    # Already there: by package name, by path, by default (the only location).
    folder = PROJECTS / "example_app" / "alembic"
    for args in (("--scripts=example_app",), (f"--scripts={folder}",), ()):
        out = ok(cli(ini, "upgrade", *args))
        assert out.splitlines() == [f"Upgrading {LOC} ({VT}): {HEAD} -> {HEAD}", "  - already up to date."]
    assert versions(url, VT) == [HEAD]


def test_upgrade_relative_and_to_head(app):
    ini, url = app
    ok(cli(ini, "upgrade", "--rev=+1"))
    assert versions(url, VT) == [FIRST]
    ok(cli(ini, "upgrade", "--rev=head"))
    assert versions(url, VT) == [HEAD]


def test_upgrade_all(app):
    ini, url = app
    out = ok(cli(ini, "upgrade_all"))
    assert out.splitlines()[0] == f"Upgrading {LOC} ({VT}): base -> {HEAD}"
    assert "2 step(s) in" in out
    assert versions(url, VT) == [HEAD]
    assert query(url, "SELECT count(*) FROM tags") == [(0,)]
    again = ok(cli(ini, "upgrade_all"))
    assert "already up to date." in again


def test_upgrade_through_the_console_script(app):
    ini, url = app
    result = cli_process(ini, "upgrade", "--scripts", LOC)
    assert result.code == 0, result.err
    assert f"Upgrading {LOC} ({VT}): base -> {HEAD}" in result.out
    assert versions(url, VT) == [HEAD]
    status = cli_process(ini, "status")
    assert status.code == 0, status.err


def test_stamp_head_and_stamp_heads(app):
    ini, url = app
    out = ok(cli(ini, "stamp_head"))
    assert out.splitlines()[0] == f"Stamping {LOC} ({VT}): base -> {HEAD}"
    assert f"  - stamp {HEAD}:" in out
    assert versions(url, VT) == [HEAD]
    assert "tags" not in tables(url)  # stamping runs no migration

    ok(cli(ini, "stamp_head", f"--scripts={LOC}", f"--rev={FIRST}"))
    assert versions(url, VT) == [FIRST]
    ok(cli(ini, "stamp_head", "--rev=None"))
    assert versions(url, VT) == []
    ok(cli(ini, "stamp_head", "--scripts", LOC, "--rev", FIRST, "--purge"))
    assert versions(url, VT) == [FIRST]

    out = ok(cli(ini, "stamp_heads"))
    assert out.splitlines()[0] == f"Stamping {LOC} ({VT}): {FIRST} -> {HEAD}"
    assert versions(url, VT) == [HEAD]
    assert cli(ini, "status").code == 0


def test_downgrade(at_head):
    ini, url = at_head
    out = ok(cli(ini, "downgrade", "--rev=-1"))
    assert out.splitlines()[0] == f"Downgrading {LOC} ({VT}): {HEAD} -> {FIRST}"
    assert f"  - downgrade {HEAD} (Create tags):" in out
    assert versions(url, VT) == [FIRST]
    assert "tags" not in tables(url)

    ok(cli(ini, "upgrade"))
    out = ok(cli(ini, "downgrade", f"--scripts={LOC}", "--rev", "base"))
    assert out.splitlines()[0] == f"Downgrading {LOC} ({VT}): {HEAD} -> base"
    assert "2 step(s) in" in out
    assert versions(url, VT) == []
    assert "price" not in columns(url, "items")

    ok(cli(ini, "upgrade"))
    ok(cli(ini, "downgrade", f"--rev={FIRST}"))
    assert versions(url, VT) == [FIRST]
    nothing = ok(cli(ini, "downgrade", f"--rev={FIRST}"))
    assert "  - nothing to do." in nothing


def test_data_survives_down_and_up(at_head):
    ini, url = at_head
    execute(url, "INSERT INTO items (id, name, price) VALUES (1, 'pen', 3)")
    ok(cli(ini, "downgrade", f"--rev={FIRST}"))
    ok(cli(ini, "upgrade"))
    assert query(url, "SELECT id, name, price FROM items") == [(1, "pen", 3)]


# -- offline SQL -----------------------------------------------------------------------------


def test_sql_mode_prints_sql_and_changes_nothing(app):
    ini, url = app
    fresh = ok(cli(ini, "upgrade", "--sql"))
    assert f"CREATE TABLE {VT}" in fresh
    assert "ALTER TABLE items ADD COLUMN price INTEGER" in fresh
    assert "CREATE TABLE tags" in fresh
    assert VT not in tables(url) and "price" not in columns(url, "items")

    ok(cli(ini, "upgrade", f"--rev={FIRST}"))
    up = ok(cli(ini, "upgrade", "--sql"))
    assert "CREATE TABLE tags" in up and "ADD COLUMN price" not in up
    assert f"UPDATE {VT} SET version_num='{HEAD}' WHERE {VT}.version_num = '{FIRST}'" in up
    ranged = ok(cli(ini, "upgrade", f"--scripts={LOC}", f"--rev=base:{FIRST}", "--sql"))
    assert "ADD COLUMN price" in ranged and "CREATE TABLE tags" not in ranged
    upgrade_all = ok(cli(ini, "upgrade_all", "--sql"))
    assert "CREATE TABLE tags" in upgrade_all
    assert versions(url, VT) == [FIRST] and "tags" not in tables(url)

    down = ok(cli(ini, "downgrade", f"--rev={HEAD}:{FIRST}", "--sql"))
    assert "DROP TABLE tags" in down
    assert f"UPDATE {VT} SET version_num='{FIRST}'" in down

    stamp = ok(cli(ini, "stamp_head", "--sql"))
    assert f"'{HEAD}'" in stamp
    stamp_first = ok(cli(ini, "stamp_head", f"--rev={FIRST}", "--sql"))
    assert f"'{FIRST}'" in stamp_first and f"'{HEAD}'" not in stamp_first
    assert versions(url, VT) == [FIRST] and "tags" not in tables(url)

    ok(cli(ini, "upgrade"))
    assert ok(cli(ini, "upgrade", "--sql")).strip() == f"-- {LOC}: nothing to do"


# -- check ------------------------------------------------------------------------------------


def test_check_equal_and_different(app):
    ini, url = app
    behind = cli(ini, "check")
    assert behind.code == 3, behind.err
    assert behind.out.splitlines()[0] == f"{LOC}: models and database differ:"
    assert "  - add_table: tags" in behind.out
    assert "  - add_column: items.price" in behind.out

    ok(cli(ini, "upgrade"))
    assert ok(cli(ini, "check")) == f"{LOC}: no differences\n"
    assert ok(cli(ini, "check", f"--scripts={LOC}")) == f"{LOC}: no differences\n"

    execute(url, "CREATE TABLE strays (id INTEGER PRIMARY KEY)")
    stray = cli(ini, "check")
    assert stray.code == 3
    assert "  - remove_table: strays" in stray.out
    assert VT not in stray.out  # version tables are never a difference


def test_check_names_table_and_columns_of_foreign_keys(at_head):
    ini, url = at_head
    execute(
        url,
        "DROP TABLE tags",
        # tags.item_id without its foreign key; tags.id with one the models lack.
        "CREATE TABLE tags (id INTEGER NOT NULL PRIMARY KEY REFERENCES items (id), "
        "item_id INTEGER NOT NULL, label VARCHAR(30) NOT NULL)",
    )
    result = cli(ini, "check")
    assert result.code == 3, result.err
    assert "  - add_fk: tags(item_id) -> items(id)" in result.out.splitlines()
    removed = [line for line in result.out.splitlines() if "remove_fk" in line]
    assert len(removed) == 1 and removed[0].endswith("tags(id) -> items(id)"), result.out


# -- writing revision files ---------------------------------------------------------------


def test_revision_options(copy_app, db_url):
    app = copy_app(db_url)
    legacy(db_url)
    ok(cli(app.ini, "upgrade"))

    plain = generated(cli(app.ini, "revision", "-m", "add stuff"))
    assert plain.parent == app.versions_dir
    assert parents(plain) == (HEAD,)
    assert '"""add stuff' in plain.read_text()
    new_head = re.search(r"^revision = '(\w+)'", plain.read_text(), re.M).group(1)
    assert ok(cli(app.ini, "heads")) == f"{app.loc}: {new_head} (add stuff) (head)\n"

    with_id = generated(cli(app.ini, "revision", f"--scripts={app.loc}", "-m", "fixed id", "--rev-id=abc123"))
    assert with_id.name.startswith("abc123_")
    assert parents(with_id) == (new_head,)

    spliced = generated(
        cli(app.ini, "revision", "--scripts", app.loc, "-m", "side", "--head", FIRST, "--splice",
            "--rev-id=f00001")  # fmt: skip
    )
    assert parents(spliced) == (FIRST,)
    assert ok(cli(app.ini, "heads")).count("(head)") == 2

    labelled = generated(
        cli(app.ini, "revision", "-m", "feature", "--head=base", "--branch-label=feature", "--rev-id=fea001")
    )
    assert parents(labelled) == (None,)
    assert "branch_labels = ('feature',)" in labelled.read_text()
    assert "Branch names: feature" in ok(cli(app.ini, "show", f"--scripts={app.loc}", "--rev=feature@head"))
    follow = generated(cli(app.ini, "revision", "-m", "feature 2", "--head=feature@head", "--rev-id=fea002"))
    assert parents(follow) == ("fea001",)

    depends = generated(
        cli(app.ini, "revision", "-m", "dep", "--head=abc123", "--depends-on", FIRST, "--rev-id=dep001")
    )
    assert "depends_on = 'e1000000000a'" in depends.read_text()
    assert parents(depends) == ("abc123",)

    # Every new revision applies: upgrade reaches all heads.
    ok(cli(app.ini, "upgrade"))
    assert versions(db_url, app.version_table) == ["dep001", "f00001", "fea002"]
    assert cli(app.ini, "status").code == 0
    # Nothing was written into tests/projects.
    assert sorted(p.name for p in (PROJECTS / "example_app" / "alembic" / "versions").glob("*.py")) == [
        "e1000000000a_add_item_price.py",
        "e2000000000b_create_tags.py",
    ]


def test_revision_on_a_non_head_needs_splice(copy_app, sqlite_url):
    app = copy_app(sqlite_url)
    result = cli(app.ini, "revision", "-m", "x", f"--head={FIRST}")
    assert result.code == 1
    assert result.err.count("\n") == 1 and "--splice" in result.err
    assert len(app.revision_files()) == 2


EXTENDED_MODELS = '''\
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "items"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(50))
    price: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    stock: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)


class Tag(Base):
    __tablename__ = "tags"
    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(sa.ForeignKey("items.id"))
    label: Mapped[str] = mapped_column(sa.String(30))


class Label(Base):
    __tablename__ = "labels"
    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str] = mapped_column(sa.String(20))
'''


def test_autogenerate_then_upgrade_makes_check_pass(copy_app, db_url):
    app = copy_app(db_url, models=EXTENDED_MODELS)
    legacy(db_url)
    ok(cli(app.ini, "upgrade"))
    differ = cli(app.ini, "check")
    assert differ.code == 3, differ.err
    assert "  - add_table: labels" in differ.out
    assert "  - add_column: items.stock" in differ.out

    path = generated(
        cli(app.ini, "revision", f"--scripts={app.loc}", "-m", "labels and stock", "--autogenerate")
    )
    text = path.read_text()
    assert "op.create_table('labels'" in text or 'op.create_table("labels"' in text
    assert "stock" in text
    assert "alembic_version" not in text  # version tables are left alone
    assert parents(path) == (HEAD,)
    # Writing the file changed nothing in the database.
    assert "labels" not in tables(db_url)
    assert cli(app.ini, "status").code == 3

    ok(cli(app.ini, "upgrade"))
    assert "labels" in tables(db_url) and "stock" in columns(db_url, "items")
    assert ok(cli(app.ini, "check")) == f"{app.loc}: no differences\n"
    assert cli(app.ini, "status").code == 0

    # And back: the autogenerated downgrade undoes it.
    ok(cli(app.ini, "downgrade", "--rev=-1"))
    assert "labels" not in tables(db_url) and "stock" not in columns(db_url, "items")
    assert versions(db_url, app.version_table) == [HEAD]


def test_check_lists_changed_columns(copy_app, db_url):
    app = copy_app(db_url, models=EXTENDED_MODELS.replace("sa.String(50)", "sa.String(80)"))
    legacy(db_url)
    ok(cli(app.ini, "upgrade"))
    result = cli(app.ini, "check")
    assert result.code == 3
    assert "  - modify_type: items.name (VARCHAR(50) -> VARCHAR(80))" in result.out
    assert "  - add_column: items.stock" in result.out


def test_autogenerate_with_nothing_to_do(copy_app, sqlite_url):
    app = copy_app(sqlite_url)
    legacy(sqlite_url)
    ok(cli(app.ini, "upgrade"))
    path = generated(cli(app.ini, "revision", "-m", "empty", "--autogenerate"))
    upgrade = path.read_text().split("def upgrade():")[1].split("def downgrade():")[0]
    assert "op." not in upgrade and "pass" in upgrade


# -- several heads ------------------------------------------------------------------------


SIDE = "b3000000000c"


def branched(copy_app, url) -> Copy:
    """A copy whose history forks after FIRST: HEAD (tags) and SIDE (memos)."""
    app = copy_app(url)
    app.add_revision(
        SIDE, FIRST, "Create memos",
        'op.create_table("memos", sa.Column("id", sa.Integer, primary_key=True))',
        'op.drop_table("memos")',
    )  # fmt: skip
    legacy(url)
    return app


def test_several_heads_status_upgrade_stamp(copy_app, db_url):
    app = branched(copy_app, db_url)
    status = cli(app.ini, "status")
    assert status.code == 3
    assert status.out.splitlines()[1].split() == [
        app.loc, app.version_table, "(no", "version", "table)", f"{SIDE},", HEAD, "3"
    ]
    assert sorted(ok(cli(app.ini, "heads")).splitlines()) == [
        f"{app.loc}: {SIDE} (Create memos) (head)",
        f"{app.loc}: {HEAD} (Create tags) (head)",
    ]

    out = ok(cli(app.ini, "upgrade"))  # all heads
    assert f"base -> {SIDE}, {HEAD}" in out.splitlines()[0]
    assert "3 step(s)" in out
    assert versions(db_url, app.version_table) == [SIDE, HEAD]
    assert {"memos", "tags"} <= tables(db_url)
    assert cli(app.ini, "status").out.splitlines()[1].split()[-3:] == [f"{SIDE},", HEAD, "0"]
    assert cli(app.ini, "status").code == 0
    current = ok(cli(app.ini, "current"))
    assert f"{SIDE} (head), {HEAD} (head)" in current

    ok(cli(app.ini, "stamp_head", "--rev=None"))
    assert versions(db_url, app.version_table) == []
    out = ok(cli(app.ini, "stamp_heads"))
    assert versions(db_url, app.version_table) == [SIDE, HEAD]  # one row per head
    assert out.splitlines()[0].endswith(f"base -> {SIDE}, {HEAD}")

    # One branch down, by naming its head.
    ok(cli(app.ini, "downgrade", f"--rev={SIDE}@-1"))
    assert versions(db_url, app.version_table) == [HEAD]
    assert "memos" not in tables(db_url)
    ok(cli(app.ini, "upgrade", f"--rev={SIDE}"))
    assert versions(db_url, app.version_table) == [SIDE, HEAD]


def test_upgrade_to_one_head_of_several(copy_app, sqlite_url):
    app = branched(copy_app, sqlite_url)
    ok(cli(app.ini, "upgrade", f"--rev={SIDE}"))
    assert versions(sqlite_url, app.version_table) == [SIDE]
    status = cli(app.ini, "status")
    assert status.code == 3 and status.out.splitlines()[1].split()[-1] == "1"
    ok(cli(app.ini, "upgrade"))
    assert versions(sqlite_url, app.version_table) == [SIDE, HEAD]


def test_merge_creates_a_revision_with_both_parents(copy_app, db_url):
    app = branched(copy_app, db_url)
    ok(cli(app.ini, "upgrade"))
    path = generated(cli(app.ini, "merge", f"--scripts={app.loc}", "-m", "merge branches", "--rev-id=m00001"))
    assert path.parent == app.versions_dir
    assert parents(path) == (SIDE, HEAD)
    assert ok(cli(app.ini, "heads")) == f"{app.loc}: m00001 (merge branches) (head)\n"
    show = ok(cli(app.ini, "show", "--rev=m00001"))
    assert f"Parent: {SIDE}, {HEAD}" in show or f"Parent: {HEAD}, {SIDE}" in show
    history = ok(cli(app.ini, "history")).splitlines()
    assert history[0] in (f"{SIDE}, {HEAD} -> m00001 (head), merge branches",
                          f"{HEAD}, {SIDE} -> m00001 (head), merge branches")  # fmt: skip

    assert cli(app.ini, "status").code == 3
    out = ok(cli(app.ini, "upgrade"))
    assert "  - upgrade m00001 (merge branches):" in out
    assert versions(db_url, app.version_table) == ["m00001"]  # the two rows became one
    assert cli(app.ini, "status").code == 0

    # Merging explicit revisions.
    app.add_revision("c4000000000d", "m00001", "Left", "pass")
    app.add_revision("d5000000000e", "m00001", "Right", "pass")
    path = generated(cli(app.ini, "merge", "-m", "again", "c4000000000d", "d5000000000e"))
    assert parents(path) == ("c4000000000d", "d5000000000e")


# -- init ---------------------------------------------------------------------------------------


def test_init_a_path_location_then_use_it(copy_app, tmp_path, db_url):
    folder = tmp_path / "newaddon" / "alembic"
    app = copy_app(db_url)
    out = ok(cli(app.ini, "init", f"--scripts={folder}"))
    assert out.splitlines()[0] == f"Created migration environment {folder}"
    assert "  version table: newaddon_alembic_version" in out
    assert (folder / "versions").is_dir()
    assert (folder / "script.py.mako").is_file() and (folder / "env.py").is_file()

    # Register it (as a path relative to the ini file), write a revision, apply it.
    app.ini.write_text(app.ini.read_text() + "kotti.alembic_dirs = newaddon/alembic\n")
    first = generated(
        cli(
            app.ini, "revision", "--scripts=newaddon/alembic", "-m", "create notes", "--rev-id=n00001",
        )
    )
    text = first.read_text().replace("    pass\n\n\ndef downgrade", (
        '    op.create_table("notes", sa.Column("id", sa.Integer, primary_key=True))\n\n\ndef downgrade'
    ))  # fmt: skip
    first.write_text(text)
    out = ok(cli(app.ini, "upgrade", "--scripts", str(folder)))
    assert "Upgrading newaddon/alembic (newaddon_alembic_version): base -> n00001" in out
    assert versions(db_url, "newaddon_alembic_version") == ["n00001"]
    assert "notes" in tables(db_url)
    status = cli(app.ini, "status")
    assert "newaddon/alembic" in status.out and "n00001" in status.out


def test_init_spec_without_env_and_refusing_a_non_empty_folder(copy_app, sqlite_url):
    app = copy_app(sqlite_url)
    out = ok(cli(app.ini, "init", "--scripts", f"{app.name}:migrations", "--no-env"))
    folder = app.package / "migrations"
    assert f"Created migration environment {folder}" in out
    assert f"version table: {app.name}_alembic_version" in out
    assert (folder / "versions").is_dir() and not (folder / "env.py").exists()
    again = cli(app.ini, "init", f"--scripts={app.name}:migrations")
    assert again.code == 1
    assert again.err.startswith("kotti-migrate: error:") and "not empty" in again.err
    assert again.err.count("\n") == 1


def test_init_needs_no_app(tmp_path):
    """init works before the site's ini can even be loaded."""
    ini = tmp_path / "site.ini"
    ini.write_text("[app:main]\nuse = call:no_such_package:main\n")
    out = ok(cli(ini, "init", "--scripts=addon/alembic"))
    assert (tmp_path / "addon" / "alembic" / "versions").is_dir()
    assert "addon_alembic_version" in out


# -- help ------------------------------------------------------------------------------------------


def test_every_documented_command_exists():
    assert set(COMMANDS) <= set(parser_commands())


@pytest.mark.parametrize("command", parser_commands())
def test_help_of_every_command(command):
    result = cli("site.ini", command, "--help")
    assert result.code == 0, result.err
    assert result.err == ""
    assert result.out.startswith(f"usage: kotti-migrate config_uri {command} [-h]")
    assert "-v, --verbose" in result.out


def test_help_through_the_console_script(tmp_path):
    top = cli_process("--help", cwd=str(tmp_path))
    assert top.code == 0 and top.err == ""
    for command in parser_commands():
        assert f"    {command} " in top.out
    assert "exit codes" in top.out
    sub = cli_process("nosuch.ini", "revision", "--help", cwd=str(tmp_path))
    assert sub.code == 0 and sub.err == ""
    for option in ("--autogenerate", "--rev-id", "--head", "--splice", "--branch-label", "--depends-on"):
        assert option in sub.out
