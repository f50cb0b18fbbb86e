"""Helpers shared by the test modules (imported normally: ``from helpers import ...``).

The stack this process runs on, reading the database, ini files, running
``kotti-migrate`` (in this process or as the console script), booting an app
in a fresh process or under ``pserve``, free ports, revision files and
temporary packages.  Fixtures live in conftest.py.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

HERE = Path(__file__).parent
#: Example projects the tests use (importable: conftest puts this folder on sys.path).
PROJECTS = HERE / "projects"
REPO = HERE.parent
STACKS = ("kotti", "kotti2", "modern")

try:
    import kotti  # noqa: F401
except ImportError:
    STACK = "modern"
else:
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        distribution("kotti2")
        STACK = "kotti2"
    except PackageNotFoundError:
        STACK = "kotti"

#: ``use =`` of a Kotti site's ini on this stack (kotti2's distribution is ``Kotti2``).
KOTTI_EGG = "egg:kotti2" if STACK == "kotti2" else "egg:kotti"

#: Kotti 2.0.9's head and the revision before it; kotti_notes' (tests/projects) two revisions.
KOTTI_HEAD = "814c4ec72f1"
KOTTI_PREVIOUS = "4a3de0d0804a"
NOTES_FIRST = "a1b2c3d4e5f6"
NOTES_HEAD = "b2c3d4e5f6a7"

#: The password of every test PostgreSQL URL (tests/pg.py): never in output.
PASSWORD = "s3cret-pw"


# -- the database --------------------------------------------------------------------


def tables(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return set(sa.inspect(conn).get_table_names())
    finally:
        engine.dispose()


def query(url: str, sql: str, **params):
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql), params).fetchall()
    finally:
        engine.dispose()


def execute(url: str, *statements: str) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            for statement in statements:
                conn.execute(sa.text(statement))
    finally:
        engine.dispose()


def versions(url: str, table: str) -> list[str]:
    """Rows of a version table (sorted); [] when it is empty."""
    return sorted(r[0] for r in query(url, f"SELECT version_num FROM {table}"))


def columns(url: str, table: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return {c["name"] for c in sa.inspect(conn).get_columns(table)}
    finally:
        engine.dispose()


# -- ini files ---------------------------------------------------------------------


def write_ini(path: Path, app: str, url: str, settings: dict | None = None) -> Path:
    """An ini file with an [app:main] section and the given settings."""
    lines = [f"use = {app}", f"sqlalchemy.url = {url}"]
    for key, value in (settings or {}).items():
        lines.append(f"{key} = {value}")
    path.write_text("[app:main]\n" + "\n".join(lines) + "\n")
    return path


@dataclass
class Result:
    code: int
    out: str
    err: str


def cli(*args: str) -> Result:
    """Run ``kotti-migrate`` in this process."""
    from kotti_migrate.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main([str(a) for a in args], out=out, err=err)
    return Result(code, out.getvalue(), err.getvalue())


def cli_process(*args: str, env: dict | None = None, cwd: str | None = None, timeout: int = 120) -> Result:
    """Run the installed ``kotti-migrate`` console script."""
    exe = Path(sys.executable).parent / "kotti-migrate"
    proc = subprocess.run(
        [str(exe), *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        timeout=timeout,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


#: What :func:`boot` runs: the app factory, as pserve calls it, then one request.
BOOT_SCRIPT = """\
import logging, sys
logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                    format="%(levelname)s [%(name)s] %(message)s")
from pyramid.paster import get_app
import webtest
app = get_app({ini!r})
res = webtest.TestApp(app).get({request!r}, status="*")
print("STATUS", res.status_int)
"""


def boot(
    ini: Path,
    env: dict | None = None,
    request: str = "/",
    timeout: int = 120,
    python: str | Path | None = None,
    cwd: str | Path | None = None,
) -> Result:
    """Create the app from ``ini`` in a fresh process (as pserve does) and GET a page.

    ``python``: the interpreter of another virtualenv (default: this one);
    ``cwd``: the working directory (default: the ini file's folder).
    """
    script = BOOT_SCRIPT.format(ini=str(ini), request=request)
    proc = subprocess.run(
        [str(python or sys.executable), "-c", script],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=str(cwd or ini.parent),
        timeout=timeout,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


# -- start-up results ----------------------------------------------------------------


def started(result: Result) -> Result:
    """The app was created and served its front page."""
    assert result.code == 0, result.err
    assert "STATUS 200" in result.out, result.out + result.err
    return result


def failed(result: Result) -> str:
    """The app factory raised: returns the last line of stderr.

    That is the line an operator reads last under ``pserve``: it must be
    kotti_migrate's one-line message (an error of the start-up action:
    ``kotti_migrate: start-up failed: ...``; a bad setting refused by
    ``includeme``: ``kotti_migrate.errors.ConfigurationError: ...``).
    """
    assert result.code != 0, result.out + result.err
    assert "STATUS" not in result.out
    last = result.err.strip().splitlines()[-1].strip()
    assert last.startswith(("kotti_migrate: start-up failed: ", "kotti_migrate.errors.")), result.err
    return last


def logged(err: str, level: str) -> list[str]:
    """kotti_migrate's log lines of one level.

    :func:`boot` and :func:`serve` log as ``LEVEL [logger] message``; an
    app's own logging configuration may put a time and padding first
    (the Pyramid starter's ``%(asctime)s %(levelname)-5.5s [%(name)s]``).
    """
    pattern = re.compile(rf"(^|\s){level}\s*\[kotti_migrate")
    return [line for line in err.splitlines() if pattern.search(line)]


# -- pserve ------------------------------------------------------------------------


@dataclass
class Served:
    """What a ``pserve`` run did.

    :ivar code: pserve's exit code when it stopped by itself (start-up
        failed), None when it was serving (and was stopped by the test)
    :ivar status: HTTP status of the page fetched while it served
    """

    code: int | None
    status: int | None
    body: str
    err: str


def free_port() -> int:
    """A local TCP port nothing listens on (once the probing socket is closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def add_pserve_sections(ini: Path) -> int:
    """Give an ini file a waitress server on a free port and INFO logging to stderr.

    :returns: the port (the one already configured, if any)
    """
    text = ini.read_text()
    if "[server:main]" in text:
        return int(text.split("listen = 127.0.0.1:", 1)[1].split()[0])
    port = free_port()
    text += (
        f"\n[server:main]\nuse = egg:waitress#main\nlisten = 127.0.0.1:{port}\n"
        "\n[loggers]\nkeys = root\n\n[handlers]\nkeys = console\n\n[formatters]\nkeys = generic\n"
        "\n[logger_root]\nlevel = INFO\nhandlers = console\n"
        "\n[handler_console]\nclass = StreamHandler\nargs = (sys.stderr,)\nlevel = NOTSET\n"
        "formatter = generic\n"
        "\n[formatter_generic]\nformat = %(levelname)s [%(name)s] %(message)s\n"
    )
    ini.write_text(text)
    return port


def serve(
    ini: Path,
    env: dict | None = None,
    request: str = "/",
    timeout: float = 90,
    python: str | Path | None = None,
) -> Served:
    """Run ``pserve <ini>`` as a user would; GET ``request`` once it serves, then stop it.

    A start-up failure makes pserve exit by itself: its exit code is returned.
    ``python``: run the ``pserve`` of that interpreter's virtualenv.
    """
    port = add_pserve_sections(ini)
    return pserve(ini, port, env=env, request=request, timeout=timeout, python=python)


def stop(proc: subprocess.Popen) -> None:
    """Stop a server started by a test: terminate, then kill if it does not go within 10 s."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def pserve(
    ini: Path,
    port: int,
    *args: str,
    env: dict | None = None,
    request: str = "/",
    timeout: float = 90,
    python: str | Path | None = None,
) -> Served:
    """``pserve <ini> ARGS`` (serving on ``port``): GET ``request`` once it serves, then stop it."""
    exe = Path(python or sys.executable).parent / "pserve"
    err_path = ini.parent / f"pserve-{port}.err"
    with open(err_path, "w") as err_file:
        proc = subprocess.Popen(
            [str(exe), str(ini), *args],
            stdout=err_file,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=str(ini.parent),
        )
        status, body = None, ""
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    # Once pserve listens, one request with a long timeout: a
                    # retry while the first one is still served (slow first page
                    # on a busy machine) would make two requests at once, and
                    # Kotti's process-wide root cache hands the root of one
                    # request's session to the other ("already attached to session").
                    socket.create_connection(("127.0.0.1", port), timeout=5).close()
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}{request}", timeout=120) as res:
                        status, body = res.status, res.read().decode()
                    break
                except urllib.error.HTTPError as exc:
                    status, body = exc.code, exc.read().decode()
                    break
                except OSError:
                    time.sleep(0.2)
        finally:
            code = proc.poll()
            if code is None:
                stop(proc)
    if code is None and status is None:
        raise AssertionError(f"pserve neither served nor exited in {timeout} s:\n{err_path.read_text()}")
    return Served(code, status, body, err_path.read_text())


@dataclass
class Page:
    """One page fetched from a served app (redirects followed)."""

    path: str
    status: int
    url: str
    body: str


def serve_pages(
    ini: Path, paths: list[str], env: dict | None = None, timeout: float = 90
) -> tuple[list[Page], str]:
    """Run ``pserve <ini>``, GET every path in turn once it listens, then stop it.

    Each GET is a new connection, so waitress hands them to its worker
    threads in turn (a thread-bound database object shows up as a 500).
    The first GET waits for the port only: it is a real request as well.

    :returns: the pages, and pserve's output
    """
    port = add_pserve_sections(ini)
    exe = Path(sys.executable).parent / "pserve"
    err_path = ini.parent / f"pserve-{port}.err"
    pages = []
    with open(err_path, "w") as err_file:
        proc = subprocess.Popen(
            [str(exe), str(ini)], stdout=err_file, stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})}, cwd=str(ini.parent),
        )  # fmt: skip
        try:
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    raise AssertionError(f"pserve exited with {proc.returncode}:\n{err_path.read_text()}")
                if time.monotonic() >= deadline:
                    raise AssertionError(f"pserve did not listen in {timeout} s:\n{err_path.read_text()}")
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
                time.sleep(0.1)
            for path in paths:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as res:
                        pages.append(Page(path, res.status, res.url, res.read().decode()))
                except urllib.error.HTTPError as exc:
                    pages.append(Page(path, exc.code, exc.url, exc.read().decode()))
        finally:
            stop(proc)
    return pages, err_path.read_text()


def write_location(folder: Path, revisions: list[tuple[str, str | None, str]]) -> Path:
    """A filesystem migration location ``folder`` (inside a package folder) with revision files.

    ``revisions``: (revision id, down revision or None, body of ``upgrade()``).
    Revision files already there are kept, so a later call can add revisions.
    """
    package = folder.parent
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").touch()
    (folder / "versions").mkdir(parents=True, exist_ok=True)
    for rev, down, body in revisions:
        upgrade = textwrap.indent(textwrap.dedent(body).strip() or "pass", "    ")
        source = REVISION.format(doc=f"Revision {rev}", rev=rev, down=down, upgrade=upgrade)
        (folder / "versions" / f"{rev}_step.py").write_text(source)
    return folder


#: The test add-on ``steps_addon`` (a location under ``<tmp>/pkgs``): its version table and two
#: revision bodies: the ``steps`` table with one row, then a table and a column more (row renamed).
STEPS_TABLE = "steps_addon_alembic_version"
CREATE_STEPS = """
op.create_table("steps", sa.Column("id", sa.Integer, primary_key=True), sa.Column("name", sa.String(20)))
op.execute("INSERT INTO steps (id, name) VALUES (1, 'one')")
"""
ADD_MORE = """
op.create_table("steps_more", sa.Column("id", sa.Integer, primary_key=True))
op.add_column("steps", sa.Column("more", sa.Integer))
op.execute("UPDATE steps SET name = 'more'")
"""


def steps_location(tmp_path: Path, revisions: list) -> Path:
    """The ``steps_addon`` location under ``tmp_path/pkgs`` with ``revisions`` (as :func:`write_location`)."""
    return write_location(tmp_path / "pkgs" / "steps_addon" / "alembic", revisions)


def new_package(root: Path, prefix: str, files: dict[str, str] | None = None) -> tuple[str, Path]:
    """A package under ``root`` with a new name (``prefix`` + random hex) and ``files``.

    Python caches imported modules per process: a new name per test keeps
    one test's package from being seen by the next.  ``files`` maps paths
    relative to the package folder to their text; ``__init__.py`` is
    created empty unless given.  ``root`` must be on ``sys.path`` (and on
    ``PYTHONPATH`` for subprocesses).

    :returns: (package name, package folder)
    """
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    package = root / name
    package.mkdir(parents=True)
    files = {"__init__.py": "", **(files or {})}
    for relative, text in files.items():
        path = package / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return name, package


class Booting:
    """An app being created in a fresh process (see :func:`start_boot`)."""

    def __init__(self, proc: subprocess.Popen, out_path: Path, err_path: Path) -> None:
        self.proc = proc
        self.out_path = out_path
        self.err_path = err_path

    def wait_for_log(self, text: str, timeout: float = 60) -> None:
        """Wait until the process has logged ``text`` (fails if it exits or times out first)."""
        deadline = time.monotonic() + timeout
        while text not in self.err_path.read_text():
            if self.proc.poll() is not None:
                raise AssertionError(f"exited before logging {text!r}:\n{self.err_path.read_text()}")
            if time.monotonic() > deadline:
                self.proc.kill()
                raise AssertionError(f"{text!r} not logged in {timeout} s:\n{self.err_path.read_text()}")
            time.sleep(0.05)

    def result(self, timeout: float = 120) -> Result:
        """Wait for the process to end: what :func:`boot` returns."""
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        return Result(code, self.out_path.read_text(), self.err_path.read_text())


def start_boot(ini: Path, env: dict | None = None, request: str = "/") -> Booting:
    """:func:`boot` without waiting: its log can be watched while it runs."""
    script = BOOT_SCRIPT.format(ini=str(ini), request=request)
    out_path = ini.parent / f"boot-{uuid.uuid4().hex[:8]}.out"
    err_path = out_path.with_suffix(".err")
    with open(out_path, "w") as out, open(err_path, "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", script],
            stdout=out,
            stderr=err,
            env={**os.environ, **(env or {})},
            cwd=str(ini.parent),
        )
    return Booting(proc, out_path, err_path)


# -- a tiny Pyramid app (the ``tiny_app`` fixture) -------------------------------------

#: ``__init__.py`` of a tiny app package ``{name}``: one table, its own location.
TINY_APP_INIT = '''\
import sqlalchemy as sa
from pyramid.config import Configurator

metadata = sa.MetaData()
things = sa.Table(
    "things",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(50)),
)


def main(global_config, **settings):
    settings.setdefault("kotti_migrate.metadata", "{name}.metadata")
    config = Configurator(settings=settings)
    config.include("kotti_migrate")
    config.add_alembic_dir("{name}:alembic")
    return config.make_wsgi_app()
'''

#: A revision file: ``doc``, ``rev``, ``down`` and the body of ``upgrade`` (indented).
REVISION = '''\
"""{doc}

Revision ID: {rev}
Revises: {down}
"""
import sqlalchemy as sa
from alembic import op

revision = {rev!r}
down_revision = {down!r}


def upgrade():
{upgrade}


def downgrade():
    pass
'''

CREATE_THINGS = """\
    op.create_table(
        "things",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(50)),
    )"""


# -- kotti-migrate's error output ----------------------------------------------------

#: How every kotti-migrate error line begins.
ERROR_PREFIX = "kotti-migrate: error:"


#: The progress lines of an upgrade or downgrade (tests/test_progress.py), on stderr before the error.
PROGRESS = re.compile(r"\[\d+/\d+\] .* (\.\.\.|done in \d+\.\d{3} s|failed after \d+\.\d{3} s)")


def without_progress(err: str) -> list[str]:
    """stderr's lines without the progress lines of the revisions run."""
    return [line for line in err.strip("\n").splitlines() if not PROGRESS.fullmatch(line)]


def ok(result):
    """A run that succeeded and said nothing on stderr but its progress lines; its stdout."""
    assert result.code == 0, (result.code, result.out, result.err)
    assert without_progress(result.err) == [], result.err
    return result.out


def one_error_line(result, code: int = 1) -> str:
    """The single error line of a failed run (asserts the shape of the failure)."""
    assert result.code == code, (result.code, result.out, result.err)
    assert "Traceback" not in result.err, result.err
    every = result.err.strip("\n").splitlines()
    lines = [line for line in every if not PROGRESS.fullmatch(line)]  # the revisions run before it
    assert len(lines) == 1 and every[-1] == lines[0], result.err
    assert lines[0].startswith(ERROR_PREFIX), result.err
    assert PASSWORD not in result.out + result.err
    return lines[0]


def assert_verbose_traceback(result, line: str) -> None:
    """With -v: a traceback, and still the same one-line error at the end."""
    assert result.code == 1, result.err
    assert "Traceback (most recent call last)" in result.err, result.err
    assert result.err.strip("\n").splitlines()[-1] == line
    assert PASSWORD not in result.out + result.err


#: An ``env.py`` like Kotti's: it runs kotti_migrate's environment, prints an error and carries on.
SWALLOWING_ENV = '''\
import traceback

from alembic import context

from kotti_migrate.environment import run_default_environment

try:  # like Kotti's env.py: print the error, carry on
    run_default_environment()
except Exception:
    traceback.print_exc()
'''


#: An add-on of migrations only: no model defines the table its revisions create.
BOOKMARKS = [
    ("b00000000001", None, """
        op.create_table(
            "bookmarks", sa.Column("id", sa.Integer, primary_key=True), sa.Column("url", sa.String(200))
        )
        op.execute("INSERT INTO bookmarks (id, url) VALUES (1, 'https://example.org')")
    """),
    ("b00000000002", "b00000000001", 'op.add_column("bookmarks", sa.Column("title", sa.String(50)))'),
]  # fmt: skip
