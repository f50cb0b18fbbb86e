"""The entry point of a location's ``env.py``: works under kotti-migrate and plain ``alembic``.

An ``env.py`` created by ``kotti-migrate init`` calls :func:`run_environment`,
so the same folder works under ``kotti-migrate`` and under Alembic's own
``alembic -c <ini>`` command.  Under ``alembic`` this module is what the
CLI is under ``kotti-migrate``: it loads the site from the ini file and sets
up the ini's logging, as Alembic's own ``env.py`` does.

The machinery (Alembic's config, the default environment, step recording)
is :mod:`kotti_migrate.runner`.
"""

from __future__ import annotations

import os

from .cli import setup_logging
from .commands import Migrations
from .errors import MigrateError
from .kotti_site import bind_kotti_session
from .runner import ATTRIBUTE
from .runner import run_default_environment as run_default_environment  # re-exported for env.py files

__all__ = ["run_default_environment", "run_environment"]


def run_environment() -> None:
    """Entry point of an ``env.py``: works for kotti-migrate and plain alembic.

    Under ``kotti-migrate`` (and at start-up) the running
    :class:`~kotti_migrate.commands.Migrations` is handed over through the
    Alembic config.  Under ``alembic -c app.ini ...`` the app's settings are
    read from that ini file (the section named by the ``app`` option of
    ``[alembic]``, ``main`` by default), so both tools use the same
    database, version table and metadata.
    """
    from alembic import context
    from alembic.util import CommandError

    if ATTRIBUTE not in context.config.attributes:
        ini = context.config.config_file_name
        if not ini:
            raise CommandError(
                "kotti_migrate's env.py needs an ini file with the app's settings "
                "(alembic -c <ini>)"
            )
        # As Alembic's own env.py does: the ini file's logging configuration.
        setup_logging(str(ini))
        section = context.config.get_main_option("app", "main")
        try:
            migrations = Migrations.from_config_uri(f"{ini}#{section}")
            # Alembic keeps script_location as written: relative to the
            # working directory, not to the ini file.
            location = migrations.location(os.path.abspath(context.script.dir))
        except MigrateError as exc:  # Alembic shows a CommandError as one line
            raise CommandError(f"kotti_migrate: {exc}") from exc
        if migrations.uses_kotti:
            bind_kotti_session(migrations.engine)
        context.config.attributes[ATTRIBUTE] = (migrations, location)
    run_default_environment()
