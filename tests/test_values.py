"""kotti_migrate.values.Value: what the boot path's classes keep from dataclasses."""

from __future__ import annotations

from pathlib import Path

import pytest

from kotti_migrate import Location
from kotti_migrate.plan import Plan
from kotti_migrate.values import FrozenValueError, Value, factory


class Point(Value, frozen=True):
    x: int
    y: int = 0


class Bag(Value):
    name: str
    items: list[str] = factory(list)


def test_fields_in_order_with_defaults_positional_or_keyword():
    assert Point(1).y == 0 and Point(1, 2).y == 2 and Point(y=3, x=1) == Point(1, 3)
    assert repr(Point(1, 2)) == "Point(x=1, y=2)"
    assert Point._fields == ("x", "y")


def test_bad_arguments_fail_as_a_function_call_would():
    with pytest.raises(TypeError, match="missing required argument 'x'"):
        Point()
    with pytest.raises(TypeError, match="unexpected keyword argument 'z'"):
        Point(1, z=2)
    with pytest.raises(TypeError, match="multiple values for argument 'x'"):
        Point(1, x=2)
    with pytest.raises(TypeError, match="takes 2 arguments, 3 given"):
        Point(1, 2, 3)


def test_a_field_without_default_after_one_with_a_default_is_refused():
    with pytest.raises(TypeError, match="without a default follows"):

        class Bad(Value):
            a: int = 1
            b: int


def test_frozen_values_are_hashable_and_refuse_changes():
    p = Point(1, 2)
    assert {p: "a"}[Point(1, 2)] == "a" and p != Point(2, 1) and p != (1, 2)
    with pytest.raises(FrozenValueError):
        p.x = 5
    with pytest.raises(AttributeError):
        del p.y
    assert p.x == 1


def test_other_values_change_are_unhashable_and_get_fresh_defaults():
    a, b = Bag("a"), Bag("b")
    a.items.append("x")
    assert b.items == [] and a.items == ["x"]
    a.name = "c"
    assert a == Bag("c", ["x"])
    with pytest.raises(TypeError):
        hash(a)


def test_the_library_classes_behave_as_before():
    loc = Location("pkg:alembic", Path("/x/alembic"), "pkg", "pkg_alembic_version")
    assert loc.needs_ini is False and str(loc) == "pkg:alembic"
    assert loc.versions_path == Path("/x/alembic/versions")
    assert {loc} == {Location("pkg:alembic", Path("/x/alembic"), "pkg", "pkg_alembic_version")}
    first, second = Plan(), Plan()
    first.created.append("t")
    assert second.created == [] and second.seconds is None


def test_a_split_set_is_a_frozen_set_of_the_words_split_when_first_asked():
    from kotti_migrate.values import SplitSet

    ids = SplitSet("b a  c")
    assert ids._words is None  # nothing split yet
    assert "a" in ids and "d" not in ids and len(ids) == 3 and sorted(ids) == ["a", "b", "c"]
    assert ids == frozenset("abc") and frozenset("abc") == ids and hash(ids) == hash(frozenset("abc"))
    assert {"a", "z"} - ids == {"z"} and ids - {"a"} == frozenset("bc") and ids & {"c", "q"} == {"c"}
