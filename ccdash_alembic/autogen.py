"""Autogenerate comparisons Alembic does not make on DuckDB: CHECK constraints.

Alembic compares check constraints only by name (the opt-in ``alembic.ext.checkconstraint_byname``), and
DuckDB keeps no names. Here they are compared by expression instead: both sides are rendered by DuckDB's own
parser (``json_deserialize_sql(json_serialize_sql(...))``), so spacing, parentheses and keyword case do not
count as differences. Enabled by the ``ccdash_alembic`` autogenerate plugin, which this project's environment
turns on.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import duckdb
import sqlalchemy as sa
from alembic.util import PriorityDispatchResult

from ccdash_alembic.expressions import scratch

if TYPE_CHECKING:  # Alembic loads this module while it is itself still importing autogenerate
    from alembic.autogenerate.api import AutogenContext
    from alembic.operations.ops import ModifyTableOps

log = logging.getLogger(__name__)


def canonical_expression(expression: str) -> str:
    """DuckDB's own rendering of an expression, or the text itself if DuckDB cannot parse it alone."""
    try:
        row = (
            scratch()
            .execute("SELECT json_deserialize_sql(json_serialize_sql($1))", ["SELECT " + expression])
            .fetchone()
        )
    except duckdb.Error:
        return expression.strip()
    return str(row[0]).removeprefix("SELECT ").strip() if row else expression.strip()


def compare_check_constraints(
    autogen_context: AutogenContext,
    modify_table_ops: ModifyTableOps,
    schema: str | None,
    tname: str,
    conn_table: sa.Table | None,
    metadata_table: sa.Table | None,
) -> PriorityDispatchResult:
    from alembic.operations import ops

    if conn_table is None or metadata_table is None or autogen_context.dialect.name != "duckdb":
        return PriorityDispatchResult.CONTINUE
    assert autogen_context.inspector is not None
    dialect = autogen_context.dialect
    reflected = {
        canonical_expression(ck["sqltext"]): ck for ck in autogen_context.inspector.get_check_constraints(tname, schema)
    }
    wanted: dict[str, Any] = {}
    for const in metadata_table.constraints:
        if isinstance(const, sa.CheckConstraint):
            text = str(const.sqltext.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
            wanted[canonical_expression(text)] = const
    for expression in sorted(set(reflected) - set(wanted)):
        name = reflected[expression]["name"]
        const = sa.CheckConstraint(sa.text(expression), name=name, table=conn_table)
        if autogen_context.run_object_filters(const, name, "check_constraint", True, None):
            modify_table_ops.ops.append(ops.DropConstraintOp.from_constraint(const))
            log.info("Detected removed check constraint %r on %r", expression, tname)
    for expression in sorted(set(wanted) - set(reflected)):
        const = wanted[expression]
        if autogen_context.run_object_filters(const, const.name, "check_constraint", False, None):
            modify_table_ops.ops.append(ops.AddConstraintOp.from_constraint(const))
            log.info("Detected added check constraint %r on %r", expression, tname)
    return PriorityDispatchResult.CONTINUE
