"""Which columns a SQL expression uses, and the same expression with columns renamed, by DuckDB's parser.

CHECK constraints and expression indexes are kept as SQL text. When a rebuild renames or drops a column,
the expressions that mention it must follow; DuckDB's ``json_serialize_sql`` gives every column reference
with its position in the text, so renaming edits exactly those spans and leaves the rest as written.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import duckdb

from ccdash_alembic.ddl.tabledef import quote

_PREFIX = "SELECT "
_local = threading.local()


def scratch() -> duckdb.DuckDBPyConnection:
    """A private in-memory DuckDB for parsing and type questions, so an error there aborts no transaction."""
    connection = getattr(_local, "connection", None)
    if connection is None:
        connection = _local.connection = duckdb.connect(":memory:")
    return connection


def _tree(expression: str) -> Any:
    text = scratch().execute("SELECT json_serialize_sql($1)", [_PREFIX + expression]).fetchone()
    tree = json.loads(text[0]) if text else {"error": True}
    if tree.get("error"):
        raise ValueError(f"DuckDB cannot parse the expression {expression!r}")
    return tree


def _nodes(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _nodes(value)
    elif isinstance(node, list):
        for value in node:
            yield from _nodes(value)


def _column_refs(expression: str) -> list[tuple[list[str], int, int]]:
    """``(name parts, start, length)`` of every column reference, positions relative to ``expression``."""
    return [
        (node["column_names"], node["query_location"] - len(_PREFIX), node["query_location_length"])
        for node in _nodes(_tree(expression))
        if node.get("class") == "COLUMN_REF"
    ]


def has_subquery(expression: str) -> bool:
    """Whether the expression contains a subquery (DuckDB's TRY() cannot wrap one)."""
    return any(node.get("class") == "SUBQUERY" for node in _nodes(_tree(expression)))


def columns_in(expression: str) -> set[str]:
    """Lower-cased names of the columns an expression reads."""
    return set(ordered_columns(expression))


def ordered_columns(expression: str) -> list[str]:
    """Lower-cased names of the columns an expression reads, in order of first appearance."""
    found: list[str] = []
    for names, _, _ in sorted(_column_refs(expression), key=lambda r: r[1]):
        if names[-1].lower() not in found:
            found.append(names[-1].lower())
    return found


def rename_columns(expression: str, renames: Mapping[str, str]) -> str:
    """The expression with every reference to a column in ``renames`` (lower-cased keys) renamed."""
    result = expression
    for names, start, length in sorted(_column_refs(expression), key=lambda r: r[1], reverse=True):
        new = renames.get(names[-1].lower())
        if new is not None:
            replacement = ".".join([*(quote(n) for n in names[:-1]), quote(new)])
            result = result[:start] + replacement + result[start + length :]
    return result
