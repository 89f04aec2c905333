"""SQL a person wrote (a revision's ``op.execute``, a ``.up.sql`` file), split into statements by DuckDB's parser.

A revision runs in one transaction that this layer opens, records and commits. A ``BEGIN``, ``COMMIT`` or
``ROLLBACK`` inside it would commit half a revision (and whatever a later check would have refused), so
statements that manage the transaction are refused before anything runs.
"""

from __future__ import annotations

import duckdb


class TransactionStatement(ValueError):
    """A statement that manages the transaction the revision already runs in."""


def split(sql: str) -> list[str]:
    """The statements of ``sql``; raises ``TransactionStatement`` for one that manages the transaction, and
    ``duckdb.Error`` for text DuckDB cannot parse. A ``;`` in a string, comment or macro body ends nothing."""
    found = []
    for statement in duckdb.extract_statements(sql):
        text = statement.query.strip().rstrip(";").strip()
        if statement.type == duckdb.StatementType.TRANSACTION:
            raise TransactionStatement(
                f"{text!r} manages the transaction, which the revision already runs in; remove it"
            )
        found.append(text)
    return found
