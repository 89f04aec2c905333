"""Checks benchmark: what opening a CCDash database costs a command, on a small file and on a large one.

Every command opens the database through ``database.connect``, which first refuses a file cut short. On a
12 MB and a 2.8 GB CCDash database at head (``benchmarks/ccdash_data.py``, copied to a scratch folder first)
this measures, each in a fresh process, median of N runs:

  - the floor: Python opening the file with DuckDB (``duckdb.connect(path, read_only=True)``) and reading
    ``alembic_version`` (the process's wall time, start-up and imports included);
  - ``ccdash-migrate current`` and ``ccdash-migrate status`` (wall time of the whole command);
  - one request to the status page (``ccdash-migrate serve --port 0``, started fresh for each request; the
    time from sending the request to the end of the response, the server's start-up left out);
  - the truncated-file check alone, in a process that has imported it: ``fileheader.shortfall`` (what
    ``database.connect`` runs), and the check it replaced, ``pragma_storage_info`` of every table on an open
    connection, for comparison.

It prints one row per measurement with both sizes and the ratio large / small; the commands' ratio should
stay within 1.3.

Run:  .venv/bin/python benchmarks/checks.py [--sizes 12 2800] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from ccdash_data import REPO, database

BIN = Path(sys.executable).parent

FLOOR = """
import duckdb, sys
connection = duckdb.connect(sys.argv[1], read_only=True)
connection.execute("SELECT version_num FROM alembic_version").fetchall()
connection.close()
"""
NEW_CHECK = """
import json, sys, time
from pathlib import Path
from ccdash_alembic.ddl import fileheader
start = time.perf_counter()
found = fileheader.shortfall(Path(sys.argv[1]))
print(json.dumps({"seconds": time.perf_counter() - start, "found": found is not None}))
"""
OLD_CHECK = """
import duckdb, json, sys, time
connection = duckdb.connect(sys.argv[1], read_only=True)
start = time.perf_counter()
tables = connection.execute(
    "SELECT database_name, schema_name, table_name FROM duckdb_tables() "
    "WHERE database_name = current_database() AND NOT temporary").fetchall()
last = -1
for name in tables:
    qualified = ".".join('"' + part.replace('"', '""') + '"' for part in name)
    found = connection.execute(
        f"SELECT max(block_id) FROM pragma_storage_info('{qualified}') WHERE block_id >= 0").fetchone()[0]
    last = max(last, -1 if found is None else found)
print(json.dumps({"seconds": time.perf_counter() - start, "last": last}))
connection.close()
"""


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "CCDASH_DB_PATH"}
    env["HOME"] = str(home)
    return env


def _timed(arguments: list[str], env: dict[str, str]) -> float:
    """The wall time of a fresh process, which must succeed."""
    start = time.perf_counter()
    result = subprocess.run(arguments, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(arguments)} failed:\n{result.stderr[-3000:]}")
    return seconds


def _reported(arguments: list[str], env: dict[str, str]) -> float:
    """The seconds a fresh process reports on its last line (a measurement inside the process)."""
    result = subprocess.run(arguments, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(arguments)} failed:\n{result.stderr[-3000:]}")
    return float(json.loads(result.stdout.strip().splitlines()[-1])["seconds"])


def _page_request(path: Path, env: dict[str, str]) -> float:
    """One request to a status page server started for it: the time to the end of the response."""
    server = subprocess.Popen(
        [str(BIN / "ccdash-migrate"), "-x", f"db={path}", "serve", "--port", "0"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        found = re.search(r"(http://127\.0\.0\.1:\d+/)", server.stdout.readline())
        if found is None:
            raise SystemExit(f"the status page did not start:\n{server.stderr.read() if server.stderr else ''}")
        start = time.perf_counter()
        with urllib.request.urlopen(found[1] + "status.json", timeout=120) as response:
            body = json.loads(response.read())
        seconds = time.perf_counter() - start
        if body.get("error"):
            raise SystemExit(f"the status page says: {body['error']}")
        return seconds
    finally:
        server.terminate()
        server.wait(timeout=30)


def measurements(path: Path, home: Path) -> dict[str, Callable[[], float]]:
    env = _env(home)
    python = sys.executable
    return {
        "floor: duckdb.connect + 1 query": lambda: _timed([python, "-c", FLOOR, str(path)], env),
        "ccdash-migrate current": lambda: _timed([str(BIN / "ccdash-migrate"), "-x", f"db={path}", "current"], env),
        "ccdash-migrate status": lambda: _timed([str(BIN / "ccdash-migrate"), "-x", f"db={path}", "status"], env),
        "status page request": lambda: _page_request(path, env),
        "check: fileheader.shortfall": lambda: _reported([python, "-c", NEW_CHECK, str(path)], env),
        "check replaced: pragma_storage_info": lambda: _reported([python, "-c", OLD_CHECK, str(path)], env),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs=2, default=[12, 2800], metavar=("SMALL_MB", "LARGE_MB"))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ccdash-bench-checks-", dir=REPO / ".cache") as folder:
        scratch = Path(folder)
        copies = []
        for megabytes in args.sizes:
            copy = scratch / f"ccdash-{megabytes}MB.db"
            shutil.copyfile(database(megabytes), copy)
            copies.append(copy)
        sizes = [f"{c.stat().st_size / 1e6:,.0f} MB" for c in copies]
        print(f"CCDash databases at head: {sizes[0]} and {sizes[1]}; fresh process per run, median of {args.repeat}")
        print(f"{'measurement':38} {sizes[0] + ' ms':>12} {sizes[1] + ' ms':>14} {'ratio':>6}")
        small, large = (measurements(c, scratch) for c in copies)
        for name in small:
            runs: tuple[list[float], list[float]] = ([], [])
            for _ in range(args.repeat):  # the two sizes alternate, so a burst of load touches both
                runs[0].append(small[name]())
                runs[1].append(large[name]())
            a, b = (statistics.median(r) * 1000 for r in runs)
            print(f"{name:38} {a:12.1f} {b:14.1f} {b / a:6.2f}")
        print("target: current, status and the status page within 1.3x of the small file")


if __name__ == "__main__":
    main()
