"""What a PostgreSQL server or a URL refuses is one line with an exit code, never a traceback, and the database
is as it was: a user who may not create tables, a search_path naming no schema, a port that is not a number,
limits PostgreSQL cannot take, and output whose reader went away."""

from __future__ import annotations

import subprocess

import postgres_server
import pytest
from conftest import BIN, Project, error_line

from ccdash_alembic.errors import ExitCode

FIRST = "20260101000000"


def _tables(server: postgres_server.Server, database: str) -> list[tuple[object, ...]]:
    return server.sql("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1", database)


def test_what_the_server_refuses_is_one_line(project: Project, pg_server: postgres_server.Server, pg_url: str) -> None:
    database = pg_url.rsplit("/", 1)[1]
    project.write_revision(FIRST, None, "op.create_table('items', sa.Column('id', sa.Integer))")
    pg_server.sql("CREATE ROLE reader LOGIN")  # PostgreSQL 15 gives a new role no CREATE on the public schema
    reader = pg_url.replace("postgres@", "reader@")
    cases = {
        reader: "error: the server refused this user: permission denied",
        f"{pg_url}?options=-csearch_path%3Dnowhere": "error: the database has no schema to work in",
    }
    for url, start in cases.items():
        result = project.alembic("-x", f"url={url}", "upgrade", "head", pass_db=False)
        assert result.returncode == ExitCode.DATABASE_UNUSABLE, result.stderr
        assert error_line(result).startswith(start) and "Traceback" not in result.stderr
        assert _tables(pg_server, database) == []
    assert project.alembic("-x", f"url={pg_url}", "upgrade", "head", pass_db=False).returncode == 0
    for result in (
        project.alembic("-x", f"url={reader}", "current", pass_db=False),
        *(
            project.migrate("-x", f"url={reader}", command, pass_db=False)
            for command in ("status", "history", "validate")
        ),
    ):
        assert result.returncode == ExitCode.DATABASE_UNUSABLE, result.stderr
        assert error_line(result).startswith("error: the server refused this user: permission denied")


@pytest.mark.parametrize(
    "option",
    ["revision_lock_timeout=3000000", "revision_statement_timeout=1e12", "url=postgresql://postgres@127.0.0.1:x/db"],
)
def test_values_postgresql_cannot_take_are_refused_before_it_is_asked(
    project: Project, pg_server: postgres_server.Server, pg_url: str, option: str
) -> None:
    project.write_revision(FIRST, None, "op.create_table('items', sa.Column('id', sa.Integer))")
    target = () if option.startswith("url=") else ("-x", f"url={pg_url}")
    result = project.alembic(*target, "-x", option, "upgrade", "head", pass_db=False)
    assert result.returncode == ExitCode.USAGE, result.stderr
    assert "Traceback" not in result.stderr and error_line(result)
    assert _tables(pg_server, pg_url.rsplit("/", 1)[1]) == []


def test_output_whose_reader_went_away_ends_quietly(project: Project, pg_url: str) -> None:
    """``ccdash-migrate history --json | head -1`` on a long history (far more than a pipe holds, so the command
    is still writing when ``head`` leaves): it stops as shell tools do, with SIGPIPE's exit code and no
    traceback."""
    previous = None
    for number in range(150):
        revision = f"2026010100{number // 60:02d}{number % 60:02d}"
        project.write_revision(revision, previous, message=f"step {number}")
        previous = revision
    assert project.alembic("-x", f"url={pg_url}", "upgrade", "head", pass_db=False).returncode == 0
    piped = subprocess.run(
        f"'{BIN / 'ccdash-migrate'}' -x 'url={pg_url}' history --json | head -1; echo \"exit ${{PIPESTATUS[0]}}\" >&2",
        shell=True,
        cwd=project.root,
        env=project.env(),
        capture_output=True,
        text=True,
        timeout=120,
        executable="/bin/bash",
    )
    assert piped.stdout == "[\n" and piped.stderr.splitlines()[-1] == "exit 141", piped.stderr
    assert "Traceback" not in piped.stderr
