"""The start-up planner, one row of README's decision table per case.

``kotti_migrate.plan.plan`` reads nothing and changes nothing: these
tests hand it a database state and check what it decides.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kotti_migrate.errors import MigrationsRequired, UnknownDatabaseRevision
from kotti_migrate.locations import Location
from kotti_migrate.plan import LocationState, RequiredTable, SiteState, plan

ADDON = Location("kotti_recipes:alembic", Path("/x"), "kotti_recipes", "kotti_recipes_alembic_version")
HEADS = ("c3",)
KNOWN = frozenset({"c1", "c2", "c3"})
OWNED = frozenset({"recipes", "menus"})


def decide(current, existing=frozenset(), differences=None, fresh=False, auto=False, creates=True,
           required=(), heads=HEADS, owned=OWNED, unmodelled=frozenset(), tables=frozenset()):  # fmt: skip
    state = SiteState(
        locations=(LocationState(ADDON, current, heads, KNOWN, owned, existing, differences, unmodelled),),
        fresh=fresh,
        creates_tables=creates,
        auto_upgrade=auto,
        config_file="site.ini",
        required=required,
        tables=tables,
    )
    result = plan(state)
    return result, (result.decisions[0] if result.decisions else None)


ROWS = [
    # (README row, arguments, action, reason)
    ("empty database", dict(current=None, fresh=True), "stamp", "fresh"),
    ("only empty version tables", dict(current=(), fresh=True), "stamp", "fresh"),
    ("empty, no models", dict(current=None, fresh=True, creates=False), "upgrade", "no-models"),
    ("no version table, no models", dict(current=None, creates=False), "upgrade", "no-models"),
    ("no version table, tables absent", dict(current=None), "stamp", "new"),
    ("empty version table, tables absent (at base)", dict(current=()), "warn", "pending"),
    ("empty version table, tables absent, auto-upgrade on", dict(current=(), auto=True), "upgrade",
     "pending"),
    ("no version table, tables differ", dict(current=None, existing=OWNED, differences=("x",)), "adopt",
     "differ"),
    ("empty version table, tables differ", dict(current=(), existing=OWNED, differences=("x",)), "adopt",
     "differ"),
    ("no version table, tables match", dict(current=None, existing=OWNED, differences=()), "stamp", "match"),
    ("at head", dict(current=("c3",)), "ok", "head"),
    ("no revisions yet, version table there", dict(current=(), heads=()), "ok", "head"),
    ("no revisions yet, no version table", dict(current=None, heads=()), "stamp", "new"),
    ("behind, auto-upgrade on", dict(current=("c2",), auto=True), "upgrade", "pending"),
    ("behind, auto-upgrade off, can serve", dict(current=("c2",)), "warn", "pending"),
    ("unknown revision, auto-upgrade off", dict(current=("ffff",)), "warn", "unknown"),
    # Migrations only: no model's table is the location's own; its revisions create "notes".
    ("empty database, migrations only", dict(current=None, fresh=True, owned=frozenset(),
     unmodelled=frozenset({"notes"})), "install", "unmodelled"),
    ("no version table, migrations only, their tables absent", dict(current=None, owned=frozenset(),
     unmodelled=frozenset({"notes"})), "install", "unmodelled"),
    ("no version table, migrations only, their tables there", dict(current=None, owned=frozenset(),
     unmodelled=frozenset({"notes"}), tables=frozenset({"notes"})), "stamp", "new"),
    ("no version table, own models, its revisions create others", dict(current=None,
     unmodelled=frozenset({"notes"})), "stamp", "new"),
    ("migrations only, no models at all", dict(current=None, fresh=True, creates=False, owned=frozenset(),
     unmodelled=frozenset({"notes"})), "upgrade", "no-models"),
    ("migrations only, behind", dict(current=("c2",), owned=frozenset(), unmodelled=frozenset({"notes"})),
     "warn", "pending"),
]  # fmt: skip


@pytest.mark.parametrize("row, kwargs, action, reason", ROWS, ids=[row[0] for row in ROWS])
def test_decision_table(row, kwargs, action, reason):
    result, decision = decide(**kwargs)
    assert (decision.action, decision.reason) == (action, reason)
    assert result.error is None


def test_a_location_of_migrations_only_says_which_tables_its_migrations_create():
    notes = frozenset({"notes", "a"})
    result, decision = decide(current=None, fresh=True, owned=frozenset(), unmodelled=notes)
    assert result.installs == [ADDON] and result.stamps == []
    assert decision.message == (
        "kotti_recipes:alembic is new to this database and its revisions create tables no model "
        "defines (a, notes): running its migrations from base to c3"
    )


def test_only_locations_left_behind_hold_back_their_own_tables():
    result, decision = decide(current=("c2",))
    assert result.held_back == {"recipes", "menus"}
    assert "pages using its tables (menus, recipes) may fail until it is upgraded" in decision.message
    assert decision.message.endswith("run: kotti-migrate site.ini upgrade --scripts=kotti_recipes:alembic")
    for kwargs in (dict(current=("c3",)), dict(current=("c2",), auto=True), dict(current=None)):
        assert decide(**kwargs)[0].held_back == set()


def test_behind_with_a_required_table_missing_stops_before_anything_changes():
    missing = (RequiredTable("menus", "kotti.resources.Node", None),)
    result, _ = decide(current=("c1",), required=missing)
    assert isinstance(result.error, MigrationsRequired)
    assert str(result.error) == (
        "kotti_recipes:alembic is at c1, behind its head c3, and the site cannot serve until it is "
        "upgraded: table menus is missing (every query of kotti.resources.Node loads it); run: "
        "kotti-migrate site.ini upgrade --scripts=kotti_recipes:alembic, "
        "or start with kotti_migrate.auto_upgrade = true"
    )
    lacking = (RequiredTable("recipes", "kotti.resources.Node", ("servings",)),)
    result, _ = decide(current=("c2",), required=lacking)
    assert "table recipes lacks column(s) servings" in str(result.error)


def test_required_tables_of_other_locations_or_with_auto_upgrade_are_no_error():
    # Another location's table (create_all makes it), or the location is upgraded first.
    assert decide(current=("c2",), required=(RequiredTable("pages", "N", None),))[0].error is None
    missing = (RequiredTable("menus", "N", None),)
    assert decide(current=("c2",), auto=True, required=missing)[0].error is None


def test_unknown_revision_with_auto_upgrade_is_an_error():
    result, _ = decide(current=("ffff",), auto=True)
    assert isinstance(result.error, UnknownDatabaseRevision)
    assert "at ffff, a revision this code does not know (heads: c3)" in str(result.error)
