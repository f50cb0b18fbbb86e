"""A Kotti site served by ``pserve`` (waitress, several worker threads) keeps serving.

After any start-up (one that ran migrations, one that adopted an add-on's
existing tables, one with nothing to do) an anonymous request to an admin
view is redirected to the login page, and every later request, each handed
to another worker thread, is answered.  Kotti caches its root object for the
whole process: without ``pyramid_tm`` closing each request's session, the
root stayed bound to the first thread's session and SQLite connection, and
every other thread got a 500 ("SQLite objects created in a thread can only
be used in that same thread").  kotti_migrate warns when a Kotti site runs
without it.
"""

from __future__ import annotations

import pytest
from helpers import NOTES_FIRST, NOTES_HEAD, cli, execute, logged, serve_pages, versions

pytestmark = pytest.mark.kotti

#: An admin view asked for anonymously (redirected to the login form), then pages on other threads.
PAGES = ["/@@setup-users", "/@@login", "/", "/@@setup-users", "/@@login", "/", "/@@login", "/"]

#: What kotti_migrate logs for a Kotti site without a transaction manager.
NO_TM = "no transaction manager: Kotti's DBSession is never committed nor closed after a request"


def assert_served(pages) -> None:
    assert [(page.path, page.status) for page in pages] == [(path, 200) for path in PAGES], [
        (page.path, page.status, page.body[-300:]) for page in pages if page.status != 200
    ]
    for page in pages:
        if "@@" in page.path:  # anonymous: the login form
            assert "/@@login" in page.url
            assert 'name="password"' in page.body


@pytest.mark.parametrize("boot", ["migrating", "adopting", "plain"])
def test_every_request_after_start_up_is_served(kotti_ini, db_url, booted_kotti_site, boot):
    env = {}
    if boot == "adopting":
        booted_kotti_site(db_url, addons=False)
        # kotti_notes' table as its version without migrations created it (and a note:
        # on PostgreSQL this id is no SERIAL, and the add-on's populator adds none now).
        execute(
            db_url,
            "CREATE TABLE notes (id INTEGER PRIMARY KEY, title VARCHAR(100) NOT NULL)",
            "INSERT INTO notes (id, title) VALUES (1, 'old note')",
        )
    else:
        booted_kotti_site(db_url)
    ini = kotti_ini(db_url)
    if boot == "migrating":
        result = cli(ini, "downgrade", "--scripts=kotti_notes:alembic", f"--rev={NOTES_FIRST}")
        assert result.code == 0, result.err
        env["KOTTI_MIGRATE_AUTO_UPGRADE"] = "true"

    pages, err = serve_pages(ini, PAGES, env=env)

    assert_served(pages)
    assert "Traceback" not in err
    assert logged(err, "WARNING") == []
    assert versions(db_url, "kotti_notes_alembic_version") == [NOTES_HEAD]
    steps = [line for line in logged(err, "INFO") if "kotti_notes:alembic upgrade" in line]
    assert len(steps) == {"migrating": 1, "adopting": 2, "plain": 0}[boot]


def test_kotti_site_without_a_transaction_manager_is_warned_about(kotti_ini, sqlite_url, booted_kotti_site):
    booted_kotti_site(sqlite_url)
    ini = kotti_ini(sqlite_url, pyramid__includes="kotti_migrate")  # pyramid_tm left out

    pages, err = serve_pages(ini, ["/"])

    assert pages[0].status == 200
    warnings = logged(err, "WARNING")
    assert len(warnings) == 1, err
    assert NO_TM in warnings[0]
    assert "add pyramid_tm to pyramid.includes" in warnings[0]
