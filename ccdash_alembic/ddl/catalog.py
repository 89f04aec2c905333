"""Reading DuckDB's catalog functions: the one module of the package that queries them.

``duckdb_tables()``, ``duckdb_columns()``, ``duckdb_constraints()``, ``duckdb_indexes()``,
``duckdb_sequences()``, ``duckdb_types()``, ``duckdb_views()`` and ``duckdb_databases()`` hold every fact
about a schema and the file it is in. Each function here is one small query named for the question it
answers; ``read_table`` gathers one table into a ``TableDef``. Both SQLAlchemy reflection (``reflection``)
and the rebuild planner (``rebuild``) are built on these, so they always agree; the run layer asks its own
questions (is this table there, which columns has it, what does the file hold) here too, so a change in
DuckDB's catalog is met in one place (``tests/test_catalog_reader.py`` keeps it so).

Constraint names: DuckDB keeps none; it reports generated names (``t_id_pkey``, ``t_a_b_key``, ``t_x_fkey``,
``t_x_check``). ``read_table`` gives each constraint the name it was created with where ``constraint_names``
kept it (``CONSTRAINT_NAMES``), and DuckDB's name otherwise (and always as ``generated_name``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any, TypeVar

import duckdb
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import NoSuchTableError

from ccdash_alembic.ddl import sqltext
from ccdash_alembic.ddl.tabledef import (
    Check,
    Column,
    ForeignKey,
    Index,
    TableDef,
    Unique,
    literal,
    primary_key_sql,
    quote,
)


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
    found: dict[tuple[str, ...], list[str]] = {}
    for type_name, labels in enum_types(conn):
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


# Where ``constraint_names`` keeps the names constraints were created with, which DuckDB does not keep: the
# definition of each (as ``TableDef`` renders it) -> its name, by schema and table. A file without this table
# (every file no named constraint was created in) reads as before, with DuckDB's generated names.
CONSTRAINT_NAMES = "migration_constraint_names"
_HAS_NAMES = (
    "EXISTS (SELECT 1 FROM duckdb_tables() WHERE database_name = current_database()"
    f" AND schema_name = current_schema() AND table_name = {literal(CONSTRAINT_NAMES)}) AS has_names"
)

_Named = TypeVar("_Named", Unique, Check, ForeignKey)


def given_names(conn: Reader, table: str, schema: str | None) -> dict[str, str]:
    """The names ``table``'s constraints were created with, by definition (none for a table of another
    database: the names are kept in the current one)."""
    if split_schema(schema)[0] is not None:
        return {}
    return {
        str(definition): str(name)
        for definition, name in _rows(
            conn,
            f"SELECT definition, constraint_name FROM {quote(CONSTRAINT_NAMES)}"
            " WHERE schema_name = coalesce(?, current_schema()) AND lower(table_name) = lower(?)",
            schema,
            table,
        )
    }


def _named(constraint: _Named, names: dict[str, str]) -> _Named:
    name = names.get(constraint.sql())
    return constraint if name is None else replace(constraint, name=name)


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
    rows = conn.execute(
        sa.text(
            "SELECT constraint_type, constraint_name, constraint_column_names, expression, referenced_table,"
            f" referenced_column_names, {_HAS_NAMES} FROM duckdb_constraints() WHERE table_oid = :oid"
            " ORDER BY constraint_index"
        ),
        {"oid": oid},
    ).fetchall()
    names = given_names(conn, table_row[0], schema) if any(row[-1] for row in rows) else {}
    primary_key: tuple[str, ...] = ()
    primary_key_name = None
    uniques, checks, foreign_keys = [], [], []
    for kind, generated, columns, expression, referenced, referenced_columns, _ in rows:
        if kind == "PRIMARY KEY":
            primary_key, primary_key_name = tuple(columns), generated
        elif kind == "UNIQUE":
            uniques.append(_named(Unique(tuple(columns), generated, generated), names))
        elif kind == "CHECK":
            check = Check(sqltext.strip_outer_parens(expression), tuple(columns), generated, generated)
            checks.append(_named(check, names))
        elif kind == "FOREIGN KEY":
            foreign_key = ForeignKey(tuple(columns), referenced, tuple(referenced_columns), generated, generated)
            foreign_keys.append(_named(foreign_key, names))
    return TableDef(
        name=table_row[0],
        schema=schema,
        columns=_columns(conn, oid),
        primary_key=primary_key,
        primary_key_name=names.get(primary_key_sql(primary_key), primary_key_name),
        primary_key_generated_name=primary_key_name,
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
    """The ``CREATE VIEW`` statement of the view ``oid``, for reflection's ``get_view_definition``."""
    row = conn.execute(sa.text("SELECT sql FROM duckdb_views() WHERE view_oid = :oid"), {"oid": oid}).first()
    if row is None:
        raise NoSuchTableError(str(oid))
    return str(row[0])


def sequence_names(conn: Connection, schema: str | None) -> list[str]:
    """Names of the sequences of ``schema`` (temporary ones left out)."""
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
    """Whether ``schema`` has a user-defined type ``type_name`` (an ENUM created before, or not yet)."""
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


# The questions the rest of the package asks. Some callers hold a plain DuckDB connection (a file opened
# outside SQLAlchemy, to read a copy or a backup), so these take either kind of connection.

Reader = Connection | duckdb.DuckDBPyConnection


def _rows(conn: Reader, sql: str, *params: object) -> list[Any]:
    """The rows of ``sql`` (``?`` parameters) through either kind of connection."""
    if isinstance(conn, Connection):
        return list(conn.exec_driver_sql(sql, params).fetchall())
    return conn.execute(sql, list(params)).fetchall()


def enum_types(conn: Reader, database: str | None = None) -> list[tuple[str, list[str]]]:
    """Each named ENUM type of ``database`` (default: the current one) with its labels."""
    return [
        (str(name), list(labels))
        for name, labels in _rows(
            conn,
            "SELECT type_name, labels FROM duckdb_types() WHERE database_name = coalesce(?, current_database())"
            " AND logical_type = 'ENUM' AND NOT internal",
            database,
        )
    ]


def column_names(conn: Reader, table: str) -> list[str]:
    """The columns of ``table`` in the current schema, in order; none when there is no such table (which is
    how the run layer tells whether its own tables, and which version of them, are there)."""
    return [
        r[0]
        for r in _rows(
            conn,
            "SELECT column_name FROM duckdb_columns() WHERE database_name = current_database()"
            " AND schema_name = current_schema() AND table_name = ? ORDER BY column_index",
            table,
        )
    ]


def has_table(conn: Reader, table: str) -> bool:
    """Whether the current schema has a table named ``table`` (``alembic_version`` is read only when it is)."""
    return bool(
        _rows(
            conn,
            "SELECT 1 FROM duckdb_tables() WHERE database_name = current_database()"
            " AND schema_name = current_schema() AND table_name = ?",
            table,
        )
    )


def stored_tables(conn: Reader) -> list[str]:
    """The tables the current database stores, each as a name qualified by database and schema (any schema
    may hold them, and a bare name resolves in ``main`` only; temporary tables live elsewhere)."""
    return [
        ".".join(quote(part) for part in r)
        for r in _rows(
            conn,
            "SELECT database_name, schema_name, table_name FROM duckdb_tables()"
            " WHERE database_name = current_database() AND NOT temporary",
        )
    ]


def user_tables(conn: Reader, ignored: Iterable[str]) -> list[tuple[str, str, int]]:
    """``(schema, table, oid)`` of the current database's tables, by oid, leaving out temporary and internal
    tables and those named in ``ignored`` (lower case)."""
    own = ", ".join(literal(name) for name in sorted(ignored))
    return [
        (str(schema), str(name), int(oid))
        for schema, name, oid in _rows(
            conn,
            "SELECT schema_name, table_name, table_oid FROM duckdb_tables() "
            "WHERE database_name = current_database() AND NOT temporary AND NOT internal "
            f"AND lower(table_name) NOT IN ({own}) ORDER BY table_oid",
        )
    ]


def table_layout(conn: Reader) -> dict[str, list[str]]:
    """Each table of the current schema (not views, not temporary tables) with its column names in order: a
    file's shape, read without reading its data."""
    layout: dict[str, list[str]] = {}
    for table, column in _rows(
        conn,
        "SELECT table_name, column_name FROM duckdb_columns() WHERE database_name = current_database()"
        " AND schema_name = current_schema() AND NOT internal"
        " AND table_oid NOT IN (SELECT view_oid FROM duckdb_views())"
        " ORDER BY table_name, column_index",
    ):
        layout.setdefault(table, []).append(column)
    return layout


def columns_of_database(conn: Reader, database: str) -> list[tuple[str, str]]:
    """``(table, column)`` of every table and view of ``database`` (an attached one too), columns in order."""
    return [
        (str(table), str(column))
        for table, column in _rows(
            conn,
            "SELECT table_name, column_name FROM duckdb_columns() WHERE database_name = ? ORDER BY column_index",
            database,
        )
    ]


def column_definitions(conn: Reader) -> list[tuple[str, str, str, str]]:
    """``(schema, table, column, definition)`` of every column of the current database's tables (not views):
    its type, ``NOT NULL`` and default as DuckDB shows them, so two readings compare column by column."""
    return [
        (str(r[0]), str(r[1]), str(r[2]), str(r[3]))
        for r in _rows(
            conn,
            "SELECT schema_name, table_name, column_name, data_type"
            " || CASE WHEN is_nullable THEN '' ELSE ' NOT NULL' END || coalesce(' DEFAULT ' || column_default, '')"
            " FROM duckdb_columns() WHERE database_name = current_database() AND NOT internal"
            " AND table_oid NOT IN (SELECT view_oid FROM duckdb_views()) ORDER BY column_index",
        )
    ]


def table_constraints(conn: Reader) -> list[tuple[str, str, str]]:
    """``(schema, table, constraint)`` of each key and check of the current database's tables, as DuckDB
    writes it (``PRIMARY KEY(id)``, ``FOREIGN KEY (a) REFERENCES t(id)``); ``NOT NULL`` belongs to the column."""
    return [
        (str(r[0]), str(r[1]), str(r[2]))
        for r in _rows(
            conn,
            "SELECT schema_name, table_name, constraint_text FROM duckdb_constraints()"
            " WHERE database_name = current_database() AND constraint_type <> 'NOT NULL'",
        )
    ]


def table_indexes(conn: Reader) -> list[tuple[str, str, str, str]]:
    """``(schema, table, index, CREATE INDEX statement)`` of each explicit index of the current database."""
    return [
        (str(r[0]), str(r[1]), str(r[2]), str(r[3]))
        for r in _rows(
            conn,
            "SELECT schema_name, table_name, index_name, sql FROM duckdb_indexes()"
            " WHERE database_name = current_database()",
        )
    ]


def index_names(conn: Reader) -> list[str]:
    """Names of the explicit indexes of the current database, every schema."""
    return [
        r[0] for r in _rows(conn, "SELECT index_name FROM duckdb_indexes() WHERE database_name = current_database()")
    ]


def index_table(conn: Reader, index: str) -> str | None:
    """The table the index named ``index`` belongs to (``op.drop_index`` may name no table), or None."""
    rows = _rows(conn, "SELECT table_name FROM duckdb_indexes() WHERE index_name = ? LIMIT 1", index)
    return str(rows[0][0]) if rows else None


def type_used_elsewhere(conn: Reader, data_type: str, table: str) -> bool:
    """Whether a column of a table other than ``table`` has ``data_type`` (as ``duckdb_columns()`` shows it):
    a named ENUM type still in use elsewhere must stay when ``table`` goes."""
    rows = _rows(
        conn, "SELECT count(*) FROM duckdb_columns() WHERE data_type = ? AND table_name <> ?", data_type, table
    )
    return bool(rows[0][0])


def database_path(conn: Reader) -> str | None:
    """The file the current database is (None in memory): what DuckDB has open, not what a URL says."""
    rows = _rows(conn, "SELECT path FROM duckdb_databases() WHERE database_name = current_database()")
    return str(rows[0][0]) if rows and rows[0][0] else None


def database_type(conn: Reader) -> str | None:
    """The kind of file the current database is: ``duckdb``, or another format an extension reads."""
    rows = _rows(conn, "SELECT type FROM duckdb_databases() WHERE database_name = current_database()")
    return str(rows[0][0]) if rows else None


def block_size(conn: Reader) -> int:
    """The block size of the current database file."""
    rows = _rows(conn, "SELECT block_size FROM pragma_database_size()")
    return int(rows[0][0] or 0) if rows else 0


def last_block(conn: Reader, table: str) -> int:
    """The highest block of the file that ``table`` (a qualified name, as ``stored_tables`` gives) uses (-1:
    none), from its storage layout, without reading the data."""
    rows = _rows(conn, f"SELECT max(block_id) FROM pragma_storage_info({literal(table)}) WHERE block_id >= 0")
    return int(rows[0][0]) if rows and rows[0][0] is not None else -1


# The schema of an attached database, object by object, as ``CREATE`` statements DuckDB keeps (the shadow
# copy of ``--sql`` is built from these).


def sequence_statements(conn: Reader, database: str) -> list[str]:
    """``CREATE SEQUENCE`` of each sequence of ``database``."""
    return [r[0] for r in _rows(conn, "SELECT sql FROM duckdb_sequences() WHERE database_name = ?", database)]


def table_statements(conn: Reader, database: str) -> dict[str, str]:
    """Table name -> its ``CREATE TABLE`` statement."""
    return {
        r[0]: r[1] for r in _rows(conn, "SELECT table_name, sql FROM duckdb_tables() WHERE database_name = ?", database)
    }


def index_statements(conn: Reader, database: str) -> list[str]:
    """``CREATE INDEX`` of each explicit index of ``database``."""
    return [r[0] for r in _rows(conn, "SELECT sql FROM duckdb_indexes() WHERE database_name = ?", database)]


def view_statements(conn: Reader, database: str) -> list[str]:
    """``CREATE VIEW`` of each view of ``database``, in the order DuckDB lists them, which is the order they
    were created in (a view may use another)."""
    return [
        r[0] for r in _rows(conn, "SELECT sql FROM duckdb_views() WHERE database_name = ? AND NOT internal", database)
    ]


def foreign_key_references(conn: Reader, database: str) -> list[tuple[str, str]]:
    """``(table, referenced table)`` of each foreign key of ``database``."""
    return [
        (r[0], r[1])
        for r in _rows(
            conn,
            "SELECT table_name, referenced_table FROM duckdb_constraints()"
            " WHERE database_name = ? AND constraint_type = 'FOREIGN KEY'",
            database,
        )
    ]


def table_comments(conn: Reader, database: str) -> list[tuple[str, str]]:
    """``(table, comment)`` of each commented table of ``database``."""
    return [
        (r[0], r[1])
        for r in _rows(
            conn,
            "SELECT table_name, comment FROM duckdb_tables() WHERE database_name = ? AND comment IS NOT NULL",
            database,
        )
    ]


def column_comments(conn: Reader, database: str) -> list[tuple[str, str, str]]:
    """``(table, column, comment)`` of each commented column of ``database``."""
    return [
        (r[0], r[1], r[2])
        for r in _rows(
            conn,
            "SELECT table_name, column_name, comment FROM duckdb_columns()"
            " WHERE database_name = ? AND comment IS NOT NULL",
            database,
        )
    ]
