"""Bookkeeping benchmark: what this project's environment costs per revision and per run, against stock Alembic.

A scratch folder holds two projects with the same 200 generated empty revisions (a chain from base, each
``upgrade()``/``downgrade()`` a ``pass``):

- ``ours``: this repository's ``alembic.ini``, ``env.py`` and ``script.py.mako`` (every step timed, checked and
  recorded in ``migration_history`` and ``schema_version``), run with ``-x db=FILE``;
- ``stock``: what ``alembic init`` writes (its ``run_migrations_online``: ``context.configure(connection=...,
  target_metadata=None)`` and ``context.run_migrations()`` in one transaction), with ``sqlalchemy.url`` a DuckDB
  file. Alembic loads this package's dialect implementation through its entry point
  (``ccdash_alembic.ddl.plugin``), so both run on the same implementation and the same kind of file: the
  difference is the bookkeeping.

Measured, each as the wall and CPU time of a fresh ``alembic`` process (start-up included), median of ``--repeat``
runs, the two sides alternated:

(a) ``upgrade head`` of the 200 revisions on a new file (target: ours within 1.5x of stock);
(b) at head, nothing to do: ours ``upgrade head`` and ours ``current`` against stock ``current`` on the same
    file (target: within 1.2x);
plus, for reference, ``ccdash-migrate up`` and ``ccdash-migrate current`` at head, Python opening the DuckDB
file (the floor of any run), and the floor of (a): the statements each side must run per revision in plain
DuckDB, in-process (stock: one UPDATE of alembic_version, all in one transaction; recorded: that UPDATE, a
migration_history row and the schema_version update, committed per revision, as the run's guarantees need).
Wall times follow the machine's load and its disk (each commit waits for the disk); the CPU columns (user +
system of the process) are steadier on a shared machine.

Run:  .venv/bin/python benchmarks/bookkeeping.py [--revisions 200] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
FIRST = 20250101000000  # revision ids are timestamps here, as ``create`` makes them

REVISION = '''"""empty step {n}"""

import sqlalchemy as sa
from alembic import op

revision = {revision!r}
down_revision = {parent!r}
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
'''


@dataclass(frozen=True)
class Timing:
    wall: float  # seconds, start-up included
    cpu: float  # user + system seconds of the process: what the machine's other load does not inflate


OPEN_DUCKDB = "import duckdb, sys; duckdb.connect(sys.argv[1]).execute('SELECT 1').fetchall()"

# The floor: what DuckDB alone takes for the statements each side must run per revision, timed in-process (no
# start-up, no Python layers): stock, one UPDATE of alembic_version per revision in one transaction; recorded,
# that UPDATE plus a migration_history row and the schema_version update, committed per revision.
FLOOR = r"""
import datetime, sys, time
import duckdb
path, mode, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
connection = duckdb.connect(path)
[(head,)] = connection.execute("SELECT version_num FROM alembic_version").fetchall()
row = ["v", "n", "up", datetime.datetime.now(), 1, "0" * 64, "def upgrade(): pass", "def downgrade(): pass",
       "success", None, None, "me", "host", "0.1.0"]
started = time.perf_counter()
if mode == "stock":
    connection.execute("BEGIN")
for _ in range(count):
    if mode != "stock":
        connection.execute("BEGIN")
    connection.execute("UPDATE alembic_version SET version_num = $1 WHERE version_num = $1", [head])
    if mode != "stock":
        connection.execute(
            "INSERT INTO migration_history (id, version, name, direction, applied_at, execution_time_ms, checksum,"
            " up_script, down_script, status, error_message, note, installed_by, hostname, tool_version)"
            " VALUES (nextval('migration_history_id_seq'), $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13,"
            " $14)", row)
        connection.execute("UPDATE schema_version SET version = $1, dirty = false, updated_at = now()", [head])
        connection.execute("COMMIT")
if mode == "stock":
    connection.execute("COMMIT")
print((time.perf_counter() - started) / count * 1000)
"""


def write_revisions(versions: Path, count: int) -> None:
    versions.mkdir(parents=True, exist_ok=True)
    parent = None
    for n in range(count):
        revision = str(FIRST + n)
        (versions / f"{revision}_empty_step_{n}.py").write_text(REVISION.format(n=n, revision=revision, parent=parent))
        parent = revision


def ours_project(root: Path, count: int) -> Path:
    root.mkdir()
    for name in ("alembic.ini", "env.py", "script.py.mako"):
        shutil.copy(REPO / name, root / name)
    write_revisions(root / "versions", count)
    return root


def stock_project(root: Path, count: int, db: Path) -> Path:
    root.mkdir()
    run([str(BIN / "alembic"), "init", "--template", "generic", str(root / "migrations")], cwd=root)
    ini = root / "alembic.ini"
    text = ini.read_text()
    default_url = "sqlalchemy.url = driver://user:pass@localhost/dbname"
    assert default_url in text, "alembic init wrote an alembic.ini without the placeholder url"
    ini.write_text(text.replace(default_url, f"sqlalchemy.url = duckdb:///{db}"))
    write_revisions(root / "migrations" / "versions", count)
    return root


def run(command: list[str], cwd: Path) -> Timing:
    """Wall and CPU time of one fresh process; a failure stops the benchmark."""
    environment = {k: v for k, v in os.environ.items() if k not in ("CCDASH_DB_PATH", "ALEMBIC_CONFIG")}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, env=environment, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    return Timing(seconds, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)


def fresh(path: Path) -> None:
    path.unlink(missing_ok=True)
    Path(f"{path}.wal").unlink(missing_ok=True)


def median_of(repeat: int, pairs: list[tuple[str, Callable[[], Timing]]]) -> dict[str, Timing]:
    """Median wall and CPU time of each named run, the order reversed every other round."""
    times: dict[str, list[Timing]] = {name: [] for name, _ in pairs}
    for attempt in range(repeat):
        for name, measure in pairs if attempt % 2 == 0 else list(reversed(pairs)):
            times[name].append(measure())
    return {
        name: Timing(statistics.median(t.wall for t in values), statistics.median(t.cpu for t in values))
        for name, values in times.items()
    }


def floor_ms(head: Path, copy: Path, mode: str, args: argparse.Namespace) -> float:
    """Median milliseconds per revision of ``FLOOR`` in ``mode``, each run on a fresh copy of the file at head."""
    runs = []
    for _ in range(args.repeat):
        fresh(copy)
        shutil.copy(head, copy)
        command = [sys.executable, "-c", FLOOR, str(copy), mode, str(args.revisions)]
        result = subprocess.run(command, capture_output=True, text=True, check=True)
        runs.append(float(result.stdout))
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--revisions", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    alembic, migrate = str(BIN / "alembic"), str(BIN / "ccdash-migrate")

    with tempfile.TemporaryDirectory(prefix="ccdash-bench-") as folder:
        scratch = Path(folder)
        ours_db, stock_db, head_db = scratch / "ours.db", scratch / "stock.db", scratch / "head.db"
        ours = ours_project(scratch / "ours", args.revisions)
        stock = stock_project(scratch / "stock", args.revisions, stock_db)

        def ours_upgrade() -> Timing:
            fresh(ours_db)
            return run([alembic, "-x", f"db={ours_db}", "upgrade", "head"], ours)

        def stock_upgrade() -> Timing:
            fresh(stock_db)
            return run([alembic, "upgrade", "head"], stock)

        for warm in (ours_upgrade, stock_upgrade):  # compiles each project's revisions into __pycache__ once
            warm()
        shutil.copy(ours_db, head_db)  # at head, with this layer's history: the file every run (b) reads
        head_stock = stock_project(scratch / "stock-at-head", args.revisions, head_db)
        run([alembic, "current"], head_stock)

        upgrade = median_of(args.repeat, [("ours", ours_upgrade), ("stock", stock_upgrade)])
        at_head = median_of(
            args.repeat,
            [
                ("stock current", lambda: run([alembic, "current"], head_stock)),
                ("ours upgrade head", lambda: run([alembic, "-x", f"db={head_db}", "upgrade", "head"], ours)),
                ("ours current", lambda: run([alembic, "-x", f"db={head_db}", "current"], ours)),
                ("ccdash-migrate up", lambda: run([migrate, "-c", "alembic.ini", "-x", f"db={head_db}", "up"], ours)),
                (
                    "ccdash-migrate current",
                    lambda: run([migrate, "-c", "alembic.ini", "-x", f"db={head_db}", "current"], ours),
                ),
                ("python opens duckdb", lambda: run([sys.executable, "-c", OPEN_DUCKDB, str(head_db)], scratch)),
            ],
        )
        floor = {mode: floor_ms(head_db, scratch / "floor.db", mode, args) for mode in ("stock", "recorded")}

    print(f"{args.revisions} empty revisions, median of {args.repeat}, a fresh process per run")
    print(
        f"{'run':40} {'ours s':>7} {'base s':>7} {'ratio':>6} {'target':>7} "
        f"{'ours cpu':>9} {'base cpu':>9} {'ratio':>6}"
    )
    rows = [("(a) upgrade head from base", upgrade["ours"], upgrade["stock"], "<= 1.5")]
    baseline = at_head["stock current"]
    for name in ("ours upgrade head", "ours current", "ccdash-migrate up", "ccdash-migrate current"):
        rows.append((f"(b) at head: {name}", at_head[name], baseline, "<= 1.2" if name.startswith("ours") else ""))
    for name, ours_t, base_t, target in rows:
        print(
            f"{name:40} {ours_t.wall:7.2f} {base_t.wall:7.2f} {ours_t.wall / base_t.wall:6.2f} {target:>7} "
            f"{ours_t.cpu:9.2f} {base_t.cpu:9.2f} {ours_t.cpu / base_t.cpu:6.2f}"
        )
    per = (upgrade["ours"].wall - upgrade["stock"].wall) / args.revisions * 1000
    print(f"(a) costs {per:+.1f} ms per revision over stock Alembic; base of (b): stock alembic current")
    print(
        f"plain DuckDB, per revision: {floor['stock']:.2f} ms for stock's statement, {floor['recorded']:.2f} ms with "
        f"the history row, schema_version and a commit per revision (the floor of (a): "
        f"{floor['recorded'] - floor['stock']:+.2f} ms per revision)"
    )
    opened = at_head["python opens duckdb"]
    print(f"python opening the file, for reference: {opened.wall:.2f} s ({opened.cpu:.2f} s cpu)")


if __name__ == "__main__":
    main()
