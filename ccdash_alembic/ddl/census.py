"""Row censuses: how many rows each user table holds when a step starts and when it ends, to find rows it lost.

A revision can lose rows without any operation saying so: ``op.execute("DELETE FROM jobs")``, ``DROP TABLE``
or ``TRUNCATE`` in raw SQL. So every step is counted twice, in its own transaction: before the revision's
code runs and after it (before commit). A table that is gone, or holds fewer rows, is a loss, and falls under
the same rule as a declared drop (see ``environment._Runner.refuse_data_loss``).

Which table after the step is which table before it:

1. the same DuckDB oid: ``ALTER TABLE ... RENAME`` keeps a table's oid (measured on DuckDB 2.0.1, committed
   or not; ``tests/test_data_loss.py`` checks it through a raw-SQL rename), and a dropped table's oid is never
   given to a new one while the connection lives. Oids are handed out again when a file is opened, so they
   are compared only within one step, never stored;
2. else the name the implementation renamed it to (``op.rename_table`` of a table with foreign keys is a
   rebuild under the new name, so a new oid), following the renames in order;
3. else the same name: a rebuild drops the table and creates a new one under its name.

What this cannot see: a step that deletes rows and inserts as many (counts only), and rows moved to another
table by hand (``CREATE TABLE archive AS SELECT * FROM jobs; DROP TABLE jobs`` loses ``jobs``; confirm it).
Bookkeeping tables (``alembic_version``, and what the run layer adds with ``ignore``) and temporary tables
are not counted. A revision with ``transactional = False`` is not counted either: its statements commit as
they go, so nothing could be refused afterwards (its declared drops are still stopped before they run).

``count(*)`` is exact inside a transaction (DuckDB's ``estimated_size`` is not: it still shows deleted rows
until commit); all tables are counted in one query.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy.engine import Connection

from ccdash_alembic.ddl import catalog
from ccdash_alembic.ddl.tabledef import qualified

DEFAULT_SCHEMA = "main"


@dataclass(frozen=True)
class Count:
    """One table's row count in a census."""

    schema: str
    name: str
    oid: int
    rows: int

    @property
    def key(self) -> tuple[str, str]:
        return (self.schema.lower(), self.name.lower())

    def label(self) -> str:
        return self.name if self.schema.lower() == DEFAULT_SCHEMA else f"{self.schema}.{self.name}"


Census = Mapping[int, Count]  # by oid


@dataclass(frozen=True)
class Loss:
    """Rows a table held before a step and no longer holds after it."""

    before: Count
    after: Count | None  # None: the table is gone

    def __str__(self) -> str:
        name = self.before.label()
        if self.after is not None and self.after.key != self.before.key:
            name += f" (now {self.after.label()})"
        rows = self.after.rows if self.after is not None else 0
        gone = "" if self.after is not None else " (table dropped)"
        return f"{name}: {self.before.rows} -> {rows} rows{gone}"


# Tables not counted: Alembic's, this layer's constraint names, and those the layer above keeps (it adds them
# with ``ignore``, so this layer imports nothing from it).
_IGNORED = {"alembic_version", catalog.CONSTRAINT_NAMES}


def ignore(tables: Iterable[str]) -> None:
    """Leave ``tables`` out of every census: bookkeeping, not user data."""
    _IGNORED.update(name.lower() for name in tables)


def is_bookkeeping(table: str) -> bool:
    """Whether ``table`` is one of the bookkeeping tables left out of every census."""
    return table.lower() in _IGNORED


def take(connection: Connection) -> dict[int, Count]:
    """Count the rows of every user table of the current database (one catalog query, one count query)."""
    tables = catalog.user_tables(connection, _IGNORED)
    if not tables:
        return {}
    counts = connection.exec_driver_sql(
        " UNION ALL ".join(
            f"SELECT {index} AS i, count(*) AS n FROM {qualified(name, schema)}"
            for index, (schema, name, _) in enumerate(tables)
        )
    ).fetchall()
    rows = {int(index): int(n) for index, n in counts}
    return {oid: Count(schema, name, oid, rows[index]) for index, (schema, name, oid) in enumerate(tables)}


def losses(before: Census, after: Census, renames: Sequence[tuple[str, str, str]] = ()) -> list[Loss]:
    """The tables of ``before`` that are gone or hold fewer rows in ``after``.

    ``renames`` are the renames the implementation performed during the step, in order:
    ``(schema, old name, new name)``.
    """
    by_name = {count.key: count for count in after.values()}
    found = []
    for count in before.values():
        now = after.get(count.oid)
        if now is None:
            now = by_name.get(_renamed(count, renames)) or by_name.get(count.key)
        if count.rows and (now is None or now.rows < count.rows):
            found.append(Loss(count, now))
    return found


def _renamed(count: Count, renames: Sequence[tuple[str, str, str]]) -> tuple[str, str]:
    schema, name = count.key
    for where, old, new in renames:
        if where.lower() == schema and old.lower() == name:
            name = new.lower()
    return (schema, name)
