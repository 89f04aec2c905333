"""``ccdash-migrate rehearse``: the pending revisions run for real on a copy, with the options ``up`` would use,
and the database keeps its bytes."""

from __future__ import annotations

import hashlib
from pathlib import Path

from conftest import Project
from shapes import BASE_UPGRADE

from ccdash_alembic.errors import ExitCode


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_rehearse_reports_each_revision_and_leaves_the_file_alone(project: Project) -> None:
    project.write_revision("20250101000001", None, upgrade=BASE_UPGRADE, message="base")
    assert project.alembic("upgrade", "head").returncode == 0
    project.write_revision(
        "20250101000002",
        "20250101000001",
        upgrade='op.execute("UPDATE events SET payload = upper(payload) WHERE id <= 5")\n'
        'op.execute("DELETE FROM tag_votes WHERE score > 140")',
        message="touch rows",
    )
    project.write_revision(
        "20250101000003", "20250101000002", upgrade="op.execute('SELECT * FROM missing')", message="broken"
    )
    digest, modified = _sha(project.db), project.db.stat().st_mtime_ns
    result = project.migrate("rehearse")
    assert result.returncode == ExitCode.MIGRATION_FAILED
    lines = result.stdout.splitlines()
    assert lines[0].startswith("20250101000002  success") and "ms" in lines[0]
    assert lines[1].strip() == "events +5 -5, tag_votes +0 -10"
    assert lines[2].startswith("20250101000003  failed")
    assert "missing" in lines[3]
    assert _sha(project.db) == digest and project.db.stat().st_mtime_ns == modified
    assert project.rows("SELECT max(version_num) FROM alembic_version") == [("20250101000001",)]


def test_rehearse_fails_exactly_where_up_would(project: Project) -> None:
    """``up`` backs an existing database up first, which lets a step drop data; without backups it refuses.
    The rehearsal makes no backup, but decides as ``up`` would."""
    project.write_revision("20250101000001", None, upgrade=BASE_UPGRADE, message="base")
    assert project.alembic("upgrade", "head").returncode == 0
    project.write_revision(
        "20250101000002", "20250101000001", upgrade="op.drop_table('tag_votes')", message="drop votes"
    )
    digest = _sha(project.db)
    rehearsed = project.migrate("rehearse")
    assert rehearsed.returncode == 0, rehearsed.stderr
    confirmed = project.migrate("-x", "backup=false", "-x", "confirm_data_loss=true", "rehearse")
    assert confirmed.returncode == 0, confirmed.stderr
    # the same options make up and the rehearsal refuse alike: the data-loss guard, the run's DuckDB settings
    for options, code in ((("-x", "backup=false"), ExitCode.DATA_LOSS), (("-x", "memory_limit=1KB"), None)):
        rehearsed = project.migrate(*options, "rehearse")
        refused = project.migrate(*options, "up")
        assert refused.returncode != 0 and rehearsed.returncode == refused.returncode, (rehearsed, refused)
        assert code is None or refused.returncode == code
        assert _sha(project.db) == digest
    assert "confirm_data_loss" in project.migrate("-x", "backup=false", "rehearse").stderr
    assert project.migrate("up").returncode == 0
