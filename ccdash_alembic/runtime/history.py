"""The tables this layer keeps beside ``alembic_version``: ``migration_history`` and ``schema_version``.

``migration_history`` is an append-only log, one row per step: what ran, its checksum and sources, how long
it took, who ran it where, and whether it succeeded. ``direction`` is ``up``, ``down``, ``stamp``,
``baseline`` (an existing database adopted), ``accept`` (a changed file accepted), ``import`` (a row taken
over from an earlier tool's history) or ``repair``. ``status`` is the revision's state after the step:
``success`` (applied or stamped), ``rolled_back`` (reverted by a downgrade) or ``failed`` (the step failed
and its transaction was rolled back). ``note`` says, in words, what a step found or did beyond running.

``schema_version`` holds one row: the applied head(s) (comma-separated, empty at base), a ``dirty`` flag,
when it last changed, and ``database_id``: a random id given to the database the first time a step is recorded,
which every copy of the file carries, so a restore can tell a backup of this database from any other file.
It is updated in the same transaction as every step, so it always agrees with ``alembic_version``.

Every statement goes through the migration context, so ``--sql`` output contains the history statements too.
"""

from __future__ import annotations

import getpass
import socket
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from weakref import WeakKeyDictionary

import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext
from alembic.script import Script, ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.sql import ddl as sa_ddl

from ccdash_alembic.ddl import census
from ccdash_alembic.errors import HistoryConflict
from ccdash_alembic.runtime.checksum import revision_checksum
from ccdash_alembic.runtime.settings import Settings

HISTORY_TABLE = "migration_history"
VERSION_TABLE = "schema_version"
OWN_TABLES = frozenset({HISTORY_TABLE, VERSION_TABLE, "alembic_version"})
census.ignore(OWN_TABLES)  # the data-loss census counts user data, not this log

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
    sa.Column("note", sa.Text),
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
    sa.Column("database_id", sa.String),
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
    note: str | None = None


_annotations: WeakKeyDictionary[MigrationContext, tuple[str, str | None]] = WeakKeyDictionary()


def annotate(context: MigrationContext, note: str, direction: str | None = None) -> None:
    """Attach a note (and, optionally, another direction) to the history row of the step now running."""
    _annotations[context] = (note, direction)


def take_annotation(context: MigrationContext) -> tuple[str | None, str | None]:
    """The note and direction ``annotate`` left for the step that just ran, once."""
    return _annotations.pop(context, (None, None))


def utcnow() -> datetime:
    """Naive UTC, as stored: DuckDB's TIMESTAMP has no zone and the log must not depend on the server's."""
    return datetime.now(UTC).replace(tzinfo=None)


def ensure_tables(context: MigrationContext) -> None:
    """Create the history objects if absent (in the current transaction, or as ``--sql`` output). A
    ``migration_history`` an earlier tool left is taken over by one of the application's history adopters,
    or refused: its rows would otherwise be read as this layer's."""
    context.execute(sa_ddl.CreateSequence(history_sequence, if_not_exists=True))
    existing = table_columns(context.impl.catalog_connection(), HISTORY_TABLE)  # type: ignore[attr-defined]
    if existing and "direction" not in existing:
        adopters = Settings.of(context).application.history_adopters
        if not any(adopt(context, existing) for adopt in adopters):
            raise HistoryConflict(
                f"the database has a migration_history table this tool did not make (columns {', '.join(existing)})",
                "Rename or remove that table, then run again",
            )
    context.execute(sa_ddl.CreateTable(migration_history, if_not_exists=True))
    versions = table_columns(context.impl.catalog_connection(), VERSION_TABLE)  # type: ignore[attr-defined]
    if versions and "database_id" not in versions:  # made by an earlier version of this layer
        context.impl.add_column(VERSION_TABLE, sa.Column("database_id", sa.String))
    context.execute(sa_ddl.CreateTable(schema_version, if_not_exists=True))


def is_ours(connection: Connection) -> bool:
    """Whether this layer's history is there (not absent, and not an earlier tool's not yet adopted)."""
    return "direction" in table_columns(connection, HISTORY_TABLE)


def table_columns(connection: Connection, table: str) -> list[str]:
    """The columns of ``table`` in order (none when it does not exist)."""
    rows = connection.exec_driver_sql(
        "SELECT column_name FROM duckdb_columns() WHERE database_name = current_database()"
        f" AND schema_name = current_schema() AND table_name = '{table}' ORDER BY column_index"
    )
    return [r[0] for r in rows]


def record(context: MigrationContext, step: Step, heads: Iterable[str]) -> None:
    """Append ``step`` to the log and set ``schema_version`` to ``heads``, in the current transaction."""
    record_only(context, step)
    if step.status != "failed":
        _set_version(context, ",".join(sorted(heads)), dirty=False)


def _set_version(context: MigrationContext, version: str, dirty: bool) -> None:
    """Update the one ``schema_version`` row, or insert it (with a new ``database_id``) where there is none.

    An update and a conditional insert rather than a read, so ``--sql`` scripts do the same."""
    now = utcnow()
    context.execute(schema_version.update().values(version=version, dirty=dirty, updated_at=now))
    values = sa.select(
        sa.literal(version, sa.String),
        sa.literal(dirty, sa.Boolean),
        sa.literal(now, sa.DateTime),
        sa.literal(uuid.uuid4().hex, sa.String),
    ).where(~sa.exists(sa.select(sa.literal(1)).select_from(schema_version)))
    context.execute(schema_version.insert().from_select(["version", "dirty", "updated_at", "database_id"], values))


def record_only(context: MigrationContext, step: Step) -> None:
    """Append ``step`` to the log."""
    from ccdash_alembic import __version__

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
            note=step.note,
            installed_by=_user(),
            hostname=socket.gethostname(),
            tool_version=__version__,
        )
    )


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def recorded_checksums(connection: Connection) -> dict[str, str]:
    """The checksum each revision was last applied, stamped or accepted with (none from an earlier tool's
    history, which is adopted at the first step)."""
    if not is_ours(connection):
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


def applied_by(connection: Connection, version: str) -> str | None:
    """How the revision came to be applied on this database: the direction of its latest successful step that
    applied it (``up`` ran it, ``baseline`` adopted an existing schema, ``stamp`` or ``import`` only recorded
    it), or None when no such step is recorded."""
    if not is_ours(connection):
        return None
    row = connection.execute(
        sa.select(migration_history.c.direction)
        .where(
            migration_history.c.version == version,
            migration_history.c.direction.in_(("up", "baseline", "stamp", "import")),
            migration_history.c.status == "success",
        )
        .order_by(migration_history.c.id.desc())
        .limit(1)
    ).first()
    return row[0] if row else None


def last_note(connection: Connection, version: str) -> str | None:
    """The note of the revision's latest successful ``up`` step: what it found and did on this database,
    for a downgrade that must know (none in ``--sql`` mode, where there are no rows to read)."""
    if "note" not in table_columns(connection, HISTORY_TABLE):
        return None
    row = connection.execute(
        sa.select(migration_history.c.note)
        .where(
            migration_history.c.version == version,
            migration_history.c.direction == "up",
            migration_history.c.status == "success",
        )
        .order_by(migration_history.c.id.desc())
        .limit(1)
    ).first()
    return row[0] if row else None


def mark_dirty(context: MigrationContext, version: str) -> None:
    """Mark the database dirty while ``version`` runs outside a transaction (each statement of it is whole, so
    the mark is either there or not at all)."""
    _set_version(context, version, dirty=True)


def database_id(connection: Connection) -> str | None:
    """The id this layer gave the database, or None before its first recorded step."""
    if "database_id" not in table_columns(connection, VERSION_TABLE):
        return None
    return connection.execute(sa.select(sa.func.max(schema_version.c.database_id))).scalar()


def dirty_mark(connection: Connection) -> tuple[str, datetime] | None:
    """The revision a dirty mark names and when it was set, or None. (An earlier tool's dirty mark is not
    this layer's: it is resolved when that tool's history is adopted.)"""
    if not is_ours(connection) or not table_columns(connection, VERSION_TABLE):
        return None
    row = connection.execute(
        sa.select(schema_version.c.version, schema_version.c.updated_at).where(schema_version.c.dirty)
    ).first()
    return (row[0], row[1]) if row else None


def clear_dirty(context: MigrationContext, heads: Iterable[str], note: str) -> None:
    """``ccdash-migrate repair``: clear the mark, keep the database at ``heads``, and say so in the log."""
    dirty = dirty_mark(context.connection) if context.connection is not None else None
    version = dirty[0] if dirty else ""
    record(
        context,
        Step(version=version, name="repair of a dirty mark", direction="repair", status="success", note=note),
        heads,
    )


def changed_revisions(
    connection: Connection, script: ScriptDirectory, heads: Iterable[str]
) -> list[tuple[Script, str, str]]:
    """Applied revisions (``heads`` and their ancestors) whose file differs from what was recorded when they
    were applied: ``(revision, recorded checksum, checksum now)``."""
    recorded = recorded_checksums(connection)
    changed = []
    for revision in script.revision_map.iterate_revisions(tuple(heads), "base"):
        assert isinstance(revision, Script)
        old = recorded.get(revision.revision)
        if old is not None:
            new = revision_checksum(revision)
            if new != old:
                changed.append((revision, old, new))
    return changed
