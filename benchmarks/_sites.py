"""What the benchmarks build their sites from: add-on packages with long migration histories.

Imported by the scripts beside it (``python benchmarks/<script>.py`` puts
this folder first on ``sys.path``); not part of kotti_migrate.
"""

from __future__ import annotations

from pathlib import Path

#: One revision file as ``alembic revision`` writes it (an empty upgrade and downgrade).
REVISION = '''"""{message}

Revision ID: {rev}
Revises: {down}
Create Date: 2024-01-01 00:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = {rev!r}
down_revision = {down_rev!r}
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
'''


def write_package(src: Path, name: str, number: int, revisions: int, init: str = "") -> Path:
    """Package ``name`` under ``src`` with a chain of ``revisions`` in ``alembic/versions``.

    Revision ids are ``<number:02x><i:010x>``, unique across packages.
    :returns: the package's ``alembic`` folder (its migration location)
    """
    package = src / name
    versions = package / "alembic" / "versions"
    versions.mkdir(parents=True)
    (package / "__init__.py").write_text(init)
    down = None
    for i in range(revisions):
        rev = f"{number:02x}{i:010x}"
        message = f"step {i} of {name}"
        (versions / f"{rev}_step_{i}_of_{name}.py").write_text(
            REVISION.format(message=message, rev=rev, down=down or "", down_rev=down)
        )
        down = rev
    return package / "alembic"


def age(root: Path, seconds: float = 3600) -> None:
    """Date every file and folder below ``root`` ``seconds`` back, as installed files are.

    kotti_migrate does not cache what it read from a file or folder changed
    in the last seconds (it could still be being written): a benchmark that
    measures the cache must not time files it has just written.
    """
    import os
    import time

    old = time.time() - seconds
    for folder, _, files in os.walk(root):
        for name in files:
            os.utime(os.path.join(folder, name), (old, old))
        os.utime(folder, (old, old))
