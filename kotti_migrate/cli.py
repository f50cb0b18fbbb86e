"""The ``kotti-migrate`` command: ``kotti-migrate <config_uri> <command> [options]``.

The commands themselves are :mod:`kotti_migrate.cli_commands`; here the
parser is made from their table, and errors become exit codes.

Only the CLI modules print.  Every expected failure becomes one line on
stderr and exit code 1 (2 for a command line that cannot be parsed, 3
when ``status`` or ``check`` find work to do); ``-v`` adds the traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import traceback
from typing import Any, Callable, Sequence, TextIO

from . import database
from .cli_commands import COMMANDS
from .cli_runner import Runner
from .errors import EXIT_ERROR, EXIT_OK, MigrateError
from .loading import split_config_uri

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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``kotti-migrate``, made from :data:`~kotti_migrate.cli_commands.COMMANDS`."""
    parser = _Parser(
        prog="kotti-migrate",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("config_uri", help="ini file of the site, optionally #section (as pserve)")
    parser.add_argument("-v", "--verbose", action="store_true", help="show tracebacks of errors")
    commands = parser.add_subparsers(dest="command", metavar="<command>", parser_class=_Parser)
    commands.required = True
    for command in COMMANDS.values():
        sub = commands.add_parser(command.name, help=command.help, description=command.help)
        # -v works after the command too (kotti-migrate app.ini upgrade -v).
        sub.add_argument(
            "-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
            help="show tracebacks of errors",
        )  # fmt: skip
        for argument in command.arguments:
            sub.add_argument(*argument.flags, **argument.options)
    return parser


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
    runner = Runner(args, out, err, light=COMMANDS[args.command].light)
    url = None
    progress: Callable[[], None] = lambda: None  # noqa: E731
    try:
        setup_logging(args.config_uri)
        progress = _show_progress(err)  # after: the ini's logging set-up resets child loggers
        return COMMANDS[args.command].run(runner)
    except MigrateError as exc:
        progress()  # its last lines before the error
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
        progress()
        print("kotti-migrate: interrupted", file=err)
        return EXIT_ERROR
    except Exception as exc:  # an unexpected failure: still one line unless -v
        progress()
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
        progress()
        if runner._migrations is not None:
            runner._migrations.dispose()


def _url_of(runner: Runner) -> Any:
    if runner._migrations is None:
        return None
    return runner._migrations.settings.get("sqlalchemy.url")


class _ProgressHandler(logging.StreamHandler):
    """Writes the progress lines, a "done" line together with the line after it (or at the end).

    One write per revision, not two: the stream (a pipe, a terminal) wakes its reader
    half as often, and a step that is still running has its "..." line shown at once.
    """

    pending = ""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + self.terminator
            if getattr(record, "step_done", False):  # see failures.Progress.finished
                self.pending += line
                return
            self.stream.write(self.pending + line)
            self.pending = ""
            self.flush()
        except Exception:  # pragma: no cover - as logging's own handlers do
            self.handleError(record)

    def close(self) -> None:
        if self.pending:
            self.stream.write(self.pending)
            self.pending = ""
            self.flush()
        super().close()


def _show_progress(err: TextIO) -> Callable[[], None]:
    """Write the per-revision progress lines (``kotti_migrate.progress``, INFO) to ``err``.

    Only those: the rest of the output stays as it is.  Returns the function that undoes it.
    """
    logger = logging.getLogger("kotti_migrate.progress")
    handler = _ProgressHandler(err)
    handler.setFormatter(logging.Formatter("%(message)s"))
    saved = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # not twice when the ini's logging shows kotti_migrate's INFO too

    def undo() -> None:
        if handler in logger.handlers:  # once
            logger.removeHandler(handler)
            handler.close()
            logger.level, logger.propagate = saved

    return undo


def setup_logging(config_uri: str) -> None:
    """Apply the ini file's logging configuration when it has one (the CLI's and ``alembic -c``'s)."""
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
        # Alembic logs each autogenerate plugin it registers (at import) and sets up (each
        # comparison) at INFO: not shown with the ini's alembic INFO unless the ini asks for them.
        plugins = "alembic.runtime.plugins"
        named = any(parser.get(s, "qualname", raw=True, fallback="") == plugins for s in parser.sections())
        if not named:
            logging.getLogger(plugins).setLevel(logging.WARNING)


def run() -> None:
    """Console script entry point."""
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    run()
