"""The safety net, with real processes: concurrent runs, a held file, SIGKILL at many points, non-transactional
revisions and repair, backups and restore, the data-loss guard, rehearsal, validation, the failure hook."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pytest
from conftest import BIN, Project, hold
from shapes import BASE_UPGRADE

from ccdash_alembic.errors import ExitCode

HERE = Path(__file__).parent


def _error(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _counting_revisions(project: Project) -> None:
    """Three revisions that each take a while and leave one row, so double application would show."""
    project.write_revision(
        "20250101000001",
        None,
        upgrade="op.execute('CREATE TABLE ran (revision VARCHAR)')\ntime.sleep(0.5)\n"
        "op.execute(\"INSERT INTO ran VALUES ('1')\")",
        header="import time",
        message="one",
    )
    for n in (2, 3):
        project.write_revision(
            f"2025010100000{n}",
            f"2025010100000{n - 1}",
            upgrade=f"time.sleep(0.5)\nop.execute(\"INSERT INTO ran VALUES ('{n}')\")",
            header="import time",
            message=f"rev {n}",
        )


def test_three_upgraders_at_once_apply_each_revision_once(project: Project) -> None:
    _counting_revisions(project)
    runs = [
        subprocess.Popen(
            [str(BIN / "alembic"), "-x", f"db={project.db}", "upgrade", "head"],
            cwd=project.root,
            env=project.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outcomes = [(run.wait(timeout=120), run.stderr.read() if run.stderr else "") for run in runs]
    assert [code for code, _ in outcomes] == [0, 0, 0], outcomes
    assert sum("Waiting for" in err for _, err in outcomes) >= 1
    assert project.rows("SELECT revision FROM ran ORDER BY 1") == [("1",), ("2",), ("3",)]
    assert project.rows("SELECT version, count(*) FROM migration_history GROUP BY 1 ORDER BY 1") == [
        ("20250101000001", 1),
        ("20250101000002", 1),
        ("20250101000003", 1),
    ]


def test_a_held_file_is_waited_for_then_reported(project: Project) -> None:
    _counting_revisions(project)
    assert project.alembic("upgrade", "20250101000001").returncode == 0
    before = _sha(project.db)
    holder = hold(project.db, 30)
    try:
        started = time.monotonic()
        result = project.alembic("-x", "lock_timeout=1.5", "upgrade", "head")
        waited = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == ExitCode.LOCKED
    line = _error(result)
    assert str(project.db) in line and f"(PID {holder.pid})" in line and "python" in line
    assert "stayed in use for 1.5 s" in line and "lock_timeout" in line
    assert 1.5 <= waited < 20
    assert _sha(project.db) == before


def test_a_lock_released_within_the_timeout_lets_the_run_go_on(project: Project) -> None:
    _counting_revisions(project)
    project.db.parent.mkdir(parents=True)
    duckdb.connect(str(project.db)).close()
    holder = hold(project.db, 2)
    try:
        result = project.alembic("upgrade", "head")
    finally:
        holder.wait()
    assert result.returncode == 0, result.stderr
    assert "Waiting for" in result.stderr and f"(PID {holder.pid})" in result.stderr


# --- crashes ----------------------------------------------------------------------------------------------

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
    return subprocess.run(
        [
            sys.executable,
            str(HERE / "killer.py"),
            str(point),
            "-x",
            f"db={project.db}",
            *UNGUARDED,
            "upgrade",
            "head",
        ],
        cwd=project.root,
        env=project.env(),
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize(
    "points", [pytest.param(24, id="24-points"), pytest.param(0, id="every-statement", marks=pytest.mark.slow)]
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
        run = subprocess.Popen(
            [str(BIN / "alembic"), "-x", f"db={project.db}", *UNGUARDED, "upgrade", "head"],
            cwd=project.root,
            env=project.env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(chooser.uniform(0.2, duration))
        run.kill()
        run.wait()
        _assert_consistent(_state(project.db), rows=(3, 50, 100, 2000150))
        assert project.alembic(*UNGUARDED, "upgrade", "head").returncode == 0


# --- non-transactional revisions, dirty mark, repair -------------------------------------------------------


def test_a_failed_non_transactional_revision_leaves_a_dirty_mark_until_repair(project: Project) -> None:
    project.write_revision("20250101000001", None, upgrade="op.execute('CREATE TABLE log (n INTEGER)')")
    project.write_revision(
        "20250101000002",
        "20250101000001",
        upgrade="op.execute('INSERT INTO log VALUES (1)')\nop.execute('INSERT INTO nowhere VALUES (2)')",
        header="transactional = False",
        message="outside",
    )
    project.write_revision("20250101000003", "20250101000002", message="after")
    failed = project.alembic("upgrade", "head")
    assert failed.returncode == ExitCode.MIGRATION_FAILED
    assert project.rows("SELECT n FROM log") == [(1,)]  # committed as it went: not rolled back
    assert project.rows("SELECT version, dirty FROM schema_version") == [("20250101000002", True)]

    for command in (["upgrade", "head"], ["downgrade", "base"]):
        refused = project.alembic(*command)
        assert refused.returncode == ExitCode.DIRTY
        assert "marked dirty: revision 20250101000002" in _error(refused) and "repair" in _error(refused)

    repaired = project.migrate("repair")
    assert repaired.returncode == 0, repaired.stderr
    assert "cleared the dirty mark of revision 20250101000002" in repaired.stdout.lower()
    assert project.rows("SELECT version, dirty FROM schema_version") == [("20250101000001", False)]
    assert project.rows("SELECT direction, note LIKE 'cleared%' FROM migration_history ORDER BY id DESC LIMIT 1") == [
        ("repair", True)
    ]
    (project.versions / "20250101000002_outside.py").write_text(
        (project.versions / "20250101000002_outside.py").read_text().replace("nowhere", "log")
    )
    again = project.alembic("-x", "accept_changed=true", "upgrade", "head")
    assert again.returncode == 0, again.stderr
    assert project.rows("SELECT version, dirty FROM schema_version") == [("20250101000003", False)]


def test_a_dirty_mark_at_head_refuses_every_run_that_would_change_the_database(project: Project) -> None:
    project.write_revision("20250101000001", None, upgrade="op.execute('CREATE TABLE log (n INTEGER)')")
    project.write_revision(
        "20250101000002",
        "20250101000001",
        upgrade="op.execute('INSERT INTO log VALUES (1)')\nop.execute('INSERT INTO nowhere VALUES (2)')",
        header="transactional = False",
        message="outside",
    )
    failed = project.alembic("upgrade", "head")
    assert failed.returncode == ExitCode.MIGRATION_FAILED
    line = _error(failed)
    assert "Nothing of that step was applied" not in line
    assert "stay applied" in line and "marked dirty" in line and "repair" in line
    # the failing revision's file is fixed to do nothing: the graph is at head, the mark is still there
    (project.versions / "20250101000002_outside.py").unlink()
    digest = _sha(project.db)
    for command in (["upgrade", "head"], ["stamp", "20250101000001"], ["downgrade", "base"]):
        refused = project.alembic(*command)
        assert refused.returncode == ExitCode.DIRTY, (command, refused.stderr)
        assert "marked dirty" in _error(refused)
    assert _sha(project.db) == digest
    current = project.alembic("current")
    assert current.returncode == 0 and "20250101000001" in current.stdout


def test_a_successful_non_transactional_revision_is_clean(project: Project) -> None:
    project.write_revision(
        "20250101000001",
        None,
        upgrade="op.execute('CREATE TABLE log (n INTEGER)')\nop.execute('CHECKPOINT')",
        header="transactional = False",
    )
    assert project.alembic("upgrade", "head").returncode == 0
    assert project.rows("SELECT version, dirty FROM schema_version") == [("20250101000001", False)]
    assert project.rows("SELECT direction, status FROM migration_history") == [("up", "success")]


# --- data-loss guard -----------------------------------------------------------------------------------------


def test_dropping_data_without_a_backup_needs_confirmation(project: Project) -> None:
    project.write_revision(
        "20250101000001",
        None,
        upgrade=BASE_UPGRADE,
        message="base",
        downgrade="op.drop_table('tag_votes')\nop.drop_column('events', 'payload')",
    )
    assert project.alembic("upgrade", "head").returncode == 0
    before = _sha(project.db)
    refused = project.alembic("-x", "backup=false", "downgrade", "base")
    assert refused.returncode == ExitCode.DATA_LOSS
    line = _error(refused)
    assert "table tag_votes (150 rows)" in line and "column events.payload (20 values)" in line
    assert "confirm_data_loss" in line
    assert _sha(project.db) == before
    confirmed = project.alembic("-x", "backup=false", "-x", "confirm_data_loss=true", "downgrade", "base")
    assert confirmed.returncode == 0, confirmed.stderr
    assert project.rows("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'tag_votes'") == [(0,)]


# --- validate --------------------------------------------------------------------------------------------------


def test_validate_finds_what_is_wrong(project: Project) -> None:
    _counting_revisions(project)
    clean = project.migrate("validate")
    assert clean.returncode == 0 and "3 revisions: no findings" in clean.stdout
    assert project.alembic("upgrade", "head").returncode == 0

    one = project.versions / "20250101000001_one.py"
    one.write_text(one.read_text() + "\n# edited\n")
    changed = project.migrate("validate")
    assert changed.returncode == ExitCode.CHECKSUM_MISMATCH
    assert (
        _finding(changed.stdout, "checksum", "20250101000001") == "20250101000001_one.py changed after it was applied"
    )

    project.write_revision("20250101000009", "20240101000000", message="orphan")
    project.write_revision("20250101000004", "20250101000003", message="fork a")
    project.write_revision("20250101000005", "20250101000003", message="fork b")
    (project.versions / "20250101000005_fork_b.up.sql").write_text("CREATE TABLE ok (x INTEGER);\nSELEC 1;\n")
    (project.versions / "badly named.py").write_text("revision = '20250101000006'\ndown_revision = '20250101000005'\n")
    found = project.migrate("validate")
    assert found.returncode == ExitCode.CHECKSUM_MISMATCH  # drift outranks the other findings
    out = found.stdout
    assert "names a parent 20240101000000 that does not exist" in out
    assert "3 heads" in out
    assert _finding(out, "sql", "20250101000005_fork_b.up.sql").startswith("DuckDB cannot parse it")
    assert _finding(out, "file", "badly named.py") == "is not named <14-digit UTC timestamp>_<slug>.py"

    one.write_text(one.read_text().replace("\n# edited\n", ""))
    (project.versions / "badly named.py").unlink()
    still = project.migrate("validate")
    assert still.returncode == ExitCode.INVALID_REVISIONS


def _finding(table: str, kind: str, subject: str) -> str:
    """The message of one finding in validate's piped table (columns ``Kind  Subject  Finding``)."""
    header, *rows = table.splitlines()
    subject_at, message_at = header.index("Subject"), header.index("Finding")
    found = [r for r in rows if r.startswith(kind + " ") and r[subject_at:message_at].strip() == subject]
    assert len(found) == 1, table
    return found[0][message_at:].strip()


# --- failure hook, bad input -------------------------------------------------------------------------------------


def test_on_failure_command_gets_the_revision_error_and_database(project: Project, tmp_path: Path) -> None:
    report = tmp_path / "alert.txt"
    project.write_revision("20250101000001", None, upgrade="raise RuntimeError('disk on fire')", message="bad")
    hook = f'echo "$CCDASH_MIGRATE_REVISION|$CCDASH_MIGRATE_ERROR|$CCDASH_MIGRATE_DATABASE" > {report}'
    result = project.alembic("-x", f"on_failure={hook}", "upgrade", "head")
    assert result.returncode == ExitCode.MIGRATION_FAILED
    revision, error, database = report.read_text().strip().split("|")
    assert revision == "20250101000001" and "disk on fire" in error and database == str(project.db)


def test_revision_file_with_a_syntax_error(project: Project) -> None:
    project.write_revision("20250101000001", None, message="fine")
    assert project.alembic("upgrade", "head").returncode == 0
    before = _sha(project.db)
    (project.versions / "20250101000002_broken.py").write_text(
        "revision = '20250101000002'\ndown_revision = '20250101000001'\ndef upgrade(:\n    pass\n"
    )
    result = project.alembic("upgrade", "head")
    assert result.returncode == ExitCode.INVALID_REVISIONS
    assert "20250101000002_broken.py has a syntax error at line 3" in _error(result)
    assert "Traceback" not in result.stderr
    assert _sha(project.db) == before


def test_truncated_database_file(project: Project) -> None:
    project.write_revision("20250101000001", None, upgrade=BASE_UPGRADE, message="base")
    assert project.alembic("upgrade", "head").returncode == 0
    data = project.db.read_bytes()
    project.db.write_bytes(data[: len(data) // 3])
    before = _sha(project.db)
    for command in (["current"], ["upgrade", "head"]):
        result = project.alembic(*command)
        assert result.returncode == ExitCode.DATABASE_UNUSABLE
        assert "is truncated" in _error(result) or "not a readable DuckDB database" in _error(result)
    assert _sha(project.db) == before


@contextmanager
def _read_only_folder(path: Path) -> Iterator[str]:
    """A folder nobody, root included, can create files in: a read-only mount or an immutable folder for root
    (who ignores permissions), plain permissions otherwise."""
    path.mkdir()
    if os.getuid() != 0:
        path.chmod(0o555)
        yield "Permission denied"
        path.chmod(0o755)
        return
    if (
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1M,ro", "tmpfs", str(path)], capture_output=True).returncode
        == 0
    ):
        try:
            yield "Read-only file system"
        finally:
            subprocess.run(["umount", str(path)], check=True)
        return
    if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode == 0:
        try:
            yield "Operation not permitted"
        finally:
            subprocess.run(["chattr", "-i", str(path)], check=True)
        return
    pytest.skip("this machine lets root write everywhere: no read-only mount, no immutable folder")


def test_path_in_a_read_only_directory(project: Project, tmp_path: Path) -> None:
    project.write_revision("20250101000001", None, message="fine")
    with _read_only_folder(tmp_path / "locked") as reason:
        result = project.alembic("upgrade", "head", db=tmp_path / "locked" / "ccdash.db")
        assert result.returncode == ExitCode.DATABASE_UNUSABLE, result.stderr
        line = _error(result)
        assert "cannot open" in line and reason in line
        assert list((tmp_path / "locked").iterdir()) == []


# --- revisions that end their own transaction ----------------------------------------------------------------


def _with_rows(project: Project) -> None:
    project.write_revision(
        "20250101000001", None, "op.execute('CREATE TABLE t (n INTEGER)')\nop.execute('INSERT INTO t VALUES (1), (2)')"
    )
    assert project.alembic("upgrade", "head").returncode == 0


def test_a_commit_statement_in_a_revision_is_refused_before_anything_commits(project: Project) -> None:
    _with_rows(project)
    project.write_revision(
        "20250101000002", "20250101000001", "op.execute('DELETE FROM t')\nop.execute('COMMIT')", message="wipe"
    )
    refused = project.alembic("-x", "backup=false", "upgrade", "head")
    assert refused.returncode == ExitCode.MIGRATION_FAILED
    assert "'COMMIT' manages the transaction" in _error(refused)
    assert project.rows("SELECT count(*) FROM t") == [(2,)]
    assert project.rows("SELECT version, dirty FROM schema_version") == [("20250101000001", False)]


@pytest.mark.parametrize("then_fail", [False, True], ids=["then-succeed", "then-fail"])
def test_a_revision_that_commits_through_its_connection_leaves_the_dirty_mark(
    project: Project, then_fail: bool
) -> None:
    """What a revision committed itself cannot be rolled back: the run says so and marks the database dirty,
    whatever happens after the commit, so nothing runs on until someone has looked."""
    _with_rows(project)
    after = "op.execute('SELECT * FROM nowhere')" if then_fail else "pass"
    project.write_revision(
        "20250101000002",
        "20250101000001",
        f"op.execute('DELETE FROM t')\nop.get_bind().commit()\n{after}",
        message="wipe",
    )
    project.write_revision("20250101000003", "20250101000002", message="later")
    failed = project.alembic("-x", "backup=false", "upgrade", "head")
    assert failed.returncode == ExitCode.MIGRATION_FAILED
    line = _error(failed)
    assert "Nothing of that step was applied" not in line and "marked dirty" in line and "committed" in line
    assert project.rows("SELECT count(*) FROM t") == [(0,)]  # the commit happened: said, not hidden
    assert project.rows("SELECT version, dirty FROM schema_version") == [("20250101000002", True)]
    assert project.rows("SELECT version_num FROM alembic_version") == [("20250101000001",)]
    assert project.alembic("upgrade", "head").returncode == ExitCode.DIRTY


def test_stamp_purge_is_refused_before_it_empties_the_version_table(project: Project) -> None:
    project.write_revision("20250101000001", None, upgrade="op.execute('CREATE TABLE log (n INTEGER)')")
    project.write_revision(
        "20250101000002",
        "20250101000001",
        upgrade="op.execute('INSERT INTO log VALUES (1)')\nop.execute('INSERT INTO nowhere VALUES (2)')",
        header="transactional = False",
        message="outside",
    )
    assert project.alembic("upgrade", "20250101000001").returncode == 0
    unknown = project.alembic("stamp", "--purge", "20991231000000")
    assert unknown.returncode != 0
    assert project.rows("SELECT version_num FROM alembic_version") == [("20250101000001",)]
    assert project.alembic("upgrade", "head").returncode == ExitCode.MIGRATION_FAILED  # now dirty
    for destination in ("head", "base", "20250101000001"):
        refused = project.alembic("stamp", "--purge", destination)
        assert refused.returncode == ExitCode.DIRTY, refused.stderr
        assert project.rows("SELECT version_num FROM alembic_version") == [("20250101000001",)]
