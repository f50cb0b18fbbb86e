"""Schema snapshots and differences, as the ready checks report them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import sqlalchemy as sa

from . import database


@dataclass
class Schema:
    """Tables, columns, indexes and constraints of a database, comparable."""

    tables: dict[str, dict[str, set[str]]]

    @classmethod
    def read(cls, engine: sa.engine.Engine, skip: set[str]) -> Schema:
        tables: dict[str, dict[str, set[str]]] = {}
        with database.connect(engine) as connection:
            inspector = sa.inspect(connection)
            for name in sorted(inspector.get_table_names()):
                if name in skip or name.endswith("_alembic_version") or name == "alembic_version":
                    continue
                parts: dict[str, set[str]] = {}
                parts["column"] = {
                    f"{c['name']} {_type(c['type'])}{'' if c['nullable'] else ' NOT NULL'}"
                    for c in inspector.get_columns(name)
                }
                parts["index"] = {
                    f"{i['name']} ({', '.join(str(c) for c in i['column_names'])})"
                    + (" UNIQUE" if i.get("unique") else "")
                    for i in inspector.get_indexes(name)
                    if not i.get("duplicates_constraint")
                }
                parts["unique constraint"] = {
                    f"({', '.join(u['column_names'])})" for u in inspector.get_unique_constraints(name)
                }
                parts["foreign key"] = {
                    f"({', '.join(f['constrained_columns'])}) -> {f['referred_table']}"
                    f"({', '.join(f['referred_columns'])})"
                    for f in inspector.get_foreign_keys(name)
                }
                pk = inspector.get_pk_constraint(name).get("constrained_columns") or []
                parts["primary key"] = {f"({', '.join(pk)})"} if pk else set()
                tables[name] = parts
        return cls(tables)

    def differences(self, other: Schema, extra: str, missing: str) -> list[str]:
        """What ``other`` has that this one lacks (``extra``) and the reverse (``missing``)."""
        lines = []
        for name in sorted(set(self.tables) | set(other.tables)):
            if name not in self.tables:
                lines.append(f"table {name}: {extra}")
                continue
            if name not in other.tables:
                lines.append(f"table {name}: {missing}")
                continue
            mine, theirs = self.tables[name], other.tables[name]
            for kind in mine:
                for item in sorted(theirs[kind] - mine[kind]):
                    lines.append(f"table {name}: {kind} {item}: {extra}")
                for item in sorted(mine[kind] - theirs[kind]):
                    lines.append(f"table {name}: {kind} {item}: {missing}")
        return lines


def _type(type_: Any) -> str:
    try:
        return str(type_)
    except Exception:
        return type(type_).__name__


def describe_differences(diffs: Sequence[Any]) -> list[str]:
    """Alembic's autogenerate differences as readable lines."""
    lines = []
    for diff in diffs:
        if isinstance(diff, list):
            lines.extend(describe_differences(diff))
            continue
        kind = diff[0]
        if kind == "add_table":
            lines.append(f"table {diff[1].name}: in the models, the migrations never create it")
        elif kind == "remove_table":
            lines.append(f"table {diff[1].name}: in the database, not in the models")
        elif kind == "add_column":
            column = diff[3]
            lines.append(
                f"table {diff[2]}: column {column.name} ({_type(column.type)}) is in the models, "
                f"the migrations never add it"
            )
        elif kind == "remove_column":
            lines.append(f"table {diff[2]}: column {diff[3].name} is in the database, not in the models")
        elif kind in ("add_index", "remove_index"):
            index = diff[1]
            cols = ", ".join(getattr(c, "name", str(c)) for c in index.columns)
            where = "in the models, not in the database" if kind == "add_index" else (
                "in the database, not in the models"
            )
            lines.append(f"table {index.table.name}: index {index.name} ({cols}) {where}")
        elif kind in ("add_constraint", "remove_constraint", "add_fk", "remove_fk"):
            constraint = diff[1]
            cols = ", ".join(getattr(c, "name", str(c)) for c in constraint.columns)
            where = "in the models, not in the database" if kind.startswith("add") else (
                "in the database, not in the models"
            )
            what = "foreign key" if kind.endswith("fk") else type(constraint).__name__
            lines.append(f"table {constraint.table.name}: {what} {constraint.name or ''} ({cols}) {where}")
        elif kind == "modify_type":
            lines.append(
                f"table {diff[2]}: column {diff[3]}: type {_type(diff[5])} in the database, "
                f"{_type(diff[6])} in the models"
            )
        elif kind == "modify_nullable":
            def null(value: Any) -> str:
                return "NULL" if value else "NOT NULL"

            lines.append(
                f"table {diff[2]}: column {diff[3]}: {null(diff[5])} in the database, "
                f"{null(diff[6])} in the models"
            )
        elif kind == "modify_default":
            lines.append(f"table {diff[2]}: column {diff[3]}: server default differs")
        else:
            lines.append(repr(diff))
    return lines
