"""The data-loss guard on PostgreSQL: a drop a revision declares is checked for data before it runs.

On DuckDB the layer's implementation counts every table's rows before and after each step, since a rebuild
copies tables. On PostgreSQL, Alembic's own implementation runs the operations: the server's ALTER changes a
table in place, so data goes only where a revision drops it. No backup is made of a server database (that
is pg_dump's job), so a dropped table or column that holds data is refused by the run's policy (exit code 9)
unless ``-x confirm_data_loss=true``: ``op.drop_table``, ``op.drop_column`` and their batch forms.

Only this run's implementation object is wrapped: Alembic's ``PostgresqlImpl`` class, which every other
PostgreSQL project in the process uses, is left as it is. SQL a revision runs itself
(``op.execute("DROP TABLE ...")``) is not seen.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext

from ccdash_alembic.errors import DataLossRefused
from ccdash_alembic.policy import RunPolicy


def guard(context: MigrationContext, rules: RunPolicy) -> None:
    """Check each drop of the run's steps before it runs, unless the policy allows losing data (or nothing
    runs: a ``--sql`` script)."""
    if rules.data_loss_allowed or context.as_sql or context.connection is None:
        return
    impl = context.impl
    drop_table, drop_column = impl.drop_table, impl.drop_column

    def checked_drop_table(table: sa.Table, **kw: Any) -> None:
        _refuse_if_data(context, table.name, table.schema, None)
        drop_table(table, **kw)

    def checked_drop_column(table_name: str, column: sa.Column[Any], schema: str | None = None, **kw: Any) -> None:
        _refuse_if_data(context, table_name, schema, column.name)
        drop_column(table_name, column, schema=schema, **kw)

    impl.drop_table = checked_drop_table  # type: ignore[method-assign]
    impl.drop_column = checked_drop_column  # type: ignore[method-assign]


def _refuse_if_data(context: MigrationContext, table: str, schema: str | None, column: str | None) -> None:
    """Refuse the drop when the table holds a row (the column a value): asked with EXISTS, which stops at the
    first row, so the check costs the same on a large table."""
    preparer = context.dialect.identifier_preparer
    source = preparer.format_table(sa.table(table, schema=schema))
    where = f" WHERE {preparer.quote(column)} IS NOT NULL" if column else ""
    assert context.connection is not None
    if not context.connection.exec_driver_sql(f"SELECT EXISTS (SELECT 1 FROM {source}{where})").scalar():
        return
    what = f"column {table}.{column}, which holds values" if column else f"table {table}, which holds rows"
    raise DataLossRefused(
        f"this step would drop {what}, and no backup is made of a PostgreSQL database",
        "Back the database up (pg_dump), then run again with -x confirm_data_loss=true",
    )
