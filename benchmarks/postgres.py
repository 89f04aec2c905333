"""PostgreSQL benchmark: what the run layer costs per revision on a server, and how soon a killed run's lock frees.

A PostgreSQL 15 server of its own is started as the tests start theirs (``tests/postgres_server.py``), with
``fsync`` turned back on (the tests turn it off), so each commit waits for the disk as on a real server.

(a) The cost of the run layer: the 200 empty revisions of ``benchmarks/bookkeeping.py`` from base, run by
    ``alembic -x url=postgresql+psycopg://... upgrade head`` with this repository's ``env.py`` (which calls
    ``ccdash_alembic.runtime.environment.run``: the server's lock, checksums, a history row and
    ``schema_version`` per revision, a transaction per revision), against stock Alembic (what ``alembic init``
    writes: ``engine_from_config`` with ``NullPool``, ``context.configure(connection=...,
    target_metadata=None)``, ``begin_transaction``, ``run_migrations``) on the same server; a fresh database per
    run. At head, nothing to do: ours ``upgrade head`` and ``current``, ``ccdash-migrate up`` and ``current``,
    against stock ``alembic current`` on the same database. Each is the wall and CPU time of a fresh process,
    median of ``--repeat`` runs, the two sides alternated. Also the floor (the statements each side needs per
    revision, from one connection in this process) and how many sessions one run from base opened.
(b) The time from SIGKILL of the run holding the lock to the next run holding it. A run holds the lock inside
    a revision; a second run waits for it (``-x lock_timeout=60``); the first is killed at t0. Polling
    ``pg_locks`` and ``pg_stat_activity`` from here: when the killed run's server session is gone, when the
    waiting run holds the advisory lock, and when it has finished (it applies the revision itself, without the
    wait). Two cases: the killed run was inside a statement (``SELECT pg_sleep(60)``: the server notices its
    client is gone only when it checks the connection) and, as the baseline, between statements (the revision
    sleeps in Python: the server is reading from the socket and sees it close at once).

Run:  .venv/bin/python benchmarks/postgres.py [--revisions 200] [--repeat 3] [--skip-cost | --skip-kill]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

import postgres_server  # noqa: E402  (the tests' server: started the same way)
from bookkeeping import BIN, Timing, median_of, ours_project, run, stock_project  # noqa: E402

HOLD = "CCDASH_BENCH_HOLD"  # how the holding run waits inside its revision: "statement" or "between"
MARK = "ccdash-bench-hold"  # in the text of the holding run's statement, so pg_stat_activity shows it
POLL = 0.005  # seconds between two looks at pg_locks
KILL_REVISION = '''"""a revision a run can be made to wait in"""

import os
import time

import sqlalchemy as sa
from alembic import op

revision = "20250101000000"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    hold = os.environ.get({hold!r})
    if hold == "statement":
        op.execute("SELECT pg_sleep(60) /* {mark} */")
    elif hold == "between":
        op.execute("SELECT '{mark}'")
        time.sleep(60)
    op.create_table("after_the_wait", sa.Column("id", sa.Integer, primary_key=True))


def downgrade() -> None:
    op.drop_table("after_the_wait")
'''


def with_fsync(server: postgres_server.Server) -> None:
    """Restart the tests' server with ``fsync`` on (the default): the tests start it with ``fsync=off`` on its
    command line, which no configuration file overrides, and a commit that does not wait for the disk would
    flatter a run that commits once per revision."""
    drop, _ = postgres_server._as_server_user()
    options = f"-p {server.port} -k {server.folder} -c listen_addresses=127.0.0.1 -c max_connections=200"
    pg_ctl = [str(server.bin / "pg_ctl"), "-D", str(server.folder / "data"), "-l", str(server.folder / "log")]
    subprocess.run([*pg_ctl, "-o", options, "-w", "restart"], preexec_fn=drop, capture_output=True, check=True)


def fresh_database(server: postgres_server.Server, name: str) -> str:
    """``name`` dropped (with any session left on it) and created again, empty; its URL."""
    server.sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    server.sql(f'CREATE DATABASE "{name}"')
    return server.url(name)


def stock_on(root: Path, count: int, url: str) -> Path:
    """Stock Alembic's project of ``bookkeeping.py``, its ``sqlalchemy.url`` pointed at ``url``."""
    placeholder = root.with_suffix(".placeholder")
    project = stock_project(root, count, placeholder)
    ini = project / "alembic.ini"
    ini.write_text(ini.read_text().replace(f"sqlalchemy.url = duckdb:///{placeholder}", f"sqlalchemy.url = {url}"))
    return project


def cost(server: postgres_server.Server, scratch: Path, args: argparse.Namespace) -> dict[str, Timing]:
    """(a): upgrade from base on a fresh database, then the runs at head, each median of ``args.repeat``."""
    alembic, migrate = str(BIN / "alembic"), str(BIN / "ccdash-migrate")
    ours = ours_project(scratch / "ours", args.revisions)
    stock = stock_on(scratch / "stock", args.revisions, server.url("stock"))
    head_url = server.url("head")
    head_stock = stock_on(scratch / "stock-at-head", args.revisions, head_url)

    def ours_upgrade() -> Timing:
        return run([alembic, "-x", f"url={fresh_database(server, 'ours')}", "upgrade", "head"], ours)

    def stock_upgrade() -> Timing:
        fresh_database(server, "stock")
        return run([alembic, "upgrade", "head"], stock)

    for warm in (ours_upgrade, stock_upgrade):  # compiles each project's revisions into __pycache__ once
        warm()
    server.sql('DROP DATABASE IF EXISTS "head"')
    server.sql('CREATE DATABASE "head" TEMPLATE "ours"')  # at head, with this layer's history
    upgrade = median_of(args.repeat, [("ours", ours_upgrade), ("stock", stock_upgrade)])
    x_url = ["-x", f"url={head_url}"]
    at_head = median_of(
        args.repeat,
        [
            ("stock current", lambda: run([alembic, "current"], head_stock)),
            ("ours upgrade head", lambda: run([alembic, *x_url, "upgrade", "head"], ours)),
            ("ours current", lambda: run([alembic, *x_url, "current"], ours)),
            ("ccdash-migrate up", lambda: run([migrate, "-c", "alembic.ini", *x_url, "up"], ours)),
            ("ccdash-migrate current", lambda: run([migrate, "-c", "alembic.ini", *x_url, "current"], ours)),
        ],
    )
    return {"ours upgrade": upgrade["ours"], "stock upgrade": upgrade["stock"], **at_head}


def sessions(server: postgres_server.Server, database: str) -> int:
    """How many sessions the server has seen on ``database`` (the run's connections, the watcher's, ...)."""
    [(count,)] = server.sql(f"SELECT sessions FROM pg_stat_database WHERE datname = '{database}'")
    return int(count)  # type: ignore[call-overload]


# The floor of (a): what the server alone takes for the statements each side must run per revision, from one
# connection in this process (no start-up, no Python layers), on a copy of the database at head. Stock: the
# UPDATE of alembic_version, all in one transaction; recorded: that UPDATE, a history row and the
# schema_version update, committed per revision, as the run's guarantees need.
_RECORDED = (
    "UPDATE alembic_version SET version_num = version_num",
    "INSERT INTO migration_history (id, version, name, direction, applied_at, execution_time_ms, checksum, up_script,"
    " down_script, status, error_message, note, installed_by, hostname, tool_version)"
    " SELECT nextval('migration_history_id_seq'), version, name, direction, applied_at, execution_time_ms, checksum,"
    " up_script, down_script, status, error_message, note, installed_by, hostname, tool_version"
    " FROM migration_history WHERE id = (SELECT max(id) FROM migration_history)",
    "UPDATE schema_version SET updated_at = now()",
)


def floor_ms(server: postgres_server.Server, mode: str, args: argparse.Namespace) -> float:
    """Median milliseconds per revision of the floor's statements in ``mode``, each run on a fresh copy of the
    database at head."""
    runs = []
    for _ in range(args.repeat):
        server.sql('DROP DATABASE IF EXISTS "floor"')
        server.sql('CREATE DATABASE "floor" TEMPLATE "head"')
        with psycopg.connect(server.dsn("floor")) as connection:
            started = time.perf_counter()
            for _ in range(args.revisions):
                for statement in _RECORDED if mode == "recorded" else _RECORDED[:1]:
                    connection.execute(statement)
                if mode == "recorded":
                    connection.commit()
            connection.commit()
            runs.append((time.perf_counter() - started) / args.revisions * 1000)
    return statistics.median(runs)


@dataclass(frozen=True)
class Kill:
    """Seconds from SIGKILL of the holder (None: not seen before the waiting run ended) and the waiting run's
    exit code."""

    session_gone: float | None
    lock_taken: float | None
    finished: float
    exit_code: int


def wait_for(condition: Callable[[], object], what: str, seconds: float = 30) -> object:
    """Poll ``condition`` until it returns something true; its value. Gives up, naming ``what``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(POLL)
    raise SystemExit(f"gave up waiting for {what}")


def one_row(monitor: psycopg.Connection[tuple[object, ...]], query: str, *params: object) -> tuple[object, ...] | None:
    return monitor.execute(query, params).fetchone()


def kill_once(server: postgres_server.Server, project: Path, hold: str) -> Kill:
    """(b), once: a run held in its revision, a second run waiting for the lock, the first killed."""
    url = fresh_database(server, "kill")
    environment = {k: v for k, v in os.environ.items() if k not in ("CCDASH_DB_PATH", "ALEMBIC_CONFIG")}
    command = [str(BIN / "alembic"), "-x", f"url={url}", "-x", "lock_timeout=60", "upgrade", "head"]
    quiet = {"cwd": project, "stdout": subprocess.DEVNULL, "stderr": subprocess.PIPE}
    with psycopg.connect(server.dsn("postgres"), autocommit=True) as monitor:
        holder = subprocess.Popen(command, env={**environment, HOLD: hold}, **quiet)  # type: ignore[call-overload]
        state = "active" if hold == "statement" else "idle in transaction"
        found = wait_for(
            lambda: one_row(
                monitor,
                "SELECT pid FROM pg_stat_activity WHERE datname = 'kill' AND state = %s AND query LIKE %s",
                state,
                f"%{MARK}%",
            ),
            "the first run to be inside its revision",
        )
        holder_pid = found[0]  # type: ignore[index]
        waiter = subprocess.Popen(command, env=environment, **quiet)  # type: ignore[call-overload]
        found = wait_for(
            lambda: one_row(monitor, "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"),
            "the second run to wait for the lock",
        )
        waiter_pid = found[0]  # type: ignore[index]
        t0 = time.perf_counter()
        os.kill(holder.pid, signal.SIGKILL)
        seen: dict[str, float] = {}
        while waiter.poll() is None:
            gone, taken = one_row(
                monitor,
                "SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = %s),"
                " EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid = %s)",
                holder_pid,
                waiter_pid,
            ) or (False, False)
            now = time.perf_counter() - t0
            if gone:
                seen.setdefault("gone", now)
            if taken:
                seen.setdefault("taken", now)
            time.sleep(POLL)
        finished = time.perf_counter() - t0
    holder.wait()
    if waiter.returncode != 0:
        sys.stderr.write(f"the waiting run exited {waiter.returncode}: {waiter.stderr.read().decode()[-500:]}\n")
    return Kill(seen.get("gone"), seen.get("taken"), finished, waiter.returncode)


def kills(server: postgres_server.Server, scratch: Path, args: argparse.Namespace) -> dict[str, list[Kill]]:
    """(b), ``args.repeat`` times each case, alternated."""
    project = ours_project(scratch / "kill", 0)
    (project / "versions" / "20250101000000_hold.py").write_text(KILL_REVISION.format(hold=HOLD, mark=MARK))
    cases = ["between", "statement"]
    found: dict[str, list[Kill]] = {case: [] for case in cases}
    for attempt in range(args.repeat):
        for case in cases if attempt % 2 == 0 else list(reversed(cases)):
            found[case].append(kill_once(server, project, case))
    return found


def seconds(values: list[float | None]) -> str:
    """The median, or how many runs never saw the event."""
    missing = sum(value is None for value in values)
    return f"{statistics.median(v for v in values if v is not None):.3f}" if not missing else f"{missing} unseen"


def print_cost(times: dict[str, Timing], args: argparse.Namespace) -> None:
    print(f"(a) {args.revisions} empty revisions on PostgreSQL, median of {args.repeat}, a fresh process per run")
    print(f"{'run':40} {'ours s':>7} {'base s':>7} {'ratio':>6} {'ours cpu':>9} {'base cpu':>9} {'ratio':>6}")
    rows = [("upgrade head from base", times["ours upgrade"], times["stock upgrade"])]
    baseline = times["stock current"]
    for name in ("ours upgrade head", "ours current", "ccdash-migrate up", "ccdash-migrate current"):
        rows.append((f"at head: {name}", times[name], baseline))
    for name, ours_t, base_t in rows:
        print(
            f"{name:40} {ours_t.wall:7.2f} {base_t.wall:7.2f} {ours_t.wall / base_t.wall:6.2f} "
            f"{ours_t.cpu:9.2f} {base_t.cpu:9.2f} {ours_t.cpu / base_t.cpu:6.2f}"
        )
    per = (times["ours upgrade"].wall - times["stock upgrade"].wall) / args.revisions * 1000
    cpu = (times["ours upgrade"].cpu - times["stock upgrade"].cpu) / args.revisions * 1000
    print(f"from base: {per:+.1f} ms per revision over stock Alembic ({cpu:+.1f} ms cpu of the alembic process)")


def print_floor(server: postgres_server.Server, args: argparse.Namespace) -> None:
    """The floor of (a), and how many sessions the last run from base of each side opened."""
    floor = {mode: floor_ms(server, mode, args) for mode in ("stock", "recorded")}
    print(
        f"the server alone, per revision: {floor['stock']:.2f} ms for stock's statement, {floor['recorded']:.2f} ms "
        f"with the history row, schema_version and a commit per revision ({floor['recorded'] - floor['stock']:+.2f} ms)"
    )
    print(f"sessions opened by one run from base: ours {sessions(server, 'ours')}, stock {sessions(server, 'stock')}")


def print_kills(found: dict[str, list[Kill]], args: argparse.Namespace) -> None:
    print(f"(b) SIGKILL of the run holding the lock at t0, median of {args.repeat} (seconds after t0)")
    print(f"{'the killed run was':40} {'its session gone':>17} {'next holds lock':>16} {'next done':>10} {'exits':>8}")
    names = {"between": "between statements (baseline)", "statement": "inside SELECT pg_sleep(60)"}
    for case, runs in found.items():
        exits = ",".join(str(k.exit_code) for k in runs)
        print(
            f"{names[case]:40} {seconds([k.session_gone for k in runs]):>17} "
            f"{seconds([k.lock_taken for k in runs]):>16} {statistics.median(k.finished for k in runs):10.3f} "
            f"{exits:>8}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--revisions", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-kill", action="store_true", help="measure (a) only")
    parser.add_argument("--skip-cost", action="store_true", help="measure (b) only")
    args = parser.parse_args()
    server = postgres_server.start()
    try:
        with_fsync(server)
        [(version,)] = server.sql("SHOW server_version")
        [(fsync,)] = server.sql("SHOW fsync")
        print(f"PostgreSQL {version} on 127.0.0.1, fsync {fsync}")
        with tempfile.TemporaryDirectory(prefix="ccdash-bench-pg-") as folder:
            if not args.skip_cost:
                print_cost(cost(server, Path(folder), args), args)
                print_floor(server, args)
            if not args.skip_kill:
                print_kills(kills(server, Path(folder), args), args)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
