"""Test set-up: stacks, databases and small example sites.

The suite runs on one *stack* per virtual environment: "kotti" (Kotti
2.0.9, Pyramid 1.10, SQLAlchemy 1.4) when Kotti is importable, "kotti2"
when the ``kotti`` package comes from the kotti2 fork (distribution
``Kotti2``), "modern" (Pyramid 2, SQLAlchemy 2, no Kotti) otherwise.  A
test marked for one or more stacks (``kotti``, ``kotti2``, ``modern``) is
deselected, not skipped, on the others; unmarked tests run on every stack.
Every database test runs on SQLite and on a real PostgreSQL server started
for the session; with ``KOTTI_MIGRATE_REQUIRE_PG=1`` (set by the README's test command) a server
that cannot be started fails the run instead of skipping.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from helpers import (
    KOTTI_EGG,
    PROJECTS,
    REVISION,
    STACK,
    STACKS,
    TINY_APP_INIT,
    boot,
    new_package,
    started,
    write_ini,
)

sys.path.insert(0, str(PROJECTS))


def pytest_configure(config):
    config.addinivalue_line("markers", "kotti: needs the Kotti 2.0.9 stack")
    config.addinivalue_line("markers", "kotti2: needs the kotti2 stack (kotti2 3.0.x, newest Python)")
    config.addinivalue_line("markers", "modern: needs the Pyramid 2 / SQLAlchemy 2 stack")


def pytest_report_header(config):
    return f"kotti_migrate stack: {STACK} (SQLAlchemy {sa.__version__})"


def pytest_collection_modifyitems(config, items):
    keep, drop = [], []
    for item in items:
        marked = {name for name in STACKS if item.get_closest_marker(name)}
        (drop if marked and STACK not in marked else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


# -- databases -------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_server():
    from pg import PostgresServer

    server = PostgresServer()
    try:
        server.start()
    except Exception as exc:  # pragma: no cover - depends on the machine
        if os.environ.get("KOTTI_MIGRATE_REQUIRE_PG"):
            pytest.fail(f"PostgreSQL is required but could not be started: {exc}", pytrace=False)
        pytest.skip(f"PostgreSQL not available: {exc}")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def mariadb_server():
    """A MariaDB server for the session (tests/mariadb.py); one that cannot be started fails the test."""
    from mariadb import MariaDBServer

    server = MariaDBServer()
    try:
        server.start()
    except Exception as exc:  # pragma: no cover - depends on the machine
        server.stop()
        pytest.fail(f"MariaDB is required but could not be started: {exc}", pytrace=False)
    yield server
    server.stop()


@pytest.fixture
def mariadb_url(mariadb_server):
    """URL of an empty MariaDB database (``mysql+pymysql://``).  Not one of ``db_url``'s
    backends (that would make the whole suite slower): the tests of what differs by
    database use it (test_mariadb.py)."""
    return mariadb_server.new_database()


@pytest.fixture(scope="session", autouse=True)
def _pristine_kotti_models():
    """Kotti's models as imported, before any test (or server set-up) talked to MySQL."""
    return kotti_models_snapshot()


@pytest.fixture(autouse=True)
def _kotti_models_after_mysql(request, _pristine_kotti_models):
    """Every test that uses the MariaDB server leaves Kotti's models as they were imported.

    Kotti changes them for good once a process connects to MySQL: its
    filedepot's ``engine_connect`` listener makes ``blobs.data`` a
    ``LONGBLOB`` (which SQLite and PostgreSQL cannot create), and
    ``_adjust_for_engine`` drops the ``ix_nodes_path`` index.  The next
    test on this pytest worker creates a Kotti site on another database.
    """
    yield
    if "mariadb_server" in request.fixturenames and _pristine_kotti_models is not None:
        column, saved_type, table, saved_indexes = _pristine_kotti_models
        column.type = saved_type
        table.indexes = set(saved_indexes)


def kotti_models_snapshot() -> tuple | None:
    """What Kotti changes in its models for MySQL (None without Kotti)."""
    if importlib.util.find_spec("kotti") is None:
        return None
    try:
        from kotti.filedepot import DBStoredFile
        from kotti.resources import Node
    except ImportError:  # a Kotti without these: nothing to put back
        return None
    column = DBStoredFile.__table__.c.data
    return column, column.type, Node.__table__, frozenset(Node.__table__.indexes)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """URL of an empty database, on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/site.db"
    return request.getfixturevalue("pg_server").new_database()


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path}/site.db"


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Own cache folder per test; no auto-upgrade leaking from the environment."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("KOTTI_MIGRATE_AUTO_UPGRADE", raising=False)
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([str(PROJECTS), os.environ.get("PYTHONPATH", "")])
    )


# -- sites -------------------------------------------------------------------------


def kotti_settings(addons: bool = True, **settings) -> dict:
    """The settings of a test Kotti site with kotti_migrate included (and kotti_notes).

    ``pyramid_tm`` as in Kotti's own app.ini: it commits (or aborts) and closes
    Kotti's ``DBSession`` after each request (see test_serving_kotti.py).
    """
    base = {
        "kotti.site_title": "test site",
        "kotti.secret": "secret",
        "pyramid.includes": "pyramid_tm kotti_migrate",
    }
    if addons:
        base["kotti.configurators"] = "kotti_notes.kotti_configure"
    base.update({k.replace("__", "."): v for k, v in settings.items()})
    return base


@pytest.fixture
def kotti_ini(tmp_path):
    """Factory: the ini file of a Kotti site with kotti_migrate included."""

    def make(
        url: str, addons: bool = True, name: str = "site.ini", use: str = KOTTI_EGG, **settings
    ) -> Path:
        return write_ini(tmp_path / name, use, url, kotti_settings(addons, **settings))

    return make


@pytest.fixture(scope="session")
def _booted_sites(tmp_path_factory) -> dict:
    """Fresh Kotti sites booted once per session (per xdist worker): (backend, addons) -> URL."""
    return {"folder": tmp_path_factory.mktemp("booted-sites")}


@pytest.fixture
def booted_kotti_site(request, _booted_sites):
    """Factory: make ``url`` (an empty database) a copy of a Kotti site after its first boot.

    ``booted_kotti_site(url, addons=True)`` gives what ``boot(kotti_ini(url,
    addons))`` on an empty database leaves (Kotti's tables and content,
    kotti_notes' unless ``addons=False``, every location stamped at its head),
    copied from a site booted once per session: a SQLite file copy,
    ``CREATE DATABASE ... TEMPLATE`` on PostgreSQL, tables and rows copied on MariaDB.  What that first boot
    does is tested by test_startup_kotti.py's fresh-database tests; the tests
    that only start from a booted site use this instead of booting again.
    """

    def server(backend: str):
        return request.getfixturevalue("mariadb_server" if backend == "mysql" else "pg_server")

    def make(url: str, addons: bool = True) -> None:
        backend = sa.engine.make_url(url).get_backend_name()
        key = (backend, addons)
        if key not in _booted_sites:
            folder = _booted_sites["folder"] / f"{backend}-{'addons' if addons else 'kotti'}"
            folder.mkdir()
            if backend == "sqlite":
                template = f"sqlite:///{folder}/site.db"
            else:
                template = server(backend).new_database()
            started(boot(write_ini(folder / "site.ini", KOTTI_EGG, template, kotti_settings(addons))))
            _booted_sites[key] = template
        template = _booted_sites[key]
        if backend == "sqlite":
            target = Path(sa.engine.make_url(url).database)
            assert not target.exists() or target.stat().st_size == 0, f"{url} is not empty"
            shutil.copyfile(sa.engine.make_url(template).database, target)
        else:
            server(backend).clone_database(template, url)

    return make


@pytest.fixture
def modern_ini(tmp_path):
    """Factory: the ini file of the plain Pyramid example app."""

    def make(url: str, name: str = "app.ini", **settings) -> Path:
        return write_ini(
            tmp_path / name,
            "call:example_app:main",
            url,
            {k.replace("__", "."): v for k, v in settings.items()},
        )

    return make


@pytest.fixture
def tiny_app(tmp_path, monkeypatch):
    """Factory: a new app package under tmp_path, its revisions and an ini file.

    ``revisions`` maps file names to ``(rev, down, upgrade body)`` (or to the
    file's text).  Returns ``(ini, package name, versions folder)``.
    """
    root = tmp_path / "pkgs"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(root), os.environ["PYTHONPATH"]]))

    def make(url: str, revisions: dict | None = None, **settings):
        name, package = new_package(root, "tiny")
        (package / "alembic" / "versions").mkdir(parents=True)
        (package / "__init__.py").write_text(TINY_APP_INIT.format(name=name))
        for filename, spec in (revisions or {}).items():
            if isinstance(spec, str):
                text = spec
            else:
                rev, down, upgrade = spec
                text = REVISION.format(doc=f"Revision {rev}", rev=rev, down=down, upgrade=upgrade)
            (package / "alembic" / "versions" / filename).write_text(text)
        ini = write_ini(
            tmp_path / f"{name}.ini",
            f"call:{name}:main",
            url,
            {k.replace("__", "."): v for k, v in settings.items()},
        )
        return ini, name, package / "alembic" / "versions"

    return make
