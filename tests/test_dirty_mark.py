"""Steps that cannot be rolled back: non-transactional revisions and revisions that commit themselves. What
they committed stays and is said to stay; the database is marked dirty, every run that would change it is
refused until ``ccdash-migrate repair``, and a clean non-transactional step leaves no mark."""

from __future__ import annotations

import pytest
from conftest import Project, digest, error_line

from ccdash_alembic.errors import ExitCode


def _fails_outside_a_transaction(project: Project) -> None:
    """A table, then a non-transactional revision that commits one row and fails on its second statement."""
    project.write_revision("20250101000001", None, upgrade="op.execute('CREATE TABLE log (n INTEGER)')")
    project.write_revision(
        "20250101000002",
        "20250101000001",
        upgrade="op.execute('INSERT INTO log VALUES (1)')\nop.execute('INSERT INTO nowhere VALUES (2)')",
        header="transactional = False",
        message="outside",
    )


def test_a_failed_non_transactional_revision_leaves_a_dirty_mark_until_repair(project: Project) -> None:
    _fails_outside_a_transaction(project)
    project.write_revision("20250101000003", "20250101000002", message="after")
    failed = project.alembic("upgrade", "head")
    assert failed.returncode == ExitCode.MIGRATION_FAILED
    assert project.rows("SELECT n FROM log") == [(1,)]  # committed as it went: not rolled back
    assert project.rows("SELECT version, dirty FROM schema_version") == [("20250101000002", True)]

    for command in (["upgrade", "head"], ["downgrade", "base"]):
        refused = project.alembic(*command)
        assert refused.returncode == ExitCode.DIRTY
        assert "marked dirty: revision 20250101000002" in error_line(refused) and "repair" in error_line(refused)

    repaired = project.migrate("repair")
    assert repaired.returncode == 0, repaired.stderr
    assert "cleared the dirty mark of revision 20250101000002" in repaired.stdout.lower()
    assert project.rows("SELECT version, dirty FROM schema_version") == [("20250101000001", False)]
    assert project.rows("SELECT direction, note LIKE 'cleared%' FROM migration_history ORDER BY id DESC LIMIT 1") == [
        ("repair", True)
    ]
    (project.versions / "20250101000002_outside.py").write_text(
        (project.versions / "20250101000002_outside.py").read_text().replace("nowhere", "log")
    )
    again = project.alembic("-x", "accept_changed=true", "upgrade", "head")
    assert again.returncode == 0, again.stderr
    assert project.rows("SELECT version, dirty FROM schema_version") == [("20250101000003", False)]


def test_a_dirty_mark_at_head_refuses_every_run_that_would_change_the_database(project: Project) -> None:
    _fails_outside_a_transaction(project)
    failed = project.alembic("upgrade", "head")
    assert failed.returncode == ExitCode.MIGRATION_FAILED
    line = error_line(failed)
    assert "Nothing of that step was applied" not in line
    assert "stay applied" in line and "marked dirty" in line and "repair" in line
    # the failing revision's file is fixed to do nothing: the graph is at head, the mark is still there
    (project.versions / "20250101000002_outside.py").unlink()
    before = digest(project.db)
    for command in (["upgrade", "head"], ["stamp", "20250101000001"], ["downgrade", "base"]):
        refused = project.alembic(*command)
        assert refused.returncode == ExitCode.DIRTY, (command, refused.stderr)
        assert "marked dirty" in error_line(refused)
    assert digest(project.db) == before
    current = project.alembic("current")
    assert current.returncode == 0 and "20250101000001" in current.stdout


def test_a_successful_non_transactional_revision_is_clean(project: Project) -> None:
    project.write_revision(
        "20250101000001",
        None,
        upgrade="op.execute('CREATE TABLE log (n INTEGER)')\nop.execute('CHECKPOINT')",
        header="transactional = False",
    )
    assert project.alembic("upgrade", "head").returncode == 0
    assert project.rows("SELECT version, dirty FROM schema_version") == [("20250101000001", False)]
    assert project.rows("SELECT direction, status FROM migration_history") == [("up", "success")]


def _with_rows(project: Project) -> None:
    project.write_revision(
        "20250101000001", None, "op.execute('CREATE TABLE t (n INTEGER)')\nop.execute('INSERT INTO t VALUES (1), (2)')"
    )
    assert project.alembic("upgrade", "head").returncode == 0


def test_a_commit_statement_in_a_revision_is_refused_before_anything_commits(project: Project) -> None:
    _with_rows(project)
    project.write_revision(
        "20250101000002", "20250101000001", "op.execute('DELETE FROM t')\nop.execute('COMMIT')", message="wipe"
    )
    refused = project.alembic("-x", "backup=false", "upgrade", "head")
    assert refused.returncode == ExitCode.MIGRATION_FAILED
    assert "'COMMIT' manages the transaction" in error_line(refused)
    assert project.rows("SELECT count(*) FROM t") == [(2,)]
    assert project.rows("SELECT version, dirty FROM schema_version") == [("20250101000001", False)]


@pytest.mark.parametrize(
    "statement", ["COMMIT", "rollback", "END TRANSACTION", "CREATE TABLE side (a INTEGER); COMMIT"]
)
def test_a_commit_sent_through_the_driver_is_refused_before_it_runs(project: Project, statement: str) -> None:
    """``exec_driver_sql("COMMIT")`` skips ``op.execute``'s check; run, it would commit the step's first half
    and leave the rest (here a DELETE) to autocommit, past the data-loss refusal and without a backup."""
    _with_rows(project)
    project.write_revision(
        "20250101000002",
        "20250101000001",
        f"op.execute('CREATE TABLE kept (a INTEGER)')\nop.get_bind().exec_driver_sql({statement!r})\n"
        "op.execute('DELETE FROM t')",
        message="wipe",
    )
    refused = project.alembic("-x", "backup=false", "upgrade", "head")
    assert refused.returncode == ExitCode.MIGRATION_FAILED, refused.stderr
    assert "manages the transaction" in error_line(refused)
    assert project.rows("SELECT count(*) FROM t") == [(2,)]
    assert project.rows("SELECT count(*) FROM duckdb_tables() WHERE table_name IN ('kept', 'side')") == [(0,)]
    assert project.rows("SELECT version, dirty FROM schema_version") == [("20250101000001", False)]


@pytest.mark.parametrize("then_fail", [False, True], ids=["then-succeed", "then-fail"])
def test_a_revision_that_commits_through_its_connection_leaves_the_dirty_mark(
    project: Project, then_fail: bool
) -> None:
    """What a revision committed itself cannot be rolled back: the run says so and marks the database dirty,
    whatever happens after the commit, so nothing runs on until someone has looked."""
    _with_rows(project)
    after = "op.execute('SELECT * FROM nowhere')" if then_fail else "pass"
    project.write_revision(
        "20250101000002",
        "20250101000001",
        f"op.execute('DELETE FROM t')\nop.get_bind().commit()\n{after}",
        message="wipe",
    )
    project.write_revision("20250101000003", "20250101000002", message="later")
    failed = project.alembic("-x", "backup=false", "upgrade", "head")
    assert failed.returncode == ExitCode.MIGRATION_FAILED
    line = error_line(failed)
    assert "Nothing of that step was applied" not in line and "marked dirty" in line and "committed" in line
    assert project.rows("SELECT count(*) FROM t") == [(0,)]  # the commit happened: said, not hidden
    assert project.rows("SELECT version, dirty FROM schema_version") == [("20250101000002", True)]
    assert project.rows("SELECT version_num FROM alembic_version") == [("20250101000001",)]
    assert project.alembic("upgrade", "head").returncode == ExitCode.DIRTY


def test_stamp_purge_is_refused_before_it_empties_the_version_table(project: Project) -> None:
    _fails_outside_a_transaction(project)
    assert project.alembic("upgrade", "20250101000001").returncode == 0
    unknown = project.alembic("stamp", "--purge", "20991231000000")
    assert unknown.returncode != 0
    assert project.rows("SELECT version_num FROM alembic_version") == [("20250101000001",)]
    assert project.alembic("upgrade", "head").returncode == ExitCode.MIGRATION_FAILED  # now dirty
    for destination in ("head", "base", "20250101000001"):
        refused = project.alembic("stamp", "--purge", destination)
        assert refused.returncode == ExitCode.DIRTY, refused.stderr
        assert project.rows("SELECT version_num FROM alembic_version") == [("20250101000001",)]
