"""Column defaults compared by meaning, not spelling.

The same default is spelled differently by the model (``sa.text("false")``), by DuckDB 2.x (``false``), by
DuckDB 1.1, which wrote every CCDash file (``CAST('f' AS BOOLEAN)``), and by the user (``'0'`` for ``0``).
A constant default is therefore evaluated by DuckDB (on a private in-memory database) and compared by value;
one that changes at each use (``now()``, ``nextval(...)``) is compared by its folded spelling.
"""

from __future__ import annotations

import re

import duckdb

from ccdash_alembic.ddl import sqltext
from ccdash_alembic.ddl.expressions import scratch

_NOW_SPELLINGS = {"now()", "current_timestamp", "get_current_timestamp()", "transaction_timestamp()"}
_VOLATILE = re.compile(
    r"now|current_|nextval|currval|random|uuid|today|timestamp\s*\(|transaction_timestamp", re.IGNORECASE
)


def normalize_default(text: str | None) -> str | None:
    """A canonical form of a column default, so equal defaults compare equal."""
    if text is None:
        return None
    if not _VOLATILE.search(text):
        value = _evaluate(text)
        if value is not None:
            return value
    return _fold(text)


def _evaluate(text: str) -> str | None:
    try:
        row = scratch().execute(f"SELECT CAST(({text}) AS VARCHAR)").fetchone()
    except duckdb.Error:
        return None
    if row is None or row[0] is None:
        return "NULL"
    value = str(row[0])
    return repr(float(value)) if _is_number(value) else "'" + value.replace("'", "''") + "'"


def _fold(text: str) -> str:
    previous = None
    value = text.strip()
    while value != previous:
        previous = value
        value = sqltext.strip_outer_parens(value)
        value = sqltext.unwrap_cast(value) or value
    value = value.lower()
    return "current_timestamp" if value in _NOW_SPELLINGS else value


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
