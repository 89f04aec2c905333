"""DuckDB type names, as ``duckdb_columns().data_type`` reports them, turned into SQLAlchemy types.

duckdb-engine reflects through PostgreSQL's catalog emulation, which SQLAlchemy 2.1 cannot query. DuckDB's own
catalog reports every column type as one canonical string (``DECIMAL(18,3)``, ``INTEGER[]``,
``STRUCT(a INTEGER, b VARCHAR)``, ``ENUM('a', 'b')``); this module reads those strings.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

import duckdb
import sqlalchemy as sa
from duckdb_engine import datatypes as ddt
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.sql import sqltypes
from sqlalchemy.types import TypeEngine

from ccdash_alembic.ddl import sqltext
from ccdash_alembic.ddl.expressions import scratch

_SIMPLE: dict[str, Callable[[], TypeEngine[Any]]] = {
    "BOOLEAN": sqltypes.BOOLEAN,
    "TINYINT": ddt.TinyInteger,
    "SMALLINT": sqltypes.SMALLINT,
    "INTEGER": sqltypes.INTEGER,
    "BIGINT": sqltypes.BIGINT,
    "HUGEINT": ddt.HugeInteger,
    "UTINYINT": ddt.UTinyInteger,
    "USMALLINT": ddt.USmallInteger,
    "UINTEGER": ddt.UInteger,
    "UBIGINT": ddt.UBigInteger,
    "UHUGEINT": ddt.UHugeInteger,
    "FLOAT": sqltypes.REAL,
    "DOUBLE": sqltypes.DOUBLE,
    "VARCHAR": sqltypes.VARCHAR,
    "BLOB": sqltypes.BLOB,
    "DATE": sqltypes.DATE,
    "TIME": sqltypes.TIME,
    "TIMESTAMP": sqltypes.TIMESTAMP,
    "TIMESTAMP_S": sqltypes.TIMESTAMP,
    "TIMESTAMP_MS": sqltypes.TIMESTAMP,
    "TIMESTAMP_NS": sqltypes.TIMESTAMP,
    "TIMESTAMP WITH TIME ZONE": lambda: sqltypes.TIMESTAMP(timezone=True),
    "TIME WITH TIME ZONE": lambda: sqltypes.TIME(timezone=True),
    "INTERVAL": pg.INTERVAL,
    "UUID": pg.UUID,
    "JSON": sqltypes.JSON,
    "BIT": pg.BIT,
}


def parse_type(data_type: str, enum_names: dict[tuple[str, ...], str] | None = None) -> TypeEngine[Any]:
    """Return the SQLAlchemy type for a DuckDB type string.

    ``enum_names`` maps a label tuple to the name of the one named ENUM type with those labels, so that a
    column of ``CREATE TYPE mood AS ENUM (...)`` reflects as the named type. Unknown types give a warning and
    ``NullType``, as SQLAlchemy's own dialects do.
    """
    text = data_type.strip()
    if text.endswith("]"):
        element, _, size = text[:-1].rpartition("[")
        dimensions = 1
        inner = parse_type(element, enum_names)
        if isinstance(inner, pg.ARRAY):
            dimensions += inner.dimensions or 1
            inner = inner.item_type
        del size  # DuckDB's fixed-size ARRAY reads back as a list type; the size is not modelled
        return pg.ARRAY(inner, dimensions=dimensions if dimensions > 1 else None)
    simple = _SIMPLE.get(text.upper())
    if simple is not None:
        return simple()
    call = sqltext.parenthesized(text)
    parsed = _parameterized(call[0].upper(), sqltext.split_top_level(call[1]), enum_names) if call else None
    if parsed is not None:
        return parsed
    warnings.warn(f"Did not recognize DuckDB type {data_type!r}", sa.exc.SAWarning, stacklevel=2)
    return sqltypes.NULLTYPE


def _parameterized(name: str, args: list[str], enum_names: dict[tuple[str, ...], str] | None) -> TypeEngine[Any] | None:
    """A type written ``NAME(args)``, or None if the name is not one of them."""
    if name in ("DECIMAL", "NUMERIC") and len(args) == 2:
        return sqltypes.NUMERIC(int(args[0]), int(args[1]))
    if name == "ENUM":
        return _enum(args, enum_names or {})
    if name in ("STRUCT", "UNION"):
        fields = _fields(args, enum_names)
        return ddt.Struct(fields) if name == "STRUCT" else ddt.Union(fields)
    if name == "MAP" and len(args) == 2:
        return ddt.Map(parse_type(args[0], enum_names), parse_type(args[1], enum_names))
    if name == "VARCHAR":
        return sqltypes.VARCHAR()
    return None


def _enum(args: Sequence[str], enum_names: dict[tuple[str, ...], str]) -> TypeEngine[Any]:
    labels = tuple(sqltext.string_literal(a) or a for a in args)
    name = enum_names.get(labels)
    return pg.ENUM(*labels, name=name, create_type=name is not None)


def _fields(args: Sequence[str], enum_names: dict[tuple[str, ...], str] | None) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for arg in args:
        head = arg.split(" ", 1) if not arg.startswith('"') else _quoted_head(arg)
        name = sqltext.identifier(head[0]) or head[0]
        fields[name] = parse_type(head[1], enum_names)
    return fields


def _quoted_head(arg: str) -> list[str]:
    end = 1
    while True:
        end = arg.index('"', end)
        if end + 1 < len(arg) and arg[end + 1] == '"':
            end += 2
            continue
        return [arg[: end + 1], arg[end + 1 :].strip()]


@lru_cache(maxsize=512)
def canonical(type_sql: str) -> str | None:
    """The type DuckDB makes of a type spelling (``FLOAT(53)`` -> ``DOUBLE``, ``TEXT`` -> ``VARCHAR``), or None
    when DuckDB does not know it without context (a named ENUM, say)."""
    try:
        row = scratch().execute(f"SELECT typeof(CAST(NULL AS {type_sql}))").fetchone()
    except duckdb.Error:
        return None
    return str(row[0]) if row else None
