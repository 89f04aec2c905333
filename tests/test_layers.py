"""The layers: the DuckDB layer and the run layer know nothing of CCDash, which is one application package.

Every module of ``ccdash_alembic`` outside ``ccdash_alembic/ccdash/`` is generic, except the entry points that
choose CCDash's application for CCDash's installed environment (``cli.py``, ``api.py``). Generic modules
import nothing from ``ccdash_alembic.ccdash``, not even at run time, and name none of CCDash's things (its
variables, its default path, its name in a message).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from conftest import REPO

from ccdash_alembic.ccdash.errors import NOT_CCDASH
from ccdash_alembic.errors import ExitCode

PACKAGE = REPO / "ccdash_alembic"
# they pick CCDash's application for CCDash's installed environment
ENTRY_POINTS = {PACKAGE / "runtime" / "cli.py", PACKAGE / "runtime" / "api.py"}
APPLICATION = "ccdash_alembic.ccdash"
RUN_LAYER = "ccdash_alembic.runtime"


def generic_modules() -> list[Path]:
    """Every module outside ccdash/ (the layers and the modules they share), the entry points aside."""
    return sorted(
        p for p in PACKAGE.rglob("*.py") if "ccdash" not in p.relative_to(PACKAGE).parts and p not in ENTRY_POINTS
    )


def imports_of(path: Path, package: str) -> list[str]:
    """Every import of ``package`` in a module, however spelt (absolute, ``from ccdash_alembic import x``,
    relative), at any depth (inside functions too)."""
    found = []
    parent, _, last = package.rpartition(".")
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name == package or a.name.startswith(package + ".")]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:  # relative: resolve against the module's own package
                base = ".".join(("ccdash_alembic", *path.relative_to(PACKAGE).parts[:-1])).split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, *([module] if module else [])])
            if module == package or module.startswith(package + "."):
                found.append(module)
            elif module == parent:
                found += [f"{module}.{a.name}" for a in node.names if a.name == last]
    return found


def ccdash_imports(path: Path) -> list[str]:
    return imports_of(path, APPLICATION)


def ccdash_words(path: Path) -> list[str]:
    """String constants of a module (docstrings aside) that name CCDash or its variables and paths."""
    tree = ast.parse(path.read_text(), str(path))
    documentation = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        f"{path.name}:{node.lineno}: {node.value!r}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in documentation
        and any(word in node.value for word in ("CCDash", "CCDASH", ".ccdash", "ccdash.db"))
    ]


def test_generic_modules_import_nothing_of_ccdash() -> None:
    assert len(generic_modules()) > 30  # the scan sees the package
    assert {p.name: ccdash_imports(p) for p in generic_modules() if ccdash_imports(p)} == {}
    # the scan finds such imports where they are allowed: the command line picks CCDash's application
    assert ccdash_imports(PACKAGE / "runtime" / "cli.py")


def test_the_duckdb_layer_imports_nothing_from_the_run_layer() -> None:
    """Layers import only downward: ddl/ (Alembic on DuckDB) is usable without runtime/ (the run layer)."""
    ddl = sorted((PACKAGE / "ddl").glob("*.py"))
    assert len(ddl) > 10
    assert {p.name: imports_of(p, RUN_LAYER) for p in ddl if imports_of(p, RUN_LAYER)} == {}
    assert imports_of(PACKAGE / "runtime" / "database.py", "ccdash_alembic.ddl")  # the scan sees imports


def test_generic_modules_name_nothing_of_ccdash() -> None:
    assert [word for path in generic_modules() for word in ccdash_words(path)] == []
    assert ccdash_words(PACKAGE / "ccdash" / "application.py")  # and finds them where they belong


def test_importing_the_generic_layers_loads_no_ccdash_module() -> None:
    """At run time too: no import hidden in a string or a function that the scan above could miss."""
    modules = [
        ".".join(("ccdash_alembic", *p.relative_to(PACKAGE).with_suffix("").parts))
        for p in generic_modules()
        if p.stem != "__init__"
    ]
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        f"print(sorted(m for m in sys.modules if m.startswith({APPLICATION + '.'!r}) or m == {APPLICATION!r}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_exit_code_7_is_ccdash_s_alone() -> None:
    assert NOT_CCDASH == 7
    assert NOT_CCDASH not in {int(code) for code in ExitCode}
    assert "NOT_CCDASH" not in ExitCode.__members__
