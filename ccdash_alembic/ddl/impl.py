"""Alembic's implementation class for DuckDB.

Alembic looks an implementation up by dialect name and fails with ``KeyError: 'duckdb'`` when there is none;
defining this class (``__dialect__ = "duckdb"``) registers it. DuckDB runs DDL inside transactions, so
``transactional_ddl`` is on and each revision can be rolled back as a whole.

What differs from Alembic's default:

- every operation that changes an existing table goes through the rebuild planner (``rebuild``), which
  chooses native ALTER statements where DuckDB allows them and one rebuild otherwise;
  ``op.batch_alter_table`` is planned as one change (at most one rebuild);
- a type change, or a new NOT NULL, is checked against the rows first, and refused naming the rows that do
  not fit, before anything changes: rows that do not convert, and rows the conversion would change (see
  ``lossy_conditions``) unless a USING expression says how to convert;
- every step's rows are counted as it starts and as it ends (``census``), so rows a step loses in raw SQL
  are found as well as the drops it declares (``take_data_losses``);
- dropping a table that others reference is refused naming them;
- tables get their autoincrement sequences created before and dropped after them (see ``dialect``);
- the names constraints are created with, which DuckDB does not keep, are kept by this layer
  (``constraint_names``) after every table it creates, changes or drops;
- autogenerate compares what DuckDB can keep: a constraint created outside this layer has only DuckDB's
  generated name, so reflected unique and foreign key constraints are matched to the model by their columns;
  types are compared by what DuckDB makes of them; defaults after folding DuckDB's spellings
  (``CAST('x' AS VARCHAR)``, ``current_timestamp``).

In ``--sql`` mode there is no database to read the catalog from, so the environment passes a schema-only
in-memory copy of the database (``shadow``); every statement written to the script is run there too, so
each plan is made against the schema as the script will have left it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any, cast

import duckdb
import sqlalchemy as sa
from alembic.ddl.base import format_server_default
from alembic.ddl.impl import DefaultImpl
from sqlalchemy import event
from sqlalchemy.dialects.postgresql import CreateEnumType
from sqlalchemy.engine import Connection
from sqlalchemy.sql import ddl as sa_ddl
from sqlalchemy.sql import sqltypes
from sqlalchemy.sql.schema import ColumnCollectionConstraint

from ccdash_alembic import alembic_internals as internals
from ccdash_alembic.ddl import catalog, census, constraint_names, expressions, rebuild, statements
from ccdash_alembic.ddl.defaults import normalize_default
from ccdash_alembic.ddl.dialect import column_sequence, implicit_sequences
from ccdash_alembic.ddl.tabledef import Column, ForeignKey, Index, TableDef, literal, qualified, quote
from ccdash_alembic.ddl.types import canonical
from ccdash_alembic.errors import DataLossRefused
from ccdash_alembic.policy import POLICY_OPTION, UNGUARDED, RunPolicy

log = logging.getLogger(__name__)

SHADOW_OPTION = "ccdash_shadow"
_CONSTRAINT_KINDS = {
    sa.PrimaryKeyConstraint: "primary",
    sa.UniqueConstraint: "unique",
    sa.ForeignKeyConstraint: "foreignkey",
    sa.CheckConstraint: "check",
}


def _is_plain_string(default: object) -> bool:
    return isinstance(default, sa.DefaultClause) and isinstance(default.arg, str)


_BOUNDED_STRING = re.compile(
    r"^\s*(?:N?VARCHAR|N?CHAR|CHARACTER(?:\s+VARYING)?|BPCHAR|STRING|TEXT)\s*\(\s*(\d+)\s*\)\s*$", re.IGNORECASE
)
_UNBOUNDED_STRING = re.compile(
    r"^\s*(?:N?VARCHAR|N?CHAR|CHARACTER(?:\s+VARYING)?|BPCHAR|STRING|TEXT|JSON)\s*$", re.IGNORECASE
)


def _is_string(type_sql: str) -> bool:
    """Whether values of the type are text (to parse, not to compare after a round trip): strings, JSON,
    and ENUM labels (a named ENUM appears as its quoted name)."""
    spelled = type_sql.strip()
    if _UNBOUNDED_STRING.match(spelled) or _BOUNDED_STRING.match(spelled):
        return True
    return spelled.upper().startswith(("ENUM", '"'))


def lossy_conditions(column: str, old_type: str, new_type: str) -> list[tuple[str, str]]:
    """SQL conditions picking the rows a type change converts but changes, each with what is wrong with them.

    - to a string of bounded length (``VARCHAR(n)``, which DuckDB does not enforce): values whose text is
      longer than ``n``;
    - to an unbounded string: none, every value has a text form;
    - from a string (or an ENUM's labels) to anything else: none beyond cast failure, since parsing
      normalises (``'007'`` is the INTEGER 7);
    - from anything else: rows for which converting to the new type and back does not give the value back
      (``2`` as BOOLEAN is true, which is 1; 1.5 as INTEGER is 2; 0.1 as FLOAT is 0.100000001; 10:00 as DATE
      is midnight; 1.25 as DECIMAL(12,1) is 1.3).
    """
    bounded = _BOUNDED_STRING.match(new_type)
    if bounded:
        length = int(bounded.group(1))
        return [
            (
                f"{column} IS NOT NULL AND length(CAST({column} AS VARCHAR)) > {length}",
                f"are longer than {length} characters, the length of {new_type}",
            )
        ]
    if _UNBOUNDED_STRING.match(new_type) or _is_string(old_type):
        return []
    round_trip = f"TRY_CAST(TRY_CAST({column} AS {new_type}) AS {old_type})"
    return [
        (
            f"{column} IS NOT NULL AND {round_trip} IS DISTINCT FROM {column}",
            f"would lose information converting to {new_type}",
        )
    ]


def _row_conditions(column: Column, change: rebuild.AlterColumn) -> list[tuple[str, str]]:
    """SQL conditions picking the rows ``change`` cannot take, each with what is wrong with them.

    (A USING expression with a subquery cannot be tried row by row; the copy itself then reports a row that
    does not convert.)"""
    name = quote(column.name)
    conditions = []
    if change.type is not None and not (change.using and expressions.has_subquery(change.using)):
        converted = f"TRY({change.using})" if change.using else f"TRY_CAST({name} AS {change.type})"
        conditions.append((f"{name} IS NOT NULL AND {converted} IS NULL", f"do not convert to {change.type}"))
    if change.type is not None and not change.using:
        conditions += lossy_conditions(name, column.type_sql(), change.type)
    if change.nullable is False:
        conditions.append((f"{name} IS NULL", "are NULL"))
    return conditions


class DuckDBImpl(DefaultImpl):
    """Alembic on DuckDB."""

    __dialect__ = "duckdb"
    transactional_ddl = True

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self._shadow: Connection | None = self.context_opts.get(SHADOW_OPTION)
        self._handled: set[int] = set()  # constraints already applied with their add_column
        self._batch: list[rebuild.Change] | None = None  # the changes of the batch block being read
        self._dropped_index: set[str] = set()  # tables with an index dropped in the open transaction
        policy: RunPolicy = self.context_opts.get(POLICY_OPTION, UNGUARDED)  # the run's rules (ccdash_alembic.policy)
        self.data_loss_allowed = policy.data_loss_allowed
        self._data_losses: list[str] = []
        self._declared: set[tuple[str, str]] = set()  # tables whose drop is already in _data_losses
        self._census: dict[int, census.Count] | None = None  # the rows as the step started
        self._renames: list[tuple[str, str, str]] = []  # (schema, old, new) renamed by this step, in order
        if self.connection is not None and not self.as_sql:
            event.listen(self.connection, "commit", self._transaction_ended)
            event.listen(self.connection, "rollback", self._transaction_ended)

    def _transaction_ended(self, connection: Connection) -> None:
        self._dropped_index.clear()

    # --- running statements ---------------------------------------------------------------------------

    def start_census(self) -> None:
        """Count the rows of every user table as a step starts (in its transaction, before its code runs), so
        ``take_data_losses`` can tell which rows it lost however it lost them."""
        self._data_losses, self._declared, self._renames = [], set(), []
        self._census = None if self.as_sql or self.connection is None else census.take(self.connection)

    def take_data_losses(self) -> list[str]:
        """What the step lost (then cleared): the drops of tables and columns holding data it declared while
        dropping data is not allowed, and every table the census finds gone or holding fewer rows than when
        the step started (``jobs: 120 -> 0 rows``)."""
        losses, self._data_losses = self._data_losses, []
        before, self._census = self._census, None
        # where no table held rows as the step started, none can have lost any: no second count
        if before and self.connection is not None and any(count.rows for count in before.values()):
            for loss in census.losses(before, census.take(self.connection), self._renames):
                if loss.before.key not in self._declared:
                    losses.append(str(loss))
        self._declared, self._renames = set(), []
        return losses

    def _guard_data(self, table_name: str, schema: str | None, column: str | None = None) -> None:
        """Note a dropped table or column that holds data, unless allowed; outside a transaction (nothing
        could be rolled back) stop at once."""
        if self.as_sql or self.data_loss_allowed or self.connection is None:
            return
        source = qualified(table_name, schema)
        counted = f"count({quote(column)})" if column else "count(*)"
        rows = int(self.connection.exec_driver_sql(f"SELECT {counted} FROM {source}").scalar() or 0)
        if rows:
            self._declare_loss(table_name, schema, column, rows)

    def _declare_loss(self, table_name: str, schema: str | None, column: str | None, rows: int) -> None:
        """Note the rows a drop loses, for ``take_data_losses``; in autocommit, where no rollback could undo
        the drop, refuse it instead."""
        what = f"column {table_name}.{column} ({rows} values)" if column else f"table {table_name} ({rows} rows)"
        self._data_losses.append(what)
        if column is None:
            self._declared.add(((schema or census.DEFAULT_SCHEMA).lower(), table_name.lower()))
        assert self.connection is not None
        if self.connection.get_isolation_level() == "AUTOCOMMIT":
            raise DataLossRefused(
                f"this step would drop {what}",
                "Run again with -x confirm_data_loss=true, or with backups on so a copy is made first",
            )

    def catalog_connection(self) -> Connection:
        """Where the catalog is read: the database itself, or in ``--sql`` mode its schema-only shadow."""
        connection = self._shadow if self.as_sql else self.connection
        if connection is None:
            raise rebuild.PlanError(
                "this operation needs to read the table from the database; in --sql mode pass the database "
                "with -x db=PATH so its schema can be read"
            )
        return connection

    def _exec(self, construct: Any, *args: Any, **kw: Any) -> Any:
        if isinstance(construct, str | sa.TextClause):
            try:
                statements.split(str(construct))  # op.execute("COMMIT") would commit half a revision
            except statements.TransactionStatement as refused:
                raise rebuild.PlanError(f"op.execute refused: {refused}") from None
            except duckdb.Error:
                pass  # DuckDB says what is wrong when it runs the text
        result = internals.default_exec(self, construct, *args, **kw)
        if self.as_sql and self._shadow is not None and not isinstance(construct, str):
            compiled = construct.compile(dialect=self.dialect, compile_kwargs={"literal_binds": True})
            self._shadow.exec_driver_sql(str(compiled))
        return result

    def run_sql(self, statements: Sequence[str]) -> None:
        """Run SQL the planner wrote (not through ``text()``, whose ``:name`` binds would read colons in it)."""
        for statement in statements:
            if self.as_sql:
                self.static_output(statement + self.command_terminator)
                if self._shadow is not None:
                    self._shadow.exec_driver_sql(statement)
            else:
                assert self.connection is not None
                self.connection.exec_driver_sql(statement)

    def change_table(self, table_name: str, changes: Sequence[rebuild.Change], schema: str | None = None) -> None:
        """Plan ``changes`` to one table and run the plan (the one entry point for altering a table); inside a
        batch block they wait for its end, to be planned with the block's other changes."""
        if self._batch is not None:
            self._batch += changes
            return
        if not changes:
            return
        if not self.as_sql:
            self._check_rows(table_name, schema, changes)
            self._guard_dropped_columns(table_name, schema, changes)
        enums = self._dropped_enum_columns(table_name, schema, changes)
        plan = rebuild.plan(
            self.catalog_connection(),
            table_name,
            changes,
            schema,
            dropped_index=table_name.lower() in self._dropped_index,
        )
        log.debug("%s", plan)  # the plan and its SQL: ccdash-migrate -v, or the ccdash_alembic logger at DEBUG
        self.run_sql(plan.statements)
        self.run_sql(constraint_names.after_change(self.catalog_connection(), table_name, schema, plan.tables))
        name = self._note_renames(table_name, schema, changes)
        if any(isinstance(c, rebuild.DropIndex) for c in changes):
            self._dropped_index.add(table_name.lower())
        self._drop_unused_types(name, schema, enums)

    def _guard_dropped_columns(self, table_name: str, schema: str | None, changes: Sequence[rebuild.Change]) -> None:
        """The census counts rows, and a dropped column loses values but no rows: note each one holding data."""
        for change in changes:
            if isinstance(change, rebuild.DropColumn):
                self._guard_data(table_name, schema, change.name)

    def _note_renames(self, table_name: str, schema: str | None, changes: Sequence[rebuild.Change]) -> str:
        """Note the renames among ``changes``, so the census follows the table's rows; its name after them."""
        name = table_name
        for change in changes:
            if isinstance(change, rebuild.RenameTable):
                self._renames.append((schema or census.DEFAULT_SCHEMA, name, change.new_name))
                name = change.new_name
        return name

    def _dropped_enum_columns(
        self, table_name: str, schema: str | None, changes: Sequence[rebuild.Change]
    ) -> list[Column]:
        """The columns ``changes`` drop whose type is a named ENUM, read before they go."""
        dropped = {c.name.lower() for c in changes if isinstance(c, rebuild.DropColumn)}
        if not dropped:
            return []
        table = catalog.read_table(self.catalog_connection(), table_name, schema)
        return [c for c in table.columns if c.name.lower() in dropped and c.type_name is not None]

    def _drop_unused_types(self, table_name: str, schema: str | None, dropped: list[Column]) -> None:
        """Drop the named ENUM types of dropped columns that no column uses any more (as ``drop_table`` drops
        its own, and as ``add_column`` created them)."""
        if not dropped:
            return
        source = self.catalog_connection()
        remaining = {c.type for c in catalog.read_table(source, table_name, schema).columns}
        unused: list[str] = []
        for column in dropped:
            used = column.type in remaining or catalog.type_used_elsewhere(source, column.type, table_name)
            if not used and column.type_name is not None and column.type_name not in unused:
                unused.append(column.type_name)
        self.run_sql([f"DROP TYPE IF EXISTS {qualified(name, schema)}" for name in unused])

    def _check_rows(self, table_name: str, schema: str | None, changes: Sequence[rebuild.Change]) -> None:
        """Refuse a type change or a NOT NULL the rows do not allow, naming them, before anything changes."""
        assert self.connection is not None
        table = catalog.read_table(self.connection, table_name, schema)
        for change in changes:
            if isinstance(change, rebuild.AlterColumn) and table.has_column(change.name):
                for condition, problem in _row_conditions(table.column(change.name), change):
                    self._refuse_rows(table, change, condition, problem)

    def _refuse_rows(self, table: TableDef, change: rebuild.AlterColumn, condition: str, problem: str) -> None:
        """Refuse ``change`` when rows match ``condition``, with their count and the keys of the first five."""
        assert self.connection is not None
        key = ", ".join(quote(c) for c in table.primary_key) or "rowid"
        rows = self.connection.exec_driver_sql(
            f"SELECT {key}, count(*) OVER () FROM {qualified(table.name, table.schema)} WHERE {condition} "
            f"ORDER BY {key} LIMIT 5"
        ).fetchall()
        if not rows:
            return
        keys = ", ".join(str(r[0]) if len(r) == 2 else str(r[:-1]) for r in rows)
        raise rebuild.PlanError(
            f"cannot change {table.name}.{change.name}: {rows[0][-1]} rows {problem} "
            f"({key.replace(chr(34), '')} {keys}); fix those rows first"
            + ("" if change.using or change.type is None else " or give a USING expression")
        )

    # --- translating Alembic's operations into changes ------------------------------------------------

    def _type_sql(self, type_: Any) -> str:
        return str(self.dialect.type_compiler_instance.process(sqltypes.to_instance(type_)))

    def _compiler(self) -> Any:
        """A DDL compiler with no statement, for rendering defaults and expressions (as Alembic does)."""
        return self.dialect.ddl_compiler(self.dialect, cast(Any, None))

    def _default_sql(self, default: Any) -> str | None:
        if default is None:
            return None
        return format_server_default(self._compiler(), default)

    def _column(self, column: sa.Column[Any]) -> Column:
        computed = column.computed
        sequence = column_sequence(column)
        default = self._default_sql(column.server_default) if computed is None else None
        if default is None and sequence is not None:
            default = f"nextval({literal(self.dialect.identifier_preparer.format_sequence(sequence))})"
        return Column(
            name=column.name,
            type=self._type_sql(column.type),
            nullable=column.nullable if column.nullable is not None else True,
            default=default,
            generated=self._expression_sql(computed.sqltext) if computed is not None else None,
            comment=column.comment,
        )

    def _expression_sql(self, expression: Any) -> str:
        return str(self._compiler().sql_compiler.process(expression, include_table=False, literal_binds=True))

    def _index(self, index: sa.Index) -> Index:
        elements: list[str] = []
        columns: list[str | None] = []
        for expression in index.expressions:
            if isinstance(expression, sa.Column):
                elements.append(quote(expression.name))
                columns.append(expression.name)
            elif isinstance(expression, str):
                elements.append(quote(expression))
                columns.append(expression)
            else:
                elements.append(f"({self._expression_sql(expression)})")
                columns.append(None)
        assert index.name is not None
        return Index(str(index.name), tuple(elements), tuple(columns), bool(index.unique))

    def _constraint_change(self, const: sa.Constraint) -> rebuild.Change:
        """The change adding ``const``, under its name (which ``constraint_names`` keeps)."""
        name = internals.constraint_name(const, self.dialect)
        if isinstance(const, sa.ForeignKeyConstraint):
            elements = const.elements
            return rebuild.AddForeignKey(
                ForeignKey(
                    tuple(e.parent.name for e in elements),
                    elements[0].column.table.name,
                    tuple(e.column.name for e in elements),
                    name,
                )
            )
        assert isinstance(const, ColumnCollectionConstraint)
        columns = tuple(c.name for c in const.columns)
        if isinstance(const, sa.PrimaryKeyConstraint):
            return rebuild.AddPrimaryKey(columns, name)
        if isinstance(const, sa.UniqueConstraint):
            return rebuild.AddUnique(columns, name)
        if isinstance(const, sa.CheckConstraint):
            return rebuild.AddCheck(self._expression_sql(const.sqltext), name)
        raise NotImplementedError(f"DuckDB has no {type(const).__name__}")

    def _add_column_changes(self, column: sa.Column[Any]) -> list[rebuild.Change]:
        """The column and the constraints Alembic will ask to add for it afterwards, as one change."""
        changes: list[rebuild.Change] = [rebuild.AddColumn(self._column(column))]
        for const in column.table.constraints:
            if not isinstance(const, ColumnCollectionConstraint) or isinstance(const, sa.PrimaryKeyConstraint):
                continue
            if column.name not in {c.name for c in const.columns}:
                continue
            self._handled.add(id(const))
            changes.append(self._constraint_change(const))
        return changes

    def _alter_column_changes(
        self,
        column_name: str,
        *,
        nullable: bool | None = None,
        server_default: Any = False,
        name: str | None = None,
        type_: Any = None,
        comment: Any = False,
        **kw: Any,
    ) -> list[rebuild.Change]:
        using = kw.get("duckdb_using") or kw.get("postgresql_using")
        change = rebuild.AlterColumn(
            column_name,
            new_name=name,
            type=self._type_sql(type_) if type_ is not None else None,
            using=str(using) if using is not None else None,
            nullable=nullable,
            default=rebuild.KEEP if server_default is False else self._default_sql(server_default),
            comment=rebuild.KEEP if comment is False else comment,
        )
        return [change]

    # --- Alembic's operations -------------------------------------------------------------------------

    def add_column(self, table_name: str, column: sa.Column[Any], *, schema: str | None = None, **kw: Any) -> None:
        if kw.get("insert_before") or kw.get("insert_after"):
            raise rebuild.PlanError(
                f"cannot place column {column.name} with insert_before/insert_after: DuckDB adds columns at the end"
            )
        self._create_named_type(column.type)
        self.change_table(table_name, self._add_column_changes(column), schema)

    def drop_column(self, table_name: str, column: sa.Column[Any], *, schema: str | None = None, **kw: Any) -> None:
        self.change_table(table_name, [rebuild.DropColumn(column.name)], schema)

    def alter_column(self, table_name: str, column_name: str, *, schema: str | None = None, **kw: Any) -> None:
        if kw.get("type_") is not None:
            self._create_named_type(kw["type_"])
        self.change_table(table_name, self._alter_column_changes(column_name, **kw), schema)

    def _create_named_type(self, type_: Any) -> None:
        """Create the named ENUM type a new or changed column has, unless it exists (``create_table`` creates
        its columns' types through SQLAlchemy's table events, which adding or changing a column does not fire)."""
        if not isinstance(type_, sa.Enum) or not type_.native_enum or not type_.name:
            return
        if getattr(type_, "create_type", True) and not catalog.type_exists(
            self.catalog_connection(), str(type_.name), type_.schema
        ):
            self._exec(CreateEnumType(type_))

    def rename_table(self, old_table_name: str, new_table_name: str, schema: str | None = None) -> None:
        self.change_table(old_table_name, [rebuild.RenameTable(str(new_table_name))], schema)

    def add_constraint(self, const: Any, **kw: Any) -> None:
        if id(const) in self._handled:
            self._handled.discard(id(const))
            return
        if not internals.constraint_wanted(const, self):
            return
        self.change_table(const.table.name, [self._constraint_change(const)], const.table.schema)

    def drop_constraint(self, const: sa.Constraint, **kw: Any) -> None:
        table = const.table
        kind = next((k for cls, k in _CONSTRAINT_KINDS.items() if isinstance(const, cls)), None)
        definition = catalog.read_table(self.catalog_connection(), table.name, table.schema)
        name = str(const.name) if const.name is not None else None
        self.change_table(table.name, [rebuild.find_constraint(definition, name, kind)], table.schema)

    def create_index(self, index: sa.Index, **kw: Any) -> None:
        assert index.table is not None
        self.change_table(index.table.name, [rebuild.CreateIndex(self._index(index))], index.table.schema)

    def drop_index(self, index: sa.Index, **kw: Any) -> None:
        table = index.table.name if index.table is not None else None
        schema = index.table.schema if index.table is not None else None
        if table is None:
            table = catalog.index_table(self.catalog_connection(), str(index.name))
            if table is None:
                raise rebuild.PlanError(f"there is no index named {index.name}")
        self.change_table(table, [rebuild.DropIndex(str(index.name))], schema)

    def create_table_comment(self, table: sa.Table) -> None:
        self.change_table(table.name, [rebuild.SetTableComment(table.comment)], table.schema)

    def drop_table_comment(self, table: sa.Table) -> None:
        self.change_table(table.name, [rebuild.SetTableComment(None)], table.schema)

    def create_column_comment(self, column: sa.Column[Any]) -> None:
        change = rebuild.AlterColumn(column.name, comment=column.comment)
        self.change_table(column.table.name, [change], column.table.schema)

    def run_batch(self, block: internals.BatchBlock) -> None:
        """A ``batch_alter_table`` block, whatever its ``recreate``: each operation is translated by the same
        method as when called directly, and the block is planned as one change (at most one rebuild)."""
        if block.partial_reordering:
            raise rebuild.PlanError(
                f"batch_alter_table({block.table_name!r}) cannot reorder columns (partial_reordering) on DuckDB"
            )
        self._batch = []
        try:
            for method, args, kw in block.operations:
                getattr(self, method)(*args, **kw)
            changes = self._batch
        finally:
            self._batch = None
            self._handled.clear()
        self.change_table(block.table_name, changes, block.schema)

    def _catalog_if_any(self) -> Connection | None:
        """Where the catalog is read, or None in ``--sql`` mode without a shadow (no database was given)."""
        return self.catalog_connection() if not self.as_sql or self._shadow is not None else None

    def create_table(self, table: sa.Table, **kw: Any) -> None:
        for sequence in filter(None, map(column_sequence, table.columns)):
            self._exec(sa_ddl.CreateSequence(sequence, if_not_exists=True))
        super().create_table(table, **kw)
        source = self._catalog_if_any()
        if source is not None:
            names = constraint_names.model_names(table, self.dialect)
            self.run_sql(constraint_names.statements(source, [(table.name, table.schema, names)]))

    def drop_table(self, table: sa.Table, **kw: Any) -> None:
        source = self._catalog_if_any()
        if source is not None:
            referencing = [t for t, _ in catalog.referencing(source, table.name, table.schema)]
            if referencing:
                raise rebuild.PlanError(
                    f"cannot drop table {table.name}: {', '.join(sorted(set(referencing)))} "
                    "reference it by foreign key; drop those tables or their foreign keys first"
                )
        self._guard_data(table.name, table.schema)
        owned = self._owned_sequences(table, source)
        types = self._owned_types(table, source)
        super().drop_table(table, **kw)
        for sequence in owned:
            self._exec(sa_ddl.DropSequence(sequence, if_exists=True))
        self.run_sql([f"DROP TYPE IF EXISTS {qualified(name, table.schema)}" for name in types])
        if source is not None:
            self.run_sql(constraint_names.statements(source, [], [(table.name, table.schema)]))

    def _owned_types(self, table: sa.Table, source: Connection | None) -> list[str]:
        """Named ENUM types only this table's columns use, which go with it (as they came with create_table)."""
        if source is None:
            return []
        owned = []
        for column in catalog.read_table(source, table.name, table.schema).columns:
            if column.type_name is None:
                continue
            if not catalog.type_used_elsewhere(source, column.type, table.name) and column.type_name not in owned:
                owned.append(column.type_name)
        return owned

    def _owned_sequences(self, table: sa.Table, source: Connection | None) -> list[sa.Sequence]:
        """Sequences created for the table's autoincrement keys, which go when the table goes.

        ``op.drop_table("t")`` passes a table without columns, so the catalog says which column defaults use
        a ``<table>_<column>_seq`` sequence; without one, only the given columns can tell.
        """
        if source is None:
            return implicit_sequences(table)
        owned = []
        for column in catalog.read_table(source, table.name, table.schema).columns:
            name = f"{table.name}_{column.name}_seq"
            if column.default and column.default.lower().startswith("nextval(") and name in column.default:
                owned.append(sa.Sequence(name, schema=table.schema))
        return owned

    # --- autogenerate ---------------------------------------------------------------------------------

    def compare_type(self, inspector_column: sa.Column[Any], metadata_column: sa.Column[Any]) -> bool:
        """Compare the types DuckDB makes of both spellings, where it can say; else Alembic's token comparison."""
        try:
            inspected = canonical(self._type_sql(inspector_column.type))
            expected = canonical(self._type_sql(metadata_column.type))
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
                tuple(e.column.name if e.column is not None else internals.foreign_key_spec(e) for e in fk.elements),
            )

        by_signature = {signature(fk): fk.name for fk in metadata_fks}
        for fk in conn_fks:
            name = by_signature.get(signature(fk))
            if name is not None:
                fk.name = name


# Every batch_alter_table block on DuckDB, whatever its ``recreate``, goes through the planner.
internals.route_batch_blocks(DuckDBImpl, DuckDBImpl.run_batch)
