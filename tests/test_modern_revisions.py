"""kotti-migrate on a plain Pyramid 2 / SQLAlchemy 2 app: the commands that write
revision files (revision, autogenerate, merge, init) and several heads.

Each test works on a copy of tests/projects/example_app in its folder, under a
new package name (imported modules are cached per process).
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import PROJECTS, cli, columns, execute, new_package, ok, tables, versions, write_ini

pytestmark = pytest.mark.modern

FIRST = "e1000000000a"
HEAD = "e2000000000b"


def legacy(url: str) -> None:
    """The app's database before its first migration: ``items`` without ``price``."""
    execute(url, "CREATE TABLE items (id INTEGER NOT NULL PRIMARY KEY, name VARCHAR(50) NOT NULL)")




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
        name, package = new_package(root, "example_app")
        ignore = shutil.ignore_patterns("__pycache__")
        shutil.copytree(PROJECTS / "example_app", package, ignore=ignore, dirs_exist_ok=True)
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
