"""Rebuilds beyond single operations: batches, quoting, failures, refusals, row-count checks, --sql."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import sqlalchemy as sa
from conftest import Project, snapshot
from shapes import BASE_UPGRADE, data, rows, schema

from ccdash_alembic.ddl import rebuild
from ccdash_alembic.errors import ExitCode


def _base(project: Project) -> None:
    project.write_revision("20250101000001", None, upgrade=BASE_UPGRADE, message="base")
    assert project.alembic("upgrade", "head").returncode == 0


def _error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, stderr
    return lines[0]


def test_batch_alter_table_is_one_rebuild(project: Project) -> None:
    project.log_plans()  # the plans are DEBUG records
    _base(project)
    project.write_revision(
        "20250101000002",
        "20250101000001",
        upgrade="""
            with op.batch_alter_table('items') as batch:
                batch.add_column(sa.Column('state', sa.String, nullable=False, server_default='new'))
                batch.alter_column('qty', type_=sa.BigInteger)
                batch.drop_column('note')
                batch.alter_column('created', new_column_name='created_at')
                batch.create_check_constraint('ck_price', 'price >= 0')
                batch.create_index('ix_items_state', ['state'])
        """,
        downgrade="""
            with op.batch_alter_table('items') as batch:
                batch.drop_index('ix_items_state')
                batch.drop_constraint('items_price_check', type_='check')
                batch.alter_column('created_at', new_column_name='created')
                batch.add_column(sa.Column('note', sa.String))
                batch.alter_column('qty', type_=sa.Integer)
                batch.drop_column('state')
        """,
        message="batch",
    )
    before = data(project.db)
    result = project.alembic("upgrade", "head")
    assert result.returncode == 0, result.stderr
    assert len(re.findall(r"rebuild change of items", result.stderr)) == 1
    after = schema(project.db)["items"]
    assert [c[0] for c in after["columns"]] == [
        "id",
        "owner_id",
        "code",
        "qty",
        "price",
        "created_at",
        "buyer_id",
        "state",
    ]
    assert after["checks"] == ["price >= 0", "qty >= 0"]
    assert ("ix_items_state", ("state",), False) in after["indexes"]
    assert rows(project.db, "items", "count(*), count(DISTINCT state), min(state)") == [(50, 1, "new")]
    assert len(data(project.db)["tag_votes"]) == len(before["tag_votes"])

    down = project.alembic("downgrade", "-1")
    assert down.returncode == 0, down.stderr
    assert len(re.findall(r"rebuild change of items", down.stderr)) == 1


def test_native_batch_needs_no_rebuild(project: Project) -> None:
    project.log_plans()  # the plans are DEBUG records
    _base(project)
    project.write_revision(
        "20250101000002",
        "20250101000001",
        upgrade="""
            with op.batch_alter_table('events') as batch:
                batch.add_column(sa.Column('kind', sa.String))
                batch.alter_column('payload', new_column_name='body')
                batch.alter_column('id', server_default=sa.text('0'))
        """,
        message="native batch",
    )
    result = project.alembic("upgrade", "head")
    assert result.returncode == 0, result.stderr
    assert "rebuild change" not in result.stderr and "native change of events" in result.stderr
    assert [c[0] for c in schema(project.db)["events"]["columns"]] == ["id", "body", "kind"]


def test_identifiers_that_need_quoting(project: Project) -> None:
    project.write_revision(
        "20250101000001",
        None,
        upgrade='''
            op.execute("""CREATE TABLE "Order Lines" ("Id" INTEGER PRIMARY KEY, "select" VARCHAR UNIQUE,
                "Mixed Case" INTEGER CHECK ("Mixed Case" > 0), "from" VARCHAR)""")
            op.execute('CREATE INDEX "Ix Lines" ON "Order Lines" ("Mixed Case", "from")')
            op.execute('CREATE TABLE "Line Notes" ("Line" INTEGER REFERENCES "Order Lines"("Id"), "Text" VARCHAR)')
            op.execute("""INSERT INTO "Order Lines" SELECT i, 's' || i, i, 'f' || i FROM range(1, 31) t(i)""")
            op.execute("""INSERT INTO "Line Notes" SELECT 1 + i % 30, 'note ' || i FROM range(1, 61) t(i)""")
        ''',
        message="quoted",
    )
    project.write_revision(
        "20250101000002",
        "20250101000001",
        upgrade="""
            op.alter_column('Order Lines', 'Mixed Case', type_=sa.BigInteger)
            op.alter_column('Order Lines', 'from', new_column_name='Where To')
            op.alter_column('Order Lines', 'Id', new_column_name='Line Id')
            op.create_check_constraint(None, 'Order Lines', '"select" <> \\'\\'')
        """,
        downgrade="""
            op.drop_constraint('order lines_select_check', 'Order Lines', type_='check')
            op.alter_column('Order Lines', 'Line Id', new_column_name='Id')
            op.alter_column('Order Lines', 'Where To', new_column_name='from')
            op.alter_column('Order Lines', 'Mixed Case', type_=sa.Integer)
        """,
        message="quoted change",
    )
    assert project.alembic("upgrade", "20250101000001").returncode == 0
    schema0, data0 = schema(project.db), data(project.db)
    up = project.alembic("upgrade", "head")
    assert up.returncode == 0, up.stderr
    lines = schema(project.db)["Order Lines"]
    assert [c[0] for c in lines["columns"]] == ["Line Id", "select", "Mixed Case", "Where To"]
    assert lines["indexes"] == [("Ix Lines", ("Mixed Case", "Where To"), False)]
    assert sorted(lines["checks"]) == sorted(['"Mixed Case" > 0', "\"select\" != ''"])
    assert schema(project.db)["Line Notes"]["foreign_keys"] == [(("Line",), "Order Lines", ("Line Id",))]
    down = project.alembic("downgrade", "-1")
    assert down.returncode == 0, down.stderr
    assert schema(project.db) == schema0
    assert data(project.db) == data0


def test_revision_failing_after_a_rebuild_rolls_everything_back(project: Project) -> None:
    _base(project)
    before = snapshot(project.db)
    project.write_revision(
        "20250101000002",
        "20250101000001",
        upgrade="""
            op.alter_column('items', 'qty', type_=sa.BigInteger)
            op.rename_table('owners', 'people')
            op.execute("DELETE FROM tag_votes")
            raise RuntimeError('late failure')
        """,
        message="fails late",
    )
    result = project.alembic("upgrade", "head")
    assert result.returncode == ExitCode.MIGRATION_FAILED
    assert "late failure" in _error_line(result.stderr)
    after = snapshot(project.db)
    for state in (before, after):
        state.pop("rows:migration_history")
        state["sequences"] = [s for s in state["sequences"] if s[0] != "migration_history_id_seq"]
    assert after == before


def test_dropping_a_referenced_table_names_the_referencing_ones(project: Project) -> None:
    _base(project)
    project.write_revision("20250101000002", "20250101000001", upgrade="op.drop_table('items')", message="drop")
    before = snapshot(project.db)
    result = project.alembic("upgrade", "head")
    assert result.returncode == ExitCode.MIGRATION_FAILED
    line = _error_line(result.stderr)
    assert "cannot drop table items: item_tags reference it" in line
    after = snapshot(project.db)
    after.pop("rows:migration_history"), before.pop("rows:migration_history")
    assert after["rows:items"] == before["rows:items"]


def test_failed_cast_names_the_rows_and_changes_nothing(project: Project) -> None:
    _base(project)
    with project.connect() as connection:
        connection.execute("UPDATE items SET created = 'not a time' WHERE id IN (7, 19)")
        connection.execute("UPDATE items SET created = '2025-13-45T99:00:00Z' WHERE id = 23")
    project.write_revision(
        "20250101000002",
        "20250101000001",
        upgrade="op.alter_column('items', 'created', type_=sa.TIMESTAMP(timezone=True))",
        message="to timestamptz",
    )
    before = snapshot(project.db)
    result = project.alembic("upgrade", "head")
    assert result.returncode == ExitCode.MIGRATION_FAILED
    line = _error_line(result.stderr)
    assert "cannot change items.created: 3 rows do not convert to TIMESTAMP WITH TIME ZONE (id 7, 19, 23)" in line
    after = snapshot(project.db)
    assert {k: v for k, v in after.items() if "migration_history" not in k and k != "sequences"} == {
        k: v for k, v in before.items() if "migration_history" not in k and k != "sequences"
    }


def test_not_null_on_null_rows_names_them(project: Project) -> None:
    _base(project)
    project.write_revision(
        "20250101000002", "20250101000001", upgrade="op.alter_column('items', 'buyer_id', nullable=False)"
    )
    result = project.alembic("upgrade", "head")
    assert result.returncode == ExitCode.MIGRATION_FAILED
    assert "cannot change items.buyer_id: 50 rows are NULL (id 1, 2, 3, 4, 5)" in _error_line(result.stderr)


def test_dropping_a_referenced_column_is_refused(project: Project) -> None:
    _base(project)
    project.write_revision("20250101000002", "20250101000001", upgrade="op.drop_column('owners', 'id')")
    result = project.alembic("upgrade", "head")
    assert result.returncode == ExitCode.MIGRATION_FAILED
    assert "column owners.id is referenced by a foreign key of items (owner_id)" in _error_line(result.stderr)


def test_drop_constraint_by_generated_name_or_sole_kind(project: Project) -> None:
    _base(project)
    project.write_revision(
        "20250101000002",
        "20250101000001",
        upgrade="""
            op.create_foreign_key('fk_buyer', 'items', 'owners', ['buyer_id'], ['id'])
            op.drop_constraint('fk_owner', 'items', type_='foreignkey')
        """,
        message="ambiguous",
    )
    result = project.alembic("upgrade", "head")
    assert result.returncode == ExitCode.MIGRATION_FAILED
    line = _error_line(result.stderr)
    assert "no foreign key that matches 'fk_owner'" in line
    # each by the name a drop finds it by: the one it was created with where the layer kept it, else DuckDB's
    assert "items_owner_id_id_fkey (foreign key on owner_id); fk_buyer (foreign key on buyer_id)" in line

    (project.versions / "20250101000002_ambiguous.py").unlink()
    project.write_revision(
        "20250101000002",
        "20250101000001",
        upgrade="""
            op.drop_constraint('whatever I called it', 'items', type_='unique')
            op.drop_constraint('ITEMS_QTY_CHECK', 'items')
        """,
        message="resolved",
    )
    result = project.alembic("upgrade", "head")
    assert result.returncode == 0, result.stderr
    assert schema(project.db)["items"]["unique"] == [] and schema(project.db)["items"]["checks"] == []


def test_plan_prints_and_sql_mode_writes_it(project: Project, tmp_path: Path) -> None:
    _base(project)
    project.write_revision(
        "20250101000002", "20250101000001", upgrade="op.alter_column('items', 'qty', type_=sa.BigInteger)"
    )
    script = project.alembic("upgrade", "20250101000001:head", "--sql")
    assert script.returncode == 0, script.stderr
    assert 'CREATE TEMP TABLE "_ccdash_keep_items"' in script.stdout  # items has a foreign key: no rename
    assert 'CREATE TABLE "items"' in script.stdout
    assert 'CREATE TEMP TABLE "_ccdash_keep_item_tags"' in script.stdout
    assert "row count of items changed" in script.stdout

    copy = tmp_path / "copy.db"
    copy.write_bytes(project.db.read_bytes())
    connection = duckdb.connect(str(copy))
    connection.execute(script.stdout)
    assert connection.execute(
        "SELECT data_type FROM duckdb_columns() WHERE table_name='items' AND column_name='qty'"
    ).fetchall() == [("BIGINT",)]
    assert connection.execute("SELECT count(*) FROM tag_votes").fetchall() == [(150,)]
    connection.close()

    with sa.create_engine(f"duckdb:///{project.db}", poolclass=sa.NullPool).connect() as connection:
        text = str(rebuild.plan(connection, "items", [rebuild.AlterColumn("qty", type="BIGINT")]))
    assert text.startswith("rebuild change of items (DuckDB cannot change the type of a column of a table with")
    assert "rebuilds: items, item_tags, tag_votes" in text


def test_self_referencing_table_is_refused_clearly(project: Project) -> None:
    project.write_revision(
        "20250101000001",
        None,
        upgrade="""
            op.execute("CREATE TABLE nodes (id INTEGER PRIMARY KEY, parent INTEGER REFERENCES nodes(id))")
            op.alter_column('nodes', 'parent', type_=sa.BigInteger)
        """,
    )
    result = project.alembic("upgrade", "head")
    assert result.returncode == ExitCode.MIGRATION_FAILED
    assert "table nodes references itself" in _error_line(result.stderr)


def test_parents_of_a_rebuilt_table_stay_usable(project: Project) -> None:
    """DuckDB loses track of a child renamed after creation (its parent then fails on DELETE and cannot be
    dropped); rebuilt tables with foreign keys are therefore never renamed."""
    _base(project)
    project.write_revision(
        "20250101000002",
        "20250101000001",
        upgrade="""
            op.alter_column('items', 'qty', type_=sa.BigInteger)
            op.alter_column('item_tags', 'tag', new_column_name='label')
            op.rename_table('tag_votes', 'votes')
        """,
        message="rebuild children",
    )
    project.write_revision(
        "20250101000003",
        "20250101000002",
        upgrade="""
            op.execute("INSERT INTO owners VALUES (99, 'spare')")
            op.execute("DELETE FROM owners WHERE id = 99")
            op.execute("DELETE FROM item_tags WHERE id NOT IN (SELECT tag_id FROM votes)")
            op.alter_column('owners', 'name', type_=sa.Text)
            op.rename_table('owners', 'people')
        """,
        message="use the parents",
    )
    result = project.alembic("upgrade", "head")
    assert result.returncode == 0, result.stderr
    assert schema(project.db)["items"]["foreign_keys"] == [(("owner_id",), "people", ("id",))]
    assert rows(project.db, "people", "count(*)") == [(3,)]
    assert project.alembic("downgrade", "base").returncode == 0


def test_sequences_and_generated_columns_survive_a_rebuild(project: Project) -> None:
    project.log_plans()  # the plans are DEBUG records
    project.write_revision(
        "20250101000001",
        None,
        upgrade="""
            op.create_table(
                'jobs',
                sa.Column('id', sa.Integer, primary_key=True),
                sa.Column('hours', sa.Integer, nullable=False, server_default=sa.text('1')),
                sa.Column('minutes', sa.Integer, sa.Computed('hours * 60')),
                sa.Column('title', sa.String, comment='what to do'),
            )
            op.create_index('ix_jobs_title', 'jobs', ['title'])
            op.execute("INSERT INTO jobs (hours, title) VALUES (2, 'a'), (3, 'b')")
        """,
    )
    project.write_revision(
        "20250101000002",
        "20250101000001",
        upgrade="""
            op.alter_column('jobs', 'title', type_=sa.Text, nullable=False)
            op.execute("INSERT INTO jobs (title) VALUES ('c')")
        """,
    )
    assert project.alembic("upgrade", "20250101000001").returncode == 0
    before = schema(project.db)["jobs"]
    result = project.alembic("upgrade", "head")
    assert result.returncode == 0, result.stderr
    assert "rebuild change of jobs" in result.stderr
    after = schema(project.db)["jobs"]
    assert [c for c in after["columns"] if c[0] != "title"] == [c for c in before["columns"] if c[0] != "title"]
    assert after["indexes"] == before["indexes"]
    assert rows(project.db, "jobs", "id, hours, minutes, title") == [
        (1, 2, 120, "a"),
        (2, 3, 180, "b"),
        (3, 1, 60, "c"),
    ]
    assert project.rows("SELECT comment FROM duckdb_columns() WHERE column_name = 'title'") == [("what to do",)]
