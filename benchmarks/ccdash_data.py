"""CCDash databases of a given size, at head, for the benchmarks that measure how a run grows with the file.

``database(megabytes)`` returns ``.cache/bench/ccdash-<megabytes>MB.db``, built once (under a file lock, so
benchmarks started together share it): a new file is upgraded to head with CCDash's own revisions, then
projects, sessions, messages (with a few hundred bytes of content each, as Claude Code's transcripts have)
and session windows are added in batches until the file reaches the size. Benchmarks copy it before they
change it.

Run:  .venv/bin/python benchmarks/ccdash_data.py 12 469 2800   (builds and prints the paths and sizes)
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / ".cache" / "bench"
BATCH = 200_000  # messages per batch at most: about 60 MB of file

MESSAGES = """
INSERT INTO messages (id, session_id, parent_uuid, is_sidechain, user_type, message_type, message_role, model,
                      content, input_tokens, cache_creation_input_tokens, cache_read_input_tokens, output_tokens,
                      service_tier, request_id, timestamp)
SELECT 'm' || i, 's' || (i // 50), 'm' || (i - 1), i % 11 = 0, 'external',
       CASE WHEN i % 2 = 0 THEN 'user' ELSE 'assistant' END, CASE WHEN i % 2 = 0 THEN 'user' ELSE 'assistant' END,
       'claude-sonnet-4', md5(i::VARCHAR) || ' ' || md5((i * 7)::VARCHAR) || ' ' || md5((i * 13)::VARCHAR)
       || ' ' || md5((i * 17)::VARCHAR) || ' ' || md5((i * 19)::VARCHAR) || ' ' || md5((i * 23)::VARCHAR),
       i % 4000, i % 300, i % 9000, i % 1500, 'standard', 'req_' || md5((i * 3)::VARCHAR),
       TIMESTAMP '2025-06-01' + INTERVAL (i) SECOND
FROM range($first, $last) r(i)
"""
SESSIONS = """
INSERT INTO sessions (id, project_name, project_path, start_time, end_time, total_input_tokens,
                      total_output_tokens, total_tokens, message_count, total_cost, status, project_id)
SELECT 's' || i, 'project ' || (i % 10), '/home/dev/project' || (i % 10), TIMESTAMP '2025-06-01' + INTERVAL (i * 50)
       SECOND, TIMESTAMP '2025-06-01' + INTERVAL (i * 50 + 49) SECOND, 1000, 500, 1500, 50, 0.42, 'completed',
       'p' || (i % 10)
FROM range($first, $last) r(i)
"""
WINDOWS = """
INSERT INTO session_windows (id, window_start, window_end, reset_time, total_tokens, message_count)
SELECT 'w' || i, TIMESTAMP '2025-06-01' + INTERVAL (i * 5) HOUR, TIMESTAMP '2025-06-01' + INTERVAL (i * 5 + 5) HOUR,
       TIMESTAMP '2025-06-01' + INTERVAL (i * 5 + 5) HOUR, 100000, 1000
FROM range($first, $last) r(i)
"""


def _upgrade(path: Path) -> None:
    env = {**os.environ, "HOME": str(CACHE)}
    env.pop("CCDASH_DB_PATH", None)
    subprocess.run(
        [str(Path(sys.executable).parent / "alembic"), "-x", f"db={path}", "-x", "backup=false", "upgrade", "head"],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
    )


def _fill(path: Path, megabytes: int) -> None:
    connection = duckdb.connect(str(path))
    connection.execute(
        "INSERT INTO projects (id, name, path) SELECT 'p' || i, 'project ' || i, '/p' || i FROM range(10) r(i)"
    )
    done, batch = 0, min(BATCH, max(10_000, megabytes * 1000))
    while path.stat().st_size < megabytes * 1_000_000:
        last = done + batch
        connection.execute(SESSIONS, {"first": done // 50, "last": last // 50})
        connection.execute(MESSAGES, {"first": done, "last": last})
        connection.execute(WINDOWS, {"first": done // 1000, "last": last // 1000})
        connection.execute("CHECKPOINT")
        done = last
    connection.close()


def database(megabytes: int) -> Path:
    """A CCDash database at head of at least ``megabytes`` MB (a batch more at most), built on first use."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"ccdash-{megabytes}MB.db"
    with open(CACHE / f"ccdash-{megabytes}MB.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not path.exists():
            scratch = path.with_suffix(".building")
            scratch.unlink(missing_ok=True)
            _upgrade(scratch)
            _fill(scratch, megabytes)
            scratch.rename(path)
    return path


if __name__ == "__main__":
    for size in sys.argv[1:] or ["12"]:
        built = database(int(size))
        print(f"{built}  {built.stat().st_size / 1e6:,.0f} MB")
