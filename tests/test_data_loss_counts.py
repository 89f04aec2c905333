"""The smallest losses count: one row fewer in a table, and a table that held a single row emptied or dropped,
are refused like any other loss (without a backup or a confirmation)."""

from __future__ import annotations

from conftest import Project, error_line, snapshot

from ccdash_alembic.errors import ExitCode

BASE = "20250101000001"


def test_one_row_lost_is_refused(project: Project) -> None:
    project.write_revision(
        BASE,
        None,
        "op.execute('CREATE TABLE pairs (n INTEGER)')\nop.execute('INSERT INTO pairs VALUES (1), (2)')\n"
        "op.execute('CREATE TABLE solo (n INTEGER)')\nop.execute('INSERT INTO solo VALUES (1)')\n"
        "op.execute('CREATE TABLE empty (n INTEGER)')",
        message="tables",
    )
    assert project.migrate("up").returncode == 0
    project.write_revision(
        "20250101000002",
        BASE,
        "op.execute('DELETE FROM pairs WHERE n = 2')\nop.execute('DELETE FROM solo')\nop.execute('DROP TABLE empty')",
        message="lose one each",
    )
    before = snapshot(project.db)

    refused = project.migrate("-x", "backup=false", "up")
    assert refused.returncode == ExitCode.DATA_LOSS, refused.stderr
    line = error_line(refused)
    assert "pairs: 2 -> 1 rows" in line and "solo: 1 -> 0 rows" in line
    assert "empty" not in line  # a table without rows loses none
    assert snapshot(project.db) == before
