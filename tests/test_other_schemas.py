"""Tables outside ``main``: the checks a run makes when it opens a file look at every schema's tables by their
qualified names, so such a file stays usable."""

from __future__ import annotations

from conftest import Project

IN_SCHEMA = """
op.execute('CREATE SCHEMA "Side x"')
op.create_table("t", sa.Column("id", sa.Integer), sa.Column("v", sa.String), schema="Side x")
op.execute('INSERT INTO "Side x".t SELECT i, md5(i::VARCHAR) FROM range(200000) r(i)')
"""


def _side_schema(project: Project) -> None:
    project.write_revision(
        "20250101000001", None, IN_SCHEMA, 'op.drop_table("t", schema="Side x")\nop.execute(\'DROP SCHEMA "Side x"\')'
    )
    project.write_revision(
        "20250101000002",
        "20250101000001",
        'op.add_column("t", sa.Column("w", sa.Integer), schema="Side x")',
        'op.drop_column("t", "w", schema="Side x")',
        message="add w",
    )


def test_a_table_in_another_schema_leaves_every_command_working(project: Project) -> None:
    _side_schema(project)
    assert project.alembic("upgrade", "20250101000001").returncode == 0
    for command in (["current"], ["upgrade", "head"], ["downgrade", "-1"], ["upgrade", "head"]):
        result = project.alembic(*command)
        assert result.returncode == 0, (command, result.stderr)
    status = project.migrate("status")
    assert status.returncode == 0, status.stderr
    assert project.rows('SELECT count(*), count(w) FROM "Side x".t') == [(200000, 0)]
