"""What kotti_migrate adds to app creation when the database is at head.

Builds, in a temporary folder, 10 migration locations of 1000 revisions
each (linear chains, files named as Alembic names them) and a SQLite
database stamped at head for all of them, then prints side by side:

(a) kotti_migrate's start-up work with everything at head
    (``kotti_migrate.boot.on_startup``: settings, locations, start-up
    lock, version tables, cached revision index), median of 20 runs after
    one warm-up run that fills the cache;
(b) the reference: loading the same 10 folders with Alembic's
    ``ScriptDirectory`` and asking for ``get_heads()`` (median of 3 runs,
    byte code already compiled).

Goal: (a) <= 50 ms.  Exits 1 when the goal is missed, or when a measured
start-up opened a revision file (start-up at head must use the cache).
Needs neither Kotti nor a running database::

    python benchmarks/startup.py [--locations 10] [--revisions 1000] [--runs 20]
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

import alembic
import sqlalchemy as sa
from _sites import age, write_package
from alembic.script import ScriptDirectory

from kotti_migrate.boot import on_startup
from kotti_migrate.commands import Migrations

GOAL_SECONDS = 0.050

def build_locations(root: Path, count: int, revisions: int) -> list[Path]:
    """``count`` packages ``bench_NN`` with an ``alembic/versions`` chain each."""
    folders = [write_package(root, f"bench_{n:02d}", n, revisions) for n in range(count)]
    age(root)
    return folders


def reference_heads(folders: list[Path]) -> list[str]:
    """What plain Alembic does to learn the heads: load every revision file."""
    heads = []
    for folder in folders:
        heads.extend(ScriptDirectory(str(folder)).get_heads())
    return heads


def stat_every_file(folders: list[Path]) -> int:
    """List and stat every revision file: what a cache check that notices any
    file edited in place (same name, same inode) would cost at the least."""
    count = 0
    for folder in folders:
        with os.scandir(folder / "versions") as it:
            for entry in it:
                entry.stat()
                count += 1
    return count


def measure(fn, runs: int) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU seconds of ``runs`` calls."""
    wall, cpu = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return wall, cpu


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


class RevisionFileOpens:
    """Counts files opened below ``root`` (an audit hook; imports open files too)."""

    def __init__(self, root: Path) -> None:
        self.prefix = str(root) + os.sep
        self.count = 0
        self.active = False
        sys.addaudithook(self)

    def __call__(self, event: str, args: tuple) -> None:
        if (
            self.active
            and event == "open"
            and isinstance(args[0], str)
            and args[0].startswith(self.prefix)
            and args[0].endswith((".py", ".pyc"))
        ):
            self.count += 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--locations", type=int, default=10)
    parser.add_argument("--revisions", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--reference-runs", type=int, default=3)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    # (b) is measured with byte code compiled, even under PYTHONDONTWRITEBYTECODE.
    sys.dont_write_bytecode = False

    root = Path(tempfile.mkdtemp(prefix="kotti_migrate_bench_"))
    try:
        t0 = time.perf_counter()
        folders = build_locations(root / "src", args.locations, args.revisions)
        settings = {
            "sqlalchemy.url": f"sqlite:///{root / 'site.db'}",
            "kotti.alembic_dirs": " ".join(str(f) for f in folders),
            "kotti_migrate.cache_dir": str(root / "cache"),
        }
        migrations = Migrations(settings)
        try:
            migrations.stamp_heads()  # also compiles every revision file's byte code
        finally:
            migrations.dispose()
        print(
            f"set-up: {args.locations} locations x {args.revisions} revisions, SQLite database "
            f"stamped at head, in {time.perf_counter() - t0:.1f} s"
        )
        print(
            f"Python {sys.version.split()[0]}, SQLAlchemy {sa.__version__}, Alembic {alembic.__version__}"
        )

        ref_wall, _ = measure(lambda: reference_heads(folders), args.reference_runs)
        heads = reference_heads(folders)
        assert len(heads) == args.locations, heads
        stat_wall, _ = measure(lambda: stat_every_file(folders), args.runs)

        opens = RevisionFileOpens(root / "src")
        shutil.rmtree(root / "cache", ignore_errors=True)  # the first start-up finds no index
        cold_start = time.perf_counter()
        decisions = on_startup(settings)  # warm-up: fills the revision index cache
        cold = time.perf_counter() - cold_start
        assert [d.action for d in decisions] == ["ok"] * args.locations, decisions
        opens.active = True
        wall, cpu = measure(lambda: on_startup(settings), args.runs)
        opens.active = False
        startup = statistics.median(wall)
        reference = statistics.median(ref_wall)

        load = os.getloadavg()[0]
        print(f"machine: {os.cpu_count()} CPUs, load average {load:.2f}"
              + ("  (busy: figures are inflated)" if load > 0.5 * (os.cpu_count() or 1) else ""))
        print()
        print(f"{'':56} {'median':>11}")
        print(f"{'(a) kotti_migrate start-up, everything at head':56} {ms(startup)}"
              f"   (CPU {ms(statistics.median(cpu)).strip()}; min {ms(min(wall)).strip()},"
              f" max {ms(max(wall)).strip()}; {args.runs} runs)")
        print(f"{'(b) Alembic ScriptDirectory + get_heads(), pyc warm':56} {ms(reference)}"
              f"   ({args.reference_runs} runs)")
        print(f"{'    first start-up, cache empty':56} {ms(cold)}")
        print(f"{'    for comparison: a stat of every revision file':56} "
              f"{ms(statistics.median(stat_wall))}   ({args.locations * args.revisions} files)")
        print()
        ok = True
        verdict = "met" if startup <= GOAL_SECONDS else "MISSED"
        print(f"goal: (a) <= {GOAL_SECONDS * 1000:.0f} ms median: {verdict}; "
              f"(a) is {reference / startup:.0f}x faster than (b)")
        if startup > GOAL_SECONDS:
            ok = False
        if opens.count:
            print(f"FAILED: measured start-ups opened {opens.count} revision files (the cache was not used)")
            ok = False
        else:
            print("measured start-ups opened no revision file (the cache was used)")
        return 0 if ok else 1
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
