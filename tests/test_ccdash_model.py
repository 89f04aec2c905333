"""The CCDash model at head agrees with what the revisions make, and the --sql script makes the same."""

from __future__ import annotations

from pathlib import Path

import duckdb
import sqlalchemy as sa
from conftest import repo_alembic
from shapes import schema

from ccdash_alembic.ccdash.model import metadata


def test_model_and_upgrade_head_make_the_same_schema(tmp_path: Path) -> None:
    migrated = tmp_path / "migrated.db"
    assert repo_alembic("upgrade", "head", db=migrated).returncode == 0
    created = tmp_path / "created.db"
    metadata.create_all(sa.create_engine(f"duckdb:///{created}", poolclass=sa.NullPool))
    assert schema(created) == schema(migrated)

    check = repo_alembic("check", db=migrated)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "No new upgrade operations detected" in check.stdout + check.stderr


def test_check_notices_a_database_behind_the_model(tmp_path: Path) -> None:
    db = tmp_path / "behind.db"
    assert repo_alembic("upgrade", "20261127020000", db=db).returncode == 0
    check = repo_alembic("check", db=db)
    assert check.returncode != 0


def test_sql_script_makes_the_same_schema_as_the_online_run(tmp_path: Path) -> None:
    script = repo_alembic("upgrade", "head", "--sql", db=tmp_path / "unused.db")
    assert script.returncode == 0, script.stderr
    offline = tmp_path / "offline.db"
    connection = duckdb.connect(str(offline))
    connection.execute(script.stdout)
    connection.close()
    online = tmp_path / "online.db"
    assert repo_alembic("upgrade", "head", db=online).returncode == 0
    assert schema(offline) == schema(online)
