"""The baseline: how any CCDash database, of any generation or shape, becomes CCDash's newest schema.

The first revision of ``versions/`` calls ``upgrade``/``downgrade`` here. On an empty database the baseline
creates the schema of CCDash's newest release; on an existing CCDash file it recognises the generation from
the catalog and runs, in the revision's transaction, the start-up statements a newer CCDash would have run
(missing tables, columns, indexes); a file that is not CCDash's is refused before anything is written. What
was found and done is recorded in the baseline's ``migration_history`` row (direction ``baseline`` for an
adopted file). On PostgreSQL, where CCDash's DuckDB start-up statements do not apply and there is nothing of
CCDash's to adopt, the baseline creates the same schema from the model (``server_schema``) on an empty
database and refuses any other.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection

from ccdash_alembic.ccdash import server_schema
from ccdash_alembic.ccdash.application import DOWNGRADE_ADOPTED
from ccdash_alembic.ccdash.errors import NotCCDash
from ccdash_alembic.ccdash.recognise import Recognition, recognise
from ccdash_alembic.errors import DataLossRefused
from ccdash_alembic.runtime import engines, history, history_queries
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


def plan(connection: Connection | None) -> Recognition:
    """What the baseline would find and do on this database (reads the catalog only). None stands for a
    PostgreSQL ``--sql`` script, which starts from an empty database."""
    if connection is not None and engines.is_duckdb(connection):
        return recognise(connection)
    return server_schema.recognise(connection)


def upgrade(op: Any) -> None:
    context = op.get_context()
    recognised = plan(engines.reader(context))
    if recognised.refusal:
        where = (
            "Point -x db (or CCDASH_DB_PATH) at a CCDash database file, or at a new file to start one"
            if engines.is_duckdb(context)
            else "Point -x url at an empty PostgreSQL database"
        )
        raise NotCCDash(f"this database cannot be adopted: {recognised.refusal}", f"{where}; nothing was changed")
    if engines.is_duckdb(context):
        context.impl.run_sql(recognised.statements())
    else:
        for element in server_schema.baseline_ddl():
            op.execute(element)
    history.annotate(context, recognised.describe(), direction="up" if recognised.empty else "baseline")


def downgrade(op: Any) -> None:
    """Drop CCDash's tables, but only those the baseline created: on a database it adopted, the tables are
    CCDash's own data from before this tool, and going below the baseline would destroy them."""
    context = op.get_context()
    if not context.as_sql:
        applied = history_queries.applied_by(engines.reader(context), REVISION)
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
