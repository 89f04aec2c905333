"""``ccdash-migrate``'s operator commands: what they print (terminal, piped, ``--json``) and their exit codes."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import textwrap
from dataclasses import fields
from pathlib import Path

from conftest import ANSI_ESCAPE, BIN, Project, hold, items_revisions, on_terminal, status_parts

from ccdash_alembic.ccdash.application import CCDASH
from ccdash_alembic.errors import ExitCode
from ccdash_alembic.runtime.settings import Settings


def _rows(table: str) -> tuple[list[str], list[list[str]]]:
    """The header and rows of a piped table: columns (two spaces apart) start where the header's names start."""
    header, *lines = [line for line in table.splitlines() if line.strip()]
    starts = [m.start() for m in re.finditer(r"(?:^|(?<=\s\s))\S", header)]
    names = [header[a:b].strip() for a, b in zip(starts, [*starts[1:], None], strict=True)]
    rows = [[line[a:b].strip() for a, b in zip(starts, [*starts[1:], None], strict=True)] for line in lines]
    return names, rows


# --- status -------------------------------------------------------------------------------------------------------


def test_status_piped_and_json(project: Project) -> None:
    items_revisions(project)
    assert project.alembic("upgrade", "20250101000002").returncode == 0
    piped = project.migrate("status")
    assert piped.returncode == 0, piped.stderr
    assert "\x1b[" not in piped.stdout  # no colour codes when piped
    fields, table = status_parts(piped.stdout)
    assert fields["Database"] == f"{project.db} (from -x db)"
    assert fields["Current"] == "20250101000002 (two)"
    assert fields["Head"] == "20250101000003 (three)"
    assert fields["Pending"] == "20250101000003"
    assert fields["Dirty"] == "no" and fields["Changed files"] == "none" and fields["Last failure"] == "none"
    names, rows = _rows(table)
    assert names == ["Revision", "State", "Time", "Name"]
    assert [(r[0], r[1], r[3]) for r in rows] == [
        ("20250101000001", "applied", "one"),
        ("20250101000002", "applied", "two"),
        ("20250101000003", "pending", "three"),
    ]
    assert re.fullmatch(r"[\d,]+ ms", rows[0][2]) and rows[2][2] == "-"

    data = json.loads(project.migrate("status", "--json").stdout)
    assert data["current"] == ["20250101000002"] and data["heads"] == ["20250101000003"]
    assert data["pending"] == ["20250101000003"]
    assert [r["state"] for r in data["revisions"]] == ["applied", "applied", "pending"]
    assert data["revisions"][1]["parents"] == ["20250101000001"]
    assert data["dirty"] is None and data["drift"] == [] and data["last_failure"] is None
    assert data["exists"] is True and data["in_use_by"] is None


def test_status_on_a_terminal_is_a_coloured_table(project: Project) -> None:
    items_revisions(project)
    assert project.alembic("upgrade", "20250101000001").returncode == 0
    code, output = on_terminal(
        [str(BIN / "ccdash-migrate"), "-x", f"db={project.db}", "status"], project.root, project.env()
    )
    assert code == 0, output
    assert "\x1b[" in output  # coloured
    text = ANSI_ESCAPE.sub("", output)
    assert re.search(r"20250101000001\s+applied", text) and re.search(r"20250101000003\s+pending", text)
    assert "─" in text  # the table's rule under its header


def test_status_of_a_database_that_does_not_exist_yet(project: Project) -> None:
    items_revisions(project)
    result = project.migrate("status", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["exists"] is False and data["pending"] == ["20250101000001", "20250101000002", "20250101000003"]
    assert not project.db.exists()  # reading a status never creates the file


def test_status_of_a_file_in_use_names_the_holder(project: Project) -> None:
    items_revisions(project)
    assert project.alembic("upgrade", "head").returncode == 0
    holder = hold(project.db)
    try:
        result = project.migrate("status")
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == ExitCode.LOCKED
    database, line = result.stderr.strip().splitlines()
    assert database == f"Database: {project.db} (from -x db)"
    assert line.startswith("error: ") and f"(PID {holder.pid})" in line and "Run again when it is free" in line


# --- history ------------------------------------------------------------------------------------------------------


def test_history_table_slowest_first_and_json(project: Project) -> None:
    items_revisions(project, slow=0.4)
    assert project.alembic("upgrade", "head").returncode == 0
    assert project.alembic("downgrade", "-1").returncode == 0

    piped = project.migrate("history")
    assert piped.returncode == 0, piped.stderr
    names, rows = _rows(piped.stdout)
    assert names == ["Time (UTC)", "Direction", "Revision", "Name", "Duration", "Status", "Checksum"]
    assert [(r[1], r[2], r[3], r[5]) for r in rows] == [
        ("up", "20250101000001", "one", "success"),
        ("up", "20250101000002", "two", "success"),
        ("up", "20250101000003", "three", "success"),
        ("down", "20250101000003", "three", "rolled_back"),
    ]
    source = (project.versions / "20250101000002_two.py").read_bytes()
    assert rows[1][6] == hashlib.sha256(source).hexdigest()[:12]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", rows[0][0])

    slowest = _rows(project.migrate("history", "--slowest").stdout)[1]
    assert slowest[0][2] == "20250101000002"
    durations = [int(r[4].replace(",", "").removesuffix(" ms")) for r in slowest]
    assert durations == sorted(durations, reverse=True) and durations[0] >= 400

    data = json.loads(project.migrate("history", "--json").stdout)
    assert [(s["direction"], s["version"], s["status"]) for s in data] == [(r[1], r[2], r[5]) for r in rows]
    assert data[1]["checksum"] == hashlib.sha256(source).hexdigest()
    assert data[1]["execution_time_ms"] >= 400 and data[0]["applied_at"].endswith("Z")


def test_history_records_a_failure_with_its_error(project: Project) -> None:
    project.write_revision("20250101000001", None, "raise RuntimeError('disk on fire')", message="bad")
    assert project.alembic("upgrade", "head").returncode == ExitCode.MIGRATION_FAILED
    [step] = json.loads(project.migrate("history", "--json").stdout)
    assert step["status"] == "failed" and "disk on fire" in step["error_message"]
    fields, _ = status_parts(project.migrate("status").stdout)
    assert fields["Last failure"].startswith("20250101000001 at ") and "disk on fire" in fields["Last failure"]


def test_history_of_a_database_with_none(project: Project) -> None:
    result = project.migrate("history")
    assert result.returncode == 0 and result.stdout == "" and "No steps recorded yet" in result.stderr


# --- up, down, revisions, create ---------------------------------------------------------------------------------


def test_up_down_and_alembics_revision_list(project: Project) -> None:
    items_revisions(project)
    assert project.migrate("up").returncode == 0
    assert project.rows("SELECT version_num FROM alembic_version") == [("20250101000003",)]
    assert project.migrate("down").returncode == 0
    assert project.rows("SELECT version_num FROM alembic_version") == [("20250101000002",)]
    listed = project.migrate("revisions")
    assert listed.returncode == 0
    assert "20250101000002 -> 20250101000003 (head), three" in listed.stdout
    up_sql = project.migrate("up", "--sql")
    assert up_sql.returncode == 0 and re.search(r"CREATE TABLE \"?items", up_sql.stdout)


def test_up_on_a_terminal_shows_progress(project: Project) -> None:
    items_revisions(project, slow=1.0)
    code, output = on_terminal(
        [str(BIN / "ccdash-migrate"), "-x", f"db={project.db}", "up"], project.root, project.env()
    )
    assert code == 0, output
    text = ANSI_ESCAPE.sub("", output)
    assert "Migrating" in text and "/3" in text


def test_create_names_files_by_id_and_refuses_bad_messages(project: Project) -> None:
    made = [project.migrate("create", "-m", m, pass_db=False) for m in ("add things", "more things", "yet more")]
    assert all(r.returncode == 0 for r in made), [r.stderr for r in made]
    files = sorted(p.name for p in project.versions.glob("*.py"))
    ids = [f[:14] for f in files]
    assert len(set(ids)) == 3  # made within a second or two, still distinct
    for name in files:
        assert f"revision: str = '{name[:14]}'" in (project.versions / name).read_text()
    assert [f[15:] for f in files] == ["add_things.py", "more_things.py", "yet_more.py"]
    assert project.migrate("validate", pass_db=False).returncode == 0  # names and ids agree
    assert not project.db.exists()

    for message, expected in [
        ("add things", "a revision named 'add_things' exists already"),
        ("!!! ---", "has no letters or digits"),
        ("préférences", "characters other than a-z"),
    ]:
        refused = project.migrate("create", "-m", message, pass_db=False)
        assert refused.returncode == ExitCode.USAGE
        [line] = refused.stderr.strip().splitlines()
        assert expected in line
    both = project.migrate("create", "--sql", "--autogenerate", "-m", "x", pass_db=False)
    assert both.returncode == ExitCode.USAGE
    assert sorted(p.name for p in project.versions.glob("*.py")) == files  # nothing written by a refusal


def test_help_lists_the_commands(project: Project) -> None:
    helped = project.migrate("-h", pass_db=False)
    for name in ("status", "history", "revisions", "validate", "serve", "import-sql", "up", "down", "create"):
        assert re.search(rf"^\s+{name}\s", helped.stdout, re.MULTILINE), name
    assert "usage: ccdash-migrate import-sql" in project.migrate("import-sql", "-h", pass_db=False).stdout


def test_options_lists_every_option(project: Project) -> None:
    listed = project.migrate("options", pass_db=False)
    assert listed.returncode == 0
    names, rows = _rows(listed.stdout)
    assert names == ["Option", "Default", "Meaning"]
    # the layer's options, then those of the application (CCDash's, which this project's alembic.ini names)
    options = [f.name for f in fields(Settings) if "parse" in f.metadata] + [o.name for o in CCDASH.options]
    assert [r[0] for r in rows] == options
    assert dict((r[0], r[1]) for r in rows)["lock_timeout"] == "60.0"


def test_generated_sql_stub_passes_ruff_and_mypy(project: Project) -> None:
    assert project.migrate("create", "--sql", "-m", "sql step", pass_db=False).returncode == 0
    [stub] = project.versions.glob("*.py")
    config = str(Path(__file__).parents[1] / "pyproject.toml")
    # ccdash_alembic is first-party in this repository, where CCDash's revisions live (the temporary project
    # folder is outside it, so ruff is told).
    first_party = "lint.isort.known-first-party = ['ccdash_alembic']"
    ruff = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--config", config, "--config", first_party, str(stub)],
        capture_output=True,
        text=True,
        cwd=project.root,
    )
    assert ruff.returncode == 0, ruff.stdout
    mypy = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(stub)],
        capture_output=True,
        text=True,
        cwd=project.root,
        env={**project.env(), "MYPYPATH": str(Path(__file__).parents[1])},  # an editable install hides the package
    )
    assert mypy.returncode == 0, mypy.stdout
    assert (
        textwrap.dedent(
            """\
        def upgrade() -> None:
            run_sql_file(__file__, "up")
        """
        )
        in stub.read_text()
    )


def test_every_command_that_touches_the_database_says_which_first(project: Project) -> None:
    items_revisions(project)
    for command in (["up"], ["status"], ["status", "--json"], ["history"], ["validate"], ["backup"], ["down"]):
        result = project.migrate(*command)
        assert result.returncode == 0, (command, result.stderr)
        first = result.stderr.splitlines()[0]
        assert first == f"Database: {project.db} (from -x db)", (command, result.stderr)


def test_history_json_gives_every_column(project: Project) -> None:
    items_revisions(project)
    assert project.migrate("up").returncode == 0
    [row, *_] = json.loads(project.migrate("history", "--json").stdout)
    with project.connect(read_only=True) as connection:
        columns = [r[0] for r in connection.execute("DESCRIBE migration_history").fetchall()]
    assert sorted(row) == sorted(columns)
    assert row["up_script"] and row["installed_by"] and row["hostname"] and row["tool_version"]
