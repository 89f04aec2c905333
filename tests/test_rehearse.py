"""``ccdash-migrate rehearse``: the pending revisions run for real on a copy, with the options ``up`` would use,
and the database keeps its bytes; each revision is reported with what the catalog says it changed."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from conftest import Project, hold
from shapes import BASE_UPGRADE

from ccdash_alembic.errors import ExitCode


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _files(project: Project) -> tuple[str, str | None, int]:
    """The database's digest, its log's (None: no log) and its modification time."""
    wal = Path(f"{project.db}.wal")
    return _sha(project.db), _sha(wal) if wal.exists() else None, project.db.stat().st_mtime_ns


@pytest.fixture
def base(project: Project) -> Project:
    project.write_revision("20250101000001", None, upgrade=BASE_UPGRADE, message="base")
    assert project.alembic("upgrade", "head").returncode == 0
    return project


def test_rehearse_reports_each_revision_and_leaves_the_file_alone(base: Project) -> None:
    base.write_revision(
        "20250101000002",
        "20250101000001",
        upgrade='op.execute("UPDATE events SET payload = upper(payload) WHERE id <= 5")\n'
        'op.execute("DELETE FROM tag_votes WHERE score > 140")',
        message="touch rows",
    )
    base.write_revision(
        "20250101000003", "20250101000002", upgrade="op.execute('SELECT * FROM missing')", message="broken"
    )
    before = _files(base)
    result = base.migrate("rehearse")
    assert result.returncode == ExitCode.MIGRATION_FAILED
    lines = result.stdout.splitlines()
    assert lines[0].startswith("20250101000002  success") and "ms" in lines[0]
    # rows are counted, not compared: the updated events are not a change in rows or schema
    assert lines[1].strip() == "tag_votes 150 -> 140 rows"
    assert lines[2].startswith("20250101000003  failed")
    assert "missing" in lines[3]
    assert _files(base) == before
    assert base.rows("SELECT max(version_num) FROM alembic_version") == [("20250101000001",)]


def test_each_table_is_reported_with_its_rows_and_what_changed_in_its_schema(base: Project) -> None:
    base.write_revision(
        "20250101000002",
        "20250101000001",
        upgrade="""
        op.alter_column("events", "id", type_=sa.BigInteger)
        op.add_column("events", sa.Column("note", sa.String))
        op.create_unique_constraint("uq_events_payload", "events", ["payload"])
        op.create_index("ix_events_payload", "events", ["payload"])
        op.drop_index("ix_items_price", table_name="items")
        op.create_table("widgets", sa.Column("id", sa.Integer, primary_key=True))
        op.execute("INSERT INTO widgets VALUES (1), (2)")
        op.drop_table("tag_votes")
        """,
        message="reshape",
    )
    base.write_revision("20250101000003", "20250101000002", upgrade="pass", message="nothing")
    result = base.migrate("rehearse")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1].strip() == (
        "events 20 rows (column id: INTEGER NOT NULL -> BIGINT NOT NULL, +column note VARCHAR, "
        "+UNIQUE(payload), +index ix_events_payload), items 50 rows (-index ix_items_price), "
        "tag_votes dropped (150 rows), widgets created (2 rows)"
    )
    assert lines[2].startswith("20250101000003  success")
    assert lines[3].strip() == "no table changed its rows or schema"


def test_a_database_held_by_another_process_is_waited_for_and_never_changed(base: Project) -> None:
    """The copy is made under DuckDB's lock: while another process writes, the rehearsal is refused (or waits
    with a lock timeout), as ``up`` is."""
    base.write_revision("20250101000002", "20250101000001", upgrade="op.execute('DELETE FROM events')")
    holder = hold(base.db)
    try:
        refused = base.migrate("-x", "lock_timeout=0", "rehearse")
    finally:
        holder.kill()
        holder.wait()
    assert refused.returncode == ExitCode.LOCKED and "in use by" in refused.stderr, refused.stderr
    assert refused.stdout == ""
    before = _files(base)
    holder = hold(base.db, seconds=2)
    try:
        waited = base.migrate("-x", "lock_timeout=60", "rehearse")
    finally:
        holder.kill()
        holder.wait()
    assert waited.returncode == 0, waited.stderr
    assert "Waiting for" in waited.stderr and "events 20 -> 0 rows" in waited.stdout
    assert _files(base) == before


def test_a_new_database_is_rehearsed_from_nothing_and_not_created(project: Project) -> None:
    project.write_revision("20250101000001", None, upgrade=BASE_UPGRADE, message="base")
    result = project.migrate("rehearse")
    assert result.returncode == 0, result.stderr
    assert "owners created (3 rows)" in result.stdout.splitlines()[1]
    assert not project.db.exists() and not project.db.parent.exists()


def test_rehearse_fails_exactly_where_up_would(base: Project) -> None:
    """``up`` backs an existing database up first, which lets a step drop data; without backups it refuses.
    The rehearsal makes no backup, but decides as ``up`` would."""
    base.write_revision("20250101000002", "20250101000001", upgrade="op.drop_table('tag_votes')", message="drop votes")
    digest = _sha(base.db)
    rehearsed = base.migrate("rehearse")
    assert rehearsed.returncode == 0, rehearsed.stderr
    confirmed = base.migrate("-x", "backup=false", "-x", "confirm_data_loss=true", "rehearse")
    assert confirmed.returncode == 0, confirmed.stderr
    # the same options make up and the rehearsal refuse alike: the data-loss guard, the run's DuckDB settings
    for options, code in ((("-x", "backup=false"), ExitCode.DATA_LOSS), (("-x", "memory_limit=1KB"), None)):
        rehearsed = base.migrate(*options, "rehearse")
        refused = base.migrate(*options, "up")
        assert refused.returncode != 0 and rehearsed.returncode == refused.returncode, (rehearsed, refused)
        assert code is None or refused.returncode == code
        assert _sha(base.db) == digest
    assert "confirm_data_loss" in base.migrate("-x", "backup=false", "rehearse").stderr
    assert base.migrate("up").returncode == 0
