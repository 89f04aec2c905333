"""The run's lock on a PostgreSQL database, attacked from outside: other real processes on a real server.

Runs that must meet each other mid-revision are held there by a gate: the revision waits for an advisory lock
(``GATE``) the test holds on its own connection, so a run stays in its revision exactly as long as the test
wants, with no sleep to guess. A run on another database never meets the gate (advisory locks are per database).
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import postgres_server
import pytest
from conftest import Project, error_line

HOST = socket.gethostname()
FIRST, SECOND, THIRD = "20260101000000", "20260101000100", "20260101000200"
PASSWORD = "s3cr3t-pw"


def _gated_revisions(project: Project) -> None:
    """Two revisions; the second creates a table and then waits at the gate."""
    project.write_revision(FIRST, None, upgrade='op.create_table("a", sa.Column("id", sa.Integer, primary_key=True))')
    project.write_revision(
        SECOND,
        FIRST,
        upgrade=f"""
        op.create_table("b", sa.Column("id", sa.Integer, primary_key=True))
        {postgres_server.GATED}
        """,
    )


def _until(what: str, check: Callable[[], object], seconds: float = 30) -> object:
    """Poll ``check`` until it returns something true; a failure (not a timing assertion) if it never does."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.02)
    pytest.fail(f"never happened: {what}")


def _ups(server: postgres_server.Server, database: str) -> list[tuple[object, ...]]:
    """The ``up`` rows of the history: (revision, status), in order."""
    return server.sql(
        "SELECT version, status FROM migration_history WHERE direction = 'up' ORDER BY applied_at, version", database
    )


def _version(server: postgres_server.Server, database: str) -> list[tuple[object, ...]]:
    return server.sql("SELECT version_num FROM alembic_version", database)


def _database(url: str) -> str:
    return url.rsplit("/", 1)[1]


def test_runs_on_one_database_wait_for_each_other_and_not_for_another_database(
    project: Project, pg_server: postgres_server.Server
) -> None:
    _gated_revisions(project)
    one, other = pg_server.new_database(), pg_server.new_database()
    with pg_server.gate(one) as open_gate:
        holder = project.start("upgrade", "head", url=pg_server.url(one))
        _until("the first run waits at the gate", lambda: pg_server.waiting_at_gate(one))
        named = f"alembic pid {holder.pid} on {HOST}"

        # another database of the same server: not waited for
        elsewhere = project.alembic(
            "-x", f"url={pg_server.url(other)}", "-x", "lock_timeout=0", "upgrade", "head", pass_db=False
        )
        assert elsewhere.returncode == 0, elsewhere.stderr
        assert "Waiting" not in elsewhere.stderr

        refused = project.alembic(
            "-x", f"url={pg_server.url(one)}", "-x", "lock_timeout=0.3", "upgrade", "head", pass_db=False
        )
        assert refused.returncode == 4, refused.stderr

        waiter = project.start("-x", "lock_timeout=30", "upgrade", "head", url=pg_server.url(one))
        assert waiter.stderr is not None
        assert waiter.stderr.readline().startswith("Database: ")
        assert f"Waiting for {named}" in waiter.stderr.readline()
        time.sleep(0.5)  # the holder keeps the lock a while longer
        open_gate()
        assert holder.wait(timeout=60) == 0, holder.stderr.read() if holder.stderr else ""
        assert waiter.wait(timeout=60) == 0, waiter.stderr.read()

    waiting = [printed for printed in refused.stderr.splitlines() if printed.startswith("Waiting for ")]
    assert len(waiting) == 1 and named in waiting[0] and "from 127.0.0.1" in waiting[0], refused.stderr
    assert "connected since" in waiting[0]
    line = error_line(refused)
    assert f"is being migrated by {named}" in line and "-x lock_timeout=SECONDS" in line
    shown = [printed for printed in refused.stderr.splitlines() if not printed.startswith(("Database: ", "Waiting"))]
    assert shown == [line]
    for database in (one, other):
        assert _ups(pg_server, database) == [(FIRST, "success"), (SECOND, "success")]
        assert _version(pg_server, database) == [(SECOND,)]


def test_five_upgraders_at_once_apply_each_revision_once(
    project: Project, pg_url: str, pg_server: postgres_server.Server
) -> None:
    for revision, parent in ((FIRST, None), (SECOND, FIRST), (THIRD, SECOND)):
        project.write_revision(
            revision,
            parent,
            upgrade=f"""
            op.create_table("t{revision}", sa.Column("id", sa.Integer, primary_key=True))
            op.execute("SELECT pg_sleep(0.2)")
            """,
        )
    runs = [project.start("-x", "lock_timeout=60", "upgrade", "head", url=pg_url) for _ in range(5)]
    results = [(run.wait(timeout=120), run.stderr.read() if run.stderr else "") for run in runs]
    assert [code for code, _ in results] == [0] * 5, results
    name = _database(pg_url)
    assert _ups(pg_server, name) == [(FIRST, "success"), (SECOND, "success"), (THIRD, "success")]
    assert _version(pg_server, name) == [(THIRD,)]


def test_a_killed_run_frees_the_lock_and_leaves_its_revision_undone(
    project: Project, pg_url: str, pg_server: postgres_server.Server
) -> None:
    project.write_revision(FIRST, None, upgrade='op.create_table("a", sa.Column("id", sa.Integer, primary_key=True))')
    project.write_revision(
        SECOND,
        FIRST,
        header="import os",
        upgrade="""
        op.create_table("b", sa.Column("id", sa.Integer, primary_key=True))
        op.execute("SELECT pg_sleep(30)" if os.environ.get("SLOW") else "SELECT pg_sleep(0.5)")
        """,
    )
    name = _database(pg_url)
    doomed = project.start(
        "upgrade", "head", url=pg_url, env=project.env(SLOW="1"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _until(
        "the run sleeps in its second revision",
        lambda: pg_server.sql(
            f"SELECT 1 FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)' AND datname = '{name}'"
            f" AND application_name = 'alembic pid {doomed.pid} on {HOST}'"
        ),
    )
    nxt = project.start("-x", "lock_timeout=20", "upgrade", "head", url=pg_url)  # less than the 30 s sleep
    assert nxt.stderr is not None
    assert nxt.stderr.readline().startswith("Database: ")
    assert f"Waiting for alembic pid {doomed.pid} on {HOST}" in nxt.stderr.readline()
    doomed.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    doomed.wait()
    assert _version(pg_server, name) == [(FIRST,)]  # the killed revision is not applied, its table not there
    assert pg_server.sql("SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename = 'b'", name) == []
    _until(
        "the next run holds the run's lock",
        lambda: pg_server.sql(
            "SELECT 1 FROM pg_locks l JOIN pg_stat_activity a USING (pid) WHERE l.locktype = 'advisory'"
            f" AND l.granted AND l.objsubid = 1 AND a.application_name = 'alembic pid {nxt.pid} on {HOST}'"
        ),
    )
    took = time.monotonic() - killed_at
    print(f"\nSIGKILL to the waiting run holding the lock: {took:.2f} s")
    assert nxt.wait(timeout=60) == 0, nxt.stderr.read() if nxt.stderr else ""
    assert _ups(pg_server, name) == [(FIRST, "success"), (SECOND, "success")]
    assert _version(pg_server, name) == [(SECOND,)]
    assert pg_server.sql(f"SELECT direction, status FROM migration_history WHERE version = '{SECOND}'", name) == [
        ("up", "success")
    ]  # no row of the killed step's


HANDED = """
import sys
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

while line := sys.stdin.readline():  # MODE URL: run on that database, handing over what MODE names
    mode, url = line.split()
    config = Config("alembic.ini")
    config.cmd_opts = type("Options", (), {"x": [f"url={sys.argv[1]}"]})()  # named, and never to be used
    engine = sa.create_engine(url)
    connection = engine.connect()
    transaction = connection.begin() if mode == "transaction" else None
    config.attributes["connection"] = engine if mode == "engine" else connection
    command.upgrade(config, "head")
    print("upgraded", flush=True)
    sys.stdin.readline()
    if transaction is not None:
        transaction.commit()
    print("committed", flush=True)
    sys.stdin.readline()
    connection.close()
    engine.dispose()
"""


def test_a_handed_over_connection_is_migrated_under_the_lock_and_given_back(
    project: Project, pg_server: postgres_server.Server, tmp_path: Path
) -> None:
    """Alembic's cookbook: a program hands its own connection (idle, or in its transaction) or engine to
    ``command.upgrade``. That database is migrated, not the one -x url names; the lock is held while the run
    (and a caller's transaction) lasts, and is free afterwards while the caller's connection stays open."""
    _gated_revisions(project)
    named = pg_server.new_database()
    script = tmp_path / "handed.py"
    script.write_text(HANDED)
    program = subprocess.Popen(
        [sys.executable, str(script), pg_server.url(named)],
        cwd=project.root,
        env=project.env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for mode in ("connection", "transaction", "engine"):
            _handed_over_run(project, pg_server, program, mode)
        assert program.stdin is not None
        program.stdin.close()
        assert program.wait(timeout=30) == 0
    finally:
        program.kill()
    assert pg_server.sql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", named) == [(0,)]
    assert not project.db.exists()


def _handed_over_run(
    project: Project, pg_server: postgres_server.Server, program: subprocess.Popen[str], mode: str
) -> None:
    stdin, stdout = program.stdin, program.stdout
    assert stdin is not None and stdout is not None
    given = pg_server.new_database()
    other = ("-x", f"url={pg_server.url(given)}", "-x", "lock_timeout=0", "upgrade", "head")

    def say(line: str) -> None:
        stdin.write(f"{line}\n")
        stdin.flush()

    with pg_server.gate(given) as open_gate:
        say(f"{mode} {pg_server.url(given)}")
        _until(f"the run on a handed {mode} waits at the gate", lambda: pg_server.waiting_at_gate(given))
        during = project.alembic(*other, pass_db=False)
        open_gate()
        assert stdout.readline() == "upgraded\n", program.stderr.read() if program.stderr else ""
    before_commit = project.alembic(*other, pass_db=False)
    say("commit")
    assert stdout.readline() == "committed\n"
    after = project.alembic(*other, pass_db=False)  # the program's connection is still open
    say("next")
    assert during.returncode == 4, (mode, during.stderr)
    assert "is being migrated by" in error_line(during)
    assert before_commit.returncode == (4 if mode == "transaction" else 0), (mode, before_commit.stderr)
    assert after.returncode == 0, (mode, after.stderr)
    assert _ups(pg_server, given) == [(FIRST, "success"), (SECOND, "success")], mode


def _bad_inputs(server: postgres_server.Server) -> list[tuple[str, str, int, str]]:
    """(case, URL, exit code, what the error line says); each URL carries a password that must never show."""
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    here = f"postgres:{PASSWORD}@127.0.0.1:{server.port}"
    return [
        ("not listening", f"postgresql+psycopg://postgres:{PASSWORD}@127.0.0.1:{port}/x", 3, "Connection refused"),
        ("no such database", f"postgresql+psycopg://{here}/nowhere", 3, 'database "nowhere" does not exist'),
        ("asyncpg", f"postgresql+asyncpg://{here}/postgres", 2, "driver 'asyncpg' is not supported"),
        ("no database", f"postgresql+psycopg://{here}", 2, "names no database"),
        ("no database, no driver", f"postgresql://{here}/", 2, "names no database"),
        ("password parameter", f"postgresql+psycopg://postgres@127.0.0.1:{port}/x?password={PASSWORD}", 3, "refused"),
        ("another engine", f"mysql://{here}/postgres", 2, "'mysql' databases are not supported"),
    ]


def test_bad_connection_input_is_one_line_and_changes_nothing(
    project: Project, pg_server: postgres_server.Server
) -> None:
    project.write_revision(FIRST, None, upgrade='op.create_table("a", sa.Column("id", sa.Integer, primary_key=True))')
    databases = pg_server.sql("SELECT datname FROM pg_database ORDER BY 1")
    tables = "SELECT schemaname, tablename FROM pg_tables ORDER BY 1, 2"  # of "postgres", where no database is named
    before = pg_server.sql(tables)
    for case, url, code, says in _bad_inputs(pg_server):
        result = project.alembic("-x", f"url={url}", "upgrade", "head", pass_db=False)
        assert result.returncode == code, (case, result.stderr)
        line = error_line(result)
        assert says in line, (case, line)
        assert [other for other in result.stderr.splitlines() if not other.startswith("Database: ")] == [line], case
        assert PASSWORD not in result.stdout + result.stderr, case
    assert pg_server.sql("SELECT datname FROM pg_database ORDER BY 1") == databases  # none created
    assert pg_server.sql(tables) == before
    assert not project.db.exists()


def test_a_password_never_shows(project: Project, pg_server: postgres_server.Server) -> None:
    project.write_revision(FIRST, None, upgrade='op.create_table("a", sa.Column("id", sa.Integer, primary_key=True))')
    url = f"postgresql+psycopg://postgres:{PASSWORD}@127.0.0.1:{pg_server.port}/{pg_server.new_database()}"
    for command in (("upgrade", "head"), ("status",), ("history",)):
        result = project.migrate("-x", f"url={url}", *command, pass_db=False)
        assert result.returncode == 0, result.stderr
        assert "postgres:***@127.0.0.1" in result.stdout + result.stderr, command
        assert PASSWORD not in result.stdout + result.stderr, command
