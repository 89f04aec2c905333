"""The database's records are checked, not assumed: a ``schema_version`` that disagrees with ``alembic_version``,
applied revisions without a history row, and failures that cannot be resolved by running again are reported
by ``status`` (and ``--json``, and the status page) and ``validate``, and set right by ``ccdash-migrate repair``.

Each inconsistency is made the way it happens: by writing to the DuckDB file directly, as stock SQL or an
older tool would.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import duckdb
from conftest import Project, items_revisions, snapshot
from test_web_safety import request, serving

from ccdash_alembic.errors import ExitCode

HEAD = "20250101000003"


def _sql(project: Project, *statements: str) -> None:
    """Write to the file directly, as stock SQL would."""
    connection = duckdb.connect(str(project.db))
    try:
        for statement in statements:
            connection.execute(statement)
    finally:
        connection.close()


def _status(project: Project) -> dict[str, Any]:
    result = project.migrate("status", "--json")
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def _fields(project: Project) -> dict[str, str]:
    """``status``'s piped ``label  value`` lines."""
    result = project.migrate("status")
    assert result.returncode == 0, result.stderr
    head, _, _ = result.stdout.partition("\n\n")
    return dict(re.split(r"\s{2,}", line, maxsplit=1) for line in head.splitlines())  # type: ignore[misc]


def _validate(project: Project) -> tuple[int, list[tuple[str, str, str]]]:
    result = project.migrate("validate", "--json")
    data = json.loads(result.stdout)
    assert data["exit_code"] == result.returncode
    # notes change no exit code (the file-name note is there for every database with an index)
    return result.returncode, [(f["kind"], f["subject"], f["message"]) for f in data["findings"] if f["kind"] != "note"]


def _repair(project: Project, *args: str) -> str:
    result = project.migrate("repair", *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _last_rows(project: Project, count: int) -> list[tuple[Any, ...]]:
    rows = project.rows(
        f"SELECT direction, version, status, note FROM migration_history ORDER BY id DESC LIMIT {count}"
    )
    return list(reversed(rows))


def _at_head(project: Project) -> None:
    items_revisions(project)
    up = project.migrate("up")
    assert up.returncode == 0, up.stderr
    assert _validate(project) == (0, [])


# --- schema_version against alembic_version ------------------------------------------------------------------------


def test_schema_version_changed_by_hand_is_reported_then_repaired(project: Project) -> None:
    _at_head(project)
    _sql(project, "UPDATE schema_version SET version = '20250101000001'")

    data = _status(project)
    assert data["schema_version"] == "20250101000001"
    assert data["version_mismatch"] == f"schema_version says 20250101000001, but alembic_version says {HEAD}"
    assert _fields(project)["Schema version"] == data["version_mismatch"]
    code, findings = _validate(project)
    assert code == ExitCode.DIRTY
    [(kind, subject, message)] = findings
    assert (kind, subject) == ("inconsistent", "schema_version")
    assert message.startswith(data["version_mismatch"]) and "ccdash-migrate repair" in message
    piped = project.migrate("validate")
    assert piped.returncode == ExitCode.DIRTY and "ccdash-migrate repair" in piped.stderr

    said = _repair(project)
    assert said.startswith("Rewrote schema_version from alembic_version (schema_version says 20250101000001")
    assert project.rows("SELECT version, dirty FROM schema_version") == [(HEAD, False)]
    [(direction, version, status, note)] = _last_rows(project, 1)
    assert (direction, version, status) == ("repair", HEAD, "success") and data["version_mismatch"] in note
    assert _validate(project) == (0, [])
    assert _fields(project)["Schema version"] == "agrees with alembic_version"


def test_alembic_version_changed_by_hand_is_reported(project: Project) -> None:
    """Stock SQL moved alembic_version back: schema_version disagrees, and the head is pending again. Here
    alembic_version is what is wrong, so the way out the finding names is a stamp through this layer."""
    _at_head(project)
    _sql(project, "UPDATE alembic_version SET version_num = '20250101000002'")
    data = _status(project)
    assert data["version_mismatch"] == f"schema_version says {HEAD}, but alembic_version says 20250101000002"
    assert data["pending"] == [HEAD] and data["unrecorded"] == []
    code, findings = _validate(project)
    assert code == ExitCode.DIRTY  # the disagreement outranks the pending revision
    assert [(k, s) for k, s, _ in findings] == [("inconsistent", "schema_version"), ("pending", HEAD)]
    assert "ccdash-migrate stamp the right revision" in findings[0][2]
    assert project.migrate("stamp", HEAD).returncode == 0
    assert _validate(project) == (0, [])


def test_schema_version_with_no_row_or_two_rows(project: Project) -> None:
    _at_head(project)
    _sql(project, "DELETE FROM schema_version")
    assert _status(project)["version_mismatch"] == f"schema_version has no row, but alembic_version says {HEAD}"
    assert _validate(project)[0] == ExitCode.DIRTY
    _repair(project)
    assert project.rows("SELECT version FROM schema_version") == [(HEAD,)]
    assert _validate(project) == (0, [])

    _sql(project, "INSERT INTO schema_version (version, dirty, updated_at) VALUES ('20250101000001', false, now())")
    assert _status(project)["version_mismatch"] == f"schema_version has 2 rows ({HEAD}; 20250101000001) instead of one"
    assert _validate(project)[0] == ExitCode.DIRTY
    _repair(project)
    assert project.rows("SELECT version, dirty FROM schema_version") == [(HEAD, False)]
    assert _validate(project) == (0, [])


# --- applied revisions without a history row -----------------------------------------------------------------------


def test_deleted_history_rows_are_reported_then_recorded(project: Project) -> None:
    _at_head(project)
    _sql(project, "DELETE FROM migration_history WHERE version = '20250101000002'")

    data = _status(project)
    assert data["unrecorded"] == ["20250101000002"] and data["version_mismatch"] is None
    assert _fields(project)["Unrecorded"].startswith("20250101000002 (applied, but no history row records them")
    code, findings = _validate(project)
    assert code == ExitCode.DIRTY
    [(kind, subject, message)] = findings
    assert (kind, subject) == ("inconsistent", "20250101000002") and "ccdash-migrate repair" in message

    said = _repair(project)
    assert said.startswith("Recorded revision 20250101000002 as applied")
    [(direction, version, status, _)] = _last_rows(project, 1)
    assert (direction, version, status) == ("accept", "20250101000002", "success")
    assert _validate(project) == (0, [])

    # The recorded checksum is the one changes are now checked against.
    two = next(project.versions.glob("20250101000002_*.py"))
    two.write_text(two.read_text() + "# edited\n")
    code, findings = _validate(project)
    assert code == ExitCode.CHECKSUM_MISMATCH and ("checksum", "20250101000002") in [(k, s) for k, s, _ in findings]


def test_revisions_stamped_by_hand_are_reported_with_the_disagreement(project: Project) -> None:
    """``UPDATE alembic_version`` by hand, as a stamp without this layer would: two revisions are applied with
    no row, and schema_version still names the old head."""
    items_revisions(project)
    assert project.migrate("upgrade", "20250101000001").returncode == 0
    _sql(project, f"UPDATE alembic_version SET version_num = '{HEAD}'")

    data = _status(project)
    assert data["unrecorded"] == ["20250101000002", HEAD]
    assert data["version_mismatch"] == f"schema_version says 20250101000001, but alembic_version says {HEAD}"
    assert data["pending"] == []
    code, findings = _validate(project)
    assert code == ExitCode.DIRTY
    assert [(k, s) for k, s, _ in findings] == [
        ("inconsistent", "schema_version"),
        ("inconsistent", "20250101000002"),
        ("inconsistent", HEAD),
    ]
    said = _repair(project).splitlines()
    assert len(said) == 3 and said[-1].startswith("Rewrote schema_version")
    assert _validate(project) == (0, [])
    assert _status(project)["unrecorded"] == []


def test_a_database_stamped_by_plain_alembic_without_this_layer(project: Project) -> None:
    """alembic_version but no history or schema_version at all: everything applied is unrecorded; repair makes
    the tables and records it, and upgrades go on from there."""
    items_revisions(project)
    project.db.parent.mkdir(parents=True)
    _sql(
        project,
        "CREATE TABLE items (id INTEGER PRIMARY KEY)",
        "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)",
        "INSERT INTO alembic_version VALUES ('20250101000001')",
    )
    data = _status(project)
    assert data["unrecorded"] == ["20250101000001"]
    assert "no schema_version or migration_history of ccdash-migrate" in data["version_mismatch"]
    assert _validate(project)[0] == ExitCode.DIRTY

    _repair(project)
    assert project.rows("SELECT version FROM schema_version") == [("20250101000001",)]
    code, findings = _validate(project)
    assert code == ExitCode.PENDING and {k for k, _, _ in findings} == {"pending"}
    assert project.migrate("up").returncode == 0
    assert _validate(project) == (0, [])


def test_stamps_made_through_this_layer_are_records(project: Project) -> None:
    """No false alarm: a stamp records its revision and everything below it, and a stamp down takes away
    what is above it (which stock SQL then puts back unrecorded)."""
    items_revisions(project)
    assert project.alembic("stamp", "20250101000002").returncode == 0
    assert _status(project)["unrecorded"] == []
    assert [k for k, _, _ in _validate(project)[1]] == ["pending"]

    assert project.alembic("stamp", HEAD).returncode == 0
    assert project.alembic("stamp", "20250101000001").returncode == 0
    assert _status(project)["unrecorded"] == []
    _sql(
        project,
        "UPDATE alembic_version SET version_num = '20250101000002'",
        "UPDATE schema_version SET version = '20250101000002'",
    )
    assert _status(project)["unrecorded"] == ["20250101000002"]


# --- failures ------------------------------------------------------------------------------------------------------


def _failing_fourth(project: Project) -> Path:
    _at_head(project)
    path = project.write_revision("20250101000004", HEAD, "raise RuntimeError('disk on fire')", message="four")
    assert project.migrate("up").returncode == ExitCode.MIGRATION_FAILED
    return path


def test_a_failure_whose_file_was_deleted_is_cleared_by_repair(project: Project) -> None:
    _failing_fourth(project).unlink()

    code, findings = _validate(project)
    assert code == ExitCode.MIGRATION_FAILED
    [(kind, subject, message)] = findings
    assert (kind, subject) == ("failed", "20250101000004")
    assert "disk on fire" in message and message.endswith(
        "its revision file no longer exists: clear the failure with ccdash-migrate repair"
    )
    assert _status(project)["last_failure"]["version"] == "20250101000004"
    assert _fields(project)["Last failure"].endswith("clear the failure with ccdash-migrate repair")

    said = _repair(project)
    assert said.startswith("Cleared the failure of revision 20250101000004")
    [(direction, version, status, note)] = _last_rows(project, 1)
    assert (direction, version, status) == ("repair", "20250101000004", "success")
    assert "disk on fire" in note and "no longer exists" in note
    assert _validate(project) == (0, [])
    assert _status(project)["last_failure"] is None
    assert _repair(project).startswith("Nothing to repair")


def test_a_failure_whose_file_is_there_is_cleared_only_when_asked(project: Project) -> None:
    _failing_fourth(project)
    code, findings = _validate(project)
    assert code == ExitCode.MIGRATION_FAILED
    assert findings[0][2].endswith("or give it up with ccdash-migrate repair --clear-failure 20250101000004")

    before = snapshot(project.db)
    said = _repair(project)
    assert said.startswith("Nothing to repair") and "--clear-failure 20250101000004" in said
    assert snapshot(project.db) == before

    wrong = project.migrate("repair", "--clear-failure", "20250101000002")
    assert wrong.returncode == ExitCode.USAGE
    assert wrong.stderr.strip().splitlines()[-1] == (
        "error: revision 20250101000002 has no unresolved failure to clear. "
        "ccdash-migrate validate lists the failures there are; nothing was changed"
    )
    assert snapshot(project.db) == before

    assert _repair(project, "--clear-failure", "20250101000004").startswith(
        "Cleared the failure of revision 20250101000004"
    )
    assert _validate(project) == (ExitCode.PENDING, [("pending", "20250101000004", "is not applied (four)")])


def test_a_later_successful_downgrade_resolves_a_failed_one(project: Project, tmp_path: Path) -> None:
    flag = tmp_path / "fail-downgrade"
    flag.touch()
    project.write_revision("20250101000001", None, downgrade=f"assert not __import__('os').path.exists({str(flag)!r})")
    assert project.migrate("up").returncode == 0
    assert project.alembic("downgrade", "base").returncode == ExitCode.MIGRATION_FAILED
    assert [k for k, _, _ in _validate(project)[1]] == ["failed"]
    flag.unlink()
    assert project.alembic("downgrade", "base").returncode == 0
    assert _validate(project) == (ExitCode.PENDING, [("pending", "20250101000001", "is not applied (step)")])


# --- the status page -----------------------------------------------------------------------------------------------


def test_the_status_page_reports_each_inconsistency(project: Project) -> None:
    _failing_fourth(project).unlink()
    _sql(
        project,
        "DELETE FROM migration_history WHERE version = '20250101000002'",
        "UPDATE schema_version SET version = '20250101000001'",
    )
    with serving(project) as served:
        code, page = request(served, "/")
        data = json.loads(request(served)[1])
    assert code == 200
    assert 'id="version-mismatch"' in page and "schema_version says 20250101000001" in page
    assert re.search(r'id="unrecorded">.*20250101000002', page)
    assert re.search(r'id="failure">.*20250101000004 \(four\).*disk on fire', page)
    assert "Its revision file no longer exists: clear the failure with ccdash-migrate repair" in page
    assert data["unrecorded"] == ["20250101000002"] and data["version_mismatch"]
    assert [f["version"] for f in data["failures"]] == ["20250101000004"]


def test_repair_without_a_database(project: Project) -> None:
    items_revisions(project)
    result = project.migrate("repair")
    assert result.returncode == 0 and "nothing to repair" in result.stdout
    assert not project.db.exists()
