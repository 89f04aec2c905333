"""Schema reflection from DuckDB's own catalog functions.

duckdb-engine inherits PostgreSQL's reflection, which queries ``pg_catalog`` views that DuckDB only partly
emulates: on SQLAlchemy 2.1 it fails outright, and even where it runs it finds no indexes, empty primary keys
and no unique constraints. ``duckdb_tables()``, ``duckdb_columns()``, ``duckdb_constraints()``,
``duckdb_indexes()``, ``duckdb_sequences()`` and ``duckdb_types()`` hold every fact needed, so each method
here is one small query against them, keyed by the table's oid.

Constraint names: DuckDB keeps none; it reports generated names (``t_id_pkey``, ``t_a_b_key``, ``t_x_fkey``,
``t_x_check``). Reflection returns those, so they can be used to drop a constraint; autogenerate matches
constraints by their columns instead (see ``impl.DuckDBImpl.correct_for_autogen_constraints``).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import NoSuchTableError

from ccdash_alembic import sqltext
from ccdash_alembic.types import parse_type


def split_schema(schema: str | None) -> tuple[str | None, str | None]:
    """Split ``database.schema`` (duckdb-engine's convention for attached databases) into its parts."""
    if schema is None or "." not in schema:
        return None, schema
    database, _, name = schema.partition(".")
    return sqltext.identifier(database) or database, sqltext.identifier(name) or name


def _scope(schema: str | None) -> tuple[str, dict[str, Any]]:
    """SQL condition and binds selecting the objects visible under ``schema``.

    With no schema, DuckDB resolves a name in the temporary catalog first, then in the current schema.
    """
    database, name = split_schema(schema)
    if name is None:
        return (
            "((database_name = current_database() AND schema_name = current_schema()) OR database_name = 'temp')",
            {},
        )
    return (
        "database_name = coalesce(:database, current_database()) AND schema_name = :schema",
        {"database": database, "schema": name},
    )


def relation_oid(conn: Connection, name: str, schema: str | None) -> int:
    """The oid of a table or view, temporary objects first, as DuckDB resolves an unqualified name."""
    where, binds = _scope(schema)
    row = conn.execute(
        sa.text(
            "SELECT oid FROM ("
            " SELECT table_oid AS oid, database_name, schema_name, table_name AS name, temporary"
            " FROM duckdb_tables()"
            " UNION ALL"
            " SELECT view_oid, database_name, schema_name, view_name, temporary"
            " FROM duckdb_views() WHERE NOT internal"
            f") WHERE name = :name AND {where} ORDER BY temporary DESC LIMIT 1"
        ),
        {"name": name, **binds},
    ).first()
    if row is None:
        raise NoSuchTableError(f"{schema}.{name}" if schema else name)
    return int(row[0])


def relation_names(conn: Connection, schema: str | None, *, views: bool, temporary: bool) -> list[str]:
    """Names of tables (or views) in ``schema``, or only the temporary ones."""
    source = (
        "SELECT view_name AS name, database_name, schema_name, temporary FROM duckdb_views() WHERE NOT internal"
        if views
        else "SELECT table_name AS name, database_name, schema_name, temporary FROM duckdb_tables()"
    )
    if temporary:
        where, binds = "temporary", {}
    else:
        database, name = split_schema(schema)
        where = (
            "NOT temporary AND database_name = coalesce(:database, current_database())"
            " AND schema_name = coalesce(:schema, current_schema())"
        )
        binds = {"database": database, "schema": name}
    rows = conn.execute(sa.text(f"SELECT name FROM ({source}) WHERE {where} ORDER BY name"), binds)
    return [r[0] for r in rows]


def schema_names(conn: Connection) -> list[str]:
    """Schemas of the current database (other attached databases are addressed as ``db.schema``)."""
    rows = conn.execute(
        sa.text(
            "SELECT schema_name FROM duckdb_schemas() WHERE database_name = current_database()"
            " AND schema_name NOT IN ('information_schema', 'pg_catalog') ORDER BY schema_name"
        )
    )
    return [r[0] for r in rows]


def enum_names(conn: Connection) -> dict[tuple[str, ...], str]:
    """Named ENUM types keyed by their labels, for the labels that belong to exactly one type.

    ``duckdb_columns()`` shows a column of a named enum type as ``ENUM('a', 'b')``; the labels are all that
    links it back to ``CREATE TYPE name AS ENUM``.
    """
    rows = conn.execute(
        sa.text(
            "SELECT type_name, labels FROM duckdb_types()"
            " WHERE logical_type = 'ENUM' AND NOT internal AND database_name = current_database()"
        )
    )
    found: dict[tuple[str, ...], list[str]] = {}
    for type_name, labels in rows:
        found.setdefault(tuple(labels), []).append(type_name)
    return {labels: names[0] for labels, names in found.items() if len(names) == 1}


def columns(conn: Connection, oid: int) -> list[dict[str, Any]]:
    enums = enum_names(conn)
    rows = conn.execute(
        sa.text(
            "SELECT column_name, data_type, is_nullable, column_default, comment,"
            " is_generated, generation_expression"
            " FROM duckdb_columns() WHERE table_oid = :oid ORDER BY column_index"
        ),
        {"oid": oid},
    )
    result = []
    for name, data_type, nullable, default, comment, generated, expression in rows:
        column: dict[str, Any] = {
            "name": name,
            "type": parse_type(data_type, enums),
            "nullable": bool(nullable),
            "default": None if generated else default,
            "autoincrement": bool(default and default.lower().startswith("nextval(")),
            "comment": comment,
        }
        if generated:
            # DuckDB stores the expression cast to the column's type: CAST((bar * 5) AS INTEGER).
            unwrapped = sqltext.strip_outer_parens(sqltext.unwrap_cast(expression) or expression)
            column["computed"] = {"sqltext": unwrapped, "persisted": False}
        result.append(column)
    return result


def _constraints(conn: Connection, oid: int, kind: str) -> list[Any]:
    return list(
        conn.execute(
            sa.text(
                "SELECT constraint_name, constraint_column_names, expression, referenced_table,"
                " referenced_column_names, schema_name"
                " FROM duckdb_constraints() WHERE table_oid = :oid AND constraint_type = :kind"
                " ORDER BY constraint_index"
            ),
            {"oid": oid, "kind": kind},
        )
    )


def primary_key(conn: Connection, oid: int) -> dict[str, Any]:
    rows = _constraints(conn, oid, "PRIMARY KEY")
    if not rows:
        return {"constrained_columns": [], "name": None}
    return {"constrained_columns": list(rows[0][1]), "name": rows[0][0]}


def foreign_keys(conn: Connection, oid: int, schema: str | None) -> list[dict[str, Any]]:
    """Foreign keys, without ``options``: DuckDB knows no ON DELETE/UPDATE action but NO ACTION (RESTRICT is
    the same there) and does not keep the spelling, so there is nothing to report or compare."""
    return [
        {
            "name": name,
            "constrained_columns": list(cols),
            "referred_schema": schema,
            "referred_table": referred,
            "referred_columns": list(referred_cols),
        }
        for name, cols, _, referred, referred_cols, _ in _constraints(conn, oid, "FOREIGN KEY")
    ]


def unique_constraints(conn: Connection, oid: int) -> list[dict[str, Any]]:
    return [{"name": name, "column_names": list(cols)} for name, cols, *_ in _constraints(conn, oid, "UNIQUE")]


def check_constraints(conn: Connection, oid: int) -> list[dict[str, Any]]:
    return [
        {"name": name, "sqltext": sqltext.strip_outer_parens(expression)}
        for name, _, expression, *_ in _constraints(conn, oid, "CHECK")
    ]


def indexes(conn: Connection, oid: int) -> list[dict[str, Any]]:
    """Explicit indexes (``CREATE INDEX``); the implicit ones behind PRIMARY KEY and UNIQUE are not listed.

    DuckDB keeps an index's definition only as SQL text and drops ASC/DESC from it, so column order is the
    only ordering that can be reported.
    """
    rows = conn.execute(
        sa.text("SELECT index_name, is_unique, sql FROM duckdb_indexes() WHERE table_oid = :oid ORDER BY index_name"),
        {"oid": oid},
    )
    result = []
    for name, unique, sql in rows:
        columns: list[str | None] = []
        expressions: list[str] = []
        call = sqltext.parenthesized(sql) if sql else None
        for element in sqltext.split_top_level(call[1]) if call else []:
            column = sqltext.identifier(element)
            columns.append(column)
            expressions.append(column if column is not None else sqltext.strip_outer_parens(element))
        index: dict[str, Any] = {"name": name, "column_names": columns, "unique": bool(unique)}
        if any(c is None for c in columns):
            index["expressions"] = expressions
        result.append(index)
    return result


def table_comment(conn: Connection, oid: int) -> dict[str, Any]:
    row = conn.execute(sa.text("SELECT comment FROM duckdb_tables() WHERE table_oid = :oid"), {"oid": oid}).first()
    return {"text": row[0] if row else None}


def view_definition(conn: Connection, oid: int) -> str:
    row = conn.execute(sa.text("SELECT sql FROM duckdb_views() WHERE view_oid = :oid"), {"oid": oid}).first()
    if row is None:
        raise NoSuchTableError(str(oid))
    return str(row[0])


def sequence_names(conn: Connection, schema: str | None) -> list[str]:
    database, name = split_schema(schema)
    rows = conn.execute(
        sa.text(
            "SELECT sequence_name FROM duckdb_sequences() WHERE NOT temporary"
            " AND database_name = coalesce(:database, current_database())"
            " AND schema_name = coalesce(:schema, current_schema()) ORDER BY sequence_name"
        ),
        {"database": database, "schema": name},
    )
    return [r[0] for r in rows]


def index_exists(conn: Connection, oid: int, index_name: str) -> bool:
    row = conn.execute(
        sa.text("SELECT 1 FROM duckdb_indexes() WHERE table_oid = :oid AND index_name = :name"),
        {"oid": oid, "name": index_name},
    ).first()
    return row is not None


def type_exists(conn: Connection, type_name: str, schema: str | None) -> bool:
    database, name = split_schema(schema)
    row = conn.execute(
        sa.text(
            "SELECT 1 FROM duckdb_types() WHERE type_name = :type AND NOT internal"
            " AND database_name = coalesce(:database, current_database())"
            " AND schema_name = coalesce(:schema, current_schema())"
        ),
        {"type": type_name, "database": database, "schema": name},
    ).first()
    return row is not None
