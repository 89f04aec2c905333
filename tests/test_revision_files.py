"""``alembic revision -m``: timestamp ids, file names, a typed template that lints clean."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta

from conftest import REPO, Project

from ccdash_alembic.errors import ExitCode
from ccdash_alembic.runtime.revision_ids import next_id


def test_revision_file_is_named_and_identified_by_its_utc_timestamp(project: Project) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    result = project.alembic("revision", "-m", "add user preferences", pass_db=False)
    after = datetime.now(UTC)
    assert result.returncode == 0, result.stderr
    [path] = list(project.versions.glob("*.py"))
    match = re.fullmatch(r"(\d{14})_add_user_preferences\.py", path.name)
    assert match, path.name
    stamp = datetime.strptime(match.group(1), "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    assert before <= stamp <= after
    assert f"revision: str = '{match.group(1)}'" in path.read_text()
    assert not project.db.exists()  # writing a revision does not touch the database


def test_revision_chain_and_same_second(project: Project) -> None:
    for message in ("one", "two", "three"):
        assert project.alembic("revision", "-m", message, pass_db=False).returncode == 0
    history = project.alembic("history", pass_db=False)
    assert history.returncode == 0, history.stderr
    ids = re.findall(r"(\d{14})", history.stdout)
    assert len(set(ids)) == 3  # distinct even when made within one second
    assert project.alembic("upgrade", "head").returncode == 0


def test_next_id_moves_past_a_parent_from_the_same_second() -> None:
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert next_id(now, ()) == "20260102030405"
    assert next_id(now, ["20260102030405"]) == "20260102030406"
    assert next_id(now, ["20260102030500", "abc"]) == "20260102030501"
    assert next_id(now + timedelta(hours=2), ["20260102030405"]) == "20260102050405"


def test_generated_revision_passes_ruff_and_mypy(project: Project) -> None:
    assert project.alembic("revision", "-m", "first", pass_db=False).returncode == 0
    assert project.alembic("revision", "-m", "second", pass_db=False).returncode == 0
    files = [str(p) for p in sorted(project.versions.glob("*.py"))]
    ruff = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--config", str(REPO / "pyproject.toml"), *files],
        capture_output=True,
        text=True,
        cwd=project.root,
    )
    assert ruff.returncode == 0, ruff.stdout
    mypy = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", *files],
        capture_output=True,
        text=True,
        cwd=project.root,
    )
    assert mypy.returncode == 0, mypy.stdout


# CCDash's shipped revisions, as databases recorded them when they were applied. A file may never change after
# it is applied (every later run on such a database would refuse it, exit code 5), unless the new file declares
# the shipped one equivalent (``earlier_checksums``, which must then hold it); a new revision is added here once
# it ships.
SHIPPED = {
    "20250810000000": "79d3f5bb14edb113dc7aa411e23257dd6451cf402f70ad3c4277da58a6c766e6",
    "20261127020000": "7ba06d88b07e58dae6420a3d0fa825ca9439c0cb65a9ae1ece4fa6682a16ab31",
    "20261127020100": "bdf1b43dd6669716c88ebba0b13a5af8e4cbc110a12581f5c3af247e6fffc37d",
    "20261127020200": "cb31cc203d436bcff09a9c99bf9e83a04a8b3e053285d4c7595c0d9d30494e1a",
}


def test_shipped_revisions_are_unchanged() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from ccdash_alembic.runtime.checksum import revision_checksum

    script = ScriptDirectory.from_config(Config(str(REPO / "alembic.ini")))
    found = {r.revision: r for r in script.walk_revisions() if r.revision in SHIPPED}
    assert set(found) == set(SHIPPED)
    for revision, shipped in SHIPPED.items():
        # the file as shipped, or a later version that declares the shipped one equivalent
        assert shipped in (
            revision_checksum(found[revision]),
            *getattr(found[revision].module, "earlier_checksums", ()),
        )


def test_an_earlier_checksum_a_revision_declares_is_not_a_change(project: Project) -> None:
    """A revision rewritten after it was applied is no change to a database that applied it only when the new
    file names the applied file's checksum (``earlier_checksums``); any other version still is."""
    import json

    from ccdash_alembic.runtime.checksum import file_checksum

    create = 'op.create_table("t", sa.Column("id", sa.Integer))'
    first = project.write_revision("20260101000000", None, upgrade=create, downgrade='op.drop_table("t")')
    assert project.alembic("upgrade", "head").returncode == 0
    applied = file_checksum(first)
    project.write_revision(
        "20260101000000", None, upgrade=f"{create}  # rewritten", header=f"earlier_checksums = ({applied!r},)"
    )
    project.write_revision("20260101000001", "20260101000000", message="next")
    assert json.loads(project.migrate("status", "--json").stdout)["drift"] == []
    assert project.migrate("validate").returncode == ExitCode.PENDING
    assert project.alembic("upgrade", "head").returncode == 0
    project.write_revision("20260101000000", None, upgrade=f"{create}  # changed again, not declared")
    assert json.loads(project.migrate("status", "--json").stdout)["drift"] == ["20260101000000"]
    assert project.migrate("validate").returncode == ExitCode.CHECKSUM_MISMATCH
