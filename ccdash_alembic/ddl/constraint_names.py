"""The names constraints were created with, which DuckDB does not keep.

DuckDB accepts ``CONSTRAINT fk_x FOREIGN KEY ...`` and forgets the name: its catalog reports a generated one
(``<table>_<columns>_fkey``) whatever the DDL said. Alembic knows constraints by name (``op.drop_constraint``,
autogenerate's comparison and the revisions it writes, ``include_name`` hooks), so this layer keeps each name
in a table of its own, ``catalog.CONSTRAINT_NAMES``: schema, table and the constraint's definition as
``TableDef`` renders it from the catalog (``FOREIGN KEY ("x") REFERENCES "t" ("id")``, which is what tells a
table's constraints apart in DuckDB) -> name. ``catalog.read_table`` puts the names back, so reflection, the
planner and autogenerate all see them.

The names are written by SQL statements run with the DDL, in its transaction (and, for ``--sql``, written to
the script and run on its shadow), so a step rolled back leaves them as they were:

- a table created with named constraints (``op.create_table``; ``metadata.create_all`` and ``Table.create``
  through the table events below): its rows are replaced by the names of its constraints;
- every change the planner makes: the rows of each table the plan changes are written again from the
  definitions it leaves. A name travels with its constraint through rebuilds, column renames and table renames;
  a dropped constraint loses its row;
- a dropped table loses its rows.

The table is created when a first name is to be kept, and dropped when the last goes: a file where none is
kept (any file written before, or by another tool) has no such table and reads as before, with DuckDB's
names, and a downgrade that drops the last named constraint leaves the schema it started from; a command that
only reads never creates it. It is not a user table: ``get_table_names`` leaves it out (so no autogenerate
sees it) and the data-loss census does not count it.

Not seen: constraints created or dropped by raw SQL (``op.execute``) keep DuckDB's names, and a table dropped by
raw SQL leaves its rows, which a table of the same name with an identical constraint created later by raw SQL
would take. A CHECK's definition is DuckDB's rendering of its expression, so a DuckDB version that renders it
differently reports that check under its generated name.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import duckdb
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection

from ccdash_alembic import alembic_internals as internals
from ccdash_alembic.ddl import catalog, census
from ccdash_alembic.ddl.catalog import CONSTRAINT_NAMES
from ccdash_alembic.ddl.dialect import DuckDBDialect, runs_metadata_ddl
from ccdash_alembic.ddl.expressions import scratch
from ccdash_alembic.ddl.tabledef import Check, ForeignKey, TableDef, Unique, literal, primary_key_sql, quote

Key = tuple[object, ...]  # what identifies a constraint of a table, however its columns and expression are spelt
Names = list[tuple[Key, str]]  # the names wanted for a table's constraints
Wanted = tuple[str, str | None, Names]  # (table, schema, names)
Row = tuple[str, str | None, str, str]  # a kept name: (table, schema, definition, name)

_CREATE = (
    f"CREATE TABLE IF NOT EXISTS {quote(CONSTRAINT_NAMES)} (schema_name VARCHAR NOT NULL, table_name VARCHAR NOT NULL,"
    " definition VARCHAR NOT NULL, constraint_name VARCHAR NOT NULL)"
)


def canonical_expression(expression: str) -> str:
    """DuckDB's own rendering of an expression, or the text itself if DuckDB cannot parse it alone: a model's
    CHECK and the one DuckDB keeps differ in spacing, parentheses and keyword case, and are the same check."""
    try:
        row = (
            scratch()
            .execute("SELECT json_deserialize_sql(json_serialize_sql($1))", ["SELECT " + expression])
            .fetchone()
        )
    except duckdb.Error:
        return expression.strip()
    return str(row[0]).removeprefix("SELECT ").strip() if row else expression.strip()


def check_sql(const: sa.CheckConstraint, dialect: Any) -> str:
    """A model's CHECK expression as the dialect renders it (values inline)."""
    return str(const.sqltext.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


def _lower(names: Iterable[str]) -> tuple[str, ...]:
    return tuple(name.lower() for name in names)


Constraint = Unique | Check | ForeignKey | tuple[str, ...]  # a tuple is the primary key's columns


def _constraints(table: TableDef) -> list[tuple[Constraint, str, str | None, str | None]]:
    """``(constraint, definition, name, DuckDB's name)`` of each constraint of ``table``."""
    found: list[tuple[Constraint, str, str | None, str | None]] = []
    if table.primary_key:
        key = table.primary_key
        found.append((key, primary_key_sql(key), table.primary_key_name, table.primary_key_generated_name))
    constraints: list[Unique | Check | ForeignKey] = [*table.uniques, *table.checks, *table.foreign_keys]
    return found + [(c, c.sql(), c.name, c.generated_name) for c in constraints]


def _key(constraint: Constraint) -> Key:
    """What tells ``constraint`` from the table's others, the same however a model or DuckDB spells it
    (identifiers are case-insensitive in DuckDB; a table has one primary key)."""
    if isinstance(constraint, tuple):
        return ("primary",)
    if isinstance(constraint, Unique):
        return ("unique", _lower(constraint.columns))
    if isinstance(constraint, Check):
        return ("check", canonical_expression(constraint.expression))
    return ("foreignkey", _lower(constraint.columns), constraint.ref_table.lower(), _lower(constraint.ref_columns))


def given(table: TableDef) -> Names:
    """The names ``table``'s constraints were given (not DuckDB's own), by key."""
    return [
        (_key(constraint), name)
        for constraint, _, name, generated in _constraints(table)
        if name is not None and name != generated
    ]


def _model_key(const: sa.Constraint, dialect: Any) -> Key | None:
    """The key of a model's constraint, as ``_key`` gives it for the same constraint read from the catalog."""
    if isinstance(const, sa.ForeignKeyConstraint):
        elements = const.elements
        referred = elements[0].column.table.name
        return _key(
            ForeignKey(tuple(e.parent.name for e in elements), referred, tuple(e.column.name for e in elements))
        )
    if isinstance(const, sa.CheckConstraint):
        return _key(Check(check_sql(const, dialect)))
    if isinstance(const, sa.UniqueConstraint):
        return _key(Unique(tuple(c.name for c in const.columns)))
    if isinstance(const, sa.PrimaryKeyConstraint) and len(const.columns):
        return _key(tuple(c.name for c in const.columns))
    return None


def model_names(table: sa.Table, dialect: Any) -> Names:
    """The names a model's table gives its constraints (through its metadata's naming convention too)."""
    found = []
    for const in table.constraints:
        name = internals.constraint_name(const, dialect)
        key = _model_key(const, dialect) if name is not None else None
        if key is not None and name is not None:
            found.append((key, name))
    return found


def _matched(table: TableDef, names: Names) -> list[tuple[str, str]]:
    """``(definition, name)`` of each constraint of ``table`` (as the catalog has it) that ``names`` names
    otherwise than DuckDB does."""
    remaining = list(names)
    rows = []
    for constraint, definition, _, generated in _constraints(table):
        key = _key(constraint)
        match = next((entry for entry in remaining if entry[0] == key), None)
        if match is not None:
            remaining.remove(match)
            if match[1] != generated:
                rows.append((definition, match[1]))
    return rows


def _schema_sql(schema: str | None) -> str:
    return literal(schema) if schema is not None else "current_schema()"


def _of(tables: Sequence[tuple[str, str | None]]) -> str:
    """SQL condition picking the kept names of ``tables``."""
    return " OR ".join(
        f"(schema_name = {_schema_sql(schema)} AND lower(table_name) = lower({literal(table)}))"
        for table, schema in tables
    )


def statements(
    conn: Connection, wanted: Sequence[Wanted], forgotten: Sequence[tuple[str, str | None]] = ()
) -> list[str]:
    """The statements that make the kept names of each table of ``wanted`` those its constraints (as the
    catalog of ``conn`` has them now) are given there, and drop the names of the ``forgotten`` tables.

    None when nothing is to be kept and the file keeps no names: a file that never had a named constraint
    stays without the table, and the table goes with its last name. Tables of another attached database are
    left out (the names are kept in the current one), and so are bookkeeping tables (``alembic_version`` names
    its key, which no one asks for: a new file would get this table for it)."""
    wanted = [w for w in wanted if _kept_here(w[0], w[1])]
    tables = [t for t in forgotten if _kept_here(*t)] + [(name, schema) for name, schema, _ in wanted]
    if not tables:
        return []
    return _writes(conn, tables, _rows(conn, wanted))


def _writes(conn: Connection, tables: Sequence[tuple[str, str | None]], rows: Sequence[Row]) -> list[str]:
    """The statements replacing the kept names of ``tables`` by ``rows``."""
    if not catalog.has_table(conn, CONSTRAINT_NAMES):
        return [_CREATE, *_insert(rows)] if rows else []
    if not rows and not _others(conn, tables):
        return [f"DROP TABLE {quote(CONSTRAINT_NAMES)}"]  # the last name goes: the file is as if none was kept
    return [f"DELETE FROM {quote(CONSTRAINT_NAMES)} WHERE {_of(tables)}", *_insert(rows)]


def _others(conn: Connection, tables: Sequence[tuple[str, str | None]]) -> bool:
    """Whether names are kept for other tables than ``tables``."""
    sql = f"SELECT count(*) FROM {quote(CONSTRAINT_NAMES)} WHERE NOT ({_of(tables)})"
    return bool(conn.exec_driver_sql(sql).scalar())


def _kept_here(table: str, schema: str | None) -> bool:
    """Whether names are kept for ``table``: not for another attached database's, nor bookkeeping tables'."""
    return catalog.split_schema(schema)[0] is None and not census.is_bookkeeping(table)


def _rows(conn: Connection, wanted: Sequence[Wanted]) -> list[Row]:
    """The rows keeping the names ``wanted`` for each table as the catalog of ``conn`` has it now."""
    rows = []
    for name, schema, names in wanted:
        table = catalog.read_table(conn, name, schema) if names else None
        if table is not None:
            rows += [(table.name, schema, definition, kept) for definition, kept in _matched(table, names)]
    return rows


def _insert(rows: Sequence[Row]) -> list[str]:
    """The statement adding ``rows`` (none for no rows)."""
    values = ", ".join(
        f"({_schema_sql(schema)}, {literal(table)}, {literal(definition)}, {literal(name)})"
        for table, schema, definition, name in rows
    )
    return [f"INSERT INTO {quote(CONSTRAINT_NAMES)} VALUES {values}"] if rows else []


def after_change(conn: Connection, table: str, schema: str | None, tables: Sequence[TableDef]) -> list[str]:
    """The statements that keep the names of ``tables``, the definitions a change to ``table`` left (under a
    new name when it renamed it: the old name's rows go)."""
    wanted = [(t.name, t.schema, given(t)) for t in tables]
    renamed = [(table, schema)] if tables and tables[0].name.lower() != table.lower() else []
    return statements(conn, wanted, renamed)


def _keep(connection: Connection, statements: Sequence[str]) -> None:
    for statement in statements:
        connection.exec_driver_sql(statement)


def _on_database(connection: object, kw: dict[str, Any]) -> bool:
    """Whether a table event is ``metadata.create_all``/``drop_all`` or ``Table.create``/``drop`` on a DuckDB
    database (Alembic's implementation keeps its own tables' names; a mock connection, such as the one Alembic's
    ``--sql`` mode creates its version table with, has no catalog to read)."""
    return (
        isinstance(connection, Connection) and connection.dialect.name == DuckDBDialect.name and runs_metadata_ddl(kw)
    )


@event.listens_for(sa.Table, "after_create")
def _keep_created(table: sa.Table, connection: Connection, **kw: Any) -> None:
    if _on_database(connection, kw):
        names = model_names(table, connection.dialect)
        _keep(connection, statements(connection, [(table.name, table.schema, names)]))


@event.listens_for(sa.Table, "after_drop")
def _forget_dropped(table: sa.Table, connection: Connection, **kw: Any) -> None:
    if _on_database(connection, kw):
        _keep(connection, statements(connection, [], [(table.name, table.schema)]))
