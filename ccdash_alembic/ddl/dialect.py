"""The SQLAlchemy dialect: duckdb-engine's driver with DuckDB-native reflection and DDL.

duckdb-engine stays the driver (connection, cursor, types); this subclass replaces what it inherits from
PostgreSQL and DuckDB does not have:

- reflection, read from DuckDB's catalog functions (``reflection``), with the names constraints were created
  with, which DuckDB does not keep (``constraint_names``);
- autoincrement integer keys, which PostgreSQL renders as ``SERIAL`` (DuckDB has none): they become a
  ``DEFAULT nextval('<table>_<column>_seq')`` backed by a sequence created before and dropped after the table;
- DDL that DuckDB spells differently (sequences without ``AS type``/``CACHE``, VIRTUAL-only computed columns,
  foreign keys without cascades).

Importing this module registers the class for ``duckdb://`` URLs, ahead of duckdb-engine's entry point, so
every engine created afterwards in the process uses it.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import duckdb_engine
import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.postgresql.base import PGDDLCompiler
from sqlalchemy.engine import Connection, reflection
from sqlalchemy.engine.default import DefaultDialect
from sqlalchemy.engine.interfaces import IsolationLevel
from sqlalchemy.sql import ddl as sa_ddl
from sqlalchemy.sql import sqltypes

from ccdash_alembic.ddl import catalog
from ccdash_alembic.ddl import reflection as reflect
from ccdash_alembic.ddl.tabledef import TableDef

_UNSUPPORTED_FK_ACTIONS = ("CASCADE", "SET NULL", "SET DEFAULT")


def implicit_sequence(column: sa.Column[Any]) -> sa.Sequence | None:
    """The sequence this layer creates for an autoincrement integer key, as PostgreSQL's SERIAL would.

    None when the column is not the table's autoincrement column, or already has a default of its own.
    """
    table = column.table
    if not (column.primary_key and column is table.autoincrement_column):
        return None
    if column.server_default is not None or column.identity is not None:
        return None
    if not isinstance(column.type, sqltypes.Integer):
        return None
    if column.default is not None and not (isinstance(column.default, sa.Sequence) and column.default.optional):
        return None
    return sa.Sequence(f"{table.name}_{column.name}_seq", schema=table.schema)


def column_sequence(column: sa.Column[Any]) -> sa.Sequence | None:
    """The sequence behind a column's default: an explicit ``sa.Sequence`` or the implicit one."""
    if isinstance(column.default, sa.Sequence) and not column.default.optional:
        return column.default
    return implicit_sequence(column)


def _sequence_options(seq: sa.Sequence) -> list[str]:
    """The options of a sequence that DuckDB's CREATE SEQUENCE takes (it has no ``AS type`` and no ``CACHE``)."""
    valued = [
        ("INCREMENT BY", seq.increment),
        ("START WITH", seq.start),
        ("MINVALUE", seq.minvalue),
        ("MAXVALUE", seq.maxvalue),
    ]
    options = [f"{keyword} {value}" for keyword, value in valued if value is not None]
    options += [keyword for keyword, on in (("NO MINVALUE", seq.nominvalue), ("NO MAXVALUE", seq.nomaxvalue)) if on]
    if seq.cycle is not None:
        options.append("CYCLE" if seq.cycle else "NO CYCLE")
    return options


class DuckDBDDLCompiler(PGDDLCompiler):
    """PostgreSQL's DDL compiler with DuckDB's spellings."""

    def get_column_specification(self, column: sa.Column[Any], **kwargs: Any) -> str:
        if column.identity is not None:
            # SQLAlchemy's base compiler would leave it out without a word, and inserts without the key then fail
            raise exc.CompileError(
                f"DuckDB has no identity columns ({column.name}: sa.Identity); "
                "use autoincrement=True or a sa.Sequence for the key"
            )
        spec = self.preparer.format_column(column) + " "
        spec += self.dialect.type_compiler_instance.process(
            column.type, type_expression=column, identifier_preparer=self.preparer
        )
        default = self.get_column_default_string(column)
        sequence = column_sequence(column)
        if default is None and sequence is not None:
            name = self.preparer.format_sequence(sequence).replace("'", "''")
            default = f"nextval('{name}')"
        if default is not None:
            spec += " DEFAULT " + default
        if column.computed is not None:
            spec += " " + self.process(column.computed)
        if not column.nullable:
            spec += " NOT NULL"
        return spec

    def visit_computed_column(self, generated: sa.Computed, **kw: Any) -> str:
        if generated.persisted:
            raise exc.CompileError("DuckDB has no STORED generated columns; use persisted=None (VIRTUAL).")
        expression = self.sql_compiler.process(generated.sqltext, include_table=False, literal_binds=True)
        return f"GENERATED ALWAYS AS ({expression}) VIRTUAL"

    def visit_create_sequence(self, create: sa_ddl.CreateSequence, prefix: str | None = None, **kw: Any) -> str:
        text = "CREATE SEQUENCE " + ("IF NOT EXISTS " if create.if_not_exists else "")
        text += self.preparer.format_sequence(create.element)
        return " ".join([text, *_sequence_options(create.element)])

    def define_constraint_cascades(self, constraint: sa.ForeignKeyConstraint) -> str:
        for action in (constraint.ondelete, constraint.onupdate):
            if action is not None and action.upper() in _UNSUPPORTED_FK_ACTIONS:
                raise exc.CompileError(
                    f"DuckDB foreign keys cannot use {action.upper()}; only NO ACTION and RESTRICT exist."
                )
        return str(super().define_constraint_cascades(constraint))

    def define_constraint_deferrability(self, constraint: sa.Constraint) -> str:
        if constraint.deferrable or constraint.initially:
            raise exc.CompileError("DuckDB constraints cannot be DEFERRABLE.")
        return ""


# DuckDB settings for every connection to a user's file: a file DuckDB does not recognise (SQLite, say) makes it
# try to download and load an extension, which a migration tool must never do on its own.
SAFE_OPEN: dict[str, str | int | bool] = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}


@contextmanager
def _sigint_deferred() -> Iterator[None]:
    """Hold a Ctrl-C (SIGINT) that arrives during the block until it ends, then raise it.

    DuckDB's client interrupts the running statement when Python's SIGINT handler raises; during a COMMIT that
    leaves the caller unsure whether the transaction committed (it may have). With the handler swapped for one
    that only notes the signal, the commit finishes (or fails on its own), and the interruption follows it.
    """
    if threading.current_thread() is not threading.main_thread() or (
        signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield
        return
    received: list[int] = []
    signal.signal(signal.SIGINT, lambda number, frame: received.append(number))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if received:
        raise KeyboardInterrupt


class DuckDBDialect(duckdb_engine.Dialect):
    """duckdb-engine with reflection from DuckDB's catalog and DuckDB-correct DDL."""

    name = "duckdb"
    supports_statement_cache = False  # as duckdb-engine: its compilers are not vetted for caching
    ddl_compiler = DuckDBDDLCompiler
    supports_sequences = True
    sequences_optional = True
    supports_identity_columns = False
    supports_native_enum = True
    supports_comments = True
    inline_comments = False
    supports_virtual_generated_columns = True
    # duckdb-engine's inspector turns any error of check-constraint reflection into NotImplementedError and
    # adds PostgreSQL's pg_catalog-only methods; the base inspector over the methods below is what is wanted.
    inspector = reflection.Inspector  # type: ignore[assignment]

    # The PostgreSQL dialect answers these with one pg_catalog query per schema; DuckDB's catalog is small,
    # so SQLAlchemy's generic per-table versions, which call the methods below, are used instead. (Their
    # signatures differ from PostgreSQL's only in spelling: SQLAlchemy passes every argument by keyword.)
    get_multi_columns = DefaultDialect.get_multi_columns  # type: ignore[assignment]
    get_multi_pk_constraint = DefaultDialect.get_multi_pk_constraint  # type: ignore[assignment]
    get_multi_foreign_keys = DefaultDialect.get_multi_foreign_keys  # type: ignore[assignment]
    get_multi_indexes = DefaultDialect.get_multi_indexes  # type: ignore[assignment]
    get_multi_unique_constraints = DefaultDialect.get_multi_unique_constraints  # type: ignore[assignment]
    get_multi_check_constraints = DefaultDialect.get_multi_check_constraints  # type: ignore[assignment]
    get_multi_table_comment = DefaultDialect.get_multi_table_comment  # type: ignore[assignment]
    get_multi_table_options = DefaultDialect.get_multi_table_options  # type: ignore[assignment]

    # Isolation levels: DuckDB runs every statement in a transaction (snapshot isolation); "AUTOCOMMIT" means
    # this layer begins none, so each statement commits on its own. Alembic's autocommit_block() (used for
    # revisions that declare themselves non-transactional) depends on it.
    def get_isolation_level_values(self, dbapi_connection: Any) -> list[IsolationLevel]:
        return ["SERIALIZABLE", "AUTOCOMMIT"]

    def get_default_isolation_level(self, dbapi_connection: Any) -> IsolationLevel:  # type: ignore[override]
        return "SERIALIZABLE"

    def get_isolation_level(self, dbapi_connection: Any) -> IsolationLevel:
        return "AUTOCOMMIT" if getattr(dbapi_connection, "ccdash_autocommit", False) else "SERIALIZABLE"

    def set_isolation_level(self, dbapi_connection: Any, level: str) -> None:
        dbapi_connection.ccdash_autocommit = level == "AUTOCOMMIT"

    def do_begin(self, dbapi_connection: Any) -> None:
        if not getattr(dbapi_connection, "ccdash_autocommit", False):
            super().do_begin(dbapi_connection)

    def do_commit(self, dbapi_connection: Any) -> None:
        if not getattr(dbapi_connection, "ccdash_autocommit", False):
            with _sigint_deferred():  # a commit happens or not; Ctrl-C waits for it to be one or the other
                dbapi_connection.commit()

    def do_rollback(self, dbapi_connection: Any) -> None:
        if not getattr(dbapi_connection, "ccdash_autocommit", False):
            super().do_rollback(dbapi_connection)

    def _get_default_schema_name(self, connection: Connection) -> str:
        return str(connection.exec_driver_sql("SELECT current_schema()").scalar())

    @reflection.cache
    def _table(self, connection: Connection, table_name: str, schema: str | None = None, **kw: Any) -> TableDef:
        return catalog.read_table(connection, table_name, schema)

    @reflection.cache
    def _enums(self, connection: Connection, **kw: Any) -> dict[tuple[str, ...], str]:
        return catalog.enum_names(connection)

    def has_table(self, connection: Connection, table_name: str, schema: str | None = None, **kw: Any) -> bool:
        try:
            catalog.relation_oid(connection, table_name, schema)
        except exc.NoSuchTableError:
            return False
        return True

    def has_index(
        self, connection: Connection, table_name: str, index_name: str, schema: str | None = None, **kw: Any
    ) -> bool:
        return any(i.name == index_name for i in self._table(connection, table_name, schema, **kw).indexes)

    def has_sequence(self, connection: Connection, sequence_name: str, schema: str | None = None, **kw: Any) -> bool:
        return sequence_name in catalog.sequence_names(connection, schema)

    def has_type(self, connection: Connection, type_name: str, schema: str | None = None, **kw: Any) -> bool:
        return catalog.type_exists(connection, type_name, schema)

    # SQLAlchemy's interface names the argument schema_name, PostgreSQL's dialect schema; it is positional.
    def has_schema(self, connection: Connection, schema_name: str, **kw: Any) -> bool:  # type: ignore[override]
        return schema_name in catalog.schema_names(connection)

    @reflection.cache
    def get_schema_names(self, connection: Connection, **kw: Any) -> list[str]:
        return catalog.schema_names(connection)

    @reflection.cache
    def get_table_names(self, connection: Connection, schema: str | None = None, **kw: Any) -> list[str]:
        """The schema's tables, less the one where the layer keeps constraint names (``constraint_names``),
        which is no user's table: no autogenerate, ``metadata.reflect`` or ``drop_all`` is to meet it."""
        names = catalog.relation_names(connection, schema, views=False, temporary=False)
        return [name for name in names if name != catalog.CONSTRAINT_NAMES]

    @reflection.cache
    def get_temp_table_names(self, connection: Connection, schema: str | None = None, **kw: Any) -> list[str]:
        return catalog.relation_names(connection, schema, views=False, temporary=True)

    @reflection.cache
    def get_view_names(
        self, connection: Connection, schema: str | None = None, include: Any = None, **kw: Any
    ) -> list[str]:
        return catalog.relation_names(connection, schema, views=True, temporary=False)

    @reflection.cache
    def get_temp_view_names(self, connection: Connection, schema: str | None = None, **kw: Any) -> list[str]:
        return catalog.relation_names(connection, schema, views=True, temporary=True)

    def get_materialized_view_names(self, connection: Connection, schema: str | None = None, **kw: Any) -> list[str]:
        return []

    @reflection.cache
    def get_sequence_names(self, connection: Connection, schema: str | None = None, **kw: Any) -> list[str]:
        return catalog.sequence_names(connection, schema)

    @reflection.cache
    def get_view_definition(self, connection: Connection, view_name: str, schema: str | None = None, **kw: Any) -> str:
        return catalog.view_definition(connection, catalog.relation_oid(connection, view_name, schema))

    def get_columns(self, connection: Connection, table_name: str, schema: str | None = None, **kw: Any) -> Any:
        return reflect.columns(self._table(connection, table_name, schema, **kw), self._enums(connection, **kw))

    def get_pk_constraint(self, connection: Connection, table_name: str, schema: str | None = None, **kw: Any) -> Any:
        return reflect.primary_key(self._table(connection, table_name, schema, **kw))

    def get_foreign_keys(self, connection: Connection, table_name: str, schema: str | None = None, **kw: Any) -> Any:
        return reflect.foreign_keys(self._table(connection, table_name, schema, **kw))

    def get_indexes(self, connection: Connection, table_name: str, schema: str | None = None, **kw: Any) -> Any:
        return reflect.indexes(self._table(connection, table_name, schema, **kw))

    def get_unique_constraints(
        self, connection: Connection, table_name: str, schema: str | None = None, **kw: Any
    ) -> Any:
        return reflect.unique_constraints(self._table(connection, table_name, schema, **kw))

    def get_check_constraints(
        self, connection: Connection, table_name: str, schema: str | None = None, **kw: Any
    ) -> Any:
        return reflect.check_constraints(self._table(connection, table_name, schema, **kw))

    def get_table_comment(self, connection: Connection, table_name: str, schema: str | None = None, **kw: Any) -> Any:
        return {"text": self._table(connection, table_name, schema, **kw).comment}

    def get_table_options(self, connection: Connection, table_name: str, schema: str | None = None, **kw: Any) -> Any:
        return {}


def runs_metadata_ddl(kw: dict[str, Any]) -> bool:
    """True for ``create_all``/``drop_all``/``Table.create``; Alembic's impl handles its own statements."""
    return isinstance(kw.get("_ddl_runner"), (sa_ddl.SchemaGenerator, sa_ddl.SchemaDropper))


def implicit_sequences(table: sa.Table) -> list[sa.Sequence]:
    return [s for s in map(implicit_sequence, table.columns) if s is not None]


@event.listens_for(sa.Table, "before_create")
def _create_implicit_sequences(table: sa.Table, connection: Connection, **kw: Any) -> None:
    if connection.dialect.name == DuckDBDialect.name and runs_metadata_ddl(kw):
        for sequence in implicit_sequences(table):
            connection.execute(sa_ddl.CreateSequence(sequence, if_not_exists=True))


@event.listens_for(sa.Table, "after_drop")
def _drop_implicit_sequences(table: sa.Table, connection: Connection, **kw: Any) -> None:
    if connection.dialect.name == DuckDBDialect.name and runs_metadata_ddl(kw):
        for sequence in implicit_sequences(table):
            connection.execute(sa_ddl.DropSequence(sequence, if_exists=True))


registry.register("duckdb", __name__, "DuckDBDialect")
registry.register("duckdb.duckdb_engine", __name__, "DuckDBDialect")
