"""CCDash 0.6.18's schema on a PostgreSQL server: what the baseline creates there, from the model.

CCDash itself only ever kept its data in DuckDB, so its start-up DDL (``g9``) is DuckDB's and there is no
CCDash database on PostgreSQL to adopt. On a server the baseline therefore creates the tables of ``model``
as they were at the baseline: without what the later revisions add (20261127020000's ``user_preferences``,
20261127020200's foreign key ``sessions.project_id -> projects.id``), so that those revisions then do on the
server what they do on a file and ``alembic check`` at head finds the model. A server database that already
holds tables is refused: adopting it would mean guessing whose tables they are.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.schema import CreateIndex, CreateTable, ExecutableDDLElement

from ccdash_alembic.ccdash import model
from ccdash_alembic.ccdash.recognise import Recognition, for_empty_database
from ccdash_alembic.runtime.history_tables import OWN_TABLES

LATER_TABLES = frozenset({"user_preferences"})  # created by 20261127020000
LATER_FOREIGN_KEYS = frozenset({"fk_sessions_project_id"})  # added by 20261127020200


def baseline_ddl() -> list[ExecutableDDLElement]:
    """CREATE TABLE and CREATE INDEX of the baseline's tables, parents before the tables referencing them."""
    ddl: list[ExecutableDDLElement] = []
    for table in model.metadata.sorted_tables:
        if table.name in LATER_TABLES:
            continue
        keys = [fk for fk in table.foreign_key_constraints if fk.name not in LATER_FOREIGN_KEYS]
        ddl.append(CreateTable(table, include_foreign_key_constraints=keys))
        ddl.extend(CreateIndex(index) for index in sorted(table.indexes, key=lambda i: str(i.name)))
    return ddl


def statements(dialect: sa.Dialect) -> list[str]:
    """The baseline's DDL as SQL text for ``dialect`` (what ``ccdash-migrate baseline --dry-run`` prints)."""
    return [str(element.compile(dialect=dialect)).strip() for element in baseline_ddl()]


def recognise(connection: Any) -> Recognition:
    """What the baseline finds on a server database: empty (only this layer's own tables, if any) or refused.
    ``connection`` is None in a ``--sql`` script, which starts from an empty database."""
    tables = [] if connection is None else _tables(connection)
    if not tables:
        return for_empty_database()
    return Recognition(
        refusal=(
            f"it has tables ({', '.join(tables)}), and CCDash's schema is only created on an empty PostgreSQL "
            "database (CCDash never kept a database on PostgreSQL, so there is none to adopt)"
        )
    )


def _tables(connection: sa.Connection) -> list[str]:
    """The tables of the connection's current schema, this layer's own left out, sorted."""
    return sorted(name for name in sa.inspect(connection).get_table_names() if name not in OWN_TABLES)
