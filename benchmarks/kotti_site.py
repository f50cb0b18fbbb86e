"""What kotti_migrate costs in a real Kotti 2.0.9 site at head (issue 11).

Creates, in a temporary folder, a Kotti site on SQLite with Kotti's own
migration location plus ``--locations`` add-on packages (``bench_NN``,
registered by their ``kotti_configure`` as Kotti add-ons do) of
``--revisions`` revisions each, boots it once with kotti_migrate (tables
created, every location stamped at head), then measures side by side,
interleaved, every run in a fresh subprocess (so imports count):

(a) app creation (``pyramid.paster.get_app``, as ``pserve`` does) of the
    site with ``pyramid.includes = kotti_migrate`` and of the same site
    without it.  "added" is timed inside the process around what
    kotti_migrate adds: its import and ``includeme`` (Kotti's
    ``config.include('kotti_migrate')``) and the callables it registers
    with ``config.action`` (the start-up work).  Also the whole app
    creation's CPU time, ours vs without (min of the runs), so that no
    cost can hide outside "added".  In both, the SQLAlchemy dialect and
    driver of the site's URL are imported before app creation (and timed):
    Kotti's main creates its engine right after the configuration is
    committed, so the first engine of the process pays for them, kotti_migrate's
    when it is included;
(b) ``kotti-migrate <ini> status`` (``python -m kotti_migrate``) vs Kotti's
    own ``kotti-migrate <ini> list_all`` (``kotti.migrate:kotti_migrate_command``,
    called through ``python -c`` so that kotti_migrate's script of the same
    name cannot shadow it), wall time;
(c) ``kotti-migrate <ini> upgrade`` of one add-on's whole history (stamped
    at base first) vs plain ``alembic upgrade head`` on the same revision
    files (an Alembic project of its own, its own SQLite file).  Both commit
    each revision: kotti_migrate by design, Alembic because its SQLite
    support has no transactional DDL (a transaction per migration).  Each
    side's upgrade at head (nothing to do: loading the app, or Alembic's
    config, and the revision files) is timed too: the difference, divided
    by the number of revisions, is what one revision costs;
(d) the resident memory (RSS) of the process after app creation, ours vs
    without: what kotti_migrate adds to a booted worker at head.

Goals (exit 1 when one is missed): (a) added <= 10 ms median and whole app
creation CPU within 20 ms of the site without kotti_migrate (min of the
runs); (b) status <= 0.3 x list_all; (c) a revision costs no more than
1.25 x what it costs plain Alembic (kotti_migrate runs it on Kotti's ORM
session and logs its progress; loading the Kotti app, which Alembic does
not, is the fixed part, shown apart); (d) RSS added <= 5 MB (median); and an at-head boot opens no
revision file.  Run with the venv of the Kotti stack::

    .venv/kotti/bin/python benchmarks/kotti_site.py [--runs 11] [--cli-runs 5]

About 3 minutes on 2 cores.  Needs Kotti 2.0.9 and Alembic's CLI, no server.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _sites import age, write_package

GOAL_ADDED_MS = 10.0
GOAL_CPU_MS = 20.0
GOAL_STATUS_RATIO = 0.3
GOAL_UPGRADE_RATIO = 1.25
GOAL_RSS_MB = 5.0

#: What kotti_migrate adds to app creation, timed apart.
PARTS = ("import", "includeme", "actions")

PACKAGE = '''"""A generated Kotti add-on with a migration history of its own."""


def kotti_configure(settings):
    settings["kotti.alembic_dirs"] += " {name}:alembic"
'''

SITE_INI = """\
[app:main]
use = egg:kotti
sqlalchemy.url = sqlite:///{db}
kotti.site_title = kotti_migrate benchmark
kotti.secret = secret
kotti.configurators = {configurators}
{extra}
[server:main]
use = egg:waitress#main
listen = 127.0.0.1:6543
"""

PLAIN_ENV = '''"""A plain Alembic environment: one connection, one transaction for the run."""
from logging.config import fileConfig

from alembic import context
from sqlalchemy import engine_from_config, pool

config = context.config
fileConfig(config.config_file_name)  # as Alembic's own env.py: its INFO lines, one per revision
connectable = engine_from_config(
    config.get_section(config.config_ini_section), prefix="sqlalchemy.", poolclass=pool.NullPool
)
with connectable.connect() as connection:
    context.configure(connection=connection, target_metadata=None)
    with context.begin_transaction():
        context.run_migrations()
'''

#: An Alembic project as ``alembic init`` makes one: with logging, so that ``alembic upgrade``
#: shows a line per revision, as ``kotti-migrate upgrade`` shows its progress.
PLAIN_INI = """\
[alembic]
script_location = {location}
sqlalchemy.url = sqlite:///{db}

[loggers]
keys = root,sqlalchemy,alembic

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = WARNING
handlers = console

[logger_sqlalchemy]
level = WARNING
handlers =
qualname = sqlalchemy.engine

[logger_alembic]
level = INFO
handlers =
qualname = alembic

[handler_console]
class = StreamHandler
args = (sys.stderr,)
formatter = generic

[formatter_generic]
format = %(levelname)-5.5s [%(name)s] %(message)s
"""

#: Runs in a fresh interpreter: creates the app as pserve does and prints the figures.
CHILD = r'''
import json, os, sys, time
wall0, cpu0 = time.perf_counter(), time.process_time()
ini, versions_marker = sys.argv[1], sys.argv[2]
opened = []
def audit(event, args):
    if (event == "open" and isinstance(args[0], str) and args[0].startswith(versions_marker)
            and os.sep + "versions" + os.sep in args[0]):
        opened.append(args[0])
sys.addaudithook(audit)
from pyramid.config import Configurator
added = {"import": 0.0, "includeme": 0.0, "actions": 0.0, "cpu": 0.0}
populators = {"runs": 0, "ours": 0.0, "ours_cpu": 0.0}
inside = []
original_include, original_action = Configurator.include, Configurator.action
def timed(fn):
    def run(*args, **kw):
        w, c = time.perf_counter(), time.process_time()
        inside.append(True)
        try:
            return fn(*args, **kw)
        finally:
            inside.pop()
            added["actions"] += time.perf_counter() - w
            added["cpu"] += time.process_time() - c
    return run
def action(self, discriminator, callable=None, *args, **kw):
    return original_action(self, discriminator, timed(callable) if callable else None, *args, **kw)
def include(self, spec, route_prefix=None):
    # An include of kotti_migrate's from inside its includeme is timed by the outer one (and
    # must not put Configurator.action back before the outer includeme registers its actions).
    if (not (isinstance(spec, str) and spec.split(":")[0].split(".")[0] == "kotti_migrate")
            or Configurator.action is action):
        return original_include(self, spec, route_prefix)
    import importlib
    w, c = time.perf_counter(), time.process_time()
    importlib.import_module(spec.split(":")[0])
    w2 = time.perf_counter()
    added["import"] += w2 - w
    Configurator.action = action
    try:
        return original_include(self, spec, route_prefix)
    finally:
        Configurator.action = original_action
        added["includeme"] += time.perf_counter() - w2
        added["cpu"] += time.process_time() - c
Configurator.include = include
# Kotti's default populator (kotti.populators), counted: kotti_migrate runs it under its
# lock, moved from Kotti's initialize_sql (not added), and it must run once per boot.
import kotti.populate
original_populate = kotti.populate.populate
def populate():
    populators["runs"] += 1
    w, c = time.perf_counter(), time.process_time()
    try:
        return original_populate()
    finally:
        if inside:
            populators["ours"] += time.perf_counter() - w
            populators["ours_cpu"] += time.process_time() - c
kotti.populate.populate = populate
# The SQLAlchemy dialect and driver of the site's database, imported before app creation in
# both runs: Kotti's main builds its engine right after the configuration is committed, so
# whichever engine comes first imports them (kotti_migrate's at start-up, when included).
import configparser
from sqlalchemy.engine import make_url
parser = configparser.ConfigParser(interpolation=None)
parser.read(ini)
w = time.perf_counter()
dialect = make_url(parser["app:main"]["sqlalchemy.url"]).get_dialect()
(getattr(dialect, "import_dbapi", None) or dialect.dbapi)()
driver = time.perf_counter() - w
from pyramid.paster import get_app
app = get_app(ini)
wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
kb = lambda key: int(status[key].split()[0])
print(json.dumps({
    "wall": wall, "cpu": cpu,
    "added": added["import"] + added["includeme"] + added["actions"] - populators["ours"],
    "added_cpu": added["cpu"] - populators["ours_cpu"], "import": added["import"],
    "includeme": added["includeme"], "actions": added["actions"] - populators["ours"],
    "populators": populators["ours"], "populator_runs": populators["runs"], "driver": driver,
    "rss_kb": kb("VmRSS"), "hwm_kb": kb("VmHWM"), "opened": len(opened),
    "kotti_migrate": "kotti_migrate" in sys.modules,
}))
'''

KOTTI_LIST_ALL = (
    "import sys; from kotti.migrate import kotti_migrate_command; "
    "sys.argv[1:] = [sys.argv[1], 'list_all']; sys.exit(kotti_migrate_command())"
)

PLAIN_ALEMBIC = "import sys; from alembic.config import main; main(argv=sys.argv[1:])"


class Site:
    """The generated Kotti site and the commands run against it."""

    def __init__(self, root: Path, locations: int, revisions: int) -> None:
        self.root = root
        self.src = root / "src"
        self.db = root / "site.db"
        self.names = [f"bench_{n:02d}" for n in range(locations)]
        self.revisions = revisions
        configurators = " ".join(f"{name}.kotti_configure" for name in self.names)
        ours = f"pyramid.includes = kotti_migrate\nkotti_migrate.cache_dir = {root / 'cache'}\n"
        self.ours = root / "site.ini"
        self.plain = root / "plain_kotti.ini"
        self.ours.write_text(SITE_INI.format(db=self.db, configurators=configurators, extra=ours))
        self.plain.write_text(SITE_INI.format(db=self.db, configurators=configurators, extra=""))
        self.alembic_ini = root / "alembic_project" / "alembic.ini"
        self.env = dict(os.environ)
        self.env["PYTHONPATH"] = os.pathsep.join(
            [str(self.src)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        )
        self.env.pop("KOTTI_MIGRATE_AUTO_UPGRADE", None)
        self.env.pop("KOTTI_DISABLE_POPULATORS", None)
        # Byte code as in a deployment, for every package alike (none written elsewhere).
        self.env.pop("PYTHONDONTWRITEBYTECODE", None)
        self.env["PYTHONPYCACHEPREFIX"] = str(root / "pycache")

    def build(self) -> None:
        for index, name in enumerate(self.names):
            write_package(self.src, name, index, self.revisions, PACKAGE.format(name=name))
        # A plain Alembic project on the first add-on's revision files.
        project = self.alembic_ini.parent
        (project / "migrations").mkdir(parents=True)
        (project / "migrations" / "env.py").write_text(PLAIN_ENV)
        (project / "migrations" / "versions").symlink_to(self.src / self.names[0] / "alembic" / "versions")
        plain_ini = PLAIN_INI.format(location=project / "migrations", db=project / "plain.db")
        self.alembic_ini.write_text(plain_ini)
        # Byte code compiled for everybody alike; files as old as installed ones (a
        # revision file written in the last seconds is not cached yet, see scripts.py).
        self.python("-m", "compileall", "-q", str(self.src))
        age(self.src)

    def python(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        self._cpu_mark = _children_cpu()
        result = subprocess.run(
            [sys.executable, *args], env=self.env, cwd=self.root, capture_output=True, text=True
        )
        if check and result.returncode != 0:
            raise SystemExit(
                f"benchmark: {' '.join(args[:3])} ... failed ({result.returncode}):\n"
                f"{result.stdout[-2000:]}{result.stderr[-3000:]}"
            )
        return result

    def timed(self, *args: str, ok: tuple[int, ...] = (0,)) -> float:
        start = time.perf_counter()
        result = self.python(*args, check=False)
        seconds = time.perf_counter() - start
        self.last_cpu = _children_cpu() - self._cpu_mark
        if result.returncode not in ok:
            raise SystemExit(
                f"benchmark: {' '.join(args[:4])} ... failed ({result.returncode}):\n"
                f"{result.stdout[-2000:]}{result.stderr[-3000:]}"
            )
        return seconds

    def boot(self, ini: Path) -> dict:
        result = self.python("-c", CHILD, str(ini), str(self.src) + os.sep)
        return json.loads(result.stdout.strip().splitlines()[-1])

    def kotti_migrate(self, *args: str, ok: tuple[int, ...] = (0,)) -> float:
        return self.timed("-m", "kotti_migrate", str(self.ours), *args, ok=ok)

    def kotti_list_all(self) -> float:
        return self.timed("-c", KOTTI_LIST_ALL, str(self.plain))

    def alembic(self, *args: str) -> float:
        return self.timed("-c", PLAIN_ALEMBIC, "-c", str(self.alembic_ini), *args)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def median(values: list[float]) -> float:
    return statistics.median(values)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def row(what: str, ours: str, theirs: str, ratio: str, goal: str, verdict: str) -> str:
    return f"{what:<44} {ours:>12} {theirs:>12} {ratio:>9}  {goal:<24} {verdict}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--locations", type=int, default=10, help="add-on locations (default 10)")
    parser.add_argument("--revisions", type=int, default=1000, help="revisions each (default 1000)")
    parser.add_argument("--runs", type=int, default=11, help="app creations each, interleaved (default 11)")
    parser.add_argument("--cli-runs", type=int, default=3, help="status / list_all runs each (default 3)")
    parser.add_argument("--upgrade-runs", type=int, default=5, help="upgrade runs each (default 5)")
    parser.add_argument("--parts", default="abcd", help="what to measure (default abcd; d comes with a)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary site (its path is printed)")
    args = parser.parse_args(argv)

    import alembic
    import sqlalchemy

    import kotti_migrate

    root = Path(tempfile.mkdtemp(prefix="kotti_migrate_site_"))
    goals: dict[str, bool] = {}
    lines: list[str] = []

    def verdict(key: str, ok: bool) -> str:
        goals[key] = ok
        return "ok" if ok else "MISSED"

    try:
        t0 = time.perf_counter()
        site = Site(root, args.locations, args.revisions)
        site.build()
        first = site.boot(site.ours)  # creates the tables, stamps every location, fills the index
        site.boot(site.plain)  # byte code of everything the plain site imports
        setup = time.perf_counter() - t0
        site.kotti_migrate("status")  # exit 0: everything at head
        print(
            f"site: Kotti {_version('Kotti')} on SQLite, kotti:alembic + {args.locations} add-ons x "
            f"{args.revisions} revisions, all at head; set up (first boot {first['wall']:.1f} s) "
            f"in {setup:.1f} s"
        )
        print(
            f"Python {sys.version.split()[0]}, SQLAlchemy {sqlalchemy.__version__}, Alembic "
            f"{alembic.__version__}, Pyramid {_version('pyramid')}; kotti_migrate from "
            f"{Path(kotti_migrate.__file__).parent}"
        )
        lines.append(row("", "kotti_migrate", "without", "ratio", "goal", ""))

        if "a" in args.parts or "d" in args.parts:
            # (a) + (d): app creation, interleaved, alternating which goes first.
            ours: list[dict] = []
            plain: list[dict] = []
            for i in range(args.runs):
                pair = [(site.ours, ours), (site.plain, plain)]
                for ini, into in pair if i % 2 == 0 else pair[::-1]:
                    into.append(site.boot(ini))
            assert all(b["kotti_migrate"] for b in ours) and not any(b["kotti_migrate"] for b in plain)
            added = median([b["added"] for b in ours])
            added_cpu = min(b["added_cpu"] for b in ours)
            cpu_ours, cpu_plain = min(b["cpu"] for b in ours), min(b["cpu"] for b in plain)
            wall_ours, wall_plain = median([b["wall"] for b in ours]), median([b["wall"] for b in plain])
            runs_ours = max(b["populator_runs"] for b in ours)
            runs_plain = max(b["populator_runs"] for b in plain)
            opened = max(b["opened"] for b in ours)
            n = args.runs
            lines.append(row(
                f"(a) added to app creation, median of {n}", ms(added), "", "",
                f"<= {GOAL_ADDED_MS:.0f} ms", verdict("added", added * 1000 <= GOAL_ADDED_MS),
            ))  # fmt: skip
            lines.append(row(
                "    import / includeme / actions (medians)",
                "/".join(f"{median([b[k] for b in ours]) * 1000:.1f}" for k in PARTS) + " ms",
                "", "", f"CPU min {ms(added_cpu)}", "",
            ))  # fmt: skip
            lines.append(row(
                "    Kotti's populators, under the lock", ms(median([b["populators"] for b in ours])), "",
                "", "moved, not added", "",
            ))  # fmt: skip
            lines.append(row(
                "    dialect + driver, imported before, both", ms(median([b["driver"] for b in ours])),
                ms(median([b["driver"] for b in plain])), "", "Kotti's engine's", "",
            ))  # fmt: skip
            lines.append(row(
                "    populator runs per boot", str(runs_ours), str(runs_plain), "", "the same",
                verdict("populators", runs_ours == runs_plain),
            ))  # fmt: skip
            lines.append(row(
                f"    app creation CPU, min of {n}", ms(cpu_ours), ms(cpu_plain),
                f"{(cpu_ours - cpu_plain) * 1000:+.1f}", f"<= +{GOAL_CPU_MS:.0f} ms",
                verdict("cpu", (cpu_ours - cpu_plain) * 1000 <= GOAL_CPU_MS),
            ))  # fmt: skip
            lines.append(row(
                f"    app creation wall, median of {n}", ms(wall_ours), ms(wall_plain),
                f"{(wall_ours - wall_plain) * 1000:+.1f}", "(information)", "",
            ))  # fmt: skip
            lines.append(row(
                "    revision files an at-head boot opens", str(opened), "", "", "0",
                verdict("opened", opened == 0),
            ))  # fmt: skip
            rss = median([b["rss_kb"] for b in ours]) - median([b["rss_kb"] for b in plain])
            hwm = median([b["hwm_kb"] for b in ours]) - median([b["hwm_kb"] for b in plain])
            lines.append(row(
                f"(d) RSS after app creation, median of {n}",
                f"{median([b['rss_kb'] for b in ours]) / 1024:.1f} MB",
                f"{median([b['rss_kb'] for b in plain]) / 1024:.1f} MB", f"{rss / 1024:+.1f} MB",
                f"<= +{GOAL_RSS_MB:.0f} MB", verdict("rss", rss / 1024 <= GOAL_RSS_MB),
            ))  # fmt: skip
            lines.append(row("    peak RSS (VmHWM)", "", "", f"{hwm / 1024:+.1f} MB", "(information)", ""))

        if "b" in args.parts:
            # (b): status vs Kotti's list_all, interleaved; CPU of the processes too.
            status, list_all, status_cpu, list_all_cpu = [], [], [], []
            for _ in range(args.cli_runs):
                status.append(site.kotti_migrate("status"))
                status_cpu.append(site.last_cpu)
                list_all.append(site.kotti_list_all())
                list_all_cpu.append(site.last_cpu)
            shutil.rmtree(root / "cache", ignore_errors=True)
            status_cold = site.kotti_migrate("status")  # builds the index again
            ratio = median(status) / median(list_all)
            n = args.cli_runs
            lines.append(row(
                f"(b) status vs Kotti's list_all, median of {n}", f"{median(status):.2f} s",
                f"{median(list_all):.2f} s", f"{ratio:.2f}x", f"<= {GOAL_STATUS_RATIO}x",
                verdict("status", ratio <= GOAL_STATUS_RATIO),
            ))  # fmt: skip
            lines.append(row(
                f"    CPU time, min of {n}", f"{min(status_cpu):.2f} s", f"{min(list_all_cpu):.2f} s",
                f"{min(status_cpu) / min(list_all_cpu):.2f}x", "(information)", "",
            ))  # fmt: skip
            lines.append(row(
                "    status after a change (index rebuilt)", f"{status_cold:.2f} s", "", "", "(information)",
                "",
            ))  # fmt: skip

        if "c" in args.parts:
            # (c): upgrade of one add-on's whole history vs plain Alembic.
            location = f"--scripts={site.names[0]}:alembic"
            upgrade, plain_upgrade, upgrade_cpu, plain_cpu = [], [], [], []
            at_head, plain_at_head = [], []
            for _ in range(args.upgrade_runs):
                site.kotti_migrate("stamp", location, "--rev", "base")
                upgrade.append(site.kotti_migrate("upgrade", location))
                upgrade_cpu.append(site.last_cpu)
                at_head.append(site.kotti_migrate("upgrade", location))  # nothing left to do
                site.alembic("stamp", "base")
                plain_upgrade.append(site.alembic("upgrade", "head"))
                plain_cpu.append(site.last_cpu)
                plain_at_head.append(site.alembic("upgrade", "head"))
            site.kotti_migrate("status")  # at head again
            n, runs = args.revisions, args.upgrade_runs
            ours_each = (median(upgrade) - median(at_head)) / n
            plain_each = (median(plain_upgrade) - median(plain_at_head)) / n
            ratio = ours_each / plain_each
            lines.append(row(
                f"(c) upgrade {n} revisions vs alembic, median of {runs}",
                f"{median(upgrade):.2f} s", f"{median(plain_upgrade):.2f} s",
                f"{median(upgrade) / median(plain_upgrade):.2f}x", "(information)", "",
            ))  # fmt: skip
            lines.append(row(
                "    upgrade at head: loading, nothing to do", f"{median(at_head):.2f} s",
                f"{median(plain_at_head):.2f} s", f"{median(at_head) / median(plain_at_head):.2f}x",
                "(information)", "",
            ))  # fmt: skip
            lines.append(row(
                "    one revision: (whole - at head) / n", ms(ours_each), ms(plain_each), f"{ratio:.2f}x",
                f"<= {GOAL_UPGRADE_RATIO}x", verdict("upgrade", ratio <= GOAL_UPGRADE_RATIO),
            ))  # fmt: skip
            lines.append(row(
                f"    CPU time of the whole upgrade, min of {runs}", f"{min(upgrade_cpu):.2f} s",
                f"{min(plain_cpu):.2f} s", f"{min(upgrade_cpu) / min(plain_cpu):.2f}x",
                "(information: both commit", "each revision)",
            ))  # fmt: skip

        load = os.getloadavg()
        busy = load[0] > 0.5 * (os.cpu_count() or 1)
        print(
            f"machine: {os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
            + ("  (busy: wall times are inflated; CPU minima much less)" if busy else "")
        )
        print()
        print("\n".join(lines))
        print()
        missed = [key for key, ok in goals.items() if not ok]
        print("all goals met" if not missed else f"goals missed: {', '.join(missed)}")
        return 1 if missed else 0
    finally:
        if args.keep:
            print(f"site kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


def _version(distribution: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return "?"


if __name__ == "__main__":
    sys.exit(main())
