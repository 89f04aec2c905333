"""SQLAlchemy's reflection dictionaries, made from what ``catalog`` reads.

duckdb-engine inherits PostgreSQL's reflection, which queries ``pg_catalog`` views that DuckDB only partly
emulates: on SQLAlchemy 2.1 it fails outright, and even where it runs it finds no indexes, empty primary keys
and no unique constraints. Here every dictionary is made from a ``TableDef`` read from DuckDB's own catalog.
"""

from __future__ import annotations

from typing import Any

from ccdash_alembic.ddl import sqltext
from ccdash_alembic.ddl.tabledef import TableDef
from ccdash_alembic.ddl.types import parse_type


def columns(table: TableDef, enums: dict[tuple[str, ...], str]) -> list[dict[str, Any]]:
    result = []
    for column in table.columns:
        reflected: dict[str, Any] = {
            "name": column.name,
            "type": parse_type(column.type, enums),
            "nullable": column.nullable,
            "default": column.default,
            "autoincrement": bool(column.default and column.default.lower().startswith("nextval(")),
            "comment": column.comment,
        }
        if column.generated is not None:
            # DuckDB stores the expression cast to the column's type: CAST((bar * 5) AS INTEGER).
            expression = sqltext.strip_outer_parens(sqltext.unwrap_cast(column.generated) or column.generated)
            reflected["computed"] = {"sqltext": expression, "persisted": False}
        result.append(reflected)
    return result


def primary_key(table: TableDef) -> dict[str, Any]:
    return {"constrained_columns": list(table.primary_key), "name": table.primary_key_name}


def foreign_keys(table: TableDef) -> list[dict[str, Any]]:
    """Foreign keys, without ``options``: DuckDB has no ON DELETE/UPDATE action but NO ACTION (RESTRICT is the
    same there) and does not keep the spelling, so there is nothing to report or compare."""
    return [
        {
            "name": fk.name,
            "constrained_columns": list(fk.columns),
            "referred_schema": table.schema,
            "referred_table": fk.ref_table,
            "referred_columns": list(fk.ref_columns),
        }
        for fk in table.foreign_keys
    ]


def unique_constraints(table: TableDef) -> list[dict[str, Any]]:
    return [{"name": u.name, "column_names": list(u.columns)} for u in table.uniques]


def check_constraints(table: TableDef) -> list[dict[str, Any]]:
    return [{"name": c.name, "sqltext": c.expression} for c in table.checks]


def indexes(table: TableDef) -> list[dict[str, Any]]:
    result = []
    for index in table.indexes:
        reflected: dict[str, Any] = {"name": index.name, "column_names": list(index.columns), "unique": index.unique}
        if any(c is None for c in index.columns):
            reflected["expressions"] = [
                c if c is not None else sqltext.strip_outer_parens(e)
                for c, e in zip(index.columns, index.elements, strict=True)
            ]
        result.append(reflected)
    return result
