"""Bad input, one line each; refusals change nothing.

Every case runs the real ``ccdash-migrate`` (or ``alembic``) in a subprocess and checks, from outside: the exit
code the README's table gives, exactly one ``error:`` line on stderr (besides the ``Database:`` line and
Alembic's own log lines) and no traceback, and the database's folder byte for byte as it was (no new log,
backup or file beside it).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import resource
import signal
import socket
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pytest
from conftest import (
    BIN,
    Project,
    database_template,
    digest,
    error_line,
    hold,
    items_revisions,
    repo_alembic,
    use_database,
)
from shapes import BASE_UPGRADE

from ccdash_alembic.ccdash.errors import NOT_CCDASH
from ccdash_alembic.errors import ExitCode
from ccdash_alembic.runtime import database
from ccdash_alembic.runtime.settings import Settings

EVERY_COMMAND = (["status"], ["history"], ["up"], ["down"], ["validate"])
R1, R2, R3 = "20250101000001", "20250101000002", "20250101000003"


def _error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The one line a refusal prints: stderr holds it, at most the ``Database:`` line, and what a run says
    before it fails (``Backup: ...``, a line per step that ran, Alembic's log lines); never a traceback."""
    assert "Traceback" not in result.stderr, result.stderr
    progress = ("Database: ", "INFO  [alembic", "Backup: ", "Applied ", "Reverted ", "Stamped ", "Adopted ")
    others = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith(progress)]
    assert len(others) == 1, result.stderr
    assert others[0].startswith("error: "), result.stderr
    assert sum(line.startswith("Database: ") for line in result.stderr.splitlines()) <= 1, result.stderr
    return others[0]


def _refused(result: subprocess.CompletedProcess[str], code: int, *words: str) -> str:
    assert result.returncode == code, (result.returncode, result.stderr)
    line = _error_line(result)
    for word in words:
        assert word in line, line
    return line


def _contents(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (recursively) with a digest of its bytes: equal means nothing was written,
    added (a ``.wal``, a backup) or removed."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "folder"
        for path in sorted(folder.rglob("*"))
    }


def _apply(project: Project) -> None:
    items_revisions(project)
    result = project.migrate("upgrade", R2)
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module")
def applied_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return database_template(tmp_path_factory, _apply)


@pytest.fixture
def applied(project: Project, applied_data: Path) -> Project:
    """Three revisions, the first two applied (so ``up`` and ``down`` both have something to do)."""
    items_revisions(project)
    use_database(project, applied_data)
    return project


# --- 1, 2: which database ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", EVERY_COMMAND, ids=" ".join)
@pytest.mark.parametrize("option", ["db=", "url=", "db"])
def test_an_empty_database_option_never_falls_back_to_the_default(
    project: Project, command: list[str], option: str
) -> None:
    """``-x db=$UNSET`` must not migrate ~/.ccdash/ccdash.db, nor $CCDASH_DB_PATH."""
    items_revisions(project)
    fallback = project.root.parent / "env.db"
    result = project.migrate("-x", option, *command, pass_db=False, env=project.env(CCDASH_DB_PATH=str(fallback)))
    _refused(result, ExitCode.USAGE, "is empty")
    assert not (project.home / ".ccdash").exists()
    assert not fallback.exists()


@pytest.mark.parametrize("command", EVERY_COMMAND, ids=" ".join)
def test_an_empty_environment_variable_never_falls_back_to_the_default(project: Project, command: list[str]) -> None:
    items_revisions(project)
    result = project.migrate(*command, pass_db=False, env=project.env(CCDASH_DB_PATH=""))
    _refused(result, ExitCode.USAGE, "CCDASH_DB_PATH is set but empty")
    assert not (project.home / ".ccdash").exists()


@pytest.mark.parametrize("command", [["status"], ["up"], ["validate"]], ids=" ".join)
@pytest.mark.parametrize(
    "option",
    [
        "db=:memory:",
        "db=md:x",
        "db=motherduck:x",
        "url=duckdb:///:memory:",
        "url=duckdb:///md:x",
        "url=duckdb://",
    ],
)
def test_in_memory_and_remote_databases_are_refused(project: Project, command: list[str], option: str) -> None:
    items_revisions(project)
    before = _contents(project.root)
    result = project.migrate("-x", option, *command, pass_db=False)
    _refused(result, ExitCode.USAGE, option.split("=", 1)[1] or "duckdb://")
    assert _contents(project.root) == before  # no ":memory:" or "md:x" file made in the current folder
    assert not (project.home / ".ccdash").exists()


def test_a_file_named_with_a_colon_is_reached_as_a_relative_path(project: Project) -> None:
    items_revisions(project, count=1)
    result = project.migrate("-x", "db=./md:x", "up", pass_db=False)
    assert result.returncode == 0, result.stderr
    assert (project.root / "md:x").is_file()


# --- 3, 4, 11: files that are not DuckDB databases --------------------------------------------------------------


def _not_duckdb(path: Path, kind: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "sqlite":
        connection = sqlite3.connect(path)
        connection.execute("CREATE TABLE sessions (id TEXT)")
        connection.commit()
        connection.close()
    elif kind == "random":
        path.write_bytes(os.urandom(64 * 1024))
    elif kind == "text":
        path.write_text("these are notes, not a database\n" * 300)


@pytest.mark.parametrize("command", EVERY_COMMAND, ids=" ".join)
@pytest.mark.parametrize("kind", ["empty", "sqlite", "random", "text"])
def test_a_file_that_is_not_a_duckdb_database_gets_one_answer_from_every_command(
    project: Project, command: list[str], kind: str
) -> None:
    items_revisions(project)
    _not_duckdb(project.db, kind)
    before = _contents(project.db.parent)
    result = project.migrate(*command)
    line = _refused(result, ExitCode.DATABASE_UNUSABLE)
    assert ("an empty file" in line) if kind == "empty" else ("not a" in line and "DuckDB database" in line)
    assert _contents(project.db.parent) == before
    # DuckDB recognises a SQLite file and would fetch the extension that reads it: nothing was installed
    assert not (project.home / ".duckdb").exists()


def test_stock_alembic_refuses_an_empty_file_too(project: Project) -> None:
    items_revisions(project)
    _not_duckdb(project.db, "empty")
    for command in (["current"], ["upgrade", "head"]):
        _refused(project.alembic(*command), ExitCode.DATABASE_UNUSABLE, "an empty file")
    assert project.db.read_bytes() == b""


def test_connections_to_a_users_file_never_load_extensions(project: Project) -> None:
    """Every engine this tool opens on a user's file has DuckDB's extension autoloading and autoinstalling off
    (so DuckDB downloads nothing while opening a file it takes for another format)."""
    project.db.parent.mkdir(parents=True)
    duckdb.connect(str(project.db)).close()
    target = database.resolve(Settings(db=str(project.db)))
    for engine in (database.create_engine(target, Settings()), database.read_only_engine(target)):
        with database.connect(engine, target) as connection:
            settings: dict[str, str] = dict(
                connection.exec_driver_sql(
                    "SELECT name, value FROM duckdb_settings()"
                    " WHERE name IN ('autoload_known_extensions', 'autoinstall_known_extensions')"
                ).fetchall()
            )
        assert settings == {"autoload_known_extensions": "false", "autoinstall_known_extensions": "false"}


@pytest.mark.parametrize("command", EVERY_COMMAND, ids=" ".join)
def test_a_folder_as_the_database_gets_one_answer_from_every_command(project: Project, command: list[str]) -> None:
    items_revisions(project)
    project.db.mkdir(parents=True)
    (project.db / "inside.txt").write_text("x")
    before = _contents(project.db.parent)
    _refused(project.migrate(*command), ExitCode.USAGE, "it is a folder")
    assert _contents(project.db.parent) == before


# --- 5: revision files and version table out of order ------------------------------------------------------------


def _break(project: Project, problem: str) -> None:
    """Break the applied project (at R2 of R1..R3) in one way."""
    files = {p.name.split("_", 1)[0]: p for p in project.versions.glob("*.py")}
    if problem == "deleted applied file":
        files[R3].unlink()
        files[R2].unlink()
    elif problem == "unknown version":
        with project.connect() as connection:
            connection.execute("UPDATE alembic_version SET version_num = '20990101000000'")
    elif problem == "missing parent":
        files[R3].write_text(
            files[R3].read_text().replace(f"down_revision = '{R2}'", "down_revision = '20240101000009'")
        )
    elif problem == "cycle":
        files[R1].write_text(files[R1].read_text().replace("down_revision = None", f"down_revision = '{R3}'"))
    elif problem == "syntax error":
        files[R3].write_text(files[R3].read_text() + "\ndef broken(:\n    pass\n")
    elif problem == "exits on import":  # its exit code must not pass for the command's
        files[R3].write_text("import sys\nsys.exit(0)\n" + files[R3].read_text())
    elif problem == "import error":
        files[R3].write_text("import nonexistent_module\n" + files[R3].read_text())
    elif problem == "raises on import":
        files[R3].write_text("raise RuntimeError('not today')\n" + files[R3].read_text())


# what each command says: validate reports a changed applied file (the cycle edits one) first, as its table of
# codes says
_EXPECTED: dict[str, dict[str, int]] = {
    "cycle": {"validate": ExitCode.CHECKSUM_MISMATCH},
}
_WORDS = {
    "deleted applied file": R2,
    "unknown version": "20990101000000",
    "missing parent": "20240101000009",
    "cycle": "cycle",
    "syntax error": "syntax error",
    "exits on import": "sys.exit(0)",
    "import error": "nonexistent_module",
    "raises on import": "not today",
}


@pytest.mark.parametrize("command", EVERY_COMMAND, ids=" ".join)
@pytest.mark.parametrize("problem", list(_WORDS))
def test_invalid_revisions_get_one_line_and_their_code(applied: Project, command: list[str], problem: str) -> None:
    _break(applied, problem)
    before = _contents(applied.db.parent)
    result = applied.migrate(*command)
    expected = _EXPECTED.get(problem, {}).get(command[0], ExitCode.INVALID_REVISIONS)
    assert result.returncode == expected, (result.returncode, result.stderr)
    if command[0] == "status" and problem in ("deleted applied file", "unknown version"):
        # status shows what it can read (naming the revision), then refuses like every other command
        assert f"{_WORDS[problem]} (no such revision file)" in result.stdout
    if command[0] == "validate":
        _error_line(result)
        assert _WORDS[problem] in result.stdout  # validate's table lists the finding
    else:
        _refused(result, ExitCode(expected), _WORDS[problem])
    assert _contents(applied.db.parent) == before


@pytest.mark.parametrize("problem", ["unknown version", "syntax error", "missing parent"])
def test_stock_alembic_gives_the_same_line(applied: Project, problem: str) -> None:
    _break(applied, problem)
    before = _contents(applied.db.parent)
    for command in (["current"], ["upgrade", "head"]):
        _refused(applied.alembic(*command), ExitCode.INVALID_REVISIONS, _WORDS[problem])
    assert _contents(applied.db.parent) == before


def test_a_revision_asked_for_that_does_not_exist_keeps_alembics_answer(applied: Project) -> None:
    result = applied.migrate("upgrade", "20990101000000")
    assert result.returncode == 255
    assert "Traceback" not in result.stderr and "20990101000000" in result.stdout + result.stderr


@pytest.mark.parametrize("command", EVERY_COMMAND, ids=" ".join)
def test_a_doubled_version_row_is_refused(applied: Project, command: list[str]) -> None:
    """A version table that names a revision twice (no primary key: a file another tool wrote)."""
    with applied.connect() as connection:
        connection.execute(
            "CREATE TABLE doubled AS SELECT * FROM alembic_version UNION ALL SELECT * FROM alembic_version"
        )
        connection.execute("DROP TABLE alembic_version")
        connection.execute("ALTER TABLE doubled RENAME TO alembic_version")
    before = _contents(applied.db.parent)
    _refused(applied.migrate(*command), ExitCode.DATABASE_UNUSABLE, R2, "2 times")
    assert _contents(applied.db.parent) == before


# --- 6: a revision that exits ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, said",
    [
        ("sys.exit(0)", "sys.exit("),
        ("sys.exit(3)", "sys.exit("),
        ("raise SystemExit('bye')", "sys.exit("),
        ("raise BaseException('odd')", "raised BaseException"),
        ("raise GeneratorExit", "raised GeneratorExit"),
    ],
)
def test_a_revision_that_exits_is_a_failed_revision(applied: Project, call: str, said: str) -> None:
    (applied.versions / f"{R3}_three.py").unlink()
    applied.write_revision(
        R3, R2, upgrade=f"import sys\nop.create_table('zz', sa.Column('id', sa.Integer))\n{call}", message="exits"
    )
    result = applied.migrate("up")
    _refused(result, ExitCode.MIGRATION_FAILED, R3, said)
    assert applied.rows("SELECT version_num FROM alembic_version") == [(R2,)]
    assert applied.rows("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'zz'") == [(0,)]
    rows = applied.rows(f"SELECT status, error_message FROM migration_history WHERE version = '{R3}'")
    assert len(rows) == 1 and rows[0][0] == "failed" and said in str(rows[0][1])


# --- 7: a full disk, a file-size limit ---------------------------------------------------------------------------


def _writes_rows(project: Project, rows: int) -> None:
    """R2 (after R1): a table of ``rows`` rows, a few hundred kB per 10,000 rows."""
    project.write_revision(R1, None, upgrade="op.create_table('items', sa.Column('id', sa.Integer))", message="one")
    project.write_revision(
        R2,
        R1,
        upgrade=f'op.execute("CREATE TABLE big AS SELECT range AS id, md5(range::VARCHAR) AS h FROM range({rows})")',
        downgrade="op.drop_table('big')",
        message="big",
    )


@contextmanager
def _small_disk(folder: Path, size: str = "3M") -> Iterator[Path]:
    folder.mkdir(parents=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (not root, or no mount permission)")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


def _at(db: Path) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """Where the database opens (a fresh DuckDB process, read-only) and its history."""
    connection = duckdb.connect(str(db), read_only=True)
    try:
        return (
            connection.execute("SELECT version_num FROM alembic_version").fetchall(),
            connection.execute("SELECT version, status FROM migration_history ORDER BY id").fetchall(),
        )
    finally:
        connection.close()


def test_a_full_disk_during_a_migration(project: Project, tmp_path: Path) -> None:
    _writes_rows(project, 100_000)  # megabytes of log, on a disk with about one free
    with _small_disk(tmp_path / "small") as disk:
        db = disk / "ccdash.db"
        assert project.migrate("-x", "backup=false", "upgrade", R1, db=db).returncode == 0
        result = project.migrate("-x", "backup=false", "up", db=db)
        _refused(result, ExitCode.MIGRATION_FAILED, R2, "No space left on device")
        versions, steps = _at(db)
        assert versions == [(R1,)]
        assert steps[0] == (R1, "success") and (R2, "success") not in steps  # a failure row only if it fitted


def _file_size_limit(limit: int) -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG instead of killing
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def _migrate_limited(project: Project, db: Path, limit: int, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "ccdash-migrate"), "-x", f"db={db}", "-x", "backup=false", *args],
        cwd=project.root,
        env=project.env(),
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=lambda: _file_size_limit(limit),
    )


def test_a_file_size_limit_during_a_migration_records_the_failure(project: Project) -> None:
    _writes_rows(project, 100_000)
    assert project.migrate("upgrade", R1).returncode == 0
    limit = project.db.stat().st_size + 100_000  # the step's log cannot be written; a failure row can
    result = _migrate_limited(project, project.db, limit, "up")
    _refused(result, ExitCode.MIGRATION_FAILED, R2, "File too large")
    assert _at(project.db) == ([(R1,)], [(R1, "success"), (R2, "failed")])


def test_a_file_size_limit_during_the_checkpoint(project: Project) -> None:
    """The step commits (into the log), then folding the log into the file fails: one line, and the database
    opens at the revision that was committed."""
    _writes_rows(project, 20_000)
    assert project.migrate("upgrade", R1).returncode == 0
    limit = project.db.stat().st_size + 100_000  # the log fits under the limit; the grown file does not
    result = _migrate_limited(project, project.db, limit, "up")
    _refused(result, ExitCode.DATABASE_UNUSABLE, "writing the database failed", "File too large")
    assert _at(project.db) == ([(R2,)], [(R1, "success"), (R2, "success")])
    status = project.migrate("status")
    assert status.returncode == 0, status.stderr


# --- 8: a read-only folder ---------------------------------------------------------------------------------------


def _without_root_powers() -> None:
    """Drop the capabilities that let root write anywhere (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER)
    from the bounding set, so the command runs as a root bound by file permissions. (Running it as nobody
    would need a Python outside /root.)"""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2, 3):
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def test_a_read_only_folder_is_refused_before_anything_runs(applied: Project) -> None:
    if os.getuid() != 0:
        pytest.skip("needs root, to drop root's powers in the command")
    probe = subprocess.run(["true"], preexec_fn=_without_root_powers, capture_output=True)
    if probe.returncode != 0:
        pytest.skip("cannot drop capabilities here")
    folder = applied.db.parent
    before = _contents(folder)
    folder.chmod(0o555)
    try:
        for args in (["up"], ["-x", "backup=false", "up"], ["down"]):
            result = subprocess.run(
                [str(BIN / "ccdash-migrate"), "-x", f"db={applied.db}", *args],
                cwd=applied.root,
                env=applied.env(),
                capture_output=True,
                text=True,
                timeout=300,
                preexec_fn=_without_root_powers,
            )
            _refused(result, ExitCode.DATABASE_UNUSABLE, "cannot write in", str(folder))
            assert _contents(folder) == before
    finally:
        folder.chmod(0o755)
    assert _at(applied.db)[0] == [(R2,)]


# --- 9: serve ----------------------------------------------------------------------------------------------------


def test_serve_refuses_a_port_in_use_a_bad_host_and_a_bad_port(project: Project) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        port = str(taken.getsockname()[1])
        for args in (["--port", port], ["--host", "no.such.host.invalid"], ["--port", "70000"], ["--port", "-1"]):
            _refused(project.migrate("serve", *args), ExitCode.USAGE)
    finally:
        taken.close()


# --- 10: options -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "option",
    [
        "memory_limit=lots",
        "threads=0",
        "threads=-3",
        "threads=x",
        "threads=99999999999",
        "storage_compatibility=v9",
        "backup_keep=0",
        "backup_keep=-1",
        "lock_timeout=-1",
        "lock_timeout=nan",
        "lock_timeout=soon",
    ],
)
def test_bad_option_values_are_refused_before_the_database_is_opened(applied: Project, option: str) -> None:
    """Checked first: while another program holds the file, the answer is still the option (exit 2), not a
    wait for the lock (exit 4)."""
    before = _contents(applied.db.parent)
    holder = hold(applied.db)
    try:
        for command in (["status"], ["up"]):
            result = applied.migrate("-x", "lock_timeout=0", "-x", option, *command)
            _refused(result, ExitCode.USAGE, option.split("=")[0])
    finally:
        holder.kill()
        holder.wait()
    assert _contents(applied.db.parent) == before


# --- 12: reading a database that is not there --------------------------------------------------------------------


def test_reading_a_database_that_is_not_there_creates_nothing(project: Project, tmp_path: Path) -> None:
    items_revisions(project)
    missing = tmp_path / "nowhere" / "deeper" / "ccdash.db"
    for run, command in [
        (project.alembic, ["current"]),
        (project.migrate, ["current"]),
        (project.migrate, ["status"]),
        (project.migrate, ["history"]),
        (project.migrate, ["validate"]),
    ]:
        result = run(*command, db=missing)
        assert "Traceback" not in result.stderr, result.stderr
        assert not (tmp_path / "nowhere").exists(), command


# --- 13: a refused file keeps its bytes --------------------------------------------------------------------------


def test_a_refused_foreign_database_keeps_its_bytes_and_its_log(tmp_path: Path) -> None:
    """A DuckDB file that is not CCDash's, with committed rows still in its write-ahead log: ``up`` refuses it
    (exit 7), folds no log into it and leaves no backup beside it."""
    folder = tmp_path / "foreign"
    folder.mkdir()
    db = folder / "other.db"
    connection = duckdb.connect(str(db))
    connection.execute("CREATE TABLE stuff (a INTEGER, b VARCHAR)")
    connection.execute("INSERT INTO stuff VALUES (1, 'x')")
    connection.execute("CHECKPOINT")
    connection.execute("PRAGMA disable_checkpoint_on_shutdown")
    connection.execute("INSERT INTO stuff VALUES (2, 'y')")  # stays in other.db.wal
    connection.close()
    before = _contents(folder)
    assert "other.db.wal" in before
    result = repo_alembic("up", db=db, command="ccdash-migrate")
    _refused(result, NOT_CCDASH, "stuff")
    assert _contents(folder) == before


# --- 14: a revision file that does not parse, a truncated file, a folder nobody can write in -------------------


def test_revision_file_with_a_syntax_error(project: Project) -> None:
    project.write_revision("20250101000001", None, message="fine")
    assert project.alembic("upgrade", "head").returncode == 0
    before = digest(project.db)
    (project.versions / "20250101000002_broken.py").write_text(
        "revision = '20250101000002'\ndown_revision = '20250101000001'\ndef upgrade(:\n    pass\n"
    )
    result = project.alembic("upgrade", "head")
    assert result.returncode == ExitCode.INVALID_REVISIONS
    assert "20250101000002_broken.py has a syntax error at line 3" in error_line(result)
    assert "Traceback" not in result.stderr
    assert digest(project.db) == before


def test_truncated_database_file(project: Project) -> None:
    project.write_revision("20250101000001", None, upgrade=BASE_UPGRADE, message="base")
    assert project.alembic("upgrade", "head").returncode == 0
    data = project.db.read_bytes()
    project.db.write_bytes(data[: len(data) // 3])
    before = digest(project.db)
    for command in (["current"], ["upgrade", "head"]):
        result = project.alembic(*command)
        assert result.returncode == ExitCode.DATABASE_UNUSABLE
        assert "is truncated" in error_line(result) or "not a readable DuckDB database" in error_line(result)
    assert digest(project.db) == before


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
        line = error_line(result)
        assert "cannot open" in line and reason in line
        assert list((tmp_path / "locked").iterdir()) == []
