"""What verbs return: plain data, rendered by the CLI (and read by start-up and tests)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .locations import Location

if TYPE_CHECKING:  # pragma: no cover

    from .catalog import IndexedRevision


@dataclass
class StepReport:
    """One revision applied (or stamped) by a run."""

    revision: str
    description: str
    direction: str
    seconds: float


@dataclass
class RunReport:
    """What one upgrade, downgrade or stamp did to one location.

    :ivar sql: the SQL emitted, in offline (``--sql``) mode
    :ivar output: what a location's own ``env.py`` wrote to stderr while it
        ran successfully (passwords masked); the CLI shows it
    """

    location: Location
    before: tuple[str, ...]
    after: tuple[str, ...]
    steps: list[StepReport]
    sql: str | None = None
    output: str = ""


@dataclass
class LocationStatus:
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
    pending: list[IndexedRevision] = field(default_factory=list)
    unknown: tuple[str, ...] = ()

    @property
    def up_to_date(self) -> bool:
        """True when the database is exactly at the head(s)."""
        return not self.pending and not self.unknown and self.current is not None


@dataclass
class CheckResult:
    """Differences between the models and the database, for one location."""

    location: Location
    diffs: list[Any]
