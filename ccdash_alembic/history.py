"""The tables this layer keeps beside ``alembic_version``: ``migration_history`` and ``schema_version``.

``migration_history`` is an append-only log, one row per step (up, down, stamp, and the acceptance of a
changed file): what ran, its checksum and sources, how long it took, who ran it where, and whether it
succeeded. ``status`` is the revision's state after the step: ``success`` (applied or stamped),
``rolled_back`` (reverted by a downgrade) or ``failed`` (the step failed and its transaction was rolled back).

``schema_version`` holds one row: the applied head(s) (comma-separated, empty at base), a ``dirty`` flag and
when it last changed. It is rewritten in the same transaction as every step, so it always agrees with
``alembic_version``.

Every statement goes through the migration context, so ``--sql`` output contains the history statements too.
"""

from __future__ import annotations

import getpass
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlalchemy.sql import ddl as sa_ddl

HISTORY_TABLE = "migration_history"
VERSION_TABLE = "schema_version"
OWN_TABLES = frozenset({HISTORY_TABLE, VERSION_TABLE, "alembic_version"})

metadata = sa.MetaData()

history_sequence = sa.Sequence("migration_history_id_seq", metadata=metadata)

migration_history = sa.Table(
    HISTORY_TABLE,
    metadata,
    sa.Column("id", sa.Integer, history_sequence, primary_key=True),
    sa.Column("version", sa.String, nullable=False),
    sa.Column("name", sa.String, nullable=False),
    sa.Column("direction", sa.String, nullable=False),
    sa.Column("applied_at", sa.DateTime, nullable=False),
    sa.Column("execution_time_ms", sa.Integer),
    sa.Column("checksum", sa.String),
    sa.Column("up_script", sa.Text),
    sa.Column("down_script", sa.Text),
    sa.Column("status", sa.String, nullable=False),
    sa.Column("error_message", sa.Text),
    sa.Column("installed_by", sa.String),
    sa.Column("hostname", sa.String),
    sa.Column("tool_version", sa.String),
)

schema_version = sa.Table(
    VERSION_TABLE,
    metadata,
    sa.Column("version", sa.String, primary_key=True),
    sa.Column("dirty", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("updated_at", sa.DateTime, nullable=False),
)


@dataclass(frozen=True)
class Step:
    """One row of the log."""

    version: str
    name: str
    direction: str
    status: str
    execution_time_ms: int | None = None
    checksum: str | None = None
    up_script: str | None = None
    down_script: str | None = None
    error_message: str | None = None


def utcnow() -> datetime:
    """Naive UTC, as stored: DuckDB's TIMESTAMP has no zone and the log must not depend on the server's."""
    return datetime.now(UTC).replace(tzinfo=None)


def ensure_tables(context: MigrationContext) -> None:
    """Create the history objects if absent (in the current transaction, or as ``--sql`` output)."""
    context.execute(sa_ddl.CreateSequence(history_sequence, if_not_exists=True))
    context.execute(sa_ddl.CreateTable(migration_history, if_not_exists=True))
    context.execute(sa_ddl.CreateTable(schema_version, if_not_exists=True))


def record(context: MigrationContext, step: Step, heads: Iterable[str], tool_version: str) -> None:
    """Append ``step`` to the log and set ``schema_version`` to ``heads``, in the current transaction."""
    now = utcnow()
    context.execute(
        migration_history.insert().values(
            version=step.version,
            name=step.name,
            direction=step.direction,
            applied_at=now,
            execution_time_ms=step.execution_time_ms,
            checksum=step.checksum,
            up_script=step.up_script,
            down_script=step.down_script,
            status=step.status,
            error_message=step.error_message,
            installed_by=_user(),
            hostname=socket.gethostname(),
            tool_version=tool_version,
        )
    )
    if step.status != "failed":
        context.execute(schema_version.delete())
        context.execute(schema_version.insert().values(version=",".join(sorted(heads)), dirty=False, updated_at=now))


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def has_history(connection: Connection) -> bool:
    return sa.inspect(connection).has_table(HISTORY_TABLE)


def recorded_checksums(connection: Connection) -> dict[str, str]:
    """The checksum each revision was last applied, stamped or accepted with."""
    if not has_history(connection):
        return {}
    rows = connection.execute(
        sa.select(migration_history.c.version, migration_history.c.checksum)
        .where(
            migration_history.c.status == "success",
            migration_history.c.direction.in_(("up", "stamp", "accept")),
            migration_history.c.checksum.is_not(None),
        )
        .order_by(migration_history.c.id)
    )
    return {version: checksum for version, checksum in rows}
