"""Operations Alembic lacks, registered the Alembic way (``Operations.register_operation``).

- ``op.create_sequence(name, start=1, increment=1, ...)`` / ``op.drop_sequence(name)``.
- ``op.execute_in_chunks(sql, table=..., key=..., chunk_rows=...)``: a data migration (``UPDATE``, or
  ``INSERT ... SELECT``) run as one statement per key range, so no single statement has to hold a whole large
  table; ``{chunk}`` in the SQL is replaced by the range condition. The ranges come from the key's own values
  (every ``chunk_rows``-th key), so any sortable key works, text included, and only the boundaries are held
  in memory; ``alias`` says how the SQL names the table, if it gives it one. Progress shows on a terminal.
  All chunks run in the revision's transaction, so the migration is still all or nothing.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import sqlalchemy as sa
from alembic.operations import MigrateOperation, Operations

from ccdash_alembic.ddl.tabledef import literal, qualified, quote
from ccdash_alembic.output import progress

CHUNK_PLACEHOLDER = "{chunk}"


@Operations.register_operation("create_sequence")
class CreateSequenceOp(MigrateOperation):
    """``op.create_sequence("ticket_numbers", start=1000)``."""

    def __init__(self, sequence: sa.Sequence) -> None:
        self.sequence = sequence

    @classmethod
    def create_sequence(
        cls,
        operations: Operations,
        name: str,
        start: int | None = None,
        increment: int | None = None,
        minvalue: int | None = None,
        maxvalue: int | None = None,
        cycle: bool | None = None,
        schema: str | None = None,
    ) -> None:
        sequence = sa.Sequence(
            name, start=start, increment=increment, minvalue=minvalue, maxvalue=maxvalue, cycle=cycle, schema=schema
        )
        operations.invoke(cls(sequence))

    def reverse(self) -> DropSequenceOp:
        return DropSequenceOp(self.sequence)


@Operations.register_operation("drop_sequence")
class DropSequenceOp(MigrateOperation):
    """``op.drop_sequence("ticket_numbers")``; refused by DuckDB while a column default still uses it."""

    def __init__(self, sequence: sa.Sequence) -> None:
        self.sequence = sequence

    @classmethod
    def drop_sequence(cls, operations: Operations, name: str, schema: str | None = None) -> None:
        operations.invoke(cls(sa.Sequence(name, schema=schema)))

    def reverse(self) -> CreateSequenceOp:
        return CreateSequenceOp(self.sequence)


@Operations.implementation_for(CreateSequenceOp)
def _create_sequence(operations: Operations, operation: CreateSequenceOp) -> None:
    operations.execute(sa.schema.CreateSequence(operation.sequence))


@Operations.implementation_for(DropSequenceOp)
def _drop_sequence(operations: Operations, operation: DropSequenceOp) -> None:
    operations.execute(sa.schema.DropSequence(operation.sequence))


@Operations.register_operation("execute_in_chunks")
class ExecuteInChunksOp(MigrateOperation):
    """``op.execute_in_chunks("UPDATE t SET ... WHERE ... AND {chunk}", table="t", key="id")``."""

    def __init__(
        self, sql: str, table: str, key: str, chunk_rows: int, schema: str | None, alias: str | None = None
    ) -> None:
        if CHUNK_PLACEHOLDER not in sql:
            raise ValueError(f"execute_in_chunks needs {CHUNK_PLACEHOLDER} in its SQL, where the key range goes")
        if chunk_rows < 1:
            raise ValueError("chunk_rows must be at least 1")
        self.sql = sql
        self.table = table
        self.key = key
        self.chunk_rows = chunk_rows
        self.schema = schema
        self.alias = alias

    @classmethod
    def execute_in_chunks(
        cls,
        operations: Operations,
        sql: str,
        table: str,
        key: str,
        chunk_rows: int = 100_000,
        schema: str | None = None,
        alias: str | None = None,
    ) -> None:
        operations.invoke(cls(sql, table, key, chunk_rows, schema, alias))


def chunk_conditions(
    connection: Any, table: str, key: str, chunk_rows: int, schema: str | None, alias: str | None = None
) -> list[str]:
    """Key-range conditions covering every row of ``table`` (NULL keys in the last range), in key order, on
    the key as the SQL names it (``alias.key`` when the SQL gives the table an alias)."""
    column = f"{quote(alias) if alias else qualified(table, schema)}.{quote(key)}"
    boundaries = [
        row[0]
        for row in connection.exec_driver_sql(
            f"SELECT k FROM (SELECT {quote(key)} AS k, row_number() OVER (ORDER BY {quote(key)}) AS n "
            f"FROM {qualified(table, schema)} WHERE {quote(key)} IS NOT NULL) "
            f"WHERE (n - 1) % {int(chunk_rows)} = 0 ORDER BY k"
        )
    ]
    if not boundaries:
        return [f"{column} IS NULL"]
    values = [_sql_value(b) for b in boundaries]
    conditions = [f"{column} >= {lo} AND {column} < {hi}" for lo, hi in pairwise(values)]
    conditions.append(f"({column} >= {values[-1]} OR {column} IS NULL)")
    return conditions


def _sql_value(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        raise ValueError(f"cannot use {value!r} as a chunk boundary")
    if isinstance(value, int | float):
        return repr(value)
    return literal(str(value))  # DuckDB casts a text literal to the key's type (dates, timestamps, UUIDs, decimals)


@Operations.implementation_for(ExecuteInChunksOp)
def _execute_in_chunks(operations: Operations, operation: ExecuteInChunksOp) -> None:
    if operations.migration_context.as_sql:
        operations.execute(sa.text(operation.sql.replace(CHUNK_PLACEHOLDER, "TRUE").replace(":", "\\:")))
        return
    connection = operations.get_bind()
    conditions = chunk_conditions(
        connection, operation.table, operation.key, operation.chunk_rows, operation.schema, operation.alias
    )
    with progress(f"{operation.table} chunks", len(conditions)) as advance:
        for condition in conditions:
            connection.exec_driver_sql(operation.sql.replace(CHUNK_PLACEHOLDER, f"({condition})"))
            advance("", 1)
