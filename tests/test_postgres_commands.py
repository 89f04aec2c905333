"""``status``, ``history``, ``validate``, ``repair``, the refusals of ``backup``/``restore``/``rehearse`` and the
Python API on a real PostgreSQL server: the same meanings and exit codes as on a DuckDB file, nothing of
DuckDB's shown, and reads that never wait for a run nor keep one waiting."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
import urllib.parse
import uuid
from pathlib import Path

import postgres_server
import sqlalchemy as sa
from conftest import Project, error_line, status_parts

from ccdash_alembic.errors import ExitCode

ITEMS = "op.create_table('items', sa.Column('id', sa.Integer, primary_key=True))"


def _two_revisions(project: Project) -> None:
    project.write_revision("20260101000000", None, ITEMS, "op.drop_table('items')", message="create items")
    project.write_revision(
        "20260101000001",
        "20260101000000",
        "op.add_column('items', sa.Column('note', sa.Text))",
        "op.drop_column('items', 'note')",
        message="add note",
    )


def _run(project: Project, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return project.migrate("-x", f"url={url}", *args, pass_db=False)


def _versions(server: postgres_server.Server, url: str) -> list[tuple[object, ...]]:
    return server.sql("SELECT version_num FROM alembic_version", url.rsplit("/", 1)[1])


def test_status_history_and_validate_read_a_postgresql_database(project: Project, pg_url: str) -> None:
    _two_revisions(project)
    assert project.alembic("-x", f"url={pg_url}", "upgrade", "20260101000000", pass_db=False).returncode == 0

    piped = _run(project, pg_url, "status")
    assert piped.returncode == 0, piped.stderr
    fields, table = status_parts(piped.stdout)
    assert fields["Database"] == f"{pg_url} (from -x url)"
    assert fields["Engine"].startswith("PostgreSQL 15.") and fields["Migration"] == "none running"
    assert fields["Current"] == "20260101000000 (create items)" and fields["Pending"] == "20260101000001"
    assert fields["Dirty"] == "no" and fields["Schema version"] == "agrees with alembic_version"
    assert "DuckDB 1.1" not in fields and "DuckDB" not in piped.stdout
    assert [line.split()[:2] for line in table.splitlines()[1:]] == [
        ["20260101000000", "applied"],
        ["20260101000001", "pending"],
    ]
    data = json.loads(_run(project, pg_url, "status", "--json").stdout)
    assert data["engine"] == "postgresql" and data["name_bound"] is None and data["in_use_by"] is None
    assert data["migration_running"] is None and data["pending"] == ["20260101000001"]
    assert _run(project, pg_url, "validate").returncode == ExitCode.PENDING

    assert _run(project, pg_url, "up").returncode == 0
    clean = _run(project, pg_url, "validate", "--json")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert json.loads(clean.stdout) == {"revisions": 2, "findings": [], "exit_code": 0}
    history = _run(project, pg_url, "history")
    assert history.returncode == 0 and "create items" in history.stdout and "add note" in history.stdout
    steps = json.loads(_run(project, pg_url, "history", "--json").stdout)
    assert [(s["version"], s["direction"], s["status"]) for s in steps] == [
        ("20260101000000", "up", "success"),
        ("20260101000001", "up", "success"),
    ]
    slowest = json.loads(_run(project, pg_url, "history", "--json", "--slowest").stdout)
    times = [s["execution_time_ms"] for s in slowest]
    assert times == sorted(times, reverse=True)


def test_drift_dirty_mark_and_failure_give_their_exit_codes_and_repair_clears_them(
    project: Project, pg_url: str, pg_server: postgres_server.Server
) -> None:
    _two_revisions(project)
    assert _run(project, pg_url, "up").returncode == 0
    database = pg_url.rsplit("/", 1)[1]

    changed = project.versions / "20260101000001_add_note.py"
    applied = changed.read_text()
    changed.write_text(applied + "# edited\n")
    drift = _run(project, pg_url, "validate")
    assert drift.returncode == ExitCode.CHECKSUM_MISMATCH and "changed after it was applied" in drift.stdout
    assert json.loads(_run(project, pg_url, "status", "--json").stdout)["drift"] == ["20260101000001"]
    changed.write_text(applied)

    pg_server.sql("UPDATE schema_version SET dirty = true", database)
    assert _run(project, pg_url, "validate").returncode == ExitCode.DIRTY
    assert status_parts(_run(project, pg_url, "status").stdout)[0]["Dirty"].startswith("yes: 20260101000001")
    repaired = _run(project, pg_url, "repair")
    assert repaired.returncode == 0 and "Cleared the dirty mark of revision 20260101000001" in repaired.stdout
    assert _run(project, pg_url, "validate").returncode == 0

    bad = "op.execute('SELECT no_such_column FROM schema_version')"  # the server's message has several lines
    project.write_revision("20260101000002", "20260101000001", bad, message="bad")
    failed = _run(project, pg_url, "up")
    assert failed.returncode == ExitCode.MIGRATION_FAILED, failed.stderr
    assert _versions(pg_server, pg_url) == [("20260101000001",)]
    assert _run(project, pg_url, "validate").returncode == ExitCode.MIGRATION_FAILED
    findings = json.loads(_run(project, pg_url, "validate", "--json").stdout)["findings"]
    assert [f["message"].count("\n") for f in findings if f["kind"] == "failed"] == [0]  # its first line only
    last = status_parts(_run(project, pg_url, "status").stdout)[0]["Last failure"]
    assert last.startswith("20260101000002 at ") and 'column "no_such_column" does not exist' in last
    assert last.endswith("ccdash-migrate repair --clear-failure 20260101000002")  # one line, remedy included
    recorded = json.loads(_run(project, pg_url, "history", "--json").stdout)[-1]
    assert recorded["status"] == "failed" and "LINE 1" in recorded["error_message"]  # the history keeps it all
    cleared = _run(project, pg_url, "repair", "--clear-failure", "20260101000002")
    assert cleared.returncode == 0, cleared.stderr
    assert _run(project, pg_url, "validate").returncode == ExitCode.PENDING


def _holder_of_the_run_lock(server: postgres_server.Server, database: str) -> int | None:
    rows = server.sql(
        "SELECT l.pid FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
        f" WHERE l.locktype = 'advisory' AND l.granted AND d.datname = '{database}'"
        f" AND l.objid <> {postgres_server.GATE}"  # the test's own gate is not the run's lock
    )
    return int(rows[0][0]) if rows else None  # type: ignore[call-overload]


def test_status_reads_while_a_migration_runs_and_names_it(
    project: Project, pg_url: str, pg_server: postgres_server.Server
) -> None:
    """A run in another process holds the run's lock in the middle of a revision: ``status`` and ``validate``
    read at once what it has committed and name it; the run then finishes untouched."""
    _two_revisions(project)
    project.write_revision("20260101000002", "20260101000001", postgres_server.GATED, message="gated step")
    assert _run(project, pg_url, "upgrade", "20260101000000").returncode == 0
    database = pg_url.rsplit("/", 1)[1]
    with pg_server.gate(database) as open_gate:
        run = project.start("upgrade", "head", url=pg_url)
        try:
            while run.poll() is None and not pg_server.waiting_at_gate(database):
                time.sleep(0.02)
            backend = _holder_of_the_run_lock(pg_server, database)
            assert backend is not None, run.communicate()
            status = _run(project, pg_url, "-x", "lock_timeout=0", "status")
            validate = _run(project, pg_url, "-x", "lock_timeout=0", "validate", "--json")
            still_running = run.poll() is None
        finally:
            open_gate()
            out, err = run.communicate(timeout=120)
    assert still_running, "the run ended before status had read"
    assert status.returncode == 0, status.stderr
    fields, _ = status_parts(status.stdout)
    running = fields["Migration"]
    assert running.startswith(f"running: alembic pid {run.pid} ") and f"process {backend} " in running
    assert fields["Schema version"] == "agrees with alembic_version"  # one snapshot: never half a revision
    assert validate.returncode == ExitCode.PENDING
    notes = [f for f in json.loads(validate.stdout)["findings"] if f["kind"] == "note"]
    assert notes and f"pid {run.pid} " in notes[0]["message"]
    assert run.returncode == 0, out + err
    assert _versions(pg_server, pg_url) == [("20260101000002",)]


def test_a_server_that_cannot_be_reached_is_one_line(project: Project, pg_server: postgres_server.Server) -> None:
    _two_revisions(project)
    closed = postgres_server._free_port()
    url = f"postgresql+psycopg://postgres@127.0.0.1:{closed}/nowhere"
    for command in (["status", "--json"], ["validate"]):
        result = _run(project, url, *command)
        assert result.returncode == ExitCode.DATABASE_UNUSABLE, (command, result.stderr)
        assert error_line(result).startswith(f"error: cannot connect to {url} (from -x url): ")
        assert "Traceback" not in result.stderr and result.stdout == ""


def test_backup_restore_and_rehearse_are_refused_with_commands_that_work(
    project: Project, pg_server: postgres_server.Server, tmp_path: Path
) -> None:
    """Each refusal is one line, exit code 2, with the server's own command for that database and no password;
    the commands it gives are run here, as given, and do what they say, on a database whose name has a space
    and double quotes in it."""
    _two_revisions(project)
    database = f'my db "{uuid.uuid4().hex[:8]}"'
    pg_server.sql(f"CREATE DATABASE {_quoted(database)}")
    url = pg_server.url(urllib.parse.quote(database))
    assert _run(project, url, "upgrade", "20260101000000").returncode == 0
    before = pg_server.sql("SELECT version_num FROM alembic_version", database)
    lines = {}
    for command in (["backup"], ["backup", "--list"], ["restore"], ["rehearse"]):
        result = _run(project, url.replace("postgres@", "postgres:s3cret@"), *command)
        assert result.returncode == ExitCode.USAGE, (command, result.stderr)
        lines[" ".join(command)] = error_line(result)
    assert all("s3cret" not in line and "is a PostgreSQL database" in line for line in lines.values())
    assert pg_server.sql("SELECT version_num FROM alembic_version", database) == before
    assert pg_server.sql("SELECT count(*) FROM pg_database WHERE datname LIKE '%rehearsal%'") == [(0,)]

    dump = lines["backup"].split("Back it up with pg_dump: ", 1)[1]
    assert shlex.split(dump) == [
        "pg_dump", "-h", "127.0.0.1", "-p", str(pg_server.port), "-U", "postgres", "-Fc", "-f", f"{database}.dump",
        database,
    ]  # fmt: skip
    assert lines["backup --list"].endswith(dump)
    _server_tool(pg_server, dump, tmp_path)
    restore = lines["restore"].split("while the application is stopped: ", 1)[1]
    pg_server.sql("DROP TABLE items; UPDATE alembic_version SET version_num = 'x'", database)
    _server_tool(pg_server, restore, tmp_path)
    assert pg_server.sql("SELECT version_num FROM alembic_version", database) == before

    template, _, rest = lines["rehearse"].split("Rehearse on a copy of it: ", 1)[1].partition(" (while nothing")
    upgrade = shlex.split(rest.split("then ", 1)[1].split(", then ", 1)[0])
    copy = sa.make_url(upgrade[2].removeprefix("url="))
    assert upgrade[:2] == ["ccdash-migrate", "-x"] and copy.database == f"{database}_rehearsal" and not copy.password
    pg_server.sql(template)
    rehearsed = project.migrate(*upgrade[1:], pass_db=False)
    assert rehearsed.returncode == 0, rehearsed.stderr
    assert pg_server.sql("SELECT version_num FROM alembic_version", f"{database}_rehearsal") == [("20260101000001",)]
    assert pg_server.sql("SELECT version_num FROM alembic_version", database) == before


def _quoted(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _server_tool(server: postgres_server.Server, command: str, folder: Path) -> None:
    """Run a ``pg_dump``/``pg_restore`` command line as a refusal gave it, with the server's own binaries."""
    words = shlex.split(command)
    done = subprocess.run([str(server.bin / words[0]), *words[1:]], cwd=folder, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


API = """\
import json, sys
import ccdash_alembic
url, ini = sys.argv[1], sys.argv[2]
before = ccdash_alembic.status(url, config_file=ini)
result = ccdash_alembic.upgrade(url.replace("postgresql+psycopg://", "postgresql://"), config_file=ini)
after = ccdash_alembic.status(url, config_file=ini)
print(json.dumps({
    "before": [r.state for r in before.revisions], "engine": before.engine,
    "steps": [s.version for s in result.steps], "after": after.current, "backup": str(result.backup),
    "history": [s.version for s in after.history],
}))
"""


def test_python_api_upgrades_and_reads_a_postgresql_database(
    project: Project, pg_url: str, pg_server: postgres_server.Server, tmp_path: Path
) -> None:
    _two_revisions(project)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "start.py").write_text(API)
    ran = subprocess.run(
        [sys.executable, "start.py", pg_url, str(project.root / "alembic.ini")],
        cwd=elsewhere,
        env=project.env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout) == {
        "before": ["pending", "pending"],
        "engine": "postgresql",
        "steps": ["20260101000000", "20260101000001"],
        "after": ["20260101000001"],
        "backup": "None",
        "history": ["20260101000000", "20260101000001"],
    }
    assert _versions(pg_server, pg_url) == [("20260101000001",)]
    assert list(elsewhere.iterdir()) == [elsewhere / "start.py"]
