"""A populated schema in which one table has every kind of dependency, and ways to compare database states.

``items`` has a primary key, a plain index, a unique constraint, a check constraint, an outgoing foreign key
(to ``owners``) and an incoming one (from ``item_tags``, itself referenced by ``tag_votes``: a chain of
depth two). ``events`` has no primary key. Every table has rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import sqlalchemy as sa

import ccdash_alembic  # noqa: F401  (registers the dialect)
from ccdash_alembic.ddl.defaults import normalize_default

BASE_UPGRADE = '''
op.execute("CREATE TABLE owners (id INTEGER PRIMARY KEY, name VARCHAR NOT NULL)")
op.execute("""CREATE TABLE items (
    id INTEGER PRIMARY KEY,
    owner_id INTEGER REFERENCES owners(id),
    code VARCHAR NOT NULL UNIQUE,
    qty INTEGER DEFAULT 0 CHECK (qty >= 0),
    price DECIMAL(10, 2),
    created VARCHAR,
    note VARCHAR DEFAULT 'none',
    buyer_id INTEGER
)""")
op.execute("CREATE INDEX ix_items_price ON items (price)")
op.execute("CREATE TABLE item_tags (id INTEGER PRIMARY KEY, item_id INTEGER REFERENCES items(id), tag VARCHAR)")
op.execute("CREATE INDEX ix_item_tags_tag ON item_tags (tag)")
op.execute("CREATE TABLE tag_votes (tag_id INTEGER REFERENCES item_tags(id), score INTEGER)")
op.execute("CREATE TABLE events (id INTEGER NOT NULL, payload VARCHAR)")
op.execute("COMMENT ON TABLE items IS 'things for sale'")
op.execute("COMMENT ON COLUMN items.code IS 'unique code'")
op.execute("INSERT INTO owners SELECT i, 'owner ' || i FROM range(1, 4) t(i)")
op.execute("""INSERT INTO items SELECT i, 1 + i % 3, 'code-' || i, i, i * 1.25,
    strftime(TIMESTAMP '2025-08-01' + INTERVAL (i) HOUR, '%Y-%m-%dT%H:%M:%SZ'), 'note ' || i, NULL
    FROM range(1, 51) t(i)""")
op.execute("INSERT INTO item_tags SELECT i, 1 + i % 50, 'tag ' || (i % 7) FROM range(1, 101) t(i)")
op.execute("INSERT INTO tag_votes SELECT 1 + i % 100, i FROM range(1, 151) t(i)")
op.execute("INSERT INTO events SELECT i, 'event ' || i FROM range(1, 21) t(i)")
'''

LAYER_TABLES = ("alembic_version", "migration_constraint_names", "migration_history", "schema_version")


def schema(path: Path) -> dict[str, Any]:
    """Every table as SQLAlchemy reflects it, in comparable form: defaults by meaning (DuckDB 1.1 wrote
    ``false`` as ``CAST('f' AS BOOLEAN)``), everything else as reflected."""
    # read-only: files shared by parallel workers (the generations) are read by several at once, never changed;
    # one connection answers every question (a connection each costs the file's opening and catalog, ~25 ms)
    engine = sa.create_engine(f"duckdb:///{path}", poolclass=sa.StaticPool, connect_args={"read_only": True})
    try:
        inspector = sa.inspect(engine)
        result: dict[str, Any] = {}
        for table in sorted(inspector.get_table_names()):
            if table in LAYER_TABLES:
                continue
            result[table] = {
                "columns": [
                    (c["name"], repr(c["type"]), c["nullable"], normalize_default(c["default"]), c.get("comment"))
                    for c in inspector.get_columns(table)
                ],
                "primary_key": inspector.get_pk_constraint(table)["constrained_columns"],
                "foreign_keys": sorted(
                    (tuple(f["constrained_columns"]), f["referred_table"], tuple(f["referred_columns"]))
                    for f in inspector.get_foreign_keys(table)
                ),
                "unique": sorted(tuple(u["column_names"]) for u in inspector.get_unique_constraints(table)),
                "checks": sorted(c["sqltext"] for c in inspector.get_check_constraints(table)),
                "indexes": sorted(
                    (i["name"], tuple(str(c) for c in i["column_names"]), i["unique"])
                    for i in inspector.get_indexes(table)
                ),
                "comment": inspector.get_table_comment(table)["text"],
            }
        return result
    finally:
        engine.dispose()


def rows(path: Path, table: str, columns: str = "*") -> list[tuple[Any, ...]]:
    connection = duckdb.connect(str(path), read_only=True)
    try:
        return sorted(connection.execute(f'SELECT {columns} FROM "{table}"').fetchall(), key=repr)
    finally:
        connection.close()


def data(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, with its columns by name (so column order does not matter)."""
    connection = duckdb.connect(str(path), read_only=True)
    try:
        result = {}
        for (table,) in connection.execute("SELECT table_name FROM duckdb_tables()").fetchall():
            if table not in LAYER_TABLES:
                cursor = connection.execute(f'SELECT * FROM "{table}"')
                names = [d[0] for d in cursor.description]
                result[table] = sorted((tuple(sorted(zip(names, r, strict=True))) for r in cursor.fetchall()), key=repr)
        return result
    finally:
        connection.close()
