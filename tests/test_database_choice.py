"""Which database a command works on, how a new file is written, and bad paths."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from conftest import Project

from ccdash_alembic.errors import ExitCode


def _storage_version(path: Path) -> str:
    connection = duckdb.connect(str(path), read_only=True)
    try:
        return connection.execute(
            "SELECT tags['storage_version'] FROM duckdb_databases() WHERE database_name = current_database()"
        ).fetchone()[0]
    finally:
        connection.close()


def _database_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("Database: ")]
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.fixture
def one_revision(project: Project) -> Project:
    project.write_revision("20250101000001", None, upgrade="op.create_table('t', sa.Column('id', sa.Integer))")
    return project


def test_x_db_wins(one_revision: Project, tmp_path: Path) -> None:
    chosen = tmp_path / "chosen.db"
    env = one_revision.env(CCDASH_DB_PATH=str(tmp_path / "env.db"))
    result = one_revision.alembic("upgrade", "head", db=chosen, env=env)
    assert result.returncode == 0, result.stderr
    assert _database_line(result.stderr) == f"Database: {chosen} (from -x db)"
    assert chosen.exists() and not (tmp_path / "env.db").exists()


def test_x_url_is_accepted(one_revision: Project, tmp_path: Path) -> None:
    chosen = tmp_path / "by_url.db"
    result = one_revision.alembic("-x", f"url=duckdb:///{chosen}", "upgrade", "head", pass_db=False)
    assert result.returncode == 0, result.stderr
    assert _database_line(result.stderr) == f"Database: {chosen} (from -x url)"
    assert chosen.exists()


def test_environment_variable_then_default(one_revision: Project, tmp_path: Path) -> None:
    from_env = tmp_path / "env" / "ccdash.db"
    result = one_revision.alembic("upgrade", "head", pass_db=False, env=one_revision.env(CCDASH_DB_PATH=str(from_env)))
    assert result.returncode == 0, result.stderr
    assert _database_line(result.stderr) == f"Database: {from_env} (from CCDASH_DB_PATH)"
    assert from_env.exists()

    default = one_revision.home / ".ccdash" / "ccdash.db"
    assert not default.parent.exists()
    result = one_revision.alembic("upgrade", "head", pass_db=False)
    assert result.returncode == 0, result.stderr
    assert _database_line(result.stderr) == f"Database: {default} (from default)"
    assert default.exists()


def test_every_database_command_names_the_database(one_revision: Project) -> None:
    for command in (["upgrade", "head"], ["current"], ["downgrade", "base"], ["stamp", "head"], ["check"]):
        result = one_revision.alembic(*command)
        assert _database_line(result.stderr) == f"Database: {one_revision.db} (from -x db)", command


def test_new_file_is_readable_by_duckdb_1_1(one_revision: Project) -> None:
    assert one_revision.alembic("upgrade", "head").returncode == 0
    assert _storage_version(one_revision.db) == "v1.0.0+"
    assert one_revision.db.read_bytes()[8:12] == b"DUCK"
    assert int.from_bytes(one_revision.db.read_bytes()[12:20], "little") == 64


def test_storage_compatibility_is_configurable(one_revision: Project) -> None:
    result = one_revision.alembic("-x", "storage_compatibility=latest", "upgrade", "head")
    assert result.returncode == 0, result.stderr
    assert _storage_version(one_revision.db) != "v1.0.0+"


def test_existing_file_keeps_its_format(one_revision: Project) -> None:
    one_revision.db.parent.mkdir(parents=True)
    connection = duckdb.connect(str(one_revision.db))  # DuckDB 2.x's own default format
    connection.execute("CREATE TABLE keep (x INTEGER)")
    connection.close()
    original = _storage_version(one_revision.db)
    assert original != "v1.0.0+"
    assert one_revision.alembic("upgrade", "head").returncode == 0
    assert _storage_version(one_revision.db) == original


def test_unknown_option_is_refused(one_revision: Project) -> None:
    result = one_revision.alembic("-x", "lock_tiemout=3", "upgrade", "head")
    assert result.returncode == ExitCode.USAGE
    assert result.stderr.strip().splitlines()[-1].startswith("error: unknown option 'lock_tiemout'")
    assert not one_revision.db.exists()


def test_other_database_kind_is_refused(one_revision: Project) -> None:
    result = one_revision.alembic("-x", "url=mysql://localhost/x", "upgrade", "head", pass_db=False)
    assert result.returncode == ExitCode.USAGE
    assert "only DuckDB and PostgreSQL" in result.stderr.splitlines()[-1]


def test_parent_that_is_a_file_is_refused(one_revision: Project, tmp_path: Path) -> None:
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("x")
    result = one_revision.alembic("upgrade", "head", db=blocker / "ccdash.db")
    assert result.returncode == ExitCode.USAGE
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "is a file, not a folder" in last
    assert blocker.read_text() == "x"


def test_file_that_is_not_a_database_is_refused_unchanged(one_revision: Project, tmp_path: Path) -> None:
    bogus = tmp_path / "notes.db"
    bogus.write_bytes(b"these are notes, not a database\n" * 100)
    before = bogus.read_bytes()
    result = one_revision.alembic("upgrade", "head", db=bogus)
    assert result.returncode == ExitCode.DATABASE_UNUSABLE
    assert "not a readable DuckDB database" in result.stderr.strip().splitlines()[-1]
    assert bogus.read_bytes() == before


def test_new_file_opens_reads_and_writes_in_duckdb_1_1(one_revision: Project, duckdb11_python: Path) -> None:
    from conftest import run_in_duckdb11

    assert one_revision.alembic("upgrade", "head").returncode == 0
    result = run_in_duckdb11(
        duckdb11_python,
        one_revision.db,
        """
        assert duckdb.__version__ == "1.1.3"
        con.execute("INSERT INTO t VALUES (42)")
        print(con.execute("SELECT version_num FROM alembic_version").fetchall())
        print(con.execute("SELECT sum(id) FROM t").fetchall())
        """,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["[('20250101000001',)]", "[(42,)]"]
