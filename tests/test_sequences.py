"""Autoincrement keys through Alembic operations: the sequence comes and goes with its table."""

from __future__ import annotations

from conftest import Project


def test_create_table_makes_the_sequence_and_drop_table_removes_it(project: Project) -> None:
    project.write_revision(
        "20250101000001",
        None,
        upgrade="""
            op.create_table('jobs', sa.Column('id', sa.Integer, primary_key=True), sa.Column('name', sa.String))
            op.create_table('tickets', sa.Column('id', sa.BigInteger, sa.Sequence('ticket_no', start=10),
                                                 primary_key=True))
            op.execute("INSERT INTO jobs (name) VALUES ('a'), ('b')")
            op.execute("INSERT INTO tickets DEFAULT VALUES")
        """,
        downgrade="op.drop_table('tickets')\nop.drop_table('jobs')",
        message="jobs",
    )
    assert project.alembic("upgrade", "head").returncode == 0
    assert project.rows("SELECT id, name FROM jobs ORDER BY id") == [(1, "a"), (2, "b")]
    assert project.rows("SELECT id FROM tickets") == [(10,)]
    assert project.rows("SELECT sequence_name FROM duckdb_sequences() ORDER BY 1") == [
        ("jobs_id_seq",),
        ("migration_history_id_seq",),
        ("ticket_no",),
    ]
    ddl = project.rows("SELECT sql FROM duckdb_tables() WHERE table_name = 'jobs'")[0][0]
    assert "nextval('jobs_id_seq')" in ddl and "SERIAL" not in ddl.upper()

    result = project.alembic("downgrade", "base")
    assert result.returncode == 0, result.stderr
    # the table's own sequence goes with it; a sequence named by the revision stays for the revision to drop
    assert project.rows("SELECT sequence_name FROM duckdb_sequences() ORDER BY 1") == [
        ("migration_history_id_seq",),
        ("ticket_no",),
    ]
    # upgrading again recreates the table's sequence from its start
    assert project.alembic("upgrade", "head").returncode == 0
    assert project.rows("SELECT id FROM jobs ORDER BY id") == [(1,), (2,)]
