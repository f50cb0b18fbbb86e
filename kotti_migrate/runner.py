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
from typing import TYPE_CHECKING, Any, Callable

import sqlalchemy as sa

from . import database
from .errors import ConfigurationError, MigrateError, RevisionError
from .failures import Progress, StepRecorder, failed
from .kotti_site import kotti_session, run_in_kotti_transaction
from .locations import Location

if TYPE_CHECKING:  # pragma: no cover
    from alembic.config import Config

    from .site import Site

log = logging.getLogger("kotti_migrate")

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
    progress: Progress | None = None,
    **kw: Any,
) -> tuple[StepRecorder, str | None]:
    """Run ``fn`` inside the location's migration environment.

    :param progress: logs each step as it starts and finishes
    :returns: the step recorder and, in ``sql`` mode, the SQL emitted
    """
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
    recorder = StepRecorder(progress=progress)
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
    try:
        _run_environment(site, location, scripts, config, opts, recorder, sql, captured)
        if recorder.pending_step is not None or not recorder.finished:
            # An env.py that swallowed the error (Kotti's does), before or
            # during a step.
            raise failed(site, location, recorder, None, sql, captured)
    except BaseException:
        recorder.stopped()
        raise
    if captured.getvalue():
        # Never printed: the CLI shows it (RunReport.output), start-up logs it.
        recorder.output = database.scrub(captured.getvalue(), site.engine.url)
        log.debug("%s: its env.py wrote: %s", location.spec, recorder.output.rstrip())
    return recorder, buffer.getvalue() if buffer is not None else None


def _run_environment(
    site: Site,
    location: Location,
    scripts: Any,
    config: Config,
    opts: dict[str, Any],
    recorder: StepRecorder,
    sql: bool,
    captured: io.StringIO,
) -> None:
    """Run the location's environment once; its errors become :class:`MigrateError` s."""
    from alembic.runtime.environment import EnvironmentContext

    from .graph import GRAPH_ERRORS

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


def run_each(
    site: Site, location: Location, fn: Any, plan: Callable[[], list[Any]], **kw: Any
) -> StepRecorder:
    """Run the steps of ``plan`` so that each revision commits (or rolls back) with its version row.

    kotti_migrate's own environment does so in one run (a transaction per
    step: :func:`run_default_environment`).  An ``env.py`` of a location's
    own runs all the steps it is given in one transaction (Kotti's, and
    Alembic's stock one on PostgreSQL), so a failing revision would take
    the good ones before it down with it: it is given one step per run.
    A plan that cannot be made runs ``fn`` in one run, which reports why.
    Each step is logged as it starts and finishes (:class:`Progress`).

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
    progress = Progress(location.spec, len(steps))
    if location.env_py is None and not kw.get("sql"):
        recorder, _ = run(site, location, lambda rev, context: steps, progress=progress, **kw)
        return recorder
    total = StepRecorder()
    for step in steps:
        recorder, _ = run(site, location, lambda rev, context, step=step: [step], progress=progress, **kw)
        total.applied.extend(recorder.applied)
        total.output += recorder.output
    return total


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
        run_in_kotti_transaction(context, site.engine, options)
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
