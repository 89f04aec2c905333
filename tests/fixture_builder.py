"""Build a DuckDB file for one CCDash schema generation or upgrade variant, from tests/data/generations.json.

Run by the tests with DuckDB 1.1.3 (the engine of every CCDash release), so the files are written the way real
user files are: ``python fixture_builder.py OUTPUT_DIR [ID ...]`` (every generation and variant when no ID
is given). Uses only the standard library and duckdb, so it runs in that separate environment.

Tables are created from the JSON's column lists (declared types, NOT NULL, defaults, keys) and indexes, in
foreign-key order; rows are deterministic and foreign-key consistent, and include what real files have:
sessions with a NULL project_id, a project (delta) that only sessions name, legacy
messages.session_window_id values (some already copied to session_window_messages, some pointing at
windows that were since deleted).
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

SPEC = Path(__file__).parent / "data" / "generations.json"
NAMES = ["alpha", "beta", "gamma", "delta"]
PROJECT_IDS = {"alpha": "alpha_5f2c9a1e", "beta": "0b6f3c2e-7a1d-4c55-9e3b-2f8d6a1c4e90", "gamma": "gamma_a41d77c0"}
COUNTS = {"sessions": 12, "messages": 60, "session_windows": 5, "file_sync_state": 5, "jobs": 4}
START = dt.datetime(2025, 7, 20, 10, 0, 0)


def specs() -> dict[str, dict[str, Any]]:
    data = json.loads(SPEC.read_text())
    return {s["id"]: s for s in data["generations"] + data["upgrade_variants"]}


def _order(tables: dict[str, Any]) -> list[str]:
    """Table names, each after the tables its foreign keys reference."""
    done: list[str] = []
    while len(done) < len(tables):
        for name, table in tables.items():
            refs = {c["references"]["table"] for c in table["constraints"] if c["type"] == "FOREIGN KEY"}
            if name not in done and refs - {name} <= set(done):
                done.append(name)
    return done


def _create(name: str, table: dict[str, Any]) -> str:
    parts = []
    for column in table["columns"]:
        part = f'"{column["name"]}" {column["type"]}'
        if column["declared_not_null"]:
            part += " NOT NULL"
        if column["default"] is not None:
            part += f" DEFAULT {column['default']}"
        if column.get("unique"):
            part += " UNIQUE"
        parts.append(part)
    for constraint in table["constraints"]:
        columns = ", ".join(f'"{c}"' for c in constraint["columns"])
        if constraint["type"] == "PRIMARY KEY":
            parts.append(f"PRIMARY KEY ({columns})")
        elif constraint["type"] == "UNIQUE":
            parts.append(f"UNIQUE ({columns})")
        elif constraint["type"] == "FOREIGN KEY":
            ref = constraint["references"]
            parts.append(f'FOREIGN KEY ({columns}) REFERENCES "{ref["table"]}" ({", ".join(ref["columns"])})')
    return f'CREATE TABLE "{name}" ({", ".join(parts)})'


def _value(table: str, column: dict[str, Any], i: int) -> Any:
    """A plain value for a column without a special meaning, by its type."""
    kind = column["duckdb_type"].upper()
    if kind.startswith("TIMESTAMP"):
        return START + dt.timedelta(minutes=17 * i + len(column["name"]))
    if kind in ("INTEGER", "BIGINT"):
        return 3 * i + len(column["name"])
    if kind == "DOUBLE":
        return round(0.25 * i + 0.1, 2)
    if kind == "BOOLEAN":
        return i % 2 == 0
    return f"{table}.{column['name']}.{i}"


def _rows(spec: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    tables = spec["tables"]
    rows: dict[str, list[dict[str, Any]]] = {}
    if "sessions" not in tables or "last_activity" in {c["name"] for c in tables["sessions"]["columns"]}:
        return rows  # the Go tool's fictional baseline: its application tables are empty
    columns = {name: {c["name"]: c for c in table["columns"]} for name, table in tables.items()}

    def plain(table: str, i: int, **fixed: Any) -> dict[str, Any]:
        row = {n: _value(table, c, i) for n, c in columns[table].items()}
        row.update({k: v for k, v in fixed.items() if k in columns[table]})
        return row

    if "projects" in tables:
        rows["projects"] = [
            plain("projects", i, id=PROJECT_IDS[n], name=n, path=f"/work/{n}") for i, n in enumerate(NAMES[:3])
        ]
    rows["sessions"] = []
    for i in range(COUNTS["sessions"]):
        name = NAMES[i % 4]
        linked = "projects" in tables and i % 3 != 0 and name in PROJECT_IDS
        rows["sessions"].append(
            plain(
                "sessions",
                i,
                id=f"session-{i:03d}",
                project_name=name,
                project_path=f"/work/{name}",
                project_id=PROJECT_IDS[name] if linked else None,
            )
        )
    windows = [f"window-{w}" for w in range(COUNTS["session_windows"])]
    if "session_windows" in tables:
        rows["session_windows"] = [plain("session_windows", i, id=w) for i, w in enumerate(windows)]
    rows["messages"] = []
    for i in range(COUNTS["messages"]):
        legacy = windows[i % 5] if i % 4 == 0 else "window-deleted" if i % 8 == 1 else None
        rows["messages"].append(
            plain(
                "messages",
                i,
                id=f"message-{i:03d}",
                session_id=f"session-{i % COUNTS['sessions']:03d}",
                session_window_id=legacy if "session_windows" in tables else None,
                parent_uuid=None,
            )
        )
    if "session_window_messages" in tables:
        links = [(windows[i % 5], f"message-{i:03d}") for i in range(0, COUNTS["messages"], 8)]  # already copied
        links += [(windows[(i + 1) % 5], f"message-{i:03d}") for i in range(3, COUNTS["messages"], 7)]
        rows["session_window_messages"] = [
            plain("session_window_messages", k, id=f"link-{k:03d}", session_window_id=w, message_id=m)
            for k, (w, m) in enumerate(links)
        ]
    if "jobs" in tables:
        rows["jobs"] = [
            plain(
                "jobs",
                i,
                id=f"job-{i}",
                project_id=PROJECT_IDS[NAMES[i % 3]],
                status="completed",
                created_at=(START + dt.timedelta(hours=i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            )
            for i in range(COUNTS["jobs"])
        ]
    rows["file_sync_state"] = [
        plain("file_sync_state", i, file_path=f"/home/u/.claude/projects/p{i}.jsonl", checksum=f"{i:064x}")
        for i in range(COUNTS["file_sync_state"])
    ]
    if "migration_history" in tables:
        rows["migration_history"] = [
            {
                "version": "20250801000000",
                "name": "initial schema",
                "applied_at": START,
                "execution_time_ms": None,
                "checksum": None,
                "up_script": "CREATE TABLE IF NOT EXISTS sessions (...)",
                "down_script": "DROP TABLE IF EXISTS sessions",
                "status": "failed",
                "error_message": 'Binder Error: Table "sessions" does not have a column named "window_start"',
            }
        ]
        rows["schema_version"] = [{"version": "20250801000000", "dirty": True, "updated_at": START}]
    return rows


def build(connection: Any, spec: dict[str, Any]) -> None:
    for sequence in spec["sequences"]:
        connection.execute(f"CREATE SEQUENCE {sequence}")
    for name in _order(spec["tables"]):
        connection.execute(_create(name, spec["tables"][name]))
    for index in spec["indexes"]:
        columns = ", ".join(f'"{c}"' for c in index["columns"])
        connection.execute(f'CREATE INDEX "{index["name"]}" ON "{index["table"]}" ({columns})')
    for name, table_rows in _rows(spec).items():
        if name in spec["tables"] and table_rows:
            names = list(table_rows[0])
            marks = ", ".join("?" for _ in names)
            quoted = ", ".join(f'"{n}"' for n in names)
            connection.executemany(
                f'INSERT INTO "{name}" ({quoted}) VALUES ({marks})', [[r[n] for n in names] for r in table_rows]
            )


def main() -> None:
    import duckdb

    output, ids = Path(sys.argv[1]), sys.argv[2:]
    all_specs = specs()
    for spec_id in ids or list(all_specs):
        connection = duckdb.connect(str(output / f"{spec_id}.db"))
        build(connection, all_specs[spec_id])
        connection.execute("CHECKPOINT")
        connection.close()


if __name__ == "__main__":
    main()
