"""What a readiness probe request costs (``kotti_migrate.status_path``).

Builds, in a temporary folder, a site on an SQLite file at head: a Kotti
site (Kotti's own location) when Kotti is importable, else a plain Pyramid
app, with 10 further migration locations of 1000 revisions each (linear
chains).  Creates the app in this process as ``pserve`` would (start-up
included) and calls it as a WSGI application, without a server, side by side:

(a) ``GET /-/migrations``: the probe, everything at head (200);
(b) ``GET /-/static``: a static Pyramid view in the same app (the floor:
    routing, tweens, Kotti's request set-up);
(c) in a Kotti site, ``GET /``: Kotti's front page, for scale.

Goal: (a) <= 2 ms median, one SQL query per request, no revision file
read (the heads come from the index read once per process).  Exits 1 when
the goal is missed::

    python benchmarks/probe.py [--locations 10] [--revisions 1000] [--requests 500]
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa
from _sites import age, write_package
from webob import Request

from kotti_migrate.commands import Migrations
from kotti_migrate.settings import kotti_available

GOAL_SECONDS = 0.002
PROBE = "/-/migrations"
STATIC = "/-/static"

def build_locations(root: Path, count: int, revisions: int) -> list[Path]:
    """``count`` packages ``probe_NN`` with an ``alembic/versions`` chain each."""
    folders = [write_package(root, f"probe_{n:02d}", n, revisions) for n in range(count)]
    age(root)
    return folders


def includeme(config) -> None:
    """The static view (b), included into the app like any add-on."""
    from pyramid.response import Response

    config.add_route("benchmark_static", STATIC)
    config.add_view(lambda request: Response("ok"), route_name="benchmark_static")


def make_app(root: Path, folders: list[Path], kotti: bool):
    """The site's WSGI app, created as pserve creates it (kotti_migrate's start-up included)."""
    settings = {
        "sqlalchemy.url": f"sqlite:///{root / 'site.db'}",
        "kotti_migrate.cache_dir": str(root / "cache"),
        "kotti_migrate.status_path": PROBE,
    }
    dirs = " ".join(str(f) for f in folders)
    if kotti:
        from kotti import main

        settings.update({
            "kotti.site_title": "probe benchmark",
            "kotti.secret": "secret",
            "kotti.alembic_dirs": f"kotti:alembic {dirs}".strip(),
            "pyramid.includes": f"kotti_migrate {__name__}",
        })  # fmt: skip
        return main({}, **settings)  # a fresh database: created and stamped by start-up
    from pyramid.config import Configurator

    settings["kotti.alembic_dirs"] = dirs
    migrations = Migrations(settings)
    try:
        migrations.stamp_heads()
    finally:
        migrations.dispose()
    config = Configurator(settings=settings)
    config.include("kotti_migrate")
    includeme(config)
    return config.make_wsgi_app()


class Counter:
    """Revision files opened (an audit hook) and SQL statements run, while active."""

    def __init__(self, root: Path) -> None:
        self.prefix = str(root) + os.sep
        self.opens = self.queries = 0
        self.active = False
        sys.addaudithook(self._audit)
        sa.event.listen(sa.engine.Engine, "before_cursor_execute", self._query)

    def _audit(self, event: str, args: tuple) -> None:
        if self.active and event == "open" and isinstance(args[0], str) and args[0].startswith(self.prefix):
            if args[0].endswith((".py", ".pyc")):
                self.opens += 1

    def _query(self, conn, cursor, statement: str, *args) -> None:
        # Transaction control (the BEGIN kotti_migrate's SQLite engines emit) is no query.
        if self.active and statement.split(None, 1)[0].upper() not in ("BEGIN", "COMMIT", "ROLLBACK"):
            self.queries += 1


def timed(app, path: str, runs: int, expect: int) -> list[float]:
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        response = Request.blank(path).get_response(app)
        seconds.append(time.perf_counter() - start)
        assert response.status_int == expect, (path, response.status, response.text[:300])
    return seconds


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.2f} ms"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--locations", type=int, default=10)
    parser.add_argument("--revisions", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=500)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    kotti = kotti_available()

    root = Path(tempfile.mkdtemp(prefix="kotti_migrate_probe_"))
    try:
        t0 = time.perf_counter()
        folders = build_locations(root / "src", args.locations, args.revisions)
        app = make_app(root, folders, kotti)
        what = "Kotti site (kotti:alembic)" if kotti else "Pyramid app"
        print(f"set-up: {what} + {args.locations} locations x {args.revisions} revisions, "
              f"SQLite file at head, app created in {time.perf_counter() - t0:.1f} s")
        from importlib.metadata import version

        stack = f"Kotti {version('kotti')}, " if kotti else ""
        print(f"Python {sys.version.split()[0]}, {stack}Pyramid {version('pyramid')}, "
              f"SQLAlchemy {sa.__version__}")

        counter = Counter(root / "src")
        first_start = time.perf_counter()
        timed(app, PROBE, 1, 200)  # the first probe reads the revision index
        first = time.perf_counter() - first_start
        timed(app, STATIC, 20, 200)
        timed(app, PROBE, 20, 200)
        if kotti:
            timed(app, "/", 5, 200)  # templates compiled
        counter.active = True
        probe = timed(app, PROBE, args.requests, 200)
        counter.active = False
        queries = counter.queries / args.requests
        static = timed(app, STATIC, args.requests, 200)
        page = timed(app, "/", max(20, args.requests // 10), 200) if kotti else []

        load = os.getloadavg()[0]
        print(f"machine: {os.cpu_count()} CPUs, load average {load:.2f}"
              + ("  (busy: figures are inflated)" if load > 0.5 * (os.cpu_count() or 1) else ""))
        print()
        median = statistics.median(probe)
        print(f"{'':46} {'median':>10} {'p95':>10}")
        rows = [(f"(a) GET {PROBE} (probe, at head)", probe), (f"(b) GET {STATIC} (static view)", static)]
        if page:
            rows.append(("(c) GET / (Kotti's front page)", page))
        for label, seconds in rows:
            p95 = statistics.quantiles(seconds, n=20)[-1]
            print(f"{label:46} {ms(statistics.median(seconds))} {ms(p95)}   ({len(seconds)} requests)")
        print(f"{'    first probe request (reads the index)':46} {ms(first)}")
        print()
        ratios = f"probe / static view: {median / statistics.median(static):.1f}x"
        if page:
            ratios += f"; probe / front page: {median / statistics.median(page):.2f}x"
        print(ratios)
        print(f"per probe request: {queries:g} SQL quer{'y' if queries == 1 else 'ies'}, "
              f"{counter.opens} revision file(s) opened in {args.requests} requests")
        failures = []
        if median > GOAL_SECONDS:
            failures.append(f"median {median * 1000:.2f} ms > {GOAL_SECONDS * 1000:g} ms")
        if queries > 1:
            failures.append(f"{queries:g} queries per request (goal: one)")
        if counter.opens:
            failures.append(f"{counter.opens} revision files opened (goal: none)")
        goal = f"goal: probe median <= {GOAL_SECONDS * 1000:g} ms, one query, no revision file read"
        print(f"{goal}: " + ("met" if not failures else "MISSED: " + "; ".join(failures)))
        return 1 if failures else 0
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
