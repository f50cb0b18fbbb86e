"""Running a location's migration environment: Alembic's config, ``env.py`` or the default one.

A location with its own ``env.py`` runs it; one without runs
:func:`run_default_environment`, which connects to the app's database
(``sqlalchemy.url``), records the revision in the location's version table
and compares against the app's metadata for autogenerate.  Both work online
and offline (``--sql``).  Output an ``env.py`` writes is captured, never
printed: it ends in the report or in an error's details.

Imports Alembic's runtime inside the functions that run something.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, Callable

import sqlalchemy as sa

from . import database
from .errors import ConfigurationError, MigrateError, RevisionError
from .failures import StepRecorder, failed
from .kotti_site import kotti_session, run_in_kotti_transaction
from .locations import Location

if TYPE_CHECKING:  # pragma: no cover
    from alembic.config import Config

    from .site import Site

log = logging.getLogger("kotti_migrate")
#: One line as each revision starts and finishes (``[2/3] ...``), at INFO.
progress_log = logging.getLogger("kotti_migrate.progress")

#: Key of :attr:`alembic.config.Config.attributes` holding ``(Site, Location)``.
ATTRIBUTE = "kotti_migrate"

#: The ini section Alembic reads its options from (``alembic -c <ini>``, no ``--name``).
INI_SECTION = "alembic"

#: Alembic's ``alembic.context`` is a module-level proxy: one environment
#: runs at a time in a process.
env_lock = threading.RLock()


def alembic_config(
    site: Site, location: Location, stdout: Any = None, **cmd_opts: Any
) -> Config:
    """An Alembic :class:`~alembic.config.Config` for one location.

    As under ``alembic -c <ini>``: ``config_file_name`` is the app's ini file
    (when kotti_migrate knows it: :attr:`Site.config_file`), its
    ``[alembic]`` options are there, ``cmd_opts`` holds ``config``, ``name``,
    ``x`` and the command's options (``sql``, ``autogenerate``, ...).  The
    script location and ``sqlalchemy.url`` are the location's and the app's.
    ``attributes`` carries what kotti_migrate's own environment needs.
    """
    from alembic.config import Config

    kwargs: dict[str, Any] = {"stdout": stdout} if stdout is not None else {}
    ini = site.config_file
    options = argparse.Namespace(
        config=ini,
        name=INI_SECTION,
        raiseerr=False,
        quiet=False,
        x=[],
        sql=False,
        autogenerate=False,
        tag=None,
    )
    for key, value in cmd_opts.items():
        setattr(options, key, value)
    config = Config(file_=ini, ini_section=INI_SECTION, cmd_opts=options, **kwargs)
    config.set_main_option("script_location", str(location.path).replace("%", "%%"))
    url = site.settings.get("sqlalchemy.url")
    if url:
        text = url if isinstance(url, str) else url.render_as_string(hide_password=False)
        config.set_main_option("sqlalchemy.url", text.replace("%", "%%"))
    config.attributes[ATTRIBUTE] = (site, location)
    return config


def run(
    site: Site,
    location: Location,
    fn: Any,
    *,
    sql: bool = False,
    template_args: dict | None = None,
    autogenerate: bool = False,
    **kw: Any,
) -> tuple[StepRecorder, str | None]:
    """Run ``fn`` inside the location's migration environment.

    :returns: the step recorder and, in ``sql`` mode, the SQL emitted
    """
    from alembic.runtime.environment import EnvironmentContext

    from .graph import GRAPH_ERRORS

    scripts = site.scripts(location)
    if location.needs_ini and site.config_file is None:
        raise ConfigurationError(
            f"location {location.spec!r} runs its own env.py, which reads the app's ini file "
            f"(config.config_file_name), and kotti_migrate does not know which ini the app was "
            f"loaded from: add kotti_migrate.config_file = %(__file__)s to the app's settings"
        )
    buffer = io.StringIO() if sql else None
    config = alembic_config(
        site, location, stdout=io.StringIO(), sql=sql, autogenerate=autogenerate
    )
    recorder = StepRecorder()
    opts: dict[str, Any] = dict(
        fn=recorder.wrap(fn),
        as_sql=sql,
        version_table=location.version_table,
        **kw,
    )
    if buffer is not None:
        opts["output_buffer"] = buffer
    if template_args is not None:
        opts["template_args"] = template_args
    captured = io.StringIO()
    stderr = sys.stderr
    with env_lock, _restoring_streams(captured, stderr), (
        kotti_session(site.engine) if site.uses_kotti and not sql else contextlib.nullcontext()
    ):
        # An env.py of its own may print (Kotti's prints tracebacks and
        # swallows the error): keep that out of the user's way.
        redirect = (
            contextlib.redirect_stderr(captured)
            if location.env_py is not None
            else contextlib.nullcontext()
        )
        with EnvironmentContext(config, scripts, **opts), redirect:
            try:
                if location.env_py is None:
                    run_default_environment()
                else:
                    scripts.run_env()
            except MigrateError:
                raise
            except GRAPH_ERRORS as exc:
                if recorder.pending_step is not None:
                    raise failed(site, location, recorder, exc, sql, captured) from exc
                raise RevisionError(f"location {location.spec!r}: {exc}") from exc
            except sa.exc.OperationalError as exc:
                if recorder.pending_step is None and not recorder.applied:
                    raise database.unreachable(site.engine, exc) from None
                raise failed(site, location, recorder, exc, sql, captured) from exc
            except Exception as exc:
                raise failed(site, location, recorder, exc, sql, captured) from exc
    if recorder.pending_step is not None or not recorder.finished:
        # An env.py that swallowed the error (Kotti's does), before or
        # during a step.
        raise failed(site, location, recorder, None, sql, captured)
    if captured.getvalue():
        # Never printed: the CLI shows it (RunReport.output), start-up logs it.
        recorder.output = database.scrub(captured.getvalue(), site.engine.url)
        log.debug("%s: its env.py wrote: %s", location.spec, recorder.output.rstrip())
    return recorder, buffer.getvalue() if buffer is not None else None


def run_each(
    site: Site, location: Location, fn: Any, plan: Callable[[], list[Any]], **kw: Any
) -> StepRecorder:
    """Run the steps of ``plan`` one per environment run: one transaction each.

    An ``env.py`` runs all the steps it is given in one transaction
    (Kotti's, Alembic's stock one on PostgreSQL, and kotti_migrate's own
    on Kotti's ``DBSession``), so a failing revision would take the good
    ones before it down with it; given one step at a time, each revision
    and its version row commit (or roll back) together.  A plan that
    cannot be made runs ``fn`` in one run, which reports why.

    :returns: a recorder holding the steps of every run (and their env.py's output)
    """
    from .graph import GRAPH_ERRORS

    try:
        steps = plan()
    except GRAPH_ERRORS:
        steps = None
    if not steps:  # one run: creates a missing version table, reports what is wrong
        recorder, _ = run(site, location, fn, **kw)
        return recorder
    total = StepRecorder()
    for number, step in enumerate(steps, 1):
        counter = f"[{number}/{len(steps)}]"
        started = _progress(location, counter, step)
        try:
            recorder, _ = run(site, location, lambda rev, context, step=step: [step], **kw)
        except MigrateError:
            _progress(location, counter, step, started, "failed")
            raise
        _progress(location, counter, step, started)
        total.applied.extend(recorder.applied)
        total.output += recorder.output
    return total


def _progress(location: Location, counter: str, step: Any, started: float | None = None,
              outcome: str = "") -> float:
    """Log one revision starting (``started`` None) or finishing on ``kotti_migrate.progress``.

    ``[2/3] kotti_addon:alembic: upgrade b2c3d4e5f6a7 (Create note_links) ...``, then the same
    with ``done in 0.004 s`` (or ``failed after 0.004 s``).  The CLI shows these INFO lines on
    stderr; at start-up they go wherever the ``kotti_migrate`` logger's do.

    :returns: the time now (``perf_counter``), for the finishing call
    """
    now = time.perf_counter()
    revision = getattr(getattr(step, "revision", None), "revision", None) or "?"
    direction = "upgrade" if getattr(step, "is_upgrade", True) else "downgrade"
    lines = (getattr(step, "doc", None) or "").strip().splitlines()
    what = f"{counter} {location.spec}: {direction} {revision}" + (f" ({lines[0]})" if lines else "")
    if started is None:
        progress_log.info("%s ...", what)
    else:
        done = f"{outcome} after" if outcome else "done in"
        progress_log.info("%s %s %.3f s", what, done, now - started)
    return now


def run_default_environment() -> None:
    """The environment of locations without an ``env.py`` of their own."""
    from alembic import context

    site, location = context.config.attributes[ATTRIBUTE]
    options = site.context_options(location)
    if context.is_offline_mode():
        context.configure(
            url=site.engine.url,
            literal_binds=True,
            dialect_opts={"paramstyle": "named"},
            **options,
        )
        with context.begin_transaction():
            context.run_migrations()
    elif site.uses_kotti:
        run_in_kotti_transaction(context, options)
    else:
        with site.engine.connect() as connection:
            context.configure(
                connection=connection, transaction_per_migration=True, **options
            )
            with context.begin_transaction():
                context.run_migrations()
            if hasattr(connection, "commit") and connection.in_transaction():
                connection.commit()


def restore_streams(replaced: Any, original: Any) -> None:
    """Point logging handlers bound to ``replaced`` back at ``original``.

    An ``env.py`` that configures logging from the ini file (``setup_logging``,
    ``fileConfig``: ``args = (sys.stderr,)``) while kotti_migrate captures
    stderr would leave the app's handlers writing into the capture.
    """
    for ref in list(getattr(logging, "_handlerList", ())):
        handler = ref() if callable(ref) else ref
        if isinstance(handler, logging.StreamHandler) and handler.stream is replaced:
            handler.setStream(original)


@contextlib.contextmanager
def _restoring_streams(captured: io.StringIO, original: Any) -> Any:
    """Logging that an env.py set up while stderr was captured writes to stderr afterwards."""
    try:
        yield
    finally:
        restore_streams(captured, original)
