"""``op.execute_in_chunks``' key ranges: together they cover every row once, NULL keys and quotes included."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from ccdash_alembic.ddl.ops import chunk_conditions


def test_chunk_conditions_cover_every_key_once(tmp_path: Path) -> None:
    engine = sa.create_engine(f"duckdb:///{tmp_path / 'chunks.db'}", poolclass=sa.NullPool)
    with engine.connect() as connection:
        connection.exec_driver_sql("CREATE TABLE t (k VARCHAR)")
        connection.exec_driver_sql("INSERT INTO t SELECT 'k' || i FROM range(250) r(i)")
        connection.exec_driver_sql("INSERT INTO t VALUES (NULL), (NULL), ('it''s')")
        conditions = chunk_conditions(connection, "t", "k", 100, None)
        assert len(conditions) == 3
        counts = [connection.exec_driver_sql(f"SELECT count(*) FROM t WHERE {c}").scalar() for c in conditions]
        assert sum(counts) == 253 and all(c <= 101 + 2 for c in counts)
        connection.exec_driver_sql("DELETE FROM t WHERE k IS NOT NULL")
        assert chunk_conditions(connection, "t", "k", 100, None) == ['"t"."k" IS NULL']
