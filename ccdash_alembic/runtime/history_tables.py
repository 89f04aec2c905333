"""The tables this layer keeps beside ``alembic_version``, and the row type of its log.

``migration_history`` is an append-only log, one row per step: what ran, its checksum and sources, how long
it took, who ran it where, and whether it succeeded. ``direction`` is ``up``, ``down``, ``stamp``,
``baseline`` (an existing database adopted), ``accept`` (a changed file accepted), ``import`` (a row taken
over from an earlier tool's history) or ``repair``. ``status`` is the revision's state after the step:
``success`` (applied or stamped), ``rolled_back`` (reverted by a downgrade) or ``failed`` (the step failed
and its transaction was rolled back). ``note`` says, in words, what a step found or did beyond running.

``schema_version`` holds one row: the applied head(s) (comma-separated, empty at base), a ``dirty`` flag,
when it last changed, and ``database_id``: a random id given to the database the first time a step is recorded,
which every copy of the file carries, so a restore can tell a backup of this database from any other file.

``history`` writes these tables, ``history_queries`` reads them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from ccdash_alembic.ddl import catalog, census

HISTORY_TABLE = "migration_history"
VERSION_TABLE = "schema_version"
OWN_TABLES = frozenset({HISTORY_TABLE, VERSION_TABLE, "alembic_version", catalog.CONSTRAINT_NAMES})
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


@dataclass(frozen=True, kw_only=True)
class Step:
    """One row of ``migration_history``, written and read as the same thing.

    A step to be recorded says what it was and did (``direction`` to ``note``); recording adds the rest
    (``id``, ``applied_at``, ``installed_by``, ``hostname``, ``tool_version``), so those are None until the
    row is read back. The fields are in the order ``history --json`` shows them.
    """

    id: int | None = None
    applied_at: datetime | None = None
    direction: str
    version: str
    name: str
    execution_time_ms: int | None = None
    status: str
    checksum: str | None = None
    error_message: str | None = None
    note: str | None = None
    up_script: str | None = None
    down_script: str | None = None
    installed_by: str | None = None
    hostname: str | None = None
    tool_version: str | None = None

    @property
    def error_line(self) -> str:
        """The first line of ``error_message``, for the one-line summaries of status and validate: the row keeps
        the whole message (PostgreSQL's carries DETAIL and the statement)."""
        return next((line.strip() for line in (self.error_message or "").splitlines() if line.strip()), "")
