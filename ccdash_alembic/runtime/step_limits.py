"""The limits each revision runs under on PostgreSQL, so a migration is safe to run against a live database.

A revision that needs a lock a busy application holds would otherwise wait for it indefinitely, and every
query of the application that needs that table would queue behind the waiting revision: the site stops. So
each revision runs with ``lock_timeout`` (``-x revision_lock_timeout``) and ``statement_timeout``
(``-x revision_statement_timeout``) set for its transaction (``SET LOCAL``, through ``set_config``), or, for a
revision that runs outside a transaction, for the session during the step, then set back.

A revision that gave up waiting for a lock (SQLSTATE 55P03) is run again from a savepoint taken before its
code, after a short pause that grows, up to ``-x lock_retries`` times: the application's transactions are
usually short, and one of the next attempts finds the lock free. The history row is written once, after the
attempt that succeeded. When every attempt timed out, the revision fails naming the session that held the
lock, which a watcher (a thread with a connection of its own) reads from ``pg_blocking_pids`` while the
revision waits, since once the wait is over the server no longer says who blocked it. A statement that ran
past ``statement_timeout`` (SQLSTATE 57014) fails at once: running it again would take as long.

A revision that runs outside a transaction is not retried: the statements before the one that waited are
committed, and running them again is not the same revision.

On DuckDB (one process holds the file) and in ``--sql`` scripts, the code just runs.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import TypeVar

import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext

from ccdash_alembic.runtime import engines, server_lock
from ccdash_alembic.runtime.settings import Settings

QUERY_CANCELED = "57014"  # SQLSTATE of a statement that reached statement_timeout
_FIRST_PAUSE = 0.1  # seconds before the first retry; each next pause is twice as long
_POLL = 0.05  # seconds between two looks of the watcher at what the revision waits for

_T = TypeVar("_T")

_BLOCKER = sa.text(
    "SELECT a.pid, coalesce(a.application_name, ''), host(a.client_addr), a.backend_start,"
    " coalesce(a.state, ''), a.xact_start"
    " FROM pg_stat_activity a WHERE a.pid = ANY(pg_blocking_pids(:pid))"
    " ORDER BY a.xact_start NULLS LAST, a.pid LIMIT 1"
)


class StepTimedOut(RuntimeError):
    """A revision's statement reached one of its limits; ``todo`` says what the operator can do about it."""

    def __init__(self, what: str, todo: str) -> None:
        super().__init__(what)
        self.todo = todo


@dataclass(frozen=True)
class Blocker(server_lock.Holder):
    """A session holding a lock the revision waits for: who it is (as for the run's lock), what it is doing
    (``pg_stat_activity.state``: ``idle in transaction`` is an application that forgot to commit) and since
    when its transaction is open."""

    state: str = ""
    transaction_since: datetime | None = None

    def describe(self) -> str:
        doing = f", {self.state}" if self.state else ""
        since = f" since {self.transaction_since:%Y-%m-%d %H:%M:%S %Z}".rstrip() if self.transaction_since else ""
        return f"{super().describe()}{doing}{since}"


class _Watcher:
    """A thread that, while a revision runs, keeps the session blocking it (the last one seen)."""

    def __init__(self, connection: sa.Connection) -> None:
        self._engine = connection.engine
        self._pid = int(connection.connection.driver_connection.info.backend_pid)  # type: ignore[union-attr]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="blocking-session watcher", daemon=True)
        self.blocker: Blocker | None = None

    def __enter__(self) -> _Watcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        # Only a revision still running after one poll interval can be waiting for a lock worth naming: most
        # revisions end before it, and then no connection is opened. Its own connection, in autocommit: an open
        # transaction of the watcher's would hold back a CREATE INDEX CONCURRENTLY, which waits for every older
        # snapshot.
        if self._stop.wait(_POLL):
            return
        with (
            contextlib.suppress(sa.exc.SQLAlchemyError),  # the revision's failure says the rest
            self._engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection,
        ):
            while not self._stop.wait(_POLL):
                row = connection.execute(_BLOCKER, {"pid": self._pid}).first()
                if row is not None:
                    self.blocker = Blocker(int(row[0]), str(row[1]), row[2], row[3], str(row[4]), row[5])


def in_transaction(context: MigrationContext, settings: Settings, code: Callable[[], _T]) -> _T:
    """Run a transactional revision's ``code`` under the limits, retried from a savepoint while it times out
    waiting for a lock."""
    connection = context.connection
    if connection is None or context.as_sql or engines.is_duckdb(context):
        return code()
    _set(connection, settings, local=True)
    with _Watcher(connection) as watcher:
        for attempt in range(settings.lock_retries):
            try:
                with connection.begin_nested():
                    return _limited(settings, code, watcher, retried=attempt)
            except _LockWait:
                time.sleep(_FIRST_PAUSE * 2**attempt)
        with connection.begin_nested():
            return _limited(settings, code, watcher, retried=settings.lock_retries, last=True)


def outside_transaction(context: MigrationContext, settings: Settings, code: Callable[[], _T]) -> _T:
    """Run a non-transactional revision's ``code`` with the limits set for the session, then set back."""
    connection = context.connection
    if connection is None or context.as_sql or engines.is_duckdb(context):
        return code()
    with _session_limits(connection, settings), _Watcher(connection) as watcher:
        return _limited(settings, code, watcher, retried=0, last=True)


class _LockWait(Exception):
    """An attempt timed out waiting for a lock and may be retried (its savepoint is rolled back)."""


def _limited(settings: Settings, code: Callable[[], _T], watcher: _Watcher, retried: int, last: bool = False) -> _T:
    """``code``, with the server's timeouts turned into the revision's failure (or, before the last attempt,
    into ``_LockWait``)."""
    try:
        return code()
    except sa.exc.DBAPIError as error:
        state = getattr(error.orig, "sqlstate", None)
        if state == QUERY_CANCELED:
            raise _statement_timed_out(settings) from error
        if state != server_lock.LOCK_NOT_AVAILABLE:
            raise
        if not last:
            raise _LockWait from error
        raise _lock_timed_out(settings, watcher.blocker, retried) from error


def _statement_timed_out(settings: Settings) -> StepTimedOut:
    return StepTimedOut(
        f"a statement ran longer than revision_statement_timeout ({settings.revision_statement_timeout:g} s), "
        "so the server cancelled it",
        "make the statement faster (in smaller batches), or allow it longer with "
        "-x revision_statement_timeout=SECONDS (0: no limit)",
    )


def _lock_timed_out(settings: Settings, blocker: Blocker | None, retried: int) -> StepTimedOut:
    tries = f" in each of {retried + 1} attempts" if retried else ""
    who = blocker.describe() if blocker is not None else "another session"
    return StepTimedOut(
        f"it waited for a lock longer than revision_lock_timeout ({settings.revision_lock_timeout:g} s){tries}; "
        f"the lock is held by {who}",
        "end that session's transaction (or wait until it ends) and run again, or allow longer waits with "
        "-x revision_lock_timeout=SECONDS or more attempts with -x lock_retries=N",
    )


def _milliseconds(seconds: float) -> str:
    """A limit as PostgreSQL reads it; 0 is none, and a positive limit never rounds down to none."""
    return "0" if seconds <= 0 else f"{max(1, round(seconds * 1000))}ms"


_SET_LIMITS = sa.text(
    "SELECT set_config('lock_timeout', :lock, :local), set_config('statement_timeout', :statement, :local)"
)


def _set(connection: sa.Connection, settings: Settings, local: bool) -> None:
    """Both limits in one statement (a round trip per revision is part of what every revision costs)."""
    connection.execute(
        _SET_LIMITS,
        {
            "lock": _milliseconds(settings.revision_lock_timeout),
            "statement": _milliseconds(settings.revision_statement_timeout),
            "local": local,
        },
    )


@contextlib.contextmanager
def _session_limits(connection: sa.Connection, settings: Settings) -> Iterator[None]:
    """The limits for the session while the step runs, then the session's own values again (a connection a
    program handed over keeps what it had)."""
    before = connection.execute(
        sa.text("SELECT current_setting('lock_timeout'), current_setting('statement_timeout')")
    ).one()
    _set(connection, settings, local=False)
    try:
        yield
    finally:
        with contextlib.suppress(sa.exc.SQLAlchemyError):  # a connection the failure broke: it is closed anyway
            for name, value in zip(("lock_timeout", "statement_timeout"), before, strict=True):
                connection.execute(sa.text("SELECT set_config(:name, :value, false)"), {"name": name, "value": value})
