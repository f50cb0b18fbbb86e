"""The README's main job: `pserve development.ini`, and its `auto_upgrade=true` switch."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import execute, free_port, query

pytestmark = pytest.mark.kotti

REPO = Path(__file__).parent.parent


def pserve(folder: Path, *args: str, timeout: float = 90) -> tuple[int | None, int | None, str]:
    """Run ``pserve development.ini ARGS``; return (exit code or None, HTTP status, output)."""
    port = free_port()
    log = folder / f"pserve-{port}.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "pserve"), "development.ini", f"port={port}", *args],
            cwd=folder,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        status = None
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as res:
                        status = res.status
                    break
                except urllib.error.HTTPError as exc:
                    status = exc.code
                    break
                except OSError:
                    time.sleep(0.2)
        finally:
            code = proc.poll()
            if code is None:
                proc.terminate()
                proc.wait(timeout=10)
    return code, status, log.read_text()


def test_development_ini_serves_and_auto_upgrade_switch_reaches_kotti_migrate(tmp_path):
    shutil.copy(REPO / "development.ini", tmp_path / "development.ini")
    code, status, output = pserve(tmp_path)
    assert (code, status) == (None, 200), output
    assert "kotti:alembic stamped at 814c4ec72f1" in output
    db = f"sqlite:///{tmp_path / 'kotti.db'}"
    assert query(db, "SELECT version_num FROM kotti_alembic_version") == [("814c4ec72f1",)]

    # The code was "rolled back": the database is at a revision it does not know.
    execute(db, "UPDATE kotti_alembic_version SET version_num = 'deadbeef0000'")
    code, status, output = pserve(tmp_path)
    assert (code, status) == (None, 200), output  # flag off: a warning, the site serves
    assert "WARNI" in output and "deadbeef0000" in output

    code, status, output = pserve(tmp_path, "auto_upgrade=true")
    assert code not in (None, 0) and status is None, output  # flag on: start-up stops
    assert "was the code rolled back?" in output
