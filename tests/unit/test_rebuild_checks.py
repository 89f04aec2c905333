"""The checks a rebuild plan carries run inside DuckDB, in the same transaction as the copy they check."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from ccdash_alembic.ddl import rebuild


def test_row_count_difference_aborts_the_rebuild(tmp_path: Path) -> None:
    """The verification statements of a plan raise inside DuckDB when a table lost rows on the way."""
    engine = sa.create_engine(f"duckdb:///{tmp_path / 'count.db'}", poolclass=sa.NullPool)
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER)")
        connection.exec_driver_sql("CREATE INDEX ix_t_v ON t (v)")
        connection.exec_driver_sql("INSERT INTO t SELECT i, i FROM range(100) r(i)")
    with engine.connect() as connection:
        plan = rebuild.plan(connection, "t", [rebuild.AlterColumn("v", type="BIGINT")])
        assert plan.strategy == "rebuild"
        verify = next(i for i, s in enumerate(plan.statements) if s.startswith("SELECT error("))
        for statement in plan.statements[:verify]:
            connection.exec_driver_sql(statement)
        connection.exec_driver_sql("DELETE FROM t WHERE id < 3")  # as if the copy had lost rows
        with pytest.raises(sa.exc.DBAPIError, match="row count of t changed during its rebuild: 100 before, 97 after"):
            connection.exec_driver_sql(plan.statements[verify])
        connection.rollback()
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*), typeof(any_value(v)) FROM t").one() == (100, "INTEGER")
