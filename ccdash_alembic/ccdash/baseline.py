"""The baseline: how any CCDash database, of any generation or shape, becomes CCDash's newest schema.

The first revision of ``versions/`` calls ``upgrade``/``downgrade`` here. On an empty database the baseline
creates the schema of CCDash's newest release; on an existing CCDash file it recognises the generation from
the catalog and runs, in the revision's transaction, the start-up statements a newer CCDash would have run
(missing tables, columns, indexes); a file that is not CCDash's is refused before anything is written. What
was found and done is recorded in the baseline's ``migration_history`` row (direction ``baseline`` for an
adopted file).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection

from ccdash_alembic.ccdash.application import DOWNGRADE_ADOPTED
from ccdash_alembic.ccdash.errors import NotCCDash
from ccdash_alembic.ccdash.recognise import Recognition, recognise
from ccdash_alembic.errors import DataLossRefused
from ccdash_alembic.runtime import history, history_queries
from ccdash_alembic.runtime.settings import Settings

REVISION = "20250810000000"  # the baseline revision of versions/

# g9.TABLES in an order that drops no table while another still references it.
_DROP_ORDER = (
    "session_window_messages",
    "messages",
    "jobs",
    "sessions",
    "session_windows",
    "projects",
    "file_sync_state",
)


def plan(connection: Connection) -> Recognition:
    """What the baseline would find and do on this database (reads the catalog only)."""
    return recognise(connection)


def upgrade(op: Any) -> None:
    recognised = plan(op.get_context().impl.catalog_connection())
    if recognised.refusal:
        raise NotCCDash(
            f"this database cannot be adopted: {recognised.refusal}",
            "Point -x db (or CCDASH_DB_PATH) at a CCDash database file, or at a new file to start one; "
            "nothing was changed",
        )
    op.get_context().impl.run_sql(recognised.statements())
    history.annotate(op.get_context(), recognised.describe(), direction="up" if recognised.empty else "baseline")


def downgrade(op: Any) -> None:
    """Drop CCDash's tables, but only those the baseline created: on a database it adopted, the tables are
    CCDash's own data from before this tool, and going below the baseline would destroy them."""
    context = op.get_context()
    if not context.as_sql:
        applied = history_queries.applied_by(context.impl.catalog_connection(), REVISION)
        allowed = Settings.of(context).value(DOWNGRADE_ADOPTED)
        if applied != "up" and not allowed:
            how = {"baseline": "adopted", "stamp": "stamped", "import": "recorded by an earlier tool"}.get(
                applied or "", "recorded without a trace of how"
            )
            raise DataLossRefused(
                f"the baseline {REVISION} {how} this database's CCDash tables instead of creating them, so "
                "downgrading it would drop CCDash's own data",
                "Downgrade to the baseline, not below it; to drop the tables anyway, run again with "
                "-x downgrade_adopted=true",
            )
    for table in _DROP_ORDER:
        op.drop_table(table)
