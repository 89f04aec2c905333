"""move legacy messages.session_window_id links to session_window_messages

Files that CCDash 0.1.5-0.5.0 once opened keep messages.session_window_id and its index: CCDash 0.5.5 and
later neither write nor drop them. Each link the column holds that session_window_messages lacks is moved
there (links to windows that no longer exist cannot be, and are counted), then the column and its index go.
On a file without the column this does nothing. The downgrade puts the column back (as the last column),
filled from session_window_messages, only where this revision removed it. PostgreSQL databases start from the
baseline's schema, without the column; one given it by hand is handled the same way, by plain INSERT, UPDATE
and ALTER TABLE.

Revision ID: 20261127020100
Revises: 20261127020000
Create Date: 2026-11-27 02:01:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from ccdash_alembic import catalog, history
from ccdash_alembic.runtime import engines

revision: str = "20261127020100"
down_revision: str | Sequence[str] | None = "20261127020000"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
# The checksum of this file as shipped before it ran on PostgreSQL too; on DuckDB that version did what this one
# does, so a database that applied it has nothing changed to report (ccdash_alembic.runtime.checksum).
earlier_checksums = ("bdf1b43dd6669716c88ebba0b13a5af8e4cbc110a12581f5c3af247e6fffc37d",)

REMOVED = "removed the legacy column messages.session_window_id"
INDEX = "idx_messages_session_window_id"
# Each link the column holds that session_window_messages lacks, to a window that exists.
MOVE_LINKS = (
    "INSERT INTO session_window_messages (id, session_window_id, message_id)"
    " SELECT gen_random_uuid()::VARCHAR, m.session_window_id, m.id FROM messages m"
    " JOIN session_windows w ON w.id = m.session_window_id"
    " WHERE NOT EXISTS (SELECT 1 FROM session_window_messages l"
    "                   WHERE l.message_id = m.id AND l.session_window_id = m.session_window_id)"
)
LINKED_WINDOW = "(SELECT min(l.session_window_id) FROM session_window_messages l WHERE l.message_id = messages.id)"


def upgrade() -> None:
    context = op.get_context()
    connection = engines.reader(context)
    columns = engines.column_names(connection, "messages")
    if "session_window_id" not in columns:
        history.annotate(context, "no legacy column messages.session_window_id; nothing to do")
        return
    counts = None
    if not context.as_sql:
        counts = connection.exec_driver_sql(
            "SELECT count(*) FILTER (WHERE w.id IS NOT NULL AND l.id IS NULL),"
            " count(*) FILTER (WHERE w.id IS NULL)"
            " FROM messages m LEFT JOIN session_windows w ON w.id = m.session_window_id"
            " LEFT JOIN session_window_messages l ON l.message_id = m.id AND l.session_window_id = m.session_window_id"
            " WHERE m.session_window_id IS NOT NULL"
        ).one()
    if engines.is_duckdb(context):
        _move_by_rebuild(connection)
    else:
        _move_in_place()
    position = columns.index("session_window_id") + 1
    moved = "links moved to session_window_messages"
    if counts is not None:
        moved = f"{counts[0]} {moved}; {counts[1]} pointed at windows that no longer exist and were dropped"
    history.annotate(context, f"{REMOVED} (column {position} of {len(columns)}); {moved}")


def _move_by_rebuild(connection: sa.Connection) -> None:
    """DuckDB: the links in chunks of messages, then the column and its index in one rebuild."""
    messages = catalog.read_table(connection, "messages")
    op.execute_in_chunks(MOVE_LINKS + " AND {chunk}", table="messages", key="id", alias="m")
    with op.batch_alter_table("messages") as batch:
        if any(i.name == INDEX for i in messages.indexes):
            batch.drop_index(INDEX)
        batch.drop_column("session_window_id")


def _move_in_place() -> None:
    """PostgreSQL: the links in one statement, then the index (where there is one) and the column."""
    op.execute(MOVE_LINKS)
    op.execute(f"DROP INDEX IF EXISTS {INDEX}")
    op.drop_column("messages", "session_window_id")


def downgrade() -> None:
    context = op.get_context()
    note = history.last_note(engines.reader(context), revision)
    if note is None or not note.startswith(REMOVED):
        return
    if not engines.is_duckdb(context):
        op.add_column("messages", sa.Column("session_window_id", sa.Text))
        op.execute(f"UPDATE messages SET session_window_id = {LINKED_WINDOW}")
        op.create_index(INDEX, "messages", ["session_window_id"])
        return
    # One change, so the values are written by the copy: DuckDB can neither UPDATE an indexed column of a
    # referenced table nor build an index on a table it updated in the same transaction.
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("session_window_id", sa.Text))
        batch.alter_column("session_window_id", type_=sa.Text, postgresql_using=LINKED_WINDOW)
        batch.create_index(INDEX, ["session_window_id"])
