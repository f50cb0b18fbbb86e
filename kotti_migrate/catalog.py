"""The revision catalog: every revision of a location as read-only commands show it.

``status``, ``current``, ``heads``, ``history`` and ``list_all`` read what
they show (ids, down revisions, messages) from a :class:`RevisionCatalog`
that :mod:`kotti_migrate.scripts` keeps on disk, so they import no revision
file while nothing changed.  Plain classes with ``__slots__``: nothing to
build at import time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable

if TYPE_CHECKING:  # pragma: no cover
    from alembic.script import ScriptDirectory


def as_tuple(value: Any) -> tuple[str, ...]:
    """A revision attribute (None, one id or several) as a tuple of ids."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value)


class IndexedRevision:
    """One revision as the index knows it: what read-only commands show
    (``status``, ``heads``, ``history``, ``list_all``) without importing its file.

    Has the attributes of Alembic's :class:`~alembic.script.Script` those
    commands read: ``revision``, ``down_revision``, ``dependencies``,
    ``branch_labels``, ``doc``, ``path``.
    """

    __slots__ = ("revision", "down_revision", "dependencies", "branch_labels", "doc", "path", "requires")

    def __init__(
        self,
        revision: str,
        down_revision: str | tuple[str, ...] | None,
        dependencies: str | tuple[str, ...] | None,
        branch_labels: frozenset[str],
        doc: str,
        path: str,
        requires: tuple[str, ...],
    ) -> None:
        self.revision = revision
        self.down_revision = down_revision
        self.dependencies = dependencies
        self.branch_labels = branch_labels
        self.doc = doc
        self.path = path
        #: down revisions and (resolved) dependencies: what must be applied before this one
        self.requires = requires

    @property
    def _versioned_down_revisions(self) -> tuple[str, ...]:
        return as_tuple(self.down_revision)

    def __repr__(self) -> str:
        return f"IndexedRevision({self.revision!r})"


class RevisionCatalog:
    """Every revision of a location, newest first (Alembic's ``walk_revisions`` order).

    (A plain class, as :class:`IndexedRevision`: no dataclass machinery at import.)
    """

    __slots__ = ("heads", "revisions", "_by_id")

    def __init__(self, heads: tuple[str, ...], revisions: tuple[IndexedRevision, ...]) -> None:
        self.heads = heads
        self.revisions = revisions
        self._by_id = {r.revision: r for r in revisions}

    def get(self, revision: str) -> IndexedRevision:
        return self._by_id[revision]

    def ids(self) -> frozenset[str]:
        return frozenset(self._by_id)

    def applied(self, current: Iterable[str]) -> set[str]:
        """``current`` and everything an upgrade to it applies (ancestors, dependencies)."""
        by_id = self._by_id
        seen: set[str] = set()
        todo = [rev for rev in current if rev in by_id]
        while todo:
            rev = todo.pop()
            if rev in seen:
                continue
            seen.add(rev)
            todo.extend(r for r in by_id[rev].requires if r in by_id and r not in seen)
        return seen


def catalog_of(scripts: ScriptDirectory) -> RevisionCatalog:
    """The catalog of loaded ``scripts``."""
    entries = []
    for script in scripts.walk_revisions():
        entries.append(
            IndexedRevision(
                script.revision,
                script.down_revision,
                script.dependencies,
                frozenset(script.branch_labels or ()),
                script.doc or "",
                script.path,
                tuple(script._all_down_revisions),
            )
        )
    return RevisionCatalog(tuple(sorted(scripts.get_heads())), tuple(entries))
