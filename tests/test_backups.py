"""Backups and restore, with real files and processes: what a run keeps, what a restore accepts, and that every
copy opens in DuckDB 1.1.3 (CCDash's engine) where it lies."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
from conftest import Project, hold, run_in_duckdb11
from shapes import BASE_UPGRADE

from ccdash_alembic.errors import ExitCode


def _error(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _backups(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.name.endswith(".backup") and p.is_dir())


def _counting(project: Project) -> None:
    """``ran`` gets one row per revision; the second revision adds an index, so copies of the database are
    files DuckDB 1.1 opens only under the database's own file name."""
    project.write_revision(
        "20250101000001",
        None,
        "op.execute('CREATE TABLE ran (revision VARCHAR)')\nop.execute(\"INSERT INTO ran VALUES ('1')\")",
        message="one",
    )
    project.write_revision(
        "20250101000002",
        "20250101000001",
        "op.execute(\"INSERT INTO ran VALUES ('2')\")\nop.create_index('ix_ran', 'ran', ['revision'])",
        "op.drop_index('ix_ran', 'ran')\nop.execute(\"DELETE FROM ran WHERE revision = '2'\")",
        message="two",
    )
    project.write_revision(
        "20250101000003", "20250101000002", "op.execute(\"INSERT INTO ran VALUES ('3')\")", message="three"
    )


def test_upgrades_back_up_first_and_keep_the_newest(project: Project) -> None:
    _counting(project)
    assert project.alembic("upgrade", "20250101000001").returncode == 0
    assert _backups(project.db.parent) == []  # a new database has nothing to back up
    result = project.alembic("-x", "backup_keep=2", "upgrade", "+1")
    assert result.returncode == 0, result.stderr
    [made] = _backups(project.db.parent)
    assert made.name.startswith("ccdash.db.20250101000001.") and f"Backup: {made}" in result.stderr
    manifest = json.loads((made / "backup.json").read_text())
    assert manifest["database"] == str(project.db) and manifest["kind"] == "run"
    assert manifest["database_id"] == project.rows("SELECT database_id FROM schema_version")[0][0]
    copy = duckdb.connect(str(made / "ccdash.db"), read_only=True)
    assert copy.execute("SELECT revision FROM ran").fetchall() == [("1",)]
    assert copy.execute("SELECT version_num FROM alembic_version").fetchall() == [("20250101000001",)]
    copy.close()
    for _ in range(2):
        assert project.alembic("-x", "backup_keep=2", "downgrade", "-1").returncode == 0
        assert project.alembic("-x", "backup_keep=2", "upgrade", "+1").returncode == 0
    kept = _backups(project.db.parent)
    assert len(kept) == 2
    newest = project.alembic("-x", "backup_keep=1", "upgrade", "+1")
    assert newest.returncode == 0
    [only] = _backups(project.db.parent)
    assert f"Backup: {only}" in newest.stderr  # the one this run made is the one kept


def test_a_run_that_changes_nothing_keeps_no_backup(project: Project) -> None:
    _counting(project)
    assert project.alembic("upgrade", "20250101000001").returncode == 0
    project.write_revision("20250101000002", "20250101000001", "op.execute('SELECT * FROM nowhere')", message="broken")
    (project.versions / "20250101000002_two.py").unlink()
    (project.versions / "20250101000003_three.py").unlink()
    failed = project.alembic("upgrade", "head")
    assert failed.returncode == ExitCode.MIGRATION_FAILED
    assert "Backup:" in failed.stderr and _backups(project.db.parent) == []


def test_backups_and_the_database_after_a_run_open_in_duckdb_11_where_they_lie(
    project: Project, duckdb11_python: Path
) -> None:
    _counting(project)
    assert project.alembic("upgrade", "20250101000002").returncode == 0
    assert project.alembic("upgrade", "head").returncode == 0
    [made] = _backups(project.db.parent)
    for db in (made / "ccdash.db", project.db):
        opened = run_in_duckdb11(duckdb11_python, db, "print(con.execute('SELECT count(*) FROM ran').fetchone()[0])")
        assert opened.returncode == 0, opened.stderr
    moved = project.db.parent / "elsewhere.db"
    (made / "ccdash.db").rename(moved)  # the trap the folder avoids: another name
    renamed = run_in_duckdb11(duckdb11_python, moved, "con.execute('SELECT 1')")
    assert "catalog" in renamed.stderr.lower()
    # status and validate say so (and it is a note: validate's exit code is unchanged)
    status = json.loads(project.migrate("status", "--json").stdout)
    assert status["name_bound"] == "ccdash.db"
    validated = project.migrate("validate", "--json")
    assert validated.returncode == 0, validated.stdout
    [note] = json.loads(validated.stdout)["findings"]
    assert note["kind"] == "note" and "only under the name ccdash.db" in note["message"]
    assert project.alembic("downgrade", "20250101000001").returncode == 0  # drops the only index
    assert json.loads(project.migrate("status", "--json").stdout)["name_bound"] is None


def test_restore_round_trip_waits_for_the_file_and_drops_the_replaced_log(project: Project, tmp_path: Path) -> None:
    _counting(project)
    assert project.alembic("upgrade", "head").returncode == 0
    folder = tmp_path / "kept"
    made = project.migrate("-x", f"backup_dir={folder}", "backup")
    assert made.returncode == 0, made.stderr
    backup_path = Path(made.stdout.strip())
    assert backup_path.parent == folder and (backup_path / "ccdash.db").is_file()
    listed = project.migrate("-x", f"backup_dir={folder}", "backup", "--list")
    assert listed.stdout.split() == [str(backup_path)]

    # A process that writes and dies leaves a write-ahead log: it belongs to the file being replaced.
    writer = subprocess.run(
        [
            sys.executable,
            "-c",
            "import duckdb, os, signal, sys\n"
            'c = duckdb.connect(sys.argv[1])\nc.execute("DELETE FROM ran")\n'
            "os.kill(os.getpid(), signal.SIGKILL)\n",
            str(project.db),
        ],
        capture_output=True,
    )
    assert writer.returncode == -signal.SIGKILL
    assert Path(f"{project.db}.wal").exists()

    holder = hold(project.db, 30)
    try:
        refused = project.migrate("-x", f"backup_dir={folder}", "-x", "lock_timeout=0", "restore")
    finally:
        holder.kill()
        holder.wait()
    assert refused.returncode == ExitCode.LOCKED and "in use" in _error(refused)

    assert Path(f"{project.db}.wal").exists()  # still there when the restore starts (the holder kept it)
    restored = project.migrate("-x", f"backup_dir={folder}", "restore", backup_path.name)
    assert restored.returncode == 0, restored.stderr
    assert not Path(f"{project.db}.wal").exists()
    assert project.rows("SELECT count(*) FROM ran") == [(3,)]
    [replaced] = [b for b in _backups(folder) if ".before-restore." in b.name]
    assert f"Kept the replaced file as {replaced}" in restored.stdout
    old = duckdb.connect(str(replaced / "ccdash.db"), read_only=True)  # its log came along: the DELETE
    assert old.execute("SELECT count(*) FROM ran").fetchone() == (0,)
    old.close()
    missing = project.migrate("-x", f"backup_dir={folder}", "restore", "nope.backup")
    assert missing.returncode == ExitCode.USAGE and backup_path.name in _error(missing)


def test_restore_accepts_only_a_backup_of_this_database(project: Project, tmp_path: Path) -> None:
    _counting(project)
    assert project.alembic("upgrade", "head").returncode == 0
    before = _sha(project.db)
    for stranger in ("/etc/hostname", str(tmp_path)):
        refused = project.migrate("restore", stranger)
        assert refused.returncode == ExitCode.USAGE and "not a backup made by ccdash-migrate" in _error(refused)
    # A real backup, of another database that has its own id, moved beside this one under a fitting name.
    other = project.root.parent / "other" / "ccdash.db"
    assert project.alembic("upgrade", "head", db=other).returncode == 0
    assert project.alembic("downgrade", "-1", db=other).returncode == 0
    [foreign] = _backups(other.parent)
    disguised = project.db.parent / foreign.name
    foreign.rename(disguised)
    refused = project.migrate("restore", disguised.name)
    assert refused.returncode == ExitCode.USAGE and "of another database" in _error(refused)
    assert _sha(project.db) == before
    assert [b for b in _backups(project.db.parent) if ".before-restore." in b.name] == []


def test_restore_through_a_symlink_replaces_its_target_and_repairs_a_damaged_file(
    project: Project, tmp_path: Path
) -> None:
    _counting(project)
    real = tmp_path / "volume" / "data.duckdb"  # the link's name differs: DuckDB names the catalog after the link
    real.parent.mkdir()
    link = project.db
    link.parent.mkdir(parents=True)
    link.symlink_to(real)
    assert project.alembic("upgrade", "head").returncode == 0
    assert real.is_file() and link.is_symlink()
    made = project.migrate("-x", "backup_keep=1", "backup")
    assert made.returncode == 0, made.stderr
    assert (Path(made.stdout.strip()) / "ccdash.db").is_file()
    again = project.migrate("-x", "backup_keep=1", "backup")
    assert project.migrate("backup", "--list").stdout.split() == [again.stdout.strip()]  # found, and pruned
    with open(real, "r+b") as damaged:  # a disk error: the blocks after the headers are gone
        damaged.seek(3 * 4096)
        damaged.write(os.urandom(64 * 1024))
    restored = project.migrate("restore")
    assert restored.returncode == 0, restored.stderr
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert project.rows("SELECT count(*) FROM ran") == [(3,)]
    assert not real.with_name("ccdash.db").exists()


def test_a_backup_of_the_run_lets_a_step_drop_data(project: Project) -> None:
    project.write_revision(
        "20250101000001", None, upgrade=BASE_UPGRADE, message="base", downgrade="op.drop_table('tag_votes')"
    )
    assert project.alembic("upgrade", "head").returncode == 0
    result = project.alembic("downgrade", "base")
    assert result.returncode == 0, result.stderr
    [made] = _backups(project.db.parent)
    copy = duckdb.connect(str(made / "ccdash.db"), read_only=True)
    assert copy.execute("SELECT count(*) FROM tag_votes").fetchone() == (150,)
    copy.close()


def test_a_file_duckdb_11_created_is_bound_to_its_name_once_this_tool_changed_it(
    project: Project, duckdb11_python: Path
) -> None:
    """The file header names the release that created a file, not the last to write it: CCDash's files were
    created by DuckDB 1.1, and a run of this tool (DuckDB 2.x) rewrites their indexes under the file's name."""
    project.db.parent.mkdir(parents=True)
    made = run_in_duckdb11(
        duckdb11_python,
        project.db,
        "con.execute('CREATE TABLE t (a INTEGER)')\ncon.execute('CREATE INDEX ix_t ON t (a)')",
    )
    assert made.returncode == 0, made.stderr
    assert json.loads(project.migrate("status", "--json").stdout)["name_bound"] is None
    _counting(project)
    assert project.migrate("up").returncode == 0
    assert json.loads(project.migrate("status", "--json").stdout)["name_bound"] == "ccdash.db"
    copy = project.db.parent / "elsewhere.db"  # and that is what DuckDB 1.1.3 does with it
    copy.write_bytes(project.db.read_bytes())
    assert "catalog" in run_in_duckdb11(duckdb11_python, copy, "con.execute('SELECT 1')").stderr.lower()
