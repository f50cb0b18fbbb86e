"""Start-up behaviour of a Kotti site that includes kotti_migrate: a fresh database,
an add-on installed later, an add-on whose tables predate its migrations.

Every test creates the real app in a fresh process, the way ``pserve``
does (``helpers.boot``: ``pyramid.paster.get_app`` and one GET), or runs
``pserve`` itself (``helpers.serve``), on SQLite and on PostgreSQL.
Pending migrations, a database ahead of the code, failing migrations, the
lock and bad settings: test_startup_kotti_pending.py.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from helpers import (
    BOOKMARKS,
    KOTTI_HEAD,
    NOTES_FIRST,
    NOTES_HEAD,
    boot,
    cli,
    columns,
    execute,
    logged,
    query,
    started,
    tables,
    versions,
    write_location,
)

pytestmark = pytest.mark.kotti

NOTES_COLUMNS = {"id", "title", "body"}
LINK_COLUMNS = {"id", "note_id", "url"}


def roots(url: str) -> int:
    return query(url, "SELECT count(*) FROM nodes WHERE parent_id IS NULL")[0][0]


@pytest.fixture
def site(kotti_ini, db_url, booted_kotti_site):
    """A Kotti site with kotti_notes, as its first boot on a fresh database left it."""
    booted_kotti_site(db_url)
    return kotti_ini(db_url), db_url


# -- a. fresh database -----------------------------------------------------------------


def test_fresh_database_is_created_and_stamped_at_every_head(kotti_ini, db_url):
    ini = kotti_ini(db_url)
    result = boot(ini)
    started(result)
    assert versions(db_url, "kotti_alembic_version") == [KOTTI_HEAD]
    assert versions(db_url, "kotti_notes_alembic_version") == [NOTES_HEAD]
    assert roots(db_url) == 1
    assert columns(db_url, "notes") == NOTES_COLUMNS
    assert columns(db_url, "note_links") == LINK_COLUMNS
    assert query(db_url, "SELECT title FROM notes") == [("first note",)]
    info = "\n".join(logged(result.err, "INFO"))
    assert f"kotti:alembic stamped at {KOTTI_HEAD}" in info
    assert f"kotti_notes:alembic stamped at {NOTES_HEAD}" in info
    assert logged(result.err, "WARNING") == []

    # The next start finds everything at head: nothing is stamped or created again.
    again = boot(ini)
    started(again)
    assert "stamped" not in again.err
    assert logged(again.err, "WARNING") == []
    assert versions(db_url, "kotti_alembic_version") == [KOTTI_HEAD]
    assert versions(db_url, "kotti_notes_alembic_version") == [NOTES_HEAD]
    assert roots(db_url) == 1
    assert query(db_url, "SELECT count(*) FROM notes")[0][0] == 1


def test_workers_booting_a_fresh_database_together_create_it_once(kotti_ini, db_url):
    ini = kotti_ini(db_url)
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda _: boot(ini), range(3)))
    for result in results:
        started(result)
    assert versions(db_url, "kotti_alembic_version") == [KOTTI_HEAD]
    assert versions(db_url, "kotti_notes_alembic_version") == [NOTES_HEAD]
    assert roots(db_url) == 1
    assert query(db_url, "SELECT count(*) FROM notes")[0][0] == 1
    everything = "\n".join(result.err for result in results)
    assert everything.count(f"kotti_notes:alembic stamped at {NOTES_HEAD}") == 1
    assert everything.count(f"kotti:alembic stamped at {KOTTI_HEAD}") == 1


# -- b. add-on installed on an existing site ---------------------------------------------


def test_addon_installed_later_gets_its_tables_and_is_stamped(kotti_ini, db_url, booted_kotti_site):
    booted_kotti_site(db_url, addons=False)  # a site without the add-on
    assert "notes" not in tables(db_url)
    assert "kotti_notes_alembic_version" not in tables(db_url)

    result = boot(kotti_ini(db_url))
    started(result)
    assert versions(db_url, "kotti_notes_alembic_version") == [NOTES_HEAD]
    assert columns(db_url, "notes") == NOTES_COLUMNS
    assert columns(db_url, "note_links") == LINK_COLUMNS
    assert versions(db_url, "kotti_alembic_version") == [KOTTI_HEAD]
    assert roots(db_url) == 1
    info = "\n".join(logged(result.err, "INFO"))
    assert "kotti_notes:alembic is new to this database" in info
    assert f"kotti_notes:alembic stamped at {NOTES_HEAD}" in info
    assert "upgrade a1b2c3d4e5f6" not in info  # nothing migrated: create_all made the tables


@pytest.mark.parametrize("when", ["fresh database", "added later"])
def test_addon_of_migrations_only_gets_the_tables_its_migrations_create(
    kotti_ini, db_url, booted_kotti_site, tmp_path, when
):
    """create_all cannot make them: its migrations run from base, after create_all."""
    if when == "added later":
        booted_kotti_site(db_url)
    loc = write_location(tmp_path / "pkgs" / "bookmarks_addon" / "alembic", BOOKMARKS)
    ini = kotti_ini(db_url, kotti__alembic_dirs=f"kotti:alembic {loc}")
    result = boot(ini)
    started(result)
    assert versions(db_url, "bookmarks_addon_alembic_version") == ["b00000000002"]
    assert columns(db_url, "bookmarks") == {"id", "url", "title"}
    assert query(db_url, "SELECT url FROM bookmarks") == [("https://example.org",)]
    assert versions(db_url, "kotti_alembic_version") == [KOTTI_HEAD]
    assert versions(db_url, "kotti_notes_alembic_version") == [NOTES_HEAD]
    assert roots(db_url) == 1
    info = "\n".join(logged(result.err, "INFO"))
    assert (
        f"{loc} is new to this database and its revisions create tables no model defines (bookmarks): "
        "running its migrations from base to b00000000002"
    ) in info
    assert logged(result.err, "WARNING") == []

    again = boot(ini)  # at head: nothing runs again
    started(again)
    assert "running its migrations" not in again.err and "upgrade b0000" not in again.err
    assert query(db_url, "SELECT count(*) FROM bookmarks") == [(1,)]


# -- c. add-on whose tables predate its migrations ------------------------------------------


def test_addon_with_existing_tables_is_upgraded_from_base(kotti_ini, db_url, booted_kotti_site):
    booted_kotti_site(db_url, addons=False)  # a site without the add-on
    # The add-on's table as its version without migrations created it.
    execute(
        db_url,
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, title VARCHAR(100) NOT NULL)",
        "INSERT INTO notes (id, title) VALUES (1, 'old note')",
    )

    result = boot(kotti_ini(db_url))
    started(result)
    assert versions(db_url, "kotti_notes_alembic_version") == [NOTES_HEAD]
    assert columns(db_url, "notes") == NOTES_COLUMNS  # a1b2c3d4e5f6 ran on the old table
    assert columns(db_url, "note_links") == LINK_COLUMNS  # b2c3d4e5f6a7 created it
    assert query(db_url, "SELECT id, title, body FROM notes") == [(1, "old note", None)]
    info = logged(result.err, "INFO")
    text = "\n".join(info)
    assert (
        "kotti_notes:alembic has no version table but its tables exist (notes) and differ "
        "from the models: upgrading from base to head"
    ) in text
    steps = [line for line in info if "kotti_notes:alembic upgrade" in line]
    assert len(steps) == 2
    assert f"upgrade {NOTES_FIRST} (Add Note.body)" in steps[0]
    assert f"upgrade {NOTES_HEAD} (Create note_links)" in steps[1]
    assert "kotti_notes:alembic stamped" not in text


def test_tables_setting_says_which_existing_tables_belong_to_a_location(
    kotti_ini, db_url, booted_kotti_site, tmp_path
):
    """Two locations whose models are defined elsewhere, each with an old table.

    Only the one the setting gives its table is upgraded from base; the
    other counts as new (no tables of its own) and is only stamped.
    """
    booted_kotti_site(db_url, addons=False)  # a site without the add-on
    specs = []
    for name in ("legacy_a", "legacy_b"):
        execute(
            db_url,
            f"CREATE TABLE {name}_things (id INTEGER PRIMARY KEY, name VARCHAR(50))",
            f"INSERT INTO {name}_things (id, name) VALUES (7, 'kept')",
        )
        rev = f"c000000000{name[-1]}1"
        body = f"op.add_column('{name}_things', sa.Column('colour', sa.String(20)))"
        specs.append(str(write_location(tmp_path / name / "alembic", [(rev, None, body)])))
    ini = kotti_ini(
        db_url,
        addons=False,
        kotti__alembic_dirs="kotti:alembic " + " ".join(specs),
        kotti_migrate__tables__legacy_a="legacy_a_things",
    )
    result = boot(ini)
    started(result)
    assert versions(db_url, "legacy_a_alembic_version") == ["c000000000a1"]
    assert columns(db_url, "legacy_a_things") == {"id", "name", "colour"}
    assert query(db_url, "SELECT id, name, colour FROM legacy_a_things") == [(7, "kept", None)]
    assert versions(db_url, "legacy_b_alembic_version") == ["c000000000b1"]
    assert columns(db_url, "legacy_b_things") == {"id", "name"}
    info = "\n".join(logged(result.err, "INFO"))
    assert f"{specs[0]} has no version table but its tables exist (legacy_a_things) and differ" in info
    assert f"{specs[1]} is new to this database" in info


def test_addon_tables_matching_the_models_are_stamped_not_migrated(site):
    """Tables made by an earlier create_all, version table missing: recorded at head as they are."""
    ini, url = site
    execute(url, "DROP TABLE kotti_notes_alembic_version")

    result = boot(ini)
    started(result)
    assert versions(url, "kotti_notes_alembic_version") == [NOTES_HEAD]
    assert query(url, "SELECT title, body FROM notes") == [("first note", "hello")]
    info = "\n".join(logged(result.err, "INFO"))
    assert (
        "kotti_notes:alembic has no version table; its tables exist and match the models "
        "(note_links, notes): stamped at head"
    ) in info
    assert "kotti_notes:alembic upgrade" not in info


def test_empty_version_table_beside_matching_tables_is_stamped_not_rerun(site):
    """After ``stamp --rev base`` the tables are still there: recorded at head, nothing re-run."""
    ini, url = site
    assert cli(ini, "stamp", "--scripts=kotti_notes:alembic", "--rev=base").code == 0
    assert versions(url, "kotti_notes_alembic_version") == []

    result = boot(ini)
    started(result)
    assert versions(url, "kotti_notes_alembic_version") == [NOTES_HEAD]
    assert query(url, "SELECT title, body FROM notes") == [("first note", "hello")]
    info = "\n".join(logged(result.err, "INFO"))
    assert (
        "kotti_notes:alembic has an empty version table; its tables exist and match the models "
        "(note_links, notes): stamped at head"
    ) in info
    assert "kotti_notes:alembic upgrade" not in info


def test_database_with_only_empty_version_tables_is_fresh(kotti_ini, db_url):
    """What a failed first ``upgrade`` of an older kotti_migrate (or Kotti's tool) left behind."""
    execute(db_url, "CREATE TABLE kotti_alembic_version (version_num VARCHAR(32) NOT NULL)")
    result = boot(kotti_ini(db_url))
    started(result)
    assert versions(db_url, "kotti_alembic_version") == [KOTTI_HEAD]
    assert versions(db_url, "kotti_notes_alembic_version") == [NOTES_HEAD]
    assert roots(db_url) == 1
    assert "created" in "\n".join(logged(result.err, "INFO"))
