"""SQL-file revisions end to end, and importing a golang-migrate directory (CCDash's old ``backend/migrations``)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from conftest import Project

from ccdash_alembic.errors import ExitCode
from ccdash_alembic.runtime.checksum import file_checksum

UP = """\
-- widgets; a ; in a comment is not the end of a statement
CREATE TABLE widgets (id INTEGER PRIMARY KEY, note VARCHAR DEFAULT 'a;b');
INSERT INTO widgets (id, note) VALUES (1, 'x;y -- not a comment'), (2, DEFAULT);
CREATE INDEX ix_widgets_note ON widgets (note);
CREATE MACRO widget_count() AS (SELECT count(*) FROM widgets);
"""
DOWN = """\
DROP MACRO widget_count;
DROP INDEX ix_widgets_note;
DROP TABLE widgets;
"""


def _sql_revision(project: Project, message: str, up: str, down: str) -> Path:
    created = project.migrate("create", "--sql", "-m", message, pass_db=False)
    assert created.returncode == 0, created.stderr
    slug = message.replace(" ", "_")
    [stub] = project.versions.glob(f"*_{slug}.py")
    stub.with_name(stub.stem + ".up.sql").write_text(up)
    stub.with_name(stub.stem + ".down.sql").write_text(down)
    return stub


def _history(project: Project) -> list[dict[str, object]]:
    return json.loads(project.migrate("history", "--json").stdout)  # type: ignore[no-any-return]


def test_sql_revision_runs_records_and_reverts(project: Project) -> None:
    stub = _sql_revision(project, "add widgets", UP, DOWN)
    revision = stub.name[:14]
    written = sorted(p.name for p in project.versions.iterdir())
    assert written == [f"{revision}_add_widgets{suffix}" for suffix in (".down.sql", ".py", ".up.sql")]

    result = project.migrate("up")
    assert result.returncode == 0, result.stderr
    assert project.rows("SELECT id, note FROM widgets ORDER BY id") == [(1, "x;y -- not a comment"), (2, "a;b")]
    assert project.rows("SELECT widget_count()") == [(2,)]
    assert project.rows("SELECT index_name FROM duckdb_indexes()") == [("ix_widgets_note",)]
    [step] = project.rows(
        "SELECT direction, status, checksum, up_script, down_script FROM migration_history WHERE version = "
        f"'{revision}'"
    )
    assert step == ("up", "success", file_checksum(stub), UP, DOWN)

    down = project.migrate("down")
    assert down.returncode == 0, down.stderr
    assert project.rows("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'widgets'") == [(0,)]
    assert project.rows("SELECT count(*) FROM duckdb_functions() WHERE function_name = 'widget_count'") == [(0,)]
    assert [(s["direction"], s["status"]) for s in _history(project)] == [("up", "success"), ("down", "rolled_back")]


def test_the_checksum_covers_the_sql_files(project: Project) -> None:
    stub = _sql_revision(project, "add widgets", UP, DOWN)
    before = file_checksum(stub)
    assert project.migrate("up").returncode == 0
    up_file = stub.with_name(stub.stem + ".up.sql")
    up_file.write_text(UP.replace("'a;b'", "'c'"))
    assert file_checksum(stub) != before
    assert project.migrate("validate").returncode == ExitCode.CHECKSUM_MISMATCH
    project.write_revision("20991231000000", stub.name[:14], message="next")
    refused = project.migrate("up")  # refused before the next revision runs
    assert refused.returncode == ExitCode.CHECKSUM_MISMATCH
    assert f"revision {stub.name[:14]} was changed after it was applied" in refused.stderr
    # Line endings alone are not a change.
    up_file.write_bytes(UP.replace("\n", "\r\n").encode())
    assert file_checksum(stub) == before
    assert project.migrate("validate").returncode == ExitCode.PENDING  # no drift left: only "next" is pending


def test_a_failing_statement_rolls_back_the_whole_file(project: Project) -> None:
    _sql_revision(project, "add widgets", UP, DOWN)
    assert project.migrate("up").returncode == 0
    bad = _sql_revision(
        project,
        "add gadgets",
        "CREATE TABLE gadgets (id INTEGER);\nINSERT INTO gadgets VALUES (1);\nINSERT INTO nowhere VALUES (1);\n",
        "DROP TABLE gadgets;\n",
    )
    before = project.rows("SELECT * FROM widgets ORDER BY id")
    rehearsal = project.migrate("rehearse")
    assert rehearsal.returncode == ExitCode.MIGRATION_FAILED
    assert rehearsal.stdout.startswith(f"{bad.name[:14]}  failed") and "nowhere" in rehearsal.stdout

    result = project.migrate("up")
    assert result.returncode == ExitCode.MIGRATION_FAILED
    assert f"upgrade of revision {bad.name[:14]} (add gadgets) failed" in result.stderr and "nowhere" in result.stderr
    assert project.rows("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'gadgets'") == [(0,)]
    assert project.rows("SELECT * FROM widgets ORDER BY id") == before
    assert _history(project)[-1]["status"] == "failed"


def test_transaction_statements_are_refused(project: Project) -> None:
    stub = _sql_revision(project, "with commit", "BEGIN;\nCREATE TABLE t (id INTEGER);\nCOMMIT;\n", "DROP TABLE t;\n")
    validation = json.loads(project.migrate("validate", "--json").stdout)
    assert validation["exit_code"] == ExitCode.INVALID_REVISIONS
    assert validation["findings"] == [
        {
            "kind": "sql",
            "subject": stub.stem + ".up.sql",
            "message": "'BEGIN' manages the transaction, which the revision already runs in; remove it",
        }
    ]
    result = project.migrate("up")
    assert result.returncode == ExitCode.MIGRATION_FAILED and "manages the transaction" in result.stderr
    assert project.rows("SELECT count(*) FROM duckdb_tables() WHERE table_name = 't'") == [(0,)]


def test_sql_revisions_in_sql_mode(project: Project) -> None:
    _sql_revision(project, "add widgets", UP, DOWN)
    script = project.migrate("up", "--sql")
    assert script.returncode == 0, script.stderr
    assert "CREATE TABLE widgets (id INTEGER PRIMARY KEY, note VARCHAR DEFAULT 'a;b');" in script.stdout
    assert "CREATE MACRO widget_count() AS (SELECT count(*) FROM widgets);" in script.stdout
    assert not project.db.exists()


# --- import-sql ---------------------------------------------------------------------------------------------------

# CCDash's migrations as golang-migrate files (backend/migrations on main, 2025-08).
GO_MIGRATIONS = {
    "20250801120000_add_migration_example.up.sql": """\
        CREATE TABLE IF NOT EXISTS user_preferences (
            user_id VARCHAR PRIMARY KEY,
            theme VARCHAR DEFAULT 'light',
            language VARCHAR DEFAULT 'en',
            notifications_enabled BOOLEAN DEFAULT true,
            created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
            updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
        );
        CREATE INDEX IF NOT EXISTS idx_user_preferences_created_at ON user_preferences(created_at);
        """,
    "20250801120000_add_migration_example.down.sql": """\
        DROP INDEX IF EXISTS idx_user_preferences_created_at;
        DROP TABLE IF EXISTS user_preferences;
        """,
    "20250802000001_add_jobs_table.up.sql": """\
        CREATE TABLE IF NOT EXISTS jobs (id VARCHAR PRIMARY KEY, status VARCHAR NOT NULL DEFAULT 'pending');
        CREATE INDEX IF NOT EXISTS idx_jobs_status ON jobs(status);
        """,
    "20250802000001_add_jobs_table.down.sql": """\
        DROP INDEX IF EXISTS idx_jobs_status;
        DROP TABLE IF EXISTS jobs;
        """,
    "add_session_windows.sql": "-- documentation only, never executed\n",
    "README.md": "not SQL\n",
}


def _go_directory(tmp_path: Path, files: dict[str, str] = GO_MIGRATIONS) -> Path:
    folder = tmp_path / "backend-migrations"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(textwrap.dedent(text))
    return folder


def test_import_keeps_timestamps_and_chains_after_the_head(project: Project, tmp_path: Path) -> None:
    project.write_revision("20260101000000", None, "op.create_table('t', sa.Column('id', sa.Integer))", message="base")
    folder = _go_directory(tmp_path)
    result = project.migrate("import-sql", str(folder), pass_db=False)
    assert result.returncode == 0, result.stderr
    assert "Skipped add_session_windows.sql" in result.stderr and "README" not in result.stderr
    for name in GO_MIGRATIONS:
        if name.startswith("2025"):
            assert (project.versions / name).read_bytes() == (folder / name).read_bytes()
    example = (project.versions / "20250801120000_add_migration_example.py").read_text()
    jobs = (project.versions / "20250802000001_add_jobs_table.py").read_text()
    assert '"""add migration example' in example
    assert (
        "revision: str = '20250801120000'" in example
        and "down_revision: str | Sequence[str] | None = '20260101000000'" in example
    )
    assert "revision: str = '20250802000001'" in jobs and "= '20250801120000'" in jobs

    assert project.migrate("validate").returncode == 0  # older ids after a newer head are in order: they follow it
    assert project.migrate("up").returncode == 0
    steps = [(s["version"], s["name"]) for s in _history(project)]
    assert steps == [
        ("20260101000000", "base"),
        ("20250801120000", "add migration example"),
        ("20250802000001", "add jobs table"),
    ]
    assert project.rows("SELECT theme FROM user_preferences") == []
    assert project.migrate("validate").returncode == 0
    assert project.migrate("downgrade", "20260101000000").returncode == 0
    assert project.rows("SELECT count(*) FROM duckdb_tables() WHERE table_name IN ('jobs', 'user_preferences')") == [
        (0,)
    ]


def test_import_refuses_and_writes_nothing(project: Project, tmp_path: Path) -> None:
    folder = _go_directory(tmp_path)
    assert project.migrate("import-sql", str(folder), pass_db=False).returncode == 0
    listing = sorted(p.name for p in project.versions.iterdir())

    again = project.migrate("import-sql", str(folder), pass_db=False)
    assert again.returncode == ExitCode.USAGE
    assert "revision 20250801120000 exists already" in again.stderr

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "20250901000000_good.up.sql").write_text("CREATE TABLE good (id INTEGER);\n")
    (broken / "20250902000000_bad.up.sql").write_text("CREAT TABLE bad (id INTEGER);\n")
    refused = project.migrate("import-sql", str(broken), pass_db=False)
    assert refused.returncode == ExitCode.USAGE and "20250902000000_bad.up.sql" in refused.stderr

    lonely = tmp_path / "lonely"
    lonely.mkdir()
    (lonely / "20250903000000_x.down.sql").write_text("DROP TABLE x;\n")
    assert project.migrate("import-sql", str(lonely), pass_db=False).returncode == ExitCode.USAGE
    assert project.migrate("import-sql", str(tmp_path / "missing"), pass_db=False).returncode == ExitCode.USAGE
    assert sorted(p.name for p in project.versions.iterdir()) == listing


def test_an_imported_migration_without_a_down_file_cannot_be_downgraded(project: Project, tmp_path: Path) -> None:
    folder = _go_directory(tmp_path, {"20250901000000_only_up.up.sql": "CREATE TABLE only_up (id INTEGER);\n"})
    assert project.migrate("import-sql", str(folder), pass_db=False).returncode == 0
    assert project.migrate("up").returncode == 0
    down = project.migrate("down")
    assert down.returncode == ExitCode.MIGRATION_FAILED
    assert "20250901000000_only_up.down.sql does not exist, so this revision cannot run down" in down.stderr
    assert project.rows("SELECT count(*) FROM only_up") == [(0,)]
