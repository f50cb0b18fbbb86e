"""Kotti's own test suite passes as well with kotti_migrate included as without it.

Add-ons test with the fixtures of Kotti's pytest plugin (``kotti.tests``):
``db_session`` binds ``DBSession`` to a connection in an open transaction,
``setup_app`` creates the app with ``kotti.base_configure``, ``root``,
``webtest``, ``browser`` and ``filedepot`` build on them.  Once an add-on's
settings include kotti_migrate, its start-up runs inside those fixtures; it
must leave them working.  This runs Kotti 2.0.9's own tests twice in
subprocesses, once as Kotti ships them and once with ``kotti_migrate`` in
the ``pyramid.includes`` of every app they create, and asserts that no test
passing without kotti_migrate fails or errors with it.

Kotti's tests come with the installed Kotti: its distribution (wheel and
sdist alike) ships ``kotti/tests``, the same files as the sdist.  The plugin
needs ``mock`` and the ``browser`` fixture ``zope.testbrowser``
(requirements/testing.txt).  Anything missing fails the test.

The modules run are a subset (the whole suite takes about 95 s of CPU per
run, 3 minutes on a loaded machine, most of it in test_functional.py's
browser sessions, one of which uploads a 1 GB file):

- test_node.py: ``db_session`` and ``root`` (the content tree in the
  caller's transaction);
- test_filedepot.py: the ``filedepot`` fixture (depot bound to the
  session) and a ``webtest`` app serving files;
- test_cache.py: ``app``/``webtest`` requests, anonymous and logged in;
- test_upload.py: the ``browser`` fixture (zope.testbrowser on the app);
- test_search.py: ``webtest`` plus content created through ``root``;
- test_app.py: ``kotti.main`` and ``kotti.testing.setUp``, where
  kotti_migrate's start-up precedes Kotti's ``initialize_sql``.

All six run on a SQLite file; on SQLite in memory and on PostgreSQL, where
what differs is the database under ``db_session`` and the start-up, only
test_node.py and test_app.py run (the fixtures built on them are the same).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytestmark = pytest.mark.kotti

MODULES = (
    "test_node.py",
    "test_filedepot.py",
    "test_cache.py",
    "test_upload.py",
    "test_search.py",
    "test_app.py",
)
#: What runs on the other databases: the session and the start-up.
DATABASE_MODULES = ("test_node.py", "test_app.py")

PYTEST_INI = """\
[pytest]
markers =
    user: run as the given user
    slow: slow test
"""

# Loaded with ``-p``: every app Kotti's tests create includes kotti_migrate
# (Kotti's fixtures and kotti.testing build their settings from
# kotti.conf_defaults); start-ups that did work are counted.
PLUGIN = '''\
"""Kotti's test settings include kotti_migrate."""
import os


def pytest_configure(config):
    import kotti
    from kotti_migrate import boot

    includes = kotti.conf_defaults.get("pyramid.includes", "")
    kotti.conf_defaults["pyramid.includes"] = (includes + " kotti_migrate").strip()
    original = boot.start_up

    def start_up(*args, **kw):
        record = original(*args, **kw)
        with open(os.environ["KOTTI_SUITE_STARTUPS"], "a") as out:
            out.write("%d\\n" % len(record.decisions if record is not None else []))
        return record

    boot.start_up = start_up
'''


def kotti_tests() -> Path:
    """The folder of Kotti's own tests; fails when anything they need is missing."""
    import kotti

    folder = Path(kotti.__file__).parent / "tests"
    if not (folder / "__init__.py").is_file() or not (folder / "conftest.py").is_file():
        pytest.fail(f"Kotti's own tests are not installed ({folder}): reinstall Kotti==2.0.9", pytrace=False)
    for module in ("mock", "zope.testbrowser", "webtest"):
        try:
            __import__(module)
        except ImportError:
            pytest.fail(
                f"Kotti's test fixtures need {module}: pip install -r requirements/testing.txt",
                pytrace=False,
            )
    return folder


def outcomes(junit: Path) -> dict[str, str]:
    """Test id -> passed / failed / error / skipped, from a junit XML report."""
    result = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        kinds = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        name = f"{case.get('classname')}::{case.get('name')}"
        # An error in teardown comes on top of the call's outcome: the worse one counts.
        result[name] = "error" if "error" in kinds else kinds[0] if kinds else "passed"
    return result


def run_suite(
    folder: Path, work: Path, db: str, included: bool, modules: tuple[str, ...]
) -> tuple[dict[str, str], str]:
    name = "included" if included else "plain"
    junit = work / f"{name}.xml"
    args = [
        sys.executable, "-m", "pytest", "-c", str(work / "pytest.ini"),
        # Test ids relative to site-packages: kotti/tests/test_app.py::TestApp::...
        "--rootdir", str(folder.parent.parent), "-p", "no:cacheprovider", "-q", "-rfE", f"--junitxml={junit}",
        # pytest >= 8 rewrites every module of a plugin's distribution (all of
        # kotti), and pkg_resources cannot read the resources of rewritten
        # modules: Kotti's templates would fail to load.
        "--assert=plain",
        "-W", "ignore::DeprecationWarning",
    ]
    if included:
        args += ["-p", "kotti_migrate_included"]
    args += [str(folder / module) for module in modules]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(work), os.environ.get("PYTHONPATH", "")]),
        "KOTTI_TEST_DB_STRING": db,
        "KOTTI_SUITE_STARTUPS": str(work / "startups.txt"),
    }
    env.pop("PYTEST_ADDOPTS", None)
    proc = subprocess.run(args, cwd=work, env=env, capture_output=True, text=True, timeout=600)
    if not junit.is_file():
        pytest.fail(f"Kotti's test suite did not run ({name}):\n{proc.stdout}\n{proc.stderr}")
    summary = [line for line in proc.stdout.splitlines() if line.startswith(("FAILED", "ERROR", "="))]
    return outcomes(junit), "\n".join(summary[-60:])


@pytest.fixture(params=["memory", "file", "postgresql"])
def kotti_test_db(request, tmp_path):
    """KOTTI_TEST_DB_STRING for Kotti's fixtures, one database per run."""

    def make(name: str) -> str:
        if request.param == "memory":
            return "sqlite://"
        if request.param == "file":
            return f"sqlite:///{tmp_path}/{name}.db"
        return request.getfixturevalue("pg_server").new_database()

    make.param = request.param
    return make


def test_kotti_suite_passes_as_well_with_kotti_migrate_included(tmp_path, kotti_test_db):
    folder = kotti_tests()
    runs = {}
    for name, included in (("plain", False), ("included", True)):
        work = tmp_path / name
        work.mkdir()
        (work / "pytest.ini").write_text(PYTEST_INI)
        (work / "kotti_migrate_included.py").write_text(textwrap.dedent(PLUGIN))
        modules = MODULES if kotti_test_db.param == "file" else DATABASE_MODULES
        runs[name] = (work, kotti_test_db(name), included, modules)
    with ThreadPoolExecutor(2) as pool:
        futures = {name: pool.submit(run_suite, folder, *args) for name, args in runs.items()}
        (plain, plain_out), (included, included_out) = (futures[n].result() for n in ("plain", "included"))

    # kotti_migrate's start-up really ran inside Kotti's fixtures (and did its work).
    startups = (tmp_path / "included" / "startups.txt").read_text().split()
    assert startups and all(int(n) > 0 for n in startups), included_out
    assert not (tmp_path / "plain" / "startups.txt").exists()
    # The same tests ran, and Kotti's fixtures work at all here.
    assert set(included) == set(plain)
    least = 60 if kotti_test_db.param == "file" else 35
    assert sum(outcome == "passed" for outcome in plain.values()) > 0.9 * len(plain) > least, plain_out
    worse = sorted(
        name for name, outcome in plain.items() if outcome == "passed" and included[name] != "passed"
    )
    assert not worse, (
        f"{len(worse)} of Kotti's tests pass without kotti_migrate but not with it: "
        f"{', '.join(worse[:10])}\n{included_out}"
    )
