"""pytest plugin: ready tests for the migrations of Kotti add-ons and Pyramid apps.

Installed with kotti_migrate (entry point ``pytest11``), inactive until asked::

    pytest --kotti-migrate kotti_addon:alembic
    pytest --kotti-migrate kotti_addon:alembic --kotti-migrate-url postgresql+psycopg2://u:p@host/db

or in the ``[pytest]`` / ``[tool:pytest]`` section of the project's ini::

    kotti_migrate = kotti_addon:alembic
    kotti_migrate_url = postgresql+psycopg2://u:p@host/db   (optional)
    kotti_migrate_ini = development.ini                       (optional)
    kotti_migrate_settings = kotti_migrate.metadata = app.models.Base   (optional, one per line)
    kotti_migrate_heads = kotti_addon:alembic=2             (optional, one per line)

Each location gets seven test items (``kotti-migrate[<location>]::<check>``):
single_head, upgrade_fresh, upgrade_stepwise, stairway, models_match,
downgrade_leaves_no_trace, fresh_equals_migrated (see
:mod:`kotti_migrate.testing`).  Fixture ``kotti_migrate_db`` gives authors a
database at a revision of a location, with ``upgrade``/``downgrade``.

Disable it with ``-p no:kotti_migrate.pytest_plugin``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any, Iterator

import pytest

_STATE = pytest.StashKey["_State"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kotti_migrate", "kotti_migrate: test the migrations of a location")
    group.addoption(
        "--kotti-migrate",
        action="append",
        dest="kotti_migrate",
        default=[],
        metavar="LOCATION",
        help="run kotti_migrate's ready tests for this migration location (asset spec "
        "package:folder or a path); repeatable",
    )
    group.addoption(
        "--kotti-migrate-url",
        dest="kotti_migrate_url",
        default=None,
        metavar="URL",
        help="database for the ready tests: a PostgreSQL server URL (a new database per test) "
        "or SQLite (default: a new SQLite file per test)",
    )
    group.addoption(
        "--kotti-migrate-ini",
        dest="kotti_migrate_ini",
        default=None,
        metavar="PATH",
        help="take the site's settings (metadata, other locations) from this app's ini file",
    )
    group.addoption(
        "--kotti-migrate-setting",
        action="append",
        dest="kotti_migrate_setting",
        default=[],
        metavar="KEY=VALUE",
        help="a setting of the test site, e.g. kotti_migrate.metadata=app.models.Base; repeatable",
    )
    parser.addini("kotti_migrate", "migration locations for kotti_migrate's ready tests", type="linelist")
    parser.addini("kotti_migrate_url", "database URL for kotti_migrate's ready tests", default="")
    parser.addini("kotti_migrate_ini", "app ini file for kotti_migrate's ready tests", default="")
    parser.addini("kotti_migrate_settings", "KEY = VALUE settings of the test site", type="linelist")
    parser.addini("kotti_migrate_heads", "LOCATION=N: heads a location declares", type="linelist")


class _State:
    """The plugin's options, and what it keeps for the session."""

    def __init__(self, config: pytest.Config) -> None:
        here = str(config.inipath.parent) if config.inipath else str(config.rootpath)
        cli = list(config.getoption("kotti_migrate") or [])
        ini_specs = [self._absolute(s, here) for s in config.getini("kotti_migrate")]
        self.locations: list[str] = cli or ini_specs
        url = config.getoption("kotti_migrate_url") or config.getini("kotti_migrate_url")
        self.url: str | None = url or None
        ini = config.getoption("kotti_migrate_ini")
        if not ini and config.getini("kotti_migrate_ini"):
            ini = self._absolute(config.getini("kotti_migrate_ini"), here)
        self.ini: str | None = os.path.abspath(ini) if ini else None
        self.settings: dict[str, str] = {}
        for line in list(config.getini("kotti_migrate_settings")) + list(
            config.getoption("kotti_migrate_setting") or []
        ):
            key, sep, value = line.partition("=")
            if not sep:
                raise pytest.UsageError(f"kotti_migrate setting {line!r}: write KEY=VALUE")
            self.settings[key.strip()] = value.strip()
        self.heads: dict[str, int] = {}
        for line in config.getini("kotti_migrate_heads"):
            spec, sep, count = line.rpartition("=")
            if not sep or not count.strip().isdigit():
                raise pytest.UsageError(f"kotti_migrate_heads {line!r}: write LOCATION=N")
            self.heads[spec.strip()] = int(count)
        self.kinds: dict[str, str] = {}
        self._templates: dict[str, Any] = {}
        self._folder: str | None = None

    @staticmethod
    def _absolute(spec: str, here: str) -> str:
        from .locations import is_asset_spec

        return spec if is_asset_spec(spec) or os.path.isabs(spec) else os.path.join(here, spec)

    def template(self, spec: str | None) -> Any:
        from .testing import SiteTemplate

        if spec is None:
            if not self.locations:
                raise pytest.UsageError(
                    "kotti_migrate_db: which location? pass location=... or --kotti-migrate LOCATION"
                )
            spec = self.locations[0]
        if spec not in self._templates:
            self._templates[spec] = SiteTemplate(
                spec, self.ini, self.settings, self.heads.get(spec, 1)
            )
        return self._templates[spec]

    def context(self, spec: str | None) -> Any:
        from .checks import CheckContext
        from .testing import DatabaseFactory

        if self._folder is None:
            self._folder = tempfile.mkdtemp(prefix="kotti_migrate_tests_")
        template = self.template(spec)
        return CheckContext(template, DatabaseFactory(self.url, self._folder), self.kinds)

    def close(self) -> None:
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_STATE] = _State(config)


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(_STATE, None)
    if state is not None:
        state.close()


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    state = config.stash.get(_STATE, None)
    if state is None or not state.locations:
        return None
    from .database import mask_url

    where = mask_url(state.url) if state.url else "a new SQLite file per test"
    return [f"kotti_migrate: ready tests for {', '.join(state.locations)} on {where}"]


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list) -> None:
    """Append the ready tests (before -k/-m deselect, which run after this)."""
    state = config.stash.get(_STATE, None)
    if state is None or not state.locations:
        return
    from .checks import CHECKS

    for spec in state.locations:
        name = f"kotti-migrate[{spec}]"
        collector = LocationTests.from_parent(session, name=name, nodeid=name)
        for check in CHECKS:
            items.append(ReadyTest.from_parent(collector, name=check, spec=spec, check=check))


class LocationTests(pytest.Collector):
    """The ready tests of one location (their parent in reports)."""

    def collect(self) -> list:  # pragma: no cover - items are made in pytest_collection_modifyitems
        return []


class ReadyTest(pytest.Item):
    """One ready check of one location."""

    def __init__(self, *, spec: str, check: str, **kw: Any) -> None:
        super().__init__(**kw)
        self.spec = spec
        self.check = check

    def runtest(self) -> None:
        from .checks import CHECKS

        ctx = self.config.stash[_STATE].context(self.spec)
        try:
            summary = CHECKS[self.check](ctx)
        finally:
            ctx.close()
        self.user_properties.append(("kotti_migrate", summary))
        self.add_report_section("call", "kotti_migrate", summary)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        from .errors import MigrateError
        from .testing import CheckFailed

        if isinstance(excinfo.value, (CheckFailed, MigrateError)):
            return f"kotti-migrate {self.check}: {excinfo.value}"
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Any, int | None, str]:
        return self.path, None, f"kotti-migrate[{self.spec}]::{self.check}"


@pytest.fixture
def kotti_migrate_db(request: pytest.FixtureRequest) -> Iterator[Any]:
    """Factory: ``kotti_migrate_db(revision="base", location=None)`` -> a database at ``revision``.

    The returned :class:`kotti_migrate.testing.MigrationDB` has ``url``,
    ``engine``, ``current``, ``upgrade(rev)`` (``"+1"``, ``"heads"``, an id),
    ``downgrade(rev)`` (``"-1"``, ``"base"``), ``execute(sql, **params)``,
    ``tables()`` and ``columns(table)``.  ``location`` defaults to the first
    ``--kotti-migrate`` location; each call makes a new database (SQLite, or
    a new database on the ``--kotti-migrate-url`` PostgreSQL server),
    removed after the test.
    """
    from .checks import open_database
    from .errors import MigrateError
    from .testing import CheckFailed

    state = request.config.stash[_STATE]
    opened = []

    def make(revision: str = "base", location: str | None = None) -> Any:
        ctx = state.context(location)
        opened.append(ctx)
        try:
            return open_database(ctx, revision)
        except (CheckFailed, MigrateError) as exc:
            pytest.fail(f"kotti_migrate_db(revision={revision!r}): {exc}", pytrace=False)

    yield make
    for ctx in opened:
        ctx.close()


__all__ = ["kotti_migrate_db"]
