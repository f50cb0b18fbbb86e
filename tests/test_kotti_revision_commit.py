"""A revision that calls ``transaction.commit()`` itself, in a Kotti site (README: "Writing migrations").

kotti_migrate runs a Kotti site's revisions on Kotti's ``DBSession`` and
commits each with its version row, in a transaction of the migration's
connection that the session joins.  A revision that commits by itself (as
code written for Kotti's own tool sometimes does) loses nothing it wrote
through ``DBSession`` before that call (SQL or ORM), and commits nothing
early: should it fail after the call, all of it rolls back with its
version row.  These tests pin that behaviour (README documents it) on
SQLite and PostgreSQL.
"""

from __future__ import annotations

import pytest
from helpers import cli, one_error_line, query, versions, write_location

pytestmark = pytest.mark.kotti

R1, R2 = "7c0000000001", "7c0000000002"
TABLE = "tx_addon_alembic_version"
CREATE = """
op.create_table("tx_rows", sa.Column("id", sa.Integer, primary_key=True), sa.Column("name", sa.String(20)))
"""
#: Writes through DBSession (SQL and the ORM), commits the zope transaction, writes again.
COMMITS_ITSELF = """
import transaction
from kotti import DBSession
from kotti.resources import Document, get_root
DBSession.execute(sa.text("INSERT INTO tx_rows (id, name) VALUES (1, 'before')"))
get_root()["before-commit"] = Document(title="before")
transaction.commit()
DBSession.execute(sa.text("INSERT INTO tx_rows (id, name) VALUES (2, 'after')"))
get_root()["after-commit"] = Document(title="after")
"""


def upgrade(kotti_ini, url, tmp_path, body: str):
    folder = tmp_path / "pkgs" / "tx_addon" / "alembic"
    location = write_location(folder, [(R1, None, CREATE), (R2, R1, body)])
    ini = kotti_ini(url, kotti__alembic_dirs=f"kotti:alembic {location}")
    return cli(ini, "upgrade", f"--scripts={location}")


def written(url) -> tuple[list, list]:
    rows = [name for (name,) in query(url, "SELECT name FROM tx_rows ORDER BY id")]
    sql = "SELECT name FROM nodes WHERE name LIKE '%-commit' ORDER BY name"
    nodes = [name for (name,) in query(url, sql)]
    return rows, nodes


def test_what_a_revision_wrote_before_its_own_commit_is_kept(kotti_ini, db_url, booted_kotti_site, tmp_path):
    booted_kotti_site(db_url)
    result = upgrade(kotti_ini, db_url, tmp_path, COMMITS_ITSELF)
    assert result.code == 0, result.err
    assert versions(db_url, TABLE) == [R2]
    assert written(db_url) == (["before", "after"], ["after-commit", "before-commit"])


def test_a_revision_that_commits_then_fails_rolls_back_whole(kotti_ini, db_url, booted_kotti_site, tmp_path):
    booted_kotti_site(db_url)
    result = upgrade(kotti_ini, db_url, tmp_path, COMMITS_ITSELF + "raise RuntimeError('boom')\n")
    assert f"revision {R2} failed: RuntimeError: boom; the database is at {R1}" in one_error_line(result)
    assert versions(db_url, TABLE) == [R1]
    assert written(db_url) == ([], [])  # its own commit committed nothing of the step
