"""The on-disk cache: index files, and the site index an at-head boot reads.

:mod:`kotti_migrate.scripts` writes one index file per location (heads,
revision ids, what the folder looked like); the helpers that name, write
and check such files are here.  So is the *site index*.

Start-up's usual case is a database at the head of every location.  To see
it, start-up needs each location resolved (folder, version table) and its
head revision(s): :mod:`kotti_migrate.locations` and the per-location
revision index of :mod:`kotti_migrate.scripts` give both, at the cost of a
few ``stat`` calls, one file read and, for a location with an ``env.py``,
reading that file's source, per location.  The *site index* written here
keeps the answer for a whole site in one small file, named after what the
answer depends on (the registered specs, the folder relative paths are
relative to, which of them follow Kotti's convention, the
``kotti_migrate.version_table.*`` settings), and is trusted while, for
every location:

- its spec still names the same folder (an asset spec's package is found
  where it was: ``importlib.util.find_spec``, no import);
- one ``stat`` of its ``versions/`` folder, of its ``env.py`` (which says
  the version table) and of each head revision file finds them unchanged;
- its per-location index is the one the site index was made from (a
  ``kotti-migrate`` command that checked every file and refreshed it
  makes the site index stale too).

It is written only from per-location indexes whose folder was already
settled (older than two seconds), so one ``stat`` of the folder stands for
its listing, exactly as the per-location index trusts it.  A site index
that is missing, stale or unreadable only sends start-up the long way.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Collection, Iterable, Mapping, Sequence

from .errors import LocationError
from .locations import Location, location_folder

#: Bumped when the cache layout changes.
CACHE_FORMAT = 4

#: Settings that change which version table a location uses.
_TABLE_SETTINGS = "kotti_migrate.version_table."



def folder_stat(path: str | os.PathLike[str]) -> tuple[int, int, int]:
    """(mtime_ns, inode, device) of the ``versions/`` folder of the location at ``path``."""
    st = os.stat(os.path.join(path, "versions"))
    return (st.st_mtime_ns, st.st_ino, st.st_dev)


def env_stat(path: str | os.PathLike[str]) -> list[int] | None:
    """[size, mtime_ns, inode] of the ``env.py`` of the location at ``path`` (None: none)."""
    try:
        env = os.stat(os.path.join(path, "env.py"))
    except OSError:
        return None
    return [env.st_size, env.st_mtime_ns, env.st_ino]


def file_stats(folder: str | os.PathLike[str], names: Iterable[str]) -> dict[str, list[int]]:
    """name -> [size, mtime_ns, inode] of those of ``names`` that exist in ``folder``."""
    result = {}
    folder_name = os.fspath(folder)
    for name in names:
        try:
            st = os.stat(os.path.join(folder_name, name))
        except OSError:
            continue
        result[name] = [st.st_size, st.st_mtime_ns, st.st_ino]
    return result


def cache_file(location: Location, cache_dir: Path | None) -> Path | None:
    """The index file of ``location`` in ``cache_dir`` (None: no cache)."""
    if cache_dir is None:
        return None
    return cache_dir / (hashlib.sha1(str(location.path).encode()).hexdigest() + ".json")


def write_cache(path: Path, data: dict) -> None:
    """Write ``data`` (with the cache format) to ``path`` atomically; errors only cost speed."""
    import tempfile

    payload = json.dumps({"format": CACHE_FORMAT, **data}, separators=(",", ":"))
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "w") as fh:
            fh.write(payload)
        os.replace(tmp, path)
    except OSError:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)



def site_key(
    specs: Sequence[str],
    here: str | os.PathLike[str] | None,
    kotti_specs: Collection[str],
    settings: Mapping[str, Any],
) -> str:
    """What a site's locations resolve from, as a file name."""
    overrides = sorted((k, str(v)) for k, v in settings.items() if k.startswith(_TABLE_SETTINGS))
    text = json.dumps([CACHE_FORMAT, list(specs), os.fspath(here or ""), sorted(kotti_specs), overrides])
    return "site-" + hashlib.sha1(text.encode()).hexdigest() + ".json"


def remember_site(
    cache_dir: Path | None, key: str, here: str | os.PathLike[str] | None, locations: Sequence[Location]
) -> bool:
    """Write the site index from the per-location indexes (when all are there and settled).

    :returns: True when it was written
    """
    if cache_dir is None:
        return False
    entries = []
    try:
        for loc in locations:
            index_file = cache_file(loc, cache_dir)
            if index_file is None:
                return False
            seen = _stat(index_file)
            data = json.loads(index_file.read_text())
            if data.get("format") != CACHE_FORMAT or not data.get("settled") or _stat(index_file) != seen:
                return False
            entries.append(
                {
                    "spec": loc.spec,
                    "base": location_folder(loc.spec, here),
                    "path": os.fspath(loc.path),
                    "package": loc.package,
                    "version_table": loc.version_table,
                    "table_reason": loc.table_reason,
                    "needs_ini": loc.needs_ini,
                    "folder": data["folder"],
                    "env": data["env"],
                    "head_files": data["head_files"],
                    "heads": data["heads"],
                    "index": [index_file.name, *seen],
                }
            )
    except (OSError, ValueError, KeyError, TypeError, AttributeError, LocationError):
        return False
    write_cache(cache_dir / key, {"locations": entries})
    return True


def _stat(path: str | os.PathLike[str]) -> list[int]:
    st = os.stat(path)
    return [st.st_size, st.st_mtime_ns, st.st_ino]


def read_site(
    cache_dir: Path | None, key: str, here: str | os.PathLike[str] | None
) -> list[tuple[Location, tuple[str, ...]]] | None:
    """The site's locations and their heads, when nothing they depend on changed; else None."""
    if cache_dir is None:
        return None
    try:
        folder = os.fspath(cache_dir)
        with open(os.path.join(folder, key), encoding="utf-8") as fh:
            data = json.load(fh)
        if data.get("format") != CACHE_FORMAT:
            return None
        found = []
        for entry in data["locations"]:
            base = entry["base"]
            if location_folder(entry["spec"], here) != base:
                return None  # the spec names another folder now (another install of its package)
            if list(folder_stat(base)) != entry["folder"] or env_stat(base) != entry["env"]:
                return None
            heads = entry["head_files"]
            if file_stats(os.path.join(base, "versions"), heads) != heads:
                return None
            name, *seen = entry["index"]
            if _stat(os.path.join(folder, name)) != seen:
                return None  # the location's own index was written again (a command refreshed it)
            location = Location(
                spec=entry["spec"],
                path=Path(entry["path"]),
                package=entry["package"],
                version_table=entry["version_table"],
                table_reason=entry["table_reason"],
                needs_ini=entry["needs_ini"],
            )
            found.append((location, tuple(entry["heads"])))
        return found
    except (OSError, ValueError, KeyError, TypeError, AttributeError, LocationError):
        return None
