"""Migration environment managed by kotti_migrate.

The same folder works with ``kotti-migrate <ini> upgrade --scripts=...`` and
with Alembic's own ``alembic -c <ini> ...``: either way the migrations run
against the app's database (``sqlalchemy.url``), are recorded in the
``<package>_alembic_version`` table and autogenerate compares against the
app's metadata.
"""

from kotti_migrate.environment import run_environment

run_environment()
