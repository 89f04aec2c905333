"""The project as a whole: layout, set-up commands, entry points, stock commands from the root, lint."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from conftest import BIN, REPO
from docblocks import block


def _readme_command(label: str) -> str:
    return block("README.md", label, "sh").strip()


def test_layout() -> None:
    for path in (
        "pyproject.toml",
        "alembic.ini",
        "env.py",
        "script.py.mako",
        "versions",
        "ccdash_alembic",
        "ccdash_alembic/ccdash",
        "tests",
        "benchmarks",
        "README.md",
        ".ci/run",
    ):
        assert (REPO / path).exists(), path
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["name"] == "ccdash-alembic"
    assert project["scripts"]["ccdash-migrate"] == "ccdash_alembic.runtime.cli:main"
    assert project["entry-points"]["alembic.plugins"] == {"ccdash_alembic": "ccdash_alembic.ddl.plugin"}


def test_ci_runs_exactly_the_readme_test_command() -> None:
    ci = [line for line in (REPO / ".ci/run").read_text().splitlines() if line and not line.startswith("#")]
    assert ci[-1] == _readme_command("test")
    assert "alembic upgrade head" in _readme_command("run")


def test_entry_points_are_installed() -> None:
    plugins = {ep.name: ep.value for ep in metadata.entry_points(group="alembic.plugins")}
    assert plugins.get("ccdash_alembic") == "ccdash_alembic.ddl.plugin"
    scripts = {ep.name: ep.value for ep in metadata.entry_points(group="console_scripts")}
    assert scripts.get("ccdash-migrate") == "ccdash_alembic.runtime.cli:main"


def test_plain_alembic_finds_the_duckdb_implementation_through_the_plugin(tmp_path: Path) -> None:
    """No import of ccdash_alembic: Alembic's plugin loading alone makes DuckDB work."""
    code = (
        "import sqlalchemy as sa\n"
        "from alembic.migration import MigrationContext\n"
        f"engine = sa.create_engine('duckdb:///{tmp_path / 'p.db'}')\n"
        "with engine.connect() as c:\n"
        "    impl = MigrationContext.configure(c).impl\n"
        "    print(type(impl).__name__, impl.transactional_ddl, type(engine.dialect).__module__)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["DuckDBImpl", "True", "ccdash_alembic.ddl.dialect"]


def test_stock_commands_from_the_repository_root(tmp_path: Path) -> None:
    db = tmp_path / "root.db"
    revisions = sorted(p.name.split("_", 1)[0] for p in (REPO / "versions").glob("*.py"))

    def alembic(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "alembic"), "-x", f"db={db}", *args], cwd=REPO, capture_output=True, text=True, timeout=300
        )

    for command in (["upgrade", "head"], ["current"], ["downgrade", "-1"], ["stamp", "head"]):
        result = alembic(*command)
        if command == ["downgrade", "-1"] and not revisions:
            continue  # nothing to step back from in an empty versions/
        assert result.returncode == 0, (command, result.stderr)
        assert f"Database: {db} (from -x db)" in result.stderr
    history = alembic("history")
    assert history.returncode == 0, history.stderr
    assert sorted(set(re.findall(r"\b(\d{14})\b", history.stdout))) == revisions
    sql = alembic("upgrade", "head", "--sql")
    assert sql.returncode == 0, sql.stderr
    for revision in revisions:
        assert "INSERT INTO migration_history" in sql.stdout and revision in sql.stdout


def test_ruff_and_mypy_are_clean() -> None:
    ruff = subprocess.run([sys.executable, "-m", "ruff", "check", "."], cwd=REPO, capture_output=True, text=True)
    assert ruff.returncode == 0, ruff.stdout
    mypy = subprocess.run([sys.executable, "-m", "mypy"], cwd=REPO, capture_output=True, text=True)
    assert mypy.returncode == 0, mypy.stdout


def test_no_function_is_above_complexity_ten() -> None:
    """Every function of the package reads in one sitting: radon's cyclomatic complexity at most 10 (its
    grades A and B; ``radon cc -s -n C ccdash_alembic`` lists nothing)."""
    from radon.complexity import cc_visit

    package = REPO / "ccdash_alembic"
    sources = sorted(package.rglob("*.py"))
    assert len(sources) > 40
    found = [
        f"{path.relative_to(REPO)}:{block.lineno} {block.name} {block.complexity}"
        for path in sources
        for block in cc_visit(path.read_text())
        if block.complexity > 10
    ]
    assert found == []


def test_the_complexity_check_finds_a_complex_function() -> None:
    from radon.complexity import cc_visit

    branches = "\n".join(f"    if x == {i}:\n        return {i}" for i in range(11))
    (block,) = cc_visit(f"def f(x):\n{branches}\n    return -1\n")
    assert block.complexity == 12
