"""The ``kotti-migrate`` command: ``kotti-migrate <config_uri> <command> [options]``.

Only this module prints.  Every expected failure becomes one line on
stderr and exit code 1 (2 for a command line that cannot be parsed, 3
when ``status`` or ``check`` find work to do); ``-v`` adds the traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
import traceback
from typing import Any, Callable, Sequence, TextIO

import sqlalchemy as sa

from . import database
from .commands import Migrations, RunReport
from .errors import EXIT_ERROR, EXIT_OK, EXIT_PENDING, LocationError, MigrateError
from .locations import KOTTI_LOCATION, Location
from .scripts import revision_label
from .settings import split_config_uri

EXIT_USAGE = 2

DESCRIPTION = """\
Migrate the database of a Kotti or Pyramid site: Kotti and every add-on
keep their own Alembic migrations ("locations"), each recorded in its
own <package>_alembic_version table.

exit codes: 0 success, 1 error, 2 bad command line,
            3 'status'/'check' found pending work
"""


class UsageError(Exception):
    """The command line cannot be parsed."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, no usage dump
        raise UsageError(f"{message} (see: {self.prog} --help)")


def _location_options(parser: argparse.ArgumentParser, rev: bool = True, rev_required: bool = False) -> None:
    parser.add_argument(
        "--scripts",
        metavar="LOCATION",
        help="migration location: package:folder or a path (default: Kotti's, "
        "or the only registered one)",
    )
    if rev:
        parser.add_argument("--rev", metavar="REV", required=rev_required, help="target revision")


def _seconds(text: str) -> float:
    """An ``argparse`` type: a finite number of seconds, zero or more."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``kotti-migrate``."""
    parser = _Parser(
        prog="kotti-migrate",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("config_uri", help="ini file of the site, optionally #section (as pserve)")
    parser.add_argument("-v", "--verbose", action="store_true", help="show tracebacks of errors")
    commands = parser.add_subparsers(dest="command", metavar="<command>", parser_class=_Parser)
    commands.required = True

    def add(name: str, help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        # -v works after the command too (kotti-migrate app.ini upgrade -v).
        sub.add_argument(
            "-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
            help="show tracebacks of errors",
        )  # fmt: skip
        return sub

    add("list_all", "list the revisions and current revision of every location")
    p = add("upgrade", "upgrade one location (Kotti's by default) to --rev (default: heads)")
    _location_options(p)
    p.add_argument("--sql", action="store_true", help="print SQL instead of running it")
    p = add("upgrade_all", "upgrade every location to its head(s)")
    p.add_argument("--sql", action="store_true", help="print SQL instead of running it")
    p = add("stamp_head", "record a location at --rev (default: its head) without migrating")
    _location_options(p)
    p.add_argument("--sql", action="store_true", help="print SQL instead of running it")
    p.add_argument("--purge", action="store_true", help="empty the version table first")
    p = add("stamp", "same as stamp_head")
    _location_options(p)
    p.add_argument("--sql", action="store_true", help="print SQL instead of running it")
    p.add_argument("--purge", action="store_true", help="empty the version table first")
    add("stamp_heads", "record every location at its head(s) without migrating")
    p = add("status", "table of locations: current, head(s), pending (exit 3 when pending)")
    p.add_argument("--scripts", metavar="LOCATION", help="only this location")
    p.add_argument("--json", action="store_true", help="one JSON document (keys: see README)")
    p.add_argument(
        "--wait", metavar="SECONDS", type=_seconds,
        help="wait until every location is at its head(s), at most SECONDS (exit 3 if not)",
    )  # fmt: skip
    p = add("prepare", "do what start-up does (create, stamp, adopt, upgrade), then exit: a deploy step")
    p.add_argument("--no-upgrade", action="store_true", help="create and stamp only, no migrations")
    p = add("plan", "print what 'prepare' (or start-up) would do; change nothing (exit 3 if anything)")
    p.add_argument("--no-upgrade", action="store_true", help="plan as start-up with auto_upgrade off")
    p.add_argument("--sql", action="store_true", help="also print the SQL of the upgrades (offline mode)")
    p = add("current", "revisions recorded in the database")
    p.add_argument("--scripts", metavar="LOCATION", help="only this location")
    p = add("heads", "head revisions on disk")
    p.add_argument("--scripts", metavar="LOCATION", help="only this location")
    p = add("history", "revisions of a location, newest first")
    _location_options(p, rev=False)
    p.add_argument("--range", metavar="START:END", help="only this range of revisions")
    p = add("show", "show one revision")
    _location_options(p, rev_required=True)
    p = add("downgrade", "downgrade a location to --rev (an id, base, -1 ...)")
    _location_options(p, rev_required=True)
    p.add_argument("--sql", action="store_true", help="print SQL; --rev must be START:END")
    p = add("revision", "create a new revision file")
    _location_options(p, rev=False)
    p.add_argument("-m", "--message", required=True, help="message of the revision")
    p.add_argument("--autogenerate", action="store_true", help="generate operations from the models")
    p.add_argument("--rev-id", help="revision id to use instead of a generated one")
    p.add_argument("--head", default="head", help="revision to base the new one on (default: head)")
    p.add_argument("--splice", action="store_true", help="allow --head to be a non-head")
    p.add_argument("--branch-label", help="branch label for the new revision")
    p.add_argument("--depends-on", action="append", help="revision the new one depends on")
    p = add("merge", "create a revision merging heads (all heads by default)")
    _location_options(p, rev=False)
    p.add_argument("-m", "--message", required=True, help="message of the revision")
    p.add_argument("--rev-id", help="revision id to use instead of a generated one")
    p.add_argument("--branch-label", help="branch label for the new revision")
    p.add_argument("revisions", nargs="*", help="revisions to merge (default: heads)")
    p = add("check", "compare models and database (exit 3 when they differ)")
    p.add_argument("--scripts", metavar="LOCATION", help="only this location")
    p = add("init", "create a migration environment for an add-on at --scripts")
    p.add_argument("--scripts", metavar="LOCATION", required=True, help="package:folder or path")
    p.add_argument("--no-env", action="store_true", help="no env.py (use kotti_migrate's default)")
    return parser


class Runner:
    """Runs one parsed command and writes its output."""

    def __init__(self, args: argparse.Namespace, out: TextIO, err: TextIO | None = None) -> None:
        self.args = args
        self.out = out
        self.err = err or sys.stderr
        self._migrations: Migrations | None = None

    def echo(self, text: str = "") -> None:
        print(text, file=self.out)

    @property
    def migrations(self) -> Migrations:
        if self._migrations is None:
            self._migrations = Migrations.from_config_uri(self.args.config_uri)
            # Commands that write wait for start-up (or another kotti-migrate): say so.
            self._migrations.on_lock_wait = self.waiting
        return self._migrations

    def waiting(self, message: str) -> None:
        print(f"kotti-migrate: {message}", file=self.err, flush=True)

    def default_location(self) -> Location:
        """``--scripts``, else Kotti's location, else the only registered one."""
        spec = getattr(self.args, "scripts", None)
        m = self.migrations
        if spec:
            return m.location(spec)
        for loc in m.locations:
            if loc.spec == KOTTI_LOCATION:
                return loc
        if len(m.locations) == 1:
            return m.locations[0]
        if not m.locations:
            raise LocationError("no migration locations are registered (kotti.alembic_dirs)")
        raise LocationError(
            "several locations are registered; choose one with --scripts=<location>: "
            + ", ".join(loc.spec for loc in m.locations)
        )

    def selected(self) -> Location | None:
        spec = getattr(self.args, "scripts", None)
        return self.migrations.location(spec) if spec else None

    # -- rendering --------------------------------------------------------------

    def report(self, report: RunReport, verb: str) -> None:
        loc = report.location
        if report.sql is not None:
            self.echo(report.sql.strip("\n") or f"-- {loc.spec}: nothing to do")
            return
        before = ", ".join(report.before) or "base"
        after = ", ".join(report.after) or "base"
        self.echo(f"{verb} {loc.spec} ({loc.version_table}): {before} -> {after}")
        if not report.steps:
            self.echo("  - already up to date." if verb == "Upgrading" else "  - nothing to do.")
        total = 0.0
        for step in report.steps:
            total += step.seconds
            desc = f" ({step.description})" if step.description else ""
            self.echo(f"  - {step.direction} {step.revision}{desc}: {step.seconds:.3f} s")
        if report.steps:
            self.echo(f"  {len(report.steps)} step(s) in {total:.3f} s")

    # -- commands -----------------------------------------------------------------

    def cmd_list_all(self) -> int:
        m = self.migrations
        current = m.current()
        for loc in m.locations:
            self.echo(f"{loc.spec} ({loc.version_table}):")
            for script in m.catalog(loc).revisions[::-1]:
                self.echo(f"  - {script.down_revision} -> {script.revision}: {script.doc}")
            self.echo(f"  - current revision: {', '.join(current[loc] or ()) or None}")
            self.echo()
        return EXIT_OK

    def create_fresh(self, locations: list[Location]) -> bool:
        """An empty Kotti database: do what start-up does (create, stamp, populate); True if done.

        Kotti's migrations cannot build its schema from nothing, so upgrading
        Kotti's location on an empty database means creating it.
        """
        m = self.migrations
        if self.args.sql or getattr(self.args, "rev", None) not in (None, "head", "heads"):
            return False  # the library refuses an empty database where it must
        if not m.builds_from_models(locations) or not m.is_fresh():
            return False
        from .startup import run_startup

        path, _ = split_config_uri(self.args.config_uri)
        run_startup(m, config_file=path)
        self.echo(
            f"Empty database {database.mask_url(m.engine.url)}: created its tables from the models "
            "and stamped every location at its head(s), as start-up does:"
        )
        for loc, revs in m.current().items():
            self.echo(f"  {loc.spec} ({loc.version_table}): {', '.join(revs or ()) or 'no revisions yet'}")
        return True

    def cmd_upgrade(self) -> int:
        loc = self.default_location()
        if self.create_fresh([loc]):
            return EXIT_OK
        for report in self.migrations.upgrade(loc, self.args.rev or "heads", sql=self.args.sql):
            self.report(report, "Upgrading")
        return EXIT_OK

    def cmd_upgrade_all(self) -> int:
        if self.create_fresh(self.migrations.locations):
            return EXIT_OK
        for report in self.migrations.upgrade(None, "heads", sql=self.args.sql):
            self.report(report, "Upgrading")
        return EXIT_OK

    def cmd_stamp_head(self) -> int:
        loc = self.default_location()
        a = self.args
        report = self.migrations.stamp(loc, a.rev or "heads", sql=a.sql, purge=a.purge)
        self.report(report, "Stamping")
        return EXIT_OK

    cmd_stamp = cmd_stamp_head

    def cmd_stamp_heads(self) -> int:
        for report in self.migrations.stamp_heads():
            self.report(report, "Stamping")
        return EXIT_OK

    def cmd_status(self) -> int:
        m = self.migrations
        if self.args.wait is not None:
            self.wait_for_heads(self.args.wait)
        fresh = m.is_fresh()
        statuses = m.status(self.selected())
        pending = fresh or not all(st.up_to_date for st in statuses)
        if self.args.json:
            self.echo(json.dumps(status_document(m, statuses, fresh), indent=2))
            return EXIT_PENDING if pending else EXIT_OK
        if fresh:
            how = (
                "start-up (or 'upgrade_all') creates its tables and stamps every location"
                if m.creates_tables
                else "start-up runs every location's migrations from base"
            )
            self.echo(f"empty database {database.mask_url(m.engine.url)}: {how}")
        rows = [("LOCATION", "VERSION TABLE", "CURRENT", "HEAD(S)", "PENDING")]
        for st in statuses:
            if st.current is None:
                current = "(no version table)"
            else:
                current = ", ".join(st.current) or "base"
            count = "unknown revision" if st.unknown else str(len(st.pending))
            rows.append((st.location.spec, st.location.version_table, current, ", ".join(st.heads), count))
        widths = [max(len(row[i]) for row in rows) for i in range(5)]
        for row in rows:
            self.echo("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        return EXIT_PENDING if pending else EXIT_OK

    def wait_for_heads(self, seconds: float) -> bool:
        """Poll (the revision index and one query) until every location is at its head(s)."""
        m = self.migrations
        selected = [self.selected()] if self.selected() else m.locations
        heads = {loc: set(m.index(loc).heads) for loc in selected}
        deadline = time.monotonic() + seconds
        while True:
            current = m.current(self.selected())
            if all(set(current[loc] or ()) == heads[loc] and current[loc] for loc in selected):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))

    def cmd_prepare(self) -> int:
        from .startup import run_startup

        m = self.migrations
        planned = run_startup(m, config_file=self.config_file(), auto_upgrade=not self.args.no_upgrade)
        for decision in planned.decisions:
            self.echo(f"{decision.location.spec}: {describe(decision)}")
        if planned.created:
            tables = ", ".join(planned.created)
            self.echo(f"created {len(planned.created)} table(s) from the models: {tables}")
        for report in planned.reports:
            if report.steps and report.steps[0].direction != "stamp":
                self.report(report, "Upgrading")
        return EXIT_OK if all(st.up_to_date for st in m.status()) else EXIT_PENDING

    def cmd_plan(self) -> int:
        from .startup import preview

        m = self.migrations
        state, planned = preview(m, config_file=self.config_file(), auto_upgrade=not self.args.no_upgrade)
        changes = False
        for decision, loc_state in zip(planned.decisions, state.locations):
            line = describe(decision, loc_state)
            if decision.action in ("upgrade", "adopt"):
                pending = [s for s in reversed(m.status(decision.location)[0].pending)]
                if decision.reason in ("differ", "no-models") or loc_state.current is None:
                    pending = list(reversed(m.catalog(decision.location).revisions))
                line += ": " + ", ".join(revision_label(s) for s in pending)
            changes = changes or decision.action != "ok"
            self.echo(f"{decision.location.spec}: {line}")
            if self.args.sql and decision.action in ("upgrade", "adopt"):
                for report in m.upgrade(decision.location, sql=True):
                    self.report(report, "Upgrading")
        if planned.error is not None:
            self.echo(f"start-up would stop: {planned.error}")
        return EXIT_PENDING if changes or planned.error is not None else EXIT_OK

    def config_file(self) -> str:
        path, _ = split_config_uri(self.args.config_uri)
        return path

    def cmd_current(self) -> int:
        m = self.migrations
        for loc, revs in m.current(self.selected()).items():
            heads = set(m.catalog(loc).heads)
            if revs is None:
                shown = "(no version table)"
            else:
                shown = ", ".join(f"{r} (head)" if r in heads else r for r in revs) or "base"
            self.echo(f"{loc.spec} ({loc.version_table}): {shown}")
        return EXIT_OK

    def cmd_heads(self) -> int:
        m = self.migrations
        selected = self.selected()
        for loc in [selected] if selected else m.locations:
            catalog = m.catalog(loc)
            for head in catalog.heads:
                self.echo(f"{loc.spec}: {revision_label(catalog.get(head))} (head)")
        return EXIT_OK

    def cmd_history(self) -> int:
        loc = self.default_location()
        m = self.migrations
        if self.args.range:
            heads = set(m.scripts(loc).get_heads())
            scripts: Sequence[Any] = m.history(loc, self.args.range)
        else:  # from the index
            catalog = m.catalog(loc)
            heads, scripts = set(catalog.heads), catalog.revisions
        for script in scripts:
            down = ", ".join(script._versioned_down_revisions) or "<base>"
            mark = " (head)" if script.revision in heads else ""
            doc = (script.doc or "").strip().splitlines()
            self.echo(f"{down} -> {script.revision}{mark}, {doc[0] if doc else ''}".rstrip(", "))
        return EXIT_OK

    def cmd_show(self) -> int:
        loc = self.default_location()
        for script in self.migrations.show(loc, self.args.rev):
            self.echo(f"Rev: {script.revision}")
            self.echo(f"Parent: {', '.join(script._versioned_down_revisions) or '<base>'}")
            if script.branch_labels:
                self.echo(f"Branch names: {', '.join(sorted(script.branch_labels))}")
            self.echo(f"Path: {script.path}")
            self.echo()
            self.echo((script.doc or "").strip())
        return EXIT_OK

    def cmd_downgrade(self) -> int:
        loc = self.default_location()
        self.report(self.migrations.downgrade(loc, self.args.rev, sql=self.args.sql), "Downgrading")
        return EXIT_OK

    def cmd_revision(self) -> int:
        a = self.args
        for script in self.migrations.revision(
            self.default_location(),
            a.message,
            autogenerate=a.autogenerate,
            rev_id=a.rev_id,
            head=a.head,
            splice=a.splice,
            branch_label=a.branch_label,
            depends_on=a.depends_on,
        ):
            self.echo(f"Generated {script.path}")
        return EXIT_OK

    def cmd_merge(self) -> int:
        a = self.args
        script = self.migrations.merge(
            self.default_location(), a.revisions or ["heads"], a.message, a.branch_label, a.rev_id
        )
        self.echo(f"Generated {script.path}")
        return EXIT_OK

    def cmd_check(self) -> int:
        differs = False
        for result in self.migrations.check(self.selected()):
            if result.diffs:
                differs = True
                self.echo(f"{result.location.spec}: models and database differ:")
                for diff in result.diffs:
                    self.echo(f"  - {_describe_diff(diff)}")
            else:
                self.echo(f"{result.location.spec}: no differences")
        return EXIT_PENDING if differs else EXIT_OK

    def cmd_init(self) -> int:
        path, _ = split_config_uri(self.args.config_uri)
        here = os.path.dirname(path)
        migrations = Migrations({"sqlalchemy.url": "sqlite://"}, here=here)
        loc = migrations.init(self.args.scripts, with_env=not self.args.no_env)
        self.echo(f"Created migration environment {loc.path}")
        self.echo(f"  version table: {loc.version_table}")
        self.echo(f"  register it: settings['kotti.alembic_dirs'] += ' {self.args.scripts}'")
        self.echo(f"  first revision: kotti-migrate {self.args.config_uri} revision "
                  f"--scripts={self.args.scripts} -m \"...\"")
        return EXIT_OK


def describe(decision: Any, state: Any = None) -> str:
    """What a start-up decision does, in a few words (``plan`` and ``prepare``)."""
    heads = ", ".join(state.heads) if state is not None else ""
    current = ", ".join(state.current or ()) or "base" if state is not None else ""
    if decision.action == "stamp":
        what = {
            "fresh": "fresh database: create its tables from the models, stamp at head",
            "new": "new to this database: create its tables from the models, stamp at head",
            "match": "its tables match the models: stamp at head",
        }.get(decision.reason, "stamp at head")
        return f"{what} {heads}".rstrip() if state is not None else what
    if decision.action == "adopt":
        return f"its tables exist and differ from the models: upgrade from base to {heads or 'head'}"
    if decision.action == "upgrade":
        return f"upgrade from {current if state is not None else 'its revision'} to {heads or 'head'}"
    if decision.action == "ok":
        return f"up to date at {heads}" if state is not None else "up to date"
    return decision.message


def status_document(migrations: Migrations, statuses: list[Any], fresh: bool) -> dict:
    """``status --json``: stable keys, documented in README."""
    return {
        "up_to_date": not fresh and all(st.up_to_date for st in statuses),
        "empty_database": fresh,
        "locations": [
            {
                "location": st.location.spec,
                "version_table": st.location.version_table,
                "current": list(st.current) if st.current is not None else None,
                "heads": list(st.heads),
                "pending": [
                    {"revision": s.revision, "message": _first_line(s.doc)} for s in reversed(st.pending)
                ],
                "unknown": list(st.unknown),
                "up_to_date": st.up_to_date,
            }
            for st in statuses
        ],
    }


def _first_line(text: str | None) -> str:
    lines = (text or "").strip().splitlines()
    return lines[0] if lines else ""


def _describe_diff(diff: Any) -> str:
    """One readable line for one difference found by Alembic's comparison."""
    if isinstance(diff, tuple) and len(diff) == 4 and hasattr(diff[3], "name"):
        return f"{diff[0]}: {diff[2]}.{diff[3].name}"  # (add|remove)_column, schema, table, column
    if isinstance(diff, tuple) and diff:
        kind = diff[0]
        obj = diff[1] if len(diff) > 1 else None
        if isinstance(obj, (sa.ForeignKeyConstraint, sa.Index, sa.UniqueConstraint)):
            return f"{kind}: {_describe_constraint(obj)}"
        name = getattr(obj, "name", None)
        table = getattr(getattr(obj, "table", None), "name", None)
        if table and name:
            return f"{kind}: {table}.{name}"
        if name:
            return f"{kind}: {name}"
        return str(kind)
    if isinstance(diff, list) and diff:
        # modify_type, modify_nullable...: (kind, schema, table, column, existing, old, new)
        parts = [
            f"{inner[0]}: {inner[2]}.{inner[3]}" + (f" ({inner[5]} -> {inner[6]})" if len(inner) > 6 else "")
            for inner in diff
            if isinstance(inner, tuple) and len(inner) > 3
        ]
        if parts:
            return "; ".join(parts)
    return str(diff)


def _describe_constraint(obj: Any) -> str:
    """``[name ]table(columns)``, and ``-> table(columns)`` for a foreign key."""
    table = getattr(getattr(obj, "table", None), "name", None) or "?"
    if isinstance(obj, sa.ForeignKeyConstraint):
        columns = [element.parent.name for element in obj.elements]
        referred = [element.column for element in obj.elements]
        target = f" -> {referred[0].table.name}({', '.join(c.name for c in referred)})" if referred else ""
    else:
        columns = [column.name for column in obj.columns]
        target = ""
    name = f"{obj.name} " if isinstance(obj.name, str) and obj.name else ""
    return f"{name}{table}({', '.join(columns)}){target}"


def main(argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run ``kotti-migrate``; returns the exit code."""
    out = out or sys.stdout
    err = err or sys.stderr
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        with contextlib.redirect_stdout(out):  # --help writes to ``out``
            args = parser.parse_args(argv)
    except UsageError as exc:
        print(f"kotti-migrate: error: {exc}", file=err)
        return EXIT_USAGE
    except SystemExit as exc:  # --help: argparse printed it and exits
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    verbose = bool(getattr(args, "verbose", False))
    runner = Runner(args, out, err)
    handler: Callable[[], int] = getattr(runner, f"cmd_{args.command}")
    url = None
    try:
        _setup_logging(args.config_uri)
        return handler()
    except MigrateError as exc:
        url = _url_of(runner)
        if verbose:
            print(database.scrub(getattr(exc, "details", "") or "", url), file=err, end="")
            print(database.scrub(traceback.format_exc(), url), file=err, end="")
        lines = str(exc).strip().splitlines() or [type(exc).__name__]
        # One line: a message of several lines (an app factory's error, say)
        # is cut to its first; -v shows it all.
        more = " (run with -v for details)" if len(lines) > 1 and not verbose else ""
        print(f"kotti-migrate: error: {database.scrub(lines[0].rstrip(), url)}{more}", file=err)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("kotti-migrate: interrupted", file=err)
        return EXIT_ERROR
    except Exception as exc:  # an unexpected failure: still one line unless -v
        url = _url_of(runner)
        if verbose:
            print(database.scrub(traceback.format_exc(), url), file=err, end="")
        text = str(exc).strip().splitlines()
        message = f"{type(exc).__name__}: {text[0] if text else ''}"
        print(
            f"kotti-migrate: error: {database.scrub(message, url)} (run with -v for details)",
            file=err,
        )
        return EXIT_ERROR
    finally:
        if runner._migrations is not None:
            runner._migrations.dispose()


def _url_of(runner: Runner) -> Any:
    if runner._migrations is None:
        return None
    return runner._migrations.settings.get("sqlalchemy.url")


def _setup_logging(config_uri: str) -> None:
    """Apply the ini file's logging configuration when it has one."""
    path, _ = split_config_uri(config_uri)
    if not os.path.isfile(path):
        return
    import configparser

    parser = configparser.ConfigParser()
    try:
        parser.read(path)
    except (configparser.Error, OSError, UnicodeError):  # reported when the app is loaded
        return
    if parser.has_section("loggers"):
        import logging.config

        try:
            logging.config.fileConfig(
                path, {"here": os.path.dirname(path), "__file__": path}, disable_existing_loggers=False
            )
        except Exception:
            pass


def run() -> None:
    """Console script entry point."""
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    run()
