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
from conftest import BIN, Project, error_line, items_revisions, new_project

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
    """A forked ``up`` holds the database's lock as a fresh one does: a fresh process started while the forked
    run is inside its revision is told the file is held, and the revision is applied once."""
    inside, release = project.root / "inside", project.root / "release"
    project.write_revision(
        "20250101000001",
        None,
        upgrade=f"op.execute('CREATE TABLE ran (n INTEGER)')\nPath({str(inside)!r}).touch()\n"
        f"deadline = time.monotonic() + 60\n"
        f"while not Path({str(release)!r}).exists() and time.monotonic() < deadline:\n"
        "    time.sleep(0.02)\nop.execute('INSERT INTO ran VALUES (1)')",
        header="import time\nfrom pathlib import Path",
    )
    with ThreadPoolExecutor(1) as pool:
        forked = pool.submit(project.migrate, "up")
        deadline = time.monotonic() + 120
        while not inside.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        other = _fresh(project, "ccdash-migrate", ["-x", "lock_timeout=0", "up"])
        release.touch()
        assert forked.result().returncode == 0, forked.result().stderr
    assert other.returncode == ExitCode.LOCKED, other.stderr
    assert "is in use" in error_line(other) or "held" in error_line(other), error_line(other)
    assert project.rows("SELECT n FROM ran") == [(1,)]


@pytest.mark.parametrize("variable", ["PYTHONPATH", "PYTHONWARNINGS"])
def test_a_change_to_how_python_starts_runs_a_real_process(project: Project, variable: str) -> None:
    """A fork cannot apply what Python reads before any code runs, so such a request starts a real process:
    ``PYTHONPATH`` makes it import the project's ``sitecustomize``."""
    value = {"PYTHONPATH": str(project.root), "PYTHONWARNINGS": "ignore"}[variable]
    (project.root / "sitecustomize.py").write_text("import sys\nprint('started fresh', file=sys.stderr)\n")
    result = forked_commands.run("alembic", ["--help"], project.root, {**project.env(), variable: value}, 60)
    assert result.returncode == 0 and "usage: alembic" in result.stdout
    assert ("started fresh" in result.stderr) == (variable == "PYTHONPATH")


def test_a_shell_script_finds_commands_that_end_as_fresh_ones_do(tmp_path: Path) -> None:
    """The ``ccdash-migrate`` a script finds first on the PATH ``on_path`` gives (a forwarder to a forked
    child) writes what the real one writes and exits with its code, as the script sees them."""
    script = (
        'command -v ccdash-migrate\nccdash-migrate -x db="$DB" up\nccdash-migrate -x db="$DB" status --json\n'
        'ccdash-migrate -x db="$DB" -x lock_timeout=abc up || echo "exit $?"\n'
    )
    results = {}
    for way in ("fresh", "forked"):
        project = _project(tmp_path / way)
        env = {**project.env(), "DB": str(project.db), "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
        if way == "forked":
            (tmp_path / "bin").mkdir()
            env = forked_commands.on_path(tmp_path / "bin", env)
        ran = subprocess.run(["bash", "-c", script], cwd=project.root, env=env, capture_output=True, text=True)
        found, _, rest = ran.stdout.partition("\n")
        results[way] = (ran.returncode, found, _same(rest, tmp_path / way), _same(ran.stderr, tmp_path / way))
    assert results["fresh"][1] == str(BIN / "ccdash-migrate")
    assert results["forked"][1] == str(tmp_path / "bin" / "ccdash-migrate")
    assert results["forked"][0] == results["fresh"][0] == 0
    assert results["forked"][2:] == results["fresh"][2:]
    assert "exit " in results["forked"][2]
