"""Reflection on SQLAlchemy 2.1 from DuckDB's catalog, and autoincrement keys without SERIAL."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

import ccdash_alembic  # noqa: F401  (registers the dialect)

SCHEMA = [
    "CREATE SEQUENCE order_numbers START WITH 100",
    "CREATE TYPE mood AS ENUM ('calm', 'busy')",
    """CREATE TABLE "Parent" (
        id INTEGER PRIMARY KEY,
        code VARCHAR NOT NULL UNIQUE,
        "select" INTEGER CHECK ("select" >= 0),
        state mood DEFAULT 'calm'
    )""",
    """CREATE TABLE child (
        id BIGINT DEFAULT nextval('order_numbers') PRIMARY KEY,
        parent_id INTEGER REFERENCES "Parent"(id),
        "Amount Due" DECIMAL(12, 2) NOT NULL DEFAULT 0,
        tags VARCHAR[],
        created TIMESTAMP WITH TIME ZONE DEFAULT current_timestamp,
        note TEXT,
        doubled INTEGER GENERATED ALWAYS AS (parent_id * 2) VIRTUAL,
        UNIQUE (parent_id, note)
    )""",
    'CREATE INDEX ix_child_amount ON child ("Amount Due", created)',
    "CREATE UNIQUE INDEX ux_child_note ON child (lower(note))",
    "COMMENT ON TABLE child IS 'child rows'",
    "COMMENT ON COLUMN child.note IS 'free text'",
    'CREATE VIEW parent_codes AS SELECT code FROM "Parent"',
]


@pytest.fixture
def engine(tmp_path: Path) -> sa.Engine:
    engine = sa.create_engine(f"duckdb:///{tmp_path / 'reflect.db'}", poolclass=sa.NullPool)
    with engine.begin() as connection:
        for statement in SCHEMA:
            connection.exec_driver_sql(statement)
    return engine


def test_names(engine: sa.Engine) -> None:
    inspector = sa.inspect(engine)
    assert inspector.get_table_names() == ["Parent", "child"]
    assert inspector.get_view_names() == ["parent_codes"]
    assert inspector.get_sequence_names() == ["order_numbers"]
    assert "main" in inspector.get_schema_names()
    assert inspector.has_table("child") and not inspector.has_table("nope")
    assert inspector.has_sequence("order_numbers")
    assert inspector.has_index("child", "ix_child_amount")


def test_columns(engine: sa.Engine) -> None:
    columns = {c["name"]: c for c in sa.inspect(engine).get_columns("child")}
    assert list(columns) == ["id", "parent_id", "Amount Due", "tags", "created", "note", "doubled"]
    assert isinstance(columns["id"]["type"], sa.BIGINT)
    assert columns["id"]["default"] == "nextval('order_numbers')" and columns["id"]["autoincrement"]
    assert columns["id"]["nullable"] is False
    amount = columns["Amount Due"]
    assert isinstance(amount["type"], sa.NUMERIC) and (amount["type"].precision, amount["type"].scale) == (12, 2)
    assert amount["nullable"] is False and amount["default"] in ("0", "CAST(0 AS DECIMAL(12,2))")
    assert isinstance(columns["tags"]["type"], pg.ARRAY) and isinstance(columns["tags"]["type"].item_type, sa.VARCHAR)
    assert isinstance(columns["created"]["type"], sa.TIMESTAMP) and columns["created"]["type"].timezone
    assert columns["note"]["comment"] == "free text"
    assert columns["doubled"]["computed"] == {"sqltext": "parent_id * 2", "persisted": False}
    state = {c["name"]: c for c in sa.inspect(engine).get_columns("Parent")}["state"]["type"]
    assert isinstance(state, pg.ENUM) and state.name == "mood" and state.enums == ["calm", "busy"]


def test_constraints(engine: sa.Engine) -> None:
    inspector = sa.inspect(engine)
    assert inspector.get_pk_constraint("Parent")["constrained_columns"] == ["id"]
    assert inspector.get_pk_constraint("child")["constrained_columns"] == ["id"]
    [fk] = inspector.get_foreign_keys("child")
    assert (fk["constrained_columns"], fk["referred_table"], fk["referred_columns"]) == (
        ["parent_id"],
        "Parent",
        ["id"],
    )
    assert fk["name"]  # DuckDB's generated name, usable to drop it
    assert [u["column_names"] for u in inspector.get_unique_constraints("Parent")] == [["code"]]
    assert [u["column_names"] for u in inspector.get_unique_constraints("child")] == [["parent_id", "note"]]
    [check] = inspector.get_check_constraints("Parent")
    assert check["sqltext"] == '"select" >= 0'
    assert inspector.get_table_comment("child") == {"text": "child rows"}


def test_indexes(engine: sa.Engine) -> None:
    indexes = {i["name"]: i for i in sa.inspect(engine).get_indexes("child")}
    assert indexes["ix_child_amount"]["column_names"] == ["Amount Due", "created"]
    assert indexes["ix_child_amount"]["unique"] is False
    assert indexes["ux_child_note"]["unique"] is True
    assert indexes["ux_child_note"]["column_names"] == [None]
    assert indexes["ux_child_note"]["expressions"] == ["lower(note)"]


def test_whole_schema_reflects_into_metadata(engine: sa.Engine) -> None:
    metadata = sa.MetaData()
    metadata.reflect(engine, views=True)
    child = metadata.tables["child"]
    assert [fk.target_fullname for fk in child.foreign_keys] == ["Parent.id"]
    assert {i.name for i in child.indexes} == {"ix_child_amount", "ux_child_note"}
    assert metadata.tables["parent_codes"].c.keys() == ["code"]


def test_autoincrement_key_is_a_sequence_default_not_serial(tmp_path: Path) -> None:
    engine = sa.create_engine(f"duckdb:///{tmp_path / 'auto.db'}", poolclass=sa.NullPool)
    metadata = sa.MetaData()
    table = sa.Table("things", metadata, sa.Column("id", sa.Integer, primary_key=True), sa.Column("v", sa.String))
    ddl = str(sa.schema.CreateTable(table).compile(dialect=engine.dialect))
    assert "SERIAL" not in ddl and "DEFAULT nextval('things_id_seq')" in ddl

    metadata.create_all(engine)
    with engine.begin() as connection:
        ids = [connection.execute(table.insert().values(v=v)).inserted_primary_key[0] for v in "abc"]
        connection.exec_driver_sql("INSERT INTO things (v) VALUES ('raw sql')")
        assert connection.execute(sa.select(sa.func.max(table.c.id))).scalar() == 4
    assert ids == [1, 2, 3]
    assert sa.inspect(engine).get_sequence_names() == ["things_id_seq"]

    metadata.drop_all(engine)
    assert sa.inspect(engine).get_sequence_names() == []
    assert sa.inspect(engine).get_table_names() == []


def test_explicit_sequence_on_a_column(tmp_path: Path) -> None:
    engine = sa.create_engine(f"duckdb:///{tmp_path / 'seq.db'}", poolclass=sa.NullPool)
    metadata = sa.MetaData()
    table = sa.Table(
        "tickets", metadata, sa.Column("id", sa.BigInteger, sa.Sequence("ticket_ids", start=500), primary_key=True)
    )
    metadata.create_all(engine)
    with engine.begin() as connection:
        assert connection.execute(table.insert()).inserted_primary_key[0] == 500
        connection.exec_driver_sql("INSERT INTO tickets DEFAULT VALUES")
        assert connection.execute(sa.select(sa.func.max(table.c.id))).scalar() == 501
