"""The unit tier: the planner, reflection and parsing, in this process.

Everything collected under this folder is marked ``unit``, so ``pytest tests/unit`` and ``pytest -m unit`` run
the same tests. They may use DuckDB in memory or in a temporary folder, never another process: starting one
fails the test, which keeps the tier fast enough to run on every edit.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import NoReturn

import pytest

HERE = Path(__file__).parent


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark before ``-m`` selects (hence ``tryfirst``); the hook sees every collected item, so only this
    folder's are marked."""
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.unit)


@pytest.fixture(autouse=True)
def _no_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: subprocess.Popen[bytes], command: object, *args: object, **kwargs: object) -> NoReturn:
        raise AssertionError(f"a unit test started a process ({command!r}); it belongs in the subprocess tier")

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse)
