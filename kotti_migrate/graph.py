"""The revision graph of a location: Alembic's :class:`~alembic.script.ScriptDirectory`.

Importing this module imports ``alembic.script`` (and with it Mako): the
start-up path of a site at head does not need it and imports it only when a
revision graph has to be loaded (:func:`load_scripts`).
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Callable, Sequence

from alembic.script import ScriptDirectory
from alembic.script.revision import CycleDetected, MultipleHeads, ResolutionError
from alembic.script.revision import RevisionError as AlembicRevisionError
from alembic.util import CommandError, load_python_file, to_tuple

from .errors import RevisionError
from .locations import Location

#: Alembic's errors about a revision graph or a revision name.
GRAPH_ERRORS = (CommandError, AlembicRevisionError)


class LocationScripts(ScriptDirectory):
    """The script directory of a location, with a default ``env.py``."""

    location: Location

    def run_env(self) -> None:
        """Run the location's own ``env.py`` (the runner runs the default one for a location without)."""
        env_py = self.location.env_py
        if env_py is None:
            raise RevisionError(f"location {self.location.spec!r} has no env.py of its own")
        load_python_file(str(env_py.parent), env_py.name)

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
        with warnings.catch_warnings():
            # Alembic warns about a missing down revision, then fails with a
            # KeyError: reported below as one error.
            warnings.filterwarnings("ignore", message=r"Revision .* is not present")
            # Two files with the same revision id: Alembic warns and keeps one.
            warnings.filterwarnings("error", message=r"Revision .* is present more than once")
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
        dangling = _dangling_reference(scripts, exc) or _duplicate_revision(scripts, exc)
        if dangling:
            raise RevisionError(f"location {location.spec!r}: {dangling}") from exc
        filename = _failing_file(exc)
        what = f"revision file {filename} failed to import" if filename != "?" else "cannot load revisions"
        raise RevisionError(f"location {location.spec!r}: {what}: {type(exc).__name__}: {exc}") from exc
    return scripts


def _dangling_reference(scripts: ScriptDirectory, exc: BaseException) -> str | None:
    """For the KeyError of a missing down revision: which revision refers to it."""
    if not isinstance(exc, KeyError) or not exc.args:
        return None
    missing = exc.args[0]
    try:
        referrers = [
            script
            for script in scripts._load_revisions()
            if missing in to_tuple(script.down_revision, ()) + to_tuple(script.dependencies, ())
        ]
    except Exception:
        return None
    if not referrers:
        return None
    names = ", ".join(f"{s.revision} ({s.path})" for s in referrers)
    return f"revision {names} refers to {missing!r}, which does not exist"


def _duplicate_revision(scripts: ScriptDirectory, exc: BaseException) -> str | None:
    """For Alembic's "present more than once" warning: the files sharing an id."""
    if not isinstance(exc, UserWarning) or "more than once" not in str(exc):
        return None
    seen: dict[str, list[str]] = {}
    try:
        for script in scripts._load_revisions():
            seen.setdefault(script.revision, []).append(os.path.basename(script.path))
    except Exception:
        return None
    for revision, files in seen.items():
        if len(files) > 1:
            return f"revision {revision} is defined by several files: {', '.join(sorted(files))}"
    return None


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


def resolve(scripts: ScriptDirectory, location: Location, revision: str) -> None:
    """Check that a revision name exists, with a clear error otherwise."""
    if revision in ("head", "heads", "base") or revision.startswith(("+", "-")) or ":" in revision:
        return
    for part in revision.replace("@", " ").split():
        if part in ("head", "heads", "base") or part.lstrip("+-").isdigit():
            continue
        part = re.sub(r"(?<=\w)[+-]\d+$", "", part)  # ae10+2: relative to ae10 (Alembic's syntax)
        try:
            found = scripts.revision_map.get_revisions(part)
        except MultipleHeads as exc:
            raise RevisionError(f"location {location.spec!r}: {exc}") from None
        except ResolutionError as exc:
            message = str(exc)
            if "ambiguous" in message.lower() or "multiple" in message.lower():
                raise RevisionError(
                    f"location {location.spec!r}: revision prefix {part!r} is ambiguous"
                ) from None
            raise RevisionError(
                f"location {location.spec!r}: unknown revision {part!r}"
            ) from None
        if not found:
            raise RevisionError(f"location {location.spec!r}: unknown revision {part!r}")


def check_rows(
    scripts: LocationScripts, location: Location, current: Sequence[str], command: Callable[[str], str]
) -> None:
    """Refuse a version table whose rows contradict each other (one an ancestor of another).

    Alembic keeps one row per branch; two rows on one line of history
    (left by a tool that failed halfway, or by hand) would end in an
    Alembic internal error.
    """
    if len(current) < 2:
        return
    try:
        lines = {
            rev: {s.revision for s in scripts.revision_map.iterate_revisions(rev, "base") if s}
            for rev in current
        }
    except (CommandError, AlembicRevisionError):
        return  # unknown revisions: reported where they are met
    for older in current:
        for newer in current:
            if older != newer and older in lines[newer]:
                raise RevisionError(
                    f"location {location.spec!r}: its version table {location.version_table} "
                    f"has {len(current)} rows ({', '.join(current)}) but {older} is an ancestor "
                    f"of {newer}, and one line of history has one current revision; check which "
                    f"revision the schema is at and record only that one: "
                    + command(f"stamp --scripts={location.spec} --purge --rev {newer}")
                )
