"""The pytest plugin for add-on authors (kotti_migrate.pytest_plugin), tested with pytester.

Each ready test passes on a good location and fails, with a message naming
the location, the revision and the difference, on a location broken in
exactly that way: two heads; a revision that fails; a downgrade that leaves
a column; a model column the migrations never add; an index left behind.
On SQLite and PostgreSQL; on the Kotti stack with Kotti add-ons (content
types; one pytest process of their own per run, as their models join
Kotti's metadata for good) and on the modern stack with Pyramid 2 /
SQLAlchemy 2 locations (in-process).
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
from helpers import REPO

pytest_plugins = ["pytester"]

PLUGIN = ["-p", "kotti_migrate.pytest_plugin", "-p", "no:kotti", "-p", "no:cacheprovider"]
CHECKS = [
    "single_head",
    "upgrade_fresh",
    "upgrade_stepwise",
    "stairway",
    "models_match",
    "downgrade_leaves_no_trace",
    "fresh_equals_migrated",
]

# case -> (model columns, revisions: (id, down, message, upgrade body, downgrade body))
CREATE = "op.create_table({table!r}, {id}, sa.Column('headline', sa.String(50)))"
DROP = "op.drop_table({table!r})"
CASES = {
    "good": (
        ["headline = sa.Column(sa.String(50))", "body = sa.Column(sa.Text)"],
        [
            ("good01", None, "Create {table}", CREATE, DROP),
            ("good02", "good01", "Add body", "op.add_column({table!r}, sa.Column('body', sa.Text()))",
             "with op.batch_alter_table({table!r}) as batch:\n    batch.drop_column('body')"),
            ("good03", "good02", "Fill empty bodies",
             "op.execute(\"UPDATE {table} SET body = '' WHERE body IS NULL\")", "pass"),
        ],
    ),
    "heads": (
        ["headline = sa.Column(sa.String(50))"],
        [
            ("head01", None, "Create {table}", CREATE, DROP),
            ("head2a", "head01", "One branch", "pass", "pass"),
            ("head2b", "head01", "Other branch", "pass", "pass"),
        ],
    ),
    "fails": (
        ["headline = sa.Column(sa.String(50))"],
        [
            ("fail01", None, "Create {table}", CREATE, DROP),
            ("fail02", "fail01", "Break things", "op.execute('UPDATE no_such_table SET x = 1')", "pass"),
        ],
    ),
    "leaves": (
        ["headline = sa.Column(sa.String(50))", "body = sa.Column(sa.Text)"],
        [
            ("lcol01", None, "Create {table}", CREATE, DROP),
            ("lcol02", "lcol01", "Add body",
             "op.add_column({table!r}, sa.Column('body', sa.Text()))", "pass"),
        ],
    ),
    "extra": (
        ["headline = sa.Column(sa.String(50))", "extra = sa.Column(sa.String(20))"],
        [("xtra01", None, "Create {table}", CREATE, DROP)],
    ),
    "index": (
        ["headline = sa.Column(sa.String(50), index=True)"],
        [
            ("indx01", None, "Create {table}", CREATE, DROP),
            ("indx02", "indx01", "Index headlines",
             "op.create_index('ix_{table}_headline', {table!r}, ['headline'])", "pass"),
        ],
    ),
}

# case -> {check: text its failure must contain}
EXPECTED_FAILURES = {
    "good": {},
    "heads": {"single_head": ["2 heads, 1 expected", "head2a (One branch)", "head2b (Other branch)"]},
    "fails": {"upgrade_stepwise": ["revision fail02 (Break things)", "no_such_table"]},
    "leaves": {
        "downgrade_leaves_no_trace": [
            "revision lcol02 (Add body)", "table {table}: column body", "left behind by its downgrade",
        ],
        "stairway": ["revision lcol02 (Add body)", "again after its downgrade"],
    },
    "extra": {
        "models_match": [
            "table {table}: column extra (VARCHAR(20)) is in the models, the migrations never add it"
        ],
        "fresh_equals_migrated": ["table {table}: column extra VARCHAR(20)", "only in the fresh database"],
    },
    "index": {
        "downgrade_leaves_no_trace": [
            "revision indx02 (Index headlines)", "index ix_{table}_headline (headline)",
            "left behind by its downgrade",
        ],
    },
}


def write_addon(root: Path, package: str, case: str, kotti: bool) -> str:
    """A package with models and an alembic/ location broken (or not) as ``case`` says."""
    columns, revisions = CASES[case]
    table = f"{package}_items"
    folder = root / package
    (folder / "alembic" / "versions").mkdir(parents=True)
    cls = "".join(part.title() for part in package.split("_"))
    if kotti:
        (folder / "__init__.py").write_text(
            "def kotti_configure(settings):\n"
            "    from . import models  # noqa: F401\n"
            f"    settings['kotti.alembic_dirs'] += ' {package}:alembic'\n"
        )
        body = textwrap.dedent(
            f"""\
            import sqlalchemy as sa
            from kotti.resources import Content


            class {cls}(Content):
                __tablename__ = {table!r}
                id = sa.Column(sa.Integer, sa.ForeignKey("contents.id"), primary_key=True)
            """
        )
        id_column = "sa.Column('id', sa.Integer(), sa.ForeignKey('contents.id'), primary_key=True)"
    else:
        (folder / "__init__.py").write_text("")
        body = textwrap.dedent(
            f"""\
            import sqlalchemy as sa
            from modern_base import Base


            class {cls}(Base):
                __tablename__ = {table!r}
                id = sa.Column(sa.Integer, primary_key=True)
            """
        )
        id_column = "sa.Column('id', sa.Integer(), primary_key=True)"
    body += "".join(f"    {column}\n" for column in columns)
    (folder / "models.py").write_text(body)
    for rev, down, message, upgrade, downgrade in revisions:
        def fill(text: str) -> str:
            return textwrap.indent(text.format(table=table, id=id_column), "    ")

        (folder / "alembic" / "versions" / f"{rev}.py").write_text(
            f'"""{message.format(table=table)}"""\n'
            "import sqlalchemy as sa\nfrom alembic import op\n\n"
            f"revision = {rev!r}\ndown_revision = {down!r}\n\n\n"
            f"def upgrade():\n{fill(upgrade)}\n\n\ndef downgrade():\n{fill(downgrade)}\n"
        )
    return f"{package}:alembic"


def write_addons(pytester: pytest.Pytester, kotti: bool) -> dict[str, str]:
    """Every case as a package of its own; case -> location spec."""
    root = pytester.path
    prefix = "kaddon" if kotti else "maddon"
    if not kotti:
        (root / "modern_base").mkdir()
        (root / "modern_base" / "__init__.py").write_text(
            "from sqlalchemy.orm import declarative_base\n\nBase = declarative_base()\n"
        )
    pytester.makeini("[pytest]\npythonpath = .\n")
    return {case: write_addon(root, f"{prefix}_{case}", case, kotti) for case in CASES}


def outcomes(output: str) -> dict[str, str]:
    """nodeid -> PASSED/FAILED/... from ``-v`` output."""
    found = {}
    for line in output.splitlines():
        match = re.match(r"^(kotti-migrate\[.+?\]::\w+) (PASSED|FAILED|ERROR|SKIPPED)", line)
        if match:
            found[match.group(1)] = match.group(2)
    return found


def failures(output: str) -> dict[str, str]:
    """nodeid -> text of its failure report."""
    sections = re.split(r"^_{3,} (kotti-migrate\[.+?\]::\w+) _{3,}$", output, flags=re.M)
    return {sections[i]: sections[i + 1] for i in range(1, len(sections) - 1, 2)}


def assert_ready_tests(output: str, specs: dict[str, str], secret: str | None = None) -> None:
    got = outcomes(output)
    texts = failures(output)
    for case, spec in specs.items():
        table = spec.split(":")[0] + "_items"
        expected = EXPECTED_FAILURES[case]
        for check in CHECKS:
            nodeid = f"kotti-migrate[{spec}]::{check}"
            if check in expected:
                assert got.get(nodeid) == "FAILED", f"{nodeid}: {got.get(nodeid)}\n{output}"
                text = texts[nodeid]
                assert f"location '{spec}'" in text, text
                for part in expected[check]:
                    assert part.format(table=table) in text, f"{part!r} not in:\n{text}"
                assert "Traceback" not in text and "kotti_migrate/" not in text, text
            elif case == "good":
                assert got.get(nodeid) == "PASSED", f"{nodeid}: {got.get(nodeid)}\n{texts.get(nodeid)}"
    if secret:
        assert secret not in output


def database_args(backend: str, request: pytest.FixtureRequest) -> tuple[list[str], str | None]:
    if backend == "sqlite":
        return [], None
    url = request.getfixturevalue("pg_server").new_database()
    from pg import PASSWORD

    return ["--kotti-migrate-url", url], PASSWORD


@pytest.mark.kotti
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_ready_tests_on_kotti_addons(pytester, request, backend):
    """Kotti add-ons (content types), good and broken: each check fails on its own breakage."""
    specs = write_addons(pytester, kotti=True)
    args, secret = database_args(backend, request)
    locations = [arg for spec in specs.values() for arg in ("--kotti-migrate", spec)]
    result = pytester.runpytest_subprocess(*PLUGIN, *args, *locations, "-v", "-W", "ignore", timeout=300)
    assert_ready_tests(result.stdout.str(), specs, secret)


@pytest.mark.modern
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_ready_tests_on_modern_locations(pytester, request, backend):
    """Pyramid 2 / SQLAlchemy 2 locations, good and broken, in-process."""
    specs = write_addons(pytester, kotti=False)
    args, secret = database_args(backend, request)
    locations = [arg for spec in specs.values() for arg in ("--kotti-migrate", spec)]
    result = pytester.runpytest(
        *PLUGIN, *args, *locations, "--kotti-migrate-setting", "kotti_migrate.metadata=modern_base.Base",
        "-v", "-W", "ignore",
    )
    assert_ready_tests(result.stdout.str(), specs, secret)


@pytest.mark.modern
def test_history_kind_and_summary_are_reported(pytester):
    """A history starting from create_all's tables is tested from create_all at head, downgraded."""
    root = pytester.path
    specs = write_addons(pytester, kotti=False)
    # The first revision alters a table that no revision creates (as Kotti's own history does).
    versions = root / "maddon_good" / "alembic" / "versions"
    (versions / "good01.py").write_text(
        (versions / "good01.py").read_text()
        .replace("op.create_table('maddon_good_items', sa.Column('id', sa.Integer(), primary_key=True), "
                 "sa.Column('headline', sa.String(50)))",
                 "op.add_column('maddon_good_items', sa.Column('headline', sa.String(50)))")
        .replace("op.drop_table('maddon_good_items')",
                 "with op.batch_alter_table('maddon_good_items') as batch:\n"
                 "        batch.drop_column('headline')")
    )
    result = pytester.runpytest(
        *PLUGIN, "--kotti-migrate", specs["good"], "--kotti-migrate-setting",
        "kotti_migrate.metadata=modern_base.Base", "-v", "-rP", "-W", "ignore",
    )
    result.assert_outcomes(passed=7)
    result.stdout.fnmatch_lines(
        ["*history starts from create_all's tables; 3 revision(s) applied one at a time*"]
    )
    result = pytester.runpytest(
        *PLUGIN, "--kotti-migrate", specs["extra"], "--kotti-migrate-setting",
        "kotti_migrate.metadata=modern_base.Base", "-rP", "-W", "ignore", "-k", "stairway",
    )
    result.assert_outcomes(passed=1, deselected=6)
    result.stdout.fnmatch_lines(["*history starts from an empty table set; up, down and up again*"])


@pytest.mark.modern
def test_inactive_without_a_location(pytester):
    """Loaded but not asked: no items of its own, options listed in --help."""
    pytester.makepyfile("def test_plain():\n    assert True\n")
    result = pytester.runpytest(*PLUGIN, "-v")
    result.assert_outcomes(passed=1)
    assert "kotti-migrate[" not in result.stdout.str()
    assert "kotti_migrate:" not in result.stdout.str()
    result = pytester.runpytest(*PLUGIN, "--help")
    result.stdout.fnmatch_lines(["*--kotti-migrate=LOCATION*", "*--kotti-migrate-url=URL*"])


@pytest.mark.modern
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_fixture_steps_a_data_migration(pytester, request, backend):
    """kotti_migrate_db: a database at a revision, rows put in, stepped up through a data migration."""
    specs = write_addons(pytester, kotti=False)
    args, _ = database_args(backend, request)
    pytester.makeini(
        "[pytest]\npythonpath = .\n"
        f"kotti_migrate = {specs['good']}\n"
        "kotti_migrate_settings = kotti_migrate.metadata = modern_base.Base\n"
    )
    pytester.makepyfile(
        test_data=f"""
        def test_bodies_filled(kotti_migrate_db):
            db = kotti_migrate_db(revision="good02")
            assert db.current == ("good02",)
            db.execute("INSERT INTO maddon_good_items (id, headline) VALUES (1, 'hi')")
            assert db.upgrade("+1") == ("good03",)
            assert db.execute("SELECT body FROM maddon_good_items") == [("",)]
            assert db.downgrade("base") == ()
            assert "maddon_good_items" not in db.tables()
            assert {backend!r} in db.url

        def test_unknown_revision(kotti_migrate_db):
            kotti_migrate_db(revision="nope")
        """
    )
    # The ready tests are on (ini option): deselect them to run only the fixture's tests.
    result = pytester.runpytest(*PLUGIN, *args, "-W", "ignore", "-k", "test_")
    result.assert_outcomes(passed=1, failed=1, deselected=7)
    result.stdout.fnmatch_lines(["*kotti_migrate_db(revision='nope'): *unknown revision 'nope'*"])


@pytest.mark.kotti
def test_example_addon(request):
    """The example Kotti add-on's own tests (plugin from its pytest.ini, fixtures), SQLite and PostgreSQL."""
    import os
    import subprocess
    import sys

    example = REPO / "examples" / "kotti_quotes"
    url = request.getfixturevalue("pg_server").new_database()
    path = os.pathsep.join([str(REPO), str(example), os.environ.get("PYTHONPATH", "")])
    env = dict(os.environ, PYTHONPATH=path)
    for extra in ([], ["--kotti-migrate-url", url]):
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "kotti_migrate.pytest_plugin", "-p", "no:kotti",
             "-p", "no:cacheprovider", "-v", "-W", "ignore", *extra],
            cwd=example, env=env, capture_output=True, text=True, timeout=300,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "kotti-migrate[kotti_quotes:alembic]::stairway PASSED" in proc.stdout
        assert "test_quote_authors_filled PASSED" in proc.stdout



@pytest.mark.modern
def test_settings_from_an_apps_ini(pytester, modern_ini, tmp_path):
    """--kotti-migrate-ini: the app's metadata and locations (Pyramid 2 app, its own directive)."""
    ini = modern_ini(f"sqlite:///{tmp_path}/unused.db")
    result = pytester.runpytest(
        *PLUGIN, "--kotti-migrate", "example_app:alembic", "--kotti-migrate-ini", str(ini), "-v", "-rP",
        "-W", "ignore",
    )
    result.assert_outcomes(passed=7)
    result.stdout.fnmatch_lines(["*location 'example_app:alembic': models match tables items, tags*"])
    assert not (tmp_path / "unused.db").exists()  # each test ran on a database of its own
