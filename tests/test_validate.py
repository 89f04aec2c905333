"""``ccdash-migrate validate``, the check CI runs: every finding (pending, failed, changed after it was
applied, a dirty mark, bad file names, missing parents, several heads, SQL DuckDB cannot parse) and the exit code
that ranks them, piped and ``--json``."""

from __future__ import annotations

import json

from conftest import Project, counting_revisions, items_revisions, status_parts

from ccdash_alembic.errors import ExitCode


def _validate(project: Project) -> tuple[int, dict[str, object]]:
    result = project.migrate("validate", "--json")
    data = json.loads(result.stdout)
    assert data["exit_code"] == result.returncode
    return result.returncode, data


def test_validate_exit_codes_clean_pending_failed_drift_invalid(project: Project) -> None:
    items_revisions(project)
    assert _validate(project) == (0, {"revisions": 3, "findings": [], "exit_code": 0})  # no database yet

    assert project.alembic("upgrade", "20250101000001").returncode == 0
    code, data = _validate(project)
    assert code == ExitCode.PENDING
    assert [(f["kind"], f["subject"]) for f in data["findings"]] == [  # type: ignore[attr-defined]
        ("pending", "20250101000002"),
        ("pending", "20250101000003"),
    ]

    three = project.versions / "20250101000003_three.py"
    good = three.read_text()
    three.write_text(good.replace("op.create_index('ix_items_name', 'items', ['name'])", "raise RuntimeError('no')"))
    assert project.alembic("upgrade", "head").returncode == ExitCode.MIGRATION_FAILED
    code, data = _validate(project)
    assert code == ExitCode.MIGRATION_FAILED
    assert ("failed", "20250101000003") in [(f["kind"], f["subject"]) for f in data["findings"]]  # type: ignore[attr-defined]
    three.write_text(good)
    assert project.alembic("upgrade", "head").returncode == 0
    assert _validate(project)[0] == 0  # the later success resolves the failure

    one = project.versions / "20250101000001_one.py"
    one.write_text(one.read_text() + "# edited\n")
    code, data = _validate(project)
    assert code == ExitCode.CHECKSUM_MISMATCH
    assert [f for f in data["findings"] if f["kind"] != "note"] == [  # type: ignore[attr-defined]
        {
            "kind": "checksum",
            "subject": "20250101000001",
            "message": "20250101000001_one.py changed after it was applied",
        }
    ]
    one.write_text(one.read_text().replace("# edited\n", ""))

    (project.versions / "20250101000004_Bad_Name.py").write_text(
        "revision = '20250101000004'\ndown_revision = '20250101000003'\n"
    )
    code, data = _validate(project)
    assert code == ExitCode.INVALID_REVISIONS
    assert data["findings"][0]["message"] == "is not named <14-digit UTC timestamp>_<slug>.py"  # type: ignore[index]
    piped = project.migrate("validate")
    assert piped.returncode == ExitCode.INVALID_REVISIONS
    assert piped.stderr.strip().splitlines()[-1] == (
        "error: 1 finding (exit code 11). Fix the revision files before the next upgrade"
    )


def test_validate_reports_a_dirty_mark(project: Project) -> None:
    project.write_revision(
        "20250101000001",
        None,
        "op.create_table('a', sa.Column('id', sa.Integer))\nraise RuntimeError('half way')",
        message="outside",
        header="transactional = False",
    )
    assert project.alembic("upgrade", "head").returncode == ExitCode.MIGRATION_FAILED
    code, data = _validate(project)
    assert code == ExitCode.DIRTY
    assert data["findings"][0]["kind"] == "dirty"  # type: ignore[index]
    fields, _ = status_parts(project.migrate("status").stdout)
    assert fields["Dirty"].startswith("yes: 20250101000001 did not finish")


def test_validate_finds_what_is_wrong(project: Project) -> None:
    counting_revisions(project)
    clean = project.migrate("validate")
    assert clean.returncode == 0 and "3 revisions: no findings" in clean.stdout
    assert project.alembic("upgrade", "head").returncode == 0

    one = project.versions / "20250101000001_one.py"
    one.write_text(one.read_text() + "\n# edited\n")
    changed = project.migrate("validate")
    assert changed.returncode == ExitCode.CHECKSUM_MISMATCH
    assert (
        _finding(changed.stdout, "checksum", "20250101000001") == "20250101000001_one.py changed after it was applied"
    )

    project.write_revision("20250101000009", "20240101000000", message="orphan")
    project.write_revision("20250101000004", "20250101000003", message="fork a")
    project.write_revision("20250101000005", "20250101000003", message="fork b")
    (project.versions / "20250101000005_fork_b.up.sql").write_text("CREATE TABLE ok (x INTEGER);\nSELEC 1;\n")
    (project.versions / "badly named.py").write_text("revision = '20250101000006'\ndown_revision = '20250101000005'\n")
    found = project.migrate("validate")
    assert found.returncode == ExitCode.CHECKSUM_MISMATCH  # drift outranks the other findings
    out = found.stdout
    assert "names a parent 20240101000000 that does not exist" in out
    assert "3 heads" in out
    assert _finding(out, "sql", "20250101000005_fork_b.up.sql").startswith("DuckDB cannot parse it")
    assert _finding(out, "file", "badly named.py") == "is not named <14-digit UTC timestamp>_<slug>.py"

    one.write_text(one.read_text().replace("\n# edited\n", ""))
    (project.versions / "badly named.py").unlink()
    still = project.migrate("validate")
    assert still.returncode == ExitCode.INVALID_REVISIONS


def _finding(table: str, kind: str, subject: str) -> str:
    """The message of one finding in validate's piped table (columns ``Kind  Subject  Finding``)."""
    header, *rows = table.splitlines()
    subject_at, message_at = header.index("Subject"), header.index("Finding")
    found = [r for r in rows if r.startswith(kind + " ") and r[subject_at:message_at].strip() == subject]
    assert len(found) == 1, table
    return found[0][message_at:].strip()
