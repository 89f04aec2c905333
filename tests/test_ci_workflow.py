"""The CI workflow docs/ccdash-adoption.md shows: it is the repository's file, and its steps pass as GitHub
would run them."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import forked_commands
import yaml
from conftest import BIN, REPO
from docblocks import block

WORKFLOW = REPO / ".github" / "workflows" / "migrations.yml"


def test_the_docs_show_the_workflow_file() -> None:
    assert block("docs/ccdash-adoption.md", "workflow", "yaml") == WORKFLOW.read_text()


def test_workflow_steps_pass(tmp_path: Path, duckdb11_python: Path) -> None:
    """Every ``run`` step, in order, with bash as Actions runs it (``-eo pipefail``), in this environment (so
    the install step, which made this environment, is the one step not run again). The step that makes a
    DuckDB 1.1.3 environment finds a copy of the suite's (a runner's pip cache, in effect), so it runs whole
    without downloading DuckDB again.

    The steps call ``ccdash-migrate`` dozens of times: each call runs in a forked child of the suite's
    pre-imported process (``forked_commands.on_path``), a process of its own with the step's arguments, folder
    and environment."""
    steps = yaml.safe_load(WORKFLOW.read_text())["jobs"]["migrations"]["steps"]
    runs = [s for s in steps if "run" in s]
    assert runs[0]["name"] == "Install"
    home = tmp_path / "home"
    home.mkdir()
    shutil.copytree(duckdb11_python.parents[1], tmp_path / "duckdb11", symlinks=True)
    stand_ins = tmp_path / "bin"
    stand_ins.mkdir()
    environment = forked_commands.on_path(
        stand_ins,
        {
            **{k: v for k, v in os.environ.items() if k != "CCDASH_DB_PATH"},
            "HOME": str(home),
            "RUNNER_TEMP": str(tmp_path),
            "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        },
    )
    for step in runs[1:]:
        result = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
            cwd=REPO,
            env=environment,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert result.returncode == 0, f"{step['name']}:\n{result.stdout}\n{result.stderr}"
    fixtures = sorted(p.name for p in (tmp_path / "fixtures").glob("*.db"))
    assert len(fixtures) > 9  # nine schema generations and the odd shapes
    refused = result.stdout.count("refused, as designed")
    assert refused == 1 and "V_migrate_tool_first.db is not adoptable" in result.stdout
    assert not (home / ".ccdash").exists()  # every step named its database
