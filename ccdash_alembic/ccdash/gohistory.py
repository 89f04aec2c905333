"""CCDash's Go ``migrate`` tool's history, taken over by this layer's.

That tool wrote ``migration_history`` (with fewer columns: no ``direction``, no ``note``) and a
``schema_version`` with a ``dirty`` flag into files it touched. The run layer finds such a table when it
first writes its own history and asks the application's adopters (``Application.history_adopters``) to take it
over; this is CCDash's.
"""

from __future__ import annotations

from typing import Any

from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlalchemy.sql import ddl as sa_ddl

from ccdash_alembic.ddl import catalog
from ccdash_alembic.ddl.tabledef import literal
from ccdash_alembic.runtime.history import record_only
from ccdash_alembic.runtime.history_tables import HISTORY_TABLE, VERSION_TABLE, Step, migration_history, schema_version

SOURCE = "imported from the migration_history of an earlier migration tool (CCDash's Go migrate tool)"


def adopt(context: MigrationContext, existing: list[str]) -> bool:
    """Take over the Go tool's history: its rows become ``import`` rows, its dirty marks are resolved; False
    (nothing done) for a table with columns that tool never wrote.

    Rows are copied through a temporary table and counted before the old table may go. A mark of ``dirty``
    means the tool stopped between writing the mark and clearing it; since that tool ran each migration in
    a transaction, its history says whether the migration was applied (``success``) or rolled back, and the
    mark is cleared with a ``repair`` row saying which.
    """
    ours = {c.name for c in migration_history.columns}
    if set(existing) - ours or "version" not in existing:
        return False
    impl: Any = context.impl
    shared = [c for c in existing if c not in ("id", "direction", "note")]
    copied = ", ".join(shared)
    order = "ORDER BY id" if "id" in existing else ""
    dirty = _dirty_versions(impl.catalog_connection()) if not context.as_sql else []
    impl.run_sql(
        [
            f"CREATE TEMP TABLE _ccdash_imported_history AS SELECT * FROM {HISTORY_TABLE}",
            f"DROP TABLE {HISTORY_TABLE}",
            f"DROP TABLE IF EXISTS {VERSION_TABLE}",
        ]
    )
    context.execute(sa_ddl.CreateTable(migration_history))
    context.execute(sa_ddl.CreateTable(schema_version))
    impl.run_sql(
        [
            # new ids, in the old order: the old tool's sequence may be behind its own rows
            f"INSERT INTO {HISTORY_TABLE} ({copied}, direction, note) SELECT {copied}, 'import', "
            f"{literal(SOURCE)} FROM _ccdash_imported_history {order}",
            f"UPDATE {HISTORY_TABLE} SET status = coalesce(status, 'success'), "
            "applied_at = coalesce(applied_at, TIMESTAMP '1970-01-01') WHERE direction = 'import'",
            f"SELECT error('imported history lost rows') WHERE (SELECT count(*) FROM {HISTORY_TABLE}) "
            "<> (SELECT count(*) FROM _ccdash_imported_history)",
            "DROP TABLE _ccdash_imported_history",
        ]
    )
    for version, last_status in dirty:
        outcome = _DIRTY_OUTCOMES.get(last_status, "it has no history, so it was never applied")
        record_only(
            context,
            Step(
                version=version,
                name="dirty mark of an earlier migration tool",
                direction="repair",
                status="success",
                note=f"schema_version marked {version} dirty; {outcome}. The mark is cleared.",
            ),
        )
    return True


# What the Go tool's last history row of a dirty version says happened to it (no row: never applied).
_DIRTY_OUTCOMES: dict[str | None, str] = {
    "success": "its history says it was applied",
    "failed": "its history says it failed and was rolled back, so nothing of it is applied",
}


def _dirty_versions(connection: Connection) -> list[tuple[str, str | None]]:
    """Versions the Go tool left dirty, with the status of their last history row."""
    if "dirty" not in catalog.column_names(connection, VERSION_TABLE):
        return []
    rows = connection.exec_driver_sql(
        f"SELECT v.version, (SELECT h.status FROM {HISTORY_TABLE} h WHERE h.version = v.version"
        f" ORDER BY h.id DESC LIMIT 1) FROM {VERSION_TABLE} v WHERE v.dirty AND v.version <> '0' ORDER BY 1"
    )
    return [(r[0], r[1]) for r in rows]
