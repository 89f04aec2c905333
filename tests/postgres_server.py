"""A real PostgreSQL 15 server for the tests, started by them and stopped at the end.

The server comes from the machine's Debian packages (``postgresql-15``, which the README's test command
installs when it is missing). Each test process (each xdist worker) starts its own in a temporary data folder,
on a free loopback port, with ``fsync`` off (a test server's data is thrown away). PostgreSQL refuses to run
as root, so under root the server runs as the ``postgres`` user the package created. Each test gets a database
of its own (``Server.new_database``), so tests never see each other's tables or locks.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

BIN_DIRS = (Path("/usr/lib/postgresql/15/bin"),)
SUPERUSER = "postgres"
GATE = 4242  # the advisory lock key a gated revision waits for (``Server.gate``)
GATED = f'op.execute("SELECT pg_advisory_xact_lock({GATE})")'  # a revision's line that waits at the gate


def bin_dir() -> Path:
    """Where initdb, pg_ctl and postgres are; an error saying how to install them when they are not."""
    for folder in BIN_DIRS:
        if (folder / "initdb").is_file():
            return folder
    raise RuntimeError("PostgreSQL 15 is not installed: apt-get install -y postgresql-15")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _as_server_user() -> tuple[Callable[[], None] | None, int | None]:
    """How to run the server's programs: as the ``postgres`` user when this process is root (the server
    refuses root), as this user otherwise."""
    if os.geteuid() != 0:
        return None, None
    user = pwd.getpwnam(SUPERUSER)

    def drop() -> None:
        os.setgid(user.pw_gid)
        os.setuid(user.pw_uid)

    return drop, user.pw_uid


@dataclass
class Server:
    """A running server: its data folder, port and binaries."""

    folder: Path
    port: int
    bin: Path

    def url(self, database: str = "postgres", driver: str = "postgresql+psycopg") -> str:
        return f"{driver}://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def dsn(self, database: str = "postgres") -> str:
        """A libpq connection string (psycopg.connect, psql); the name quoted as libpq reads a value, so any
        name (spaces, quotes) works."""
        quoted = "'" + database.replace("\\", "\\\\").replace("'", "\\'") + "'"
        return f"host=127.0.0.1 port={self.port} user={SUPERUSER} dbname={quoted}"

    def sql(self, statement: str, database: str = "postgres") -> list[tuple[object, ...]]:
        """Run one statement in autocommit and return its rows (none for a statement that returns none)."""
        import psycopg

        with psycopg.connect(self.dsn(database), autocommit=True) as connection:
            cursor = connection.execute(statement)
            return list(cursor.fetchall()) if cursor.description else []

    def new_database(self, prefix: str = "t") -> str:
        """A new, empty database of its own, and its name."""
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        self.sql(f'CREATE DATABASE "{name}"')
        return name

    @contextmanager
    def gate(self, database: str) -> Iterator[Callable[[], None]]:
        """Hold the gate (advisory lock ``GATE``) on ``database`` until the returned function, or the end of the
        block, opens it: a revision running ``GATED`` waits there exactly as long as the test wants, with no
        sleep to guess."""
        import psycopg

        with psycopg.connect(self.dsn(database), autocommit=True) as connection:
            connection.execute("SELECT pg_advisory_lock(%s)", (GATE,))

            def open_gate() -> None:
                connection.execute("SELECT pg_advisory_unlock(%s)", (GATE,))

            yield open_gate

    def waiting_at_gate(self, database: str) -> bool:
        """Whether a session of ``database`` waits at the gate now."""
        return bool(
            self.sql(
                f"SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND objid = {GATE}"
                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
                database,
            )
        )

    def stop(self) -> None:
        drop, _ = _as_server_user()
        subprocess.run(
            [str(self.bin / "pg_ctl"), "-D", str(self.folder / "data"), "-m", "immediate", "-w", "stop"],
            preexec_fn=drop,
            capture_output=True,
            check=False,
        )
        shutil.rmtree(self.folder, ignore_errors=True)


def start() -> Server:
    """initdb a temporary data folder and start a server on a free loopback port; returns once it accepts
    connections."""
    binaries = bin_dir()
    drop, uid = _as_server_user()
    folder = Path(tempfile.mkdtemp(prefix="ccdash-pg-"))
    os.chmod(folder, 0o755)
    if uid is not None:
        os.chown(folder, uid, -1)
    data = folder / "data"
    run = {"preexec_fn": drop, "capture_output": True, "text": True, "check": False}
    made = subprocess.run(
        [str(binaries / "initdb"), "-D", str(data), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "--no-sync"],
        **run,  # type: ignore[call-overload]
    )
    if made.returncode != 0:
        raise RuntimeError(f"initdb failed: {made.stderr.strip()}")
    port = _free_port()
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
    started = subprocess.run(
        [str(binaries / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(folder / "log"), "-w", "start"],
        **run,  # type: ignore[call-overload]
    )
    if started.returncode != 0:
        log = (folder / "log").read_text() if (folder / "log").exists() else ""
        raise RuntimeError(f"pg_ctl start failed: {started.stderr.strip()} {log[-2000:]}")
    return Server(folder, port, binaries)
