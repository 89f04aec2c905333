"""Every Alembic operation on a populated table with a primary key, an index, a unique, a check, an outgoing
and an incoming foreign key: upgrade, downgrade and upgrade again, with the schema compared by reflection and
every row and value checked after each step."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import Project, database_template, use_database
from shapes import BASE_UPGRADE, data, rows, schema

from ccdash_alembic.ddl.defaults import normalize_default

State = dict[str, Any]


@dataclass
class Case:
    upgrade: str
    downgrade: str
    expect: Callable[[State, State], None]  # (schema before, schema after upgrade)
    rebuilds: int  # how many rebuilds the upgrade needs (0: all native)
    reordered: tuple[str, ...] = ()  # tables whose column order a drop-and-re-add round trip changes
    data_lost: dict[str, str] = field(default_factory=dict)  # table -> column whose values a round trip loses


def _columns(state: State, table: str) -> list[str]:
    return [c[0] for c in state[table]["columns"]]


def _column(state: State, table: str, name: str) -> tuple[Any, ...]:
    return next(c for c in state[table]["columns"] if c[0] == name)


def _same_except(before: State, after: State, table: str, *keys: str) -> None:
    for name in before:
        if name != table:
            assert after[name] == before[name], name
    for key in before[table]:
        if key not in keys:
            assert after[table][key] == before[table][key], key


CASES: dict[str, Case] = {
    "add_column nullable": Case(
        "op.add_column('items', sa.Column('color', sa.String))",
        "op.drop_column('items', 'color')",
        lambda b, a: (
            _same_except(b, a, "items", "columns"),
            _columns(a, "items") == [*_columns(b, "items"), "color"] or pytest.fail("color not last"),
        ),
        rebuilds=0,
    ),
    "add_column server default": Case(
        "op.add_column('items', sa.Column('stock', sa.Integer, server_default='7'))",
        "op.drop_column('items', 'stock')",
        lambda b, a: _column(a, "items", "stock")[3] == normalize_default("7") or pytest.fail("default"),
        rebuilds=0,
    ),
    "add_column not null with default": Case(
        "op.add_column('items', sa.Column('state', sa.String, nullable=False, server_default='new'))",
        "op.drop_column('items', 'state')",
        lambda b, a: _column(a, "items", "state")[2] is False or pytest.fail("nullable"),
        rebuilds=1,
    ),
    "add_column with foreign key": Case(
        "op.add_column('items', sa.Column('seller_id', sa.Integer, sa.ForeignKey('owners.id')))",
        "op.drop_column('items', 'seller_id')",
        lambda b, a: (("seller_id",), "owners", ("id",)) in a["items"]["foreign_keys"] or pytest.fail("fk"),
        rebuilds=1,
    ),
    "drop_column plain": Case(
        "op.drop_column('events', 'payload')",
        "op.add_column('events', sa.Column('payload', sa.String))",
        lambda b, a: _columns(a, "events") == ["id"] or pytest.fail("columns"),
        rebuilds=0,
        data_lost={"events": "payload"},
    ),
    "drop_column of a referenced table": Case(
        "op.drop_column('items', 'note')",
        "op.add_column('items', sa.Column('note', sa.String, server_default='none'))",
        lambda b, a: (_same_except(b, a, "items", "columns"), "note" not in _columns(a, "items")),
        rebuilds=1,
        reordered=("items",),
        data_lost={"items": "note"},
    ),
    "drop_column indexed": Case(
        "op.drop_column('items', 'price')",
        "op.add_column('items', sa.Column('price', sa.Numeric(10, 2)))\n"
        "op.create_index('ix_items_price', 'items', ['price'])",
        lambda b, a: (a["items"]["indexes"] == [] or pytest.fail("index kept"), "price" not in _columns(a, "items")),
        rebuilds=1,
        reordered=("items",),
        data_lost={"items": "price"},
    ),
    "alter_column type of a checked column": Case(
        "op.alter_column('items', 'qty', type_=sa.BigInteger)",
        "op.alter_column('items', 'qty', type_=sa.Integer)",
        lambda b, a: (_same_except(b, a, "items", "columns"), _column(a, "items", "qty")[1] == "BIGINT()"),
        rebuilds=1,
    ),
    "alter_column type with USING": Case(
        "op.alter_column('items', 'created', type_=sa.TIMESTAMP(timezone=True),"
        " postgresql_using='created::TIMESTAMPTZ')",
        "op.alter_column('items', 'created', type_=sa.String,"
        " postgresql_using=\"strftime(created AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%SZ')\")",
        lambda b, a: _column(a, "items", "created")[1] == "TIMESTAMP(timezone=True)" or pytest.fail("type"),
        rebuilds=1,
    ),
    "alter_column type, native": Case(
        "op.alter_column('events', 'payload', type_=sa.Text)\nop.alter_column('events', 'id', type_=sa.BigInteger)",
        "op.alter_column('events', 'id', type_=sa.Integer)",
        lambda b, a: _column(a, "events", "id")[1] == "BIGINT()" or pytest.fail("type"),
        rebuilds=0,
    ),
    "alter_column rename": Case(
        "op.alter_column('items', 'note', new_column_name='remark')",
        "op.alter_column('items', 'remark', new_column_name='note')",
        lambda b, a: (
            _columns(a, "items") == [("remark" if c == "note" else c) for c in _columns(b, "items")]
            or pytest.fail("order")
        ),
        rebuilds=1,
    ),
    "alter_column rename a referenced key": Case(
        "op.alter_column('owners', 'id', new_column_name='owner_no')",
        "op.alter_column('owners', 'owner_no', new_column_name='id')",
        lambda b, a: (("owner_id",), "owners", ("owner_no",)) in a["items"]["foreign_keys"] or pytest.fail("fk"),
        rebuilds=1,
    ),
    "alter_column set not null": Case(
        "op.alter_column('items', 'price', nullable=False)",
        "op.alter_column('items', 'price', nullable=True)",
        lambda b, a: _column(a, "items", "price")[2] is False or pytest.fail("nullable"),
        rebuilds=1,
    ),
    "alter_column drop not null": Case(
        "op.alter_column('items', 'code', nullable=True)",
        "op.alter_column('items', 'code', nullable=False)",
        lambda b, a: _column(a, "items", "code")[2] is True or pytest.fail("nullable"),
        rebuilds=1,
    ),
    "alter_column set and drop default": Case(
        "op.alter_column('items', 'note', server_default='n/a')\nop.alter_column('items', 'qty', server_default=None)",
        "op.alter_column('items', 'note', server_default='none')\n"
        "op.alter_column('items', 'qty', server_default=sa.text('0'))",
        lambda b, a: (
            (_column(a, "items", "note")[3] == "'n/a'", _column(a, "items", "qty")[3] is None) == (True, True)
            or pytest.fail("defaults")
        ),
        rebuilds=0,
    ),
    "rename_table": Case(
        "op.rename_table('items', 'products')",
        "op.rename_table('products', 'items')",
        lambda b, a: (("item_id",), "products", ("id",)) in a["item_tags"]["foreign_keys"] or pytest.fail("fk"),
        rebuilds=1,
    ),
    "create_index and drop_index": Case(
        "op.create_index('ix_items_buyer', 'items', ['buyer_id', 'qty'])\nop.drop_index('ix_items_price', 'items')",
        "op.create_index('ix_items_price', 'items', ['price'])\nop.drop_index('ix_items_buyer', 'items')",
        lambda b, a: a["items"]["indexes"] == [("ix_items_buyer", ("buyer_id", "qty"), False)] or pytest.fail("ix"),
        rebuilds=0,
    ),
    "create_unique_constraint": Case(
        "op.create_unique_constraint('uq_items_note', 'items', ['note'])",
        "op.drop_constraint('items_note_key', 'items', type_='unique')",
        lambda b, a: a["items"]["unique"] == [("code",), ("note",)] or pytest.fail("unique"),
        rebuilds=1,
    ),
    "create_unique_constraint, native": Case(
        "op.create_unique_constraint('uq_events_id', 'events', ['id'])",
        "op.drop_constraint('uq_events_id', 'events', type_='unique')",
        lambda b, a: a["events"]["unique"] == [("id",)] or pytest.fail("unique"),
        rebuilds=0,
    ),
    "create_foreign_key": Case(
        "op.create_foreign_key('fk_items_buyer', 'items', 'owners', ['buyer_id'], ['id'])",
        "op.drop_constraint('items_buyer_id_id_fkey', 'items', type_='foreignkey')",
        lambda b, a: (("buyer_id",), "owners", ("id",)) in a["items"]["foreign_keys"] or pytest.fail("fk"),
        rebuilds=1,
    ),
    "create_check_constraint": Case(
        "op.create_check_constraint('ck_items_price', 'items', 'price >= 0')",
        "op.drop_constraint('items_price_check', 'items', type_='check')",
        lambda b, a: a["items"]["checks"] == ["price >= 0", "qty >= 0"] or pytest.fail("check"),
        rebuilds=1,
    ),
    "create_primary_key": Case(
        "op.create_primary_key('pk_events', 'events', ['id'])",
        "op.drop_constraint('pk_events', 'events', type_='primary')",
        lambda b, a: a["events"]["primary_key"] == ["id"] or pytest.fail("pk"),
        rebuilds=0,
    ),
    "drop_constraint of each kind": Case(
        "op.drop_constraint('items_code_key', 'items', type_='unique')\n"
        "op.drop_constraint('items_qty_check', 'items', type_='check')\n"
        "op.drop_constraint('items_owner_id_id_fkey', 'items', type_='foreignkey')",
        "op.create_foreign_key(None, 'items', 'owners', ['owner_id'], ['id'])\n"
        "op.create_check_constraint(None, 'items', 'qty >= 0')\n"
        "op.create_unique_constraint(None, 'items', ['code'])",
        lambda b, a: (
            (a["items"]["unique"], a["items"]["checks"], a["items"]["foreign_keys"]) == ([], [], [])
            or pytest.fail("constraints")
        ),
        rebuilds=3,
    ),
}


def _count_rebuilds(output: str) -> int:
    return len(re.findall(r"\] rebuild change of ", output))


def _base(project: Project) -> None:
    project.write_revision("20250101000001", None, upgrade=BASE_UPGRADE, message="base")


@pytest.fixture(scope="module")
def base_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The populated tables of BASE_UPGRADE, migrated once for the module."""

    def upgraded(template: Project) -> None:
        _base(template)
        assert template.alembic("upgrade", "head").returncode == 0

    return database_template(tmp_path_factory, upgraded)


@pytest.mark.parametrize("name", list(CASES))
def test_operation_round_trip(project: Project, base_data: Path, name: str) -> None:
    project.log_plans()  # the plans are DEBUG records
    case = CASES[name]
    _base(project)
    use_database(project, base_data)
    schema0, data0 = schema(project.db), data(project.db)

    project.write_revision("20250101000002", "20250101000001", case.upgrade, case.downgrade, message="change")
    up = project.alembic("upgrade", "head")
    assert up.returncode == 0, up.stderr
    assert _count_rebuilds(up.stderr) == case.rebuilds, up.stderr
    schema1, data1 = schema(project.db), data(project.db)
    case.expect(schema0, schema1)
    _assert_rows_kept(data0, data1)

    down = project.alembic("downgrade", "-1")
    assert down.returncode == 0, down.stderr
    _assert_same_schema(schema0, schema(project.db), case.reordered)
    _assert_same_data(data0, data(project.db), case.data_lost)

    again = project.alembic("upgrade", "head")
    assert again.returncode == 0, again.stderr
    assert schema(project.db) == schema1
    _assert_same_data(data1, data(project.db), {})


def _assert_rows_kept(before: dict[str, Any], after: dict[str, Any]) -> None:
    """Every table (under its old or new name) has as many rows as before, with the values of its surviving
    columns unchanged where the change did not convert them."""
    assert sorted(len(r) for r in before.values()) == sorted(len(r) for r in after.values())
    for table, table_rows in before.items():
        if table not in after:
            continue
        kept_columns = {c for c, _ in after[table][0]} if after[table] else set()
        for old, new in zip(table_rows, after[table], strict=True):
            old_values = {c: v for c, v in old if c in kept_columns}
            new_values = {c: v for c, v in new if c in old_values}
            changed = {c for c in old_values if type(old_values[c]) is not type(new_values[c])}
            assert {c: v for c, v in old_values.items() if c not in changed} == {
                c: v for c, v in new_values.items() if c not in changed
            }, table


def _assert_same_schema(before: State, after: State, reordered: tuple[str, ...]) -> None:
    for table in before:
        if table in reordered:
            assert sorted(before[table]["columns"]) == sorted(after[table]["columns"])
            assert {k: v for k, v in before[table].items() if k != "columns"} == {
                k: v for k, v in after[table].items() if k != "columns"
            }
        else:
            assert before[table] == after[table], table
    assert set(before) == set(after)


def _assert_same_data(before: dict[str, Any], after: dict[str, Any], lost: dict[str, str]) -> None:
    assert set(before) == set(after)
    for table in before:
        if table in lost:
            drop = lost[table]
            assert [tuple(p for p in r if p[0] != drop) for r in before[table]] == sorted(
                (tuple(p for p in r if p[0] != drop) for r in after[table]), key=repr
            )
        else:
            assert before[table] == after[table], table


def test_data_is_exactly_kept_through_a_rebuild(project: Project) -> None:
    """Spot check on values, beside the generic comparison: a type change keeps every value."""
    project.write_revision("20250101000001", None, upgrade=BASE_UPGRADE, message="base")
    project.write_revision(
        "20250101000002", "20250101000001", "op.alter_column('items', 'qty', type_=sa.BigInteger)", message="big"
    )
    assert project.alembic("upgrade", "head").returncode == 0
    assert rows(project.db, "items", "id, qty") == sorted(((i, i) for i in range(1, 51)), key=repr)
    assert rows(project.db, "tag_votes", "count(*), sum(score)") == [(150, sum(range(1, 151)))]
