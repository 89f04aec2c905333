"""What this layer's history says: the questions the run, ``status``, ``validate`` and revisions ask of
``migration_history`` and ``schema_version`` (``history_tables`` defines them, ``history`` writes them).

Each answer is "nothing recorded" on a database without this layer's history: absent, or an earlier tool's
not yet adopted (adoption happens at the first recorded step).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import fields
from datetime import datetime

import sqlalchemy as sa
from alembic.script import Script, ScriptDirectory
from sqlalchemy.engine import Connection

from ccdash_alembic.runtime import engines
from ccdash_alembic.runtime.checksum import matches, revision_checksum
from ccdash_alembic.runtime.history_tables import HISTORY_TABLE, VERSION_TABLE, Step, migration_history, schema_version

_STEP_COLUMNS = [migration_history.c[field.name] for field in fields(Step)]


def is_ours(connection: Connection) -> bool:
    """Whether this layer's history is there (not absent, and not an earlier tool's not yet adopted)."""
    return "direction" in engines.column_names(connection, HISTORY_TABLE)


def steps(connection: Connection) -> list[Step]:
    """Every row of the log, oldest first (of a log ``is_ours``)."""
    rows = connection.execute(sa.select(*_STEP_COLUMNS).order_by(migration_history.c.id))
    return [Step(**row._mapping) for row in rows]


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
    if "note" not in engines.column_names(connection, HISTORY_TABLE):
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


def database_id(connection: Connection) -> str | None:
    """The id this layer gave the database, or None before its first recorded step."""
    if "database_id" not in engines.column_names(connection, VERSION_TABLE):
        return None
    return connection.execute(sa.select(sa.func.max(schema_version.c.database_id))).scalar()


def dirty_mark(connection: Connection) -> tuple[str, datetime] | None:
    """The revision a dirty mark names and when it was set, or None. (An earlier tool's dirty mark is not
    this layer's: it is resolved when that tool's history is adopted.)"""
    if not is_ours(connection) or not engines.column_names(connection, VERSION_TABLE):
        return None
    row = connection.execute(
        sa.select(schema_version.c.version, schema_version.c.updated_at).where(schema_version.c.dirty)
    ).first()
    return (row[0], row[1]) if row else None


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
            if not matches(old, new, revision.module):
                changed.append((revision, old, new))
    return changed
