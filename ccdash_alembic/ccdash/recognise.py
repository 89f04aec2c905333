"""Which CCDash schema generation a database file is at, and what differs from a clean install of it.

Real files sit at nine generations (G1 to G9) and in shapes no clean install produces (columns appended by
ALTER in another order, a legacy ``messages.session_window_id``, a half-applied start of v0.5.1-v0.5.4,
CCDash's Go migration tool's tables). Everything is read from the catalog (tables, columns, indexes by name,
never by position): recognition takes the same time whatever the data size.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.engine import Connection

from ccdash_alembic.ccdash import g9
from ccdash_alembic.ddl import catalog
from ccdash_alembic.runtime.history_tables import OWN_TABLES

RELEASES = {
    "G1": "CCDash 0.1.0 to 0.1.4",
    "G2": "CCDash 0.1.5 to 0.3.10",
    "G3": "an unreleased CCDash build of 2025-07-27",
    "G4": "CCDash 0.4.0 to 0.5.0",
    "G5": "CCDash 0.5.1 to 0.5.9",
    "G6": "an unreleased CCDash build of 2025-08-01 (projects)",
    "G7": "an unreleased CCDash build of 2025-08-01 (sessions.project_id)",
    "G8": "an unreleased CCDash build of 2025-08-01 (jobs)",
    "G9": f"CCDash 0.6.0 to {g9.RELEASE.lstrip('v')}",
}

# Columns every generation that has the table has: a table missing one of them is not CCDash's.
REQUIRED = {
    "sessions": {
        "id",
        "project_name",
        "project_path",
        "start_time",
        "end_time",
        "total_input_tokens",
        "total_output_tokens",
        "total_tokens",
        "message_count",
        "status",
        "created_at",
    },
    "messages": {
        "id",
        "session_id",
        "parent_uuid",
        "is_sidechain",
        "user_type",
        "message_type",
        "message_role",
        "model",
        "content",
        "input_tokens",
        "cache_creation_input_tokens",
        "cache_read_input_tokens",
        "output_tokens",
        "service_tier",
        "request_id",
        "timestamp",
        "created_at",
    },
    "session_windows": {
        "id",
        "window_start",
        "window_end",
        "reset_time",
        "total_input_tokens",
        "total_output_tokens",
        "total_tokens",
        "message_count",
        "session_count",
        "is_active",
        "created_at",
        "updated_at",
    },
    "session_window_messages": {"id", "session_window_id", "message_id", "created_at"},
    "projects": {
        "id",
        "name",
        "path",
        "description",
        "repository_url",
        "language",
        "framework",
        "is_active",
        "created_at",
        "updated_at",
    },
    "jobs": {
        "id",
        "project_id",
        "command",
        "execution_directory",
        "yolo_mode",
        "status",
        "priority",
        "created_at",
        "started_at",
        "completed_at",
        "output_log",
        "error_log",
        "exit_code",
        "pid",
        "scheduled_at",
        "schedule_type",
    },
    "file_sync_state": {
        "file_path",
        "last_modified",
        "file_size",
        "last_processed_line",
        "processed_until",
        "checksum",
        "sync_status",
        "last_sync_time",
        "error_message",
        "created_at",
        "updated_at",
    },
}

LEGACY_COLUMN = ("messages", "session_window_id")


@dataclass
class Recognition:
    """What a file is, what is unusual about it, and what the baseline must add to reach G9."""

    generation: str | None = None  # None: an empty database
    shapes: list[str] = field(default_factory=list)
    missing_tables: list[str] = field(default_factory=list)
    missing_columns: list[tuple[str, str]] = field(default_factory=list)
    missing_indexes: list[str] = field(default_factory=list)
    refusal: str | None = None

    @property
    def empty(self) -> bool:
        return self.generation is None and self.refusal is None

    def statements(self) -> list[str]:
        """CCDash's own start-up statements that the file lacks, in CCDash's order."""
        return (
            [g9.TABLES[t] for t in self.missing_tables]
            + [g9.ADDED_COLUMNS[c] for c in self.missing_columns]
            + [g9.INDEXES[i] for i in self.missing_indexes]
        )

    def describe(self, done: bool = True) -> str:
        """What was found and what was (``done``) or would be done, in one paragraph."""
        if self.refusal:
            return f"refused: {self.refusal}"
        if self.empty:
            return ("created" if done else "would create") + " the CCDash schema of " + RELEASES["G9"]
        assert self.generation is not None
        text = f"found schema generation {self.generation} ({RELEASES[self.generation]})"
        if self.shapes:
            text += "; " + "; ".join(self.shapes)
        actions = self._actions(done)
        if not actions:
            return f"{text}. It has everything {g9.RELEASE} has"
        return f"{text}. To reach {g9.RELEASE}: " + "; ".join(actions)

    def _actions(self, done: bool) -> list[str]:
        """One phrase per kind of object the baseline adds (or would add), for the kinds it adds any of."""
        create, add = ("created", "added") if done else ("would create", "would add")
        lacking = (
            (f"{create} tables", self.missing_tables),
            (f"{add} columns", [f"{t}.{c}" for t, c in self.missing_columns]),
            (f"{create} indexes", self.missing_indexes),
        )
        return [f"{what} " + ", ".join(names) for what, names in lacking if names]


def _layout(conn: Connection) -> dict[str, list[str]]:
    """Table name -> column names in order, lower case, for the current schema (temporary tables left out)."""
    return {t.lower(): [c.lower() for c in columns] for t, columns in catalog.table_layout(conn).items()}


def _generation(layout: dict[str, list[str]]) -> str:
    """The newest generation whose marker the file has (SUMMARY.md's recognition hints)."""
    if "jobs" in layout:
        return "G9" if "schedule_params" in layout["jobs"] else "G8"
    if "project_id" in layout["sessions"]:
        return "G7"
    if "projects" in layout:
        return "G6"
    if "session_window_messages" in layout:
        return "G5"
    if "session_windows" in layout:
        if "total_cost" in layout["session_windows"] and "total_cost" in layout["sessions"]:
            return "G4"
        return "G3" if "total_cost" in layout["sessions"] else "G2"
    return "G1"


def for_empty_database() -> Recognition:
    """What an empty database (or one not created yet) needs: all of CCDash 0.6.18's tables and indexes."""
    return Recognition(missing_tables=list(g9.TABLES), missing_indexes=list(g9.INDEXES))


def recognise(conn: Connection) -> Recognition:
    """What the file is: empty, a CCDash generation (with what it lacks), or refused as not CCDash's."""
    layout = _layout(conn)
    ccdash_tables, others = _table_groups(layout)
    if not ccdash_tables and not others:
        return for_empty_database()
    refusal = _refusal(layout, ccdash_tables, others)
    if refusal is not None:
        return Recognition(refusal=refusal)
    indexes = {name.lower() for name in catalog.index_names(conn)}
    generation = _generation(layout)
    return Recognition(
        generation=generation,
        shapes=_shapes(layout, indexes, generation, others),
        missing_tables=[t for t in g9.TABLES if t not in layout],
        missing_columns=_missing_columns(layout),
        missing_indexes=[i for i in g9.INDEXES if i not in indexes],
    )


def _table_groups(layout: dict[str, list[str]]) -> tuple[list[str], list[str]]:
    """The file's CCDash tables, and its other tables (sorted) apart from this layer's own history tables."""
    ccdash_tables = [t for t in layout if t in REQUIRED]
    others = sorted(t for t in layout if t not in REQUIRED and t not in OWN_TABLES)
    return ccdash_tables, others


def _missing_columns(layout: dict[str, list[str]]) -> list[tuple[str, str]]:
    """The columns later releases added to tables the file has, which it lacks."""
    return [(t, c) for t, c in g9.ADDED_COLUMNS if t in layout and c not in layout[t]]


def _refusal(layout: dict[str, list[str]], ccdash_tables: list[str], others: list[str]) -> str | None:
    """Why a file with tables is not a CCDash database the baseline can adopt, or None when it is one."""
    if "sessions" not in layout:
        return (
            "it has tables (" + ", ".join(others or ccdash_tables) + ") but no CCDash sessions table, so it "
            "is not a CCDash database"
        )
    if "last_activity" in layout["sessions"] or "cwd" in layout["sessions"]:
        return (
            "its tables were made by the initial-schema migration of CCDash's Go migrate tool "
            "(20250801000000), a schema the CCDash server cannot use; start from a new database file"
        )
    for table in ccdash_tables:
        lacking = sorted(REQUIRED[table] - set(layout[table]))
        if lacking:
            return (
                f"table {table} lacks {', '.join(lacking)}, which every CCDash release has, so it is not a "
                "CCDash database"
            )
    return None


def _shapes(layout: dict[str, list[str]], indexes: set[str], generation: str | None, others: list[str]) -> list[str]:
    """What a clean install of the generation would not have."""
    shapes = _column_order_shapes(layout, generation)
    if (
        "session_window_messages" in layout
        and not {"idx_session_window_messages_window_id", "idx_session_window_messages_message_id"} & indexes
    ):
        shapes.append("session_window_messages has no indexes: a start of CCDash 0.5.1-0.5.4 failed on this file")
    if "migration_history" in layout and "direction" not in layout["migration_history"]:
        shapes.append("migration_history and schema_version were made by CCDash's Go migrate tool")
    if others:
        shapes.append("other tables left as they are: " + ", ".join(others))
    return shapes


def _column_order_shapes(layout: dict[str, list[str]], generation: str | None) -> list[str]:
    """Columns where a clean install would not put them: added to existing tables, or left behind."""
    shapes = []
    messages = layout.get("messages", [])
    if LEGACY_COLUMN[1] in messages and generation not in ("G2", "G3", "G4"):
        where = "3rd" if messages.index(LEGACY_COLUMN[1]) == 2 else "last"
        shapes.append(f"legacy column messages.session_window_id ({where} column; CCDash no longer writes it)")
    elif LEGACY_COLUMN[1] in messages and messages.index(LEGACY_COLUMN[1]) != 2:
        shapes.append("messages.session_window_id is the last column (messages was created by CCDash 0.1.0-0.1.4)")
    sessions = layout["sessions"]
    if "total_cost" in sessions and sessions.index("total_cost") != sessions.index("message_count") + 1:
        shapes.append("sessions.total_cost comes after created_at (sessions was created before that column existed)")
    windows = layout.get("session_windows", [])
    if "total_cost" in windows and windows[-1] == "total_cost":
        shapes.append("session_windows.total_cost is the last column (added to an existing table)")
    return shapes
