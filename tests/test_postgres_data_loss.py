"""On PostgreSQL no backup is made, so a revision that drops a table holding rows, or a column holding values,
is refused (exit code 9) unless confirmed, and the database is as it was; an empty table or column drops.
The data is written by another client (psycopg), the revisions run through the real command."""

from __future__ import annotations

import subprocess

import postgres_server
from conftest import Project, error_line

from ccdash_alembic.errors import ExitCode

FIRST, SECOND = "20260101000000", "20260101000001"


def _run(project: Project, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return project.alembic("-x", f"url={url}", *args, pass_db=False)


def _versions(server: postgres_server.Server, database: str) -> list[tuple[object, ...]]:
    return server.sql("SELECT version_num FROM alembic_version", database)


def test_a_drop_of_data_is_refused_unless_confirmed(
    project: Project, pg_server: postgres_server.Server, pg_url: str
) -> None:
    database = pg_url.rsplit("/", 1)[1]
    project.write_revision(
        FIRST,
        None,
        upgrade="""
        op.create_table("items", sa.Column("id", sa.Integer, primary_key=True), sa.Column("note", sa.Text))
        op.create_table("empty", sa.Column("id", sa.Integer))
        """,
    )
    project.write_revision(
        SECOND,
        FIRST,
        upgrade="""
        op.drop_table("empty")
        with op.batch_alter_table("items") as batch:
            batch.drop_column("note")
        op.drop_table("items")
        """,
        message="drops",
    )
    assert _run(project, pg_url, "upgrade", FIRST).returncode == 0
    pg_server.sql("INSERT INTO items (id, note) VALUES (1, NULL)", database)

    # the column is all NULL and "empty" has no rows: the first drop that loses data is the table's
    refused = _run(project, pg_url, "upgrade", "head")
    assert refused.returncode == ExitCode.DATA_LOSS, refused.stderr
    assert error_line(refused).startswith("error: this step would drop table items, which holds rows")
    assert _versions(pg_server, database) == [(FIRST,)]
    assert pg_server.sql("SELECT count(*) FROM empty", database) == [(0,)]  # rolled back with the step

    pg_server.sql("UPDATE items SET note = 'kept'", database)
    refused = _run(project, pg_url, "upgrade", "head")
    assert refused.returncode == ExitCode.DATA_LOSS
    assert error_line(refused).startswith("error: this step would drop column items.note, which holds values")
    assert pg_server.sql("SELECT id, note FROM items", database) == [(1, "kept")]

    confirmed = _run(project, pg_url, "-x", "confirm_data_loss=true", "upgrade", "head")
    assert confirmed.returncode == 0, confirmed.stderr
    assert _versions(pg_server, database) == [(SECOND,)]
    assert pg_server.sql("SELECT to_regclass('items') IS NULL", database) == [(True,)]
