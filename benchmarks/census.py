"""Data-loss checks benchmark: what the per-step row census and the lossy-conversion check cost.

(a) A 5,000,000-row rebuild: the type of an indexed column of ``items`` (10 columns, a primary key, two
    indexes, referenced by ``refs`` with 500,000 rows; the database of ``benchmarks/rebuild.py``) is changed
    as a revision step is run: census, the operation (its row checks included), census again, commit. The
    same step without the checks has the census skipped and the lossy-conversion conditions replaced by none
    (patched in the benchmark's process; the product has no switch for it). Reported: each run's time, the
    time the census queries and the row checks took inside it, and the ratio with/without (target < 1.05).
(b) An empty database: CCDash's own revisions upgrade a new file with ``alembic upgrade head``, with the
    checks and without them (patched as above); the per-revision cost is the difference of the
    ``execution_time_ms`` the history records, over the number of revisions. The census of one step (the
    two counts of every table) is also timed directly on the upgraded file (target < 20 ms per revision).

Every run is a fresh process on a fresh copy; median of ``--repeat`` runs, order alternated.

Run:  .venv/bin/python benchmarks/census.py [--rows 5000000] [--repeat 3]
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

import duckdb

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from rebuild import build  # noqa: E402  (the rebuild benchmark's database)

CHANGE = "op.alter_column('items', 'v1', type_=sa.BigInteger)"

PATCH = r"""
import ccdash_alembic.ddl.impl as impl_module

def without_checks():
    impl_module.DuckDBImpl.start_census = lambda self: None
    impl_module.lossy_conditions = lambda column, old_type, new_type: []
"""

REBUILD_CHILD = (
    PATCH
    + r"""
import json, sys, time
import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations
from ccdash_alembic.ddl import census

path, kind, work = sys.argv[1], sys.argv[2], sys.argv[3]
if kind == "without":
    without_checks()
spent = {"census": 0.0, "row_checks": 0.0}

def timed(name, fn):
    def wrapper(*args, **kw):
        start = time.perf_counter()
        try:
            return fn(*args, **kw)
        finally:
            spent[name] += time.perf_counter() - start
    return wrapper

census.take = timed("census", census.take)
impl_module.DuckDBImpl._check_rows = timed("row_checks", impl_module.DuckDBImpl._check_rows)
engine = sa.create_engine(f"duckdb:///{path}", poolclass=sa.NullPool)
with engine.connect() as connection:
    connection.exec_driver_sql("SELECT count(*) FROM items").scalar()
    connection.commit()
    start = time.perf_counter()
    with connection.begin():
        context = MigrationContext.configure(connection)
        impl = context.impl
        impl.data_loss_allowed = False
        impl.start_census()
        exec(work, {"op": Operations(context), "sa": sa})
        losses = impl.take_data_losses()
    seconds = time.perf_counter() - start
    rows = connection.exec_driver_sql("SELECT count(*) FROM items").scalar()
print(json.dumps({"seconds": seconds, **spent, "losses": losses, "rows": rows}))
"""
)

UPGRADE_CHILD = (
    PATCH
    + r"""
import sys
from alembic.config import main
if sys.argv[1] == "without":
    without_checks()
main(argv=["-c", sys.argv[2], "-x", f"db={sys.argv[3]}", "-x", "backup=false", "--quiet", "upgrade", "head"])
"""
)

CENSUS_CHILD = r"""
import json, statistics, sys, time
import sqlalchemy as sa
from alembic.migration import MigrationContext

engine = sa.create_engine(f"duckdb:///{sys.argv[1]}", poolclass=sa.NullPool)
with engine.connect() as connection:
    with connection.begin():
        impl = MigrationContext.configure(connection).impl
        impl.start_census()
        tables = len(impl._census)
        impl.take_data_losses()
        times = []
        for _ in range(20):
            start = time.perf_counter()
            impl.start_census()
            impl.take_data_losses()
            times.append(time.perf_counter() - start)
print(json.dumps({"ms": statistics.median(times) * 1000, "tables": tables}))
"""


def _child(code: str, *args: str) -> dict[str, Any]:
    result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=False, cwd=REPO)
    if result.returncode != 0:
        raise SystemExit(f"run failed:\n{result.stderr[-3000:]}")
    lines = result.stdout.strip().splitlines()
    return dict(json.loads(lines[-1])) if lines else {}


def rebuild_case(scratch: Path, rows: int, repeat: int) -> float:
    base = scratch / "items.db"
    started = time.perf_counter()
    build(base, rows)
    print(f"(a) built {rows:,} rows in {time.perf_counter() - started:.1f} s ({base.stat().st_size / 2**20:.0f} MiB)")
    runs: dict[str, list[dict[str, Any]]] = {"with": [], "without": []}
    for attempt in range(repeat):
        for kind in ("with", "without") if attempt % 2 == 0 else ("without", "with"):
            copy = scratch / f"{kind}.db"
            shutil.copy(base, copy)
            result = _child(REBUILD_CHILD, str(copy), kind, CHANGE)
            if result["rows"] != rows or result["losses"]:
                raise SystemExit(f"{kind}: unexpected result {result}")
            runs[kind].append(result)
            copy.unlink()
            Path(str(copy) + ".wal").unlink(missing_ok=True)
    print(f"{'rebuild, type of items.v1':28} {'total s':>8} {'census s':>9} {'row checks s':>13}")
    medians = {}
    for kind in ("with", "without"):
        medians[kind] = {k: statistics.median(r[k] for r in runs[kind]) for k in ("seconds", "census", "row_checks")}
        m = medians[kind]
        print(f"{kind + ' the checks':28} {m['seconds']:8.2f} {m['census']:9.3f} {m['row_checks']:13.3f}")
    ratio = float(medians["with"]["seconds"] / medians["without"]["seconds"])
    added = medians["with"]["census"] + medians["with"]["row_checks"] - medians["without"]["row_checks"]
    share = added / medians["without"]["seconds"]
    print(
        f"ratio with/without: {ratio:.3f}; census + lossy check measured inside the run: {added:.3f} s = "
        f"{share:.1%} of the rebuild (target < 5%)"
    )
    return ratio


def empty_case(scratch: Path, repeat: int) -> None:
    config = str(REPO / "alembic.ini")
    revisions = len(list((REPO / "versions").glob("*.py")))
    sums: dict[str, list[int]] = {"with": [], "without": []}
    for attempt in range(repeat):
        for kind in ("with", "without") if attempt % 2 == 0 else ("without", "with"):
            db = scratch / f"empty-{kind}-{attempt}.db"
            _child(UPGRADE_CHILD, kind, config, str(db))
            connection = duckdb.connect(str(db), read_only=True)
            total = connection.execute(
                "SELECT sum(execution_time_ms) FROM migration_history WHERE status = 'success'"
            ).fetchone()
            connection.close()
            sums[kind].append(int(total[0]) if total and total[0] is not None else 0)
    direct = [_child(CENSUS_CHILD, str(scratch / "empty-with-0.db")) for _ in range(repeat)]
    census_ms = statistics.median(d["ms"] for d in direct)
    with_ms, without_ms = statistics.median(sums["with"]), statistics.median(sums["without"])
    print(f"\n(b) empty database, CCDash's {revisions} revisions, upgrade head")
    print(f"{'run':28} {'sum of steps ms':>16} {'per revision ms':>16}")
    print(f"{'with the checks':28} {with_ms:16.0f} {with_ms / revisions:16.1f}")
    print(f"{'without':28} {without_ms:16.0f} {without_ms / revisions:16.1f}")
    print(
        f"difference per revision: {(with_ms - without_ms) / revisions:.1f} ms; one step's census measured directly "
        f"({direct[0]['tables']} tables, counted before and after): {census_ms:.1f} ms (target < 20 ms)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-rebuild", action="store_true", help="only the empty-database case")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ccdash-census-") as folder:
        scratch = Path(folder)
        empty_case(scratch, args.repeat)
        if not args.skip_rebuild:
            print()
            rebuild_case(scratch, args.rows, args.repeat)


if __name__ == "__main__":
    main()
