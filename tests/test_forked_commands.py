"""The forked command runner the suite uses (tests/forked_commands.py) gives what a fresh process gives.

Each case runs one command both ways, a real ``alembic``/``ccdash-migrate`` process and a forked child of
the pre-imported server, and compares exit code, stdout and stderr; the rest check that a forked command is a
process of its own (its own pid, environment and folder; a lock it holds is seen by another process) and that
a request Python would start differently falls back to a real process.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import forked_commands
import pytest
from conftest import BIN, Project, counting_revisions, error_line, items_revisions, new_project

from ccdash_alembic.errors import ExitCode


def _fresh(project: Project, program: str, args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / program), "-x", f"db={project.db}", *args],
        cwd=project.root,
        env=project.env(),
        capture_output=True,
        text=True,
        timeout=300,
    )


def _forked(project: Project, program: str, args: list[str]) -> subprocess.CompletedProcess[str]:
    return forked_commands.run(program, ["-x", f"db={project.db}", *args], project.root, project.env(), 300)


CASES = [
    ("alembic", ["upgrade", "head"]),  # progress and rows written
    ("alembic", ["current"]),
    ("ccdash-migrate", ["status", "--json"]),
    ("ccdash-migrate", ["down"]),
    ("alembic", ["upgrade", "nosuchrevision"]),  # Alembic's own error, exit 1
    ("ccdash-migrate", ["-x", "lock_timeout=abc", "up"]),  # this package's one-line error, its exit code
    ("alembic", ["no-such-command"]),  # argparse's usage text, exit 2
]


def test_a_forked_command_ends_as_a_fresh_process_does(tmp_path: Path) -> None:
    fresh_project = _project(tmp_path / "fresh")
    forked_project = _project(tmp_path / "forked")
    for program, args in CASES:
        fresh = _fresh(fresh_project, program, args)
        forked = _forked(forked_project, program, args)
        assert forked.returncode == fresh.returncode, (program, args, fresh.stderr, forked.stderr)
        assert _same(forked.stdout, tmp_path / "forked") == _same(fresh.stdout, tmp_path / "fresh"), (program, args)
        assert _same(forked.stderr, tmp_path / "forked") == _same(fresh.stderr, tmp_path / "fresh"), (program, args)
    assert 0 not in {_forked(forked_project, program, args).returncode for program, args in CASES[-3:]}


def _project(root: Path) -> Project:
    root.mkdir()
    project = new_project(root)
    items_revisions(project)
    return project


def _same(text: str, folder: Path) -> str:
    """The text with what differs between two projects (their folders, timings) taken out."""
    text = text.replace(str(folder), "<folder>")
    text = re.sub(r"\d+(\.\d+)? ?(ms|s)\b", "<time>", text)
    text = re.sub(r'("\w*(time|_at)\w*": )("[^"]*"|[\d.]+)', r"\1<time>", text)
    text = re.sub(r"\d{8}T\d{6}\.\d+Z", "<when>", text)  # backup names
    return re.sub(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(\.\d+)?", "<when>", text)


def test_a_forked_command_is_a_process_of_its_own(project: Project) -> None:
    """The revision a forked ``upgrade`` runs sees its own pid, the project's folder, the environment it was
    given, an empty stdin; the test's process keeps its own environment."""
    probe = project.root / "probe.txt"
    project.write_revision(
        "20250101000001",
        None,
        upgrade=f"seen = os.getpid(), os.getcwd(), os.environ.get('PROBE'), sys.stdin.read()\n"
        f"Path({str(probe)!r}).write_text(repr(seen))",
        header="import os, sys\nfrom pathlib import Path",
    )
    result = forked_commands.run(
        "alembic", ["-x", f"db={project.db}", "upgrade", "head"], project.root, {**project.env(), "PROBE": "seen"}, 120
    )
    assert result.returncode == 0, result.stderr
    pid, folder, seen, stdin = eval(probe.read_text())
    assert pid != os.getpid() and folder == str(project.root) and seen == "seen" and stdin == ""
    assert "PROBE" not in os.environ


def test_a_run_in_a_forked_command_holds_the_file_against_other_processes(project: Project) -> None:
    """A forked ``up`` holds the database's lock as a fresh one does: a fresh process started meanwhile is
    told who holds the file, and each revision is applied once."""
    counting_revisions(project)
    with ThreadPoolExecutor(1) as pool:
        forked = pool.submit(project.migrate, "up")
        time.sleep(0.6)  # the forked run is inside its first revision (0.5 s sleep each, three of them)
        other = _fresh(project, "ccdash-migrate", ["-x", "lock_timeout=0", "up"])
        assert forked.result().returncode == 0, forked.result().stderr
    assert other.returncode == ExitCode.LOCKED, other.stderr
    assert "ccdash-migrate" in error_line(other) or "alembic" in error_line(other) or "python" in error_line(other)
    assert project.rows("SELECT revision FROM ran ORDER BY 1") == [("1",), ("2",), ("3",)]


@pytest.mark.parametrize("variable", ["PYTHONPATH", "PYTHONWARNINGS"])
def test_a_change_to_how_python_starts_runs_a_real_process(project: Project, variable: str) -> None:
    """A fork cannot apply what Python reads before any code runs, so such a request starts a real process:
    ``PYTHONPATH`` makes it import the project's ``sitecustomize``."""
    value = {"PYTHONPATH": str(project.root), "PYTHONWARNINGS": "ignore"}[variable]
    (project.root / "sitecustomize.py").write_text("import sys\nprint('started fresh', file=sys.stderr)\n")
    result = forked_commands.run("alembic", ["--help"], project.root, {**project.env(), variable: value}, 60)
    assert result.returncode == 0 and "usage: alembic" in result.stdout
    assert ("started fresh" in result.stderr) == (variable == "PYTHONPATH")
