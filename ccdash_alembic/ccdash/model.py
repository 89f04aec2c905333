"""CCDash's schema at the head revision, as a SQLAlchemy MetaData (for autogenerate and ``alembic check``).

It is CCDash's newest release schema (``g9``) after this project's revisions: ``user_preferences`` added,
the legacy ``messages.session_window_id`` gone, ``sessions.project_id`` a foreign key to ``projects``.
``tests/test_ccdash_model.py`` checks it against what ``alembic upgrade head`` makes. DuckDB keeps no
ASC/DESC on index columns, so the two DESC indexes of ``jobs`` are modelled by their columns.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

NOW = sa.text("CURRENT_TIMESTAMP")
# DuckDB's DOUBLE; PostgreSQL spells it DOUBLE PRECISION (it has no type named DOUBLE).
DOUBLE: sa.types.TypeEngine[float] = sa.DOUBLE().with_variant(sa.DOUBLE_PRECISION(), "postgresql")


def _zero() -> sa.TextClause:
    return sa.text("0")


projects = sa.Table(
    "projects",
    metadata,
    sa.Column("id", sa.String, primary_key=True),
    sa.Column("name", sa.String, nullable=False),
    sa.Column("path", sa.String, nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("repository_url", sa.String),
    sa.Column("language", sa.String),
    sa.Column("framework", sa.String),
    sa.Column("is_active", sa.Boolean, server_default=sa.text("true")),
    sa.Column("created_at", sa.TIMESTAMP, server_default=NOW),
    sa.Column("updated_at", sa.TIMESTAMP, server_default=NOW),
    sa.UniqueConstraint("name", "path"),
)
sa.Index("idx_projects_name", projects.c.name)
sa.Index("idx_projects_active", projects.c.is_active)
sa.Index("idx_projects_path", projects.c.path)

sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("id", sa.String, primary_key=True),
    sa.Column("project_name", sa.String, nullable=False),
    sa.Column("project_path", sa.String, nullable=False),
    sa.Column("start_time", sa.TIMESTAMP, nullable=False),
    sa.Column("end_time", sa.TIMESTAMP),
    sa.Column("total_input_tokens", sa.Integer, server_default=_zero()),
    sa.Column("total_output_tokens", sa.Integer, server_default=_zero()),
    sa.Column("total_tokens", sa.Integer, server_default=_zero()),
    sa.Column("message_count", sa.Integer, server_default=_zero()),
    sa.Column("total_cost", DOUBLE, server_default=sa.text("0.0")),
    sa.Column("status", sa.String, server_default=sa.text("'active'")),
    sa.Column("created_at", sa.TIMESTAMP, server_default=NOW),
    sa.Column("project_id", sa.String, sa.ForeignKey("projects.id", name="fk_sessions_project_id")),
)
sa.Index("idx_sessions_project_name", sessions.c.project_name)
sa.Index("idx_sessions_project_id", sessions.c.project_id)
sa.Index("idx_sessions_start_time", sessions.c.start_time)
sa.Index("idx_sessions_status", sessions.c.status)

messages = sa.Table(
    "messages",
    metadata,
    sa.Column("id", sa.String, primary_key=True),
    sa.Column("session_id", sa.String, sa.ForeignKey("sessions.id"), nullable=False),
    sa.Column("parent_uuid", sa.String),
    sa.Column("is_sidechain", sa.Boolean, server_default=sa.text("false")),
    sa.Column("user_type", sa.String),
    sa.Column("message_type", sa.String),
    sa.Column("message_role", sa.String),
    sa.Column("model", sa.String),
    sa.Column("content", sa.Text),
    sa.Column("input_tokens", sa.Integer, server_default=_zero()),
    sa.Column("cache_creation_input_tokens", sa.Integer, server_default=_zero()),
    sa.Column("cache_read_input_tokens", sa.Integer, server_default=_zero()),
    sa.Column("output_tokens", sa.Integer, server_default=_zero()),
    sa.Column("service_tier", sa.String),
    sa.Column("request_id", sa.String),
    sa.Column("timestamp", sa.TIMESTAMP, nullable=False),
    sa.Column("created_at", sa.TIMESTAMP, server_default=NOW),
)
sa.Index("idx_messages_session_id", messages.c.session_id)
sa.Index("idx_messages_timestamp", messages.c.timestamp)
sa.Index("idx_messages_message_role", messages.c.message_role)

session_windows = sa.Table(
    "session_windows",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("window_start", sa.TIMESTAMP, nullable=False),
    sa.Column("window_end", sa.TIMESTAMP, nullable=False),
    sa.Column("reset_time", sa.TIMESTAMP, nullable=False),
    sa.Column("total_input_tokens", sa.Integer, server_default=_zero()),
    sa.Column("total_output_tokens", sa.Integer, server_default=_zero()),
    sa.Column("total_tokens", sa.Integer, server_default=_zero()),
    sa.Column("message_count", sa.Integer, server_default=_zero()),
    sa.Column("session_count", sa.Integer, server_default=_zero()),
    sa.Column("total_cost", DOUBLE, server_default=sa.text("0.0")),
    sa.Column("is_active", sa.Boolean, server_default=sa.text("true")),
    sa.Column("created_at", sa.TIMESTAMP, server_default=NOW),
    sa.Column("updated_at", sa.TIMESTAMP, server_default=NOW),
)
sa.Index("idx_session_windows_times", session_windows.c.window_start, session_windows.c.window_end)
sa.Index("idx_session_windows_active", session_windows.c.is_active)
sa.Index("idx_session_windows_reset_time", session_windows.c.reset_time)

session_window_messages = sa.Table(
    "session_window_messages",
    metadata,
    sa.Column("id", sa.String, primary_key=True),
    sa.Column("session_window_id", sa.Text, sa.ForeignKey("session_windows.id"), nullable=False),
    sa.Column("message_id", sa.String, sa.ForeignKey("messages.id"), nullable=False),
    sa.Column("created_at", sa.TIMESTAMP, server_default=NOW),
    sa.UniqueConstraint("session_window_id", "message_id"),
)
sa.Index("idx_session_window_messages_window_id", session_window_messages.c.session_window_id)
sa.Index("idx_session_window_messages_message_id", session_window_messages.c.message_id)

jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("project_id", sa.Text, sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("command", sa.Text, nullable=False),
    sa.Column("execution_directory", sa.Text, nullable=False),
    sa.Column("yolo_mode", sa.Boolean, server_default=sa.text("false")),
    sa.Column("status", sa.Text, nullable=False, server_default=sa.text("'pending'")),
    sa.Column("priority", sa.Integer, server_default=_zero()),
    sa.Column("created_at", sa.Text, nullable=False),
    sa.Column("started_at", sa.Text),
    sa.Column("completed_at", sa.Text),
    sa.Column("output_log", sa.Text),
    sa.Column("error_log", sa.Text),
    sa.Column("exit_code", sa.Integer),
    sa.Column("pid", sa.Integer),
    sa.Column("scheduled_at", sa.Text),
    sa.Column("schedule_type", sa.Text),
    sa.Column("schedule_params", sa.Text),
)
sa.Index("idx_jobs_project_id", jobs.c.project_id)
sa.Index("idx_jobs_status", jobs.c.status)
sa.Index("idx_jobs_created_at", jobs.c.created_at)
sa.Index("idx_jobs_priority_created", jobs.c.priority, jobs.c.created_at)

file_sync_state = sa.Table(
    "file_sync_state",
    metadata,
    sa.Column("file_path", sa.String, primary_key=True),
    sa.Column("last_modified", sa.TIMESTAMP, nullable=False),
    sa.Column("file_size", sa.BigInteger, nullable=False),
    sa.Column("last_processed_line", sa.Integer, server_default=_zero()),
    sa.Column("processed_until", sa.TIMESTAMP),
    sa.Column("checksum", sa.String(64)),
    sa.Column("sync_status", sa.String, server_default=sa.text("'pending'")),
    sa.Column("last_sync_time", sa.TIMESTAMP, server_default=NOW),
    sa.Column("error_message", sa.Text),
    sa.Column("created_at", sa.TIMESTAMP, server_default=NOW),
    sa.Column("updated_at", sa.TIMESTAMP, server_default=NOW),
)
sa.Index("idx_file_sync_state_path", file_sync_state.c.file_path)
sa.Index("idx_file_sync_state_status", file_sync_state.c.sync_status)
sa.Index("idx_file_sync_state_modified", file_sync_state.c.last_modified)

user_preferences = sa.Table(
    "user_preferences",
    metadata,
    sa.Column("user_id", sa.String, primary_key=True),
    sa.Column("theme", sa.String, server_default=sa.text("'light'")),
    sa.Column("language", sa.String, server_default=sa.text("'en'")),
    sa.Column("notifications_enabled", sa.Boolean, server_default=sa.text("true")),
    sa.Column("created_at", sa.TIMESTAMP, server_default=NOW),
    sa.Column("updated_at", sa.TIMESTAMP, server_default=NOW),
)
sa.Index("idx_user_preferences_created_at", user_preferences.c.created_at)
