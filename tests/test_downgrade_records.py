"""A downgrade moves ``schema_version`` with ``alembic_version``, checked right after each downgrade (no later step
may rewrite the row before it is read): one step, several, to base, on one of two branches, a stamp
that moves back, and the ``--sql`` script of a downgrade."""

from __future__ import annotations

import json

import duckdb
from conftest import Project, items_revisions

R1, R2, R3 = "20250101000001", "20250101000002", "20250101000003"


def _records(project: Project) -> tuple[list[str], list[tuple[object, ...]]]:
    """What ``alembic_version`` and ``schema_version`` say now."""
    heads = sorted(str(r[0]) for r in project.rows("SELECT version_num FROM alembic_version"))
    return heads, project.rows("SELECT version, dirty FROM schema_version")


def _agrees(project: Project) -> None:
    """status finds no disagreement between the two tables."""
    status = project.migrate("status", "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["version_mismatch"] is None


def _last_step(project: Project) -> tuple[object, ...]:
    return project.rows("SELECT version, direction, status FROM migration_history ORDER BY id DESC LIMIT 1")[0]


def test_each_downgrade_leaves_schema_version_at_the_revision_it_reached(project: Project) -> None:
    items_revisions(project)
    assert project.alembic("upgrade", "head").returncode == 0
    assert _records(project) == ([R3], [(R3, False)])

    down = project.migrate("down")
    assert down.returncode == 0, down.stderr
    assert _records(project) == ([R2], [(R2, False)])
    assert _last_step(project) == (R3, "down", "rolled_back")
    _agrees(project)

    assert project.alembic("upgrade", "head").returncode == 0
    assert project.alembic("downgrade", R1).returncode == 0  # two steps in one run
    assert _records(project) == ([R1], [(R1, False)])
    _agrees(project)

    assert project.alembic("downgrade", "base").returncode == 0
    assert _records(project) == ([], [("", False)])
    assert _last_step(project) == (R1, "down", "rolled_back")
    _agrees(project)


def test_a_stamp_back_moves_schema_version_too(project: Project) -> None:
    items_revisions(project)
    assert project.alembic("upgrade", "head").returncode == 0
    assert project.alembic("stamp", R1).returncode == 0
    assert _records(project) == ([R1], [(R1, False)])
    assert _last_step(project) == (R1, "stamp", "success")
    _agrees(project)


def test_a_downgrade_on_one_branch_keeps_both_heads_in_schema_version(project: Project) -> None:
    project.write_revision(R1, None, message="root")
    project.write_revision(R2, R1, message="left")
    project.write_revision(R3, R1, message="right")
    project.write_revision("20250101000004", R3, message="right again")
    assert project.alembic("upgrade", "heads").returncode == 0
    assert _records(project) == ([R2, "20250101000004"], [(f"{R2},20250101000004", False)])

    down = project.alembic("downgrade", R3)
    assert down.returncode == 0, down.stderr
    assert _records(project) == ([R2, R3], [(f"{R2},{R3}", False)])
    _agrees(project)


def test_the_sql_script_of_a_downgrade_moves_schema_version(project: Project) -> None:
    """``downgrade --sql`` prints the same records: run on the database at head, it leaves both tables at R1."""
    items_revisions(project)
    assert project.alembic("upgrade", "head").returncode == 0
    script = project.alembic("downgrade", f"{R3}:{R1}", "--sql")
    assert script.returncode == 0, script.stderr
    assert "UPDATE schema_version" in script.stdout

    connection = duckdb.connect(str(project.db))
    try:
        connection.execute(script.stdout)
    finally:
        connection.close()
    assert _records(project) == ([R1], [(R1, False)])
