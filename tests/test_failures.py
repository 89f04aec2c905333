"""A revision that raises midway, the command run when one fails, and applied revision files that changed."""

from __future__ import annotations

from pathlib import Path

from conftest import Project, snapshot

from ccdash_alembic.errors import ExitCode


def _base(project: Project) -> None:
    project.write_revision(
        "20250101000001",
        None,
        upgrade="""
            op.create_table('items', sa.Column('id', sa.Integer, primary_key=True), sa.Column('name', sa.String))
            op.create_index('ix_items_name', 'items', ['name'])
            op.execute("INSERT INTO items VALUES (1, 'a'), (2, 'b'), (3, 'c')")
        """,
        downgrade="op.drop_table('items')",
        message="items",
    )


def test_failing_revision_leaves_database_as_before_it_and_is_recorded(project: Project) -> None:
    _base(project)
    assert project.alembic("upgrade", "head").returncode == 0
    before = snapshot(project.db)

    project.write_revision(
        "20250101000002",
        "20250101000001",
        upgrade="""
            op.create_table('other', sa.Column('id', sa.Integer, primary_key=True))
            op.add_column('items', sa.Column('price', sa.Integer, server_default='5'))
            op.execute("UPDATE items SET name = upper(name)")
            op.execute("DELETE FROM items WHERE id = 3")
            op.execute("INSERT INTO other VALUES (1)")
            op.execute("SELECT * FROM no_such_table")
        """,
        message="breaks midway",
    )
    project.write_revision("20250101000003", "20250101000002", message="never reached")
    result = project.alembic("upgrade", "head")

    assert result.returncode == ExitCode.MIGRATION_FAILED
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1
    assert "20250101000002" in error_lines[0] and "breaks midway" in error_lines[0]
    assert "no_such_table" in error_lines[0]
    assert "Traceback" not in result.stderr

    after = snapshot(project.db)
    history_rows = after.pop("rows:migration_history")
    before.pop("rows:migration_history")
    for state in (before, after):  # the failure row itself advances the history's id sequence
        state["sequences"] = [s for s in state["sequences"] if s[0] != "migration_history_id_seq"]
    # schema_version, alembic_version, items (schema, index, rows) and the absence of 'other': all as before
    assert after == before
    failed = [r for r in history_rows if r[1] == "20250101000002"]
    assert len(failed) == 1
    assert failed[0][9] == "failed" and failed[0][3] == "up"
    assert "no_such_table" in failed[0][10]
    assert project.rows("SELECT version_num FROM alembic_version") == [("20250101000001",)]


def test_earlier_revisions_of_the_same_run_stay_applied(project: Project) -> None:
    _base(project)
    project.write_revision("20250101000002", "20250101000001", upgrade="raise ValueError('no')", message="bad")
    result = project.alembic("upgrade", "head")
    assert result.returncode == ExitCode.MIGRATION_FAILED
    assert project.rows("SELECT version_num FROM alembic_version") == [("20250101000001",)]
    assert project.rows("SELECT count(*) FROM items") == [(3,)]
    assert project.rows("SELECT version, status FROM migration_history ORDER BY id") == [
        ("20250101000001", "success"),
        ("20250101000002", "failed"),
    ]


def test_first_revision_failing_on_a_new_file_still_records_the_failure(project: Project) -> None:
    project.write_revision("20250101000001", None, upgrade="op.execute('SELECT broken(')", message="bad")
    result = project.alembic("upgrade", "head")
    assert result.returncode == ExitCode.MIGRATION_FAILED
    assert project.rows("SELECT version, status FROM migration_history") == [("20250101000001", "failed")]
    # the version table was created in the failed step's transaction, so it went with it: nothing is applied
    assert project.rows("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'alembic_version'") == [(0,)]
    assert project.rows("SELECT count(*) FROM schema_version") == [(0,)]


def test_raiseerr_shows_the_traceback(project: Project) -> None:
    project.write_revision("20250101000001", None, upgrade="raise ValueError('no')", message="bad")
    result = project.alembic("--raiseerr", "upgrade", "head")
    assert result.returncode != 0
    assert "Traceback" in result.stderr


def test_changed_applied_revision_stops_the_run_before_anything_executes(project: Project) -> None:
    _base(project)
    assert project.alembic("upgrade", "head").returncode == 0
    path = project.versions / "20250101000001_items.py"
    path.write_text(path.read_text().replace("'c'", "'C'"))
    project.write_revision(
        "20250101000002", "20250101000001", upgrade="op.execute('DROP TABLE items')", message="pending"
    )
    before = snapshot(project.db)

    result = project.alembic("upgrade", "head")

    assert result.returncode == ExitCode.CHECKSUM_MISMATCH
    error = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1
    assert "20250101000001" in error[0] and str(path) in error[0] and "accept_changed" in error[0]
    assert snapshot(project.db) == before

    downgrade = project.alembic("downgrade", "base")
    assert downgrade.returncode == ExitCode.CHECKSUM_MISMATCH
    assert snapshot(project.db) == before


def test_accepting_a_changed_revision_is_recorded_and_then_runs(project: Project) -> None:
    _base(project)
    assert project.alembic("upgrade", "head").returncode == 0
    path = project.versions / "20250101000001_items.py"
    path.write_text(path.read_text() + "\n# reviewed\n")
    project.write_revision("20250101000002", "20250101000001", message="pending")

    result = project.alembic("-x", "accept_changed=true", "upgrade", "head")
    assert result.returncode == 0, result.stderr
    rows = project.rows("SELECT version, direction, status, error_message FROM migration_history ORDER BY id")
    assert [r[:3] for r in rows] == [
        ("20250101000001", "up", "success"),
        ("20250101000001", "accept", "success"),
        ("20250101000002", "up", "success"),
    ]
    assert "accept_changed" in rows[1][3]
    # once accepted, the new file is the reference: plain runs go on
    project.write_revision("20250101000003", "20250101000002", message="later")
    assert project.alembic("upgrade", "head").returncode == 0


def test_on_failure_command_gets_the_revision_error_and_database(project: Project, tmp_path: Path) -> None:
    report = tmp_path / "alert.txt"
    project.write_revision("20250101000001", None, upgrade="raise RuntimeError('disk on fire')", message="bad")
    hook = f'echo "$CCDASH_MIGRATE_REVISION|$CCDASH_MIGRATE_ERROR|$CCDASH_MIGRATE_DATABASE" > {report}'
    result = project.alembic("-x", f"on_failure={hook}", "upgrade", "head")
    assert result.returncode == ExitCode.MIGRATION_FAILED
    revision, error, database = report.read_text().strip().split("|")
    assert revision == "20250101000001" and "disk on fire" in error and database == str(project.db)
