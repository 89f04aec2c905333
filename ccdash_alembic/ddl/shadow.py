"""A schema-only, in-memory copy of a database, for planning ``--sql`` scripts.

A rebuild plan depends on the table's indexes, keys and referencing tables, so writing a script needs the
schema, and then the schema as each earlier statement of the script leaves it. The copy holds every type,
sequence, table, index and view of the database file (no rows); the implementation runs each statement it
writes to the script here too.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.pool import StaticPool

from ccdash_alembic import graph
from ccdash_alembic.ddl import catalog
from ccdash_alembic.ddl.dialect import SAFE_OPEN
from ccdash_alembic.ddl.tabledef import literal, quote

SOURCE = "ccdash_shadow_source"
VERSION_TABLE = "alembic_version"


def schema_copy(path: Path | None) -> Connection:
    """An open connection to a new in-memory database with the schema of ``path`` (empty if it has none), and
    the rows of its ``alembic_version`` and of the constraint names the layer keeps."""
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
        # the tables whose rows come too (from the file's main schema): which revision the copied schema is at,
        # and the names of its constraints
        for table in (VERSION_TABLE, catalog.CONSTRAINT_NAMES):
            if catalog.has_table(connection, table):
                connection.exec_driver_sql(f"INSERT INTO {quote(table)} SELECT * FROM {SOURCE}.main.{quote(table)}")
    finally:
        connection.exec_driver_sql(f"DETACH {SOURCE}")
    connection.commit()
    return connection


def copied_versions(connection: Connection) -> set[str]:
    """The revisions the copied file's ``alembic_version`` names (none: the file was at base, or empty)."""
    if not catalog.has_table(connection, VERSION_TABLE):
        return set()
    return {str(row[0]) for row in connection.exec_driver_sql(f"SELECT version_num FROM {VERSION_TABLE}")}


def _schema_statements(connection: Connection) -> list[str]:
    """The attached file's schema as statements that recreate it: types before the tables that use them,
    each table after the tables it references, then indexes, views and comments."""
    statements = [
        f"CREATE TYPE {quote(name)} AS ENUM ({', '.join(map(literal, labels))})"
        for name, labels in catalog.enum_types(connection, SOURCE)
    ]
    statements += catalog.sequence_statements(connection, SOURCE)
    statements += _tables_in_order(connection)
    statements += catalog.index_statements(connection, SOURCE)
    statements += catalog.view_statements(connection, SOURCE)
    statements += [
        f"COMMENT ON TABLE {quote(table)} IS {literal(comment)}"
        for table, comment in catalog.table_comments(connection, SOURCE)
    ]
    statements += [
        f"COMMENT ON COLUMN {quote(table)}.{quote(column)} IS {literal(comment)}"
        for table, column, comment in catalog.column_comments(connection, SOURCE)
    ]
    return statements


def _tables_in_order(connection: Connection) -> list[str]:
    """``CREATE TABLE`` statements, each after those of the tables it references (ties by name)."""
    tables = catalog.table_statements(connection, SOURCE)
    named = {name.lower(): name for name in tables}
    references: dict[str, set[str]] = {name: set() for name in tables}
    for table, referenced in catalog.foreign_key_references(connection, SOURCE):
        if table.lower() in named and referenced.lower() in named:
            references[named[table.lower()]].add(named[referenced.lower()])
    try:
        return [tables[name] for name in graph.ordered(references)]
    except graph.Cycle:
        raise ValueError("the database's tables reference each other in a cycle") from None
