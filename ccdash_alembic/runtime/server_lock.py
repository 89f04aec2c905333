"""The lock that serialises runs on a PostgreSQL database: the server's advisory lock, held for the whole run.

Many instances of an application share one PostgreSQL database, each starting its migration at once; a lock
on a file cannot serialise them, the server can. A run takes a session-level advisory lock keyed by the
database, the schema and the version table (two projects' version tables in one database do not exclude each
other) before it reads anything, and holds it until its connection closes: a run that is killed holds nothing,
since the server ends the session (and its locks) when the connection drops.

A second run waits up to ``lock_timeout`` seconds (the server's own wait, so it starts the moment the lock is
free), saying once who holds it: the holder's pid, application name, client address and since when, from
``pg_stat_activity``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ccdash_alembic.errors import Locked

APPLICATION_NAME = "ccdash-migrate"  # what pg_stat_activity shows for a run, so a waiting run can name it
VERSION_TABLE = "alembic_version"

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
        return f"{who} (PID {self.pid}{where}{since})"


def key(connection: Connection, table: str = VERSION_TABLE) -> int:
    return int(connection.execute(_KEY, {"table": table}).scalar_one())


def holder(connection: Connection, lock_key: int) -> Holder | None:
    """Who holds the lock now (None: nobody, or it was released a moment ago)."""
    row = connection.execute(
        _HOLDER, {"classid": (lock_key >> 32) & 0xFFFFFFFF, "objid": lock_key & 0xFFFFFFFF}
    ).first()
    return None if row is None else Holder(int(row[0]), str(row[1]), row[2], row[3])


def acquire(connection: Connection, described: str, lock_timeout: float) -> int:
    """Take the run's lock on ``connection``'s session, waiting up to ``lock_timeout`` seconds; returns the key
    (``release`` needs it for a connection that outlives the run). The transactions the wait uses are ended,
    so the lock is all this leaves behind; one that was open before is refused (a session lock taken inside a
    caller's transaction would outlive the caller's rollback, unnoticed)."""
    lock_key = key(connection)
    if connection.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": lock_key}).scalar_one():
        connection.commit()
        return lock_key
    found = holder(connection, lock_key)
    name = found.describe() if found else "another migration"
    if lock_timeout <= 0:
        connection.rollback()
        raise _locked(described, name, lock_timeout)
    sys.stderr.write(f"Waiting for {name} to release the database (up to {lock_timeout:g} s)\n")
    try:
        connection.execute(sa.text(f"SET LOCAL lock_timeout = '{int(lock_timeout * 1000)}ms'"))
        connection.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": lock_key})
    except sa.exc.DBAPIError as exc:
        connection.rollback()
        if getattr(exc.orig, "sqlstate", None) != LOCK_NOT_AVAILABLE:
            raise
        found = holder(connection, lock_key) or found
        connection.rollback()
        raise _locked(described, found.describe() if found else name, lock_timeout) from exc
    connection.commit()
    return lock_key


def release(connection: Connection, lock_key: int) -> None:
    """Give the lock back on a connection that stays open (one a program handed over); a connection this layer
    opened releases it by closing."""
    connection.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": lock_key})
    connection.commit()


def _locked(described: str, name: str, lock_timeout: float) -> Locked:
    return Locked(
        f"{described} is being migrated by {name}"
        + (f", which held it for {lock_timeout:g} s" if lock_timeout else ""),
        "Wait for that run to finish and run again, or wait longer with -x lock_timeout=SECONDS",
        name,
    )
