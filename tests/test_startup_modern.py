"""Start-up behaviour of a plain Pyramid 2 / SQLAlchemy 2 app (example_app) that includes kotti_migrate.

The app is created in a fresh process the way ``pserve`` does
(``conftest.boot``) or by ``pserve`` itself (``conftest.serve``, which
also fetches its page: ``items: N``), on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from helpers import (
    BOOKMARKS,
    boot,
    cli,
    columns,
    execute,
    failed,
    logged,
    query,
    serve,
    started,
    tables,
    versions,
    write_location,
)

pytestmark = pytest.mark.modern

FIRST = "e1000000000a"
HEAD = "e2000000000b"
VERSION_TABLE = "example_app_alembic_version"
SPEC = "example_app:alembic"


@pytest.fixture
def app(modern_ini, db_url):
    """example_app booted once on a fresh database."""
    ini = modern_ini(db_url)
    started(boot(ini))
    return ini, db_url


def downgrade(ini, url) -> None:
    result = cli(ini, "downgrade", f"--scripts={SPEC}", f"--rev={FIRST}")
    assert result.code == 0, result.err
    assert "tags" not in tables(url)
    assert versions(url, VERSION_TABLE) == [FIRST]


def test_fresh_database_is_created_and_stamped(modern_ini, db_url):
    ini = modern_ini(db_url)
    result = boot(ini)
    started(result)
    assert {"items", "tags", VERSION_TABLE} <= tables(db_url)
    assert columns(db_url, "items") == {"id", "name", "price"}
    assert versions(db_url, VERSION_TABLE) == [HEAD]
    assert f"{SPEC} stamped at {HEAD}" in "\n".join(logged(result.err, "INFO"))
    assert logged(result.err, "WARNING") == []

    execute(db_url, "INSERT INTO items (id, name, price) VALUES (1, 'chair', 40)")
    served = serve(ini)
    assert served.code is None, served.err
    assert (served.status, served.body) == (200, "items: 1")
    assert "stamped" not in served.err
    assert versions(db_url, VERSION_TABLE) == [HEAD]


def test_location_of_migrations_only_gets_the_tables_its_migrations_create(modern_ini, db_url, tmp_path):
    loc = write_location(tmp_path / "pkgs" / "bookmarks_addon" / "alembic", BOOKMARKS)
    ini = modern_ini(db_url, kotti__alembic_dirs=f"{SPEC} {loc}")
    result = boot(ini)
    started(result)
    assert versions(db_url, "bookmarks_addon_alembic_version") == ["b00000000002"]
    assert columns(db_url, "bookmarks") == {"id", "url", "title"}
    assert versions(db_url, VERSION_TABLE) == [HEAD]  # the app's own: created from the models, stamped
    assert f"{SPEC} stamped at {HEAD}" in "\n".join(logged(result.err, "INFO"))
    assert "its revisions create tables no model defines (bookmarks)" in result.err
    started(boot(ini))
    assert query(db_url, "SELECT count(*) FROM bookmarks") == [(1,)]


def test_existing_tables_without_version_table_are_upgraded_from_base(modern_ini, db_url):
    execute(
        db_url,
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name VARCHAR(50) NOT NULL)",
        "INSERT INTO items (id, name) VALUES (1, 'lamp')",
        "INSERT INTO items (id, name) VALUES (2, 'desk')",
    )
    ini = modern_ini(db_url)
    result = boot(ini)
    started(result)
    assert versions(db_url, VERSION_TABLE) == [HEAD]
    assert columns(db_url, "items") == {"id", "name", "price"}  # e1000000000a ran on the old table
    assert columns(db_url, "tags") == {"id", "item_id", "label"}  # e2000000000b created it
    assert query(db_url, "SELECT id, name, price FROM items ORDER BY id") == [
        (1, "lamp", None),
        (2, "desk", None),
    ]
    info = logged(result.err, "INFO")
    assert (
        f"{SPEC} has no version table but its tables exist (items) and differ "
        "from the models: upgrading from base to head"
    ) in "\n".join(info)
    steps = [line for line in info if f"{SPEC} upgrade" in line]
    assert [FIRST in steps[0], HEAD in steps[1], len(steps)] == [True, True, 2]

    served = serve(ini)
    assert (served.status, served.body) == (200, "items: 2")


def test_tables_setting_overrides_which_tables_belong_to_a_location(modern_ini, db_url):
    """items exists in its old form; the setting says only tags belongs to the app."""
    execute(db_url, "CREATE TABLE items (id INTEGER PRIMARY KEY, name VARCHAR(50) NOT NULL)")
    result = boot(modern_ini(db_url, kotti_migrate__tables__example_app="tags"))
    started(result)
    assert versions(db_url, VERSION_TABLE) == [HEAD]
    assert f"{SPEC} is new to this database" in result.err
    assert f"{SPEC} upgrade" not in result.err
    assert columns(db_url, "items") == {"id", "name"}  # not migrated: not the app's table
    assert "tags" in tables(db_url)  # by create_all


def test_auto_upgrade_runs_pending_migrations_before_create_all(app, modern_ini):
    ini, url = app
    downgrade(ini, url)
    execute(url, "INSERT INTO items (id, name, price) VALUES (1, 'chair', 40)")

    result = boot(modern_ini(url, kotti_migrate__auto_upgrade="true"))
    # Had create_all run first, tags would exist and the migration's
    # create_table would have failed the start-up.
    started(result)
    assert versions(url, VERSION_TABLE) == [HEAD]
    assert columns(url, "tags") == {"id", "item_id", "label"}
    info = "\n".join(logged(result.err, "INFO"))
    assert f"upgrading {SPEC} from {FIRST} to {HEAD}" in info
    assert f"{SPEC} upgrade {HEAD} (Create tags)" in info
    assert logged(result.err, "WARNING") == []
    assert query(url, "SELECT name, price FROM items") == [("chair", 40)]


def test_environment_variable_overrides_the_setting(app, modern_ini):
    ini, url = app
    downgrade(ini, url)

    ini = modern_ini(url, kotti_migrate__auto_upgrade="true")
    result = boot(ini, env={"KOTTI_MIGRATE_AUTO_UPGRADE": "no"})
    started(result)
    assert versions(url, VERSION_TABLE) == [FIRST]
    assert "tags" not in tables(url)
    assert len(logged(result.err, "WARNING")) == 1

    ini = modern_ini(url, kotti_migrate__auto_upgrade="false")
    result = boot(ini, env={"KOTTI_MIGRATE_AUTO_UPGRADE": "1"})
    started(result)
    assert versions(url, VERSION_TABLE) == [HEAD]
    assert "tags" in tables(url)
    assert logged(result.err, "WARNING") == []


def test_pending_migration_without_auto_upgrade_warns_and_serves(app):
    ini, url = app
    downgrade(ini, url)

    served = serve(ini)
    assert served.code is None, served.err
    assert (served.status, served.body) == (200, "items: 0")
    [warning] = logged(served.err, "WARNING")
    assert f"{SPEC} is at {FIRST}, behind its head {HEAD}" in warning
    assert warning.endswith(f"run: kotti-migrate {ini} upgrade --scripts={SPEC}")
    assert versions(url, VERSION_TABLE) == [FIRST]
    assert "tags" not in tables(url)  # left for the migration

    result = cli(ini, "upgrade", f"--scripts={SPEC}")  # the advice works
    assert result.code == 0, result.err
    assert versions(url, VERSION_TABLE) == [HEAD]


def test_workers_starting_together_migrate_once(app, modern_ini):
    ini, url = app
    downgrade(ini, url)
    ini = modern_ini(url, kotti_migrate__auto_upgrade="true")
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda _: boot(ini), range(3)))
    for result in results:
        started(result)
    assert versions(url, VERSION_TABLE) == [HEAD]
    everything = "\n".join(result.err for result in results)
    assert everything.count(f"{SPEC} upgrade {HEAD} (Create tags)") == 1


def test_unknown_revision_in_the_database(app, modern_ini):
    _, url = app
    execute(url, f"UPDATE {VERSION_TABLE} SET version_num = 'deadbeef0000'")
    message = (
        f"the database has {SPEC} at deadbeef0000, a revision this code does not know "
        f"(heads: {HEAD}); was the code rolled back?"
    )

    result = boot(modern_ini(url, kotti_migrate__auto_upgrade="true"))
    assert message in failed(result)
    assert "kotti_migrate.errors.UnknownDatabaseRevision" in result.err
    assert versions(url, VERSION_TABLE) == ["deadbeef0000"]

    served = serve(modern_ini(url))
    assert (served.status, served.body) == (200, "items: 0")
    [warning] = logged(served.err, "WARNING")
    assert message in warning
    assert versions(url, VERSION_TABLE) == ["deadbeef0000"]


def test_failing_migration_stops_startup_at_the_last_good_revision(modern_ini, db_url, tmp_path):
    location = write_location(tmp_path / "app_extra" / "migrations", [("a0000000001a", None, "")])
    ini = modern_ini(db_url, kotti__alembic_dirs=str(location), kotti_migrate__auto_upgrade="true")
    started(boot(ini))
    assert versions(db_url, "app_extra_alembic_version") == ["a0000000001a"]

    write_location(
        location,
        [
            (
                "a0000000002b",
                "a0000000001a",
                "op.create_table('extras', sa.Column('id', sa.Integer(), primary_key=True))",
            ),
            (
                "a0000000003c",
                "a0000000002b",
                """
                op.add_column('extras', sa.Column('x', sa.Integer()))
                raise RuntimeError('boom')
                """,
            ),
        ],
    )
    served = serve(ini)
    assert served.code not in (None, 0), served.err
    assert served.status is None
    assert (
        f"location '{location}': revision a0000000003c failed: RuntimeError: boom; "
        "the database is at a0000000002b"
    ) in served.err
    assert versions(db_url, "app_extra_alembic_version") == ["a0000000002b"]
    assert "extras" in tables(db_url)
    assert columns(db_url, "extras") == {"id"}  # the failing step was rolled back (SQLite too)

    result = boot(ini)
    line = failed(result)
    assert "kotti_migrate.errors.MigrationFailed" in result.err
    assert f"location '{location}': revision a0000000003c failed" in line
    assert versions(db_url, "app_extra_alembic_version") == ["a0000000002b"]


def test_relative_location_is_relative_to_the_ini_file_wherever_the_app_starts(modern_ini, db_url, tmp_path):
    # As for kotti-migrate <ini>: a relative path in kotti.alembic_dirs is read
    # from the ini file's folder, not from the folder pserve was started in.
    write_location(tmp_path / "rel_addon" / "migrations", [("f0000000001a", None, "")])
    ini = modern_ini(db_url, kotti__alembic_dirs="example_app:alembic rel_addon/migrations")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "rel_addon").mkdir()  # a decoy the working directory would resolve to

    started(boot(ini, cwd=elsewhere))
    assert versions(db_url, "rel_addon_alembic_version") == ["f0000000001a"]  # found, stamped
    result = cli(ini, "status")
    assert result.code == 0, result.out + result.err


def test_bad_setting_stops_startup_naming_it(modern_ini, db_url):
    result = boot(modern_ini(db_url, kotti_migrate__auto_upgrade="maybe"))
    assert result.code != 0
    last = result.err.strip().splitlines()[-1]
    assert "setting kotti_migrate.auto_upgrade: 'maybe' is not a boolean" in last
    assert tables(db_url) == set()
