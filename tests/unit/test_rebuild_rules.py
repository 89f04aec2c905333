"""The planner's native-or-rebuild rules, checked against DuckDB itself.

For every table shape and change below: when the planner says "native", its ALTER statements must run on
DuckDB as they are; and the cases named in CHEAPEST must be native, so the planner does not rebuild where
DuckDB would have altered.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from ccdash_alembic.ddl import rebuild
from ccdash_alembic.ddl.tabledef import Column, ForeignKey, Index

SHAPES = {
    "plain": ["CREATE TABLE t (id INTEGER, a INTEGER, b VARCHAR)"],
    "primary key": ["CREATE TABLE t (id INTEGER PRIMARY KEY, a INTEGER, b VARCHAR)"],
    "unique on a": ["CREATE TABLE t (id INTEGER, a INTEGER UNIQUE, b VARCHAR)"],
    "unique on last": ["CREATE TABLE t (id INTEGER, a INTEGER, b VARCHAR UNIQUE)"],
    "check on a": ["CREATE TABLE t (id INTEGER, a INTEGER CHECK (a > 0), b VARCHAR)"],
    "index on a": ["CREATE TABLE t (id INTEGER, a INTEGER, b VARCHAR)", "CREATE INDEX ix ON t (a)"],
    "outgoing foreign key": ["CREATE TABLE t (id INTEGER, a INTEGER REFERENCES p(id), b VARCHAR)"],
    "incoming foreign key": [
        "CREATE TABLE t (id INTEGER PRIMARY KEY, a INTEGER, b VARCHAR)",
        "CREATE TABLE c (x INTEGER REFERENCES t(id))",
    ],
}

CHANGES: dict[str, rebuild.Change] = {
    "add nullable column": rebuild.AddColumn(Column("n", "INTEGER")),
    "add column with default": rebuild.AddColumn(Column("n", "INTEGER", default="5")),
    "add not null column with default": rebuild.AddColumn(Column("n", "INTEGER", nullable=False, default="5")),
    "add unique column": rebuild.AddColumn(Column("n", "INTEGER"), unique=True),
    "add column with foreign key": rebuild.AddColumn(
        Column("n", "INTEGER"), foreign_key=ForeignKey(("n",), "p", ("id",))
    ),
    "drop column b": rebuild.DropColumn("b"),
    "drop column a": rebuild.DropColumn("a"),
    "change type of a": rebuild.AlterColumn("a", type="BIGINT"),
    "change type of b": rebuild.AlterColumn("b", type="VARCHAR"),
    "change type with USING": rebuild.AlterColumn("a", type="VARCHAR", using="'#' || a"),
    "rename column a": rebuild.AlterColumn("a", new_name="aa"),
    "rename column b": rebuild.AlterColumn("b", new_name="bb"),
    "set default": rebuild.AlterColumn("a", default="1"),
    "drop default": rebuild.AlterColumn("a", default=None),
    "set not null": rebuild.AlterColumn("a", nullable=False),
    "comment": rebuild.AlterColumn("a", comment="about a"),
    "rename table": rebuild.RenameTable("t2"),
    "add primary key": rebuild.AddPrimaryKey(("id",)),
    "add unique": rebuild.AddUnique(("b",)),
    "add check": rebuild.AddCheck("id >= 0"),
    "create index": rebuild.CreateIndex(Index("ix_b", ('"b"',), ("b",))),
    "table comment": rebuild.SetTableComment("about t"),
}

CHEAPEST = (
    {("plain", c) for c in CHANGES if c not in ("add column with foreign key", "add check")}
    | {
        (shape, change)
        for shape in SHAPES
        for change in (
            "add nullable column",
            "add column with default",
            "set default",
            "drop default",
            "comment",
            "create index",
            "table comment",
        )
    }
    | {
        ("primary key", "drop column b"),
        ("primary key", "change type of a"),
        ("unique on a", "change type of b"),
        ("check on a", "rename column a"),
        ("outgoing foreign key", "change type of b"),
        ("outgoing foreign key", "set not null"),
    }
)


def _connection(tmp_path: Path, shape: str) -> sa.Connection:
    tmp_path.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(f"duckdb:///{tmp_path / 'rules.db'}", poolclass=sa.NullPool)
    connection = engine.connect()
    connection.exec_driver_sql("CREATE TABLE p (id INTEGER PRIMARY KEY)")
    connection.exec_driver_sql("INSERT INTO p SELECT i FROM range(1, 5) r(i)")
    for statement in SHAPES[shape]:
        connection.exec_driver_sql(statement)
    connection.exec_driver_sql("INSERT INTO t (id, a, b) SELECT i, i, 'v' || i FROM range(1, 4) r(i)")
    connection.commit()
    return connection


@pytest.mark.parametrize("shape", list(SHAPES))
def test_native_plans_run_on_duckdb(tmp_path: Path, shape: str) -> None:
    natives = []
    for name, change in CHANGES.items():
        connection = _connection(tmp_path / name.replace(" ", "_"), shape)
        try:
            try:
                plan = rebuild.plan(connection, "t", [change])
            except rebuild.PlanError as refusal:  # a change that makes no sense on this shape
                assert "already has" in str(refusal), refusal
                continue
            if plan.strategy == "native":
                natives.append(name)
                for statement in plan.statements:
                    connection.exec_driver_sql(statement)  # DuckDB must accept each native statement
            if (shape, name) in CHEAPEST:
                assert plan.strategy == "native", (shape, name, plan.reasons)
            connection.rollback()
        finally:
            connection.close()
    assert natives, shape


def test_rebuilds_where_duckdb_refuses(tmp_path: Path) -> None:
    """The reverse check for a few cases: DuckDB refuses the native statement, and the plan rebuilds."""
    for shape, change, native_sql in [
        ("index on a", "change type of a", "ALTER TABLE t ALTER COLUMN a TYPE BIGINT"),
        ("incoming foreign key", "set not null", "ALTER TABLE t ALTER COLUMN a SET NOT NULL"),
        ("unique on last", "drop column a", "ALTER TABLE t DROP COLUMN a"),
        ("outgoing foreign key", "rename column a", "ALTER TABLE t RENAME COLUMN a TO aa"),
    ]:
        connection = _connection(tmp_path / change.replace(" ", "_"), shape)
        try:
            assert rebuild.plan(connection, "t", [CHANGES[change]]).strategy == "rebuild"
            with pytest.raises(sa.exc.DBAPIError):
                connection.exec_driver_sql(native_sql)
            connection.rollback()
        finally:
            connection.close()
