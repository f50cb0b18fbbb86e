"""The revision index cache: start-up at head does not import revision files,
and any change to the revision files is seen at the next start-up.

Every revision file written here logs its import to ``imports.log`` next to
the location, which shows whether a call read the files or the cache.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from helpers import execute, tables, versions

from kotti_migrate.boot import AtHead, on_startup, start_up
from kotti_migrate.commands import Migrations
from kotti_migrate.locations import resolve_location
from kotti_migrate.scripts import revision_index

R1, R2, R3 = "aaaa00000001", "aaaa00000002", "aaaa00000003"
VERSION_TABLE = "gadgets_addon_alembic_version"


def write_revision(versions_dir: Path, rev: str, down: str | None, table: str | None = None) -> Path:
    """A revision file (Alembic's naming) that logs its import; optionally creates ``table``."""
    body = f"op.create_table({table!r}, sa.Column('id', sa.Integer, primary_key=True))" if table else "pass"
    path = versions_dir / f"{rev}_step.py"
    path.write_text(
        textwrap.dedent(
            f'''\
            """step {rev}

            Revision ID: {rev}
            Revises: {down or ""}
            """
            import pathlib

            import sqlalchemy as sa
            from alembic import op

            revision = {rev!r}
            down_revision = {down!r}

            pathlib.Path(__file__).parents[2].joinpath("imports.log").open("a").write({rev!r} + "\\n")


            def upgrade():
                {body}


            def downgrade():
                pass
            '''
        )
    )
    return path


def age(*paths: Path, seconds: float = 60) -> None:
    """Date files back, as files checked out or installed a while ago are."""
    past = time.time() - seconds
    for path in paths:
        os.utime(path, (past, past))


@pytest.fixture
def location_dir(tmp_path):
    """An add-on's migration folder with two revisions, R1 <- R2, dated back."""
    folder = tmp_path / "src" / "gadgets_addon" / "alembic"
    (folder / "versions").mkdir(parents=True)
    (folder.parent / "__init__.py").write_text("")
    age(
        write_revision(folder / "versions", R1, None),
        write_revision(folder / "versions", R2, R1),
    )
    return folder


def imports(folder: Path) -> list[str]:
    log = folder.parent / "imports.log"
    return log.read_text().split() if log.exists() else []


@pytest.fixture
def cache_dir(tmp_path):
    return tmp_path / "index-cache"


def index(folder: Path, cache_dir: Path | None):
    return revision_index(resolve_location(str(folder)), cache_dir)


def test_second_look_uses_the_cache(location_dir, cache_dir):
    first = index(location_dir, cache_dir)
    assert first.heads == (R2,)
    assert first.revisions == {R1, R2}
    assert sorted(imports(location_dir)) == [R1, R2]
    again = index(location_dir, cache_dir)
    assert again == first
    assert sorted(imports(location_dir)) == [R1, R2]  # nothing imported the second time


def test_added_revision_file_is_seen(location_dir, cache_dir):
    index(location_dir, cache_dir)
    write_revision(location_dir / "versions", R3, R2)
    assert index(location_dir, cache_dir).heads == (R3,)
    assert index(location_dir, cache_dir).revisions == {R1, R2, R3}


def test_removed_revision_file_is_seen(location_dir, cache_dir):
    age(write_revision(location_dir / "versions", R3, R2))
    assert index(location_dir, cache_dir).heads == (R3,)
    (location_dir / "versions" / f"{R3}_step.py").unlink()
    result = index(location_dir, cache_dir)
    assert result.heads == (R2,)
    assert R3 not in result.revisions


def test_file_edited_in_place_with_the_same_size_is_seen(location_dir, cache_dir):
    r3 = write_revision(location_dir / "versions", R3, R2)
    age(r3)
    inode, size = r3.stat().st_ino, r3.stat().st_size
    assert index(location_dir, cache_dir).heads == (R3,)
    # Re-point R3 at R1 in place (same file, same size): R2 and R3 become two heads.
    with open(r3, "r+") as fh:
        text = fh.read().replace(f"down_revision = {R2!r}", f"down_revision = {R1!r}")
        fh.seek(0)
        fh.write(text)
    assert (r3.stat().st_ino, r3.stat().st_size) == (inode, size)
    assert sorted(index(location_dir, cache_dir).heads) == [R2, R3]


def test_file_replaced_with_the_same_size_and_date_is_seen(location_dir, cache_dir):
    """An editor or VCS writing a new file over the old one, keeping its date."""
    r3 = write_revision(location_dir / "versions", R3, R2)
    age(r3)
    before = r3.stat()
    assert index(location_dir, cache_dir).heads == (R3,)
    replacement = location_dir / "versions" / "new.tmp"
    replacement.write_text(r3.read_text().replace(f"down_revision = {R2!r}", f"down_revision = {R1!r}"))
    os.utime(replacement, ns=(before.st_atime_ns, before.st_mtime_ns))
    os.replace(replacement, r3)
    assert (r3.stat().st_size, r3.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    assert sorted(index(location_dir, cache_dir).heads) == [R2, R3]


def test_file_edited_twice_within_one_clock_tick_is_seen(location_dir, cache_dir):
    """The second edit keeps size and date (as within one tick of a coarse file system clock)."""
    r3 = write_revision(location_dir / "versions", R3, R2)
    before = r3.stat()
    assert index(location_dir, cache_dir).heads == (R3,)
    with open(r3, "r+") as fh:
        text = fh.read().replace(f"down_revision = {R2!r}", f"down_revision = {R1!r}")
        fh.seek(0)
        fh.write(text)
    os.utime(r3, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (r3.stat().st_size, r3.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    assert sorted(index(location_dir, cache_dir).heads) == [R2, R3]


def test_without_cache_every_look_reads_the_files(location_dir):
    assert index(location_dir, None).heads == (R2,)
    assert index(location_dir, None).heads == (R2,)
    assert sorted(imports(location_dir)) == [R1, R1, R2, R2]


def test_corrupt_cache_file_is_ignored(location_dir, cache_dir):
    index(location_dir, cache_dir)
    for cached in cache_dir.iterdir():
        cached.write_text('{"format": 1, "fingerprint": ')
    assert index(location_dir, cache_dir).heads == (R2,)
    write_revision(location_dir / "versions", R3, R2)
    assert index(location_dir, cache_dir).heads == (R3,)


# -- through start-up, as a site would see it -------------------------------------


def settings_for(url: str, folder: Path, cache_dir: Path, **extra: str) -> dict:
    return {
        "sqlalchemy.url": url,
        "kotti.alembic_dirs": str(folder),
        "kotti_migrate.cache_dir": str(cache_dir),
        **{k.replace("__", "."): v for k, v in extra.items()},
    }


def test_startup_at_head_reads_no_revision_file(location_dir, cache_dir, sqlite_url):
    settings = settings_for(sqlite_url, location_dir, cache_dir)
    assert [d.action for d in on_startup(settings)] == ["upgrade"]  # fresh, no models: migrations run
    assert versions(sqlite_url, VERSION_TABLE) == [R2]
    assert [d.action for d in on_startup(settings)] == ["ok"]
    seen = imports(location_dir)
    assert [d.action for d in on_startup(settings)] == ["ok"]
    assert [d.action for d in on_startup(settings)] == ["ok"]
    assert imports(location_dir) == seen


def test_startup_sees_a_new_revision_file(location_dir, cache_dir, sqlite_url, caplog):
    settings = settings_for(sqlite_url, location_dir, cache_dir)
    on_startup(settings)
    assert [d.action for d in on_startup(settings)] == ["ok"]  # the cache now says R2
    write_revision(location_dir / "versions", R3, R2, table="gadgets")

    with caplog.at_level(logging.INFO, logger="kotti_migrate"):
        decisions = on_startup(settings)
    assert [d.action for d in decisions] == ["warn"]
    warning = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(f"is at {R2}, behind its head {R3}" in message for message in warning), warning
    assert versions(sqlite_url, VERSION_TABLE) == [R2]

    decisions = on_startup({**settings, "kotti_migrate.auto_upgrade": "true"})
    assert [d.action for d in decisions] == ["upgrade"]
    assert versions(sqlite_url, VERSION_TABLE) == [R3]
    assert "gadgets" in tables(sqlite_url)
    assert [d.action for d in on_startup(settings)] == ["ok"]


def test_older_file_edited_in_place_is_seen_once_kotti_migrate_ran(location_dir, cache_dir, sqlite_url):
    """Start-up trusts the index for non-head files; any kotti-migrate command refreshes it."""
    r3 = write_revision(location_dir / "versions", R3, R2)
    age(r3)
    settings = settings_for(sqlite_url, location_dir, cache_dir)
    on_startup(settings)
    assert [d.action for d in on_startup(settings)] == ["ok"]
    # Re-point R2 (not a head) at base, in place: R1 and R3 are now both heads.
    r2 = location_dir / "versions" / f"{R2}_step.py"
    inode = r2.stat().st_ino
    with open(r2, "r+") as fh:
        text = fh.read().replace(f"down_revision = {R1!r}", "down_revision = None          ")
        fh.seek(0)
        fh.write(text)
    assert r2.stat().st_ino == inode
    assert [d.action for d in on_startup(settings)] == ["ok"]  # the documented blind spot
    statuses = Migrations(settings).status()  # what `kotti-migrate <ini> status` runs
    assert statuses[0].heads == (R1, R3)
    assert [d.action for d in on_startup(settings)] == ["warn"]  # behind head R1 now


def test_startup_sees_a_removed_revision_file(location_dir, cache_dir, sqlite_url, caplog):
    """Code rolled back: the database is at a revision the files no longer have."""
    r3 = write_revision(location_dir / "versions", R3, R2)
    settings = settings_for(sqlite_url, location_dir, cache_dir)
    on_startup(settings)
    assert [d.action for d in on_startup(settings)] == ["ok"]
    assert versions(sqlite_url, VERSION_TABLE) == [R3]
    r3.unlink()
    with caplog.at_level(logging.WARNING, logger="kotti_migrate"):
        assert [d.action for d in on_startup(settings)] == ["warn"]
    assert f"at {R3}, a revision this code does not know" in caplog.text


def test_unwritable_cache_dir_does_not_break_startup(location_dir, tmp_path, sqlite_url, caplog):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    # Works for root too, unlike a read-only folder.
    settings = settings_for(sqlite_url, location_dir, blocker / "kotti_migrate")
    assert [d.action for d in on_startup(settings)] == ["upgrade"]
    assert [d.action for d in on_startup(settings)] == ["ok"]
    write_revision(location_dir / "versions", R3, R2, table="gadgets")
    with caplog.at_level(logging.WARNING, logger="kotti_migrate"):
        assert [d.action for d in on_startup(settings)] == ["warn"]
    assert f"behind its head {R3}" in caplog.text
    assert [d.action for d in on_startup({**settings, "kotti_migrate.auto_upgrade": "true"})] == ["upgrade"]
    assert versions(sqlite_url, VERSION_TABLE) == [R3]
    assert blocker.read_text() == "a file where the cache folder should be"


#: Run in a process that cannot write the cache folder: start-up twice.
READ_ONLY_STARTUP = """\
import json, os, sys
from kotti_migrate.boot import AtHead, on_startup, start_up
settings = json.loads(sys.argv[1])
cache = settings["kotti_migrate.cache_dir"]
assert os.listdir(cache) and not os.access(cache, os.W_OK), "the cache folder is writable"
upgrade = on_startup({**settings, "kotti_migrate.auto_upgrade": "1"})
again = on_startup(settings)
print(json.dumps([[d.action for d in upgrade], [d.action for d in again]]))
"""


def test_read_only_cache_dir_does_not_break_startup(location_dir, tmp_path, sqlite_url):
    """A cache folder filled once, then made read-only (a read-only home, say).

    Root ignores folder modes: the site runs in a process that, as root,
    has given up the capabilities that override them.
    """
    cache = tmp_path / "ro-cache"
    settings = settings_for(sqlite_url, location_dir, cache)
    on_startup(settings)
    on_startup(settings)
    cached = sorted(cache.rglob("*"))
    write_revision(location_dir / "versions", R3, R2, table="gadgets")
    command = [sys.executable]
    if os.geteuid() == 0:
        command = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--", *command]
    cache.chmod(0o500)
    try:
        proc = subprocess.run(
            [*command, "-c", READ_ONLY_STARTUP, json.dumps(settings)],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    finally:
        cache.chmod(0o700)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [["upgrade"], ["ok"]]
    assert versions(sqlite_url, VERSION_TABLE) == [R3]
    assert sorted(cache.rglob("*")) == cached  # nothing could be written there


def test_fresh_database_without_models_is_built_by_the_migrations(tmp_path, cache_dir, sqlite_url):
    """No metadata to create tables from: start-up runs the migrations instead of stamping."""
    folder = tmp_path / "src" / "widgets_addon" / "alembic"
    (folder / "versions").mkdir(parents=True)
    (folder.parent / "__init__.py").write_text("")
    write_revision(folder / "versions", R1, None, table="widgets")
    settings = settings_for(sqlite_url, folder, cache_dir)
    assert [d.action for d in on_startup(settings)] == ["upgrade"]
    assert "widgets" in tables(sqlite_url)
    assert versions(sqlite_url, "widgets_addon_alembic_version") == [R1]
    assert [d.action for d in on_startup(settings)] == ["ok"]


# -- issue 11: one stat per settled folder at start-up; read-only commands from the index ----


def test_status_reads_the_index_not_the_revision_files(location_dir, cache_dir, sqlite_url):
    settings = settings_for(sqlite_url, location_dir, cache_dir)
    first = Migrations(settings).status()  # builds the index (reads the files once)
    seen = imports(location_dir)
    assert sorted(seen) == [R1, R2]
    again = Migrations(settings).status()
    assert imports(location_dir) == seen  # no revision file imported
    for statuses in (first, again):
        assert statuses[0].current is None and statuses[0].heads == (R2,)
        assert [(s.revision, s.doc) for s in statuses[0].pending] == [(R2, f"step {R2}"), (R1, f"step {R1}")]


def test_settled_folder_still_sees_an_added_file(location_dir, cache_dir):
    """A folder dated back: one stat of it stands for its listing, and a new file changes it."""
    age(location_dir / "versions")
    assert index(location_dir, cache_dir).heads == (R2,)
    assert index(location_dir, cache_dir).heads == (R2,)
    write_revision(location_dir / "versions", R3, R2)
    assert index(location_dir, cache_dir).heads == (R3,)


def test_older_file_replaced_keeping_the_folder_date_is_seen_by_status(location_dir, cache_dir, sqlite_url):
    """``rsync -a`` of an edited older file: a new inode, and the folder's date set back.

    Start-up trusts the settled folder (the documented blind spot); ``status``
    checks every file and refreshes the index, so the next start-up sees it.
    """
    age(write_revision(location_dir / "versions", R3, R2))
    age(location_dir / "versions")
    settings = settings_for(sqlite_url, location_dir, cache_dir)
    on_startup(settings)
    assert [d.action for d in on_startup(settings)] == ["ok"]
    folder = (location_dir / "versions").stat()
    r2 = location_dir / "versions" / f"{R2}_step.py"
    replacement = location_dir / "versions" / "r2.tmp"
    replacement.write_text(r2.read_text().replace(f"down_revision = {R1!r}", "down_revision = None"))
    age(replacement)
    os.replace(replacement, r2)
    os.utime(location_dir / "versions", ns=(folder.st_atime_ns, folder.st_mtime_ns))
    assert [d.action for d in on_startup(settings)] == ["ok"]  # not seen at start-up
    assert Migrations(settings).status()[0].heads == (R1, R3)
    assert [d.action for d in on_startup(settings)] == ["warn"]  # behind head R1 now


# -- the site index: an at-head boot reads one file, one stat per folder and file -------


@pytest.fixture
def settled_dir(location_dir):
    """The location's folder dated back too: its index may trust one stat of it."""
    age(location_dir / "versions", location_dir)
    return location_dir


def booted_at_head(settings: dict) -> None:
    """Boot until start-up took the at-head path (the second boot writes nothing new)."""
    on_startup(settings)
    assert [d.action for d in on_startup(settings)] == ["ok"]
    assert isinstance(start_up(settings), AtHead)


def test_an_at_head_boot_reads_the_site_index_only(settled_dir, cache_dir, sqlite_url, caplog):
    settings = settings_for(sqlite_url, settled_dir, cache_dir)
    assert [d.action for d in on_startup(settings)] == ["upgrade"]  # the long way, then the index
    assert [p.name for p in cache_dir.glob("site-*.json")] != []
    seen = imports(settled_dir)
    with caplog.at_level(logging.INFO, logger="kotti_migrate"):
        record = start_up(settings)
    assert isinstance(record, AtHead)
    assert [d.action for d in record.decisions] == ["ok"]
    assert f"is at its head {R2}" in caplog.text  # the same line as the long way logs
    assert record.seconds is not None and record.finished is not None
    assert imports(settled_dir) == seen


def test_an_at_head_boot_sees_what_the_long_way_sees(settled_dir, cache_dir, sqlite_url, caplog):
    """A new revision file, the database moved back, a version table gone: the long way decides."""
    settings = settings_for(sqlite_url, settled_dir, cache_dir)
    booted_at_head(settings)
    execute(sqlite_url, f"UPDATE {VERSION_TABLE} SET version_num = '{R1}'")  # another tool downgraded
    assert [d.action for d in on_startup(settings)] == ["warn"]
    execute(sqlite_url, f"UPDATE {VERSION_TABLE} SET version_num = '{R2}'")
    booted_at_head(settings)
    write_revision(settled_dir / "versions", R3, R2, table="gadgets")
    assert [d.action for d in on_startup(settings)] == ["warn"]
    assert [d.action for d in on_startup({**settings, "kotti_migrate.auto_upgrade": "true"})] == ["upgrade"]
    assert "gadgets" in tables(sqlite_url)
    assert not isinstance(start_up(settings), AtHead)  # the folder just changed: not trusted yet
    age(*(settled_dir / "versions").iterdir(), settled_dir / "versions")
    booted_at_head(settings)
    # Another, empty database for the same code: its version table is missing.
    other = {**settings, "sqlalchemy.url": sqlite_url.replace("site.db", "other.db")}
    with caplog.at_level(logging.INFO, logger="kotti_migrate"):
        record = start_up(other)
    assert not isinstance(record, AtHead)
    assert [d.action for d in record.decisions] == ["upgrade"]
    assert versions(other["sqlalchemy.url"], VERSION_TABLE) == [R3]


def test_an_index_written_while_the_folder_was_new_is_trusted_once_it_settled(
    location_dir, cache_dir, sqlite_url, monkeypatch
):
    """A first boot right after the files were installed: later boots take the at-head path."""
    import kotti_migrate.scripts

    age(location_dir / "versions", seconds=10)  # revision files 60 s old, their folder 10 s
    settings = settings_for(sqlite_url, location_dir, cache_dir)
    monkeypatch.setattr(kotti_migrate.scripts, "_SETTLE_NS", 30 * 10**9)  # as if the folder were new
    on_startup(settings)
    assert [d.action for d in on_startup(settings)] == ["ok"]
    assert not isinstance(start_up(settings), AtHead)
    assert list(cache_dir.glob("site-*.json")) == []
    seen = imports(location_dir)
    monkeypatch.undo()  # time passed: the folder is 10 s old, so settled
    assert not isinstance(start_up(settings), AtHead)  # the index is marked settled, the site index written
    assert isinstance(start_up(settings), AtHead)
    assert imports(location_dir) == seen  # no revision file loaded for it


def test_what_names_the_version_table_changing_is_seen_at_head(settled_dir, cache_dir, sqlite_url):
    settings = settings_for(sqlite_url, settled_dir, cache_dir)
    booted_at_head(settings)
    # The setting naming the version table: a site index of its own (another key).
    renamed = {**settings, "kotti_migrate.version_table.gadgets_addon": "gadgets_versions"}
    record = start_up(renamed)
    assert not isinstance(record, AtHead)
    assert [d.location.version_table for d in record.decisions] == ["gadgets_versions"]
    # An env.py written into the location (it names the version table): its stat differs.
    booted_at_head(settings)
    env = settled_dir / "env.py"
    env.write_text(
        "from kotti_migrate.environment import run_default_environment\n\nrun_default_environment()\n"
    )
    age(env)
    assert not isinstance(start_up(settings), AtHead)
    booted_at_head(settings)


def test_a_package_installed_elsewhere_is_seen_at_head(settled_dir, cache_dir, sqlite_url, monkeypatch):
    """The asset spec ``gadgets_addon:alembic`` names another folder once the package moved."""
    import importlib
    import shutil

    src = settled_dir.parent.parent
    monkeypatch.syspath_prepend(str(src))
    settings = settings_for(sqlite_url, settled_dir, cache_dir, kotti__alembic_dirs="gadgets_addon:alembic")
    booted_at_head(settings)
    other = src.parent / "other-site-packages"
    shutil.copytree(src / "gadgets_addon", other / "gadgets_addon", copy_function=shutil.copy2)
    age(other / "gadgets_addon" / "alembic" / "versions", other / "gadgets_addon" / "alembic")
    monkeypatch.syspath_prepend(str(other))
    importlib.invalidate_caches()
    record = start_up(settings)
    assert not isinstance(record, AtHead)
    assert [str(d.location.path) for d in record.decisions] == [
        str((other / "gadgets_addon" / "alembic").resolve())
    ]
