"""Start-up behaviour of a Kotti site that includes kotti_migrate.

Every test creates the real app in a fresh process, the way ``pserve``
does (``conftest.boot``: ``pyramid.paster.get_app`` and one GET), or runs
``pserve`` itself (``conftest.serve``), on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa
from helpers import (
    boot,
    cli,
    columns,
    execute,
    failed,
    logged,
    query,
    serve,
    start_boot,
    started,
    tables,
    versions,
    write_location,
)

from kotti_migrate.database import database_lock

pytestmark = pytest.mark.kotti

KOTTI_HEAD = "814c4ec72f1"
KOTTI_PREVIOUS = "4a3de0d0804a"
NOTES_FIRST = "a1b2c3d4e5f6"
NOTES_HEAD = "b2c3d4e5f6a7"
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


# -- d. pending migrations ---------------------------------------------------------------------


def downgrade_notes(ini, url) -> None:
    result = cli(ini, "downgrade", "--scripts=kotti_notes:alembic", f"--rev={NOTES_FIRST}")
    assert result.code == 0, result.err
    assert "note_links" not in tables(url)


def test_auto_upgrade_runs_pending_migrations_before_create_all(site, kotti_ini):
    ini, url = site
    downgrade_notes(ini, url)

    result = boot(kotti_ini(url, kotti_migrate__auto_upgrade="true"))
    # Had create_all run first, note_links would exist and the migration's
    # create_table would have failed the start-up.
    started(result)
    assert versions(url, "kotti_notes_alembic_version") == [NOTES_HEAD]
    assert columns(url, "note_links") == LINK_COLUMNS
    info = "\n".join(logged(result.err, "INFO"))
    assert f"upgrading kotti_notes:alembic from {NOTES_FIRST} to {NOTES_HEAD}" in info
    assert f"kotti_notes:alembic upgrade {NOTES_HEAD} (Create note_links)" in info
    assert logged(result.err, "WARNING") == []
    assert versions(url, "kotti_alembic_version") == [KOTTI_HEAD]


def test_environment_variable_overrides_the_setting(site, kotti_ini):
    ini, url = site
    downgrade_notes(ini, url)

    # Setting on, environment off: only advice, naming kotti_migrate.config_file.
    ini = kotti_ini(url, kotti_migrate__auto_upgrade="true", kotti_migrate__config_file="production.ini")
    result = boot(ini, env={"KOTTI_MIGRATE_AUTO_UPGRADE": "false"})
    started(result)
    assert versions(url, "kotti_notes_alembic_version") == [NOTES_FIRST]
    [warning] = logged(result.err, "WARNING")
    assert "kotti-migrate production.ini upgrade --scripts=kotti_notes:alembic" in warning

    # Setting off, environment on: upgraded.
    ini = kotti_ini(url, kotti_migrate__auto_upgrade="false")
    result = boot(ini, env={"KOTTI_MIGRATE_AUTO_UPGRADE": "true"})
    started(result)
    assert versions(url, "kotti_notes_alembic_version") == [NOTES_HEAD]
    assert f"upgrading kotti_notes:alembic from {NOTES_FIRST} to {NOTES_HEAD}" in result.err
    assert logged(result.err, "WARNING") == []


def test_pending_migrations_without_auto_upgrade_warn_once_per_location(site):
    ini, url = site
    assert cli(ini, "stamp_head", "--scripts=kotti:alembic", f"--rev={KOTTI_PREVIOUS}").code == 0
    downgrade_notes(ini, url)

    served = serve(ini)
    assert served.code is None, served.err  # still serving when stopped
    assert served.status == 200, served.err[-3000:]
    warnings = logged(served.err, "WARNING")
    assert len(warnings) == 2, served.err
    kotti_warning, notes_warning = warnings
    assert f"kotti:alembic is at {KOTTI_PREVIOUS}, behind its head {KOTTI_HEAD}" in kotti_warning
    assert kotti_warning.endswith(f"run: kotti-migrate {ini} upgrade --scripts=kotti:alembic")
    assert f"kotti_notes:alembic is at {NOTES_FIRST}, behind its head {NOTES_HEAD}" in notes_warning
    assert notes_warning.endswith(f"run: kotti-migrate {ini} upgrade --scripts=kotti_notes:alembic")
    assert versions(url, "kotti_alembic_version") == [KOTTI_PREVIOUS]
    assert versions(url, "kotti_notes_alembic_version") == [NOTES_FIRST]
    # Left for its migration to create (by neither kotti_migrate's nor Kotti's create_all).
    assert "note_links" not in tables(url)

    # The advice works.
    result = cli(ini, "upgrade", "--scripts=kotti_notes:alembic")
    assert result.code == 0, result.err
    assert versions(url, "kotti_notes_alembic_version") == [NOTES_HEAD]


def test_populator_failing_on_a_location_left_behind_names_the_fix(site):
    """A populator that queries a pending location's table gets advice, not a bare SQL error."""
    ini, url = site
    downgrade_notes(ini, url)
    # notes is not a content type: not required by every page, so start-up goes on
    # to the populators, whose query of Note then fails on the column.
    execute(url, "ALTER TABLE notes DROP COLUMN body")

    line = failed(boot(ini))
    assert "Kotti's populator populate failed (" in line
    assert "body" in line
    assert "while locations are behind their head; upgrade them (kotti-migrate " in line
    assert "upgrade --scripts=kotti_notes:alembic), or start with kotti_migrate.auto_upgrade = true" in line


# -- e. database ahead of the code ----------------------------------------------------------


def test_unknown_revision_in_the_database(site, kotti_ini):
    _, url = site
    execute(url, "UPDATE kotti_notes_alembic_version SET version_num = 'deadbeef0000'")
    message = (
        "the database has kotti_notes:alembic at deadbeef0000, a revision this code "
        f"does not know (heads: {NOTES_HEAD}); was the code rolled back?"
    )

    result = boot(kotti_ini(url, kotti_migrate__auto_upgrade="true"))
    assert message in failed(result)
    assert "kotti_migrate.errors.UnknownDatabaseRevision" in result.err
    assert versions(url, "kotti_notes_alembic_version") == ["deadbeef0000"]

    result = boot(kotti_ini(url, kotti_migrate__auto_upgrade="false"))
    started(result)
    [warning] = logged(result.err, "WARNING")
    assert message in warning
    assert versions(url, "kotti_notes_alembic_version") == ["deadbeef0000"]


# -- f. a failing migration ---------------------------------------------------------------------


def test_failing_migration_stops_startup(kotti_ini, db_url, tmp_path):
    location = write_location(tmp_path / "kotti_boom" / "alembic", [("f0000000001a", None, "")])
    ini = kotti_ini(
        db_url,
        kotti__alembic_dirs=f"kotti:alembic {location}",
        kotti_migrate__auto_upgrade="true",
    )
    started(boot(ini))
    assert versions(db_url, "kotti_boom_alembic_version") == ["f0000000001a"]

    write_location(
        location,
        [
            (
                "f0000000002b",
                "f0000000001a",
                """
                op.create_table('boom_things', sa.Column('id', sa.Integer(), primary_key=True))
                raise RuntimeError("boom")
                """,
            )
        ],
    )
    result = boot(ini)
    line = failed(result)
    assert "kotti_migrate.errors.MigrationFailed" in result.err
    assert (
        f"location '{location}': revision f0000000002b failed: RuntimeError: boom; "
        "the database is at f0000000001a"
    ) in line
    assert versions(db_url, "kotti_boom_alembic_version") == ["f0000000001a"]
    assert "boom_things" not in tables(db_url)  # rolled back, on SQLite too

    served = serve(ini)
    assert served.code not in (None, 0), served.err
    assert served.status is None
    assert f"location '{location}': revision f0000000002b failed" in served.err
    assert "the database is at f0000000001a" in served.err
    assert versions(db_url, "kotti_boom_alembic_version") == ["f0000000001a"]


# -- the lock and the settings -----------------------------------------------------------------


def test_lock_timeout(kotti_ini, db_url):
    engine = sa.create_engine(db_url)
    try:
        with database_lock(engine, 10):
            # A worker within its timeout waits for the lock, then does the
            # work: it is seen waiting while the lock is held and starts only
            # once it is given up (however slow the machine).
            waiting = start_boot(kotti_ini(db_url, name="waits.ini", kotti_migrate__lock_timeout="60"))
            # One with a short timeout gives up, naming the setting.
            result = boot(kotti_ini(db_url, kotti_migrate__lock_timeout="1"))
            line = failed(result)
            waiting.wait_for_log("waiting for the kotti_migrate lock")
            time.sleep(0.5)
            assert waiting.proc.poll() is None  # still waiting
            assert tables(db_url) == set()  # nothing done without the lock
    finally:
        engine.dispose()
    assert "kotti_migrate.errors.LockTimeout" in result.err
    assert "could not acquire the kotti_migrate start-up lock" in line
    assert "within 1 s (setting kotti_migrate.lock_timeout)" in line
    assert "s3cret-pw" not in line
    result = waiting.result()
    started(result)
    assert "s3cret-pw" not in result.err
    assert versions(db_url, "kotti_notes_alembic_version") == [NOTES_HEAD]


def test_bad_settings_stop_startup_naming_the_setting(kotti_ini, db_url):
    line = failed(boot(kotti_ini(db_url, kotti_migrate__auto_upgrade="maybe")))
    assert "ConfigurationError: setting kotti_migrate.auto_upgrade: 'maybe' is not a boolean" in line
    line = failed(boot(kotti_ini(db_url, kotti_migrate__lock_timeout="soon")))
    assert "setting kotti_migrate.lock_timeout: 'soon' is not a number of seconds" in line
    line = failed(boot(kotti_ini(db_url), env={"KOTTI_MIGRATE_AUTO_UPGRADE": "sometimes"}))
    assert "setting KOTTI_MIGRATE_AUTO_UPGRADE: 'sometimes' is not a boolean" in line
    assert tables(db_url) == set()
