<%!
    from ccdash_alembic.runtime import revision_text
%>\
<%doc>
    Every text here that did not come from this template (the message, ids) is written as an escaped
    literal: revision_text.docstring for the docstring, repr() for values. revision_text.checked refuses a
    message with control characters, then compiles the rendered file and compares its docstring with the
    message before Alembic writes it.
</%doc>\
<%def name="revision_file()">\
<%
    parents = [down_revision] if isinstance(down_revision, str) else list(down_revision or ())
    revision_id = up_revision  # chosen before the file was named by it (ccdash_alembic.runtime.revision_ids)
    fields = {"Revision ID": revision_id, "Revises": ", ".join(parents) or "(none)", "Create Date": create_date}
%>\
${revision_text.docstring(message, fields)}

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
</%def>\
${revision_text.checked(lambda: capture(revision_file), message, context.get("config"))}\
