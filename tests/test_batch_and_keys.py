"""Batch blocks of every ``recreate`` value, named ENUM columns, and key type changes that referencing columns
must follow: each run by the real ``alembic`` command on a real DuckDB file, up, down and up again."""

from __future__ import annotations

import re
import subprocess
from typing import Any

import duckdb
import pytest
from conftest import Project
from shapes import data

PARENT_AND_CHILD = """
op.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY, name VARCHAR NOT NULL, score INTEGER, legacy VARCHAR)")
op.execute("CREATE INDEX ix_parent_name ON parent (name)")
op.execute("CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parent(id), note VARCHAR)")
op.execute("INSERT INTO parent SELECT i, 'parent ' || i, i * 10, NULL FROM range(1, 21) t(i)")
op.execute("INSERT INTO child SELECT i, 1 + i % 20, 'note ' || i FROM range(1, 61) t(i)")
"""


def _column_types(project: Project, table: str) -> dict[str, str]:
    rows = project.rows(f"SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = '{table}'")
    return {str(name): str(type_) for name, type_ in rows}


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    """The run's stderr (where the plans are logged), once it succeeded."""
    assert result.returncode == 0, result.stderr
    return result.stderr


def _without(rows: list[tuple[Any, ...]], column: str) -> list[tuple[Any, ...]]:
    """Rows as ``data`` gives them (sorted (name, value) pairs) without one column."""
    return [tuple(pair for pair in row if pair[0] != column) for row in rows]


def _batch_revisions(project: Project, recreate: str) -> None:
    project.write_revision("20250101000001", None, PARENT_AND_CHILD, "op.drop_table('child')\nop.drop_table('parent')")
    project.write_revision(
        "20250101000002",
        "20250101000001",
        upgrade=f"""
            with op.batch_alter_table('parent', recreate={recreate!r}) as batch:
                batch.alter_column('score', type_=sa.BigInteger)
                batch.drop_column('legacy')
        """,
        downgrade=f"""
            with op.batch_alter_table('parent', recreate={recreate!r}) as batch:
                batch.add_column(sa.Column('legacy', sa.String))
                batch.alter_column('score', type_=sa.Integer)
        """,
        message="batch",
    )


@pytest.mark.parametrize("recreate", ["auto", "always", "never"])
def test_a_batch_block_of_any_recreate_is_one_plan_that_keeps_every_row(project: Project, recreate: str) -> None:
    """A type change and a dropped column on a table with an index and a referencing table: one rebuild, every
    row of both tables kept, on a new file (one run creates and changes) and back down and up again."""
    project.log_plans()
    _batch_revisions(project, recreate)
    _ok(project.alembic("upgrade", "20250101000001"))
    original = data(project.db)
    assert len(original["parent"]) == 20 and len(original["child"]) == 60
    project.db.unlink()  # a new file: the first run creates the tables and changes them in one go

    up = _ok(project.alembic("upgrade", "head"))
    assert len(re.findall(r"rebuild change of parent", up)) == 1
    assert _column_types(project, "parent") == {"id": "INTEGER", "name": "VARCHAR", "score": "BIGINT"}
    changed = data(project.db)
    assert changed["parent"] == _without(original["parent"], "legacy")
    assert changed["child"] == original["child"]
    assert project.rows("SELECT index_name FROM duckdb_indexes()") == [("ix_parent_name",)]
    assert project.rows("SELECT table_name FROM duckdb_tables() WHERE table_name LIKE '%tmp%'") == []

    down = _ok(project.alembic("downgrade", "-1"))
    assert len(re.findall(r"rebuild change of parent", down)) == 1
    assert _column_types(project, "parent")["score"] == "INTEGER"
    assert data(project.db) == original

    _ok(project.alembic("upgrade", "head"))
    assert data(project.db) == changed
    # the foreign key still holds after the rebuilds
    with project.connect() as connection, pytest.raises(duckdb.ConstraintException, match="foreign key"):
        connection.execute("INSERT INTO child VALUES (1000, 999, 'orphan')")


def test_a_batch_block_on_an_existing_file_keeps_every_row(project: Project) -> None:
    _batch_revisions(project, "always")
    _ok(project.alembic("upgrade", "20250101000001"))
    original = data(project.db)
    _ok(project.alembic("upgrade", "head"))
    assert data(project.db)["parent"] == _without(original["parent"], "legacy")
    assert data(project.db)["child"] == original["child"]
    _ok(project.alembic("downgrade", "-1"))
    assert data(project.db) == original


def test_batch_column_placement_is_refused_by_name(project: Project) -> None:
    _batch_revisions(project, "always")
    _ok(project.alembic("upgrade", "head"))
    project.write_revision(
        "20250101000003",
        "20250101000002",
        upgrade="""
            with op.batch_alter_table('parent', recreate='always') as batch:
                batch.add_column(sa.Column('rank', sa.Integer), insert_before='name')
        """,
        message="placed",
    )
    refused = project.alembic("upgrade", "head")
    assert refused.returncode != 0
    assert "cannot place column rank with insert_before/insert_after" in refused.stderr
    assert "rank" not in _column_types(project, "parent")


ENUM_REVISIONS = [
    (
        "op.create_table('t', sa.Column('id', sa.Integer, primary_key=True))\n"
        "op.create_table('u', sa.Column('id', sa.Integer, primary_key=True))\n"
        "op.execute('INSERT INTO t VALUES (1), (2)')\nop.execute('INSERT INTO u VALUES (1)')",
        "op.drop_table('u')\nop.drop_table('t')",
    ),
    ("op.add_column('t', sa.Column('mood', sa.Enum('a', 'b', name='mood2')))", "op.drop_column('t', 'mood')"),
    ("op.add_column('t', sa.Column('again', sa.Enum('a', 'b', name='mood2')))", "op.drop_column('t', 'again')"),
    ("op.add_column('u', sa.Column('other', sa.Enum('a', 'b', name='mood2')))", "op.drop_column('u', 'other')"),
]


def _mood2(project: Project) -> list[tuple[object, ...]]:
    return project.rows("SELECT type_name FROM duckdb_types() WHERE type_name = 'mood2'")


def test_add_column_creates_a_named_enum_and_the_last_drop_removes_it(project: Project) -> None:
    parent = None
    for number, (upgrade, downgrade) in enumerate(ENUM_REVISIONS, start=1):
        revision = f"2025010100000{number}"
        project.write_revision(revision, parent, upgrade, downgrade, message=f"enum {number}")
        parent = revision
    script = project.alembic("upgrade", "head", "--sql", pass_db=False)
    _ok(script)
    assert len(re.findall(r"CREATE TYPE mood2 AS ENUM \('a', 'b'\)", script.stdout)) == 1

    _ok(project.alembic("upgrade", "head"))
    assert _mood2(project) == [("mood2",)]
    assert project.rows("SELECT data_type FROM duckdb_columns() WHERE column_name = 'mood'") == [("ENUM('a', 'b')",)]
    with project.connect() as connection:
        connection.execute("UPDATE t SET mood = 'b' WHERE id = 2")
        with pytest.raises(duckdb.ConversionException):  # the column takes only the type's labels
            connection.execute("UPDATE t SET mood = 'c' WHERE id = 1")

    _ok(project.alembic("downgrade", "-1"))  # u.other goes; t still uses the type twice
    assert _mood2(project) == [("mood2",)]
    _ok(project.alembic("downgrade", "-1"))  # t.again goes; t.mood still uses it
    assert _mood2(project) == [("mood2",)]
    _ok(project.alembic("downgrade", "-1"))  # the last column of the type goes, and the type with it
    assert _mood2(project) == []
    assert project.rows("SELECT count(*) FROM t") == [(2,)]

    _ok(project.alembic("upgrade", "head"))
    assert _mood2(project) == [("mood2",)]
    assert project.rows("SELECT count(*) FROM duckdb_columns() WHERE data_type = 'ENUM(''a'', ''b'')'") == [(3,)]


KEYS = """
op.execute("CREATE TABLE owner (id INTEGER PRIMARY KEY, name VARCHAR)")
op.execute("CREATE TABLE item (id INTEGER PRIMARY KEY, owner_id INTEGER REFERENCES owner(id), label VARCHAR)")
op.execute("CREATE INDEX ix_item_label ON item (label)")
op.execute("CREATE TABLE tag (item_id INTEGER REFERENCES item(id), word VARCHAR)")
op.execute("INSERT INTO owner SELECT i, 'owner ' || i FROM range(1, 6) t(i)")
op.execute("INSERT INTO item SELECT i, CASE WHEN i % 7 = 0 THEN NULL ELSE 1 + i % 5 END, 'item ' || i "
           "FROM range(1, 41) t(i)")
op.execute("INSERT INTO tag SELECT 1 + i % 40, 'word ' || i FROM range(1, 81) t(i)")
"""


def test_a_key_type_change_is_carried_to_the_columns_that_reference_it(project: Project) -> None:
    project.log_plans()
    project.write_revision("20250101000001", None, KEYS, "for t in ('tag', 'item', 'owner'):\n    op.drop_table(t)")
    project.write_revision(
        "20250101000002",
        "20250101000001",
        upgrade="op.alter_column('owner', 'id', type_=sa.BigInteger)",
        downgrade="op.alter_column('owner', 'id', type_=sa.Integer)",
        message="wider key",
    )
    _ok(project.alembic("upgrade", "20250101000001"))
    original = data(project.db)

    up = _ok(project.alembic("upgrade", "head"))
    assert "carries: item.owner_id becomes BIGINT, the type of owner.id" in up
    assert _column_types(project, "owner")["id"] == "BIGINT"
    assert _column_types(project, "item") == {"id": "INTEGER", "owner_id": "BIGINT", "label": "VARCHAR"}
    assert _column_types(project, "tag")["item_id"] == "INTEGER"
    assert data(project.db) == original
    assert project.rows("SELECT index_name FROM duckdb_indexes()") == [("ix_item_label",)]

    down = _ok(project.alembic("downgrade", "-1"))
    assert "carries: item.owner_id becomes INTEGER, the type of owner.id" in down
    assert _column_types(project, "item")["owner_id"] == "INTEGER"
    assert _column_types(project, "owner")["id"] == "INTEGER"
    assert data(project.db) == original

    _ok(project.alembic("upgrade", "head"))
    assert _column_types(project, "item")["owner_id"] == "BIGINT"
    assert data(project.db) == original
    with project.connect() as connection, pytest.raises(duckdb.ConstraintException, match="foreign key"):
        connection.execute("INSERT INTO item VALUES (100, 99, 'orphan')")
