"""move legacy messages.session_window_id links to session_window_messages

Files that CCDash 0.1.5-0.5.0 once opened keep messages.session_window_id and its index: CCDash 0.5.5 and
later neither write nor drop them. Each link the column holds that session_window_messages lacks is moved
there (links to windows that no longer exist cannot be, and are counted), then the column and its index go.
On a file without the column this does nothing. The downgrade puts the column back (as the last column),
filled from session_window_messages, only where this revision removed it.

Revision ID: 20261127020100
Revises: 20261127020000
Create Date: 2026-11-27 02:01:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from ccdash_alembic import catalog, history

revision: str = "20261127020100"
down_revision: str | Sequence[str] | None = "20261127020000"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REMOVED = "removed the legacy column messages.session_window_id"


def upgrade() -> None:
    connection = op.get_context().impl.catalog_connection()
    messages = catalog.read_table(connection, "messages")
    if not messages.has_column("session_window_id"):
        history.annotate(op.get_context(), "no legacy column messages.session_window_id; nothing to do")
        return
    counts = None
    if not op.get_context().as_sql:
        counts = connection.exec_driver_sql(
            "SELECT count(*) FILTER (WHERE w.id IS NOT NULL AND l.id IS NULL),"
            " count(*) FILTER (WHERE w.id IS NULL)"
            " FROM messages m LEFT JOIN session_windows w ON w.id = m.session_window_id"
            " LEFT JOIN session_window_messages l ON l.message_id = m.id AND l.session_window_id = m.session_window_id"
            " WHERE m.session_window_id IS NOT NULL"
        ).one()
    op.execute_in_chunks(
        "INSERT INTO session_window_messages (id, session_window_id, message_id)"
        " SELECT gen_random_uuid()::VARCHAR, m.session_window_id, m.id FROM messages m"
        " JOIN session_windows w ON w.id = m.session_window_id"
        " WHERE NOT EXISTS (SELECT 1 FROM session_window_messages l"
        "                   WHERE l.message_id = m.id AND l.session_window_id = m.session_window_id)"
        " AND {chunk}",
        table="messages",
        key="id",
        alias="m",
    )
    with op.batch_alter_table("messages") as batch:
        if any(i.name == "idx_messages_session_window_id" for i in messages.indexes):
            batch.drop_index("idx_messages_session_window_id")
        batch.drop_column("session_window_id")
    position = [c.name for c in messages.columns].index("session_window_id") + 1
    moved = "links moved to session_window_messages"
    if counts is not None:
        moved = f"{counts[0]} {moved}; {counts[1]} pointed at windows that no longer exist and were dropped"
    history.annotate(op.get_context(), f"{REMOVED} (column {position} of {len(messages.columns)}); {moved}")


def downgrade() -> None:
    note = history.last_note(op.get_context().impl.catalog_connection(), revision)
    if note is None or not note.startswith(REMOVED):
        return
    # One change, so the values are written by the copy: DuckDB can neither UPDATE an indexed column of a
    # referenced table nor build an index on a table it updated in the same transaction.
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("session_window_id", sa.Text))
        batch.alter_column(
            "session_window_id",
            type_=sa.Text,
            postgresql_using="(SELECT min(l.session_window_id) FROM session_window_messages l"
            " WHERE l.message_id = messages.id)",
        )
        batch.create_index("idx_messages_session_window_id", ["session_window_id"])
