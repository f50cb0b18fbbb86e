"""Every expected failure of kotti-migrate about revisions and failing migrations:
one line on stderr, non-zero exit, nothing lost (see test_errors.py).
"""

from __future__ import annotations

from helpers import (
    CREATE_THINGS,
    ERROR_PREFIX,
    PASSWORD,
    REVISION,
    assert_verbose_traceback,
    cli,
    cli_process,
    columns,
    execute,
    one_error_line,
    query,
    tables,
    versions,
)

# -- revisions -----------------------------------------------------------------------------

def add_column(name: str) -> str:
    return f'    op.add_column("things", sa.Column("{name}", sa.Integer))'


LINEAR = {
    "r1_create.py": ("aa1000000001", None, CREATE_THINGS),
    "r2_add.py": ("aa2000000002", "aa1000000001", add_column("size")),
}


def test_unknown_revision(tiny_app, sqlite_url):
    ini, name, versions_dir = tiny_app(sqlite_url, LINEAR)
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
        assert line == f"{ERROR_PREFIX} location '{name}:alembic': unknown revision 'ffff'", args
    # Nothing was migrated, stamped or written.
    assert tables(sqlite_url) <= {f"{name}_alembic_version"}
    if tables(sqlite_url):
        assert versions(sqlite_url, f"{name}_alembic_version") == []
    assert sorted(p.name for p in versions_dir.glob("*.py")) == ["r1_create.py", "r2_add.py"]


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
    assert line.startswith(f"{ERROR_PREFIX} location '{name}:alembic': Multiple heads are present"), line
    assert "specify the head revision" in line and "perform a merge" in line
    assert len(list(versions_dir.glob("*.py"))) == 3
    # A single head is asked for, there are two.
    for args in (("upgrade", "--rev=head"), ("show", "--rev=head")):
        line = one_error_line(cli(ini, *args))
        assert line.startswith(f"{ERROR_PREFIX} location '{name}:alembic': Multiple head revisions"), args
        assert "are present" in line, args
        assert "for given argument 'head'" in line, args
        assert "'heads' for all heads" in line, args
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
