"""The two database engines the run layer serves, and the few questions it asks that each answers its own way.

DuckDB (a file, ``ddl/``'s dialect and implementation) and PostgreSQL (a server, SQLAlchemy's dialect and
Alembic's own implementation) run the same revisions through the same history, checksums and guards. What
differs, apart from opening and locking (``database``, ``server_lock``), is asked here: which engine a
connection is, and the catalog reads the history needs (a table's columns, whether it exists), which on DuckDB
go through ``ddl/catalog.py`` (the one reader of its catalog) and on PostgreSQL through SQLAlchemy's inspector
(the connection's default schema).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext

from ccdash_alembic.ddl import catalog

DUCKDB = "duckdb"
POSTGRESQL = "postgresql"
SUPPORTED = (DUCKDB, POSTGRESQL)


def name_of(connectable: sa.Connection | sa.Engine | MigrationContext) -> str:
    """``duckdb`` or ``postgresql`` (or another dialect's name, which the run refuses before it gets here)."""
    return str(connectable.dialect.name)


def is_duckdb(connectable: sa.Connection | sa.Engine | MigrationContext) -> bool:
    return name_of(connectable) == DUCKDB


def reader(context: MigrationContext) -> Any:
    """What reads the catalog in a step: on DuckDB the implementation's catalog connection (in a ``--sql`` run,
    the schema-only shadow the script is planned on); on PostgreSQL the step's connection, None in ``--sql``."""
    if is_duckdb(context):
        return context.impl.catalog_connection()  # type: ignore[attr-defined]
    return None if context.as_sql else context.connection


def column_names(connection: Any, table: str) -> list[str]:
    """The columns of ``table`` in the current schema, in order; none when there is no such table (nor a
    connection to ask: a PostgreSQL ``--sql`` script starts from an empty database)."""
    if connection is None:
        return []
    if not isinstance(connection, sa.Connection) or is_duckdb(connection):
        return catalog.column_names(connection, table)
    inspector = sa.inspect(connection)
    return [str(c["name"]) for c in inspector.get_columns(table)] if inspector.has_table(table) else []


def has_table(connection: Any, table: str) -> bool:
    """Whether the current schema has a table named ``table``."""
    if connection is None:
        return False
    if not isinstance(connection, sa.Connection) or is_duckdb(connection):
        return catalog.has_table(connection, table)
    return bool(sa.inspect(connection).has_table(table))
