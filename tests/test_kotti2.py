"""kotti2 3.0.x (PyPI `kotti2`, imports as `kotti`, ini `use = egg:kotti2`): the
fork Kotti lives on in, on the newest Python.

Runs on the kotti2 stack (`.venv/kotti2`).  Databases of the real Kotti 2.0.9
are made, and the code rolled back to it, with the Kotti stack's virtualenv
`<repo>/.venv/kotti` (test.sh builds it before the kotti2 stack).  Every site
is started through the real app factory under `pserve` (or PasteDeploy's
`get_app` in a fresh process) and inspected with the real `kotti-migrate`.
"""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import pytest
from helpers import KOTTI_HEAD, REPO, boot, cli_process, query, serve, tables, versions

pytestmark = pytest.mark.kotti2

KOTTI2_HEAD = "a1b2c3d4e5f6"  # kotti2's revision on top of it: creates embedded_pages
KOTTI_VENV_PYTHON = REPO / ".venv" / "kotti" / "bin" / "python"
BODY = "Body text from Kotti 2.0.9"

# Run by Kotti 2.0.9: create the site (Kotti's own start-up, without
# kotti_migrate: a database as existing Kotti sites have it) and add a public
# document.
MAKE_KOTTI_209_SITE = textwrap.dedent(
    f"""
    import sys
    import transaction
    from pyramid.paster import get_app

    get_app(sys.argv[1])
    from kotti import DBSession
    from kotti.resources import Document, get_root
    from kotti.workflow import get_workflow

    doc = get_root()["hello"] = Document(title="Hello", body="<p>{BODY}</p>")
    DBSession.flush()
    get_workflow(doc).transition_to_state(doc, None, "public")
    transaction.commit()
    """
)


@pytest.fixture
def kotti_python() -> Path:
    """The interpreter of the Kotti 2.0.9 stack's virtualenv."""
    if not KOTTI_VENV_PYTHON.exists():
        pytest.fail(
            f"{KOTTI_VENV_PYTHON} not found: the kotti2 tests need the Kotti 2.0.9 stack's venv; "
            "build it with ./test.sh (or `. scripts/venv.sh; ensure_venv kotti testing`)",
            pytrace=False,
        )
    return KOTTI_VENV_PYTHON


@pytest.fixture
def kotti209_database(db_url, kotti_ini, kotti_python, tmp_path) -> str:
    """``db_url`` holding a Kotti 2.0.9 site made by Kotti 2.0.9, with a document /hello."""
    ini = kotti_ini(db_url, addons=False, name="kotti209.ini", use="egg:kotti", pyramid__includes="")
    script = tmp_path / "make_site.py"
    script.write_text(MAKE_KOTTI_209_SITE)
    proc = subprocess.run(
        [str(kotti_python), str(script), str(ini)], capture_output=True, text=True, cwd=tmp_path, timeout=180
    )
    assert proc.returncode == 0, proc.stderr
    assert versions(db_url, "kotti_alembic_version") == [KOTTI_HEAD]
    assert "embedded_pages" not in tables(db_url)
    return db_url


def status_row(result) -> list[str]:
    """The `kotti:alembic` row of `kotti-migrate status`."""
    rows = [line.split() for line in result.out.splitlines() if line.startswith("kotti:alembic ")]
    assert len(rows) == 1, result.out + result.err
    return rows[0]


def hello_title(url: str) -> list:
    return query(url, "SELECT title FROM nodes WHERE name = 'hello'")


def test_fresh_kotti2_site_then_code_rolled_back_to_kotti_209(db_url, kotti_ini, kotti_python):
    ini = kotti_ini(db_url, addons=False)
    served = serve(ini)
    assert (served.code, served.status) == (None, 200), served.err
    assert versions(db_url, "kotti_alembic_version") == [KOTTI2_HEAD]
    assert "embedded_pages" in tables(db_url)
    status = cli_process(ini, "status")
    assert status.code == 0, status.out + status.err
    assert status_row(status)[2:] == [KOTTI2_HEAD, KOTTI2_HEAD, "0"]

    # The code goes back to Kotti 2.0.9 (auto_upgrade off): it does not know
    # kotti2's revision, says so, and the site starts.
    old = kotti_ini(db_url, addons=False, name="kotti209.ini", use="egg:kotti")
    result = boot(old, python=kotti_python)
    assert result.code == 0 and "STATUS 200" in result.out, result.err
    warnings = [
        line for line in result.err.splitlines() if line.startswith("WARNING") and KOTTI2_HEAD in line
    ]
    assert warnings and "kotti:alembic" in warnings[0], result.err
    assert versions(db_url, "kotti_alembic_version") == [KOTTI2_HEAD]


def test_kotti209_database_with_content_upgraded_by_kotti2(kotti209_database, kotti_ini):
    url = kotti209_database
    ini = kotti_ini(url, addons=False, kotti_migrate__auto_upgrade="true")
    status = cli_process(ini, "status")
    assert status.code == 3, status.out + status.err
    assert status_row(status)[2:] == [KOTTI_HEAD, KOTTI2_HEAD, "1"]

    served = serve(ini, request="/hello")
    assert (served.code, served.status) == (None, 200), served.err
    assert BODY in served.body
    assert versions(url, "kotti_alembic_version") == [KOTTI2_HEAD]
    assert "embedded_pages" in tables(url)
    assert hello_title(url) == [("Hello",)]
    assert cli_process(ini, "status").code == 0


def test_kotti209_database_auto_upgrade_off_stops_with_one_clear_error(kotti209_database, kotti_ini):
    url = kotti209_database
    ini = kotti_ini(url, addons=False)
    served = serve(ini, request="/hello")
    assert served.code not in (None, 0), served.err
    lowered = served.err.lower()
    assert "no such table" not in lowered and "does not exist" not in lowered, served.err
    last = served.err.strip().splitlines()[-1]
    assert "kotti:alembic" in last and KOTTI_HEAD in last and KOTTI2_HEAD in last, served.err
    assert "kotti-migrate" in last and ini.name in last and "upgrade" in last, last
    assert "auto_upgrade=true" in last.replace(" ", "").lower(), last
    # Nothing was changed: the operator can still choose either fix.
    assert versions(url, "kotti_alembic_version") == [KOTTI_HEAD]
    assert "embedded_pages" not in tables(url)
    assert hello_title(url) == [("Hello",)]
