"""The rebuild planner on its own: ``rebuild.plan`` against DuckDB in memory, through SQLAlchemy.

Which strategy each change gets and why, how a key's new type reaches the columns that reference it, that
every change type has its own rule and its own effect on the table, and the refusals, word for word. Plans
that change tables are run on the same connection, so what they do is checked as well as what they say.
"""

from __future__ import annotations

import typing
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

import ccdash_alembic  # noqa: F401  (registers the dialect)
from ccdash_alembic.ddl import catalog, rebuild
from ccdash_alembic.ddl.tabledef import Column, ForeignKey, Index


@pytest.fixture
def conn() -> Iterator[Connection]:
    engine = sa.create_engine("duckdb:///:memory:", poolclass=sa.StaticPool)
    with engine.connect() as connection:
        yield connection
    engine.dispose()


def _run(conn: Connection, *statements: str) -> None:
    for statement in statements:
        conn.exec_driver_sql(statement)


def _types(conn: Connection, table: str) -> dict[str, str]:
    return {c.name: c.type for c in catalog.read_table(conn, table, None).columns}


def _rows(conn: Connection, table: str) -> list[tuple[object, ...]]:
    return sorted(conn.exec_driver_sql(f"SELECT * FROM {table}").fetchall(), key=repr)


PLAIN = "CREATE TABLE t (id INTEGER PRIMARY KEY, a INTEGER, b VARCHAR, c VARCHAR)"

# every change type, on a table DuckDB lets change freely: (change, strategy, the plan's first statement or reason)
EVERY_CHANGE: dict[str, tuple[rebuild.Change, str, str]] = {
    "AddColumn": (rebuild.AddColumn(Column("n", "INTEGER")), "native", 'ALTER TABLE "t" ADD COLUMN "n" INTEGER'),
    "DropColumn": (rebuild.DropColumn("c"), "native", 'ALTER TABLE "t" DROP COLUMN "c"'),
    "AlterColumn": (rebuild.AlterColumn("a", type="BIGINT"), "native", 'ALTER TABLE "t" ALTER COLUMN "a" TYPE BIGINT'),
    "RenameTable": (rebuild.RenameTable("t2"), "native", 'ALTER TABLE "t" RENAME TO "t2"'),
    "AddPrimaryKey": (rebuild.AddPrimaryKey(("id",)), "native", 'ALTER TABLE "t" ADD PRIMARY KEY ("id")'),
    "AddUnique": (rebuild.AddUnique(("b",)), "native", 'ALTER TABLE "t" ADD UNIQUE ("b")'),
    "AddCheck": (rebuild.AddCheck("a >= 0"), "rebuild", "DuckDB cannot add a CHECK constraint to an existing table"),
    "AddForeignKey": (
        rebuild.AddForeignKey(ForeignKey(("a",), "p", ("id",))),
        "rebuild",
        "DuckDB cannot add a FOREIGN KEY to an existing table",
    ),
    "DropConstraint": (rebuild.DropConstraint(("id",)), "rebuild", "DuckDB cannot drop a constraint"),
    "CreateIndex": (
        rebuild.CreateIndex(Index("ix_t_b", ('"b"',), ("b",))),
        "native",
        'CREATE INDEX "ix_t_b" ON "t" ("b")',
    ),
    "DropIndex": (rebuild.DropIndex("ix_t_c"), "native", 'DROP INDEX "ix_t_c"'),
    "SetTableComment": (rebuild.SetTableComment("about t"), "native", "COMMENT ON TABLE \"t\" IS 'about t'"),
}


def test_every_change_type_has_its_own_rules() -> None:
    """Each member of ``Change`` has a native rule and a table effect of its own, not the fallback."""
    kinds = typing.get_args(rebuild.Change)
    assert sorted(k.__name__ for k in kinds) == sorted(EVERY_CHANGE)
    for kind in kinds:
        assert rebuild._native.dispatch(kind) is not rebuild._native.dispatch(object), kind
        assert rebuild._apply.dispatch(kind) is not rebuild._apply.dispatch(object), kind


@pytest.mark.parametrize("kind", sorted(EVERY_CHANGE))
def test_each_change_type_is_planned_and_does_what_it_says(conn: Connection, kind: str) -> None:
    change, strategy, said = EVERY_CHANGE[kind]
    table = PLAIN.replace("PRIMARY KEY", "NOT NULL") if kind == "AddPrimaryKey" else PLAIN
    _run(conn, "CREATE TABLE p (id INTEGER PRIMARY KEY)", "INSERT INTO p VALUES (1), (2)", table)
    _run(conn, "INSERT INTO t VALUES (1, 1, 'x', 'y'), (2, 2, 'z', NULL)")
    if kind == "DropIndex":
        _run(conn, "CREATE INDEX ix_t_c ON t (c)")
    plan = rebuild.plan(conn, "t", [change])
    assert plan.strategy == strategy
    assert said in (plan.statements[0] if strategy == "native" else plan.reasons[0])
    _run(conn, *plan.statements)
    after = catalog.read_table(conn, "t2" if kind == "RenameTable" else "t", None)
    expected = {
        "AddColumn": lambda: after.has_column("n"),
        "DropColumn": lambda: not after.has_column("c"),
        "AlterColumn": lambda: after.column("a").type == "BIGINT",
        "RenameTable": lambda: after.name == "t2",
        "AddPrimaryKey": lambda: after.primary_key == ("id",),
        "AddUnique": lambda: [u.columns for u in after.uniques] == [("b",)],
        "AddCheck": lambda: [c.expression for c in after.checks] == ["a >= 0"],
        "AddForeignKey": lambda: [(f.columns, f.ref_table) for f in after.foreign_keys] == [(("a",), "p")],
        "DropConstraint": lambda: after.primary_key == (),
        "CreateIndex": lambda: [i.name for i in after.indexes] == ["ix_t_b"],
        "DropIndex": lambda: after.indexes == (),
        "SetTableComment": lambda: after.comment == "about t",
    }
    assert expected[kind](), after
    assert len(_rows(conn, after.name)) == 2


def test_an_object_that_is_no_change_is_refused(conn: Connection) -> None:
    _run(conn, PLAIN)
    with pytest.raises(TypeError):
        rebuild.plan(conn, "t", [typing.cast(rebuild.Change, "drop everything")])


def test_native_when_duckdb_allows_every_change(conn: Connection) -> None:
    _run(conn, PLAIN)
    plan = rebuild.plan(
        conn, "t", [rebuild.AddColumn(Column("n", "INTEGER")), rebuild.AlterColumn("b", new_name="bb", default="'-'")]
    )
    assert plan.strategy == "native" and plan.reasons == [] and plan.rebuilt == []
    assert plan.statements == [
        'ALTER TABLE "t" ADD COLUMN "n" INTEGER',
        """ALTER TABLE "t" ALTER COLUMN "b" SET DEFAULT '-'""",
        'ALTER TABLE "t" RENAME COLUMN "b" TO "bb"',
    ]


def test_one_refused_change_makes_the_whole_plan_one_rebuild_with_every_reason(conn: Connection) -> None:
    _run(conn, PLAIN, "CREATE INDEX ix_t_a ON t (a)", "CREATE TABLE child (t_id INTEGER REFERENCES t(id))")
    plan = rebuild.plan(conn, "t", [rebuild.DropColumn("c"), rebuild.AddCheck("a > 0")])
    assert plan.strategy == "rebuild"
    assert plan.reasons == [
        "DuckDB cannot drop a column of a table with an index (ix_t_a)",
        "DuckDB cannot add a CHECK constraint to an existing table",
    ]
    assert plan.rebuilt == ["t", "child"]
    assert str(plan).startswith(
        "rebuild change of t (DuckDB cannot drop a column of a table with an index (ix_t_a); "
        "DuckDB cannot add a CHECK constraint to an existing table)\n  rebuilds: t, child\n  "
    )


def test_an_index_created_earlier_in_the_plan_blocks_what_follows(conn: Connection) -> None:
    _run(conn, PLAIN)
    index = rebuild.CreateIndex(Index("ix_t_a", ('"a"',), ("a",)))
    plan = rebuild.plan(conn, "t", [index, rebuild.DropColumn("c")])
    assert plan.reasons == ["DuckDB cannot drop a column of a table with an index (ix_t_a)"]


def test_the_plan_is_the_same_data_each_time(conn: Connection) -> None:
    _run(conn, PLAIN, "CREATE INDEX ix_t_a ON t (a)")
    changes = [rebuild.AlterColumn("a", type="BIGINT"), rebuild.DropColumn("c")]
    assert rebuild.plan(conn, "t", changes) == rebuild.plan(conn, "t", changes)


KEYS = (
    "CREATE TABLE owner (id INTEGER PRIMARY KEY, name VARCHAR)",
    "CREATE TABLE item (id INTEGER PRIMARY KEY, owner_id INTEGER UNIQUE REFERENCES owner(id))",
    "CREATE TABLE note (owner_ref INTEGER REFERENCES item(owner_id), body VARCHAR)",
    "CREATE TABLE tag (item_id INTEGER REFERENCES item(id))",
    "INSERT INTO owner SELECT i, 'o' || i FROM range(1, 5) r(i)",
    "INSERT INTO item SELECT i, i FROM range(1, 5) r(i)",
    "INSERT INTO note SELECT 1 + i % 4, 'n' || i FROM range(10) r(i)",
    "INSERT INTO tag SELECT 1 + i % 4 FROM range(6) r(i)",
)


def test_a_key_type_change_is_carried_along_the_chain_of_references(conn: Connection) -> None:
    _run(conn, *KEYS)
    before = {t: _rows(conn, t) for t in ("owner", "item", "note", "tag")}
    plan = rebuild.plan(conn, "owner", [rebuild.AlterColumn("id", type="BIGINT")])
    assert plan.strategy == "rebuild"
    assert plan.rebuilt == ["owner", "item", "note", "tag"]  # parents first, ties by name
    assert plan.carried == [
        "item.owner_id becomes BIGINT, the type of owner.id",
        "note.owner_ref becomes BIGINT, the type of item.owner_id",
    ]
    assert "\n  carries: item.owner_id becomes BIGINT, the type of owner.id; note.owner_ref becomes" in str(plan)
    _run(conn, *plan.statements)
    assert _types(conn, "item") == {"id": "INTEGER", "owner_id": "BIGINT"}
    assert _types(conn, "note")["owner_ref"] == "BIGINT"
    assert _types(conn, "tag")["item_id"] == "INTEGER"  # references item.id, whose type stays
    assert {t: _rows(conn, t) for t in before} == before

    back = rebuild.plan(conn, "owner", [rebuild.AlterColumn("id", type="INTEGER")])
    _run(conn, *back.statements)
    assert _types(conn, "note")["owner_ref"] == "INTEGER"
    assert {t: _rows(conn, t) for t in before} == before


def test_a_change_that_keeps_the_key_type_carries_nothing(conn: Connection) -> None:
    _run(conn, *KEYS)
    plan = rebuild.plan(conn, "owner", [rebuild.AlterColumn("name", type="VARCHAR(20)")])
    assert plan.carried == [] and "carries" not in str(plan)


@pytest.mark.parametrize(
    ("setup", "table", "changes", "message"),
    [
        (PLAIN, "t", [rebuild.AddColumn(Column("A", "INTEGER"))], "table t already has a column A"),
        (PLAIN, "t", [rebuild.AddPrimaryKey(("a",))], "table t already has a primary key (id); drop it first"),
        (PLAIN, "t", [rebuild.AddUnique(("b",)), rebuild.AddUnique(("B",))], "already has a unique constraint on (b)"),
        (PLAIN, "t", [rebuild.DropIndex("nope")], "table t has no index named nope"),
        (
            "CREATE TABLE t (id INTEGER PRIMARY KEY, up INTEGER REFERENCES t(id), v INTEGER)",
            "t",
            [rebuild.AddCheck("v > 0")],
            "table t references itself; rebuilding such a table is not supported. "
            "Drop the self-referencing foreign key first",
        ),
        (
            KEYS[0] + "; " + KEYS[1],
            "owner",
            [rebuild.DropConstraint(("id",)), rebuild.DropColumn("id")],
            "column owner.id is referenced by a foreign key of item (owner_id); drop that foreign key first",
        ),
    ],
    ids=["duplicate column", "second primary key", "duplicate unique", "missing index", "self reference", "key"],
)
def test_refusals_say_why(
    conn: Connection, setup: str, table: str, changes: list[rebuild.Change], message: str
) -> None:
    _run(conn, setup)
    with pytest.raises(rebuild.PlanError) as refused:
        rebuild.plan(conn, table, changes)
    assert message in str(refused.value)


def test_find_constraint_matches_names_then_the_only_one_of_a_kind(conn: Connection) -> None:
    _run(
        conn,
        KEYS[0],
        "CREATE TABLE c (id INTEGER PRIMARY KEY, o INTEGER REFERENCES owner(id), v INTEGER CHECK (v > 0))",
    )
    table = catalog.read_table(conn, "c", None)
    assert rebuild.find_constraint(table, "c_o_id_fkey", None).constraint == table.foreign_keys[0]
    assert rebuild.find_constraint(table, "whatever", "check").constraint == table.checks[0]
    assert rebuild.find_constraint(table, None, "primary").constraint == ("id",)
    with pytest.raises(rebuild.PlanError, match="unknown constraint type 'index'; use one of primary, unique"):
        rebuild.find_constraint(table, "x", "index")
    with pytest.raises(rebuild.PlanError) as refused:
        rebuild.find_constraint(table, "fk_c_owner", None)
    assert str(refused.value) == (
        "table c has no constraint that matches 'fk_c_owner' (DuckDB keeps no constraint names; it has: "
        "c_id_pkey (primary key on id); c_o_id_fkey (foreign key on o); c_v_check (check on v)); "
        "drop it by one of those names"
    )
