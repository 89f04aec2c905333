"""CCDash's own revisions on a PostgreSQL server: the baseline from the model, the later revisions' server
path, the data step of 20261127020200, the --sql script through psql, and the refusal of a database with
tables. Every command is the real ``alembic`` / ``ccdash-migrate`` run from the repository root."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import forked_commands
import postgres_server
import pytest
from conftest import REPO, error_line

from ccdash_alembic.errors import ExitCode

BASELINE, PREFERENCES, LEGACY, LINKS = "20250810000000", "20261127020000", "20261127020100", "20261127020200"
HEAD = [BASELINE, PREFERENCES, LEGACY, LINKS]
OWN = {"alembic_version", "migration_history", "schema_version", "migration_constraint_names"}


def repo(url: str, *args: str, command: str = "alembic") -> subprocess.CompletedProcess[str]:
    """The stock command from the repository root, on the database at ``url``."""
    return forked_commands.run(command, ["-x", f"url={url}", *args], cwd=REPO, env=dict(os.environ), timeout=300)


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def database(url: str) -> str:
    return url.rsplit("/", 1)[1]


def tables(server: postgres_server.Server, db: str) -> set[str]:
    rows = server.sql("SELECT tablename FROM pg_tables WHERE schemaname = 'public'", db)
    return {str(name) for (name,) in rows}


def layout(server: postgres_server.Server, db: str) -> list[tuple[object, ...]]:
    """Every column (type, default, nullability, position) and index of the public schema, comparable."""
    columns = server.sql(
        "SELECT table_name, ordinal_position, column_name, data_type, column_default, is_nullable"
        " FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 2",
        db,
    )
    indexes = server.sql("SELECT tablename, indexname FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1, 2", db)
    return columns + indexes


def steps(server: postgres_server.Server, db: str) -> list[tuple[object, ...]]:
    return server.sql("SELECT direction, version, status FROM migration_history ORDER BY id", db)


def note(server: postgres_server.Server, db: str, version: str) -> str:
    rows = server.sql(f"SELECT note FROM migration_history WHERE version = '{version}' ORDER BY id DESC LIMIT 1", db)
    return str(rows[0][0])


def test_head_on_an_empty_database_is_the_model(pg_server: postgres_server.Server, pg_url: str) -> None:
    ok(repo(pg_url, "upgrade", "head"))
    check = ok(repo(pg_url, "check"))
    assert "No new upgrade operations detected" in check.stdout + check.stderr
    db = database(pg_url)
    assert steps(pg_server, db) == [("up", v, "success") for v in HEAD]
    assert note(pg_server, db, BASELINE) == "created the CCDash schema of CCDash 0.6.0 to 0.6.18"
    assert note(pg_server, db, LEGACY) == "no legacy column messages.session_window_id; nothing to do"
    # the check compares for real: a column the model has and the database lost is found
    pg_server.sql("ALTER TABLE jobs DROP COLUMN schedule_params", db)
    assert repo(pg_url, "check").returncode != 0


def test_downgrade_to_base_and_upgrade_again(pg_server: postgres_server.Server, pg_url: str) -> None:
    db = database(pg_url)
    ok(repo(pg_url, "upgrade", "head"))
    at_head = layout(pg_server, db)
    ok(repo(pg_url, "downgrade", "base"))
    assert tables(pg_server, db) <= OWN
    ok(repo(pg_url, "upgrade", "head"))
    assert layout(pg_server, db) == at_head
    ups = [("up", v, "success") for v in HEAD]
    downs = [("down", v, "rolled_back") for v in reversed(HEAD)]
    assert steps(pg_server, db) == ups + downs + ups
    assert pg_server.sql("SELECT version, dirty FROM schema_version", db) == [(LINKS, False)]


def test_every_session_gets_its_project(pg_server: postgres_server.Server, pg_url: str) -> None:
    db = database(pg_url)
    ok(repo(pg_url, "upgrade", LEGACY))
    pg_server.sql("INSERT INTO projects (id, name, path) VALUES ('p-a', 'a', '/a')", db)
    pg_server.sql(
        "INSERT INTO sessions (id, project_name, project_path, start_time, created_at, project_id) VALUES"
        " ('s1', 'a', '/a', now(), '2026-01-05', NULL),"  # a project with its name and path exists
        " ('s2', 'b', '/b', now(), '2026-01-03', 'ghost'),"  # an id no project has
        " ('s3', 'b', '/b', now(), '2026-01-02', NULL),"
        " ('s4', 'b', '/other', now(), '2026-01-04', NULL),"  # same name, another path: another project
        " ('s5', 'z', '/z', now(), '2026-01-01', 'p-a')",  # linked already: left as it is
        db,
    )
    ok(repo(pg_url, "upgrade", "head"))
    linked = dict(
        pg_server.sql(
            "SELECT s.id, p.name || ':' || p.path FROM sessions s LEFT JOIN projects p ON p.id = s.project_id", db
        )
    )
    assert linked == {"s1": "a:/a", "s2": "b:/b", "s3": "b:/b", "s4": "b:/other", "s5": "a:/a"}
    created = pg_server.sql("SELECT name, path, created_at::date::text FROM projects WHERE id <> 'p-a' ORDER BY 2", db)
    assert created == [("b", "/b", "2026-01-02"), ("b", "/other", "2026-01-04")]
    assert note(pg_server, db, LINKS) == "4 sessions had no project; 2 projects created for them; all linked"
    keys = pg_server.sql(
        "SELECT conname FROM pg_constraint WHERE conrelid = 'sessions'::regclass AND contype = 'f'", db
    )
    assert keys == [("fk_sessions_project_id",)]
    with pytest.raises(Exception, match="fk_sessions_project_id"):  # the server enforces it, for any client
        pg_server.sql("UPDATE sessions SET project_id = 'ghost' WHERE id = 's1'", db)
    ok(repo(pg_url, "downgrade", LEGACY))
    assert pg_server.sql("SELECT count(*) FROM sessions WHERE project_id IS NULL", db) == [(0,)]  # links stay
    pg_server.sql("UPDATE sessions SET project_id = 'ghost' WHERE id = 's1'", db)  # the key is gone


def test_a_hand_made_legacy_column_is_moved_and_put_back(pg_server: postgres_server.Server, pg_url: str) -> None:
    db = database(pg_url)
    ok(repo(pg_url, "upgrade", PREFERENCES))
    for statement in (
        "ALTER TABLE messages ADD COLUMN session_window_id TEXT",
        "CREATE INDEX idx_messages_session_window_id ON messages (session_window_id)",
        "INSERT INTO sessions (id, project_name, project_path, start_time) VALUES ('s', 'a', '/a', now())",
        "INSERT INTO session_windows (id, window_start, window_end, reset_time) VALUES ('w', now(), now(), now())",
        "INSERT INTO messages (id, session_id, timestamp, session_window_id) VALUES"
        " ('m1', 's', now(), 'w'), ('m2', 's', now(), 'gone'), ('m3', 's', now(), NULL)",
    ):
        pg_server.sql(statement, db)
    # the column's values are moved before it goes, but dropping a column that holds values needs the
    # operator's word where no backup is made (as on DuckDB with -x backup=false)
    refused = repo(pg_url, "upgrade", LEGACY)
    assert refused.returncode == ExitCode.DATA_LOSS, refused.stderr
    assert pg_server.sql("SELECT count(*) FROM session_window_messages", db) == [(0,)]
    ok(repo(pg_url, "-x", "confirm_data_loss=true", "upgrade", LEGACY))
    assert pg_server.sql("SELECT session_window_id, message_id FROM session_window_messages", db) == [("w", "m1")]
    assert note(pg_server, db, LEGACY) == (
        "removed the legacy column messages.session_window_id (column 18 of 18); 1 links moved to "
        "session_window_messages; 1 pointed at windows that no longer exist and were dropped"
    )
    assert ("messages", "idx_messages_session_window_id") not in layout(pg_server, db)
    ok(repo(pg_url, "downgrade", PREFERENCES))
    back = pg_server.sql("SELECT id, session_window_id FROM messages ORDER BY id", db)
    assert back == [("m1", "w"), ("m2", None), ("m3", None)]
    assert ("messages", "idx_messages_session_window_id") in layout(pg_server, db)


def psql() -> str:
    found = postgres_server.bin_dir() / "psql"
    return str(found) if found.is_file() else str(shutil.which("psql"))


def test_sql_script_through_psql_makes_what_the_online_run_makes(
    pg_server: postgres_server.Server, pg_url: str, tmp_path: Path
) -> None:
    script = ok(repo(pg_url, "upgrade", "head", "--sql"))
    assert tables(pg_server, database(pg_url)) == set()  # writing the script touched nothing
    (tmp_path / "upgrade.sql").write_text(script.stdout)
    offline = pg_server.new_database()
    applied = subprocess.run(
        [psql(), "-v", "ON_ERROR_STOP=1", "-q", "-f", str(tmp_path / "upgrade.sql"), pg_server.dsn(offline)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert applied.returncode == 0, applied.stderr
    ok(repo(pg_url, "upgrade", "head"))
    assert layout(pg_server, offline) == layout(pg_server, database(pg_url))
    assert tables(pg_server, offline) >= {"migration_history", "schema_version", "alembic_version"}
    assert pg_server.sql("SELECT version_num FROM alembic_version", offline) == [(LINKS,)]
    assert [v for _, v, _ in steps(pg_server, offline)] == HEAD


def test_baseline_refuses_a_database_with_tables(pg_server: postgres_server.Server, pg_url: str) -> None:
    db = database(pg_url)
    pg_server.sql("CREATE TABLE sessions (id TEXT PRIMARY KEY, note TEXT)", db)
    pg_server.sql("INSERT INTO sessions VALUES ('kept', 'x')", db)
    before = layout(pg_server, db)
    refused = repo(pg_url, "upgrade", "head")
    assert refused.returncode == 7
    line = error_line(refused)
    assert "it has tables (sessions)" in line and "empty PostgreSQL database" in line
    assert tables(pg_server, db) == {"sessions"}  # no history, no alembic_version: nothing changed
    assert layout(pg_server, db) == before
    assert pg_server.sql("SELECT * FROM sessions", db) == [("kept", "x")]
    dry = repo(pg_url, "baseline", "--dry-run", command="ccdash-migrate")
    assert dry.returncode == 7 and "it has tables (sessions)" in error_line(dry)


def test_baseline_dry_run_shows_the_server_ddl(pg_server: postgres_server.Server, pg_url: str) -> None:
    dry = ok(repo(pg_url, "baseline", "--dry-run", command="ccdash-migrate"))
    assert dry.stdout.startswith("would create the CCDash schema of CCDash 0.6.0 to 0.6.18\n")
    assert "total_cost DOUBLE PRECISION DEFAULT 0.0" in dry.stdout
    assert "user_preferences" not in dry.stdout  # a later revision creates it
    assert tables(pg_server, database(pg_url)) == set()
