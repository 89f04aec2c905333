"""``--sql`` scripts that cannot be planned: one line and a non-zero exit, never a traceback, and no script
planned against a schema the database is not at."""

from __future__ import annotations

from conftest import Project, error_line


def _two_steps(project: Project, second_upgrade: str, second_downgrade: str = "pass") -> None:
    project.write_revision(
        "20250101000001", None, 'op.create_table("t", sa.Column("id", sa.Integer))', 'op.drop_table("t")'
    )
    project.write_revision("20250101000002", "20250101000001", second_upgrade, second_downgrade, message="second")


def test_a_script_from_a_revision_the_database_is_not_at_is_refused(project: Project) -> None:
    _two_steps(project, 'op.add_column("t", sa.Column("c", sa.Integer))', 'op.drop_column("t", "c")')
    assert project.alembic("upgrade", "20250101000001").returncode == 0
    before = project.db.read_bytes()
    result = project.alembic("downgrade", "20250101000002:20250101000001", "--sql")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "the database is at 20250101000001" in error_line(result)
    assert project.db.read_bytes() == before
    # from where the database is, the script is written
    written = project.alembic("upgrade", "20250101000001:head", "--sql")
    assert written.returncode == 0, written.stderr
    assert 'ADD COLUMN "c" INTEGER' in written.stdout


def test_a_plan_that_cannot_be_made_in_a_script_is_one_line(project: Project) -> None:
    _two_steps(project, 'op.drop_constraint("nope_key", "t", type_="unique")')
    assert project.alembic("upgrade", "20250101000001").returncode == 0
    result = project.alembic("upgrade", "20250101000001:head", "--sql")
    assert result.returncode == 6, result.stderr
    assert "Traceback" not in result.stderr
    assert "has no unique constraint that matches 'nope_key'" in error_line(result)
