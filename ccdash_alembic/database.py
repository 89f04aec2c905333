"""Which database a run works on, and how it is opened.

Resolution order: ``-x db=PATH`` or ``-x url=URL``, then ``$CCDASH_DB_PATH``, then ``~/.ccdash/ccdash.db``
(CCDash's own default; its folder is created).

Storage format: DuckDB 2.x writes new files in a format DuckDB 1.1 cannot open ("version number 999, but we
can only read version 64"), and every CCDash release embeds DuckDB 1.1. A file created here is therefore
written with ``storage_compatibility_version`` (``v1.0.0`` by default), and an existing file is opened as it is,
so it keeps its format.

Engines use no connection pool: a closed connection releases DuckDB's file lock at once, which the lock wait
of a second process and the read-only status page depend on.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.pool import NullPool

from ccdash_alembic.errors import DatabaseUnusable, Locked, UsageError, first_line
from ccdash_alembic.settings import Settings
from ccdash_alembic.tabledef import literal

ENV_VAR = "CCDASH_DB_PATH"
DEFAULT_PATH = "~/.ccdash/ccdash.db"


@dataclass(frozen=True)
class Target:
    """A resolved database: its URL, its file (None in memory) and where the choice came from."""

    url: URL
    path: Path | None
    source: str

    @property
    def is_new(self) -> bool:
        """A file that is not there yet, or is empty (DuckDB makes a new database of an empty file)."""
        return self.path is not None and (not self.path.exists() or self.path.stat().st_size == 0)

    def describe(self) -> str:
        where = str(self.path) if self.path is not None else self.url.render_as_string(hide_password=True)
        return f"{where} (from {self.source})"


def resolve(settings: Settings, environ: Mapping[str, str] = os.environ) -> Target:
    """Pick the database from the settings and the environment, refusing what cannot be a DuckDB file."""
    if settings.db and settings.url:
        raise UsageError("both -x db and -x url were given", "Give one of them.")
    if settings.url:
        try:
            url = sa.make_url(settings.url)
        except sa.exc.ArgumentError as exc:
            raise UsageError(f"-x url={settings.url!r} is not a database URL", "Use duckdb:///PATH.") from exc
        if url.get_backend_name() != "duckdb":
            raise UsageError(
                f"{url.get_backend_name()!r} databases are not supported, only DuckDB",
                "Use -x url=duckdb:///PATH or -x db=PATH.",
            )
        database = url.database or ":memory:"
        path = None if database == ":memory:" else _file_path(database)
        return Target(url.set(database=str(path) if path else database), path, "-x url")
    if settings.db:
        return _file_target(settings.db, "-x db")
    if environ.get(ENV_VAR):
        return _file_target(environ[ENV_VAR], ENV_VAR)
    return _file_target(DEFAULT_PATH, "default")


def _file_path(text: str) -> Path:
    return Path(os.path.expanduser(text)).absolute()


def _file_target(text: str, source: str) -> Target:
    path = _file_path(text)
    return Target(URL.create("duckdb", database=str(path)), path, source)


def _prepare_folder(path: Path) -> None:
    """Create the file's folder, or explain in one line why it cannot hold a database."""
    for parent in [path.parent, *path.parent.parents]:
        if parent.exists():
            if not parent.is_dir():
                raise UsageError(
                    f"cannot use {path}: {parent} is a file, not a folder", "Choose a path inside a folder."
                )
            break
    if path.is_dir():
        raise UsageError(f"cannot use {path}: it is a folder", "Give the path of a database file.")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create the folder {path.parent}: {exc.strerror}", "Choose a writable path.") from exc


def create_engine(target: Target, settings: Settings) -> Engine:
    """An engine for the target, with the run's DuckDB settings; a file that does not exist yet is created in the
    configured storage format."""
    config: dict[str, str | int] = {
        name: value
        for name, value in (
            ("memory_limit", settings.memory_limit),
            ("threads", settings.threads),
            ("temp_directory", settings.temp_directory),
        )
        if value is not None
    }
    if target.path is not None:
        _prepare_folder(target.path)
        if target.is_new:
            config["storage_compatibility_version"] = settings.storage_compatibility
    return sa.create_engine(target.url, poolclass=NullPool, connect_args={"config": config} if config else {})


def read_only_engine(target: Target) -> Engine:
    """An engine that opens the file read-only: it reads while other readers do, and never changes the file."""
    return sa.create_engine(target.url, poolclass=NullPool, connect_args={"read_only": True})


_HEADER_BYTES = 3 * 4096  # DuckDB's main header and two database headers come before the first block
_HOLDER = re.compile(r"Conflicting lock is held in (?P<program>.+?) \(PID (?P<pid>\d+)\)")


def connect(engine: Engine, target: Target, lock_timeout: float = 0.0) -> Connection:
    """Open a connection, waiting up to ``lock_timeout`` seconds while another process holds the file.

    Only one process may open a DuckDB file for writing; a second one is refused at once. The file lock is
    therefore the mutex between migrations (and between a migration and a running CCDash): a second run
    waits for the first, then sees what it did. DuckDB's other refusals become one-line errors.
    """
    deadline = time.monotonic() + lock_timeout
    delay = 0.05
    announced = False
    while True:
        try:
            connection = engine.connect()
        except sa.exc.DBAPIError as exc:
            message = first_line(exc)
            holder = _HOLDER.search(message)
            if holder is None:
                raise _unusable(target, message) from exc
            holder_name = f"{holder['program']} (PID {holder['pid']})"
            if time.monotonic() >= deadline:
                raise Locked(
                    f"{target.describe()} is in use by {holder_name}"
                    + (f" and stayed in use for {lock_timeout:g} s" if lock_timeout else ""),
                    "Stop that program (a running CCDash server, a DuckDB shell) and run again, or wait longer "
                    "with -x lock_timeout=SECONDS",
                    holder_name,
                ) from exc
            if not announced:
                sys.stderr.write(f"Waiting for {holder_name} to release the database (up to {lock_timeout:g} s)\n")
                announced = True
            time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 2, 1.0)
            continue
        try:
            _verify_complete(connection, target)
        except BaseException:
            connection.close()
            raise
        return connection


def _verify_complete(connection: Connection, target: Target) -> None:
    """Refuse a file shorter than its tables' data blocks need (a copy cut short, a full disk).

    DuckDB reads blocks only when they are used, so such a file opens and fails later, in the middle of a
    migration; the block layout (``pragma_storage_info``) tells at once, without reading the data.
    """
    if target.path is None:
        return
    try:
        block_size = connection.exec_driver_sql("SELECT block_size FROM pragma_database_size()").scalar()
        tables = connection.exec_driver_sql(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() AND NOT temporary"
        ).fetchall()
        last = -1
        for (table,) in tables:
            found = connection.exec_driver_sql(
                f"SELECT max(block_id) FROM pragma_storage_info({literal(table)}) WHERE block_id >= 0"
            ).scalar()
            last = max(last, int(found) if found is not None else -1)
        connection.rollback()
    except sa.exc.DBAPIError as exc:
        raise _unusable(target, first_line(exc)) from exc
    needed = _HEADER_BYTES + (last + 1) * int(block_size or 0)
    size = target.path.stat().st_size
    if last >= 0 and size < needed:
        raise DatabaseUnusable(
            f"{target.describe()} is truncated: it has {size} bytes, its data needs {needed}",
            "Restore the file from a backup (ccdash-migrate restore)",
        )


def _unusable(target: Target, message: str) -> DatabaseUnusable:
    if "not a valid DuckDB database file" in message or "Could not read enough bytes" in message:
        return DatabaseUnusable(
            f"{target.describe()} is not a readable DuckDB database ({message})",
            "Check the path, or restore the file from a backup.",
        )
    return DatabaseUnusable(f"cannot open {target.describe()}: {message}", "Fix the cause and run again.")
