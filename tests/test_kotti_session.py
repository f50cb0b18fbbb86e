"""Start-up leaves Kotti's ``DBSession`` and ``metadata`` bound as the caller left them.

Kotti's own test fixtures (and those of every add-on using them) bind
``DBSession`` to their engine, or to a connection in an open transaction,
then create the app with ``kotti.base_configure``.  With kotti_migrate
included, start-up must do its work on that database and give the session
back untouched: same bind, same ``metadata.bind``, same session object.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from helpers import KOTTI_HEAD, query, versions

pytestmark = pytest.mark.kotti



@pytest.fixture
def kotti_state():
    """Kotti's session and metadata as they were before the test, restored after it."""
    from kotti import DBSession, metadata

    kw = DBSession.session_factory.kw
    saved = dict(kw), metadata.bind
    DBSession.remove()
    yield
    DBSession.remove()
    kw.clear()
    kw.update(saved[0])
    metadata.bind = saved[1]


def create_app(url: str) -> None:
    """Configure a Kotti app with kotti_migrate included, as Kotti's ``setup_app`` fixture does.

    (Start-up runs when ``base_configure`` commits; the WSGI app itself is
    left out: depot allows one middleware per process.)
    """
    from kotti import base_configure, conf_defaults

    settings = {
        **conf_defaults,
        "kotti.secret": "secret",
        "sqlalchemy.url": url,
        "pyramid.includes": "kotti_migrate",
    }
    base_configure({}, **settings)


@pytest.mark.parametrize("bind_to", ["engine", "connection"])
def test_app_creation_leaves_the_callers_session_bound(kotti_state, db_url, bind_to):
    from kotti import DBSession, metadata

    engine = sa.create_engine(db_url)
    bind = engine if bind_to == "engine" else engine.connect()
    try:
        DBSession.configure(bind=bind)
        metadata.bind = engine
        session = DBSession()

        create_app(db_url)

        assert DBSession.session_factory.kw["bind"] is bind
        assert metadata.bind is engine
        assert DBSession() is session
        assert session.bind is bind
    finally:
        DBSession.remove()
        if bind is not engine:
            bind.close()
        engine.dispose()
    # Start-up did its work on that database: created, stamped, populated.
    assert versions(db_url, "kotti_alembic_version") == [KOTTI_HEAD]
    assert query(db_url, "SELECT count(*) FROM nodes WHERE parent_id IS NULL")[0][0] == 1


def test_in_memory_database_of_the_caller_is_the_one_started(kotti_state):
    """``sqlite://``: a second engine would be a second, empty database."""
    import transaction
    from kotti import DBSession, metadata

    engine = sa.create_engine("sqlite://")
    connection = engine.connect()
    try:
        DBSession.configure(bind=connection)
        metadata.bind = engine
        # The caller's session is in the caller's (zope) transaction, as in Kotti's fixtures.
        session = DBSession()
        session.execute(sa.text("SELECT 1"))
        callers_transaction = transaction.get()

        create_app("sqlite://")

        assert DBSession.session_factory.kw["bind"] is connection
        assert metadata.bind is engine
        # Neither committed nor closed by start-up's own transaction.
        assert transaction.get() is callers_transaction
        assert DBSession() is session and session.in_transaction()
        # The caller's session sees what start-up created: Kotti's tables, the root, the stamp.
        assert DBSession.execute(sa.text("SELECT version_num FROM kotti_alembic_version")).fetchall() == [
            (KOTTI_HEAD,)
        ]
        from kotti.resources import get_root

        assert get_root().title == "Welcome to Kotti"
    finally:
        transaction.abort()
        DBSession.remove()
        connection.close()
        engine.dispose()


def test_app_creation_without_a_bound_session_leaves_it_unbound(kotti_state, sqlite_url):
    """A site started by pserve: start-up binds nothing that outlives it (Kotti binds its own)."""
    from kotti import DBSession, metadata

    DBSession.session_factory.kw.pop("bind", None)
    metadata.bind = None

    create_app(sqlite_url)

    assert "bind" not in DBSession.session_factory.kw
    assert metadata.bind is None
    assert not DBSession.registry.has()
    assert versions(sqlite_url, "kotti_alembic_version") == [KOTTI_HEAD]
