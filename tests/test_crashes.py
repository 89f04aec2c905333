"""Crashes: a run killed with SIGKILL between any two statements, or in the middle of long ones, leaves a file
that opens, whose version tables agree with each other and with what is in it, and that the next run brings to
head."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import duckdb
import forked_commands
import pytest
from conftest import Project
from shapes import BASE_UPGRADE

HERE = Path(__file__).parent

CRASH_REVISIONS = [
    ("20250101000002", "op.alter_column('items', 'qty', type_=sa.BigInteger)"),  # rebuild of a chain of three
    ("20250101000003", "op.execute(\"INSERT INTO events SELECT i, 'late ' || i FROM range(100, 150) t(i)\")"),
    ("20250101000004", "op.add_column('item_tags', sa.Column('weight', sa.Integer, server_default='1'))"),
    ("20250101000005", "op.drop_column('items', 'note')"),
]


UNGUARDED = ("-x", "backup=false", "-x", "confirm_data_loss=true")


def _crash_project(project: Project) -> None:
    project.write_revision("20250101000001", None, upgrade=BASE_UPGRADE, message="base")
    previous = "20250101000001"
    for revision, body in CRASH_REVISIONS:
        project.write_revision(revision, previous, upgrade=body, message=f"crash {revision[-1]}")
        previous = revision


def _state(db: Path) -> dict[str, object]:
    connection = duckdb.connect(str(db))  # must open: the crash left a file DuckDB recovers
    try:

        def one(sql: str) -> object:
            row = connection.execute(sql).fetchone()
            return row[0] if row else None

        return {
            "alembic": one("SELECT max(version_num) FROM alembic_version"),
            "schema_version": connection.execute("SELECT version, dirty FROM schema_version").fetchall(),
            "last_success": one(
                "SELECT version FROM migration_history WHERE direction = 'up' AND status = 'success' "
                "ORDER BY id DESC LIMIT 1"
            ),
            "qty": one("SELECT data_type FROM duckdb_columns() WHERE table_name = 'items' AND column_name = 'qty'"),
            "events": one("SELECT count(*) FROM events"),
            "weight": one("SELECT count(*) FROM duckdb_columns() WHERE column_name = 'weight'"),
            "note": one("SELECT count(*) FROM duckdb_columns() WHERE table_name = 'items' AND column_name = 'note'"),
            "rows": [one(f"SELECT count(*) FROM {t}") for t in ("owners", "items", "item_tags", "tag_votes")],
        }
    finally:
        connection.close()


def _assert_consistent(state: dict[str, object], rows: tuple[int, ...] = (3, 50, 100, 150)) -> None:
    """Version tables agree, every row is there, and each revision's effect is there exactly when it is
    recorded as applied."""
    applied = state["alembic"]
    assert state["schema_version"] == [(applied, False)], state
    assert state["last_success"] == applied, state
    assert state["rows"] == list(rows), state
    assert (state["qty"] == "BIGINT") == (applied >= "20250101000002"), state
    assert state["events"] == (70 if applied >= "20250101000003" else 20), state
    assert state["weight"] == (1 if applied >= "20250101000004" else 0), state
    assert state["note"] == (0 if applied >= "20250101000005" else 1), state


def _kill_points(total: int, count: int) -> list[int]:
    return sorted({1 + round(i * (total - 1) / (count - 1)) for i in range(count)})


def _run_killed(project: Project, point: int) -> subprocess.CompletedProcess[str]:
    """``killer.py`` in a process of its own (a forked child of the suite's pre-imported one), killed by the
    real signal."""
    return forked_commands.run(
        str(HERE / "killer.py"),
        [str(point), "-x", f"db={project.db}", *UNGUARDED, "upgrade", "head"],
        cwd=project.root,
        env=project.env(),
        timeout=300,
    )


@pytest.mark.parametrize(
    "points", [pytest.param(12, id="12-points"), pytest.param(0, id="every-statement", marks=pytest.mark.slow)]
)
def test_sigkill_at_many_points_leaves_a_consistent_file(project: Project, tmp_path: Path, points: int) -> None:
    _crash_project(project)
    assert project.alembic("upgrade", "20250101000001").returncode == 0
    pristine = tmp_path / "pristine.db"
    pristine.write_bytes(project.db.read_bytes())
    counted = _run_killed(project, 0)
    assert counted.returncode == 0, counted.stderr
    total = int(counted.stderr.strip().splitlines()[-1].split()[-1])
    assert total > 50

    killed = 0
    points = points or total
    for point in _kill_points(total, points):
        project.db.write_bytes(pristine.read_bytes())
        Path(str(project.db) + ".wal").unlink(missing_ok=True)
        result = _run_killed(project, point)
        killed += result.returncode == -9
        _assert_consistent(_state(project.db))
        again = project.alembic(*UNGUARDED, "upgrade", "head")
        assert again.returncode == 0, (point, again.stderr)
        final = _state(project.db)
        _assert_consistent(final)
        assert final["alembic"] == "20250101000005"
    assert killed == points


@pytest.mark.slow
def test_sigkill_in_the_middle_of_long_statements(project: Project, tmp_path: Path) -> None:
    """Kills at random moments of a run whose rebuild copies two million rows (mid-statement, mid-commit,
    mid-checkpoint), rather than between statements."""
    import random

    big = BASE_UPGRADE + 'op.execute("INSERT INTO tag_votes SELECT 1 + i % 100, i FROM range(151, 2000151) t(i)")\n'
    project.write_revision("20250101000001", None, upgrade=big, message="base")
    previous = "20250101000001"
    for revision, body in CRASH_REVISIONS:
        project.write_revision(revision, previous, upgrade=body, message=f"crash {revision[-1]}")
        previous = revision
    assert project.alembic("upgrade", "20250101000001").returncode == 0
    pristine = tmp_path / "pristine.db"
    pristine.write_bytes(project.db.read_bytes())
    started = time.monotonic()
    assert project.alembic(*UNGUARDED, "upgrade", "head").returncode == 0
    duration = time.monotonic() - started
    chooser = random.Random(20261127)
    for _ in range(20):
        project.db.write_bytes(pristine.read_bytes())
        Path(str(project.db) + ".wal").unlink(missing_ok=True)
        run = project.start(*UNGUARDED, "upgrade", "head", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(chooser.uniform(0.2, duration))
        run.kill()
        run.wait()
        _assert_consistent(_state(project.db), rows=(3, 50, 100, 2000150))
        assert project.alembic(*UNGUARDED, "upgrade", "head").returncode == 0
