"""What went wrong in a run of a migration environment, told in one line.

:class:`StepRecorder` follows the steps Alembic runs (so a report can time
them, and an error can name the revision that failed even when an ``env.py``
swallowed it); :func:`failed` turns a failure into a :class:`MigrationFailed`.
"""

from __future__ import annotations

import io
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

from . import database
from .errors import MigrateError, MigrationFailed
from .locations import Location
from .reports import RunReport, StepReport

if TYPE_CHECKING:  # pragma: no cover
    from .site import Site

#: One line as each revision starts and finishes (``[2/3] ...``), at INFO.
progress_log = logging.getLogger("kotti_migrate.progress")


@dataclass
class Progress:
    """Logs one line as each revision of a run starts, and one as it finishes, on ``kotti_migrate.progress``.

    ``[2/3] kotti_addon:alembic: upgrade b2c3d4e5f6a7 (Create note_links) ...``, then the same
    with ``done in 0.004 s`` (or ``failed after 0.004 s``).  The CLI shows these INFO lines on
    stderr; at start-up they go wherever the ``kotti_migrate`` logger's do.
    """

    spec: str
    total: int
    number: int = 0
    #: The line of the step under way (made once per step).
    _line: str = ""

    def started(self, step: Any) -> None:
        self.number += 1
        self._line = ""
        if progress_log.isEnabledFor(logging.INFO):
            self._line = self._what(step)
            progress_log.info("%s ...", self._line)

    def finished(self, step: Any, seconds: float, outcome: str = "") -> None:
        if progress_log.isEnabledFor(logging.INFO):
            done = f"{outcome} after" if outcome else "done in"
            line = self._line or self._what(step)
            progress_log.info("%s %s %.3f s", line, done, seconds, extra={"step_done": not outcome})

    def _what(self, step: Any) -> str:
        revision = getattr(getattr(step, "revision", None), "revision", None) or "?"
        direction = "upgrade" if getattr(step, "is_upgrade", True) else "downgrade"
        lines = (getattr(step, "doc", None) or "").strip().splitlines()
        about = f" ({lines[0]})" if lines else ""
        return f"[{self.number}/{self.total}] {self.spec}: {direction} {revision}{about}"


@dataclass
class StepRecorder:
    """Follows the steps Alembic runs, to time them and find the one that failed.

    ``wrap`` wraps the function handed to the environment.  Alembic asks it
    for the steps one at a time and runs each (migration, version table
    update) before asking for the next, so a step is complete when the next
    one is asked for.  A step handed out but never completed is the one that
    failed, even when an ``env.py`` swallowed the exception.
    """

    applied: list[StepReport] = field(default_factory=list)
    pending_step: Any = None
    #: True once Alembic asked for the steps: the env.py ran its migrations.
    called: bool = False
    #: True once Alembic asked for every step: the run got to its end.
    finished: bool = False
    #: What a successful run's own env.py wrote to stderr (passwords masked).
    output: str = ""
    #: Logs each step as it starts and finishes (upgrades and downgrades).
    progress: Progress | None = None
    _started: float = 0.0

    def wrap(self, fn: Callable[[Any, Any], Iterable[Any]]) -> Callable[[Any, Any], Iterator[Any]]:
        def steps(heads: Any, context: Any) -> Iterator[Any]:
            self.called = True
            for step in fn(heads, context) or ():
                self.pending_step = step
                self._started = time.perf_counter()
                if self.progress is not None:
                    self.progress.started(step)
                yield step
                self._completed(step)
            self.finished = True

        return steps

    def stopped(self) -> None:
        """The run ended in an error: log the step it stopped in as failed."""
        if self.progress is not None and self.pending_step is not None:
            self.progress.finished(self.pending_step, time.perf_counter() - self._started, "failed")

    def _completed(self, step: Any) -> None:
        script = getattr(step, "revision", None)  # a revision's step (Alembic's RevisionStep)
        if script is not None and getattr(script, "revision", None):
            revs, is_stamp = (script.revision,), False  # what step.info (built per access) would say
            direction = "upgrade" if step.is_upgrade else "downgrade"
        else:
            info = step.info
            is_stamp = info.is_stamp
            if is_stamp:
                revs, direction = info.destination_revision_ids, "stamp"
            else:
                revs = info.up_revision_ids
                direction = "upgrade" if info.is_upgrade else "downgrade"
        doc = "" if is_stamp else (getattr(step, "doc", None) or "")
        lines = doc.strip().splitlines()
        seconds = time.perf_counter() - self._started
        self.applied.append(
            StepReport(
                revision=", ".join(revs) or "base",
                description=lines[0] if lines else "",
                direction=direction,
                seconds=seconds,
            )
        )
        if self.progress is not None:
            self.progress.finished(step, seconds)
        self.pending_step = None

    @property
    def failed_revision(self) -> str | None:
        """The revision of the step that started but never completed."""
        step = self.pending_step
        if step is None:
            return None
        revision = getattr(step, "revision", None)
        if revision is not None:
            return revision.revision
        return ", ".join(getattr(step, "to_revisions", ()) or ()) or "stamp"


def failed(
    site: Site,
    location: Location,
    recorder: StepRecorder,
    exc: BaseException | None,
    sql: bool,
    captured: io.StringIO,
) -> MigrationFailed:
    """The error for a run that failed (``exc``), or whose env.py swallowed the error (``None``).

    Names the revision that failed, the reason (passwords masked) and where
    the database is now; ``details`` holds what the env.py printed.
    """
    revision = recorder.failed_revision
    output = captured.getvalue()
    ran_nothing = exc is None and not recorder.called and not output.strip()
    backend = site.engine.url.get_backend_name()
    # MySQL and MariaDB commit DDL by itself: an env.py's rollback does not undo it (see below).
    rolled_back = "" if backend in ("mysql", "mariadb") else " and rolled back"
    if exc is None:
        last = _last_error_line(output)
        if last:
            reason = f"{last} (reported{rolled_back} by its env.py)"
        elif ran_nothing:
            reason = (
                f"its env.py ({location.env_py}) ran no migrations: it returned without "
                f"calling context.run_migrations() (check the conditions it runs them under)"
            )
        else:
            reason = f"its env.py handled the error{rolled_back}"
        reason = database.scrub(reason, site.engine.url)
    else:
        text = str(exc).strip().splitlines()
        reason = f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")
        reason = database.scrub(reason, site.engine.url)
    current: tuple[str, ...] = ()
    where = ""
    if not sql:
        try:
            current = site.current_revisions(location) or ()
            where = f"; the database is at {', '.join(current) or 'base'}"
        except MigrateError:
            pass
    if revision:
        what = f"revision {revision}"
    elif sql and location.env_py is not None:
        what = "its env.py in offline (--sql) mode"
    else:
        what = "the migration environment"
    if revision and not sql and backend in ("mysql", "mariadb"):
        # Their DDL commits by itself: the failed revision's schema
        # changes up to the error stay, without its version row.
        previous = ", ".join(current) or "base"
        direction = "upgrade" if getattr(recorder.pending_step, "is_upgrade", True) else "downgrade"
        where += (
            f"; {backend} cannot roll back schema changes, so revision {revision} may be "
            f"half-applied: inspect the database and undo what it did, make sure the version "
            f"table says {previous} ("
            + site.command(f"stamp --scripts={location.spec} --purge --rev {previous}")
            + f"), fix the revision and {direction} again"
        )
    elif revision and not sql:
        direction = "upgrade" if getattr(recorder.pending_step, "is_upgrade", True) else "downgrade"
        where += f"; fix revision {revision} and {direction} again"
    failed = "" if ran_nothing else f"{what} failed: "
    error = MigrationFailed(
        f"location {location.spec!r}: {failed}{reason}{where}",
        location=location.spec,
        revision=revision,
        current=current,
    )
    error.details = database.scrub(output, site.engine.url)
    return error


def _last_error_line(output: str) -> str:
    """The exception line of the last traceback in ``output``."""
    for line in reversed(output.strip().splitlines()):
        if line and not line[0].isspace() and not line.startswith(("[SQL", "(Background", "[parameters")):
            if "Error" in line or "Exception" in line or ":" in line:
                return line.strip()
    return ""


def committed_before(
    scripts: Any, location: Location, before: tuple[str, ...], error: MigrationFailed
) -> RunReport:
    """What a failed upgrade of ``location`` committed before ``error`` stopped it.

    Told by the version table (``error.current``, read after the failure):
    the revisions between ``before`` and it, in the order they ran.
    """
    after = tuple(error.current)
    steps = []
    if after and set(after) != set(before):
        try:
            revisions = list(scripts.iterate_revisions(after, before or "base"))[::-1]
        except Exception:  # a graph Alembic cannot walk: the line still says where the database is
            revisions = []
        for script in revisions:
            lines = (script.doc or "").strip().splitlines()
            steps.append(StepReport(script.revision, lines[0] if lines else "", "upgrade", 0.0))
    return RunReport(location, before, after, steps, failed=error.revision or "?")
