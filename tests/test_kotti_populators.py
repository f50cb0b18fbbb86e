"""Kotti's populators run once per boot: under kotti_migrate's start-up lock,
and not a second time in Kotti's own ``initialize_sql`` (issue 11).

Each site here also lists a populator that appends a line to a file per run.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from helpers import boot, query, started

pytestmark = pytest.mark.kotti

COUNTER = '''
import os


def count():
    with open(os.environ["POPULATOR_LOG"], "a") as fh:
        fh.write("ran\\n")
'''


@pytest.fixture
def counted(tmp_path, kotti_ini):
    """Factory: (ini, env) of a site whose populators are Kotti's and a counting one."""
    (tmp_path / "counting_populator.py").write_text(COUNTER)
    log = tmp_path / "populators.log"
    env = {
        "POPULATOR_LOG": str(log),
        "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
    }

    def make(url: str, **settings):
        ini = kotti_ini(url, kotti__populators="kotti.populate.populate counting_populator.count", **settings)
        return ini, env

    def runs() -> int:
        return len(log.read_text().split()) if log.exists() else 0

    make.runs = runs
    return make


def test_populators_run_once_per_boot(counted, db_url):
    ini, env = counted(db_url)
    started(boot(ini, env=env))  # fresh database: created, stamped, populated
    assert counted.runs() == 1
    assert query(db_url, "SELECT count(*) FROM nodes WHERE parent_id IS NULL")[0][0] == 1
    started(boot(ini, env=env))  # at head
    assert counted.runs() == 2


def test_in_memory_database_is_populated_by_kotti(counted):
    """``sqlite://``: Kotti's engine is another (empty) database than start-up's: Kotti populates it."""
    ini, env = counted("sqlite://")
    started(boot(ini, env=env))  # the front page needs the root document Kotti's run created
    assert counted.runs() == 2


def test_kotti_disable_populators_still_disables_them(counted, sqlite_url):
    ini, env = counted(sqlite_url)
    script = f"from pyramid.paster import get_app; get_app({str(ini)!r}); print('CREATED')"
    created = subprocess.run(  # no root document, so no page to fetch: the app is created
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
        env={**os.environ, **env, "KOTTI_DISABLE_POPULATORS": "1"},
    )  # fmt: skip
    assert "CREATED" in created.stdout, created.stderr
    assert counted.runs() == 0
    assert query(sqlite_url, "SELECT count(*) FROM nodes")[0][0] == 0
