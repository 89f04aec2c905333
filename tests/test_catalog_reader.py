"""DuckDB's catalog is read in one module, ``ccdash_alembic/ddl/catalog.py``: no other module of the package
queries ``duckdb_tables()``, ``duckdb_columns()``, ``pragma_storage_info()``, ``information_schema`` or any
other catalog function, so a change in what DuckDB's catalog reports is met in one place."""

from __future__ import annotations

import ast
import re

from conftest import REPO

PACKAGE = REPO / "ccdash_alembic"
READER = PACKAGE / "ddl" / "catalog.py"

# A call of a catalog table function (``duckdb_columns()``, ``pragma_database_size()``) or a reference to
# the information schema, in SQL text.
CATALOG_QUERY = re.compile(r"\b(?:duckdb_\w+|pragma_\w+)\s*\(|\binformation_schema\s*\.", re.IGNORECASE)


def _docstrings(tree: ast.Module) -> set[int]:
    """Ids of the docstring nodes: prose may name a catalog function, only code queries one."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def catalog_queries(source: str) -> list[tuple[int, str]]:
    """``(line, text)`` of each string in ``source`` (f-strings too) that queries a catalog function."""
    tree = ast.parse(source)
    skipped = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skipped:
            match = CATALOG_QUERY.search(node.value)
            if match:
                found.append((node.lineno, match.group(0)))
    return sorted(found)


def test_the_scanner_sees_queries_in_plain_and_formatted_strings_but_not_in_docstrings() -> None:
    source = '''
def f(conn, table):
    """Reads ``duckdb_tables()``: prose."""
    conn.execute("SELECT 1 FROM duckdb_tables() WHERE x")
    conn.execute(f"SELECT max(block_id) FROM pragma_storage_info({table})")
    conn.execute("SELECT * FROM information_schema.columns")
    conn.execute("SELECT " "column_name FROM DUCKDB_COLUMNS ()")
    return "duckdb.duckdb_engine"
'''
    assert [text.lower() for _, text in catalog_queries(source)] == [
        "duckdb_tables(",
        "pragma_storage_info(",
        "information_schema.",
        "duckdb_columns (",
    ]


def test_the_catalog_module_is_what_queries_the_catalog() -> None:
    """The scan finds the reader's own queries, so an empty result elsewhere means something."""
    queried = {text.lower() for _, text in catalog_queries(READER.read_text(encoding="utf-8"))}
    for function in ("duckdb_tables(", "duckdb_columns(", "duckdb_indexes(", "duckdb_constraints(", "duckdb_views("):
        assert function in queried


def test_no_other_module_queries_the_catalog() -> None:
    elsewhere = [
        f"{path.relative_to(REPO)}:{line}: {text}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path != READER
        for line, text in catalog_queries(path.read_text(encoding="utf-8"))
    ]
    assert elsewhere == [], "catalog queries outside ddl/catalog.py (add a function there):\n" + "\n".join(elsewhere)
