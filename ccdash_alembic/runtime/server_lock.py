"""The lock that serialises runs on a PostgreSQL database: the server's advisory lock, held for the whole run.

Many instances of an application share one PostgreSQL database, each starting its migration at once; a lock
on a file cannot serialise them, the server can. A run takes a session-level advisory lock keyed by the
database, the schema and the version table (two projects' version tables in one database do not exclude each
other) before it reads anything, and holds it until its connection closes: a run that is killed holds nothing,
since the server ends the session (and its locks) when the connection drops. A killed run's backend may be busy
in a long statement, which it would finish before noticing; the run's connection asks the server (14+) to check
its client every ``CLIENT_CHECK_MS``, so the statement is cancelled and the lock freed within about a second.
A connection a program handed over is locked the same way and given back at the end (``release``); in the
caller's own transaction the lock lasts as long as that transaction, which holds the run's changes.

A second run waits up to ``lock_timeout`` seconds (the server's own wait, so it starts the moment the lock is
free), saying once who holds it: the holder's application name (for a run: its own pid and host), server
process, client address and since when, from ``pg_stat_activity``.
"""

from __future__ import annotations

import os
import socket
import sys
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ccdash_alembic.errors import DatabaseUnusable, Locked

APPLICATION_NAME = "ccdash-alembic"  # how a run from a program of its own (the Python API) names itself
_NAME_BYTES = 63  # PostgreSQL cuts application_name to NAMEDATALEN - 1 bytes
VERSION_TABLE = "alembic_version"
_TAKEN = "ccdash_alembic.server_lock"  # connection.info key: the session lock to give back in release()
# A dead client is noticed by a backend busy in a statement only when it next talks to it, which for a
# revision's long statement may be minutes; PostgreSQL 14+ checks the socket this often (ms) while it runs.
CLIENT_CHECK_MS = 1000
LONGEST_WAIT_MS = 2**31 - 1  # the longest lock_timeout or statement_timeout PostgreSQL takes (24.8 days)


def _program() -> str:
    """The command the run came from (``alembic``, ``ccdash-migrate``), or this package's name for a program of
    its own that calls it (the Python API, a test runner)."""
    program = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return program if program in ("alembic", "ccdash-migrate") else APPLICATION_NAME


def application_name() -> str:
    """What ``pg_stat_activity`` shows for a run: the program, its own process id and host, so a waiting run (or
    an operator) can find the migrating process itself, not only the server process that serves it."""
    name = f"{_program()} pid {os.getpid()} on {socket.gethostname()}"
    return name.encode()[:_NAME_BYTES].decode(errors="ignore")


# A 64-bit key from the database, schema and version table; PostgreSQL keeps it as two 32-bit halves in
# pg_locks (classid, objid), which is how the holder is found.
_KEY = sa.text(
    "SELECT ('x' || substr(md5('ccdash-alembic/' || current_database() || '/' || current_schema() || '/' "
    "|| :table), 1, 16))::bit(64)::bigint"
)
_HOLDER = sa.text(
    "SELECT a.pid, coalesce(a.application_name, ''), host(a.client_addr), a.backend_start"
    " FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
    " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
    " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    " AND l.classid = CAST(:classid AS oid) AND l.objid = CAST(:objid AS oid) AND l.pid <> pg_backend_pid()"
)
LOCK_NOT_AVAILABLE = "55P03"  # SQLSTATE of a lock wait that reached lock_timeout


@dataclass(frozen=True)
class Holder:
    """The session that holds the lock, as ``pg_stat_activity`` shows it."""

    pid: int
    application: str
    client: str | None
    since: datetime | None

    def describe(self) -> str:
        who = self.application or "a session"
        where = f" from {self.client}" if self.client else " over a local socket"
        since = f", connected since {self.since:%Y-%m-%d %H:%M:%S %Z}".rstrip() if self.since else ""
        return f"{who} (server process {self.pid}{where}{since})"


def key(connection: Connection, table: str = VERSION_TABLE) -> int:
    """The lock's key for the connection's database and schema; a session whose search_path names no schema
    that exists has none to work in, which is said in one line (exit code 3)."""
    found = connection.execute(_KEY, {"table": table}).scalar_one()
    if found is None:  # current_schema() is NULL
        raise DatabaseUnusable(
            "the database has no schema to work in: no schema on the search_path exists",
            "Create the schema, or set search_path to one that exists (the URL's options=-csearch_path=...)",
        )
    return int(found)


def holder(connection: Connection, lock_key: int) -> Holder | None:
    """Who holds the lock now (None: nobody, or it was released a moment ago)."""
    row = connection.execute(
        _HOLDER, {"classid": (lock_key >> 32) & 0xFFFFFFFF, "objid": lock_key & 0xFFFFFFFF}
    ).first()
    return None if row is None else Holder(int(row[0]), str(row[1]), row[2], row[3])


def acquire(connection: Connection, described: str, lock_timeout: float) -> None:
    """Take the run's lock on ``connection``, waiting up to ``lock_timeout`` seconds.

    On a connection with no open transaction (one this layer opened, or one a program handed over idle) the lock
    belongs to the session and is kept until ``release`` or the session's end; the transaction the wait uses is
    ended, so the lock is all this leaves behind. In a transaction the caller opened it belongs to that
    transaction: the run's changes become visible when the caller commits, and the lock must last until then (a
    session lock would outlive the caller's rollback, unnoticed); the wait runs in a savepoint, so a wait that
    gives up leaves the caller's transaction usable."""
    callers = connection.in_transaction()
    lock_key = key(connection)
    taken = _attempt(connection, lock_key, callers, 0.0)
    found = None
    if not taken:
        found = holder(connection, lock_key)
        if lock_timeout > 0:
            sys.stderr.write(f"Waiting for {_name(found)} to release the database (up to {lock_timeout:g} s)\n")
            taken = _attempt(connection, lock_key, callers, lock_timeout)
            found = found if taken else holder(connection, lock_key) or found
    if not callers:
        connection.commit()
    if not taken:
        raise _locked(described, _name(found), lock_timeout)
    if not callers:
        connection.info[_TAKEN] = lock_key


def _attempt(connection: Connection, lock_key: int, callers: bool, wait: float) -> bool:
    """Whether the lock was taken within ``wait`` seconds (0: at once, or not). The wait is the server's own
    (``lock_timeout``, set for this statement only), so it ends the moment the lock is free."""
    scope = "xact_" if callers else ""
    if wait <= 0:
        statement = sa.text(f"SELECT pg_try_advisory_{scope}lock(:k)")
        return bool(connection.execute(statement, {"k": lock_key}).scalar_one())
    try:
        with connection.begin_nested():
            previous = connection.execute(sa.text("SELECT current_setting('lock_timeout')")).scalar_one()
            # 0 would be no limit at all, and a longer wait than PostgreSQL takes is as good as none
            _set_lock_timeout(connection, f"{min(max(1, int(wait * 1000)), LONGEST_WAIT_MS)}ms")
            connection.execute(sa.text(f"SELECT pg_advisory_{scope}lock(:k)"), {"k": lock_key})
            _set_lock_timeout(connection, previous)  # a caller's transaction goes on with its own setting
    except sa.exc.DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) != LOCK_NOT_AVAILABLE:
            raise
        return False
    return True


def _set_lock_timeout(connection: Connection, value: str) -> None:
    connection.execute(sa.text("SELECT set_config('lock_timeout', :v, true)"), {"v": value})


def release(connection: Connection) -> None:
    """Give back the session lock ``acquire`` took on a connection that outlives the run (one a program handed
    over, or a pooled one of a handed engine). A lock taken in the caller's transaction ends with it, and a
    connection this layer opened releases its lock by closing. What the run left open on the connection is
    rolled back first: the run commits what it keeps, and the caller had no transaction open. A connection that
    cannot give it back (the server went away) is discarded, which ends its session and so the lock."""
    lock_key = connection.info.pop(_TAKEN, None)
    if lock_key is None:
        return
    try:
        if connection.in_transaction():
            connection.rollback()
        connection.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": lock_key})
        connection.commit()
    except sa.exc.DBAPIError:
        connection.invalidate()


def _name(found: Holder | None) -> str:
    return found.describe() if found else "another migration"


def _locked(described: str, name: str, lock_timeout: float) -> Locked:
    return Locked(
        f"{described} is being migrated by {name}"
        + (f", which kept it for the {lock_timeout:g} s this run waited" if lock_timeout else ""),
        "Wait for that run to finish and run again, or wait longer with -x lock_timeout=SECONDS",
        name,
    )
