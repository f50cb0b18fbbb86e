"""kotti-migrate on a real Kotti 2.0.9 site with a real add-on (kotti_notes)."""

from __future__ import annotations

import re

import pytest
from helpers import (
    KOTTI_HEAD,
    NOTES_FIRST,
    NOTES_HEAD,
    boot,
    cli,
    cli_process,
    columns,
    execute,
    query,
    tables,
    versions,
    without_progress,
)

from kotti_migrate.database import mask_url

pytestmark = pytest.mark.kotti

#: Indexes Kotti's 4a3de0d0804a creates but its downgrade does not drop.
LEFTOVER_INDEXES = ("ix_tags_to_contents_tag_id", "ix_tags_to_contents_content_id")


@pytest.fixture
def site(kotti_ini, db_url, booted_kotti_site):
    """A booted Kotti site (fresh database stamped by kotti_migrate; what that first
    boot does is test_startup_kotti.py's test_fresh_database_is_created_and_stamped_at_every_head)."""
    booted_kotti_site(db_url)
    return kotti_ini(db_url), db_url


def test_status_table_and_exit_codes(site):
    ini, url = site
    result = cli(ini, "status")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0].split() == ["LOCATION", "VERSION", "TABLE", "CURRENT", "HEAD(S)", "PENDING"]
    assert lines[1].split() == ["kotti:alembic", "kotti_alembic_version", KOTTI_HEAD, KOTTI_HEAD, "0"]
    assert lines[2].split() == [
        "kotti_notes:alembic", "kotti_notes_alembic_version", NOTES_HEAD, NOTES_HEAD, "0"
    ]
    execute(url, f"UPDATE kotti_notes_alembic_version SET version_num = '{NOTES_FIRST}'")
    pending = cli(ini, "status")
    assert pending.code == 3
    assert pending.out.splitlines()[2].split()[-1] == "1"


def test_list_all_like_kottis_tool(site):
    ini, _ = site
    result = cli(ini, "list_all")
    assert result.code == 0, result.err
    assert "kotti:alembic (kotti_alembic_version):" in result.out
    assert "  - None -> 9398ccf41c2: Add 'Content.state' for workflow" in result.out
    assert f"  - {NOTES_FIRST} -> {NOTES_HEAD}: Create note_links" in result.out
    assert result.out.count("current revision:") == 2


def test_downgrade_kotti_and_upgrade_back_keeps_data(site):
    ini, url = site
    # A real site that has images (the kotti_image add-on's table, as Kotti's
    # last two migrations expect it).
    execute(
        url,
        "CREATE TABLE images (id INTEGER PRIMARY KEY REFERENCES contents(id), "
        "filename VARCHAR(100), mimetype VARCHAR(100), size INTEGER, data TEXT)",
    )
    root_id = query(url, "SELECT id FROM nodes WHERE parent_id IS NULL")[0][0]
    execute(
        url,
        f"INSERT INTO nodes (id, type, parent_id, position, name, title, path) "
        f"VALUES (900, 'image', {root_id}, 9, 'pic', 'A picture', '/pic/')",
        "INSERT INTO contents (id, description, state, in_navigation) "
        "VALUES (900, '', 'public', true)",
        "INSERT INTO images (id, filename, mimetype, size, data) "
        "VALUES (900, 'pic.png', 'image/png', 3, NULL)",
    )
    docs_before = query(url, "SELECT id, title, path FROM nodes ORDER BY id")

    down = cli(ini, "downgrade", "--scripts=kotti:alembic", "--rev=37a05f6246af")
    assert down.code == 0, down.err
    assert "downgrade 814c4ec72f1" in down.out and "downgrade 4a3de0d0804a" in down.out
    assert versions(url, "kotti_alembic_version") == ["37a05f6246af"]
    assert query(url, "SELECT filename FROM files WHERE id = 900") == [("pic.png",)]

    # Kotti's downgrade of 4a3de0d0804a forgets two indexes its upgrade
    # creates (see test_upgrade_after_kottis_incomplete_downgrade): drop them.
    execute(url, *(f"DROP INDEX IF EXISTS {name}" for name in LEFTOVER_INDEXES))
    up = cli(ini, "upgrade", "--scripts", "kotti:alembic")
    assert up.code == 0, up.err
    assert versions(url, "kotti_alembic_version") == [KOTTI_HEAD]
    assert query(url, "SELECT filename, mimetype FROM images WHERE id = 900") == [
        ("pic.png", "image/png")
    ]
    assert query(url, "SELECT id, title, path FROM nodes ORDER BY id") == docs_before


def test_upgrade_after_kottis_incomplete_downgrade_fails_clearly(site):
    """Going back up without the fix fails with one line naming the revision."""
    ini, url = site
    assert cli(ini, "stamp_head", "--scripts=kotti:alembic", "--rev=4a3de0d0804a").code == 0
    assert cli(ini, "downgrade", "--scripts=kotti:alembic", "--rev=37a05f6246af").code == 0
    failed = cli(ini, "upgrade", "--scripts", "kotti:alembic")
    assert failed.code == 1
    assert len(without_progress(failed.err)) == 1
    assert re.search(r"^\[1/2\] kotti:alembic: upgrade 4a3de0d0804a .* failed after \d+\.\d{3} s$",
                     failed.err, re.M), failed.err  # fmt: skip
    assert "location 'kotti:alembic': revision 4a3de0d0804a failed" in failed.err
    assert re.search(r'ix_tags_to_contents_tag_id"? already exists', failed.err)
    assert "the database is at 37a05f6246af" in failed.err
    assert versions(url, "kotti_alembic_version") == ["37a05f6246af"]


def test_failing_kotti_migration_is_an_error_not_swallowed(site):
    """Kotti's env.py swallows errors; kotti-migrate still fails, naming the revision."""
    ini, url = site
    result = cli_process(ini, "downgrade", "--scripts=kotti:alembic", "--rev=37a05f6246af")
    assert result.code == 1
    assert "Traceback" not in result.err
    line = result.err.strip().splitlines()[-1]
    assert line.startswith("kotti-migrate: error: location 'kotti:alembic': revision 814c4ec72f1 failed")
    assert "images" in line
    assert without_progress(result.err) == [line]
    assert versions(url, "kotti_alembic_version") == [KOTTI_HEAD]


def test_upgrade_with_rev_and_upgrade_all(site):
    ini, url = site
    assert cli(ini, "downgrade", "--scripts=kotti_notes:alembic", "--rev=base").code == 0
    assert versions(url, "kotti_notes_alembic_version") == []
    assert "note_links" not in tables(url)
    assert "body" not in columns(url, "notes")

    one = cli(ini, "upgrade", "--scripts=kotti_notes:alembic", f"--rev={NOTES_FIRST}")
    assert one.code == 0, one.err
    assert versions(url, "kotti_notes_alembic_version") == [NOTES_FIRST]
    assert "body" in columns(url, "notes")

    result = cli(ini, "upgrade_all")
    assert result.code == 0, result.err
    assert "Upgrading kotti:alembic (kotti_alembic_version): 814c4ec72f1 -> 814c4ec72f1" in result.out
    assert "  - already up to date." in result.out
    assert f"  - upgrade {NOTES_HEAD} (Create note_links):" in result.out
    assert versions(url, "kotti_notes_alembic_version") == [NOTES_HEAD]
    assert "note_links" in tables(url)


def test_stamp_head_and_stamp_heads(site):
    ini, url = site
    result = cli(ini, "stamp_head", "--scripts=kotti_notes:alembic", f"--rev={NOTES_FIRST}")
    assert result.code == 0, result.err
    assert versions(url, "kotti_notes_alembic_version") == [NOTES_FIRST]
    assert "note_links" in tables(url)  # stamping runs no migration
    assert cli(ini, "stamp_head", "--scripts=kotti_notes:alembic", "--rev=None").code == 0
    assert versions(url, "kotti_notes_alembic_version") == []
    result = cli(ini, "stamp_heads")
    assert result.code == 0, result.err
    assert versions(url, "kotti_notes_alembic_version") == [NOTES_HEAD]
    assert versions(url, "kotti_alembic_version") == [KOTTI_HEAD]


def test_current_heads_history_show(site):
    ini, _ = site
    current = cli(ini, "current")
    assert f"kotti_notes:alembic (kotti_notes_alembic_version): {NOTES_HEAD} (head)" in current.out
    heads = cli(ini, "heads")
    assert heads.out.splitlines() == [
        f"kotti:alembic: {KOTTI_HEAD} (Add file columns  to images table.) (head)",
        f"kotti_notes:alembic: {NOTES_HEAD} (Create note_links) (head)",
    ]
    history = cli(ini, "history", "--scripts=kotti_notes")
    assert history.out.splitlines() == [
        f"{NOTES_FIRST} -> {NOTES_HEAD} (head), Create note_links",
        f"<base> -> {NOTES_FIRST}, Add Note.body",
    ]
    show = cli(ini, "show", "--scripts=kotti:alembic", "--rev=37a0")
    assert show.code == 0, show.err
    assert "Rev: 37a05f6246af" in show.out and "Parent: 413fa5fcc581" in show.out


def test_sql_mode_prints_sql_and_changes_nothing(site):
    ini, url = site
    assert cli(ini, "downgrade", "--scripts=kotti_notes:alembic", f"--rev={NOTES_FIRST}").code == 0
    result = cli(ini, "upgrade_all", "--sql")
    assert result.code == 0, result.err
    assert "-- kotti:alembic: nothing to do" in result.out
    assert "CREATE TABLE note_links" in result.out
    assert f"UPDATE kotti_notes_alembic_version SET version_num='{NOTES_HEAD}'" in result.out
    assert "note_links" not in tables(url)
    assert versions(url, "kotti_notes_alembic_version") == [NOTES_FIRST]
    down = cli(
        ini, "downgrade", "--scripts=kotti_notes:alembic", f"--rev={NOTES_HEAD}:{NOTES_FIRST}", "--sql"
    )
    assert down.code == 0, down.err
    assert "DROP TABLE note_links" in down.out
    assert versions(url, "kotti_notes_alembic_version") == [NOTES_FIRST]
    stamp = cli(ini, "stamp_head", "--scripts=kotti_notes:alembic", "--sql")
    assert f"'{NOTES_HEAD}'" in stamp.out
    assert versions(url, "kotti_notes_alembic_version") == [NOTES_FIRST]


def test_check_on_a_site_at_head(site):
    ini, _ = site
    result = cli(ini, "check")
    assert result.code == 0, result.out + result.err
    assert "kotti_notes:alembic: no differences" in result.out


def test_upgrade_on_an_empty_database_creates_it_as_startup_does(kotti_ini, db_url):
    """Kotti's migrations cannot build its schema: the CLI creates and stamps it instead."""
    ini = kotti_ini(db_url)
    status = cli(ini, "status")
    assert status.code == 3
    assert status.out.splitlines()[0] == (
        f"empty database {mask_url(db_url)}: start-up (or 'upgrade_all') creates its tables "
        "and stamps every location"
    )
    assert tables(db_url) == set()  # status wrote nothing

    result = cli(ini, "upgrade")
    assert result.code == 0, result.err
    assert "created its tables from the models and stamped every location" in result.out
    assert f"kotti:alembic (kotti_alembic_version): {KOTTI_HEAD}" in result.out
    assert versions(db_url, "kotti_alembic_version") == [KOTTI_HEAD]
    assert versions(db_url, "kotti_notes_alembic_version") == [NOTES_HEAD]
    assert query(db_url, "SELECT count(*) FROM nodes WHERE parent_id IS NULL")[0][0] == 1
    assert cli(ini, "status").code == 0

    # And the site starts on it, with nothing left to do.
    result = boot(ini)
    assert result.code == 0 and "STATUS 200" in result.out, result.err
    assert "WARNING" not in result.err


def test_library_upgrade_of_an_empty_database_is_refused_leaving_nothing(kotti_ini, sqlite_url):
    from kotti_migrate import ConfigurationError, Migrations

    migrations = Migrations.from_config_uri(str(kotti_ini(sqlite_url)))
    try:
        with pytest.raises(ConfigurationError, match="is empty and Kotti's migrations cannot create its"):
            migrations.upgrade()
        with pytest.raises(ConfigurationError, match="is empty and Kotti's migrations cannot create its"):
            migrations.upgrade("kotti:alembic", "37a05f6246af")
    finally:
        migrations.dispose()
    assert tables(sqlite_url) == set()
    # The CLI with an explicit target says so in one line, and writes nothing either.
    result = cli(kotti_ini(sqlite_url), "upgrade", "--rev=37a05f6246af")
    assert result.code == 1 and result.err.count("\n") == 1
    assert "start the app, or run kotti-migrate <config_uri> upgrade (without --rev)" in result.err
    assert tables(sqlite_url) == set()
