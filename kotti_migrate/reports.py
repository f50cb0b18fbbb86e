"""What verbs return: plain data, rendered by the CLI (and read by start-up and tests)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .locations import Location
from .values import Value, factory

if TYPE_CHECKING:  # pragma: no cover

    from .catalog import IndexedRevision


class StepReport(Value):
    """One revision applied (or stamped) by a run."""

    revision: str
    description: str
    direction: str
    seconds: float


class RunReport(Value):
    """What one upgrade, downgrade or stamp did to one location.

    :ivar sql: the SQL emitted, in offline (``--sql``) mode
    :ivar output: what a location's own ``env.py`` wrote to stderr while it
        ran successfully (passwords masked); the CLI shows it
    :ivar failed: the revision that failed (the run stopped there; ``steps``
        were committed before it, ``after`` is where the database is)
    """

    location: Location
    before: tuple[str, ...]
    after: tuple[str, ...]
    steps: list[StepReport]
    sql: str | None = None
    output: str = ""
    failed: str | None = None


class LocationStatus(Value):
    """Where one location stands.

    :ivar current: revisions in the version table; None when it is missing
    :ivar heads: head revisions on disk
    :ivar pending: revisions an upgrade to heads would apply, newest first
        (:class:`~kotti_migrate.catalog.IndexedRevision`: ``revision``, ``doc``...)
    :ivar unknown: revisions in the database that the code does not know
    """

    location: Location
    current: tuple[str, ...] | None
    heads: tuple[str, ...]
    pending: list[IndexedRevision] = factory(list)
    unknown: tuple[str, ...] = ()

    @property
    def up_to_date(self) -> bool:
        """True when the database is exactly at the head(s)."""
        return not self.pending and not self.unknown and self.current is not None


class CheckResult(Value):
    """Differences between the models and the database, for one location."""

    location: Location
    diffs: list[Any]
