"""kotti_migrate on real add-ons from PyPI (installed by the stacks' ``*-addons.txt``).

- kotti_pdf 0.4.3 and kotti_image 2.0.0 (Kotti 2.0.9): content types whose
  ``alembic/versions`` folder is empty; kotti_pdf ships Alembic's stock env.py.
- kotti2_iframe 3.0.3 (kotti2, package ``kotti_iframe``): a content type with
  an env.py of its own (on Kotti's ``DBSession``) and one revision, ``001``.
"""

from __future__ import annotations

import pytest
from helpers import boot, cli_process, failed, logged, started, tables, versions

ADDONS = "kotti_pdf.kotti_configure kotti_image.kotti_configure"


@pytest.mark.kotti
def test_content_type_addons_without_revisions_added_to_a_site(kotti_ini, db_url, booted_kotti_site):
    booted_kotti_site(db_url, addons=False)  # a Kotti site before the add-ons
    ini = kotti_ini(db_url, addons=False, kotti__configurators=ADDONS)

    result = boot(ini)
    started(result)
    assert {"pdfs", "images"} <= tables(db_url)
    info = logged(result.err, "INFO")
    for spec, table in (("kotti_pdf:alembic", "pdfs"), ("kotti_image:alembic", "images")):
        mine = [line for line in info if spec in line]
        new = f"{spec} is new to this database: its tables ({table}) are created"
        assert any(new in line for line in mine), result.err
        assert any(f"{spec} stamped at base (no revisions yet)" in line for line in mine), result.err
        assert not any("contents" in line or "nodes" in line or "files" in line for line in mine), mine
    assert versions(db_url, "kotti_pdf_alembic_version") == []  # kotti_pdf's stock env.py: Kotti's table

    again = boot(ini)
    started(again)
    assert "kotti_pdf:alembic has no revisions yet" in again.err
    assert "stamped" not in again.err and logged(again.err, "WARNING") == []
    status = cli_process(ini, "status")
    assert status.code == 0, status.out + status.err


@pytest.mark.kotti2
def test_kotti2_iframe_with_its_own_env_py(kotti_ini, db_url, booted_kotti_site, tmp_path):
    booted_kotti_site(db_url, addons=False)  # a Kotti site before the add-ons
    ini = kotti_ini(
        db_url, addons=False, kotti__configurators="kotti_iframe.kotti_configure",
        kotti_migrate__config_file=tmp_path / "site.ini",
    )  # fmt: skip
    result = boot(ini)
    started(result)
    assert versions(db_url, "kotti_iframe_alembic_version") == ["001"]
    new = "kotti_iframe:alembic is new to this database: its tables (iframe_contents) are created"
    assert new in result.err

    # Its own env.py (Kotti's DBSession.bind) runs under kotti-migrate, both ways.
    down = cli_process(ini, "downgrade", "--scripts=kotti_iframe:alembic", "--rev=base")
    assert down.code == 0, down.err
    assert "iframe_contents" not in tables(db_url)

    # A content type's table missing: the site cannot serve; one clear line.
    line = failed(boot(ini))
    assert "kotti_iframe:alembic is at base, behind its head 001" in line
    assert "table iframe_contents is missing" in line
    assert f"run: kotti-migrate {tmp_path / 'site.ini'} upgrade --scripts=kotti_iframe:alembic" in line

    up = cli_process(ini, "upgrade", "--scripts=kotti_iframe:alembic")
    assert up.code == 0, up.err
    assert "upgrade 001 (Create iframe_contents table)" in up.out
    assert versions(db_url, "kotti_iframe_alembic_version") == ["001"]
    started(boot(ini))
