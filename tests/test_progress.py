"""Long upgrades show progress: one line as each revision starts and one as it finishes.

``[2/3] <location>: upgrade <revision> (<message>) ...`` then ``... done in 0.004 s``, logged at
INFO on ``kotti_migrate.progress``: ``kotti-migrate`` writes them to stderr (its other output
unchanged), start-up to wherever the app's logging sends ``kotti_migrate``'s INFO lines.
Runs on every stack: a Kotti site (Kotti 2.0.9) or the plain Pyramid 2 app.
"""

from __future__ import annotations

import re

import pytest
from helpers import STACK, boot, cli, one_error_line, started, tables, versions, write_location

FIRST, REVS = "p0000000001a", ["p0000000002b", "p0000000003c", "p0000000004d"]
PACKAGE = "progress_addon"
VERSION_TABLE = f"{PACKAGE}_alembic_version"


@pytest.fixture
def site(tmp_path, db_url, kotti_ini, modern_ini):
    """A site at FIRST of a filesystem location, whose code then gains three revisions."""
    location = write_location(tmp_path / PACKAGE / "alembic", [(FIRST, None, "")])
    if STACK == "modern":
        ini = modern_ini(db_url, kotti__alembic_dirs=str(location))
    else:
        ini = kotti_ini(db_url, addons=False, kotti__alembic_dirs=f"kotti:alembic {location}")
    result = cli(ini, "prepare")
    assert result.code == 0, result.err
    assert versions(db_url, VERSION_TABLE) == [FIRST]
    write_location(
        location,
        [
            (REVS[0], FIRST, "op.create_table('gadgets', sa.Column('id', sa.Integer(), primary_key=True))"),
            (REVS[1], REVS[0], "op.add_column('gadgets', sa.Column('name', sa.String(50)))"),
            (REVS[2], REVS[1], "op.add_column('gadgets', sa.Column('size', sa.Integer()))"),
        ],
    )
    return ini, db_url, location


def progress(text: str, location) -> list[tuple[str, str, str]]:
    """(counter, revision, what followed) of every progress line in ``text``."""
    pattern = rf"(\[\d+/\d+\]) {re.escape(str(location))}: upgrade (\w+) \(Revision \w+\) (.*)$"
    return [m.groups() for m in re.finditer(pattern, text, re.M)]


def test_cli_upgrade_writes_a_line_as_each_revision_starts_and_finishes(site):
    ini, url, location = site
    result = cli(ini, "upgrade", f"--scripts={location}")
    assert result.code == 0, result.err

    lines = progress(result.err, location)
    assert [(counter, rev) for counter, rev, _ in lines] == [
        ("[1/3]", REVS[0]), ("[1/3]", REVS[0]),
        ("[2/3]", REVS[1]), ("[2/3]", REVS[1]),
        ("[3/3]", REVS[2]), ("[3/3]", REVS[2]),
    ]  # fmt: skip
    starts, ends = lines[0::2], lines[1::2]
    assert all(after == "..." for _, _, after in starts)
    assert all(re.fullmatch(r"done in \d+\.\d{3} s", after) for _, _, after in ends)
    assert len(result.err.splitlines()) == 6  # nothing else on stderr
    # Standard output as before: the report once it is done.
    assert result.out.splitlines()[0] == f"Upgrading {location} ({VERSION_TABLE}): {FIRST} -> {REVS[2]}"
    assert result.out.splitlines()[-1].startswith("  3 step(s) in ")
    assert versions(url, VERSION_TABLE) == [REVS[2]]

    # A revision that fails says so on its line; the ones before it are done.
    write_location(location, [("p0000000005e", REVS[2], "raise RuntimeError('boom')")])
    result = cli(ini, "upgrade", f"--scripts={location}")
    assert result.code == 1
    assert re.search(r"^\[1/1\] .* upgrade p0000000005e \(Revision p0000000005e\) \.\.\.$", result.err, re.M)
    assert re.search(r"^\[1/1\] .* p0000000005e \(Revision p0000000005e\) failed after \d+\.\d{3} s$",
                     result.err, re.M)  # fmt: skip
    assert versions(url, VERSION_TABLE) == [REVS[2]]


def test_startup_log_shows_each_revision_as_it_runs(site):
    ini, url, location = site
    ini.write_text(ini.read_text() + "kotti_migrate.auto_upgrade = true\n")
    result = boot(ini)
    started(result)
    lines = [
        line for line in result.err.splitlines() if line.startswith("INFO [kotti_migrate.progress] ")
    ]
    assert len(lines) == 6, result.err
    assert [line.split()[2] for line in lines] == ["[1/3]", "[1/3]", "[2/3]", "[2/3]", "[3/3]", "[3/3]"]
    assert lines[0].endswith(f"{location}: upgrade {REVS[0]} (Revision {REVS[0]}) ...")
    assert re.search(rf"{REVS[2]} \(Revision {REVS[2]}\) done in \d+\.\d{{3}} s$", lines[-1])
    assert versions(url, VERSION_TABLE) == [REVS[2]]


@pytest.mark.parametrize("own_env", [False, True])
def test_a_failed_upgrade_says_which_revisions_it_committed_before(site, own_env):
    """Three revisions, the third raises: the first two stay, and the output says so (not only stderr).

    With an env.py of its own, the location runs one revision per run of it.
    """
    ini, url, location = site
    if own_env:
        (location / "env.py").write_text(
            "from kotti_migrate.environment import run_default_environment\n\nrun_default_environment()\n"
        )
    write_location(location, [(REVS[2], REVS[1], "raise RuntimeError('boom')")])
    for command in ("upgrade", "upgrade_all"):
        result = cli(ini, command, *([f"--scripts={location}"] if command == "upgrade" else []))
        line = one_error_line(result)
        assert line == (
            f"kotti-migrate: error: location '{location}': revision {REVS[2]} failed: RuntimeError: boom; "
            f"the database is at {REVS[1]}; fix revision {REVS[2]} and upgrade again"
        )
        if command == "upgrade":
            assert result.out.splitlines() == [
                f"Upgrading {location} ({VERSION_TABLE}): {FIRST} -> {REVS[1]}, stopped at {REVS[2]}",
                f"  - upgrade {REVS[0]} (Revision {REVS[0]}): committed",
                f"  - upgrade {REVS[1]} (Revision {REVS[1]}): committed",
                f"  2 step(s) applied and committed before {REVS[2]} failed",
            ]
            assert versions(url, VERSION_TABLE) == [REVS[1]]
            assert "gadgets" in tables(url)
        else:  # Kotti's location (done, nothing to do) first, then nothing committed before the failure
            assert result.out.splitlines()[-2:] == [
                f"Upgrading {location} ({VERSION_TABLE}): {REVS[1]} -> {REVS[1]}, stopped at {REVS[2]}",
                f"  0 step(s) applied and committed before {REVS[2]} failed",
            ]
