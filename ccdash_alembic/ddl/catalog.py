"""Reading DuckDB's catalog functions.

``duckdb_tables()``, ``duckdb_columns()``, ``duckdb_constraints()``, ``duckdb_indexes()``,
``duckdb_sequences()``, ``duckdb_types()`` and ``duckdb_views()`` hold every fact about a schema. Each
function here is one small query; ``read_table`` gathers one table into a ``TableDef``. Both SQLAlchemy
reflection (``reflection``) and the rebuild planner (``rebuild``) are built on these, so they always agree.

Constraint names: DuckDB keeps none; it reports generated names (``t_id_pkey``, ``t_a_b_key``, ``t_x_fkey``,
``t_x_check``), which are read as they are.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import NoSuchTableError

from ccdash_alembic.ddl import sqltext
from ccdash_alembic.ddl.tabledef import Check, Column, ForeignKey, Index, TableDef, Unique


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
            f") WHERE lower(name) = lower(:name) AND {where} ORDER BY temporary DESC LIMIT 1"
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


def _enum_labels(data_type: str) -> tuple[str, ...] | None:
    call = sqltext.parenthesized(data_type)
    if call is None or call[0].upper() != "ENUM" or data_type.endswith("]"):
        return None
    return tuple(sqltext.string_literal(a) or a for a in sqltext.split_top_level(call[1]))


def _columns(conn: Connection, oid: int) -> tuple[Column, ...]:
    enums = enum_names(conn)
    rows = conn.execute(
        sa.text(
            "SELECT column_name, data_type, is_nullable, column_default, comment,"
            " is_generated, generation_expression"
            " FROM duckdb_columns() WHERE table_oid = :oid ORDER BY column_index"
        ),
        {"oid": oid},
    )
    columns = []
    for name, data_type, nullable, default, comment, generated, expression in rows:
        labels = _enum_labels(data_type)
        columns.append(
            Column(
                name=name,
                type=data_type,
                nullable=bool(nullable),
                default=None if generated else default,
                generated=expression if generated else None,
                comment=comment,
                type_name=enums.get(labels) if labels is not None else None,
            )
        )
    return tuple(columns)


def _indexes(conn: Connection, oid: int) -> tuple[Index, ...]:
    """Explicit indexes (``CREATE INDEX``); the implicit ones behind PRIMARY KEY and UNIQUE are not listed.

    DuckDB keeps an index's definition only as SQL text, without ASC/DESC.
    """
    rows = conn.execute(
        sa.text("SELECT index_name, is_unique, sql FROM duckdb_indexes() WHERE table_oid = :oid ORDER BY index_name"),
        {"oid": oid},
    )
    result = []
    for name, unique, sql in rows:
        call = sqltext.parenthesized(sql) if sql else None
        elements = tuple(sqltext.split_top_level(call[1])) if call else ()
        result.append(
            Index(
                name=name,
                elements=elements,
                columns=tuple(sqltext.identifier(e) for e in elements),
                unique=bool(unique),
            )
        )
    return tuple(result)


def read_table(conn: Connection, name: str, schema: str | None = None) -> TableDef:
    """Everything DuckDB knows about one table (or a view's columns)."""
    oid = relation_oid(conn, name, schema)
    table_row = conn.execute(
        sa.text(
            "SELECT table_name, comment FROM duckdb_tables() WHERE table_oid = :oid"
            " UNION ALL SELECT view_name, comment FROM duckdb_views() WHERE view_oid = :oid"
        ),
        {"oid": oid},
    ).first()
    if table_row is None:
        raise NoSuchTableError(name)
    primary_key: tuple[str, ...] = ()
    primary_key_name = None
    uniques, checks, foreign_keys = [], [], []
    constraints = conn.execute(
        sa.text(
            "SELECT constraint_type, constraint_name, constraint_column_names, expression, referenced_table,"
            " referenced_column_names FROM duckdb_constraints() WHERE table_oid = :oid ORDER BY constraint_index"
        ),
        {"oid": oid},
    )
    for kind, constraint_name, columns, expression, referenced, referenced_columns in constraints:
        if kind == "PRIMARY KEY":
            primary_key, primary_key_name = tuple(columns), constraint_name
        elif kind == "UNIQUE":
            uniques.append(Unique(tuple(columns), constraint_name))
        elif kind == "CHECK":
            checks.append(Check(sqltext.strip_outer_parens(expression), tuple(columns), constraint_name))
        elif kind == "FOREIGN KEY":
            foreign_keys.append(ForeignKey(tuple(columns), referenced, tuple(referenced_columns), constraint_name))
    return TableDef(
        name=table_row[0],
        schema=schema,
        columns=_columns(conn, oid),
        primary_key=primary_key,
        primary_key_name=primary_key_name,
        uniques=tuple(uniques),
        checks=tuple(checks),
        foreign_keys=tuple(foreign_keys),
        indexes=_indexes(conn, oid),
        comment=table_row[1],
    )


def referencing(conn: Connection, name: str, schema: str | None = None) -> list[tuple[str, ForeignKey]]:
    """Foreign keys of other tables that point at ``name``: ``(table, foreign key)`` pairs."""
    where, binds = _scope(schema)
    rows = conn.execute(
        sa.text(
            "SELECT table_name, constraint_name, constraint_column_names, referenced_table, referenced_column_names"
            " FROM duckdb_constraints()"
            f" WHERE constraint_type = 'FOREIGN KEY' AND lower(referenced_table) = lower(:name) AND {where}"
            " ORDER BY table_name, constraint_index"
        ),
        {"name": name, **binds},
    )
    return [
        (table, ForeignKey(tuple(columns), referenced, tuple(referenced_columns), constraint_name))
        for table, constraint_name, columns, referenced, referenced_columns in rows
        if table.lower() != name.lower()
    ]


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
