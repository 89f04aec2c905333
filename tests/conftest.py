"""Shared fixtures: a migration project in a temporary folder, run with the stock ``alembic`` command.

Every test works on a real DuckDB file and real processes: ``Project.alembic(...)`` runs the ``alembic``
console script of this environment against a copy of the repository's ``alembic.ini``, ``env.py`` and
``script.py.mako``, with revisions the test writes.
"""

from __future__ import annotations

import compileall
import fcntl
import hashlib
import os
import pty
import re
import shutil
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import forked_commands
import postgres_server
import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PROJECT_FILES = ("alembic.ini", "env.py", "script.py.mako")


def pytest_sessionstart(session: pytest.Session) -> None:
    """Compile the package, the repository's environment and CCDash's revisions into their ``__pycache__``.

    The processes tests start write no bytecode (``PYTHONDONTWRITEBYTECODE``: a revision file a test rewrites
    within a second must never run from a stale cache, and a project's folder must hold only what the test
    wrote), so without this each of the suite's many process starts compiled the whole package again. A file
    edited later is compiled from source again, as Python checks each cache against its source."""
    if hasattr(session.config, "workerinput"):
        return  # a parallel worker: the controlling process has compiled
    for folder in (REPO / "ccdash_alembic", REPO / "versions"):
        compileall.compile_dir(folder, quiet=2)
    compileall.compile_file(REPO / "env.py", quiet=2)


@dataclass
class Project:
    """A migration environment like the repository's, with its own ``versions/`` and database file."""

    root: Path
    db: Path
    home: Path

    @property
    def versions(self) -> Path:
        return self.root / "versions"

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "CCDASH_DB_PATH"}
        env.update(HOME=str(self.home), PYTHONDONTWRITEBYTECODE="1", **extra)
        return env

    def alembic(
        self, *args: str, db: Path | None = None, pass_db: bool = True, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run the stock ``alembic`` command in the project folder, with ``-x db=`` the project's file unless
        ``pass_db`` is false."""
        return self._run("alembic", args, db, pass_db, env)

    def migrate(
        self, *args: str, db: Path | None = None, pass_db: bool = True, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``ccdash-migrate`` the same way."""
        return self._run("ccdash-migrate", args, db, pass_db, env)

    def start(
        self,
        *args: str,
        stdout: int = subprocess.PIPE,
        stderr: int = subprocess.PIPE,
        url: str | None = None,
        env: dict[str, str] | None = None,
    ) -> subprocess.Popen[str]:
        """Start the stock ``alembic`` command on the project's file (or the database ``url``) in the background,
        as a real process of its own, for tests that meet it with another process or kill it."""
        target = f"url={url}" if url else f"db={self.db}"
        return subprocess.Popen(
            [str(BIN / "alembic"), "-x", target, *args],
            cwd=self.root,
            env=env or self.env(),
            stdout=stdout,
            stderr=stderr,
            text=True,
        )

    def _run(
        self, program: str, args: tuple[str, ...], db: Path | None, pass_db: bool, env: dict[str, str] | None
    ) -> subprocess.CompletedProcess[str]:
        target = ["-x", f"db={db or self.db}"] if pass_db else []
        return forked_commands.run(program, [*target, *args], cwd=self.root, env=env or self.env(), timeout=300)

    def write_revision(
        self,
        revision: str,
        down_revision: str | None,
        upgrade: str = "pass",
        downgrade: str = "pass",
        message: str = "step",
        header: str = "",
    ) -> Path:
        """Write ``versions/<revision>_<slug>.py`` with the given bodies (indented for you)."""
        slug = message.replace(" ", "_")
        path = self.versions / f"{revision}_{slug}.py"
        path.write_text(
            f'"""{message}"""\n'
            "import sqlalchemy as sa\n"
            "from alembic import op\n"
            f"{textwrap.dedent(header)}\n"
            f"revision = {revision!r}\n"
            f"down_revision = {down_revision!r}\n"
            "branch_labels = None\n"
            "depends_on = None\n\n\n"
            f"def upgrade():\n{textwrap.indent(textwrap.dedent(upgrade).strip() or 'pass', '    ')}\n\n\n"
            f"def downgrade():\n{textwrap.indent(textwrap.dedent(downgrade).strip() or 'pass', '    ')}\n"
        )
        return path

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        connection = duckdb.connect(str(self.db), read_only=read_only)
        try:
            yield connection
        finally:
            connection.close()

    def rows(self, sql: str) -> list[tuple[object, ...]]:
        with self.connect(read_only=True) as connection:
            return connection.execute(sql).fetchall()

    def log_plans(self) -> None:
        """Set the ``ccdash_alembic`` logger to DEBUG in the project's alembic.ini, so that each run's stderr
        has every table change's plan (``rebuild change of items (why)`` and its SQL)."""
        ini = self.root / "alembic.ini"
        section = "[logger_ccdash_alembic]\nlevel = INFO\n"
        text = ini.read_text()
        assert section in text
        ini.write_text(text.replace(section, section.replace("INFO", "DEBUG")))


def items_revisions(project: Project, slow: float = 0.0, count: int = 3) -> None:
    """The first ``count`` of three small revisions: create ``items``; add ``items.name`` (sleeping ``slow``
    seconds first, for timings); index it."""
    revisions = [
        ("one", "op.create_table('items', sa.Column('id', sa.Integer, primary_key=True))", "op.drop_table('items')"),
        (
            "two",
            f"import time\ntime.sleep({slow})\nop.add_column('items', sa.Column('name', sa.String))",
            "op.drop_column('items', 'name')",
        ),
        ("three", "op.create_index('ix_items_name', 'items', ['name'])", "op.drop_index('ix_items_name', 'items')"),
    ]
    parent = None
    for number, (message, upgrade, downgrade) in enumerate(revisions[:count], start=1):
        revision = f"2025010100000{number}"
        project.write_revision(revision, parent, upgrade, downgrade, message=message)
        parent = revision


def counting_revisions(project: Project) -> None:
    """Three revisions that each take a while and leave one row in ``ran``, so double application would show."""
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


def error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The one ``error: `` line a refused or failed run prints (whatever else stderr holds)."""
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def digest(path: Path) -> str:
    """The SHA-256 of a file's bytes: equal digests before and after a run mean it wrote nothing."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def status_parts(text: str) -> tuple[dict[str, str], str]:
    """``status``'s piped output: its ``label  value`` lines, then its revision table."""
    head, _, table = text.partition("\n\n")
    fields = {}
    for line in head.splitlines():
        label, value = re.split(r"\s{2,}", line, maxsplit=1)
        fields[label] = value
    return fields, table


def new_project(folder: Path) -> Project:
    """A project in ``folder``: ``project/`` (environment files, empty ``versions/``), ``home/``, and
    ``data/ccdash.db`` not yet created."""
    root = folder / "project"
    (root / "versions").mkdir(parents=True)
    for name in PROJECT_FILES:
        shutil.copy(REPO / name, root / name)
    home = folder / "home"
    home.mkdir()
    return Project(root=root, db=folder / "data" / "ccdash.db", home=home)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return new_project(tmp_path)


def database_template(factory: pytest.TempPathFactory, prepare: Callable[[Project], object]) -> Path:
    """The database folder of a project ``prepare`` wrote and migrated, for a module- or session-scoped fixture:
    tests that start from the same migrated state copy it (``use_database``) rather than each running the same
    upgrade again."""
    template = new_project(factory.mktemp("template"))
    prepare(template)
    return template.db.parent


def use_database(project: Project, template: Path) -> None:
    """Give ``project`` a copy of a ``database_template`` folder (its revision files are the test's to write)."""
    shutil.copytree(template, project.db.parent)


def snapshot(path: Path) -> dict[str, object]:
    """Everything a database holds, comparable with ``==``: catalog SQL of every object and every row."""
    connection = duckdb.connect(str(path), read_only=True)
    try:
        state: dict[str, object] = {
            "tables": connection.execute("SELECT table_name, sql FROM duckdb_tables() ORDER BY 1").fetchall(),
            "indexes": connection.execute("SELECT index_name, sql FROM duckdb_indexes() ORDER BY 1").fetchall(),
            "sequences": connection.execute(
                "SELECT sequence_name, last_value FROM duckdb_sequences() ORDER BY 1"
            ).fetchall(),
            "views": connection.execute(
                "SELECT view_name, sql FROM duckdb_views() WHERE NOT internal ORDER BY 1"
            ).fetchall(),
        }
        for (table,) in connection.execute("SELECT table_name FROM duckdb_tables() ORDER BY 1").fetchall():
            state[f"rows:{table}"] = sorted(connection.execute(f'SELECT * FROM "{table}"').fetchall(), key=repr)
        return state
    finally:
        connection.close()


def hold(db: Path, seconds: float = 60) -> subprocess.Popen[str]:
    """Another program holding the database open for writing, as a running CCDash server does; returns once
    the file is held. The caller kills it."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, time\nc = duckdb.connect({str(db)!r})\nprint('held', flush=True)\ntime.sleep({seconds})",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def on_terminal(command: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, str]:
    """Run ``command`` with stdout and stderr on a pseudo-terminal (as an operator's shell would); return its
    exit code and everything it wrote, escape codes included."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env={
            **{k: v for k, v in env.items() if k not in ("NO_COLOR", "FORCE_COLOR")},
            "COLUMNS": "160",
            "TERM": "xterm",
        },
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=follower,
    )
    os.close(follower)
    output = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    code = process.wait(timeout=300)
    os.close(leader)
    return code, output.decode(errors="replace")


def locked_from_outside(path: Path) -> bool:
    """Whether another process is refused the file because a process holds DuckDB's lock on it."""
    probe = subprocess.run(
        [sys.executable, "-c", f"import duckdb; duckdb.connect({str(path)!r}).close()"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return probe.returncode != 0 and "lock" in probe.stderr.lower()


def interruptible() -> None:
    """``preexec_fn`` of a child a test interrupts with SIGINT, as Ctrl-C would: a shell without job control
    starts its background jobs with SIGINT ignored, the tests inherit that, and Python then keeps ignoring it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def built_once(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], None]) -> Path:
    """A folder ``build`` fills once per test run, shared by every parallel worker: the first to get here
    builds it under a lock, the others wait and reuse it, so the work is neither repeated nor serialised on
    one worker with every test that needs it."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # the workers' temporary folders share this parent
    folder = base / name
    with open(base / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / ".built").exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            build(folder)
            (folder / ".built").touch()
    return folder


DUCKDB_11 = "1.1.3"


@pytest.fixture(scope="session")
def duckdb11_python() -> Path:
    """A Python with DuckDB 1.1.3, the engine every CCDash release embeds, in a virtual environment of its own
    (created once, under .cache/)."""
    venv = REPO / ".cache" / f"duckdb-{DUCKDB_11}"
    python = venv / "bin" / "python"
    probe = [str(python), "-c", f"import duckdb; assert duckdb.__version__ == {DUCKDB_11!r}"]
    venv.parent.mkdir(exist_ok=True)
    # parallel test workers (and other checkouts' runs) share the environment: one creates it, the others wait
    with open(venv.parent / f"duckdb-{DUCKDB_11}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not python.exists() or subprocess.run(probe, capture_output=True).returncode != 0:
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
            subprocess.run(
                [str(python), "-m", "pip", "install", "--quiet", f"duckdb=={DUCKDB_11}"], check=True, timeout=600
            )
    return python


def run_in_duckdb11(python: Path, db: Path, script: str) -> subprocess.CompletedProcess[str]:
    """Run ``script`` with ``con`` opened on ``db`` by DuckDB 1.1.3."""
    code = f"import duckdb\ncon = duckdb.connect({str(db)!r})\n{textwrap.dedent(script)}\ncon.close()\n"
    return subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=120)


def repo_alembic(*args: str, db: Path, command: str = "alembic") -> subprocess.CompletedProcess[str]:
    """Run the stock command from the repository root, with CCDash's own revisions, on ``db``."""
    return forked_commands.run(command, ["-x", f"db={db}", *args], cwd=REPO, env=dict(os.environ), timeout=600)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[postgres_server.Server]:
    """A PostgreSQL 15 server of this test process's own (see ``postgres_server``), stopped at the end."""
    server = postgres_server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_url(pg_server: postgres_server.Server) -> str:
    """The URL of a new, empty database on the test server (``postgresql+psycopg://``), one per test."""
    return pg_server.url(pg_server.new_database())
