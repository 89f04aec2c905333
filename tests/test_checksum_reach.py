"""Every applied revision's file is checked against the checksum it was applied with, by ``validate`` and before a
run: the newest applied one and those between, not only the first."""

from __future__ import annotations

import json

from conftest import Project, items_revisions

from ccdash_alembic.errors import ExitCode

FILES = {
    "20250101000002": "20250101000002_two.py",
    "20250101000003": "20250101000003_three.py",
}


def test_a_changed_file_is_found_wherever_it_is_in_the_applied_line(project: Project) -> None:
    items_revisions(project)
    assert project.alembic("upgrade", "head").returncode == 0
    project.write_revision("20250101000004", "20250101000003", message="four")

    for revision, name in FILES.items():
        path = project.versions / name
        applied = path.read_text()
        path.write_text(applied + "# edited\n")

        validated = project.migrate("validate", "--json")
        assert validated.returncode == ExitCode.CHECKSUM_MISMATCH, validated.stdout
        findings = [(f["kind"], f["subject"]) for f in json.loads(validated.stdout)["findings"]]
        assert ("checksum", revision) in findings

        refused = project.alembic("upgrade", "head")
        assert refused.returncode == ExitCode.CHECKSUM_MISMATCH, refused.stderr
        assert f"revision {revision} was changed after it was applied" in refused.stderr

        path.write_text(applied)
    assert project.rows("SELECT version_num FROM alembic_version") == [("20250101000003",)]
    assert project.alembic("upgrade", "head").returncode == 0
