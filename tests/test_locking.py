"""The lock, end to end: from a run's first read of the database until it is done, no other process opens it.

DuckDB's lock is a POSIX record lock, which the process loses when it closes ANY descriptor of the file; a
backup or a copy made in the migrating process used to let other processes in mid-run. Here a real DuckDB 1.1.3
process (the engine inside CCDash) tries to open the file for writing every few milliseconds while each command
runs, as a CCDash restart loop would, and records what it saw each time it got in.

A prober that got in while the command still had work to do sees the database in a state other than the one
the command leaves, so "got in mid-run" is measured, not guessed: every time the prober got in after it had
seen the command hold the file, it must have seen the final state.

The other way round, a run that finds the file held (by another run, or by a program such as a CCDash server)
waits for it up to ``lock_timeout``, then names the holder in one line and leaves the file as it was.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pytest
from conftest import (
    BIN,
    REPO,
    Project,
    counting_revisions,
    database_template,
    digest,
    error_line,
    hold,
    interruptible,
    use_database,
)

from ccdash_alembic.errors import ExitCode

ROWS = 2_000_000  # the upgrade the issue names: seconds of rebuilding with the lock held
SMALL = 200_000  # enough for the other commands to hold the file while the prober tries

PROBER = r"""
import duckdb, json, re, sys, time
db, ready, stop, out, interval = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5])
import os
holders, entries, others = set(), [], []
open(ready, "w").close()
while not os.path.exists(stop):
    try:
        con = duckdb.connect(db)
    except Exception as error:
        text = str(error)
        found = re.search(r"PID (\d+)", text)
        if found:
            holders.add(int(found.group(1)))
        else:
            others.append(text.splitlines()[0][:200])
    else:
        try:
            tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
            heads = sorted(r[0] for r in con.execute("SELECT version_num FROM alembic_version").fetchall()) \
                if "alembic_version" in tables else []
            steps = con.execute("SELECT count(*) FROM migration_history").fetchone()[0] \
                if "migration_history" in tables else 0
            entries.append({"after_holder": bool(holders), "heads": heads, "steps": steps})
        finally:
            con.close()
    time.sleep(interval)
json.dump({"holders": sorted(holders), "entries": entries, "others": others}, open(out, "w"))
"""


class Prober:
    """A DuckDB 1.1.3 process opening the database read-write every ``interval`` seconds until stopped."""

    def __init__(self, python: Path, db: Path, folder: Path, interval: float = 0.05) -> None:
        self.ready, self.stop_file, self.out = folder / "ready", folder / "stop", folder / "probe.json"
        for path in (self.ready, self.stop_file, self.out):
            path.unlink(missing_ok=True)
        self.process = subprocess.Popen(
            [str(python), "-c", PROBER, str(db), str(self.ready), str(self.stop_file), str(self.out), str(interval)]
        )
        deadline = time.monotonic() + 60
        while not self.ready.exists():
            assert time.monotonic() < deadline and self.process.poll() is None, "the prober did not start"
            time.sleep(0.01)

    def stop(self) -> dict[str, object]:
        self.stop_file.touch()
        assert self.process.wait(timeout=60) == 0
        return json.loads(self.out.read_text())  # type: ignore[no-any-return]


def _final_state(db: Path) -> tuple[list[str], int]:
    connection = duckdb.connect(str(db), read_only=True)
    try:
        heads = sorted(r[0] for r in connection.execute("SELECT version_num FROM alembic_version").fetchall())
        steps = connection.execute("SELECT count(*) FROM migration_history").fetchone()
        return heads, int(steps[0]) if steps else 0
    finally:
        connection.close()


def _assert_never_let_in(probe: dict[str, object], pid: int, db: Path, must_see_holder: bool = True) -> None:
    holders = probe["holders"]
    assert isinstance(holders, list)
    if must_see_holder:
        assert pid in holders, f"the prober never saw the command (PID {pid}) hold the file: {probe}"
    assert probe["others"] == [], probe["others"]
    heads, steps = _final_state(db)
    entries = probe["entries"]
    assert isinstance(entries, list)
    mid_run = [e for e in entries if e["after_holder"] and (e["heads"] != heads or e["steps"] != steps)]
    assert mid_run == [], f"another process opened the database mid-run {len(mid_run)} times: {mid_run[:3]}"


def _big_revisions(project: Project, rows: int) -> None:
    """One revision creates ``items`` with ``rows`` rows and an index; the next changes the indexed column's type,
    which DuckDB can only do by rebuilding the table (seconds of work with the lock held)."""
    project.write_revision(
        "20250101000001",
        None,
        f"""
        op.create_table('items', sa.Column('id', sa.Integer, primary_key=True), sa.Column('price', sa.Integer))
        op.execute('INSERT INTO items SELECT range, range % 1000 FROM range({rows})')
        op.create_index('ix_items_price', 'items', ['price'])
        """,
        "op.drop_table('items')",
        message="items",
    )
    project.write_revision(
        "20250101000002",
        "20250101000001",
        "op.alter_column('items', 'price', type_=sa.BigInteger)",
        "op.alter_column('items', 'price', type_=sa.Integer)",
        message="wider price",
    )


def _at_first_revision(project: Project, rows: int) -> Project:
    _big_revisions(project, rows)
    assert project.alembic("upgrade", "20250101000001").returncode == 0
    return project


@pytest.fixture(scope="module")
def big_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return database_template(tmp_path_factory, lambda template: _at_first_revision(template, SMALL))


@pytest.fixture
def big(project: Project, big_data: Path) -> Project:
    """``SMALL`` rows at the first revision, the second (a rebuild) pending."""
    _big_revisions(project, SMALL)
    use_database(project, big_data)
    return project


def _probed(python: Path, project: Project, command: list[str], interval: float = 0.05) -> tuple[int, str, dict]:
    prober = Prober(python, project.db, project.root.parent, interval)
    try:
        process = subprocess.Popen(
            command, cwd=project.root, env=project.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        out, err = process.communicate(timeout=600)
    finally:
        probe = prober.stop()
    assert "Traceback" not in err, err
    return process.returncode, out + err, {**probe, "pid": process.pid}


def test_up_with_a_backup_keeps_every_other_process_out(duckdb11_python: Path, project: Project) -> None:
    big = _at_first_revision(project, ROWS)
    code, output, probe = _probed(duckdb11_python, big, [str(BIN / "ccdash-migrate"), "-x", f"db={big.db}", "up"])
    assert code == 0, output
    assert "Backup:" in output
    _assert_never_let_in(probe, int(probe["pid"]), big.db)


def test_down_keeps_every_other_process_out(duckdb11_python: Path, big: Project) -> None:
    assert big.migrate("up").returncode == 0
    code, output, probe = _probed(duckdb11_python, big, [str(BIN / "ccdash-migrate"), "-x", f"db={big.db}", "down"])
    assert code == 0, output
    _assert_never_let_in(probe, int(probe["pid"]), big.db)


def _opens_for_writing(python: Path, db: Path) -> str:
    """What a DuckDB 1.1.3 process gets when it opens ``db`` for writing: ``opened`` or its error."""
    code = (
        "import duckdb, sys\n"
        "try:\n    duckdb.connect(sys.argv[1]).close(); print('opened')\n"
        "except Exception as e:\n    print(str(e).splitlines()[0])\n"
    )
    return subprocess.run([str(python), "-c", code, str(db)], capture_output=True, text=True).stdout.strip()


@pytest.mark.parametrize("read_only", [False, True], ids=["read-write", "read-only"])
def test_copies_made_while_holding_the_file_keep_its_lock(
    duckdb11_python: Path, project: Project, tmp_path: Path, read_only: bool
) -> None:
    """The mechanism itself: a backup, a rehearsal copy and a restore's copy of the replaced file are made
    while this process holds DuckDB's lock, and afterwards another process still cannot open the file. The
    control shows what the test detects: one open-and-close of the file in this process drops the lock."""
    from ccdash_alembic.runtime import backup, database, rehearse
    from ccdash_alembic.runtime.settings import Settings

    assert project.alembic("upgrade", "head").returncode == 0  # no revisions: the history tables only
    settings = Settings(db=str(project.db), backup_dir=str(tmp_path / "backups"))
    target = database.resolve(settings)
    connection = duckdb.connect(str(project.db), read_only=read_only)
    try:
        assert "Conflicting lock" in _opens_for_writing(duckdb11_python, project.db)
        made = backup.create(target, settings, "base", None)
        rehearse.filecopy.copy([(project.db, tmp_path / "copy.db")])
        assert made.file.is_file() and (tmp_path / "copy.db").is_file()
        assert "Conflicting lock" in _opens_for_writing(duckdb11_python, project.db)
        open(project.db, "rb").close()  # the hazard: any close of the file in this process
        assert _opens_for_writing(duckdb11_python, project.db) == "opened"
    finally:
        connection.close()


def test_restore_keeps_every_other_process_out(duckdb11_python: Path, big: Project) -> None:
    made = big.migrate("backup")
    assert made.returncode == 0, made.stderr
    assert big.migrate("up").returncode == 0
    code, output, probe = _probed(
        duckdb11_python, big, [str(BIN / "ccdash-migrate"), "-x", f"db={big.db}", "restore"], interval=0.01
    )
    assert code == 0, output
    _assert_never_let_in(probe, int(probe["pid"]), big.db, must_see_holder=False)


def test_the_python_api_keeps_every_other_process_out(duckdb11_python: Path, big: Project) -> None:
    script = (
        "import sys, ccdash_alembic\n"
        "result = ccdash_alembic.upgrade(sys.argv[1], config_file=sys.argv[2])\n"
        "assert result.backup is not None and result.changed\n"
    )
    code, output, probe = _probed(
        duckdb11_python, big, [sys.executable, "-c", script, str(big.db), str(big.root / "alembic.ini")]
    )
    assert code == 0, output
    _assert_never_let_in(probe, int(probe["pid"]), big.db)


def test_restore_and_backup_started_during_a_run_are_refused(big: Project) -> None:
    big.write_revision("20250101000003", "20250101000002", "import time\ntime.sleep(4)", message="slow")
    assert big.migrate("backup").returncode == 0
    run = subprocess.Popen(
        [str(BIN / "ccdash-migrate"), "-x", f"db={big.db}", "up"],
        cwd=big.root,
        env=big.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert run.stderr is not None
    for line in run.stderr:  # the run holds the file from before its backup until it exits
        if line.startswith("Backup:"):
            break
    restore = big.migrate("-x", "lock_timeout=0", "restore")
    backup = big.migrate("-x", "lock_timeout=0", "backup")
    _, rest = run.communicate(timeout=600)
    assert run.returncode == 0, rest
    for refused in (restore, backup):
        assert refused.returncode == ExitCode.LOCKED, refused.stderr
        assert "Traceback" not in refused.stderr
        assert refused.stderr.strip().splitlines()[-1].startswith("error: ")
    assert _final_state(big.db)[0] == ["20250101000003"]


def test_five_upgraders_with_backups_each_apply_every_revision_once(big: Project) -> None:
    results: list[subprocess.CompletedProcess[str]] = []

    def upgrade() -> None:
        results.append(big.migrate("up"))

    threads = [threading.Thread(target=upgrade) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for result in results:
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr
    applied = big.rows(
        "SELECT version, count(*) FROM migration_history WHERE direction IN ('up', 'baseline') GROUP BY 1 ORDER BY 1"
    )
    assert applied == [("20250101000001", 1), ("20250101000002", 1)]
    assert big.rows("SELECT count(*), count(DISTINCT id) FROM items") == [(SMALL, SMALL)]


def test_an_interrupted_run_holds_the_file_to_the_end_and_says_so_in_one_line(
    duckdb11_python: Path, big: Project
) -> None:
    big.write_revision(
        "20250101000003",
        "20250101000002",
        "import sys, time\nop.execute('DELETE FROM items WHERE id < 10')\nprint('working', file=sys.stderr, "
        "flush=True)\ntime.sleep(60)",
        message="slow",
    )
    assert big.migrate("upgrade", "20250101000002").returncode == 0
    backups = sorted(p for p in big.db.parent.iterdir() if p.name.endswith(".backup"))
    prober = Prober(duckdb11_python, big.db, big.root.parent, 0.05)
    try:
        run = subprocess.Popen(
            [str(BIN / "ccdash-migrate"), "-x", f"db={big.db}", "-x", "confirm_data_loss=true", "up"],
            cwd=big.root,
            env=big.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=interruptible,
        )
        assert run.stderr is not None
        seen = []
        for line in run.stderr:
            seen.append(line)
            if line.strip() == "working":
                break
        time.sleep(0.3)
        run.send_signal(signal.SIGINT)
        _, rest = run.communicate(timeout=120)
    finally:
        probe = prober.stop()
    output = "".join(seen) + rest
    assert run.returncode == ExitCode.INTERRUPTED, output
    assert "Traceback" not in output
    [line] = [x for x in output.splitlines() if x.startswith("error: ")]
    assert "interrupted (SIGINT) during revision 20250101000003: its transaction was rolled back" in line
    assert _final_state(big.db)[0] == ["20250101000002"]
    assert big.rows("SELECT count(*) FROM items") == [(SMALL,)]
    assert "Backup: " in output  # the run made one, so "none kept" below says it was discarded
    assert big.rows("SELECT status, error_message FROM migration_history ORDER BY id DESC LIMIT 1") == [
        ("failed", "interrupted (SIGINT)")
    ]
    assert sorted(p for p in big.db.parent.iterdir() if p.name.endswith(".backup")) == backups  # none kept
    _assert_never_let_in(probe, run.pid, big.db)


def test_repair_keeps_every_other_process_out(duckdb11_python: Path, big: Project) -> None:
    big.write_revision(
        "20250101000002",
        "20250101000001",
        "op.execute('INSERT INTO items VALUES (-1, 1)')\nop.execute('SELECT * FROM nowhere')",
        header="transactional = False",
        message="outside",
    )
    (big.versions / "20250101000002_wider_price.py").unlink()
    assert big.migrate("up").returncode == ExitCode.MIGRATION_FAILED  # leaves the dirty mark
    code, output, probe = _probed(
        duckdb11_python, big, [str(BIN / "ccdash-migrate"), "-x", f"db={big.db}", "repair"], interval=0.005
    )
    assert code == 0, output
    assert big.rows("SELECT dirty FROM schema_version") == [(False,)]
    _assert_never_let_in(probe, int(probe["pid"]), big.db, must_see_holder=False)


def test_baseline_keeps_every_other_process_out(duckdb11_python: Path, project: Project) -> None:
    """CCDash's own baseline on a new file, while DuckDB 1.1.3 (a CCDash start) keeps trying to open it."""
    project.db.parent.mkdir(parents=True)
    command = [str(BIN / "ccdash-migrate"), "-c", str(REPO / "alembic.ini"), "-x", f"db={project.db}", "baseline"]
    code, output, probe = _probed(duckdb11_python, project, command, interval=0.005)
    assert code == 0, output
    _assert_never_let_in(probe, int(probe["pid"]), project.db, must_see_holder=False)


# --- runs that meet each other or a held file -----------------------------------------------------------------


def test_three_upgraders_at_once_apply_each_revision_once(project: Project) -> None:
    counting_revisions(project)
    runs = [project.start("upgrade", "head") for _ in range(3)]
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
    counting_revisions(project)
    assert project.alembic("upgrade", "20250101000001").returncode == 0
    before = digest(project.db)
    holder = hold(project.db, 30)
    try:
        started = time.monotonic()
        result = project.alembic("-x", "lock_timeout=1.5", "upgrade", "head")
        waited = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == ExitCode.LOCKED
    line = error_line(result)
    assert str(project.db) in line and f"(PID {holder.pid})" in line and "python" in line
    assert "stayed in use for 1.5 s" in line and "lock_timeout" in line
    assert 1.5 <= waited < 20
    assert digest(project.db) == before


def test_a_lock_released_within_the_timeout_lets_the_run_go_on(project: Project) -> None:
    """The holder lets go once the run has said it waits (however long the run took to start)."""
    counting_revisions(project)
    project.db.parent.mkdir(parents=True)
    duckdb.connect(str(project.db)).close()
    holder = hold(project.db)
    run = project.start("upgrade", "head", stdout=subprocess.DEVNULL)
    try:
        assert run.stderr is not None
        said = [run.stderr.readline()]
        while said[-1] and "Waiting for" not in said[-1]:
            said.append(run.stderr.readline())
    finally:
        holder.kill()
        holder.wait()
    stderr = "".join(said) + run.communicate(timeout=300)[1]
    assert run.returncode == 0, stderr
    assert "Waiting for" in stderr and f"(PID {holder.pid})" in stderr
