"""``sa.Identity()`` is refused: DuckDB has no identity columns, and leaving the clause out (what SQLAlchemy's
base compiler does) would make a key that every insert without an id fails on."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from conftest import Project, error_line

import ccdash_alembic  # noqa: F401  (registers the DuckDB dialect's compiler)


def test_an_identity_column_is_refused_in_one_line_and_nothing_is_created(project: Project) -> None:
    project.write_revision(
        "20250101000001",
        None,
        'op.create_table("t", sa.Column("id", sa.Integer, sa.Identity(), primary_key=True), sa.Column("v", sa.String))',
        'op.drop_table("t")',
    )
    result = project.alembic("upgrade", "head")
    assert result.returncode == 6, result.stderr
    assert "Traceback" not in result.stderr
    assert "DuckDB has no identity columns (id: sa.Identity)" in error_line(result)
    assert project.rows("SELECT count(*) FROM duckdb_tables() WHERE table_name = 't'") == [(0,)]


def test_the_compiler_refuses_identity_where_it_would_drop_it() -> None:
    table = sa.Table("t", sa.MetaData(), sa.Column("id", sa.Integer, sa.Identity(), primary_key=True))
    engine = sa.create_engine("duckdb:///:memory:")
    with pytest.raises(sa.exc.CompileError, match="no identity columns"):
        sa.schema.CreateTable(table).compile(dialect=engine.dialect)
