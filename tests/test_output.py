"""What a run prints: one line per revision by default, the plans and Alembic's lines with ``-v`` (or the
``ccdash_alembic`` logger at DEBUG), warnings and errors always, and nothing ever written into a live progress
bar on a terminal."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

from conftest import ANSI_ESCAPE, BIN, REPO, Project, on_terminal, repo_alembic

from ccdash_alembic.output import step_line

STEP_LINE = re.compile(r"(Applied|Reverted) (\d{14}) (.+) \((\d[\d,]*) ms\)")
BAR_FRAME = re.compile(r"(Migrating|\w+ chunks) +[━╺╸]+ \d+/\d+ .*?(-:--:--|\d+:\d\d:\d\d)\s*")


def _recorded(db: Path) -> list[dict[str, object]]:
    result = repo_alembic("history", "--json", db=db, command="ccdash-migrate")
    assert result.returncode == 0, result.stderr
    rows: list[dict[str, object]] = json.loads(result.stdout)
    return rows


def _said(row: dict[str, object]) -> str:
    ms = row["execution_time_ms"]
    return step_line(str(row["direction"]), str(row["version"]), str(row["name"]), ms if isinstance(ms, int) else None)


def test_a_fresh_up_is_a_line_per_revision(tmp_path: Path) -> None:
    """CCDash's revisions on a new file: the Database line, then one line per revision naming it with the time
    its history row records; none of the plans' SQL."""
    db = tmp_path / "fresh.db"
    result = repo_alembic("up", db=db, command="ccdash-migrate")
    assert result.returncode == 0, result.stderr
    rows = _recorded(db)
    assert len(rows) >= 4 and {row["direction"] for row in rows} == {"up"}
    lines = result.stderr.splitlines()
    assert lines == [f"Database: {db} (from -x db)", *(_said(row) for row in rows)], result.stderr
    for line, row in zip(lines[1:], rows, strict=True):
        found = STEP_LINE.fullmatch(line)
        assert found and found.group(1, 2, 3) == ("Applied", row["version"], row["name"]), line
    assert result.stdout == ""
    assert "CREATE" not in result.stderr and "rebuild change" not in result.stderr

    # Stock alembic, with the repository's alembic.ini, is as quiet.
    stock_db = tmp_path / "stock.db"
    stock = repo_alembic("upgrade", "head", db=stock_db)
    assert stock.returncode == 0, stock.stderr
    assert stock.stderr.splitlines() == [f"Database: {stock_db} (from -x db)", *map(_said, _recorded(stock_db))]


def test_verbose_shows_every_plan_and_alembics_lines(tmp_path: Path) -> None:
    db = tmp_path / "fresh.db"
    result = repo_alembic("-v", "up", db=db, command="ccdash-migrate")
    assert result.returncode == 0, result.stderr
    quiet = 1 + len(_recorded(db))
    lines = result.stderr.splitlines()
    assert len(lines) > quiet + 40, result.stderr
    assert "rebuild change of sessions (DuckDB cannot" in result.stderr
    assert '  CREATE TABLE "sessions" (' in lines and "Running upgrade" in result.stderr
    assert [line for line in lines if STEP_LINE.fullmatch(line)] == list(map(_said, _recorded(db)))

    # Alembic's own -v of current is still its own: the global flag has another name.
    listed = repo_alembic("current", "-v", db=db, command="ccdash-migrate")
    assert listed.returncode == 0 and "Rev: " in listed.stdout, listed.stderr
    short = repo_alembic("-v", "current", db=db, command="ccdash-migrate")
    assert short.returncode == 0 and "Rev: " not in short.stdout and "(head)" in short.stdout, short.stderr


def test_quiet_says_nothing(tmp_path: Path) -> None:
    result = repo_alembic("-q", "up", db=tmp_path / "fresh.db", command="ccdash-migrate")
    assert result.returncode == 0 and result.stderr == "" and result.stdout == "", result.stderr


def test_quiet_leaves_out_the_database_line_of_every_command(project: Project) -> None:
    """``-q`` leaves out the ``Database:`` line of the commands that only read or copy (as it does for ``up``):
    what is left on stderr is what the command was asked for, or nothing."""
    _indexed_items(project)
    assert project.migrate("upgrade", "20250101000001").returncode == 0
    for command in (["status"], ["validate"], ["history"], ["backup"], ["backup", "--list"], ["rehearse"]):
        loud = project.migrate(*command)
        quiet = project.migrate("-q", *command)
        assert "Database: " in loud.stderr, (command, loud.stderr)
        assert "Database: " not in quiet.stderr and quiet.returncode == loud.returncode, (command, quiet.stderr)


def _indexed_items(project: Project) -> None:
    """``items`` with an indexed column, then a type change of that column (DuckDB needs a rebuild)."""
    project.write_revision(
        "20250101000001",
        None,
        """
        op.create_table('items', sa.Column('id', sa.Integer, primary_key=True), sa.Column('code', sa.Integer))
        op.create_index('ix_items_code', 'items', ['code'])
        op.execute('INSERT INTO items SELECT range, range FROM range(20)')
        """,
        message="create items",
    )
    project.write_revision(
        "20250101000002",
        "20250101000001",
        "op.alter_column('items', 'code', type_=sa.BigInteger)",
        "op.alter_column('items', 'code', type_=sa.Integer)",
        message="widen items code",
    )


def test_stock_alembic_shows_plans_when_the_ini_says_debug(project: Project) -> None:
    """The plan is the ``ccdash_alembic`` logger's DEBUG record: quiet with the shipped alembic.ini, shown when
    the project sets that logger to DEBUG; a downgrade says ``Reverted``, after its ``Backup`` line."""
    _indexed_items(project)
    up = project.alembic("upgrade", "head")
    assert up.returncode == 0, up.stderr
    lines = up.stderr.splitlines()
    assert lines[0] == f"Database: {project.db} (from -x db)" and len(lines) == 3, up.stderr
    assert [STEP_LINE.fullmatch(line).group(1, 2, 3) for line in lines[1:]] == [  # type: ignore[union-attr]
        ("Applied", "20250101000001", "create items"),
        ("Applied", "20250101000002", "widen items code"),
    ]

    ini = project.root / "alembic.ini"
    text = ini.read_text()
    section = "[logger_ccdash_alembic]\nlevel = INFO\n"
    assert section in text
    ini.write_text(text.replace(section, "[logger_ccdash_alembic]\nlevel = DEBUG\n"))
    down = project.alembic("downgrade", "-1")
    assert down.returncode == 0, down.stderr
    assert "DEBUG [ccdash_alembic.ddl.impl] rebuild change of items (DuckDB cannot change the type" in down.stderr
    assert down.stderr.splitlines()[1].startswith("Backup: "), down.stderr
    assert STEP_LINE.fullmatch(down.stderr.splitlines()[-1]).group(1, 2, 3) == (  # type: ignore[union-attr]
        "Reverted",
        "20250101000002",
        "widen items code",
    )


def test_warnings_and_errors_still_show(project: Project) -> None:
    """A warning logged during a run (even by the logger whose INFO lines are hidden) and the failure's line
    are printed, after the lines of the steps that ran."""
    project.write_revision(
        "20250101000001",
        None,
        "import logging\nlogging.getLogger('alembic.runtime.migration').warning('items is large: 2000000 rows')",
        message="warns",
    )
    project.write_revision("20250101000002", "20250101000001", "raise RuntimeError('boom')", message="fails")
    result = project.migrate("up")
    assert result.returncode != 0
    lines = result.stderr.splitlines()
    assert "WARNI [alembic.runtime.migration] items is large: 2000000 rows" in lines, result.stderr
    assert STEP_LINE.fullmatch(lines[-2]) and lines[-2].startswith("Applied 20250101000001 warns ("), lines
    assert lines[-1].startswith("error: upgrade of revision 20250101000002 (fails) failed: boom"), lines


def test_step_lines() -> None:
    assert step_line("up", "20261127020000", "add user_preferences table", 14) == (
        "Applied 20261127020000 add user_preferences table (14 ms)"
    )
    assert step_line("down", "a1", "slow", 1234567) == "Reverted a1 slow (1,234,567 ms)"
    assert step_line("stamp", "a1", "base", None) == "Stamped a1 base"
    assert step_line("baseline", "a1", "", 3) == "Adopted a1 (3 ms)"


def _frames(raw: str) -> list[str]:
    """What was drawn, piece by piece: escape codes removed, split at each carriage return and line feed."""
    text = ANSI_ESCAPE.sub("", raw).replace("\x1b[?25l", "").replace("\x1b[?25h", "")
    return [frame for line in text.split("\n") for frame in line.split("\r") if frame.strip()]


def _assert_nothing_glued(raw: str, whole_lines: list[str]) -> None:
    """Every frame of a bar is a bar and nothing else, and each of ``whole_lines`` was drawn as a frame of
    its own (above the bar, not in its line)."""
    frames = _frames(raw)
    bars = [frame for frame in frames if "━" in frame or "╸" in frame]
    assert bars, "no progress bar was drawn: " + repr(raw[:2000])
    for frame in bars:
        assert BAR_FRAME.fullmatch(frame), frame
    for line in whole_lines:
        assert line in frames, (line, frames)


def test_log_lines_never_break_into_the_bar(tmp_path: Path) -> None:
    """On a terminal, with -v so that Alembic's and the planner's log records come while the bar (and the
    chunk bar inside it) is live, every record and every step line is printed above the bar."""
    for verbose in ([], ["-v"]):
        db = tmp_path / f"fresh{len(verbose)}.db"
        env = {k: v for k, v in os.environ.items() if k != "CCDASH_DB_PATH"}
        code, raw = on_terminal([str(BIN / "ccdash-migrate"), "-x", f"db={db}", *verbose, "up"], REPO, env)
        assert code == 0, raw
        said = list(map(_said, _recorded(db)))
        _assert_nothing_glued(raw, said)
        frames = _frames(raw)
        assert any(re.fullmatch(r"\w+ chunks .*", frame) for frame in frames)  # the inner bar was drawn too
        if verbose:
            assert any(frame.startswith("INFO  [alembic.runtime.migration] Running upgrade") for frame in frames)
            assert any(
                frame.startswith("DEBUG [ccdash_alembic.ddl.impl] rebuild change of sessions") for frame in frames
            )


def test_a_name_that_looks_like_markup_is_shown_as_text(project: Project) -> None:
    """A revision's name goes into the bar as text: rich's markup in it neither styles nor breaks the bar."""
    path = project.write_revision("20250101000001", None, message="step")
    path.write_text(path.read_text().replace('"""step"""', '"""close [/b] and [bold red]open"""', 1))
    command = [str(BIN / "ccdash-migrate"), "-x", f"db={project.db}", "up"]
    code, raw = on_terminal(command, project.root, project.env())
    assert code == 0, raw
    assert "Traceback" not in raw
    frames = _frames(raw)
    assert any(frame.startswith("Applied 20250101000001 close [/b] and [bold red]open (") for frame in frames), frames
    assert any("close [/b] and [bold red]open" in frame and "━" in frame for frame in frames), frames


def test_piped_output_has_no_bar(tmp_path: Path) -> None:
    """Piped, a run writes lines only: no bar, no escape code."""
    result = subprocess.run(
        [str(BIN / "ccdash-migrate"), "-x", f"db={tmp_path / 'fresh.db'}", "-v", "up"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stderr and "━" not in result.stderr and "\r" not in result.stderr
