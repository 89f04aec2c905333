"""Alembic's own third-party dialect suite, run against DuckDB on a real file.

The suite needs SQLAlchemy's pytest plugin, which takes over a whole pytest session, so it runs as a pytest
process of its own (tests/alembic_suite, its own setup.cfg and conftest), in a scratch folder.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

SUITE = Path(__file__).parent / "alembic_suite"


def test_alembic_dialect_suite_passes_on_duckdb(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-c",
            str(SUITE / "setup.cfg"),
            "--rootdir",
            str(SUITE),
            "--dburi",
            f"duckdb:///{tmp_path / 'suite.db'}",
            "-q",
            "-rA",
            str(SUITE / "test_suite.py"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
    )
    summary = result.stdout.strip().splitlines()[-1]
    counts = {kind: int(n) for n, kind in re.findall(r"(\d+) (passed|failed|skipped|error)", summary)}
    assert counts.get("failed", 0) == 0 and counts.get("error", 0) == 0, result.stdout[-5000:]
    assert counts["passed"] >= 86, summary

    # Every class of the suite is run: none is left out by a class requirement without a word.
    classes = set(re.findall(r"test_suite\.py::(\w+?)_duckdb", result.stdout))
    assert {"IncludeHooksTest", "AutogenerateIdentityTest", "AutogenerateForeignKeysTest"} <= classes, classes
    # Every skip says what DuckDB lacks (the reasons in alembic_suite/requirements.py), never a bare "skip".
    reasons = re.findall(r"^SKIPPED \[\d+\] .*? : (.*)$", result.stdout, re.MULTILINE)
    assert len(reasons) == counts["skipped"], result.stdout[-5000:]
    assert all(reason.startswith("DuckDB ") for reason in reasons), sorted(set(reasons))
    # Constraint names come back (the layer keeps them): the tests that drop or filter keys by name run.
    for name in ("test_remove_composite_fk", "test_casing_convention_changed_so_put_drops_first", "test_change_fk"):
        assert re.search(rf"^PASSED .*::{name}\b", result.stdout, re.MULTILINE), name
