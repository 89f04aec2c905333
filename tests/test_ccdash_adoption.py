"""Every CCDash schema generation and upgrade variant, built from tests/data/generations.json by DuckDB 1.1.3,
adopted by the baseline and brought to head with CCDash's own revisions: same final schema, every row kept,
links and projects right, history saying what was found, a round trip to the baseline, and still usable by
the DuckDB that CCDash embeds."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path
from typing import Any

import duckdb
import pytest
from conftest import built_once, repo_alembic, run_in_duckdb11
from fixture_builder import specs
from shapes import schema

from ccdash_alembic.ccdash.errors import NOT_CCDASH
from ccdash_alembic.errors import ExitCode

BASELINE = "20250810000000"
SPECS = specs()
ADOPTABLE = [i for i in SPECS if i != "V_migrate_tool_first"]
# The facts say these columns' positions differ between clean and upgraded files.
ORDER_MAY_DIFFER = {"sessions", "session_windows"}
SHAPE_WORDS = {
    "V_G2_from_G1": "messages.session_window_id is the last column",
    "V_G4_from_G1_via_G2": "sessions.total_cost comes after created_at",
    "V_G5_failed_start": "session_window_messages has no indexes",
    "V_G9_legacy_swid_third": "legacy column messages.session_window_id (3rd column",
    "V_G9_from_G1_direct": "sessions.total_cost comes after created_at",
    "V_G9_from_G1_via_G2": "legacy column messages.session_window_id (last column",
    "V_G9_manual_session_windows_tool": "legacy column messages.session_window_id (last column",
    "V_G9_after_migrate_tool": "made by CCDash's Go migrate tool",
}


@pytest.fixture(scope="session")
def fixtures(tmp_path_factory: pytest.TempPathFactory, duckdb11_python: Path) -> Path:
    """Every generation's file, made by DuckDB 1.1.3 once for all workers (tests copy what they change)."""

    def build(folder: Path) -> None:
        builder = Path(__file__).parent / "fixture_builder.py"
        subprocess.run([str(duckdb11_python), str(builder), str(folder), *SPECS], check=True, timeout=600)

    return built_once(tmp_path_factory, "ccdash-fixtures", build)


@pytest.fixture(scope="session")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The schema ``upgrade head`` makes on a new, empty database."""

    def build(folder: Path) -> None:
        result = repo_alembic("upgrade", "head", db=folder / "ccdash.db")
        assert result.returncode == 0, result.stderr

    return schema(built_once(tmp_path_factory, "reference", build) / "ccdash.db")


def _rows(db: Path) -> dict[str, dict[Any, dict[str, Any]]]:
    """Every row of every CCDash table, keyed by primary key, as column -> value."""
    connection = duckdb.connect(str(db), read_only=True)
    try:
        keys = {
            t: cols
            for t, cols in connection.execute(
                "SELECT table_name, constraint_column_names FROM duckdb_constraints() "
                "WHERE constraint_type = 'PRIMARY KEY'"
            ).fetchall()
        }
        result = {}
        for table in SPECS["G9"]["tables"]:
            if table not in keys:
                continue
            cursor = connection.execute(f'SELECT * FROM "{table}"')
            names = [d[0] for d in cursor.description]
            rows = [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
            result[table] = {tuple(r[k] for k in keys[table]): r for r in rows}
        return result
    finally:
        connection.close()


def _comparable(state: dict[str, Any]) -> dict[str, Any]:
    result = {}
    for table, facts in state.items():
        facts = dict(facts)
        if table in ORDER_MAY_DIFFER:
            facts["columns"] = sorted(facts["columns"])
        result[table] = facts
    return result


@pytest.mark.parametrize("spec_id", ADOPTABLE)
def test_every_generation_reaches_the_same_head_keeping_every_row(
    spec_id: str, fixtures: Path, reference: dict[str, Any], tmp_path: Path, duckdb11_python: Path
) -> None:
    db = tmp_path / "ccdash.db"
    shutil.copy(fixtures / f"{spec_id}.db", db)
    before = _rows(db)

    result = repo_alembic("upgrade", "head", db=db)
    assert result.returncode == 0, result.stderr
    assert _comparable(schema(db)) == _comparable(reference)
    after = _rows(db)
    _assert_rows_kept(before, after)
    _assert_links_moved(before, after)
    _assert_sessions_linked(before, after)
    _assert_history(db, spec_id)

    down = repo_alembic("downgrade", BASELINE, db=db)
    assert down.returncode == 0, down.stderr
    restored = _rows(db)
    _assert_rows_kept(before, restored)
    _assert_legacy_column_restored(before, after, restored)
    up = repo_alembic("upgrade", "head", db=db)
    assert up.returncode == 0, up.stderr
    assert _rows(db) == after
    assert _comparable(schema(db)) == _comparable(reference)

    usable = run_in_duckdb11(
        duckdb11_python,
        db,
        """
        n = con.execute("SELECT count(*) FROM messages").fetchone()[0]
        project = con.execute("SELECT id FROM projects LIMIT 1").fetchone()[0]
        con.execute("INSERT INTO sessions (id, project_name, project_path, start_time, project_id) "
                    "VALUES ('new-session', 'x', '/x', now(), ?)", [project])
        con.execute("INSERT INTO messages (id, session_id, timestamp) VALUES ('new-message', 'new-session', now())")
        print(n + 1, con.execute("SELECT count(*) FROM messages").fetchone()[0])
        """,
    )
    assert usable.returncode == 0, usable.stderr
    count, counted = usable.stdout.split()
    assert count == counted


def _assert_rows_kept(before: dict[str, Any], after: dict[str, Any]) -> None:
    """Every original row is there with the same values, except what the migrations change on purpose: the
    legacy messages.session_window_id (moved to session_window_messages) and sessions.project_id (filled)."""
    for table, rows in before.items():
        for key, row in rows.items():
            assert key in after[table], (table, key)
            now = after[table][key]
            for column, value in row.items():
                if (table, column) == ("messages", "session_window_id"):
                    continue
                if (table, column) == ("sessions", "project_id") and value is None:
                    assert now[column] is not None, key
                    continue
                assert now[column] == value, (table, key, column)


def _assert_links_moved(before: dict[str, Any], after: dict[str, Any]) -> None:
    windows = set(before.get("session_windows", {}))
    expected = {
        (link["session_window_id"], link["message_id"]) for link in before.get("session_window_messages", {}).values()
    }
    for message in before["messages"].values():
        legacy = message.get("session_window_id")
        if legacy is not None and (legacy,) in windows:
            expected.add((legacy, message["id"]))
    moved = {(link["session_window_id"], link["message_id"]) for link in after["session_window_messages"].values()}
    assert moved == expected


def _assert_legacy_column_restored(before: dict[str, Any], after: dict[str, Any], restored: dict[str, Any]) -> None:
    """Where the upgrade removed messages.session_window_id, the downgrade puts it back from the links."""
    had_column = any("session_window_id" in m for m in before["messages"].values())
    has_column = any("session_window_id" in m for m in restored["messages"].values())
    assert has_column == had_column
    if had_column:
        links: dict[str, str] = {}
        for link in after["session_window_messages"].values():
            links[link["message_id"]] = min(links.get(link["message_id"], "~"), link["session_window_id"])
        for key, message in restored["messages"].items():
            assert message["session_window_id"] == links.get(message["id"]), key


def _assert_sessions_linked(before: dict[str, Any], after: dict[str, Any]) -> None:
    projects = after["projects"]
    for key, session in after["sessions"].items():
        project = projects[(session["project_id"],)]
        assert (project["name"], project["path"]) == (session["project_name"], session["project_path"]), key
    new = set(projects) - set(before.get("projects", {}))
    for key in new:
        project = projects[key]
        sessions = [
            s
            for s in before["sessions"].values()
            if (s["project_name"], s["project_path"]) == (project["name"], project["path"])
        ]
        assert project["created_at"] == min(s["created_at"] for s in sessions)
    names = {(s["project_name"], s["project_path"]) for s in before["sessions"].values()}
    assert len(projects) >= len(names)


def _assert_history(db: Path, spec_id: str) -> None:
    connection = duckdb.connect(str(db), read_only=True)
    try:
        direction, note = connection.execute(
            f"SELECT direction, note FROM migration_history WHERE version = '{BASELINE}' ORDER BY id LIMIT 1"
        ).fetchone()
        versions = connection.execute("SELECT version, dirty FROM schema_version").fetchall()
    finally:
        connection.close()
    generation = spec_id if spec_id.startswith("G") else SPECS[spec_id]["base_generation"]
    assert direction == "baseline"
    assert note.startswith("found schema generation G")
    if spec_id != "V_G5_failed_start":  # its tables are G5's, the facts call its base G4 (what CCDash wrote)
        assert f"generation {generation} " in note, note
    assert SHAPE_WORDS.get(spec_id, "") in note, note
    assert versions == [("20261127020200", False)]


def test_baseline_on_a_new_database_is_a_plain_up_step(tmp_path: Path) -> None:
    db = tmp_path / "new.db"
    assert repo_alembic("upgrade", BASELINE, db=db).returncode == 0
    connection = duckdb.connect(str(db), read_only=True)
    try:
        assert connection.execute("SELECT direction, note FROM migration_history").fetchall() == [
            ("up", "created the CCDash schema of CCDash 0.6.0 to 0.6.18")
        ]
    finally:
        connection.close()


def test_the_baseline_creates_exactly_the_g9_schema(tmp_path: Path, fixtures: Path) -> None:
    """Clean G9 file (built by DuckDB 1.1.3 from the facts) and the baseline's schema agree, column order too."""
    db = tmp_path / "baseline.db"
    assert repo_alembic("upgrade", BASELINE, db=db).returncode == 0
    assert schema(db) == schema(fixtures / "G9.db")


def test_go_tool_history_is_adopted_and_its_dirty_mark_resolved(fixtures: Path, tmp_path: Path) -> None:
    db = tmp_path / "go.db"
    shutil.copy(fixtures / "V_G9_after_migrate_tool.db", db)
    assert repo_alembic("upgrade", "head", db=db).returncode == 0
    connection = duckdb.connect(str(db), read_only=True)
    try:
        rows = connection.execute(
            "SELECT version, name, direction, status, error_message, note FROM migration_history ORDER BY id"
        ).fetchall()
    finally:
        connection.close()
    imported, repair = rows[0], rows[1]
    assert imported[:4] == ("20250801000000", "initial schema", "import", "failed")
    assert "window_start" in imported[4] and "Go migrate tool" in imported[5]
    assert repair[2:4] == ("repair", "success")
    assert "marked 20250801000000 dirty" in repair[5] and "rolled back" in repair[5]
    assert [r[2] for r in rows[2:]] == ["baseline", "up", "up", "up"]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("kind", ["go tool baseline", "not ccdash", "empty but foreign"])
def test_refused_files_stay_byte_identical(kind: str, fixtures: Path, tmp_path: Path) -> None:
    db = tmp_path / "refused.db"
    if kind == "go tool baseline":
        shutil.copy(fixtures / "V_migrate_tool_first.db", db)
    else:
        connection = duckdb.connect(str(db))
        if kind == "not ccdash":
            connection.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body VARCHAR)")
            connection.execute("INSERT INTO notes VALUES (1, 'mine')")
        else:
            connection.execute("CREATE TABLE sessions (id VARCHAR PRIMARY KEY, started TIMESTAMP)")
        connection.close()
    digest, modified = _sha(db), db.stat().st_mtime_ns

    for command in (["upgrade", "head"], ["upgrade", BASELINE]):
        result = repo_alembic(*command, db=db)
        assert result.returncode == NOT_CCDASH, result.stderr
        [line] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert "cannot be adopted" in line and "nothing was changed" in line
    dry = repo_alembic("baseline", "--dry-run", db=db, command="ccdash-migrate")
    assert dry.returncode == NOT_CCDASH
    assert _sha(db) == digest and db.stat().st_mtime_ns == modified
    assert not Path(str(db) + ".wal").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["refused.db"]  # no backup left beside it


def test_going_below_an_adopted_baseline_is_refused_unless_said(fixtures: Path, tmp_path: Path) -> None:
    """The baseline adopted CCDash's tables; it did not create them, so its downgrade must not drop them."""
    db = tmp_path / "ccdash.db"
    shutil.copy(fixtures / "G4.db", db)
    assert repo_alembic("upgrade", "head", db=db).returncode == 0
    assert repo_alembic("downgrade", BASELINE, db=db).returncode == 0
    digest = _sha(db)
    refused = repo_alembic("downgrade", "base", db=db)
    assert refused.returncode == ExitCode.DATA_LOSS, refused.stderr
    [line] = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
    assert "adopted" in line and "downgrade_adopted=true" in line and "Traceback" not in refused.stderr
    assert _sha(db) == digest  # a refusal is not a failure: nothing written, not even a history row

    said = repo_alembic("-x", "downgrade_adopted=true", "downgrade", "base", db=db)
    assert said.returncode == 0, said.stderr
    tables = _tables(db)
    assert "sessions" not in tables and "messages" not in tables


def test_going_below_a_baseline_that_created_the_tables_follows_the_usual_rules(tmp_path: Path) -> None:
    db = tmp_path / "ccdash.db"
    assert repo_alembic("upgrade", "head", db=db).returncode == 0
    no_backup = repo_alembic("-x", "backup=false", "downgrade", "base", db=db)
    assert no_backup.returncode == 0, no_backup.stderr  # the tables are empty: nothing to lose
    assert "sessions" not in _tables(db)


def _tables(db: Path) -> set[str]:
    connection = duckdb.connect(str(db), read_only=True)
    try:
        return {r[0] for r in connection.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    finally:
        connection.close()
