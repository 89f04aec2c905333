"""Autogenerate on DuckDB: CHECK constraints compared, and unnamed dropped constraints named as DuckDB names them.

Alembic compares check constraints only by name (the opt-in ``alembic.ext.checkconstraint_byname``), and
a check created outside this layer (or unnamed) has only DuckDB's generated name. Here they are compared by
expression instead: both sides are rendered by DuckDB's own
parser (``json_deserialize_sql(json_serialize_sql(...))``), so spacing, parentheses and keyword case do not
count as differences. Enabled by the ``ccdash_alembic`` autogenerate plugin, which this project's environment
turns on.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from alembic.util import PriorityDispatchResult

from ccdash_alembic.ddl.constraint_names import canonical_expression, check_sql
from ccdash_alembic.ddl.expressions import ordered_columns

if TYPE_CHECKING:  # Alembic loads this module while it is itself still importing autogenerate
    from alembic.autogenerate.api import AutogenContext
    from alembic.operations.ops import ModifyTableOps

log = logging.getLogger(__name__)


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
    reflected = _reflected_checks(autogen_context, tname, schema)
    wanted = _model_checks(metadata_table, autogen_context.dialect)
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


def _reflected_checks(autogen_context: AutogenContext, tname: str, schema: str | None) -> dict[str, Any]:
    """The database's check constraints as reflected, by their canonical expression."""
    assert autogen_context.inspector is not None
    found = autogen_context.inspector.get_check_constraints(tname, schema)
    return {canonical_expression(ck["sqltext"]): ck for ck in found}


def _model_checks(metadata_table: sa.Table, dialect: Any) -> dict[str, sa.CheckConstraint]:
    """The model's check constraints, by their canonical expression."""
    checks = [c for c in metadata_table.constraints if isinstance(c, sa.CheckConstraint)]
    return {canonical_expression(check_sql(c, dialect)): c for c in checks}


_SUFFIXES: dict[type[sa.Constraint], str] = {
    sa.UniqueConstraint: "key",
    sa.PrimaryKeyConstraint: "pkey",
    sa.ForeignKeyConstraint: "fkey",
    sa.CheckConstraint: "check",
}


def duckdb_constraint_name(const: sa.Constraint, dialect: Any) -> str | None:
    """The name DuckDB will report for a constraint: ``<table>_<columns, lower-cased>_<key|pkey|fkey|check>``,
    a foreign key's referred columns after its own. None when it cannot be told (an expression DuckDB cannot
    parse alone)."""
    table = const.table.name
    suffix = next((suffix for kind, suffix in _SUFFIXES.items() if isinstance(const, kind)), None)
    columns = _named_after(const, dialect)
    if not columns:  # a bare constraint known by name only (written by hand, not from the model)
        return None
    return f"{table}_{'_'.join(c.lower() for c in columns)}_{suffix}"


def _named_after(const: sa.Constraint, dialect: Any) -> list[str] | None:
    """The columns DuckDB names a constraint after, in order; None for a check it cannot parse alone."""
    if isinstance(const, sa.ForeignKeyConstraint):
        return [e.parent.name for e in const.elements] + [e.column.name for e in const.elements]
    if isinstance(const, sa.CheckConstraint):
        try:
            return ordered_columns(check_sql(const, dialect))
        except ValueError:
            return None
    if isinstance(const, sa.UniqueConstraint | sa.PrimaryKeyConstraint):
        return [c.name for c in const.columns]
    return None


def name_dropped_constraints(context: Any, revision: Any, directives: list[Any]) -> None:
    """``process_revision_directives`` hook: give every ``op.drop_constraint`` autogenerate writes for a
    constraint without a name (the downgrade of one the model adds unnamed) the name DuckDB will give it, which
    is how the revision finds it. A named one keeps its name: the layer keeps the names constraints are created
    with (``constraint_names``), and reflection reports them."""
    from alembic.operations import ops

    def visit(container: Any) -> None:
        for operation in getattr(container, "ops", []):
            if isinstance(operation, ops.DropConstraintOp) and operation.constraint_name is None:
                name = duckdb_constraint_name(operation.to_constraint(), context.dialect)
                if name is not None:
                    operation.constraint_name = name
            visit(operation)

    for directive in directives:
        visit(directive.upgrade_ops)
        visit(directive.downgrade_ops)
