"""A database whose last commits live only in its write-ahead log (``<file>.wal``), as a CCDash process that was
killed leaves it: the log is part of the database for a backup and a rehearsal, and belongs to the replaced
file for a restore. Each test checks that the log is there when the command starts. (A restore over an
existing file: tests/test_backups.py.)"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import duckdb
from conftest import Project

BASE = "20250101000001"


def _three_rows(project: Project) -> None:
    """``ran`` with three rows, written by a run (so the file is checkpointed and has no log)."""
    project.write_revision(
        BASE,
        None,
        "op.execute('CREATE TABLE ran (revision VARCHAR)')\nop.execute(\"INSERT INTO ran VALUES ('1'), ('2'), ('3')\")",
        message="one",
    )
    up = project.migrate("up")
    assert up.returncode == 0, up.stderr
    assert not _wal(project).exists()


def _wal(project: Project) -> Path:
    return Path(f"{project.db}.wal")


def _crash_after(project: Project, sql: str) -> Path:
    """A process that commits ``sql`` and dies: the commit lives only in the write-ahead log."""
    writer = subprocess.run(
        [
            sys.executable,
            "-c",
            "import duckdb, os, signal, sys\n"
            "c = duckdb.connect(sys.argv[1])\nc.execute(sys.argv[2])\n"
            "os.kill(os.getpid(), signal.SIGKILL)\n",
            str(project.db),
            sql,
        ],
        capture_output=True,
    )
    assert writer.returncode == -signal.SIGKILL
    wal = _wal(project)
    assert wal.is_file() and wal.stat().st_size > 0
    return wal


def _rows_in(path: Path) -> int:
    connection = duckdb.connect(str(path), read_only=True)
    try:
        row = connection.execute("SELECT count(*) FROM ran").fetchone()
        return int(row[0]) if row else -1
    finally:
        connection.close()


def test_a_backup_holds_what_only_the_log_holds(project: Project) -> None:
    _three_rows(project)
    _crash_after(project, "INSERT INTO ran VALUES ('4')")

    made = project.migrate("backup")
    assert made.returncode == 0, made.stderr
    copy = Path(made.stdout.strip()) / project.db.name
    assert not Path(f"{copy}.wal").exists()  # one self-contained file
    assert _rows_in(copy) == 4


def test_the_backup_of_a_run_holds_what_only_the_log_holds(project: Project) -> None:
    _three_rows(project)
    _crash_after(project, "INSERT INTO ran VALUES ('4')")
    project.write_revision("20250101000002", BASE, "op.execute('DELETE FROM ran')", message="empty ran")

    up = project.migrate("up")
    assert up.returncode == 0, up.stderr
    [made] = [line.removeprefix("Backup: ") for line in up.stderr.splitlines() if line.startswith("Backup: ")]
    assert _rows_in(Path(made) / project.db.name) == 4
    assert project.rows("SELECT count(*) FROM ran") == [(0,)]


def test_a_rehearsal_runs_on_what_the_log_holds_too(project: Project) -> None:
    _three_rows(project)
    wal = _crash_after(project, "INSERT INTO ran VALUES ('4')")
    project.write_revision(
        "20250101000002", BASE, "op.execute(\"INSERT INTO ran SELECT revision || 'x' FROM ran\")", message="copy ran"
    )
    before = project.db.read_bytes(), wal.read_bytes()

    rehearsed = project.migrate("rehearse")
    assert rehearsed.returncode == 0, rehearsed.stderr
    assert rehearsed.stdout.splitlines()[1].strip() == "ran 4 -> 8 rows"
    assert (project.db.read_bytes(), wal.read_bytes()) == before


def test_restore_over_a_missing_file_removes_its_leftover_log(project: Project) -> None:
    """The database file was removed (damaged, moved away) and its log stayed: DuckDB would replay that log
    onto the restored copy, so the copy takes the file's place without it."""
    _three_rows(project)
    made = project.migrate("backup")
    assert made.returncode == 0, made.stderr
    wal = _crash_after(project, "DELETE FROM ran")
    project.db.unlink()
    assert wal.is_file() and not project.db.exists()

    restored = project.migrate("restore", Path(made.stdout.strip()).name)
    assert restored.returncode == 0, restored.stderr
    assert not wal.exists()
    assert project.rows("SELECT count(*) FROM ran") == [(3,)]
