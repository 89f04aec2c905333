"""Which database a run works on, and how it is opened.

Resolution order, as Alembic's conventions have it: a connection (or engine) a program put in
``config.attributes["connection"]`` (Alembic's cookbook, pytest-alembic) is used as given (``handed_over``);
else ``-x db=PATH`` or ``-x url=URL``; else ``sqlalchemy.url`` of the configuration; else the application's
own (an environment variable, then a default path, whose folder is created: ``ccdash_alembic.runtime.application``);
a project without one must name it. An empty value at any step is an error, never a reason to go on to the
next: that would work on a database nobody named.

Storage format: DuckDB 2.x writes new files in a format DuckDB 1.1 cannot open ("version number 999, but we
can only read version 64"), and every CCDash release embeds DuckDB 1.1. A file created here is therefore
written with ``storage_compatibility_version`` (``v1.0.0`` by default), and an existing file is opened as it is,
so it keeps its format.

Engines use no connection pool: a closed connection releases DuckDB's file lock at once, which the lock wait
of a second process and the read-only status page depend on.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.pool import NullPool

from ccdash_alembic.ddl import catalog, fileheader
from ccdash_alembic.ddl.dialect import SAFE_OPEN as SAFE_OPEN
from ccdash_alembic.errors import DatabaseUnusable, HistoryConflict, Locked, UsageError, first_line
from ccdash_alembic.runtime import engines, server_lock
from ccdash_alembic.runtime.application import Application
from ccdash_alembic.runtime.settings import Settings


@dataclass(frozen=True)
class Target:
    """A resolved database: its URL, its file (None in memory) and where the choice came from; ``handed``: a
    connection or engine of the calling program, so this process may hold the file open already."""

    url: URL
    path: Path | None
    source: str
    handed: bool = False

    @property
    def server(self) -> bool:
        """A database on a server (PostgreSQL): no file to back up, copy or check; the server's lock."""
        return self.url.get_backend_name() != engines.DUCKDB

    @property
    def is_new(self) -> bool:
        """A file that is not there yet. An empty file is not new: opening it is refused (``_unusable``) by
        every command alike, rather than read as an empty database by some and refused by others."""
        return self.path is not None and not self.path.exists()

    def describe(self) -> str:
        where = str(self.path) if self.path is not None else shown(self.url.render_as_string(hide_password=False))
        return f"{where} (from {self.source})"


# The password of a URL as it was typed (a message may repeat a URL that does not even parse): after "user:" up
# to the LAST "@" (a password with an unescaped "@" in it is masked whole), or libpq's password= parameter.
_PASSWORD = re.compile(r"(?P<keep>://[^:/@]*:).*(?=@)|(?P<param>[?&]password=)[^&]*")


def shown(url: str) -> str:
    """``url`` as every printed line gives it: with its password masked."""
    return _PASSWORD.sub(lambda m: f"{m['keep'] or m['param']}***", url)


def resolve(settings: Settings, environ: Mapping[str, str] = os.environ) -> Target:
    """Pick the database from the settings and the environment, refusing what cannot be a database of this
    layer, and options of the other engine (every command alike, those that only read as well)."""
    target = _resolve(settings, environ)
    settings.refuse_other_engine(target.server)
    return target


def _resolve(settings: Settings, environ: Mapping[str, str]) -> Target:
    if settings.db and settings.url:
        raise UsageError("both -x db and -x url were given", "Give one of them.")
    if settings.url:
        return _url_target(settings.url, "-x url", f"-x url={shown(settings.url)}")
    if settings.db:
        return _file_target(_file_name(settings.db, f"-x db={settings.db}"), "-x db")
    if settings.config_url is not None:
        if not settings.config_url.strip():  # "sqlalchemy.url =" left empty: never the default instead
            fallback = settings.application.fallback()
            raise UsageError(
                "sqlalchemy.url is empty in the configuration file",
                "Set it to duckdb:///PATH, or remove the line" + (f" to use {fallback}" if fallback else ""),
            )
        return _url_target(settings.config_url, "sqlalchemy.url", f"sqlalchemy.url = {shown(settings.config_url)}")
    return _application_default(settings.application, environ)


def _url_target(text: str, source: str, given: str) -> Target:
    """The target a DuckDB URL names (``-x url``, ``sqlalchemy.url``): a file, since a migration needs one."""
    try:
        url = sa.make_url(text)  # a port that is not a number is refused here (ValueError)
    except (sa.exc.ArgumentError, ValueError):
        raise UsageError(
            f"{given!r} is not a database URL", "Use duckdb:///PATH or postgresql+psycopg://USER@HOST:PORT/DATABASE."
        ) from None
    if url.get_backend_name() == "postgres":  # the scheme libpq and many tools accept, which SQLAlchemy does not
        url = url.set(drivername="postgresql" + url.drivername[len("postgres") :])
    if url.get_backend_name() == engines.POSTGRESQL:
        return Target(_postgresql_url(url, given), None, source)
    if url.get_backend_name() != engines.DUCKDB:
        raise UsageError(
            f"{url.get_backend_name()!r} databases are not supported, only DuckDB and PostgreSQL ({given})",
            "Use a URL duckdb:///PATH (or -x db=PATH), or postgresql+psycopg://USER@HOST/DATABASE.",
        )
    path = _file_path(_file_name(url.database or ":memory:", given))
    return Target(url.set(database=str(path)), path, source)


def _postgresql_url(url: URL, given: str) -> URL:
    """A PostgreSQL URL with psycopg 3 as its driver (``postgresql://`` names no driver; SQLAlchemy's default,
    psycopg2, is not this package's), refused in one line when psycopg is not installed or the URL names another
    driver or no database."""
    if url.get_driver_name() not in ("psycopg", "postgresql"):
        raise UsageError(
            f"the PostgreSQL driver {url.get_driver_name()!r} is not supported ({given})",
            "Use postgresql+psycopg://USER@HOST/DATABASE (psycopg 3).",
        )
    if not url.database:
        raise UsageError(f"{given} names no database", "Add it: postgresql+psycopg://USER@HOST/DATABASE.")
    if "@" in (url.host or ""):  # "user:pass@word@host": the part of the password after its "@" read as the host
        raise UsageError(
            f"{given} has an '@' after the user's password and before the host",
            "Write an '@' in a password as %40, or give the password through ~/.pgpass or PGPASSWORD",
        )
    if importlib.util.find_spec("psycopg") is None:
        raise UsageError(
            f"PostgreSQL needs the psycopg driver, which is not installed ({given})",
            "Install it: pip install 'ccdash-alembic[postgres]'",
        )
    return url.set(drivername="postgresql+psycopg")


_T = TypeVar("_T")
HANDED_OVER = "connection"  # the key of config.attributes Alembic's cookbook and pytest-alembic use


def handed_over(connectable: Any) -> Target:
    """The target of a connection or engine a program handed over in ``config.attributes["connection"]``.

    It is used as it is: whatever it is connected to (an in-memory database too, which then has no file and
    gets no backup). The file, if any, is what DuckDB says the connection has open (``catalog.database_path``),
    or, for an engine, what its URL names; nothing here opens the file, so the lock a connection of this
    process holds on it stays (see ``filecopy``)."""
    if isinstance(connectable, Connection):
        url, kind = connectable.engine.url, "connection"
    elif isinstance(connectable, Engine):
        url, kind = connectable.url, "engine"
    else:
        raise UsageError(
            f'config.attributes["{HANDED_OVER}"] is a {type(connectable).__name__}, not a SQLAlchemy connection '
            "or engine",
            "Hand over a Connection or an Engine of a duckdb:// URL",
        )
    if url.get_backend_name() not in engines.SUPPORTED:
        raise UsageError(
            f"the {kind} handed over in config.attributes is of a {url.get_backend_name()!r} database, not DuckDB "
            "or PostgreSQL",
            "Hand over a connection or engine of a duckdb:// or postgresql+psycopg:// URL",
        )
    source = f'the {kind} in config.attributes["{HANDED_OVER}"]'
    if url.get_backend_name() == engines.POSTGRESQL:
        return Target(url, None, source, handed=True)
    if isinstance(connectable, Connection):
        found = _keeping_transaction(connectable, lambda: catalog.database_path(connectable))
        path = _file_path(found) if found else None
    else:
        name = url.database or ":memory:"
        path = None if _NOT_A_FILE.match(name) else _file_path(name)
    return Target(url, path, source, handed=True)


def holds_tables(connection: Connection) -> bool:
    """Whether the connection's database has a table (a handed-over connection's file is there either way,
    so this, not the file, says whether there is anything to back up)."""
    if not engines.is_duckdb(connection):
        return bool(_keeping_transaction(connection, lambda: sa.inspect(connection).get_table_names()))
    return bool(_keeping_transaction(connection, lambda: catalog.stored_tables(connection)))


def _keeping_transaction(connection: Connection, read: Callable[[], _T]) -> _T:
    """``read()`` on ``connection``, ending the transaction the read began, but never one that was open
    before (a handed-over connection's owner may be in the middle of its own)."""
    outer = connection.in_transaction()
    try:
        return read()
    finally:
        if not outer and connection.in_transaction():
            connection.rollback()


def _application_default(application: Application, environ: Mapping[str, str]) -> Target:
    """The application's own database (its environment variable, else its default path); an application
    without one (any project but CCDash) must name the database."""
    variable = application.env_var
    if variable and variable in environ:
        if not environ[variable].strip():  # an unset shell variable exported empty: never the default instead
            raise UsageError(
                f"{variable} is set but empty",
                "Set it to the database's path, or unset it"
                + (f" to use {application.default_database}" if application.default_database else ""),
            )
        return _file_target(_file_name(environ[variable], f"{variable}={environ[variable]}"), variable)
    if application.default_database:
        return _file_target(application.default_database, "default")
    raise UsageError(
        "no database was given",
        "Set sqlalchemy.url = duckdb:///PATH in alembic.ini, or pass -x db=PATH or -x url=duckdb:///PATH",
    )


# What DuckDB reads as something other than a file: ":memory:" (optionally ":memory:name"), and "<prefix>:..."
# (md:, motherduck:, s3:, http:, sqlite:...), which names an extension to load for it. A file so named is
# reachable as ./md:x.
_NOT_A_FILE = re.compile(r"^(:memory:|[A-Za-z][A-Za-z0-9_+.-]*:)")


def _file_name(text: str, given: str) -> str:
    """``text`` if DuckDB would open it as a file; a migration needs a file, which it backs up, locks and
    leaves behind, and an in-memory or remote database would be created, migrated and lost (or not be one)."""
    special = _NOT_A_FILE.match(text)
    if special is None:
        return text
    kind = (
        "an in-memory database"
        if special[1] == ":memory:"
        else f"{special[1]}, a database DuckDB reaches through an extension, not a file"
    )
    raise UsageError(
        f"{given} names {kind}", "Give the path of a DuckDB file (write ./NAME for a file whose name has a colon)"
    )


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
    _refuse_folder(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatabaseUnusable(
            f"cannot create the folder {path.parent}: {exc.strerror}", "Choose a writable path."
        ) from exc


def refuse_unwritable(target: Target) -> None:
    """Refuse, before the first write, a database DuckDB could not write: it keeps its write-ahead log
    (``<file>.wal``) beside the file, so in a read-only folder the first commit fails after its revision ran.
    (``os.access`` asks with the process's real user and capabilities, so root is refused on a read-only mount.)"""
    if target.path is None:
        return
    folder = target.path.parent
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DatabaseUnusable(
            f"cannot write in {folder}, where DuckDB keeps the log of {target.path.name} while it changes it",
            "Make the folder writable, or move the database to a writable folder; nothing was changed",
        )
    if target.path.exists() and not os.access(target.path, os.W_OK):
        raise DatabaseUnusable(f"cannot write {target.path}", "Make the file writable; nothing was changed")


def _refuse_folder(path: Path) -> None:
    """The same refusal (exit code 2) from every command: a folder is a wrong path, not a damaged database."""
    if path.is_dir():
        raise UsageError(f"cannot use {path}: it is a folder", "Give the path of a database file.")


def create_engine(target: Target, settings: Settings) -> Engine:
    """An engine for the target, with the run's DuckDB settings; a file that does not exist yet is created in the
    configured storage format. A PostgreSQL engine names itself to the server (``pg_stat_activity``), so a
    waiting run, or an operator, can tell a migration from the application."""
    if target.server:
        return sa.create_engine(
            target.url,
            poolclass=NullPool,
            connect_args={"application_name": server_lock.application_name(), "connect_timeout": 10},
        )
    config: dict[str, str | int | bool] = {
        **SAFE_OPEN,
        **{
            name: value
            for name, value in (
                ("memory_limit", settings.memory_limit),
                ("threads", settings.threads),
                ("temp_directory", settings.temp_directory),
            )
            if value is not None
        },
    }
    if target.path is not None:
        _prepare_folder(target.path)
        if target.is_new:
            config["storage_compatibility_version"] = settings.storage_compatibility
    return sa.create_engine(target.url, poolclass=NullPool, connect_args={"config": config})


def read_only_engine(target: Target) -> Engine:
    """An engine that opens the file read-only: it reads while other readers do, and never changes the file (on
    PostgreSQL: whose transactions are read-only)."""
    if target.server:
        return create_engine(target, Settings()).execution_options(postgresql_readonly=True)
    return sa.create_engine(target.url, poolclass=NullPool, connect_args={"read_only": True, "config": dict(SAFE_OPEN)})


_HOLDER = re.compile(r"Conflicting lock is held in (?P<program>.+?) \(PID (?P<pid>\d+)\)")


def connect(engine: Engine, target: Target, lock_timeout: float = 0.0) -> Connection:
    """Open a connection, waiting up to ``lock_timeout`` seconds while another process holds the database (the
    file, or on a server the run's lock)."""
    if target.server:
        return _connect_server(engine, target, lock_timeout)
    return _connect_file(engine, target, lock_timeout)


def _connect_file(engine: Engine, target: Target, lock_timeout: float) -> Connection:
    """Open a DuckDB file. Only one process may open it for writing; a second one is refused at once. The file
    lock is therefore the mutex between migrations (and between a migration and a running CCDash): a second run
    waits for the first, then sees what it did. DuckDB's other refusals become one-line errors.
    """
    if target.path is not None:
        _refuse_folder(target.path)
    deadline = time.monotonic() + lock_timeout
    delay = 0.05
    announced = False
    while True:
        if not target.handed:
            _verify_complete(target, fileheader.shortfall)  # before DuckDB has the file, as shortfall needs
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
                    "Stop that program (a running application, a DuckDB shell) and run again, or wait longer "
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
            verify(connection, target)
        except BaseException:
            connection.close()
            raise
        return connection


def connect_server(engine: Engine, target: Target) -> Connection:
    """A connection to a PostgreSQL database, or one line (exit code 3) saying why there is none."""
    try:
        return engine.connect()
    except sa.exc.DBAPIError as exc:
        raise DatabaseUnusable(
            f"cannot connect to {target.describe()}: {first_line(exc)}",
            "Check the URL, that the server runs and that the user may log in; nothing was changed",
        ) from exc


def _connect_server(engine: Engine, target: Target, lock_timeout: float) -> Connection:
    """Connect to a PostgreSQL database and take the run's lock (``server_lock``), waiting up to
    ``lock_timeout``; a server that cannot be reached is one line (exit code 3). The connection has the server
    check its client while a statement runs (``server_lock.CLIENT_CHECK_MS``), so a run that is killed in a long
    statement frees the lock at once; a handed engine's connections are the program's, and keep its settings."""
    connection = connect_server(engine, target)
    try:
        if not target.handed and (connection.dialect.server_version_info or ()) >= (14,):
            connection.exec_driver_sql(f"SET client_connection_check_interval = {server_lock.CLIENT_CHECK_MS}")
            connection.commit()  # a session setting; the lock is then taken outside any transaction
        _take(connection, target, lock_timeout)
    except BaseException:
        connection.invalidate()  # its session ends: not back in a handed engine's pool with the lock held
        connection.close()
        raise
    return connection


@contextmanager
def handed_connection(handed: Connection | Engine, target: Target, lock_timeout: float) -> Iterator[Connection]:
    """The connection a run uses on what a program handed over: that connection, or one of that engine's
    (closed after). On PostgreSQL the run's lock is taken on it, waiting up to ``lock_timeout``, and given
    back at the end, since both outlive the run (the program's connection; the engine's pool)."""
    if isinstance(handed, Engine):
        with connect(handed, target, lock_timeout) as connection, _giving_back(connection):
            yield connection
        return
    with _giving_back(handed):
        _take(handed, target, lock_timeout)
        yield handed


@contextmanager
def _giving_back(connection: Connection) -> Iterator[None]:
    try:
        yield
    finally:
        server_lock.release(connection)


def _take(connection: Connection, target: Target, lock_timeout: float) -> None:
    """Make an open connection the run's: on PostgreSQL take the run's lock on it (``server_lock``; a connection
    that outlives the run gives it back with ``server_lock.release``), then refuse a database the run cannot work
    on (``verify``)."""
    if target.server:
        server_lock.acquire(connection, target.describe(), lock_timeout)
    verify(connection, target)


def verify(connection: Connection, target: Target) -> None:
    """Refuse a database the run cannot work on (see the checks below); the transaction these reads begin is
    ended, one that was open before (a handed-over connection's owner's) is left as it is."""

    def checks() -> None:
        if target.server:
            _verify_versions(connection, target)
            return
        _verify_duckdb(connection, target)
        if target.handed:
            _verify_complete(target, fileheader.shortfall_in_child)
        _verify_versions(connection, target)

    _keeping_transaction(connection, checks)


def _verify_duckdb(connection: Connection, target: Target) -> None:
    """Refuse a file DuckDB opened through an extension (a SQLite file, when the sqlite extension is installed):
    with autoloading off DuckDB still loads an installed extension for a file it recognises."""
    kind = catalog.database_type(connection)
    if kind != "duckdb":
        raise DatabaseUnusable(
            f"{target.describe()} is a {kind} database, not a DuckDB database", "Check the path; nothing was changed"
        )


def _verify_versions(connection: Connection, target: Target) -> None:
    """Refuse a version table that names a revision twice: Alembic would take the database to be at two heads
    (a file written by another tool, or edited by hand), and back it up and migrate it as such."""
    doubled = None
    if engines.has_table(connection, "alembic_version"):
        doubled = connection.exec_driver_sql(
            "SELECT version_num, count(*) FROM alembic_version GROUP BY version_num HAVING count(*) > 1"
            " ORDER BY version_num LIMIT 1"
        ).first()
    if doubled is not None:
        raise HistoryConflict(
            f"{target.describe()} is inconsistent: its alembic_version table holds revision {doubled[0]} "
            f"{doubled[1]} times",
            "Restore a backup (ccdash-migrate restore), or delete the extra rows so each revision is there once",
        )


def _verify_complete(target: Target, shortfall: Callable[[Path], fileheader.Shortfall | None]) -> None:
    """Refuse a file shorter than its blocks need (a copy cut short, a full disk), before DuckDB opens it.

    DuckDB reads blocks only when they are used, so such a file opens and fails later, in the middle of a
    migration, or is written to by the open itself (a pending log is checkpointed). Its headers and free-block
    list tell at once, at the same cost whatever the file's size (``fileheader.shortfall``).
    """
    if target.path is None or not target.path.is_file():
        return
    found = shortfall(target.path)
    if found is not None:
        raise DatabaseUnusable(
            f"{target.describe()} is truncated: it has {found.size} bytes, its blocks need at least {found.needed}",
            "Restore the file from a backup (ccdash-migrate restore)",
        )


def _unusable(target: Target, message: str) -> DatabaseUnusable:
    if target.path is not None and target.path.is_file() and target.path.stat().st_size == 0:
        # a file left by a copy or a creation that never wrote anything; DuckDB would not take it as new
        return DatabaseUnusable(
            f"{target.describe()} is an empty file, not a DuckDB database",
            "Delete it if no database should be there yet, or restore one with ccdash-migrate restore",
        )
    if "Extension" in message and ("not found" in message or "autoload" in message.lower()):
        # DuckDB recognised another format (SQLite) and asked for the extension that reads it
        return DatabaseUnusable(
            f"{target.describe()} is not a DuckDB database (DuckDB would need an extension to read it: {message})",
            "Check the path; nothing was changed and no extension was installed or loaded",
        )
    if "not a valid DuckDB database file" in message or "Could not read enough bytes" in message:
        return DatabaseUnusable(
            f"{target.describe()} is not a readable DuckDB database ({message})",
            "Check the path, or restore the file from a backup.",
        )
    return DatabaseUnusable(f"cannot open {target.describe()}: {message}", "Fix the cause and run again.")
