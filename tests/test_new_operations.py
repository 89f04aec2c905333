"""create_table/drop_table with ENUM types and sequences, bulk_insert, and the operations this layer adds."""

from __future__ import annotations

from pathlib import Path

from conftest import ANSI_ESCAPE, BIN, Project, on_terminal
from shapes import rows


def test_table_with_enum_and_sequence_comes_and_goes_with_its_types(project: Project) -> None:
    project.write_revision(
        "20250101000001",
        None,
        upgrade="""
            op.create_table(
                'moods',
                sa.Column('id', sa.Integer, primary_key=True),
                sa.Column('mood', sa.Enum('calm', 'busy', name='mood')),
                sa.Column('ticket', sa.BigInteger, sa.Sequence('ticket_no', start=500)),
            )
            op.bulk_insert(
                sa.table('moods', sa.column('mood', sa.String)),
                [{'mood': 'calm'}, {'mood': 'busy'}, {'mood': 'calm'}],
            )
        """,
        downgrade="op.drop_table('moods')\nop.drop_sequence('ticket_no')",
        message="moods",
    )
    assert project.alembic("upgrade", "head").returncode == 0
    assert rows(project.db, "moods") == [(1, "calm", 500), (2, "busy", 501), (3, "calm", 502)]
    assert project.rows("SELECT type_name FROM duckdb_types() WHERE type_name = 'mood'") == [("mood",)]
    assert project.rows("SELECT sequence_name FROM duckdb_sequences() ORDER BY 1") == [
        ("migration_history_id_seq",),
        ("moods_id_seq",),
        ("ticket_no",),
    ]

    result = project.alembic("downgrade", "base")
    assert result.returncode == 0, result.stderr
    assert project.rows("SELECT count(*) FROM duckdb_types() WHERE type_name = 'mood'") == [(0,)]
    assert project.rows("SELECT sequence_name FROM duckdb_sequences()") == [("migration_history_id_seq",)]
    assert project.alembic("upgrade", "head").returncode == 0
    assert rows(project.db, "moods", "count(*)") == [(3,)]


def test_enum_type_shared_by_another_table_stays(project: Project) -> None:
    project.write_revision(
        "20250101000001",
        None,
        upgrade="""
            op.execute("CREATE TYPE level AS ENUM ('low', 'high')")
            op.create_table('a', sa.Column('l', sa.Enum('low', 'high', name='level', create_type=False)))
            op.create_table('b', sa.Column('l', sa.Enum('low', 'high', name='level', create_type=False)))
            op.drop_table('a')
        """,
    )
    result = project.alembic("upgrade", "head")
    assert result.returncode == 0, result.stderr
    assert project.rows("SELECT type_name FROM duckdb_types() WHERE type_name = 'level'") == [("level",)]


def test_sequence_operations(project: Project) -> None:
    project.write_revision(
        "20250101000001",
        None,
        upgrade="""
            op.create_sequence('invoice_no', start=1000, increment=10)
            op.create_table('invoices', sa.Column('no', sa.Integer, server_default=sa.text("nextval('invoice_no')")))
            op.execute("INSERT INTO invoices DEFAULT VALUES")
            op.execute("INSERT INTO invoices DEFAULT VALUES")
        """,
        downgrade="op.drop_table('invoices')\nop.drop_sequence('invoice_no')",
        message="invoices",
    )
    assert project.alembic("upgrade", "head").returncode == 0
    assert rows(project.db, "invoices") == [(1000,), (1010,)]
    assert project.alembic("downgrade", "base").returncode == 0
    assert project.rows("SELECT count(*) FROM duckdb_sequences() WHERE sequence_name = 'invoice_no'") == [(0,)]


def test_execute_in_chunks_updates_every_row_in_key_ranges(project: Project) -> None:
    project.write_revision(
        "20250101000001",
        None,
        upgrade="""
            op.execute("CREATE TABLE events (id VARCHAR PRIMARY KEY, n INTEGER, doubled INTEGER)")
            op.execute("INSERT INTO events SELECT 'e' || lpad(i::VARCHAR, 5, '0'), i, NULL FROM range(1, 1001) t(i)")
            op.execute_in_chunks("UPDATE events SET doubled = n * 2 WHERE {chunk}", table='events', key='id',
                                 chunk_rows=300)
            op.execute("CREATE TABLE copies AS SELECT id, n FROM events WHERE false")
            op.execute_in_chunks("INSERT INTO copies SELECT id, n FROM events WHERE n % 2 = 0 AND {chunk}",
                                 table='events', key='id', chunk_rows=128)
        """,
    )
    result = project.alembic("upgrade", "head")
    assert result.returncode == 0, result.stderr
    assert rows(project.db, "events", "count(*), count(doubled), sum(doubled)") == [(1000, 1000, 2 * 500500)]
    assert rows(project.db, "copies", "count(*), sum(n)") == [(500, sum(range(2, 1001, 2)))]


def test_duckdb_settings_for_a_run(project: Project, tmp_path: Path) -> None:
    spill = tmp_path / "spill"
    project.write_revision(
        "20250101000001",
        None,
        upgrade="""
            op.execute("CREATE TABLE settings AS SELECT current_setting('memory_limit') AS m,"
                       " current_setting('threads') AS t, current_setting('temp_directory') AS d")
        """,
    )
    result = project.alembic(
        "-x", "memory_limit=123MB", "-x", "threads=1", "-x", f"temp_directory={spill}", "upgrade", "head"
    )
    assert result.returncode == 0, result.stderr
    [(memory, threads, directory)] = rows(project.db, "settings")
    assert (memory, threads) == ("117.3 MiB", 1)  # DuckDB reports 123 MB in MiB
    assert directory == str(spill)


def test_chunk_progress_shows_on_a_terminal(project: Project) -> None:

    project.write_revision(
        "20250101000001",
        None,
        upgrade="""
            op.execute("CREATE TABLE events AS SELECT range AS id, 0 AS n FROM range(5000)")
            op.execute_in_chunks("UPDATE events SET n = 1 WHERE {chunk}", table='events', key='id', chunk_rows=500)
        """,
    )
    code, output = on_terminal(
        [str(BIN / "alembic"), "-x", f"db={project.db}", "upgrade", "head"], project.root, project.env()
    )
    assert code == 0, output
    text = ANSI_ESCAPE.sub("", output)
    assert "events chunks" in text and "10/10" in text
    assert rows(project.db, "events", "sum(n)") == [(5000,)]
