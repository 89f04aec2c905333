"""Rebuild benchmark: this project's operations against the same change written by hand in plain DuckDB SQL.

A generated table ``items`` (5,000,000 rows, 10 columns, a primary key, two indexes) is referenced by
``refs`` (500,000 rows). For each change

  (a) a type change of an indexed column,
  (b) adding a foreign key,
  (c) dropping a column,

both ways run in a fresh process on a fresh copy of the database, in one transaction each, and report the
time from the first statement to the end of the commit and the process's peak resident memory (the
highest resident set size the kernel recorded for it, ``ru_maxrss``). Both
processes import the same modules and use the same kind of connection, so the difference is the operation.
The hand-written SQL is what an expert would write: children kept in a temporary table, the new table built
and filled with one INSERT ... SELECT, indexes built after the copy. (A table with a foreign key is not built
under a scratch name and renamed: DuckDB then leaves its parent pointing at the scratch name.)

With ``--memory-limit 1GB`` both processes open the database with that DuckDB ``memory_limit`` and a
``temp_directory`` of their own in the scratch folder (as ``-x memory_limit=1GB -x temp_directory=...`` does),
so what does not fit is spilled there; the table then also reports the most the temporary folder held.
``--database PATH`` keeps the generated database at PATH and uses it again on the next run with the same
``--rows`` (a 20,000,000-row database takes minutes to build); ``--case a`` runs one change only.

Run:  .venv/bin/python benchmarks/rebuild.py [--rows 5000000] [--repeat 3] [--memory-limit 1GB]
      [--database PATH] [--case a --case b ...]
"""

from __future__ import annotations

import argparse
import contextlib
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

path, kind, work, config = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
engine = sa.create_engine(f"duckdb:///{path}", poolclass=sa.NullPool, connect_args={"config": config})
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


def _folder_bytes(folder: Path) -> int:
    total = 0
    for entry in folder.rglob("*"):
        with contextlib.suppress(FileNotFoundError):  # DuckDB removed it between listing and reading
            total += entry.stat().st_size if entry.is_file() else 0
    return total


def run(base: Path, scratch: Path, kind: str, work: object, memory_limit: str | None) -> dict[str, Any]:
    """One way, in a fresh process on a fresh copy; with a memory limit, the most its spill folder held."""
    copy = scratch / f"{kind}.db"
    shutil.copy(base, copy)
    spill = scratch / f"{kind}.tmp"
    config = {} if memory_limit is None else {"memory_limit": memory_limit, "temp_directory": str(spill)}
    with subprocess.Popen(
        [sys.executable, "-c", CHILD, str(copy), kind, json.dumps(work), json.dumps(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as child:
        spilled = 0
        while child.poll() is None:
            spilled = max(spilled, _folder_bytes(spill)) if spill.exists() else spilled
            time.sleep(0.2)
        out, err = child.communicate()
    if child.returncode != 0:
        raise SystemExit(f"{kind} run failed:\n{err[-3000:]}")
    copy.unlink()
    Path(str(copy) + ".wal").unlink(missing_ok=True)
    shutil.rmtree(spill, ignore_errors=True)
    return {**json.loads(out.strip().splitlines()[-1]), "spilled": spilled}


def _base(path: Path, rows: int) -> Path:
    """The generated database at ``path``, built unless a previous run left one of ``rows`` rows there."""
    import duckdb

    if path.exists():
        connection = duckdb.connect(str(path), read_only=True)
        found = connection.execute("SELECT count(*) FROM items").fetchone()
        connection.close()
        if found is not None and found[0] == rows:
            print(f"using {path} ({rows:,} rows, {path.stat().st_size / 2**20:.0f} MiB)")
            return path
        path.unlink()
    started = time.perf_counter()
    build(path, rows)
    size = path.stat().st_size / 2**20
    print(f"built {rows:,} rows in {time.perf_counter() - started:.1f} s ({size:.0f} MiB)")
    return path


def measure(base: Path, scratch: Path, case: dict[str, Any], repeat: int, memory_limit: str | None) -> dict[str, float]:
    """Medians over ``repeat`` runs of each way, order alternated: seconds, peak MiB, spilled MiB."""
    runs: dict[str, list[dict[str, Any]]] = {"ours": [], "hand": []}
    for attempt in range(repeat):
        counts = set()
        for kind in ("ours", "hand") if attempt % 2 == 0 else ("hand", "ours"):
            result = run(base, scratch, kind, case[kind], memory_limit)
            runs[kind].append(result)
            counts.add(tuple(result["rows"]))
        if len(counts) != 1:
            raise SystemExit(f"the two ways left different row counts: {counts}")
    medians = {}
    for kind, results in runs.items():
        medians[f"{kind}_s"] = statistics.median(r["seconds"] for r in results)
        medians[f"{kind}_mib"] = statistics.median(r["peak_kib"] / 1024 for r in results)
        medians[f"{kind}_spill"] = statistics.median(r["spilled"] / 2**20 for r in results)
    return medians


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--memory-limit", help="DuckDB memory_limit for both ways, e.g. 1GB (spills to a temp folder)")
    parser.add_argument("--database", type=Path, help="keep the generated database here and reuse it")
    parser.add_argument("--case", action="append", choices=[name[0] for name in CASES], help="run only these")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ccdash-bench-") as folder:
        scratch = Path(folder)
        base = _base(args.database or scratch / "base.db", args.rows)
        limit = f"memory_limit={args.memory_limit}" if args.memory_limit else "no memory limit"
        print(f"{args.rows:,} rows, {limit}, median of {args.repeat}")
        header = f"{'change':32} {'ours s':>8} {'hand s':>8} {'ratio':>6} {'ours MiB':>9} {'hand MiB':>9} {'ratio':>6}"
        print(header + (f" {'ours spill':>10} {'hand spill':>10}" if args.memory_limit else ""))
        worst = (0.0, 0.0)
        for name, case in CASES.items():
            if args.case and name[0] not in args.case:
                continue
            m = measure(base, scratch, case, args.repeat, args.memory_limit)
            time_ratio, memory_ratio = m["ours_s"] / m["hand_s"], m["ours_mib"] / m["hand_mib"]
            worst = (max(worst[0], time_ratio), max(worst[1], memory_ratio))
            line = (
                f"{name:32} {m['ours_s']:8.2f} {m['hand_s']:8.2f} {time_ratio:6.2f} "
                f"{m['ours_mib']:9.0f} {m['hand_mib']:9.0f} {memory_ratio:6.2f}"
            )
            print(line + (f" {m['ours_spill']:10.0f} {m['hand_spill']:10.0f}" if args.memory_limit else ""))
        target = 1.10 if args.memory_limit else 1.15
        print(
            f"worst ratios: time {worst[0]:.2f} (target <= {target:.2f}), peak memory {worst[1]:.2f} (target <= 1.25)"
        )


if __name__ == "__main__":
    main()
