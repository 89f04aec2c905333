"""Alembic's implementation class for DuckDB.

Alembic looks an implementation up by dialect name and fails with ``KeyError: 'duckdb'`` when there is none;
defining this class (``__dialect__ = "duckdb"``) registers it. DuckDB runs DDL inside transactions, so
``transactional_ddl`` is on and each revision can be rolled back as a whole.

What differs from Alembic's default:

- tables get their autoincrement sequences created before and dropped after them (see ``dialect``);
- autogenerate compares what DuckDB can keep: it keeps no constraint names, so reflected unique and foreign
  key constraints are matched to the model by their columns; it forgets VARCHAR lengths and spells defaults
  its own way (``CAST('x' AS VARCHAR)``, ``current_timestamp``), so those are normalised before comparing.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic.ddl.impl import DefaultImpl
from sqlalchemy.sql import ddl as sa_ddl

from ccdash_alembic import sqltext
from ccdash_alembic.dialect import column_sequence, implicit_sequences
from ccdash_alembic.types import canonical

_NOW_SPELLINGS = {"now()", "current_timestamp", "get_current_timestamp()", "transaction_timestamp()"}


def normalize_default(text: str | None) -> str | None:
    """A canonical spelling of a column default, so equal defaults compare equal."""
    if text is None:
        return None
    previous = None
    value = text.strip()
    while value != previous:
        previous = value
        value = sqltext.strip_outer_parens(value)
        value = sqltext.unwrap_cast(value) or value
    literal = sqltext.string_literal(value)
    if literal is not None:
        value = literal
        if not _is_number(literal):
            return "'" + literal.replace("'", "''") + "'"
    value = value.lower()
    if value in _NOW_SPELLINGS:
        return "current_timestamp"
    return repr(float(value)) if _is_number(value) else value


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _is_plain_string(default: object) -> bool:
    return isinstance(default, sa.DefaultClause) and isinstance(default.arg, str)


class DuckDBImpl(DefaultImpl):
    """Alembic on DuckDB."""

    __dialect__ = "duckdb"
    transactional_ddl = True

    def create_table(self, table: sa.Table, **kw: Any) -> None:
        for sequence in filter(None, map(column_sequence, table.columns)):
            self._exec(sa_ddl.CreateSequence(sequence, if_not_exists=True))
        super().create_table(table, **kw)

    def drop_table(self, table: sa.Table, **kw: Any) -> None:
        owned = self._owned_sequences(table)
        super().drop_table(table, **kw)
        for sequence in owned:
            self._exec(sa_ddl.DropSequence(sequence, if_exists=True))

    def _owned_sequences(self, table: sa.Table) -> list[sa.Sequence]:
        """Sequences created for the table's autoincrement keys, which go when the table goes.

        ``op.drop_table("t")`` passes a table without columns, so online the catalog says which column
        defaults use a ``<table>_<column>_seq`` sequence; offline only the given columns can tell.
        """
        if self.as_sql or self.connection is None:
            return implicit_sequences(table)
        rows = self.connection.execute(
            sa.text(
                "SELECT column_name, column_default FROM duckdb_columns()"
                " WHERE table_name = :table AND schema_name = coalesce(:schema, current_schema())"
                " AND database_name = current_database()"
            ),
            {"table": table.name, "schema": table.schema},
        )
        owned = []
        for column, default in rows:
            name = f"{table.name}_{column}_seq"
            if default and default.lower().startswith("nextval(") and name in default:
                owned.append(sa.Sequence(name, schema=table.schema))
        return owned

    def compare_type(self, inspector_column: sa.Column[Any], metadata_column: sa.Column[Any]) -> bool:
        """Compare the types DuckDB makes of both spellings, where it can say; else Alembic's token comparison."""
        compile_type = self.dialect.type_compiler_instance.process
        try:
            inspected = canonical(compile_type(inspector_column.type))
            expected = canonical(compile_type(metadata_column.type))
        except sa.exc.CompileError:
            inspected = expected = None
        if inspected is not None and expected is not None:
            return inspected != expected
        return bool(super().compare_type(inspector_column, metadata_column))

    def compare_server_default(
        self,
        inspector_column: sa.Column[Any],
        metadata_column: sa.Column[Any],
        rendered_metadata_default: str | None,
        rendered_inspector_default: str | None,
    ) -> bool:
        if rendered_metadata_default is not None and _is_plain_string(metadata_column.server_default):
            # server_default="x" is a value, which DDL quotes; rendered for comparison it is the bare text.
            rendered_metadata_default = "'" + rendered_metadata_default.replace("'", "''") + "'"
        return normalize_default(rendered_inspector_default) != normalize_default(rendered_metadata_default)

    def autogen_column_reflect(self, inspector: Any, table: sa.Table, column_info: dict[str, Any]) -> None:
        """Hide the ``nextval`` default of an autoincrement key: the model states it as autoincrement."""
        default = column_info.get("default")
        implicit = f"{table.name}_{column_info['name']}_seq"
        if default and default.lower().startswith("nextval(") and implicit in default:
            column_info["default"] = None
            column_info["autoincrement"] = True

    def correct_for_autogen_constraints(
        self,
        conn_uniques: set[sa.UniqueConstraint],
        conn_indexes: set[sa.Index],
        metadata_unique_constraints: set[sa.UniqueConstraint],
        metadata_indexes: set[sa.Index],
    ) -> None:
        """Give reflected unique constraints the model's names where the columns match.

        DuckDB reports generated names (``t_a_b_key``); without this every named unique constraint in a model
        would look dropped and re-added.
        """
        by_columns = {tuple(c.name for c in uq.columns): uq.name for uq in metadata_unique_constraints}
        for uq in conn_uniques:
            name = by_columns.get(tuple(c.name for c in uq.columns))
            if name is not None:
                uq.name = name

    def correct_for_autogen_foreignkeys(
        self, conn_fks: set[sa.ForeignKeyConstraint], metadata_fks: set[sa.ForeignKeyConstraint]
    ) -> None:
        """Give reflected foreign keys the model's names where columns and target match (DuckDB keeps none)."""

        def signature(fk: sa.ForeignKeyConstraint) -> tuple[Any, ...]:
            return (
                tuple(fk.column_keys),
                fk.referred_table.name,
                tuple(e.column.name if e.column is not None else e._colspec for e in fk.elements),
            )

        by_signature = {signature(fk): fk.name for fk in metadata_fks}
        for fk in conn_fks:
            name = by_signature.get(signature(fk))
            if name is not None:
                fk.name = name
