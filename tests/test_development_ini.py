"""The README's main job: `pserve development.ini`, and its `auto_upgrade=true` switch."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from helpers import execute, free_port, pserve, query

pytestmark = pytest.mark.kotti

REPO = Path(__file__).parent.parent


def run(ini: Path, *args: str):
    port = free_port()
    return pserve(ini, port, f"port={port}", *args)


def test_development_ini_serves_and_auto_upgrade_switch_reaches_kotti_migrate(tmp_path):
    ini = tmp_path / "development.ini"
    shutil.copy(REPO / "development.ini", ini)
    served = run(ini)
    assert (served.code, served.status) == (None, 200), served.err
    assert "kotti:alembic stamped at 814c4ec72f1" in served.err
    db = f"sqlite:///{tmp_path / 'kotti.db'}"
    # A first run says what it did and where it serves, without repeating the logger name.
    assert f"[kotti_migrate] fresh database {db}: created " in served.err
    assert "[waitress] Serving on http://127.0.0.1:" in served.err
    assert "[kotti_migrate] kotti_migrate:" not in served.err
    # Kotti's pages come with their CSS and JavaScript (fanstatic in front of Kotti).
    assert "/fanstatic/kotti/" in served.body and ".css" in served.body, served.body[:2000]

    # The demo site's kotti-migrate, next to serve.sh.
    status = subprocess.run(
        [str(REPO / "kotti-migrate"), str(ini), "status"], capture_output=True, text=True, timeout=300
    )
    assert status.returncode == 0, status.stdout + status.stderr
    assert "kotti:alembic" in status.stdout and "814c4ec72f1" in status.stdout
    assert query(db, "SELECT version_num FROM kotti_alembic_version") == [("814c4ec72f1",)]

    # The code was "rolled back": the database is at a revision it does not know.
    execute(db, "UPDATE kotti_alembic_version SET version_num = 'deadbeef0000'")
    served = run(ini)
    assert (served.code, served.status) == (None, 200), served.err  # flag off: warns, serves
    assert "WARNI" in served.err and "deadbeef0000" in served.err

    served = run(ini, "auto_upgrade=true")
    assert served.code not in (None, 0) and served.status is None, served.err  # flag on: stops
    assert "was the code rolled back?" in served.err
