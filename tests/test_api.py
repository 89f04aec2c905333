"""The Python API CCDash's start-up calls: ``ccdash_alembic.upgrade()`` and ``status()``."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from conftest import Project, hold, items_revisions
from docblocks import block

import ccdash_alembic
from ccdash_alembic.errors import ExitCode, Locked, MigrationFailed, UsageError


def test_upgrade_returns_what_it_did(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    items_revisions(project, count=2)
    ini = project.root / "alembic.ini"
    first = ccdash_alembic.upgrade(project.db, config_file=ini)
    assert first.before == () and first.after == ("20250101000002",)
    assert [(s.version, s.direction, s.status) for s in first.steps] == [
        ("20250101000001", "up", "success"),
        ("20250101000002", "up", "success"),
    ]
    assert first.backup is None and first.changed  # a new file has nothing to back up

    again = ccdash_alembic.upgrade(project.db, config_file=ini)
    assert not again.changed and again.before == again.after == ("20250101000002",)

    project.write_revision("20250101000003", "20250101000002", "op.create_index('ix', 'items', ['name'])", message="3")
    third = ccdash_alembic.upgrade(project.db, config_file=ini, backup_keep=2)
    assert [s.version for s in third.steps] == ["20250101000003"]
    assert third.backup is not None and third.backup.exists() and third.backup.parent == project.db.parent

    state = ccdash_alembic.status(project.db, config_file=ini)
    assert state.current == ["20250101000003"] and state.pending == [] and state.dirty is None
    assert [s.version for s in state.history] == ["20250101000001", "20250101000002", "20250101000003"]
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""  # the application's output is its own


def test_upgrade_raises_typed_errors_and_changes_nothing(project: Project) -> None:
    items_revisions(project, count=2)
    ini = project.root / "alembic.ini"
    ccdash_alembic.upgrade(project.db, "20250101000001", config_file=ini)

    holder = hold(project.db)
    try:
        with pytest.raises(Locked) as locked:
            ccdash_alembic.upgrade(project.db, config_file=ini, lock_timeout=0.5)
        state = ccdash_alembic.status(project.db, config_file=ini)
    finally:
        holder.kill()
        holder.wait()
    assert locked.value.exit_code == ExitCode.LOCKED and f"PID {holder.pid}" in str(locked.value)
    assert state.in_use_by is not None and f"PID {holder.pid}" in state.in_use_by

    broken = project.versions / "20250101000002_two.py"
    broken.write_text(broken.read_text().replace("op.add_column(", "raise RuntimeError('no'); op.add_column("))
    with pytest.raises(MigrationFailed) as failed:
        ccdash_alembic.upgrade(project.db, config_file=ini)
    assert "upgrade of revision 20250101000002 (two) failed: no" in str(failed.value)
    assert project.rows("SELECT version_num FROM alembic_version") == [("20250101000001",)]

    with pytest.raises(UsageError, match="unknown option 'colour'"):
        ccdash_alembic.upgrade(project.db, config_file=ini, colour="blue")
    with pytest.raises(UsageError, match="there is no configuration file"):
        ccdash_alembic.upgrade(project.db, config_file=project.root / "missing.ini")
    with pytest.raises(UsageError, match="Can't locate revision"):
        ccdash_alembic.upgrade(project.db, "nosuch", config_file=ini)


STARTUP = """\
import json, sys
import ccdash_alembic
result = ccdash_alembic.upgrade(config_file=sys.argv[1], lock_timeout=60)
print(json.dumps({"before": result.before, "after": result.after, "steps": [s.version for s in result.steps]}))
"""


def test_two_processes_starting_at_once(project: Project) -> None:
    """Both start-ups succeed; the revisions run once; the second waits for the first and finds nothing to do."""
    items_revisions(project, slow=2.0, count=2)
    environment = project.env(CCDASH_DB_PATH=str(project.db))  # the default database, as CCDash's start-up has it
    starts = [
        subprocess.Popen(
            [sys.executable, "-c", STARTUP, str(project.root / "alembic.ini")],
            cwd=project.root,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outcomes = []
    for process in starts:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        outcomes.append(json.loads(out))
    outcomes.sort(key=lambda o: len(o["steps"]), reverse=True)
    assert outcomes[0] == {"before": [], "after": ["20250101000002"], "steps": ["20250101000001", "20250101000002"]}
    assert outcomes[1] == {"before": ["20250101000002"], "after": ["20250101000002"], "steps": []}
    assert project.rows("SELECT version, count(*) FROM migration_history GROUP BY version ORDER BY 1") == [
        ("20250101000001", 1),
        ("20250101000002", 1),
    ]


def test_the_documented_startup_snippet_runs(project: Project) -> None:
    """CCDash's start-up example (docs/ccdash-adoption.md), as written, against the repository's own revisions."""
    snippet = block("docs/ccdash-adoption.md", "startup", "python")
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(snippet)],
        cwd=project.root,
        env=project.env(CCDASH_DB_PATH=str(project.db)),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert project.rows("SELECT count(*) FROM alembic_version") == [(1,)]
