<%
    from ccdash_alembic.revision_ids import for_template
    parents = [down_revision] if isinstance(down_revision, str) else list(down_revision or ())
    revision_id = for_template(up_revision, create_date, parents)
%>\
"""${message}

Revision ID: ${revision_id}
Revises: ${", ".join(parents) or "(none)"}
Create Date: ${create_date}
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
${imports if imports else ""}
revision: str = ${repr(revision_id)}
down_revision: str | Sequence[str] | None = ${repr(down_revision)}
branch_labels: str | Sequence[str] | None = ${repr(branch_labels)}
depends_on: str | Sequence[str] | None = ${repr(depends_on)}


def upgrade() -> None:
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    ${downgrades if downgrades else "pass"}
