"""What exists on disk: revision files, the revision graph, and a cheap index.

:class:`LocationScripts` is Alembic's :class:`~alembic.script.ScriptDirectory`
for one location; a location without its own ``env.py`` runs kotti_migrate's
default environment instead.

:func:`revision_index` answers "what are the heads, which revisions exist"
without importing the revision files when nothing changed on disk: the
answer is cached per location, keyed by a fingerprint of every revision
file's name, size and modification time.  Start-up uses it so that a site
whose database is at head pays for a directory listing, not for importing
thousands of revision modules.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from alembic.script import Script, ScriptDirectory
from alembic.script.revision import CycleDetected
from alembic.script.revision import RevisionError as AlembicRevisionError
from alembic.util import CommandError, load_python_file

from .errors import RevisionError
from .locations import Location

#: Bumped when the cache layout changes.
_CACHE_FORMAT = 1


class LocationScripts(ScriptDirectory):
    """The script directory of a location, with a default ``env.py``."""

    location: Location

    def run_env(self) -> None:
        """Run the location's ``env.py``, or kotti_migrate's default one."""
        env_py = self.location.env_py
        if env_py is not None:
            load_python_file(str(env_py.parent), env_py.name)
        else:
            from .environment import run_default_environment

            run_default_environment()

    def _generate_template(self, src: Path, dest: Path, **kw: object) -> None:
        # A location without a script.py.mako uses kotti_migrate's template.
        if not Path(src).is_file():
            src = Path(__file__).parent / "template" / "script.py.mako"
        super()._generate_template(src, dest, **kw)


def load_scripts(location: Location, file_template: str | None = None) -> LocationScripts:
    """Load the revision graph of ``location``.

    :raises RevisionError: a revision file fails to import, or the graph has
        a cycle or dangling reference
    """
    kwargs: dict = {"messaging_opts": {"quiet": True}}
    if file_template:
        kwargs["file_template"] = file_template
    scripts = LocationScripts(str(location.path), **kwargs)
    scripts.location = location
    try:
        # Walking the graph imports every revision file and validates links.
        scripts.revision_map.heads  # noqa: B018
        for _ in scripts.revision_map.iterate_revisions("heads", "base"):
            pass
    except CycleDetected as exc:
        raise RevisionError(
            f"location {location.spec!r}: cycle in the revision graph: {exc}"
        ) from exc
    except (CommandError, AlembicRevisionError) as exc:
        raise RevisionError(f"location {location.spec!r}: {exc}") from exc
    except Exception as exc:  # a revision module that fails to import
        raise RevisionError(
            f"location {location.spec!r}: revision file "
            f"{_failing_file(exc)} failed to import: {type(exc).__name__}: {exc}"
        ) from exc
    return scripts


def _failing_file(exc: BaseException) -> str:
    """Best guess at the revision file an import error came from."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return exc.filename
    tb = exc.__traceback__
    filename = "?"
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename
        if os.sep + "versions" + os.sep in name:
            filename = name
        tb = tb.tb_next
    return filename


def revision_label(script: Script) -> str:
    """``<rev> (<message>)`` for messages and tables."""
    doc = (script.doc or "").strip().splitlines()
    return f"{script.revision} ({doc[0]})" if doc and doc[0] else script.revision


@dataclass(frozen=True)
class RevisionIndex:
    """Heads and known revision ids of a location, as last seen on disk."""

    heads: tuple[str, ...]
    revisions: frozenset[str]


def _fingerprint(location: Location) -> str:
    digest = hashlib.sha1(str(location.path).encode())
    env_py = location.path / "env.py"
    entries: list[tuple[str, int, int]] = []
    for folder in (location.versions_path,):
        with os.scandir(folder) as it:
            for entry in it:
                if entry.name.endswith((".py", ".pyc")) and entry.is_file():
                    st = entry.stat()
                    entries.append((entry.name, st.st_size, st.st_mtime_ns))
    if env_py.exists():
        st = env_py.stat()
        entries.append(("env.py", st.st_size, st.st_mtime_ns))
    for name, size, mtime in sorted(entries):
        digest.update(f"{name}\0{size}\0{mtime}\n".encode())
    return digest.hexdigest()


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/kotti_migrate`` (``~/.cache/kotti_migrate``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(
        os.path.expanduser("~"), ".cache"
    )
    return Path(base) / "kotti_migrate"


def revision_index(location: Location, cache_dir: Path | None = None) -> RevisionIndex:
    """Heads and revision ids of ``location``, cached by file fingerprint.

    Any added, removed or edited revision file changes the fingerprint and
    so reloads the revision graph.  A cache that cannot be written (read
    only home, say) only costs speed.
    """
    fingerprint = _fingerprint(location)
    cache_file = None
    if cache_dir is not None:
        key = hashlib.sha1(str(location.path).encode()).hexdigest()
        cache_file = cache_dir / f"{key}.json"
        try:
            data = json.loads(cache_file.read_text())
            if data.get("format") == _CACHE_FORMAT and data.get("fingerprint") == fingerprint:
                return RevisionIndex(tuple(data["heads"]), frozenset(data["revisions"]))
        except (OSError, ValueError, KeyError, TypeError):
            pass
    scripts = load_scripts(location)
    index = RevisionIndex(
        heads=tuple(scripts.get_heads()),
        revisions=frozenset(s.revision for s in scripts.walk_revisions()),
    )
    if cache_file is not None:
        _write_cache(cache_file, fingerprint, index)
    return index


def _write_cache(cache_file: Path, fingerprint: str, index: RevisionIndex) -> None:
    payload = json.dumps(
        {
            "format": _CACHE_FORMAT,
            "fingerprint": fingerprint,
            "heads": list(index.heads),
            "revisions": sorted(index.revisions),
        }
    )
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache_file.parent, suffix=".tmp")
        with os.fdopen(fd, "w") as fh:
            fh.write(payload)
        os.replace(tmp, cache_file)
    except OSError:
        pass
