"""kotti-migrate on a plain Pyramid 2 / SQLAlchemy 2 app (example_app): reading,
migrating, offline SQL, check and help.

These tests only read or migrate: they use tests/projects/example_app itself.
The commands that write revision files are in test_modern_revisions.py.
"""

from __future__ import annotations

import argparse
import re

import pytest
from helpers import PROJECTS, REPO, cli, cli_process, columns, execute, ok, query, tables, versions

pytestmark = pytest.mark.modern

FIRST = "e1000000000a"
HEAD = "e2000000000b"
VT = "example_app_alembic_version"
LOC = "example_app:alembic"



def documented_commands() -> list[str]:
    """The commands of the README's tables under "The `kotti-migrate` command"."""
    text = (REPO / "README.md").read_text()
    section = text.split("## The `kotti-migrate` command", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `(\w+)[^`]*` \|", section, flags=re.MULTILINE)


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
    ok(cli(ini, "stamp_head", f"--rev={FIRST}"))
    out = ok(cli(ini, "stamp_head", "--rev=base", "--purge"))
    assert versions(url, VT) == []
    assert out.splitlines()[0] == f"Stamping {LOC} ({VT}): {FIRST} -> base"
    assert "nothing to do" not in out  # it removed the version row
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


# -- help ------------------------------------------------------------------------------------------


def test_every_command_is_documented_once_and_every_documented_one_exists():
    documented = documented_commands()
    assert len(documented) > 10
    assert sorted(documented) == sorted(set(documented))
    assert set(documented) == set(parser_commands())


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
