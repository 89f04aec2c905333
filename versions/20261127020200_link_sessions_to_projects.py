"""link every session to its project, then add the foreign key sessions.project_id -> projects.id

As CCDash's migrate-projects and migrate-sessions tools did: one projects row per (project_name,
project_path) of the sessions that have no project (id a UUID, created_at the earliest session's), created in
batches of project names; then every session without a project (NULL, or an id no project has) gets the
project with its name and path. DuckDB refuses to UPDATE an indexed column of a table another table
references (messages references sessions), so there the links are written by the rebuild of sessions that the
foreign key needs anyway; PostgreSQL, which refuses a subquery in ALTER ... USING, takes a plain INSERT,
UPDATE and ALTER TABLE instead. The downgrade removes the foreign key; the links stay, as the tools left them.

Revision ID: 20261127020200
Revises: 20261127020100
Create Date: 2026-11-27 02:02:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from ccdash_alembic import history
from ccdash_alembic.runtime import engines

revision: str = "20261127020200"
down_revision: str | Sequence[str] | None = "20261127020100"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
# The checksum of this file as shipped before it ran on PostgreSQL too; on DuckDB that version did what this one
# does, so a database that applied it has nothing changed to report (ccdash_alembic.runtime.checksum).
earlier_checksums = ("cb31cc203d436bcff09a9c99bf9e83a04a8b3e053285d4c7595c0d9d30494e1a",)

UNLINKED = "(s.project_id IS NULL OR NOT EXISTS (SELECT 1 FROM projects known WHERE known.id = s.project_id))"
# One projects row per (name, path) of the unlinked sessions that no project has yet; ``{where}`` narrows it.
NEW_PROJECTS = (
    "INSERT INTO projects (id, name, path, created_at, updated_at)"
    " SELECT gen_random_uuid()::VARCHAR, s.project_name, s.project_path, min(s.created_at), current_timestamp"
    f" FROM sessions s WHERE {UNLINKED}"
    " AND NOT EXISTS (SELECT 1 FROM projects p WHERE p.name = s.project_name AND p.path = s.project_path)"
    "{where} GROUP BY s.project_name, s.project_path"
)
FOREIGN_KEY = "fk_sessions_project_id"


def upgrade() -> None:
    context = op.get_context()
    connection = engines.reader(context)

    def count(sql: str) -> int:
        return int(connection.exec_driver_sql(sql).scalar() or 0)

    unlinked = None if context.as_sql else count(f"SELECT count(*) FROM sessions s WHERE {UNLINKED}")
    projects_before = None if context.as_sql else count("SELECT count(*) FROM projects")
    if engines.is_duckdb(context):
        _link_by_rebuild()
    else:
        _link_in_place()
    if unlinked is not None and projects_before is not None:
        created = count("SELECT count(*) FROM projects") - projects_before
        history.annotate(
            context, f"{unlinked} sessions had no project; {created} projects created for them; all linked"
        )


def _link_by_rebuild() -> None:
    """DuckDB: the projects in chunks of project names, the links in the rebuild that adds the key."""
    op.execute_in_chunks(NEW_PROJECTS.format(where=" AND {chunk}"), table="sessions", key="project_name", alias="s")
    with op.batch_alter_table("sessions") as batch:
        batch.alter_column(
            "project_id",
            type_=sa.String,
            postgresql_using=(
                "CASE WHEN sessions.project_id IN (SELECT id FROM projects) THEN sessions.project_id ELSE"
                " (SELECT p.id FROM projects p WHERE p.name = sessions.project_name"
                " AND p.path = sessions.project_path) END"
            ),
        )
        batch.create_foreign_key(FOREIGN_KEY, "projects", ["project_id"], ["id"])


def _link_in_place() -> None:
    """PostgreSQL: the projects, then the links, each one statement; then the key, checked by the server."""
    op.execute(NEW_PROJECTS.format(where=""))
    op.execute(
        "UPDATE sessions s SET project_id = (SELECT p.id FROM projects p"
        f" WHERE p.name = s.project_name AND p.path = s.project_path) WHERE {UNLINKED}"
    )
    op.create_foreign_key(FOREIGN_KEY, "sessions", "projects", ["project_id"], ["id"])


def downgrade() -> None:
    # DuckDB keeps no constraint names and reports the key by the name it generates; PostgreSQL keeps ours.
    name = "sessions_project_id_id_fkey" if engines.is_duckdb(op.get_context()) else FOREIGN_KEY
    op.drop_constraint(name, "sessions", type_="foreignkey")
