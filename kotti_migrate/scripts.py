"""What exists on disk, cheaply: an index of each location's revisions.

The revision graph itself (Alembic's ``ScriptDirectory``) is
:mod:`kotti_migrate.graph`; this module imports it only when the index has
to be rebuilt.

:func:`revision_index` answers "what are the heads, which revisions exist"
without importing the revision files when nothing changed on disk: the
answer is cached per location and used while the folder listing and the
head files are unchanged.  Start-up uses it so that a site whose database
is at head pays for a directory listing, not for importing thousands of
revision modules.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from .locations import Location

if TYPE_CHECKING:  # pragma: no cover
    from alembic.script import Script

    from .graph import LocationScripts

#: Bumped when the cache layout changes.
_CACHE_FORMAT = 3

#: Revision files modified less than this long ago (ns) are not cached: a
#: second edit within the same tick of the file system clock, keeping the
#: size, would not change the fingerprint.  Covers coarse clocks (FAT: 2 s).
_SETTLE_NS = 2_000_000_000


def revision_label(script: Script) -> str:
    """``<rev> (<message>)`` for messages and tables."""
    doc = (script.doc or "").strip().splitlines()
    return f"{script.revision} ({doc[0]})" if doc and doc[0] else script.revision


@dataclass(frozen=True)
class RevisionIndex:
    """Heads and known revision ids of a location, as last seen on disk."""

    heads: tuple[str, ...]
    revisions: frozenset[str]


def _listing(location: Location) -> str:
    """Digest of the folder: revision file names and inode numbers, the
    folder's modification time, ``env.py``.  No ``stat`` per revision file:
    names and inodes come with the directory listing itself.

    Catches a file added, removed, renamed or replaced (as editors, version
    control and installers write files: a new inode).
    """
    entries: list[str] = []
    with os.scandir(location.versions_path) as it:
        for entry in it:
            if entry.name.endswith((".py", ".pyc")) and entry.is_file():
                entries.append(f"{entry.name}\0{entry.inode()}")
    entries.sort()
    folder = os.stat(location.versions_path)
    entries.append(f"\0{folder.st_mtime_ns}")
    try:
        env = os.stat(location.path / "env.py")
        entries.append(f"\0env.py\0{env.st_size}\0{env.st_mtime_ns}\0{env.st_ino}")
    except OSError:
        pass
    return hashlib.sha1("\n".join(entries).encode()).hexdigest()


def _file_stats(folder: Path, names: Iterable[str]) -> dict[str, list[int]]:
    result = {}
    for name in names:
        try:
            st = os.stat(folder / name)
        except OSError:
            continue
        result[name] = [st.st_size, st.st_mtime_ns, st.st_ino]
    return result


def revision_index(location: Location, cache_dir: Path | None = None) -> RevisionIndex:
    """Heads and revision ids of ``location``, cached on disk.

    The cached answer is used while the folder listing (names, inodes,
    the folder's modification time, ``env.py``) and the head revision files
    (size, modification time, inode) are unchanged: a file added, removed,
    renamed or replaced (how editors, version control and installers write
    files) and any edit of a head file reload the revision graph.  An edit
    in place (same inode) of an older revision file is not seen until one
    of those happens or a ``kotti-migrate`` command, which always reads the
    files, refreshes the index.

    A cache that cannot be read or written only costs speed.
    """
    cache_file = _cache_file(location, cache_dir)
    listing = None
    if cache_file is not None:
        listing = _listing(location)
        index = _read_cache(cache_file, location, listing)
        if index is not None:
            return index
    from .graph import load_scripts  # imports alembic.script: only when the cache misses

    scripts = load_scripts(location)
    return remember_index(scripts, cache_dir, listing)


def folder_listing(location: Location, cache_dir: Path | None) -> str | None:
    """The listing to hand to :func:`remember_index`, taken *before* loading."""
    return _listing(location) if cache_dir is not None else None


def remember_index(
    scripts: LocationScripts, cache_dir: Path | None, listing: str | None = None
) -> RevisionIndex:
    """The index of loaded ``scripts``, written to the cache for start-up.

    ``listing`` is the folder listing taken before the scripts were loaded,
    so that a file added meanwhile makes the cache entry stale, not wrong.
    """
    location = scripts.location
    index = RevisionIndex(
        heads=tuple(scripts.get_heads()),
        revisions=frozenset(s.revision for s in scripts.walk_revisions()),
    )
    cache_file = _cache_file(location, cache_dir)
    if cache_file is None:
        return index
    head_files = [os.path.basename(scripts.get_revision(h).path) for h in index.heads]
    heads = _file_stats(location.versions_path, head_files)
    # A head file written within the file system clock's tick could change
    # again keeping size and time: such a file is not cached yet.
    if all(stats[1] < time.time_ns() - _SETTLE_NS for stats in heads.values()):
        _write_cache(
            cache_file,
            {
                "listing": listing or _listing(location),
                "head_files": heads,
                "heads": list(index.heads),
                "revisions": " ".join(sorted(index.revisions)),
            },
        )
    return index


def _cache_file(location: Location, cache_dir: Path | None) -> Path | None:
    if cache_dir is None:
        return None
    return cache_dir / (hashlib.sha1(str(location.path).encode()).hexdigest() + ".json")


def _read_cache(cache_file: Path, location: Location, listing: str) -> RevisionIndex | None:
    """The cached index when the folder and the head files are unchanged."""
    try:
        data = json.loads(cache_file.read_text())
        if data.get("format") != _CACHE_FORMAT or data["listing"] != listing:
            return None
        heads = data["head_files"]
        if _file_stats(location.versions_path, heads) != heads:
            return None
        return RevisionIndex(tuple(data["heads"]), frozenset(data["revisions"].split()))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _write_cache(cache_file: Path, data: dict) -> None:
    payload = json.dumps({"format": _CACHE_FORMAT, **data})
    tmp = None
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache_file.parent, suffix=".tmp")
        with os.fdopen(fd, "w") as fh:
            fh.write(payload)
        os.replace(tmp, cache_file)
    except OSError:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
