"""Every ``kotti-migrate`` command, defined once: its name, help, arguments and code.

:func:`command` registers a function in :data:`COMMANDS`; the CLI's parser
and dispatcher are made from that table (and tests read it).  Each command
gets the :class:`~kotti_migrate.cli_runner.Runner` and returns the exit code.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from . import database
from .cli_runner import Runner, describe, describe_diff, seconds, status_document
from .commands import Migrations
from .errors import EXIT_OK, EXIT_PENDING
from .scripts import revision_label
from .startup import preview, run_startup


@dataclass(frozen=True)
class Argument:
    """One ``add_argument`` call: its flags (or name) and keyword arguments."""

    flags: tuple[str, ...]
    options: dict[str, Any]


@dataclass(frozen=True)
class Command:
    """One ``kotti-migrate`` command."""

    name: str
    help: str
    run: Callable[[Runner], int]
    arguments: tuple[Argument, ...] = ()
    #: reads no models: the site is loaded light (:meth:`~kotti_migrate.site.Site.from_config_uri`)
    light: bool = False


#: Every command, in the order ``--help`` lists them.
COMMANDS: dict[str, Command] = {}


def arg(*flags: str, **options: Any) -> Argument:
    return Argument(flags, options)


def location_args(rev: bool = True, rev_required: bool = False) -> tuple[Argument, ...]:
    """``--scripts`` (one location, the default one when omitted) and ``--rev``."""
    scripts = arg(
        "--scripts", metavar="LOCATION",
        help="migration location: package:folder or a path (default: Kotti's, or the only registered one)",
    )  # fmt: skip
    if not rev:
        return (scripts,)
    return (scripts, arg("--rev", metavar="REV", required=rev_required, help="target revision"))


ONLY = arg("--scripts", metavar="LOCATION", help="only this location")
SQL = arg("--sql", action="store_true", help="print SQL instead of running it")
PURGE = arg("--purge", action="store_true", help="empty the version table first")
MESSAGE = arg("-m", "--message", required=True, help="message of the revision")
REV_ID = arg("--rev-id", help="revision id to use instead of a generated one")
BRANCH_LABEL = arg("--branch-label", help="branch label for the new revision")


#: Commands reading only locations, revision files and version tables.
LIGHT = {"list_all", "status", "current", "heads", "history", "show"}


def command(name: str, help: str, *arguments: Argument) -> Callable[[Callable[[Runner], int]], Callable]:
    """Register the decorated function as the command ``name``."""

    def register(fn: Callable[[Runner], int]) -> Callable[[Runner], int]:
        if name in COMMANDS:
            raise ValueError(f"command {name!r} is defined twice")
        COMMANDS[name] = Command(name, help, fn, arguments, light=name in LIGHT)
        return fn

    return register


@command("list_all", "list the revisions and current revision of every location")
def list_all(r: Runner) -> int:
    m = r.migrations
    current = m.current()
    for loc in m.locations:
        r.echo(f"{loc.spec} ({loc.version_table}):")
        for script in m.catalog(loc).revisions[::-1]:
            r.echo(f"  - {script.down_revision} -> {script.revision}: {script.doc}")
        r.echo(f"  - current revision: {', '.join(current[loc] or ()) or None}")
        r.echo()
    return EXIT_OK


@command(
    "upgrade", "upgrade one location (Kotti's by default) to --rev (default: heads)", *location_args(), SQL
)
def upgrade(r: Runner) -> int:
    loc = r.default_location()
    if r.create_fresh([loc]):
        return EXIT_OK
    for report in r.upgrade(loc, r.args.rev or "heads"):
        r.report(report, "Upgrading")
    return EXIT_OK


@command("upgrade_all", "upgrade every location to its head(s)", SQL)
def upgrade_all(r: Runner) -> int:
    if r.create_fresh(r.migrations.locations):
        return EXIT_OK
    for report in r.upgrade(None, "heads"):
        r.report(report, "Upgrading")
    return EXIT_OK


def stamp(r: Runner) -> int:
    a = r.args
    report = r.migrations.stamp(r.default_location(), a.rev or "heads", sql=a.sql, purge=a.purge)
    r.report(report, "Stamping")
    return EXIT_OK


command(
    "stamp_head", "record a location at --rev (default: its head) without migrating",
    *location_args(), SQL, PURGE,
)(stamp)  # fmt: skip
command("stamp", "same as stamp_head", *location_args(), SQL, PURGE)(stamp)


@command("stamp_heads", "record every location at its head(s) without migrating")
def stamp_heads(r: Runner) -> int:
    for report in r.migrations.stamp_heads():
        r.report(report, "Stamping")
    return EXIT_OK


@command(
    "status", "table of locations: current, head(s), pending (exit 3 when pending)",
    ONLY,
    arg("--json", action="store_true", help="one JSON document (keys: see README)"),
    arg("--wait", metavar="SECONDS", type=seconds,
        help="wait until every location is at its head(s), at most SECONDS (exit 3 if not)"),
)  # fmt: skip
def status(r: Runner) -> int:
    m = r.migrations
    if r.args.wait is not None:
        r.wait_for_heads(r.args.wait)
    fresh = m.is_fresh()
    statuses = m.status(r.selected())
    pending = fresh or not all(st.up_to_date for st in statuses)
    if r.args.json:
        r.echo(json.dumps(status_document(m, statuses, fresh), indent=2))
        return EXIT_PENDING if pending else EXIT_OK
    if fresh:
        how = (
            "start-up (or 'upgrade_all') creates its tables and stamps every location"
            if m.creates_tables
            else "start-up runs every location's migrations from base"
        )
        r.echo(f"empty database {database.mask_url(m.engine.url)}: {how}")
    rows = [("LOCATION", "VERSION TABLE", "CURRENT", "HEAD(S)", "PENDING")]
    for st in statuses:
        current = "(no version table)" if st.current is None else ", ".join(st.current) or "base"
        count = "unknown revision" if st.unknown else str(len(st.pending))
        rows.append((st.location.spec, st.location.version_table, current, ", ".join(st.heads), count))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    for row in rows:
        r.echo("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
    return EXIT_PENDING if pending else EXIT_OK


@command(
    "prepare", "do what start-up does (create, stamp, adopt, upgrade), then exit: a deploy step",
    arg("--no-upgrade", action="store_true", help="create and stamp only, no migrations"),
)  # fmt: skip
def prepare(r: Runner) -> int:
    m = r.migrations
    planned = run_startup(m, config_file=r.config_file(), auto_upgrade=not r.args.no_upgrade)
    for decision in planned.decisions:
        r.echo(f"{decision.location.spec}: {describe(decision)}")
    if planned.created:
        r.echo(f"created {len(planned.created)} table(s) from the models: {', '.join(planned.created)}")
    for report in planned.reports:
        if report.steps and report.steps[0].direction != "stamp":
            r.report(report, "Upgrading")
    return EXIT_OK if all(st.up_to_date for st in m.status()) else EXIT_PENDING


@command(
    "plan", "print what 'prepare' (or start-up) would do; change nothing (exit 3 if anything)",
    arg("--no-upgrade", action="store_true", help="plan as start-up with auto_upgrade off"),
    arg("--sql", action="store_true", help="also print the SQL of the upgrades (offline mode)"),
)  # fmt: skip
def plan(r: Runner) -> int:
    m = r.migrations
    state, planned = preview(m, config_file=r.config_file(), auto_upgrade=not r.args.no_upgrade)
    changes = False
    for decision, loc_state in zip(planned.decisions, state.locations):
        line = describe(decision, loc_state)
        if decision.action in ("upgrade", "adopt", "install"):
            pending = [s for s in reversed(m.status(decision.location)[0].pending)]
            if decision.reason in ("differ", "no-models") or loc_state.current is None:
                pending = list(reversed(m.catalog(decision.location).revisions))
            line += ": " + ", ".join(revision_label(s) for s in pending)
        changes = changes or decision.action != "ok"
        r.echo(f"{decision.location.spec}: {line}")
        if r.args.sql and decision.action in ("upgrade", "adopt", "install"):
            for report in m.upgrade(decision.location, sql=True):
                r.report(report, "Upgrading")
    if planned.error is not None:
        r.echo(f"start-up would stop: {planned.error}")
    return EXIT_PENDING if changes or planned.error is not None else EXIT_OK


@command("current", "revisions recorded in the database", ONLY)
def current(r: Runner) -> int:
    m = r.migrations
    for loc, revs in m.current(r.selected()).items():
        heads = set(m.catalog(loc).heads)
        if revs is None:
            shown = "(no version table)"
        else:
            shown = ", ".join(f"{rev} (head)" if rev in heads else rev for rev in revs) or "base"
        r.echo(f"{loc.spec} ({loc.version_table}): {shown}")
    return EXIT_OK


@command("heads", "head revisions on disk", ONLY)
def heads(r: Runner) -> int:
    m = r.migrations
    for loc in m.select(r.selected()):
        catalog = m.catalog(loc)
        for head in catalog.heads:
            r.echo(f"{loc.spec}: {revision_label(catalog.get(head))} (head)")
    return EXIT_OK


@command(
    "history", "revisions of a location, newest first",
    *location_args(rev=False), arg("--range", metavar="START:END", help="only this range of revisions"),
)  # fmt: skip
def history(r: Runner) -> int:
    loc = r.default_location()
    m = r.migrations
    if r.args.range:
        heads = set(m.scripts(loc).get_heads())
        scripts: Sequence[Any] = m.history(loc, r.args.range)
    else:  # from the index
        catalog = m.catalog(loc)
        heads, scripts = set(catalog.heads), catalog.revisions
    for script in scripts:
        down = ", ".join(script._versioned_down_revisions) or "<base>"
        mark = " (head)" if script.revision in heads else ""
        doc = (script.doc or "").strip().splitlines()
        r.echo(f"{down} -> {script.revision}{mark}, {doc[0] if doc else ''}".rstrip(", "))
    return EXIT_OK


@command("show", "show one revision", *location_args(rev_required=True))
def show(r: Runner) -> int:
    for script in r.migrations.show(r.default_location(), r.args.rev):
        r.echo(f"Rev: {script.revision}")
        r.echo(f"Parent: {', '.join(script._versioned_down_revisions) or '<base>'}")
        if script.branch_labels:
            r.echo(f"Branch names: {', '.join(sorted(script.branch_labels))}")
        r.echo(f"Path: {script.path}")
        r.echo()
        r.echo((script.doc or "").strip())
    return EXIT_OK


@command(
    "downgrade", "downgrade a location to --rev (an id, base, -1 ...)",
    *location_args(rev_required=True),
    arg("--sql", action="store_true", help="print SQL; --rev must be START:END"),
)  # fmt: skip
def downgrade(r: Runner) -> int:
    r.report(r.migrations.downgrade(r.default_location(), r.args.rev, sql=r.args.sql), "Downgrading")
    return EXIT_OK


@command(
    "revision", "create a new revision file",
    *location_args(rev=False), MESSAGE,
    arg("--autogenerate", action="store_true", help="generate operations from the models"),
    REV_ID,
    arg("--head", default="head", help="revision to base the new one on (default: head)"),
    arg("--splice", action="store_true", help="allow --head to be a non-head"),
    BRANCH_LABEL,
    arg("--depends-on", action="append", help="revision the new one depends on"),
)  # fmt: skip
def revision(r: Runner) -> int:
    a = r.args
    for script in r.migrations.revision(
        r.default_location(), a.message, autogenerate=a.autogenerate, rev_id=a.rev_id, head=a.head,
        splice=a.splice, branch_label=a.branch_label, depends_on=a.depends_on,
    ):  # fmt: skip
        r.echo(f"Generated {script.path}")
    return EXIT_OK


@command(
    "merge", "create a revision merging heads (all heads by default)",
    *location_args(rev=False), MESSAGE, REV_ID, BRANCH_LABEL,
    arg("revisions", nargs="*", help="revisions to merge (default: heads)"),
)  # fmt: skip
def merge(r: Runner) -> int:
    a = r.args
    script = r.migrations.merge(
        r.default_location(), a.revisions or ["heads"], a.message, a.branch_label, a.rev_id
    )
    r.echo(f"Generated {script.path}")
    return EXIT_OK


@command("check", "compare models and database (exit 3 when they differ)", ONLY)
def check(r: Runner) -> int:
    differs = False
    for result in r.migrations.check(r.selected()):
        if result.diffs:
            differs = True
            r.echo(f"{result.location.spec}: models and database differ:")
            for diff in result.diffs:
                r.echo(f"  - {describe_diff(diff)}")
        else:
            r.echo(f"{result.location.spec}: no differences")
    return EXIT_PENDING if differs else EXIT_OK


@command(
    "init", "create a migration environment for an add-on at --scripts",
    arg("--scripts", metavar="LOCATION", required=True, help="package:folder or path"),
    arg("--no-env", action="store_true", help="no env.py (use kotti_migrate's default)"),
)  # fmt: skip
def init(r: Runner) -> int:
    here = os.path.dirname(r.config_file())
    migrations = Migrations({"sqlalchemy.url": "sqlite://"}, here=here)
    loc = migrations.init(r.args.scripts, with_env=not r.args.no_env)
    r.echo(f"Created migration environment {loc.path}")
    r.echo(f"  version table: {loc.version_table}")
    r.echo(f"  register it: settings['kotti.alembic_dirs'] += ' {r.args.scripts}'")
    r.echo(
        f"  first revision: kotti-migrate {r.args.config_uri} revision "
        f'--scripts={r.args.scripts} -m "..."'
    )
    return EXIT_OK
