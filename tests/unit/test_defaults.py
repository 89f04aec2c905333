"""Defaults compared by meaning: what DuckDB 1.1, DuckDB 2.x, models and users write for the same default."""

from __future__ import annotations

import pytest

from ccdash_alembic.ddl.defaults import normalize_default


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("CAST('f' AS BOOLEAN)", "false"),
        ("true", "TRUE"),
        ("0", "'0'"),
        ("0.0", "0"),
        ("CAST('7' AS INTEGER)", "7"),
        ("'active'", "CAST('active' AS VARCHAR)"),
        ("'it''s'", "'it''s'"),
        ("now()", "CURRENT_TIMESTAMP"),
        ("(current_timestamp)", "get_current_timestamp()"),
        ("nextval('s')", "nextval('s')"),
    ],
)
def test_equal_defaults(one: str, other: str) -> None:
    assert normalize_default(one) == normalize_default(other)


@pytest.mark.parametrize(
    ("one", "other"),
    [("'x'", "'y'"), ("1", "2"), ("true", "false"), ("now()", "current_date"), ("'1'", "'01a'")],
)
def test_different_defaults(one: str, other: str) -> None:
    assert normalize_default(one) != normalize_default(other)


def test_no_default() -> None:
    assert normalize_default(None) is None
