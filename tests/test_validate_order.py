"""``validate`` reports a revision merged in out of order: older than the newest applied revision, not applied,
and not following any applied one (a branch with its own root, merged after the database moved past its
timestamps). A pending revision that follows an applied one is only pending, whatever its timestamp."""

from __future__ import annotations

import json

from conftest import Project

from ccdash_alembic.errors import ExitCode

R1, R2, R3, R4 = "20250101000001", "20250101000002", "20250101000003", "20250101000004"


def _findings(project: Project) -> tuple[int, list[tuple[str, str, str]]]:
    result = project.migrate("validate", "--json")
    data = json.loads(result.stdout)
    assert data["exit_code"] == result.returncode
    return result.returncode, [(f["kind"], f["subject"], f["message"]) for f in data["findings"] if f["kind"] != "note"]


def _applied_main_line(project: Project) -> None:
    """R1 and R3 written and applied."""
    project.write_revision(R1, None, "op.create_table('t', sa.Column('id', sa.Integer))", message="create t")
    project.write_revision(R3, R1, "op.add_column('t', sa.Column('v', sa.String))", message="add v")
    up = project.migrate("up")
    assert up.returncode == 0, up.stderr
    assert _findings(project) == (0, [])


def test_an_older_revision_merged_after_the_database_moved_on_is_reported(project: Project) -> None:
    _applied_main_line(project)
    # another branch's line, started before R3 and merged into the main line afterwards
    project.write_revision(R2, None, "op.create_table('u', sa.Column('id', sa.Integer))", message="create u")
    project.write_revision(R4, (R3, R2), message="merge")  # type: ignore[arg-type]

    code, findings = _findings(project)
    assert code == ExitCode.PENDING
    assert ("order", R2, f"is older than the newest applied revision {R3}, is not applied, and does not follow it") in (
        findings
    )
    assert [subject for kind, subject, _ in findings if kind == "order"] == [R2]  # the merge follows R3
    assert {(kind, subject) for kind, subject, _ in findings} >= {("pending", R2), ("pending", R4)}

    up = project.alembic("upgrade", "head")
    assert up.returncode == 0, up.stderr
    assert _findings(project) == (0, [])


def test_a_pending_revision_that_follows_an_applied_one_is_not_out_of_order(project: Project) -> None:
    """An imported line keeps its older timestamps: it runs next in graph order, so it is only pending."""
    _applied_main_line(project)
    project.write_revision(R2, R3, message="imported")
    assert _findings(project) == (ExitCode.PENDING, [("pending", R2, "is not applied (imported)")])
