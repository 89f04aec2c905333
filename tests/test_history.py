"""migration_history and schema_version: one row per step, consistent with alembic_version, timed, checksummed."""

from __future__ import annotations

import hashlib
import time

from conftest import Project

HISTORY_COLUMNS = (
    "id, version, name, direction, applied_at, execution_time_ms, checksum, up_script, down_script, status,"
    " error_message, installed_by, hostname, tool_version"
)


def _three_revisions(project: Project) -> None:
    project.write_revision(
        "20250101000001",
        None,
        upgrade="op.create_table('t', sa.Column('id', sa.Integer, primary_key=True), sa.Column('v', sa.String))",
        downgrade="op.drop_table('t')",
        message="create t",
    )
    project.write_revision(
        "20250101000002",
        "20250101000001",
        upgrade="op.execute(\"INSERT INTO t SELECT count(*) + 1, 'one' FROM t\")",
        downgrade='op.execute("DELETE FROM t")',
        message="fill t",
    )
    project.write_revision(
        "20250101000003",
        "20250101000002",
        upgrade="op.add_column('t', sa.Column('w', sa.Integer))",
        downgrade="op.drop_column('t', 'w')",
        message="add w",
    )


def _history(project: Project) -> list[dict[str, object]]:
    names = [c.strip() for c in HISTORY_COLUMNS.split(",")]
    rows = project.rows(f"SELECT {HISTORY_COLUMNS} FROM migration_history ORDER BY id")
    return [dict(zip(names, row, strict=True)) for row in rows]


def test_each_step_is_one_row_and_schema_version_follows_alembic_version(project: Project) -> None:
    _three_revisions(project)
    assert project.alembic("upgrade", "head").returncode == 0
    assert project.alembic("downgrade", "-1").returncode == 0
    assert project.rows("SELECT version, dirty FROM schema_version") == [("20250101000002", False)]
    assert project.alembic("stamp", "20250101000001").returncode == 0
    assert project.alembic("upgrade", "+1").returncode == 0

    steps = [(r["version"], r["direction"], r["status"]) for r in _history(project)]
    assert steps == [
        ("20250101000001", "up", "success"),
        ("20250101000002", "up", "success"),
        ("20250101000003", "up", "success"),
        ("20250101000003", "down", "rolled_back"),
        ("20250101000001", "stamp", "success"),
        ("20250101000002", "up", "success"),
    ]
    assert project.rows("SELECT version_num FROM alembic_version") == [("20250101000002",)]
    assert project.rows("SELECT version, dirty FROM schema_version") == [("20250101000002", False)]
    # the fill step ran twice (the stamp moved below it), so the row is there twice
    assert project.rows("SELECT count(*) FROM t") == [(2,)]


def test_rows_say_what_ran_who_ran_it_and_its_checksum(project: Project) -> None:
    _three_revisions(project)
    assert project.alembic("upgrade", "head").returncode == 0
    first = _history(project)[0]

    source = (project.versions / "20250101000001_create_t.py").read_bytes()
    assert first["checksum"] == hashlib.sha256(source).hexdigest()
    assert first["name"] == "create t"
    assert "op.create_table('t'" in str(first["up_script"])
    assert "op.drop_table('t')" in str(first["down_script"])
    assert first["error_message"] is None
    assert first["installed_by"] and first["hostname"]
    assert first["tool_version"] == "0.1.0"
    assert first["applied_at"] is not None


def test_execution_time_measures_the_revision_itself(project: Project) -> None:
    project.write_revision("20250101000001", None, upgrade="time.sleep(0.3)", header="import time", message="slow")
    project.write_revision("20250101000002", "20250101000001", message="fast")
    started = time.monotonic()
    assert project.alembic("upgrade", "head").returncode == 0
    whole_run_ms = (time.monotonic() - started) * 1000
    times = dict(project.rows("SELECT version, execution_time_ms FROM migration_history"))
    # the sleep is inside the first step and nowhere else: no bound that depends on the machine's speed
    assert 300 <= times["20250101000001"] < whole_run_ms
    assert times["20250101000002"] < 300


def test_schema_version_is_written_in_the_same_transaction_as_the_step(project: Project) -> None:
    """A step that fails leaves schema_version at the previous revision, like alembic_version."""
    project.write_revision("20250101000001", None, message="ok")
    project.write_revision("20250101000002", "20250101000001", upgrade="raise RuntimeError('boom')", message="bad")
    assert project.alembic("upgrade", "head").returncode != 0
    assert project.rows("SELECT version_num FROM alembic_version") == [("20250101000001",)]
    assert project.rows("SELECT version, dirty FROM schema_version") == [("20250101000001", False)]


def test_schema_version_is_one_row_whose_database_id_is_given_once(project: Project) -> None:
    """The first recorded step inserts the row and gives the database its id; every later step, in this run or
    another, and a failed one, updates that row."""
    _three_revisions(project)
    assert project.alembic("upgrade", "20250101000001").returncode == 0
    [(first_id,)] = project.rows("SELECT database_id FROM schema_version")
    assert first_id
    assert project.alembic("upgrade", "head").returncode == 0
    assert project.alembic("downgrade", "-1").returncode == 0
    project.write_revision("20250101000004", "20250101000003", upgrade="raise RuntimeError('boom')", message="bad")
    assert project.alembic("upgrade", "head").returncode != 0
    assert project.rows("SELECT version, dirty, database_id FROM schema_version") == [
        ("20250101000003", False, first_id)
    ]


def test_checksum_ignores_bom_and_line_endings(project: Project) -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from ccdash_alembic.runtime.checksum import revision_checksum

    path = project.write_revision("20250101000001", None, message="one")
    config = Config(str(project.root / "alembic.ini"))
    before = revision_checksum(ScriptDirectory.from_config(config).get_revision("20250101000001"))
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes().replace(b"\n", b"\r\n"))
    after = revision_checksum(ScriptDirectory.from_config(config).get_revision("20250101000001"))
    assert before == after
    path.write_bytes(path.read_bytes() + b"# edit\r\n")
    edited = revision_checksum(ScriptDirectory.from_config(config).get_revision("20250101000001"))
    assert edited != before


def test_sql_mode_prints_a_script_that_does_what_the_online_run_does(project: Project, tmp_path) -> None:
    _three_revisions(project)
    result = project.alembic("upgrade", "head", "--sql")
    assert result.returncode == 0, result.stderr
    assert "INSERT INTO migration_history" in result.stdout and "INSERT INTO schema_version" in result.stdout

    import duckdb

    copy = tmp_path / "offline.db"
    connection = duckdb.connect(str(copy))
    connection.execute(result.stdout)
    offline = connection.execute("SELECT version, direction, status FROM migration_history ORDER BY id").fetchall()
    versions = connection.execute("SELECT version, dirty FROM schema_version").fetchall()
    rows = connection.execute("SELECT * FROM t").fetchall()
    connection.close()

    assert project.alembic("upgrade", "head").returncode == 0
    assert offline == project.rows("SELECT version, direction, status FROM migration_history ORDER BY id")
    assert versions == project.rows("SELECT version, dirty FROM schema_version")
    assert rows == project.rows("SELECT * FROM t")
