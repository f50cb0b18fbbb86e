"""What exists on disk, cheaply: an index of each location's revisions.

The revision graph itself (Alembic's ``ScriptDirectory``) is
:mod:`kotti_migrate.graph`; this module imports it only when the index has
to be rebuilt.

:func:`revision_index` answers "what are the heads, which revisions exist"
without importing the revision files when nothing changed on disk: the
answer is cached per location and used while the folder and the head
files are unchanged.  Start-up uses it so that a site whose database is at
head pays for a few ``stat`` calls, not for importing thousands of revision
modules.  :func:`revision_catalog` is the fuller index read-only commands
use (:mod:`kotti_migrate.catalog`: every revision's id, down revisions,
message), checked against a ``stat`` of every revision file.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, AbstractSet

from .cache import CACHE_FORMAT, cache_file, env_stat, file_stats, folder_stat, write_cache
from .locations import Location
from .values import SplitSet, Value

if TYPE_CHECKING:  # pragma: no cover
    from alembic.script import Script

    from .catalog import IndexedRevision, RevisionCatalog
    from .graph import LocationScripts

#: Revision files modified less than this long ago (ns) are not cached: a
#: second edit within the same tick of the file system clock, keeping the
#: size, would not change the fingerprint.  Covers coarse clocks (FAT: 2 s).
_SETTLE_NS = 2_000_000_000


def revision_label(script: Script | IndexedRevision) -> str:
    """``<rev> (<message>)`` for messages and tables."""
    doc = (script.doc or "").strip().splitlines()
    return f"{script.revision} ({doc[0]})" if doc and doc[0] else script.revision


class RevisionIndex(Value, frozen=True):
    """Heads and known revision ids of a location, as last seen on disk (from the cache: split when used)."""

    heads: tuple[str, ...]
    revisions: AbstractSet[str]


class Snapshot:
    """What the folder of a location looks like, taken before its revisions are loaded.

    :ivar listing: digest of names and inodes of the revision files, the
        folder's modification time, ``env.py``
    :ivar folder: the folder's (mtime_ns, inode, device): one ``stat``
    :ivar env: size, mtime_ns, inode of ``env.py`` (None: none)
    :ivar files: name -> [size, mtime_ns, inode] of every revision file (None: not taken)
    """

    __slots__ = ("listing", "folder", "env", "files")

    def __init__(
        self,
        listing: str,
        folder: tuple[int, int, int],
        env: list[int] | None,
        files: dict[str, list[int]] | None = None,
    ) -> None:
        self.listing = listing
        self.folder = folder
        self.env = env
        self.files = files


def _revision_files(location: Location, with_stats: bool) -> tuple[list[str], dict[str, list[int]]]:
    """Entries of the versions folder (``name\0inode``) and, if asked, each file's stats."""
    entries: list[str] = []
    stats: dict[str, list[int]] = {}
    with os.scandir(location.versions_path) as it:
        for entry in it:
            if entry.name.endswith((".py", ".pyc")) and entry.is_file():
                entries.append(f"{entry.name}\0{entry.inode()}")
                if with_stats:
                    try:
                        st = entry.stat()
                    except OSError:
                        continue
                    stats[entry.name] = [st.st_size, st.st_mtime_ns, st.st_ino]
    return entries, stats


def _listing(location: Location, with_stats: bool = False) -> Snapshot:
    """The folder as it is: revision file names and inode numbers, the
    folder's modification time, ``env.py``; with ``with_stats`` also the
    size, modification time and inode of every revision file.

    Catches a file added, removed, renamed or replaced (as editors, version
    control and installers write files: a new inode).
    """
    folder = folder_stat(location.path)
    env = env_stat(location.path)
    entries, stats = _revision_files(location, with_stats)
    entries.sort()
    entries.append(f"\0{folder[0]}")
    if env is not None:
        entries.append(f"\0env.py\0{env[0]}\0{env[1]}\0{env[2]}")
    digest = hashlib.sha1("\n".join(entries).encode()).hexdigest()
    return Snapshot(digest, folder, env, stats if with_stats else None)


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/kotti_migrate`` (``~/.cache/kotti_migrate``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "kotti_migrate"


#: ``create_table("name"`` (``op.create_table``, a batch's or a helper's of the same name).
_CREATE_TABLE = r"""create_table\(\s*(?:name\s*=\s*)?["']([A-Za-z_][A-Za-z0-9_]*)["']"""


def created_tables(location: Location) -> frozenset[str]:
    """Names of the tables the revision files of ``location`` create (``create_table("name", ...)``
    with a literal name), read from their source: never imported.  For start-up's decision about a
    location new to the database; a name built at run time is not seen."""
    import re

    names: set[str] = set()
    with os.scandir(location.versions_path) as it:
        for entry in it:
            if entry.name.endswith(".py") and entry.is_file():
                try:
                    with open(entry.path, encoding="utf-8") as fh:
                        names.update(re.findall(_CREATE_TABLE, fh.read()))
                except (OSError, UnicodeDecodeError):
                    continue
    return frozenset(names)


def revision_index(location: Location, cache_dir: Path | None = None) -> RevisionIndex:
    """Heads and revision ids of ``location``, cached on disk (start-up's view).

    The cached answer is used while the versions folder is unchanged and
    the head revision files (size, modification time, inode) and ``env.py``
    are: a file added, removed, renamed or replaced (how editors, version
    control and installers write files) changes the folder's modification
    time, and any edit of a head file is seen.  When the folder's
    modification time was already older than two seconds when the index
    was written (so no later change can share it, even on a coarse file
    system clock), one ``stat`` of the folder stands for its listing;
    otherwise the listing (names and inodes) is compared.

    Not seen until a ``kotti-migrate`` command (which checks every file)
    refreshes the index: an older revision file edited in place, or replaced
    by a tool that also restores the folder's modification time (``rsync
    -a``, ``cp -p``, ``tar``).

    A cache that cannot be read or written only costs speed.
    """
    index_file = cache_file(location, cache_dir)
    snapshot = None
    if index_file is not None:
        index = _read_cache(index_file, location)
        if index is not None:
            return index
        snapshot = _listing(location, with_stats=True)
    from .graph import load_scripts  # imports alembic.script: only when the cache misses

    scripts = load_scripts(location)
    return remember_index(scripts, cache_dir, snapshot)


def revision_catalog(location: Location, cache_dir: Path | None) -> RevisionCatalog | None:
    """The cached catalog of ``location`` when every revision file is as it was
    (names, sizes, modification times, inodes; ``env.py``), else None.

    For read-only commands: one ``stat`` per revision file, no import.
    """
    from .catalog import IndexedRevision, RevisionCatalog, as_tuple
    index_file = cache_file(location, cache_dir)
    if index_file is None:
        return None
    try:
        data = json.loads(index_file.with_suffix(".revisions.json").read_text())
        if data.get("format") != CACHE_FORMAT:
            return None
        snapshot = _listing(location, with_stats=True)
        if data["files"] != snapshot.files or data["env"] != snapshot.env:
            return None
        folder = os.fspath(location.versions_path)
        join = os.path.join
        entries = tuple(
            IndexedRevision(
                rev,
                tuple(down) if isinstance(down, list) else down,
                tuple(deps) if isinstance(deps, list) else deps,
                frozenset(labels) if labels else frozenset(),
                doc,
                join(folder, name),
                # requires: the down revisions unless dependencies add to them
                tuple(requires) if requires is not None else as_tuple(down),
            )
            for rev, down, deps, labels, doc, name, requires in data["revisions"]
        )
        return RevisionCatalog(tuple(data["heads"]), entries)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def folder_listing(location: Location, cache_dir: Path | None) -> Snapshot | None:
    """The snapshot to hand to :func:`remember_index`, taken *before* loading."""
    return _listing(location, with_stats=True) if cache_dir is not None else None


def remember_index(
    scripts: LocationScripts, cache_dir: Path | None, listing: Snapshot | None = None
) -> RevisionIndex:
    """The index of loaded ``scripts``, written to the cache for start-up and commands.

    ``listing`` is the snapshot of the folder taken before the scripts were
    loaded, so that a file added meanwhile makes the cache entry stale, not wrong.
    """
    location = scripts.location
    index = RevisionIndex(
        heads=tuple(scripts.get_heads()),
        revisions=frozenset(s.revision for s in scripts.walk_revisions()),
    )
    index_file = cache_file(location, cache_dir)
    if index_file is None:
        return index
    snapshot = listing or _listing(location, with_stats=True)
    head_files = [os.path.basename(scripts.get_revision(h).path) for h in index.heads]
    heads = file_stats(location.versions_path, head_files)
    settled = time.time_ns() - _SETTLE_NS
    # A head file written within the file system clock's tick could change
    # again keeping size and time: such a file is not cached yet.
    if all(stats[1] < settled for stats in heads.values()):
        write_cache(
            index_file,
            {
                "listing": snapshot.listing,
                "folder": list(snapshot.folder),
                # the folder's mtime cannot be shared by a later change: one stat will do
                "settled": snapshot.folder[0] < settled,
                "env": snapshot.env,
                "head_files": heads,
                "heads": list(index.heads),
                "revisions": " ".join(sorted(index.revisions)),
            },
        )
    files = snapshot.files
    if files is not None and all(stats[1] < settled for stats in files.values()):
        from .catalog import as_tuple, catalog_of

        catalog = catalog_of(scripts)
        write_cache(
            index_file.with_suffix(".revisions.json"),
            {
                "files": files,
                "env": snapshot.env,
                "heads": list(catalog.heads),
                "revisions": [
                    [
                        r.revision,
                        list(r.down_revision) if isinstance(r.down_revision, tuple) else r.down_revision,
                        list(r.dependencies) if isinstance(r.dependencies, (tuple, list)) else r.dependencies,
                        sorted(r.branch_labels),
                        r.doc,
                        os.path.basename(r.path),
                        list(r.requires) if r.requires != as_tuple(r.down_revision) else None,
                    ]
                    for r in catalog.revisions
                ],
            },
        )
    return index


def _read_cache(path: Path, location: Location) -> RevisionIndex | None:
    """The cached index when the folder, ``env.py`` and the head files are unchanged."""
    try:
        data = json.loads(path.read_text())
        if data.get("format") != CACHE_FORMAT:
            return None
        folder = folder_stat(location.path)
        if not (data["settled"] and data["folder"] == list(folder)):
            if data["listing"] != _listing(location).listing:
                return None
            if not data["settled"] and folder[0] < time.time_ns() - _SETTLE_NS:
                # Written while the folder was new; now one stat of it will do (and a site index).
                write_cache(path, {**data, "folder": list(folder), "settled": True})
        elif data["env"] != env_stat(location.path):
            return None
        heads = data["head_files"]
        if file_stats(location.versions_path, heads) != heads:
            return None
        return RevisionIndex(tuple(data["heads"]), SplitSet(data["revisions"]))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
