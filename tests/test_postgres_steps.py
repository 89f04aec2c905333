"""Each revision on PostgreSQL runs under limits fit for a live database: a lock wait and a statement are
bounded, a lock wait that times out is retried from a savepoint and then names the session that held the
lock, a non-transactional revision runs outside the transaction under the dirty mark, and options of the
other engine are refused.

Every test runs the real commands against a real server; the sessions holding locks are other processes.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import postgres_server
import pytest
from conftest import Project, error_line, status_parts

FIRST, SECOND, THIRD = "20260101000000", "20260101000001", "20260101000002"

# A session of "the application": it reads items in a transaction it leaves open (ACCESS SHARE on items, which
# every ALTER TABLE of items waits for). With a positive argument it ends its transaction that many seconds
# after it saw a migration wait for it; with none it never does (the test kills it).
_HOLDER = textwrap.dedent(
    """
    import sys, time, psycopg
    dsn = sys.argv[1]
    release = float(sys.argv[2]) if len(sys.argv) > 2 else None
    with psycopg.connect(dsn, application_name="shop-frontend") as held, psycopg.connect(dsn, autocommit=True) as look:
        held.execute("SELECT count(*) FROM items").fetchall()
        print(held.info.backend_pid, flush=True)
        if release is None:
            time.sleep(600)
        while not look.execute(
            "SELECT 1 FROM pg_locks WHERE NOT granted AND relation = 'items'::regclass"
        ).fetchall():
            time.sleep(0.02)
        time.sleep(release)
        held.rollback()
    """
)


def _hold_items(
    server: postgres_server.Server, database: str, release: float | None = None
) -> tuple[subprocess.Popen[str], int]:
    """Start the holding session; returns once it holds its lock, with the server's pid of its session."""
    args = [sys.executable, "-c", _HOLDER, server.dsn(database)] + ([] if release is None else [str(release)])
    holder = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None
    return holder, int(holder.stdout.readline())


def _database(url: str) -> str:
    return url.rsplit("/", 1)[1]


def _items(project: Project, url: str) -> None:
    """The first revision (``items``), applied."""
    project.write_revision(
        FIRST, None, "op.create_table('items', sa.Column('id', sa.Integer), sa.Column('name', sa.String))"
    )
    assert project.alembic("-x", f"url={url}", "upgrade", "head", pass_db=False).returncode == 0


def _counting_attempts(project: Project, attempts: Path, limits: str = "") -> None:
    """The second revision: adds a column to items, noting each attempt in a file (the savepoint undoes what
    the database saw of an attempt, not the file)."""
    project.write_revision(
        SECOND,
        FIRST,
        f"with open({str(attempts)!r}, 'a') as f:\n    f.write('attempt\\n')\n{limits}"
        "op.add_column('items', sa.Column('note', sa.String))",
    )


def _history(server: postgres_server.Server, database: str) -> list[tuple[object, ...]]:
    return server.sql("SELECT version, direction, status FROM migration_history ORDER BY id", database)


def test_each_revision_runs_with_the_lock_and_statement_timeouts(
    project: Project, pg_server: postgres_server.Server, pg_url: str
) -> None:
    """The server's own settings, as each revision's statements see them: the defaults, then the options, in a
    transactional revision (SET LOCAL) and in a non-transactional one (the session's, during the step)."""
    record = (
        "op.execute(\"INSERT INTO seen SELECT current_setting('lock_timeout'), current_setting('statement_timeout')\")"
    )
    project.write_revision(FIRST, None, f"op.execute('CREATE TABLE seen (lock text, statement text)')\n{record}")
    project.write_revision(SECOND, FIRST, record)
    project.write_revision(THIRD, SECOND, record, header="transactional = False")
    url = ["-x", f"url={pg_url}"]
    assert project.alembic(*url, "upgrade", FIRST, pass_db=False).returncode == 0
    limits = ["-x", "revision_lock_timeout=2", "-x", "revision_statement_timeout=0.25"]
    done = project.alembic(*url, *limits, "upgrade", "head", pass_db=False)
    assert done.returncode == 0, done.stderr
    seen = pg_server.sql("SELECT * FROM seen", _database(pg_url))
    assert seen == [("5s", "5min"), ("2s", "250ms"), ("2s", "250ms")]


def test_a_handed_over_session_keeps_its_own_settings(
    project: Project, pg_server: postgres_server.Server, pg_url: str
) -> None:
    """A program that hands its connection over (Alembic's cookbook) gets it back with the timeouts it had set,
    after a non-transactional revision set the run's for the session."""
    project.write_revision(FIRST, None, "op.execute('CREATE TABLE t (id int)')", header="transactional = False")
    program = textwrap.dedent(
        f"""
        import sqlalchemy as sa
        from alembic import command
        from alembic.config import Config
        with sa.create_engine({pg_url!r}).connect() as connection:
            connection.exec_driver_sql("SET lock_timeout = '7s'")
            connection.exec_driver_sql("SET statement_timeout = '8s'")
            connection.commit()
            config = Config("alembic.ini")
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
            print(*connection.exec_driver_sql(
                "SELECT current_setting('lock_timeout'), current_setting('statement_timeout')"
            ).one())
        """
    )
    ran = subprocess.run(
        [sys.executable, "-c", program], cwd=project.root, env=project.env(), capture_output=True, text=True
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.split() == ["7s", "8s"]
    assert pg_server.sql("SELECT count(*) FROM t", _database(pg_url)) == [(0,)]


def _upgrade_while_held(
    project: Project, server: postgres_server.Server, url: str, release: float | None, *options: str
) -> tuple[subprocess.CompletedProcess[str], int]:
    """``upgrade head`` with ``options`` while the holding session (``_hold_items``) keeps items locked; returns
    the run and the holding session's server pid."""
    holder, session = _hold_items(server, _database(url), release)
    try:
        extra = [word for option in options for word in ("-x", option)]
        return project.alembic("-x", f"url={url}", *extra, "upgrade", "head", pass_db=False), session
    finally:
        holder.kill()
        holder.wait()


def test_a_lock_never_released_fails_the_revision_naming_the_holder(
    project: Project, pg_server: postgres_server.Server, pg_url: str, tmp_path: Path
) -> None:
    database = _database(pg_url)
    _items(project, pg_url)
    attempts = tmp_path / "attempts"
    _counting_attempts(project, attempts)
    failed, session = _upgrade_while_held(
        project, pg_server, pg_url, None, "revision_lock_timeout=0.2", "lock_retries=2"
    )
    assert failed.returncode == 6, failed.stderr
    line = error_line(failed)
    assert "revision_lock_timeout (0.2 s) in each of 3 attempts; the lock is held by shop-frontend (" in line, line
    assert f" {session} from 127.0.0.1, connected since " in line and "), idle in transaction since " in line, line
    assert attempts.read_text() == "attempt\n" * 3  # the first attempt and two retries
    assert pg_server.sql("SELECT version_num FROM alembic_version", database) == [(FIRST,)]
    assert _history(pg_server, database) == [(FIRST, "up", "success"), (SECOND, "up", "failed")]
    columns = pg_server.sql("SELECT column_name FROM information_schema.columns WHERE table_name = 'items'", database)
    assert sorted(columns) == [("id",), ("name",)]


def test_a_lock_released_while_the_revision_retries_lets_the_run_succeed(
    project: Project, pg_server: postgres_server.Server, pg_url: str, tmp_path: Path
) -> None:
    """The holder lets go a second after it saw the migration wait, so the first attempt (0.3 s) surely timed
    out: the revision's code ran again from its savepoint and the step is recorded once."""
    database = _database(pg_url)
    _items(project, pg_url)
    attempts = tmp_path / "attempts"
    _counting_attempts(project, attempts)
    done, _ = _upgrade_while_held(project, pg_server, pg_url, 1.0, "revision_lock_timeout=0.3", "lock_retries=10")
    assert done.returncode == 0, done.stderr
    assert len(attempts.read_text().splitlines()) >= 2
    assert pg_server.sql("SELECT version_num FROM alembic_version", database) == [(SECOND,)]
    assert _history(pg_server, database) == [(FIRST, "up", "success"), (SECOND, "up", "success")]
    assert ("note",) in pg_server.sql("SELECT column_name FROM information_schema.columns", database)


def test_a_statement_past_the_statement_timeout_fails_at_once(
    project: Project, pg_server: postgres_server.Server, pg_url: str, tmp_path: Path
) -> None:
    database = _database(pg_url)
    _items(project, pg_url)
    attempts = tmp_path / "attempts"
    _counting_attempts(project, attempts, limits="op.execute('SELECT pg_sleep(5)')\n")
    failed = project.alembic(
        "-x", f"url={pg_url}", "-x", "revision_statement_timeout=0.5", "upgrade", "head", pass_db=False
    )
    assert failed.returncode == 6, failed.stderr
    assert "a statement ran longer than revision_statement_timeout (0.5 s)" in error_line(failed)
    assert attempts.read_text() == "attempt\n"  # not retried
    assert _history(pg_server, database) == [(FIRST, "up", "success"), (SECOND, "up", "failed")]


def test_a_non_transactional_revision_runs_concurrently_under_the_dirty_mark(
    project: Project, pg_server: postgres_server.Server, pg_url: str
) -> None:
    """CREATE INDEX CONCURRENTLY cannot run in a transaction; a failing one leaves the dirty mark, which stops
    the next run until repair clears it."""
    database = _database(pg_url)
    url = ["-x", f"url={pg_url}"]
    _items(project, pg_url)
    pg_server.sql("INSERT INTO items VALUES (1, 'same'), (2, 'same')", database)
    project.write_revision(
        SECOND,
        FIRST,
        "op.execute('CREATE INDEX CONCURRENTLY ix_items_id ON items (id)')",
        header="transactional = False",
    )
    assert project.alembic(*url, "upgrade", "head", pass_db=False).returncode == 0
    assert pg_server.sql("SELECT indisvalid FROM pg_index WHERE indexrelid = 'ix_items_id'::regclass", database) == [
        (True,)
    ]
    assert status_parts(project.migrate(*url, "status", pass_db=False).stdout)[0]["Dirty"] == "no"
    project.write_revision(
        THIRD, SECOND, "op.execute('CREATE UNIQUE INDEX CONCURRENTLY ux_items_name ON items (name)')",
        header="transactional = False",
    )  # fmt: skip
    failed = project.alembic(*url, "upgrade", "head", pass_db=False)
    assert failed.returncode == 6, failed.stderr
    assert "marked dirty" in error_line(failed)
    status = project.migrate(*url, "status", pass_db=False).stdout
    assert f"\nDirty           yes: {THIRD} did not finish" in status, status
    again = project.alembic(*url, "upgrade", "head", pass_db=False)
    assert again.returncode == 8, again.stderr
    repaired = project.migrate(*url, "repair", pass_db=False)
    assert repaired.returncode == 0, repaired.stderr
    assert status_parts(project.migrate(*url, "status", pass_db=False).stdout)[0]["Dirty"] == "no"


@pytest.mark.parametrize(
    "commit",
    [
        "op.get_bind().exec_driver_sql('COMMIT')",
        "op.execute('COMMIT AND CHAIN')",  # PostgreSQL's own form, which DuckDB's parser cannot read
        "op.execute('/* done */ SAVEPOINT mine')",
    ],
)
def test_a_commit_sent_through_the_driver_is_refused(
    project: Project, pg_server: postgres_server.Server, pg_url: str, commit: str
) -> None:
    database = _database(pg_url)
    _items(project, pg_url)
    project.write_revision(SECOND, FIRST, f"op.execute('CREATE TABLE half (id int)')\n{commit}")
    failed = project.alembic("-x", f"url={pg_url}", "upgrade", "head", pass_db=False)
    assert failed.returncode == 6, failed.stderr
    assert "manages the transaction, which the revision already runs in" in error_line(failed)
    assert pg_server.sql("SELECT to_regclass('half') IS NULL", database) == [(True,)]
    assert pg_server.sql("SELECT version_num FROM alembic_version", database) == [(FIRST,)]


@pytest.mark.parametrize(
    "commit",
    ["op.get_bind().connection.dbapi_connection.commit()", "op.get_bind().connection.cursor().execute('COMMIT')"],
)
def test_a_commit_past_every_hook_is_reported_as_committed_and_marks_the_database_dirty(
    project: Project, pg_server: postgres_server.Server, pg_url: str, commit: str
) -> None:
    """A revision that commits through the driver's own connection or cursor, where no hook sees it: what it did
    before is committed, and the run says so (not "nothing was applied") and marks the database dirty."""
    database = _database(pg_url)
    _items(project, pg_url)
    project.write_revision(SECOND, FIRST, f"op.execute('CREATE TABLE half (id int)')\n{commit}")
    failed = project.alembic("-x", f"url={pg_url}", "upgrade", "head", pass_db=False)
    assert failed.returncode == 6, failed.stderr
    line = error_line(failed)
    assert "ended its own transaction" in line and "is committed and the database is marked dirty" in line
    assert pg_server.sql("SELECT to_regclass('half') IS NULL", database) == [(False,)]  # committed, and said so
    assert pg_server.sql("SELECT version_num FROM alembic_version", database) == [(FIRST,)]
    assert status_parts(project.migrate("-x", f"url={pg_url}", "status", pass_db=False).stdout)[0]["Dirty"].startswith(
        f"yes: {SECOND}"
    )


@pytest.mark.parametrize(
    "option", ["threads=2", "memory_limit=1GB", "storage_compatibility=latest", "temp_directory=/tmp",
               "backup_dir=/tmp", "backup_keep=2", "backup=true"],
)  # fmt: skip
def test_duckdb_options_are_refused_on_postgresql(
    project: Project, pg_server: postgres_server.Server, pg_url: str, option: str
) -> None:
    project.write_revision(FIRST, None, "op.create_table('items', sa.Column('id', sa.Integer))")
    refused = project.alembic("-x", f"url={pg_url}", "-x", option, "upgrade", "head", pass_db=False)
    assert refused.returncode == 2, refused.stderr
    name = option.split("=")[0]
    assert f"option {name!r} applies to DuckDB files only" in error_line(refused)
    assert ("pg_dump" in error_line(refused)) is name.startswith("backup")
    assert pg_server.sql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", _database(pg_url)) == [(0,)]


def test_options_of_the_other_engine_are_refused_from_alembic_ini_too(
    project: Project, pg_server: postgres_server.Server, pg_url: str
) -> None:
    """What alembic.ini sets counts as given; ``backup=false`` asks for nothing and is accepted; the PostgreSQL
    options are refused on a DuckDB file, which is then not created."""
    project.write_revision(FIRST, None, "op.create_table('items', sa.Column('id', sa.Integer))")
    ini = project.root / "alembic.ini"
    plain = ini.read_text()
    ini.write_text(plain.replace("[ccdash_alembic]\n", "[ccdash_alembic]\nbackup_keep = 3\n"))
    refused = project.alembic("-x", f"url={pg_url}", "upgrade", "head", pass_db=False)
    assert refused.returncode == 2 and "option 'backup_keep' applies to DuckDB" in error_line(refused)
    ini.write_text(plain)
    done = project.alembic("-x", f"url={pg_url}", "-x", "backup=false", "upgrade", "head", pass_db=False)
    assert done.returncode == 0, done.stderr
    for option in ("revision_lock_timeout=1", "revision_statement_timeout=0", "lock_retries=0"):
        on_file = project.alembic("-x", option, "upgrade", "head")
        assert on_file.returncode == 2, on_file.stderr
        assert f"option {option.split('=')[0]!r} applies to PostgreSQL only" in error_line(on_file)
    assert not project.db.exists()


def test_the_postgresql_options_are_listed_and_checked(project: Project) -> None:
    listed = project.migrate("options", pass_db=False)
    assert listed.returncode == 0, listed.stderr
    for name, default in (
        ("revision_lock_timeout", "5.0"),
        ("revision_statement_timeout", "300.0"),
        ("lock_retries", "3"),
    ):
        assert any(line.split()[:2] == [name, default] for line in listed.stdout.splitlines()), listed.stdout
    for bad in ("lock_retries=-1", "lock_retries=many", "revision_lock_timeout=nan", "revision_statement_timeout=-2"):
        refused = project.alembic("-x", bad, "upgrade", "head")
        assert refused.returncode == 2 and error_line(refused).startswith(f"error: option {bad.split('=')[0]!r}: ")


_PROGRAM = textwrap.dedent(
    """
    import sys
    import sqlalchemy as sa
    from alembic import command
    from alembic.config import Config

    url, ini = sys.argv[1], sys.argv[2]
    with sa.create_engine(url).connect() as connection:
        connection.exec_driver_sql("CREATE TABLE app (x text)")
        connection.commit()
        connection.begin()
        connection.exec_driver_sql("INSERT INTO app VALUES ('the work of the program')")
        config = Config(ini)
        config.attributes["connection"] = connection
        try:
            command.upgrade(config, "head")
        except Exception as error:
            print("raised", type(error).__name__)
        print("open", connection.in_transaction())
        print("rows", connection.exec_driver_sql("SELECT count(*) FROM app").scalar())
        connection.commit()
    """
)


def test_a_failing_revision_in_the_program_s_transaction_leaves_that_transaction_to_the_program(
    project: Project, pg_server: postgres_server.Server, pg_url: str
) -> None:
    """Alembic's cookbook: a program hands over a connection in a transaction of its own. A revision that fails
    is rolled back to its savepoint; the program's own work and the revisions before stay in its transaction,
    which the run neither commits nor rolls back, and the program gets the error."""
    database = _database(pg_url)
    project.write_revision(FIRST, None, "op.create_table('items', sa.Column('id', sa.Integer))")
    project.write_revision(SECOND, FIRST, "op.execute('CREATE TABLE half (id int)')\nraise RuntimeError('broken')")
    ran = subprocess.run(
        [sys.executable, "-c", _PROGRAM, pg_url, str(project.root / "alembic.ini")],
        cwd=project.root,
        env=project.env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.stdout.split("\n")[:3] == ["raised MigrationFailed", "open True", "rows 1"], ran.stdout + ran.stderr
    assert pg_server.sql("SELECT x FROM app", database) == [("the work of the program",)]  # the program committed
    assert pg_server.sql("SELECT version_num FROM alembic_version", database) == [(FIRST,)]
    assert pg_server.sql("SELECT to_regclass('items') IS NOT NULL, to_regclass('half') IS NULL", database) == [
        (True, True)
    ]
