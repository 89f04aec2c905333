"""pytest-alembic's built-in tests pass on CCDash's migrations against a temporary engine (a DuckDB file, or a
database of a PostgreSQL server), and leave the default database alone.

They run as a pytest process of their own (tests/pytest_alembic_suite) with HOME pointed at a folder that
holds a canary database at CCDash's default path, and without ``$CCDASH_DB_PATH``: a run that ignored the
engine pytest-alembic hands over in ``config.attributes`` would migrate (and ``test_up_down_consistency``
would downgrade to base) that canary.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from conftest import REPO

SUITE = Path(__file__).parent / "pytest_alembic_suite"
TESTS = ("test_single_head_revision", "test_upgrade", "test_model_definitions_match_ddl", "test_up_down_consistency")


def _tree(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("engine", ["duckdb", "postgresql"])
def test_pytest_alembic_standard_tests_pass_and_the_default_database_is_untouched(
    tmp_path: Path, request: pytest.FixtureRequest, engine: str
) -> None:
    home = tmp_path / "home"
    canary = home / ".ccdash" / "ccdash.db"
    canary.parent.mkdir(parents=True)
    connection = duckdb.connect(str(canary))
    connection.execute("CREATE TABLE kept (note VARCHAR)")
    connection.execute("INSERT INTO kept VALUES ('put here by hand')")
    connection.close()
    before = _tree(home)

    environment = tmp_path / "environment"  # a copy of the repository's CCDash environment
    environment.mkdir()
    for name in ("alembic.ini", "env.py", "script.py.mako"):
        shutil.copy(REPO / name, environment / name)
    shutil.copytree(REPO / "versions", environment / "versions", ignore=shutil.ignore_patterns("__pycache__"))
    databases = tmp_path / "databases"
    databases.mkdir()

    env = {k: v for k, v in os.environ.items() if k != "CCDASH_DB_PATH"}
    env.update(
        HOME=str(home),
        PYTHONDONTWRITEBYTECODE="1",
        PYTEST_ALEMBIC_ENVIRONMENT=str(environment),
        PYTEST_ALEMBIC_DATABASES=str(databases),
    )
    server = request.getfixturevalue("pg_server") if engine == "postgresql" else None
    if server is not None:  # a database of the test server per test, named after it
        env["PYTEST_ALEMBIC_SERVER"] = server.url().rsplit("/", 1)[0]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-c", str(SUITE / "pytest.ini"), "--rootdir", str(SUITE), "-v", str(SUITE)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    passed = set(re.findall(r"::(\w+) PASSED", result.stdout))
    assert passed == set(TESTS), result.stdout[-6000:] + result.stderr[-3000:]

    assert _tree(home) == before  # the canary, byte for byte, and nothing added beside it
    # the migrations ran on the engines' databases instead: each is at a revision, with its steps recorded
    assert server is None or not any(databases.iterdir())  # on a server: no DuckDB file anywhere
    for name in ("test_upgrade", "test_up_down_consistency"):
        if server is not None:
            assert server.sql("SELECT count(*) > 0 FROM migration_history WHERE status = 'success'", name) == [(True,)]
            assert server.sql("SELECT count(*) FROM alembic_version", name) == [(1,)], name
            continue
        reader = duckdb.connect(str(databases / f"{name}.db"), read_only=True)
        try:
            steps = reader.execute("SELECT count(*) FROM migration_history WHERE status = 'success'").fetchone()
            assert steps is not None and steps[0] > 0, name
            assert reader.execute("SELECT count(*) FROM alembic_version").fetchone() == (1,), name
        finally:
            reader.close()
