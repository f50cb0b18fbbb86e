"""Start-up of a Kotti site with pending migrations, a database ahead of the
code, a failing migration, the lock and bad settings (see test_startup_kotti.py).
"""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa
from helpers import (
    KOTTI_HEAD,
    KOTTI_PREVIOUS,
    NOTES_FIRST,
    NOTES_HEAD,
    boot,
    cli,
    columns,
    execute,
    failed,
    logged,
    serve,
    start_boot,
    started,
    tables,
    versions,
    write_location,
)

from kotti_migrate.database import database_lock

pytestmark = pytest.mark.kotti

NOTES_COLUMNS = {"id", "title", "body"}
LINK_COLUMNS = {"id", "note_id", "url"}


@pytest.fixture
def site(kotti_ini, db_url, booted_kotti_site):
    """A Kotti site with kotti_notes, as its first boot on a fresh database left it."""
    booted_kotti_site(db_url)
    return kotti_ini(db_url), db_url


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
