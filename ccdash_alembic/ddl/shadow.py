"""A schema-only, in-memory copy of a database, for planning ``--sql`` scripts.

A rebuild plan depends on the table's indexes, keys and referencing tables, so writing a script needs the
schema, and then the schema as each earlier statement of the script leaves it. The copy holds every type,
sequence, table, index and view of the database file (no rows); the implementation runs each statement it
writes to the script here too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.pool import StaticPool

from ccdash_alembic.ddl.dialect import SAFE_OPEN
from ccdash_alembic.ddl.tabledef import literal, quote

SOURCE = "ccdash_shadow_source"


def schema_copy(path: Path | None) -> Connection:
    """An open connection to a new in-memory database with the schema of ``path`` (empty if it has none)."""
    # the user's file is attached below: DuckDB must not install or load an extension to read it
    connection = sa.create_engine(
        "duckdb:///:memory:", poolclass=StaticPool, connect_args={"config": dict(SAFE_OPEN)}
    ).connect()
    if path is None or not path.exists() or path.stat().st_size == 0:
        return connection
    connection.exec_driver_sql(f"ATTACH {literal(str(path))} AS {SOURCE} (READ_ONLY)")
    try:
        for statement in _schema_statements(connection):
            connection.exec_driver_sql(statement)
    finally:
        connection.exec_driver_sql(f"DETACH {SOURCE}")
    connection.commit()
    return connection


def _schema_statements(connection: Connection) -> list[str]:
    def rows(sql: str) -> list[Any]:
        return list(connection.exec_driver_sql(sql.replace("{db}", literal(SOURCE))).fetchall())

    statements = [
        f"CREATE TYPE {quote(name)} AS ENUM ({', '.join(map(literal, labels))})"
        for name, labels in rows(
            "SELECT type_name, labels FROM duckdb_types() WHERE database_name = {db} AND logical_type = 'ENUM'"
            " AND NOT internal"
        )
    ]
    statements += [sql for (sql,) in rows("SELECT sql FROM duckdb_sequences() WHERE database_name = {db}")]
    tables = dict(rows("SELECT table_name, sql FROM duckdb_tables() WHERE database_name = {db}"))
    references: dict[str, set[str]] = {name.lower(): set() for name in tables}
    for table, referenced in rows(
        "SELECT table_name, referenced_table FROM duckdb_constraints()"
        " WHERE database_name = {db} AND constraint_type = 'FOREIGN KEY'"
    ):
        if referenced.lower() != table.lower():
            references[table.lower()].add(referenced.lower())
    created: set[str] = set()
    while len(created) < len(tables):
        ready = sorted(n for n in tables if n.lower() not in created and references[n.lower()] <= created)
        if not ready:
            raise ValueError("the database's tables reference each other in a cycle")
        for name in ready:
            statements.append(tables[name])
            created.add(name.lower())
    statements += [sql for (sql,) in rows("SELECT sql FROM duckdb_indexes() WHERE database_name = {db}")]
    statements += [sql for (sql,) in rows("SELECT sql FROM duckdb_views() WHERE database_name = {db} AND NOT internal")]
    statements += [
        f"COMMENT ON TABLE {quote(table)} IS {literal(comment)}"
        for table, comment in rows(
            "SELECT table_name, comment FROM duckdb_tables() WHERE database_name = {db} AND comment IS NOT NULL"
        )
    ]
    statements += [
        f"COMMENT ON COLUMN {quote(table)}.{quote(column)} IS {literal(comment)}"
        for table, column, comment in rows(
            "SELECT table_name, column_name, comment FROM duckdb_columns()"
            " WHERE database_name = {db} AND comment IS NOT NULL"
        )
    ]
    return statements
