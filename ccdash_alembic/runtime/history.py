"""Writing this layer's history: a row of ``migration_history`` for each step, and ``schema_version``
(``history_tables`` defines the tables, ``history_queries`` reads them).

``schema_version`` is updated in the same transaction as every step, so it always agrees with
``alembic_version``. In ``--sql`` mode every statement goes through the migration context, so the script
contains the history statements too.

A revision can say what it found and did on this database: ``annotate`` gives the row of the step now running
a note (and, for the baseline adopting a file, another direction). The note travels from the revision to the
recorder in a ``Notes`` value the run passes in the migration context's options.

Revisions import this module as ``ccdash_alembic.history`` (``annotate``, ``last_note``); an applied revision
file never changes, so both names stay here.
"""

from __future__ import annotations

import functools
import getpass
import socket
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext
from sqlalchemy.sql import ddl as sa_ddl

from ccdash_alembic.errors import HistoryConflict
from ccdash_alembic.runtime import engines
from ccdash_alembic.runtime.history_queries import dirty_mark
from ccdash_alembic.runtime.history_queries import last_note as last_note
from ccdash_alembic.runtime.history_tables import (
    HISTORY_TABLE,
    VERSION_TABLE,
    history_sequence,
    migration_history,
    schema_version,
)
from ccdash_alembic.runtime.history_tables import Step as Step  # the row ``record`` takes
from ccdash_alembic.runtime.settings import Settings

NOTES_OPTION = "ccdash_step_notes"  # the key of the run's ``Notes`` in the migration context's options


@dataclass
class Notes:
    """What the step now running says about itself, for its history row. The run creates one for each
    migration context and passes it to ``configure`` under ``NOTES_OPTION``; ``annotate`` fills it and
    ``take_annotation`` empties it once the step is recorded."""

    note: str | None = None
    direction: str | None = None

    @classmethod
    def of(cls, context: MigrationContext) -> Notes | None:
        """The context's notes; None where no recorder runs the steps (plain Alembic), which keeps none."""
        found = context.opts.get(NOTES_OPTION)
        return found if isinstance(found, cls) else None


def annotate(context: MigrationContext, note: str, direction: str | None = None) -> None:
    """Attach a note (and, optionally, another direction) to the history row of the step now running."""
    notes = Notes.of(context)
    if notes is not None:
        notes.note, notes.direction = note, direction


def take_annotation(context: MigrationContext) -> tuple[str | None, str | None]:
    """The note and direction ``annotate`` left for the step that just ran, once."""
    notes = Notes.of(context)
    if notes is None:
        return None, None
    taken = (notes.note, notes.direction)
    notes.note = notes.direction = None
    return taken


def utcnow() -> datetime:
    """Naive UTC, as stored: DuckDB's TIMESTAMP has no zone and the log must not depend on the server's."""
    return datetime.now(UTC).replace(tzinfo=None)


def ensure_tables(context: MigrationContext) -> None:
    """Create the history objects if absent (in the current transaction, or as ``--sql`` output). A
    ``migration_history`` an earlier tool left is taken over by one of the application's history adopters,
    or refused: its rows would otherwise be read as this layer's."""
    context.execute(sa_ddl.CreateSequence(history_sequence, if_not_exists=True))
    existing = engines.column_names(engines.reader(context), HISTORY_TABLE)
    if existing and "direction" not in existing:
        adopters = Settings.of(context).application.history_adopters
        if not any(adopt(context, existing) for adopt in adopters):
            raise HistoryConflict(
                f"the database has a migration_history table this tool did not make (columns {', '.join(existing)})",
                "Rename or remove that table, then run again",
            )
    context.execute(sa_ddl.CreateTable(migration_history, if_not_exists=True))
    versions = engines.column_names(engines.reader(context), VERSION_TABLE)
    if versions and "database_id" not in versions:  # made by an earlier version of this layer
        context.impl.add_column(VERSION_TABLE, sa.Column("database_id", sa.String))
    context.execute(sa_ddl.CreateTable(schema_version, if_not_exists=True))


def record(context: MigrationContext, step: Step, heads: Iterable[str]) -> None:
    """Append ``step`` to the log and set ``schema_version`` to ``heads``, in the current transaction."""
    record_only(context, step)
    if step.status != "failed":
        _set_version(context, ",".join(sorted(heads)), dirty=False)


# The statements every step writes (see ``_write``).
_RECORD_STEP = migration_history.insert().inline()  # the id comes from the sequence in it: nothing to return
_SET_VERSION = schema_version.update()
_SET_VERSION_FOUND = _SET_VERSION.returning(schema_version.c.version)  # a row back: the update found one


def _set_version(context: MigrationContext, version: str, dirty: bool) -> None:
    """Update the one ``schema_version`` row, or insert it (with a new ``database_id``) where there is none.

    On a database the update says whether it found the row, so a step costs one statement and only the first
    step ever recorded inserts; a ``--sql`` script, which cannot ask, updates and then inserts where no row is."""
    now = utcnow()
    script = context.as_sql or context.connection is None
    updated = _write(
        context, _SET_VERSION if script else _SET_VERSION_FOUND, version=version, dirty=dirty, updated_at=now
    )
    if updated is not None and updated.first() is not None:
        return
    values = sa.select(
        sa.literal(version, sa.String),
        sa.literal(dirty, sa.Boolean),
        sa.literal(now, sa.DateTime),
        sa.literal(uuid.uuid4().hex, sa.String),
    )
    if script:
        values = values.where(~sa.exists(sa.select(sa.literal(1)).select_from(schema_version)))
    context.execute(schema_version.insert().from_select(["version", "dirty", "updated_at", "database_id"], values))


def _write(context: MigrationContext, statement: sa.Insert | sa.Update, **values: Any) -> sa.CursorResult[Any] | None:
    """Run one of the statements above with ``values``: in a ``--sql`` script, rendered with them; on a
    database, as SQL compiled once per process, since these run at every step and the DuckDB dialect caches
    no compiled statement. The values are plain str, int, bool, datetime or None, which DuckDB takes as they are."""
    connection = context.connection
    if context.as_sql or connection is None:
        context.execute(statement.values(values))
        return None
    sql, names = _compiled(statement, tuple(values), connection.dialect)
    if not names:  # a dialect of named parameters (psycopg's): the values go by name
        return connection.exec_driver_sql(sql, values)
    return connection.exec_driver_sql(sql, tuple(values[name] for name in names))


@functools.cache
def _compiled(
    statement: sa.Insert | sa.Update, columns: tuple[str, ...], dialect: sa.Dialect
) -> tuple[str, tuple[str, ...]]:
    """``statement`` setting ``columns`` from parameters, as SQL for ``dialect``, and the parameters' names in
    the order the SQL takes them."""
    table = statement.table
    parameters = {name: sa.bindparam(name, type_=table.c[name].type) for name in columns}
    compiled = statement.values(parameters).compile(dialect=dialect)
    return str(compiled), tuple(compiled.positiontup or ())


def record_only(context: MigrationContext, step: Step) -> None:
    """Append ``step`` to the log, with when, by whom, where and by which version of this tool."""
    from ccdash_alembic import __version__

    _write(
        context,
        _RECORD_STEP,
        version=step.version,
        name=step.name,
        direction=step.direction,
        applied_at=utcnow(),
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


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def mark_dirty(context: MigrationContext, version: str) -> None:
    """Mark the database dirty while ``version`` runs outside a transaction (each statement of it is whole, so
    the mark is either there or not at all)."""
    _set_version(context, version, dirty=True)


def clear_dirty(context: MigrationContext, heads: Iterable[str], note: str) -> None:
    """``ccdash-migrate repair``: clear the mark, keep the database at ``heads``, and say so in the log."""
    dirty = dirty_mark(context.connection) if context.connection is not None else None
    version = dirty[0] if dirty else ""
    record(
        context,
        Step(version=version, name="repair of a dirty mark", direction="repair", status="success", note=note),
        heads,
    )
