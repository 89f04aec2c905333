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
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.pool import NullPool

from ccdash_alembic.errors import DatabaseUnusable, UsageError, first_line
from ccdash_alembic.settings import Settings

ENV_VAR = "CCDASH_DB_PATH"
DEFAULT_PATH = "~/.ccdash/ccdash.db"


@dataclass(frozen=True)
class Target:
    """A resolved database: its URL, its file (None in memory) and where the choice came from."""

    url: URL
    path: Path | None
    source: str

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
        if not target.path.exists() or target.path.stat().st_size == 0:
            config["storage_compatibility_version"] = settings.storage_compatibility
    return sa.create_engine(target.url, poolclass=NullPool, connect_args={"config": config} if config else {})


def connect(engine: Engine, target: Target) -> Connection:
    """Open a connection, turning DuckDB's refusals to open the file into one-line errors."""
    try:
        return engine.connect()
    except sa.exc.DBAPIError as exc:
        message = first_line(exc)
        if "not a valid DuckDB database file" in message or "Could not read enough bytes" in message:
            raise DatabaseUnusable(
                f"{target.describe()} is not a readable DuckDB database ({message})",
                "Check the path, or restore the file from a backup.",
            ) from exc
        raise DatabaseUnusable(f"cannot open {target.describe()}: {message}", "Fix the cause and run again.") from exc
