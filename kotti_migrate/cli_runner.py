"""What a ``kotti-migrate`` command works with: the parsed arguments, the site, and how output looks.

:class:`Runner` is handed to every command of :mod:`kotti_migrate.cli_commands`;
the functions below render the library's reports as text and JSON.  Only
the CLI modules print.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any, TextIO

import sqlalchemy as sa

from . import database
from .commands import Migrations, RunReport
from .errors import MigrationFailed
from .loading import split_config_uri
from .locations import Location
from .startup import run_startup


class Runner:
    """Runs one parsed command: its arguments, its site (loaded once), its output streams."""

    def __init__(
        self, args: argparse.Namespace, out: TextIO, err: TextIO | None = None, light: bool = False
    ) -> None:
        self.args = args
        self.out = out
        self.err = err or sys.stderr
        #: load the site light (a command that does not need the models)
        self.light = light
        self._migrations: Migrations | None = None

    def echo(self, text: str = "") -> None:
        print(text, file=self.out)

    @property
    def migrations(self) -> Migrations:
        if self._migrations is None:
            self._migrations = Migrations.from_config_uri(self.args.config_uri, light=self.light)
            # Commands that write wait for start-up (or another kotti-migrate): say so.
            self._migrations.on_lock_wait = self.waiting
        return self._migrations

    def waiting(self, message: str) -> None:
        print(f"kotti-migrate: {message}", file=self.err, flush=True)

    def default_location(self) -> Location:
        """``--scripts``, else the library's default location (Kotti's, else the only one)."""
        return self.migrations.location(getattr(self.args, "scripts", None) or None)

    def selected(self) -> Location | None:
        """``--scripts`` for a command over several locations (None: all of them)."""
        spec = getattr(self.args, "scripts", None)
        return self.migrations.location(spec) if spec else None

    def config_file(self) -> str:
        path, _ = split_config_uri(self.args.config_uri)
        return path

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
        run_startup(m, config_file=self.config_file())
        self.echo(
            f"Empty database {database.mask_url(m.engine.url)}: created its tables from the models "
            "and stamped every location at its head(s), as start-up does:"
        )
        for loc, revs in m.current().items():
            self.echo(f"  {loc.spec} ({loc.version_table}): {', '.join(revs or ()) or 'no revisions yet'}")
        return True

    def wait_for_heads(self, seconds: float) -> bool:
        """Poll (the revision index and one query) until every location is at its head(s)."""
        m = self.migrations
        selected = m.select(self.selected())
        heads = {loc: set(m.index(loc).heads) for loc in selected}
        deadline = time.monotonic() + seconds
        while True:
            current = m.current(self.selected())
            if all(set(current[loc] or ()) == heads[loc] and current[loc] for loc in selected):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))

    def upgrade(self, location: Location | None, revision: str) -> list[RunReport]:
        """The library's upgrade; when it fails, what it did before is shown first (then the error)."""
        try:
            return self.migrations.upgrade(location, revision, sql=self.args.sql)
        except MigrationFailed as exc:
            for report in exc.reports:
                self.report(report, "Upgrading")
            raise

    def report(self, report: RunReport, verb: str) -> None:
        """A run report: ``before -> after`` and one line per step (the SQL in ``--sql`` mode)."""
        loc = report.location
        if report.output:  # what the location's own env.py wrote
            self.err.write(report.output)
        if report.sql is not None:
            self.echo(report.sql.strip("\n") or f"-- {loc.spec}: nothing to do")
            return
        before = ", ".join(report.before) or "base"
        after = ", ".join(report.after) or "base"
        if report.failed:  # what a failed run committed before the failing revision
            stopped = f", stopped at {report.failed}"
            self.echo(f"{verb} {loc.spec} ({loc.version_table}): {before} -> {after}{stopped}")
            for step in report.steps:
                desc = f" ({step.description})" if step.description else ""
                self.echo(f"  - {step.direction} {step.revision}{desc}: committed")
            self.echo(f"  {len(report.steps)} step(s) applied and committed before {report.failed} failed")
            return
        self.echo(f"{verb} {loc.spec} ({loc.version_table}): {before} -> {after}")
        if not report.steps and before == after:
            self.echo("  - already up to date." if verb == "Upgrading" else "  - nothing to do.")
        total = 0.0
        for step in report.steps:
            total += step.seconds
            desc = f" ({step.description})" if step.description else ""
            self.echo(f"  - {step.direction} {step.revision}{desc}: {step.seconds:.3f} s")
        if report.steps:
            self.echo(f"  {len(report.steps)} step(s) in {total:.3f} s")


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
    if decision.action == "install":
        what = "new to this database, its revisions create tables no model defines"
        return f"{what}: create_all, then upgrade from base to {heads or 'head'}"
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


def describe_diff(diff: Any) -> str:
    """One readable line for one difference found by Alembic's comparison."""
    if isinstance(diff, tuple) and len(diff) == 4 and hasattr(diff[3], "name"):
        return f"{diff[0]}: {diff[2]}.{diff[3].name}"  # (add|remove)_column, schema, table, column
    if isinstance(diff, tuple) and diff:
        kind = diff[0]
        obj = diff[1] if len(diff) > 1 else None
        if isinstance(obj, (sa.ForeignKeyConstraint, sa.Index, sa.UniqueConstraint)):
            return f"{kind}: {describe_constraint(obj)}"
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


def describe_constraint(obj: Any) -> str:
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


def seconds(text: str) -> float:
    """An ``argparse`` type: a finite number of seconds, zero or more."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds")
    return value
