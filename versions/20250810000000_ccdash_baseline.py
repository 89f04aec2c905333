"""CCDash baseline: the schema of CCDash 0.6.18

On an empty database this creates CCDash's newest schema. On an existing CCDash file it recognises the
schema generation (CCDash 0.1.0 and later) and adds what later CCDash releases would have added, recording
what it found; a file that is not CCDash's is refused unchanged. See ccdash_alembic.ccdash.baseline.

Revision ID: 20250810000000
Revises: (none)
Create Date: 2025-08-10 00:00:00+00:00
"""

from collections.abc import Sequence

from alembic import op

from ccdash_alembic.ccdash import baseline

revision: str = "20250810000000"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    baseline.upgrade(op)


def downgrade() -> None:
    baseline.downgrade(op)
