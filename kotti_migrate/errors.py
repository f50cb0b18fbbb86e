"""Exceptions raised by kotti_migrate.

Every failure a user can cause or meet (bad configuration, unknown
revision, unreachable database, failing migration) is a
:class:`MigrateError`.  The CLI prints its message as one line and exits
with :data:`EXIT_ERROR`; the start-up hook lets it propagate so that the
WSGI app factory (and ``pserve``) fails.
"""

from __future__ import annotations

#: Exit code of the CLI when everything went fine.
EXIT_OK = 0
#: Exit code of the CLI on any error.
EXIT_ERROR = 1
#: Exit code of ``kotti-migrate status`` / ``check`` when work is pending
#: (migrations not applied, or models that differ from the database).
EXIT_PENDING = 3


class MigrateError(Exception):
    """Base class of every error kotti_migrate reports to users."""


class ConfigurationError(MigrateError):
    """The settings, a location or the ini file are wrong."""


class LocationError(ConfigurationError):
    """A migration location cannot be resolved or is not usable."""


class RevisionError(MigrateError):
    """A revision is unknown, ambiguous, or the graph is broken."""


class DatabaseError(MigrateError):
    """The database cannot be reached or read."""


class LockTimeout(DatabaseError):
    """The start-up lock could not be acquired in time."""


class MigrationFailed(MigrateError):
    """A migration script raised (or its env.py swallowed an error).

    :ivar location: the location spec whose migration failed
    :ivar revision: the revision that failed, when known
    :ivar current: the revision(s) the database is at afterwards
    """

    def __init__(
        self,
        message: str,
        location: str,
        revision: str | None = None,
        current: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message)
        self.location = location
        self.revision = revision
        self.current = current
        #: What the location's env.py printed, shown by ``kotti-migrate -v``.
        self.details = ""
        #: What an upgrade did before it failed (:class:`~kotti_migrate.reports.RunReport` s): the
        #: locations it completed, then the failed one's revisions committed before the one that failed.
        self.reports: list = []


class UnknownDatabaseRevision(MigrateError):
    """The database is at a revision the code does not know."""


class MigrationsRequired(MigrateError):
    """The site cannot serve until pending migrations run (start-up stops)."""
