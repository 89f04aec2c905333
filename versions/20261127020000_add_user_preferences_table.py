"""add user_preferences table

The table CCDash's own migration example (backend/migrations/20250801120000_add_migration_example) adds.

Revision ID: 20261127020000
Revises: 20250810000000
Create Date: 2026-11-27 02:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261127020000"
down_revision: str | Sequence[str] | None = "20250810000000"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "user_preferences",
        sa.Column("user_id", sa.String, primary_key=True),
        sa.Column("theme", sa.String, server_default=sa.text("'light'")),
        sa.Column("language", sa.String, server_default=sa.text("'en'")),
        sa.Column("notifications_enabled", sa.Boolean, server_default=sa.text("true")),
        sa.Column("created_at", sa.TIMESTAMP, server_default=sa.text("CURRENT_TIMESTAMP")),
        sa.Column("updated_at", sa.TIMESTAMP, server_default=sa.text("CURRENT_TIMESTAMP")),
    )
    op.create_index("idx_user_preferences_created_at", "user_preferences", ["created_at"])


def downgrade() -> None:
    op.drop_index("idx_user_preferences_created_at", table_name="user_preferences")
    op.drop_table("user_preferences")
