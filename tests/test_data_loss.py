"""Data loss, through real ``alembic`` and ``ccdash-migrate`` processes: rows a step loses in raw SQL are found
by counting every table before and after it, and type changes that convert but change values are refused
naming the rows, unless a USING expression says how to convert."""

from __future__ import annotations

import subprocess
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from conftest import Project, digest, snapshot
from shapes import BASE_UPGRADE

from ccdash_alembic.errors import ExitCode

JOBS_UPGRADE = '''
op.execute("""CREATE TABLE jobs (
    id INTEGER PRIMARY KEY, flag INTEGER, ratio DOUBLE, weight DOUBLE, small BIGINT, label VARCHAR, stamp TIMESTAMP,
    amount DECIMAL(10, 2), share REAL, day DATE)""")
op.execute("""INSERT INTO jobs SELECT i,
    CASE WHEN i IN (7, 19, 23) THEN 2 ELSE i % 2 END,
    CASE WHEN i IN (7, 19, 23) THEN i + 0.1 ELSE i END,
    CASE WHEN i IN (7, 19, 23) THEN i + 0.1 ELSE i END,
    CASE WHEN i IN (7, 19, 23) THEN 100000 + i ELSE i END,
    CASE WHEN i IN (7, 19, 23) THEN 'a much longer label' ELSE 'job' || i END,
    TIMESTAMP '2025-01-01' + INTERVAL (i) DAY
        + CASE WHEN i IN (7, 19, 23) THEN INTERVAL 630 MINUTE ELSE INTERVAL 0 MINUTE END,
    i + CASE WHEN i IN (7, 19, 23) THEN 0.25 ELSE 0.5 END,
    i / 4,
    DATE '2025-01-01' + CAST(i AS INTEGER)
    FROM range(1, 121) t(i)""")
'''
BASE = "20250101000001"
STEP = "20250101000002"
NO_BACKUP = ("-x", "backup=false")


def _error(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def _jobs(project: Project, index: str | None = None) -> None:
    """``jobs`` with 120 rows, of which ids 7, 19 and 23 do not survive any of the lossy changes below."""
    extra = f'\nop.execute("CREATE INDEX ix_jobs_{index} ON jobs ({index})")' if index else ""
    project.write_revision(BASE, None, upgrade=JOBS_UPGRADE + extra, message="jobs")
    assert project.alembic("upgrade", "head").returncode == 0


def _step(project: Project, upgrade: str, header: str = "") -> None:
    project.write_revision(STEP, BASE, upgrade=upgrade, message="loses", header=header)


def _note(project: Project) -> object:
    [(note,)] = project.rows(
        f"SELECT note FROM migration_history WHERE version = '{STEP}' AND direction = 'up' AND status = 'success'"
    )
    return note


def _copies(project: Project) -> list[Path]:
    """Every file beside the database (or in folders beside it) that is not the database: its backups."""
    own = {project.db, Path(str(project.db) + ".wal")}
    return [path for path in project.db.parent.rglob("*") if path.is_file() and path not in own]


def _without_history(state: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in state.items() if "migration_history" not in k and k != "sequences"}


# --- rows lost in raw SQL ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("DELETE FROM jobs", "jobs: 120 -> 0 rows"),
        ("DELETE FROM jobs WHERE id > 100", "jobs: 120 -> 100 rows"),
        ("TRUNCATE jobs", "jobs: 120 -> 0 rows"),
        ("DROP TABLE jobs", "jobs: 120 -> 0 rows (table dropped)"),
        # renamed, then a smaller copy under the old name: the rename is followed, the copy is not jobs
        (
            "ALTER TABLE jobs RENAME TO jobs_old; CREATE TABLE jobs AS SELECT * FROM jobs_old WHERE id <= 10; "
            "DROP TABLE jobs_old",
            "jobs: 120 -> 10 rows",
        ),
    ],
)
def test_rows_lost_in_raw_sql_are_refused_without_a_backup(project: Project, sql: str, expected: str) -> None:
    _jobs(project)
    _step(project, "\n".join(f"op.execute({s.strip()!r})" for s in sql.split(";")))
    before = snapshot(project.db)
    refused = project.alembic(*NO_BACKUP, "upgrade", "head")
    assert refused.returncode == ExitCode.DATA_LOSS, refused.stderr
    line = _error(refused)
    assert expected in line and "confirm_data_loss" in line
    assert snapshot(project.db) == before
    assert project.rows("SELECT count(*) FROM jobs") == [(120,)]


def test_every_table_counts_whatever_its_name_or_schema(project: Project) -> None:
    project.write_revision(
        BASE,
        None,
        upgrade="""
            op.execute('CREATE TABLE "we""ird jobs" (id INTEGER)')
            op.execute('INSERT INTO "we""ird jobs" SELECT * FROM range(5)')
            op.execute('CREATE SCHEMA archive')
            op.execute('CREATE TABLE archive.jobs (id INTEGER)')
            op.execute('INSERT INTO archive.jobs SELECT * FROM range(3)')
        """,
        message="odd names",
    )
    _step(project, "op.execute('DELETE FROM \"we\"\"ird jobs\" WHERE id > 0')\nop.execute('DROP TABLE archive.jobs')")
    refused = project.migrate(*NO_BACKUP, "up")  # one run: the first step commits, the second is refused
    assert refused.returncode == ExitCode.DATA_LOSS, refused.stderr
    line = _error(refused)
    assert 'we"ird jobs: 5 -> 1 rows' in line and "archive.jobs: 3 -> 0 rows (table dropped)" in line
    assert project.rows('SELECT (SELECT count(*) FROM "we""ird jobs"), (SELECT count(*) FROM archive.jobs)') == [(5, 3)]
    assert project.rows("SELECT version_num FROM alembic_version") == [(BASE,)]


def test_a_declared_drop_is_named_once(project: Project) -> None:
    _jobs(project)
    _step(project, "op.drop_table('jobs')")
    refused = project.alembic(*NO_BACKUP, "upgrade", "head")
    assert refused.returncode == ExitCode.DATA_LOSS
    line = _error(refused)
    assert "table jobs (120 rows)" in line and "jobs: 120 -> 0 rows" not in line


def test_rows_added_or_moved_by_a_rename_are_not_lost(project: Project) -> None:
    project.log_plans()  # the plans are DEBUG records
    project.write_revision(BASE, None, upgrade=BASE_UPGRADE + JOBS_UPGRADE, message="base")
    assert project.alembic("upgrade", "head").returncode == 0
    _step(
        project,
        """
        op.rename_table('jobs', 'tasks')
        op.rename_table('items', 'products')
        op.execute('ALTER TABLE events RENAME TO happenings')
        op.execute('CREATE TABLE events (id INTEGER)')
        op.execute('INSERT INTO tag_votes SELECT 1, 0 FROM range(5)')
        op.execute('UPDATE owners SET name = upper(name)')
        """,
    )
    result = project.alembic(*NO_BACKUP, "upgrade", "head")
    assert result.returncode == 0, result.stderr
    assert "rebuild change of items" in result.stderr  # items has foreign keys: rebuilt under its new name
    assert project.rows(
        "SELECT (SELECT count(*) FROM tasks), (SELECT count(*) FROM products), (SELECT count(*) FROM happenings),"
        " (SELECT count(*) FROM events), (SELECT count(*) FROM tag_votes)"
    ) == [(120, 50, 20, 0, 155)]
    assert _note(project) is None
    down = project.alembic(*NO_BACKUP, "downgrade", BASE)  # removes its alembic_version row: not counted
    assert down.returncode == 0, down.stderr


def test_with_a_backup_of_the_run_the_loss_goes_ahead_and_is_noted(project: Project) -> None:
    _jobs(project)
    _step(
        project,
        "history.annotate(op.get_context(), 'cleared the queue')\nop.execute('DELETE FROM jobs WHERE id > 20')",
        header="from ccdash_alembic.runtime import history",
    )
    result = project.alembic("upgrade", "head")
    assert result.returncode == 0, result.stderr
    assert project.rows("SELECT count(*) FROM jobs") == [(20,)]
    assert _note(project) == "cleared the queue; data lost (a backup was made before this run): jobs: 120 -> 20 rows"
    kept = []
    for path in _copies(project):
        try:
            copy = duckdb.connect(str(path), read_only=True)
        except duckdb.Error:
            continue  # a manifest, not a database
        try:
            kept.append(copy.execute("SELECT count(*) FROM jobs").fetchone())
        finally:
            copy.close()
    assert kept == [(120,)]


def test_confirmed_the_loss_goes_ahead_and_is_noted(project: Project) -> None:
    _jobs(project)
    _step(project, "op.execute('DROP TABLE jobs')")
    result = project.migrate(*NO_BACKUP, "-x", "confirm_data_loss=true", "up")
    assert result.returncode == 0, result.stderr
    assert _note(project) == "data lost (-x confirm_data_loss=true): jobs: 120 -> 0 rows (table dropped)"


# --- type changes that lose information -------------------------------------------------------------------

LOSSY = [
    ("flag", "sa.Boolean", "3 rows would lose information converting to BOOLEAN"),
    ("ratio", "sa.Integer", "3 rows would lose information converting to INTEGER"),
    ("weight", "sa.Float", "3 rows would lose information converting to FLOAT"),
    ("small", "sa.SmallInteger", "3 rows do not convert to SMALLINT"),
    ("label", "sa.String(8)", "3 rows are longer than 8 characters, the length of VARCHAR(8)"),
    ("stamp", "sa.Date", "3 rows would lose information converting to DATE"),
    ("amount", "sa.Numeric(10, 1)", "3 rows would lose information converting to NUMERIC(10, 1)"),
]
USING = {
    "flag": "flag <> 0",
    "ratio": "round(ratio)",
    "weight": "round(weight)",
    "small": "least(small, 32767)",
    "label": "left(label, 8)",
    "stamp": "CAST(stamp AS DATE)",
    "amount": "round(amount, 1)",
}


@pytest.mark.parametrize("index", [None, "label"], ids=["native", "rebuild"])
@pytest.mark.parametrize(("column", "type_", "problem"), LOSSY, ids=[f"{c}-{t}" for c, t, _ in LOSSY])
def test_a_lossy_type_change_is_refused_naming_the_rows(
    project: Project, index: str | None, column: str, type_: str, problem: str
) -> None:
    _jobs(project, index)
    _step(project, f"op.alter_column('jobs', {column!r}, type_={type_})")
    before = snapshot(project.db)
    refused = project.alembic("upgrade", "head")  # a backup is made: that does not make a lossy cast right
    assert refused.returncode == ExitCode.MIGRATION_FAILED, refused.stderr
    line = _error(refused)
    assert f"cannot change jobs.{column}: {problem} (id 7, 19, 23)" in line
    assert "USING" in line
    assert _without_history(snapshot(project.db)) == _without_history(before)


@pytest.mark.parametrize("index", [None, "label"], ids=["native", "rebuild"])
def test_a_lossy_type_change_with_using_goes_ahead(project: Project, index: str | None) -> None:
    project.log_plans()  # the plans are DEBUG records
    _jobs(project, index)
    body = "\n".join(
        f"op.alter_column('jobs', {column!r}, type_={type_}, duckdb_using={USING[column]!r})"
        for column, type_, _ in LOSSY
    )
    _step(project, body.replace("duckdb_using", "postgresql_using", 1))
    result = project.alembic(*NO_BACKUP, "upgrade", "head")
    assert result.returncode == 0, result.stderr
    assert ("rebuild change of jobs" in result.stderr) == (index is not None)
    assert project.rows("SELECT flag, ratio, weight, small, label, stamp, amount FROM jobs WHERE id = 7") == [
        (True, 7, 7.0, 32767, "a much l", date(2025, 1, 8), Decimal("7.3"))
    ]


def test_a_lossy_type_change_in_a_batch_is_refused(project: Project) -> None:
    _jobs(project)
    _step(
        project,
        """
        with op.batch_alter_table('jobs') as batch:
            batch.alter_column('flag', type_=sa.BigInteger)
            batch.alter_column('ratio', type_=sa.Integer)
        """,
    )
    refused = project.alembic("upgrade", "head")
    assert refused.returncode == ExitCode.MIGRATION_FAILED
    assert "cannot change jobs.ratio: 3 rows would lose information converting to INTEGER (id 7, 19, 23)" in _error(
        refused
    )
    assert project.rows("SELECT data_type FROM duckdb_columns() WHERE column_name = 'flag'") == [("INTEGER",)]


@pytest.mark.parametrize("index", [None, "label"], ids=["native", "rebuild"])
def test_lossless_type_changes_go_ahead(project: Project, index: str | None) -> None:
    _jobs(project, index)
    before = project.rows("SELECT * FROM jobs ORDER BY id")
    _step(
        project,
        """
        op.alter_column('jobs', 'flag', type_=sa.BigInteger)
        op.alter_column('jobs', 'share', type_=sa.Double)
        op.alter_column('jobs', 'small', type_=sa.String)
        op.alter_column('jobs', 'label', type_=sa.Text)
        op.alter_column('jobs', 'amount', type_=sa.Numeric(14, 2))
        op.alter_column('jobs', 'day', type_=sa.DateTime)
        op.alter_column('jobs', 'ratio', type_=sa.String(30))
        """,
    )
    result = project.alembic(*NO_BACKUP, "upgrade", "head")
    assert result.returncode == 0, result.stderr
    types = {
        r[0]: r[1]
        for r in project.rows("SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = 'jobs'")
    }
    assert (types["flag"], types["share"], types["small"], types["day"]) == ("BIGINT", "DOUBLE", "VARCHAR", "TIMESTAMP")
    after = project.rows(
        "SELECT id, flag, CAST(ratio AS DOUBLE), weight, CAST(small AS BIGINT), label, stamp, amount, share,"
        " CAST(day AS DATE) FROM jobs ORDER BY id"
    )
    assert after == before


def test_dropping_data_without_a_backup_needs_confirmation(project: Project) -> None:
    project.write_revision(
        "20250101000001",
        None,
        upgrade=BASE_UPGRADE,
        message="base",
        downgrade="op.drop_table('tag_votes')\nop.drop_column('events', 'payload')",
    )
    assert project.alembic("upgrade", "head").returncode == 0
    before = digest(project.db)
    refused = project.alembic("-x", "backup=false", "downgrade", "base")
    assert refused.returncode == ExitCode.DATA_LOSS
    line = _error(refused)
    assert "table tag_votes (150 rows)" in line and "column events.payload (20 values)" in line
    assert "confirm_data_loss" in line
    assert digest(project.db) == before
    confirmed = project.alembic("-x", "backup=false", "-x", "confirm_data_loss=true", "downgrade", "base")
    assert confirmed.returncode == 0, confirmed.stderr
    assert project.rows("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'tag_votes'") == [(0,)]
