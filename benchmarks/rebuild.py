"""Rebuild benchmark: this project's operations against the same change written by hand in plain DuckDB SQL.

A generated table ``items`` (5,000,000 rows, 10 columns, a primary key, two indexes) is referenced by
``refs`` (500,000 rows). For each change

  (a) a type change of an indexed column,
  (b) adding a foreign key,
  (c) dropping a column,

both ways run in a fresh process on a fresh copy of the database, in one transaction each, and report the
time from the first statement to the end of the commit and the process's peak resident memory. Both
processes import the same modules and use the same kind of connection, so the difference is the operation.
The hand-written SQL is what an expert would write: children kept in a temporary table, the new table built
and filled with one INSERT ... SELECT, indexes built after the copy. (A table with a foreign key is not built
under a scratch name and renamed: DuckDB then leaves its parent pointing at the scratch name.)

Run:  .venv/bin/python benchmarks/rebuild.py [--rows 5000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ITEMS = """CREATE TABLE items (
    id BIGINT PRIMARY KEY, grp INTEGER, v1 INTEGER, v2 DOUBLE, s1 VARCHAR, s2 VARCHAR,
    ts TIMESTAMP, flag BOOLEAN, amount DECIMAL(12, 2), n INTEGER)"""
REFS = "CREATE TABLE refs (id BIGINT PRIMARY KEY, item_id BIGINT REFERENCES items(id), note VARCHAR)"
INDEXES = ["CREATE INDEX ix_items_v1 ON items (v1)", "CREATE INDEX ix_items_v2 ON items (v2)"]

CASES = {
    "a: type of an indexed column": {
        "ours": "op.alter_column('items', 'v1', type_=sa.BigInteger)",
        "hand": [
            "CREATE TEMP TABLE keep_refs AS SELECT * FROM refs",
            "DROP TABLE refs",
            ITEMS.replace("CREATE TABLE items", "CREATE TABLE new_items").replace("v1 INTEGER", "v1 BIGINT"),
            "INSERT INTO new_items SELECT id, grp, CAST(v1 AS BIGINT), v2, s1, s2, ts, flag, amount, n FROM items",
            "DROP TABLE items",
            "ALTER TABLE new_items RENAME TO items",
            REFS,
            "INSERT INTO refs SELECT * FROM keep_refs",
            "DROP TABLE keep_refs",
            *INDEXES,
        ],
    },
    "b: add a foreign key": {
        "ours": "op.create_foreign_key('fk_items_grp', 'items', 'groups', ['grp'], ['id'])",
        "hand": [
            "CREATE TEMP TABLE keep_refs AS SELECT * FROM refs",
            "DROP TABLE refs",
            "CREATE TEMP TABLE keep_items AS SELECT * FROM items",
            "DROP TABLE items",
            ITEMS[:-1] + ", FOREIGN KEY (grp) REFERENCES groups (id))",
            "INSERT INTO items SELECT * FROM keep_items",
            "DROP TABLE keep_items",
            REFS,
            "INSERT INTO refs SELECT * FROM keep_refs",
            "DROP TABLE keep_refs",
            *INDEXES,
        ],
    },
    "c: drop a column": {
        "ours": "op.drop_column('items', 's2')",
        "hand": [
            "CREATE TEMP TABLE keep_refs AS SELECT * FROM refs",
            "DROP TABLE refs",
            ITEMS.replace("CREATE TABLE items", "CREATE TABLE new_items").replace(" s2 VARCHAR,", ""),
            "INSERT INTO new_items SELECT id, grp, v1, v2, s1, ts, flag, amount, n FROM items",
            "DROP TABLE items",
            "ALTER TABLE new_items RENAME TO items",
            REFS,
            "INSERT INTO refs SELECT * FROM keep_refs",
            "DROP TABLE keep_refs",
            *INDEXES,
        ],
    },
}

CHILD = r"""
import json, resource, sys, time
import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations
import ccdash_alembic

path, kind, work = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
engine = sa.create_engine(f"duckdb:///{path}", poolclass=sa.NullPool)
with engine.connect() as connection:
    connection.exec_driver_sql("SELECT count(*) FROM items").scalar()
    connection.commit()
    start = time.perf_counter()
    with connection.begin():
        if kind == "ours":
            op = Operations(MigrationContext.configure(connection))
            exec(work, {"op": op, "sa": sa})
        else:
            for statement in work:
                connection.exec_driver_sql(statement)
    seconds = time.perf_counter() - start
    check = connection.exec_driver_sql("SELECT count(*) FROM items").scalar(), connection.exec_driver_sql(
        "SELECT count(*) FROM refs").scalar()
print(json.dumps({"seconds": seconds, "peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "rows": check}))
"""


def build(path: Path, rows: int) -> None:
    import duckdb

    connection = duckdb.connect(str(path), config={"storage_compatibility_version": "v1.0.0"})
    connection.execute("CREATE TABLE groups (id INTEGER PRIMARY KEY, name VARCHAR)")
    connection.execute("INSERT INTO groups SELECT i, 'group ' || i FROM range(100) r(i)")
    connection.execute(ITEMS)
    connection.execute(
        f"""INSERT INTO items SELECT i, i % 100, (i * 7) % 1000003, i / 3.0, 'text ' || (i % 5000),
            md5(i::VARCHAR), TIMESTAMP '2025-01-01' + INTERVAL (i % 100000) SECOND, i % 2 = 0,
            (i % 100000) / 100.0, i % 17 FROM range({rows}) r(i)"""
    )
    for statement in INDEXES:
        connection.execute(statement)
    connection.execute(REFS)
    connection.execute(f"INSERT INTO refs SELECT i, (i * 13) % {rows}, 'ref ' || i FROM range({rows // 10}) r(i)")
    connection.execute("CHECKPOINT")
    connection.close()


def run(base: Path, scratch: Path, kind: str, work: object) -> dict[str, Any]:
    copy = scratch / f"{kind}.db"
    shutil.copy(base, copy)
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(copy), kind, json.dumps(work)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise SystemExit(f"{kind} run failed:\n{result.stderr[-3000:]}")
    copy.unlink()
    Path(str(copy) + ".wal").unlink(missing_ok=True)
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ccdash-bench-") as folder:
        scratch = Path(folder)
        base = scratch / "base.db"
        started = time.perf_counter()
        build(base, args.rows)
        size = base.stat().st_size / 2**20
        print(f"built {args.rows:,} rows in {time.perf_counter() - started:.1f} s ({size:.0f} MiB)")
        print(f"{'change':32} {'ours s':>8} {'hand s':>8} {'ratio':>6} {'ours MiB':>9} {'hand MiB':>9} {'ratio':>6}")
        worst = (0.0, 0.0)
        for name, case in CASES.items():
            timings: dict[str, list[float]] = {"ours": [], "hand": []}
            peaks: dict[str, list[float]] = {"ours": [], "hand": []}
            for attempt in range(args.repeat):
                order = ("ours", "hand") if attempt % 2 == 0 else ("hand", "ours")
                counts = set()
                for kind in order:
                    result = run(base, scratch, kind, case[kind])
                    timings[kind].append(result["seconds"])
                    peaks[kind].append(result["peak_kib"] / 1024)
                    counts.add(tuple(result["rows"]))
                if len(counts) != 1:
                    raise SystemExit(f"{name}: the two ways left different row counts: {counts}")
            ours_s, hand_s = statistics.median(timings["ours"]), statistics.median(timings["hand"])
            ours_m, hand_m = statistics.median(peaks["ours"]), statistics.median(peaks["hand"])
            worst = (max(worst[0], ours_s / hand_s), max(worst[1], ours_m / hand_m))
            print(
                f"{name:32} {ours_s:8.2f} {hand_s:8.2f} {ours_s / hand_s:6.2f} "
                f"{ours_m:9.0f} {hand_m:9.0f} {ours_m / hand_m:6.2f}"
            )
        print(f"worst ratios: time {worst[0]:.2f} (target <= 1.15), peak memory {worst[1]:.2f} (target <= 1.25)")


if __name__ == "__main__":
    main()
