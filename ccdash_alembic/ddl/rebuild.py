"""The table-rebuild planner: how to make a change to a DuckDB table, decided from the catalog before any DDL.

DuckDB's ALTER TABLE refuses most changes on a table that has an explicit index or is referenced by a
foreign key, cannot add FOREIGN KEY or CHECK constraints, and cannot drop any constraint. Since a failed
statement aborts the transaction, "try ALTER, fall back on error" cannot work inside a revision: the plan
is chosen first, from the catalog.

A ``Plan`` is data: the strategy, why, which tables it touches, and the statements. It can be printed and
tested, and it is the same statements whether run or written out by ``--sql``.

- **native**: plain ``ALTER TABLE`` statements, when DuckDB allows every change in the table's current state
  (the rules are in ``_native``; ``tests/test_rebuild_rules.py`` checks them against DuckDB itself).
- **rebuild**: the tables that reference the table by foreign key (the whole chain) are copied into
  temporary tables; the table's rows are converted with one ``INSERT ... SELECT`` while every table still
  exists (so a USING expression may read any of them); the referencing tables are dropped, deepest first,
  then the old table; the new one takes its name (see ``_copy_statements``); the referencing tables are
  created again, parents first, and refilled; indexes are built after the copies; comments are set again.
  Before the transaction can commit, every table's row count is compared with the count taken before, and
  a difference raises an error inside DuckDB, which aborts the revision.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import singledispatch

from sqlalchemy.engine import Connection

from ccdash_alembic import graph
from ccdash_alembic.ddl import catalog, expressions
from ccdash_alembic.ddl.tabledef import (
    Check,
    Column,
    ForeignKey,
    Index,
    TableDef,
    Unique,
    literal,
    qualified,
    quote,
)

TEMP_PREFIX = "_ccdash_"


class PlanError(Exception):
    """A change that cannot be made as asked (the message says why and what to do)."""


class _Keep:
    """Marks an ``AlterColumn`` attribute the change leaves as it is."""

    def __repr__(self) -> str:
        return "KEEP"


KEEP = _Keep()


@dataclass(frozen=True)
class AddColumn:
    column: Column
    foreign_key: ForeignKey | None = None
    unique: bool = False


@dataclass(frozen=True)
class DropColumn:
    name: str


@dataclass(frozen=True)
class AlterColumn:
    name: str
    new_name: str | None = None
    type: str | None = None
    using: str | None = None  # expression over the old columns giving the new value
    nullable: bool | None = None
    default: str | _Keep | None = KEEP
    comment: str | _Keep | None = KEEP


@dataclass(frozen=True)
class RenameTable:
    new_name: str


@dataclass(frozen=True)
class AddPrimaryKey:
    columns: tuple[str, ...]
    name: str | None = None


@dataclass(frozen=True)
class AddUnique:
    columns: tuple[str, ...]
    name: str | None = None


@dataclass(frozen=True)
class AddCheck:
    expression: str
    name: str | None = None


@dataclass(frozen=True)
class AddForeignKey:
    foreign_key: ForeignKey


@dataclass(frozen=True)
class CreateIndex:
    index: Index


@dataclass(frozen=True)
class DropIndex:
    name: str


@dataclass(frozen=True)
class SetTableComment:
    comment: str | None


@dataclass(frozen=True)
class DropConstraint:
    """Drop one constraint; ``constraint`` is the catalog's own object (see ``find_constraint``)."""

    constraint: Unique | Check | ForeignKey | tuple[str, ...]  # a tuple is the primary key's columns


Change = (
    AddColumn
    | DropColumn
    | AlterColumn
    | RenameTable
    | AddPrimaryKey
    | AddUnique
    | AddCheck
    | AddForeignKey
    | DropConstraint
    | CreateIndex
    | DropIndex
    | SetTableComment
)


@dataclass
class Plan:
    table: str
    strategy: str  # "native" or "rebuild"
    statements: list[str]
    reasons: list[str] = field(default_factory=list)
    rebuilt: list[str] = field(default_factory=list)
    carried: list[str] = field(default_factory=list)  # changes the rebuild makes to referencing tables
    tables: list[TableDef] = field(default_factory=list)  # every table the plan changes, as it leaves it

    def __str__(self) -> str:
        head = f"{self.strategy} change of {self.table}"
        if self.reasons:
            head += " (" + "; ".join(self.reasons) + ")"
        if self.rebuilt:
            head += "\n  rebuilds: " + ", ".join(self.rebuilt)
        if self.carried:
            head += "\n  carries: " + "; ".join(self.carried)
        return head + "\n" + "\n".join(f"  {s.strip()};" for s in self.statements)


# --- applying changes to a table definition ---------------------------------------------------------------


@dataclass
class _State:
    """A table being changed: where each stored column's values come from in the old table (SQL over the
    old table, None for a new column), and which old columns were renamed (old name, lower -> new name)."""

    table: TableDef
    sources: dict[str, str | None]
    renamed: dict[str, str] = field(default_factory=dict)

    def column_source(self, name: str) -> str | None:
        return self.sources[name.lower()]


def _rename_in_index(index: Index, renames: dict[str, str]) -> Index:
    elements = []
    for element, column in zip(index.elements, index.columns, strict=True):
        if column is not None:
            elements.append(quote(renames.get(column.lower(), column)))
        else:
            elements.append(expressions.rename_columns(element, renames))
    return Index(
        index.name,
        tuple(elements),
        tuple(renames.get(c.lower(), c) if c else None for c in index.columns),
        index.unique,
    )


def _index_uses(index: Index, column: str) -> bool:
    for element, name in zip(index.elements, index.columns, strict=True):
        if name is not None and name.lower() == column:
            return True
        if name is None and column in expressions.columns_in(element):
            return True
    return False


def _names(columns: Sequence[str]) -> tuple[str, ...]:
    return tuple(c.lower() for c in columns)


def _without_column(table: TableDef, name: str) -> TableDef:
    """The table without one column (lower-cased name) and everything that uses it."""
    kept = replace(table, columns=tuple(c for c in table.columns if c.name.lower() != name))
    if name in _names(table.primary_key):
        kept = replace(kept, primary_key=(), primary_key_name=None, primary_key_generated_name=None)
    return _without_uses(kept, name)


def _without_uses(table: TableDef, name: str) -> TableDef:
    """The table without the constraints and indexes that use one column (lower-cased name)."""
    return replace(
        table,
        uniques=tuple(u for u in table.uniques if name not in _names(u.columns)),
        checks=tuple(c for c in table.checks if name not in expressions.columns_in(c.expression)),
        foreign_keys=tuple(f for f in table.foreign_keys if name not in _names(f.columns)),
        indexes=tuple(i for i in table.indexes if not _index_uses(i, name)),
    )


@singledispatch
def _apply(change: object, state: _State) -> _State:
    """The table as it is after ``change`` (one registration per change type)."""
    raise TypeError(change)


@_apply.register
def _(change: AddColumn, state: _State) -> _State:
    table = state.table
    if table.has_column(change.column.name):
        raise PlanError(f"table {table.name} already has a column {change.column.name}")
    new = replace(table, columns=(*table.columns, change.column))
    if change.foreign_key is not None:
        new = replace(new, foreign_keys=(*new.foreign_keys, change.foreign_key))
    if change.unique:
        new = replace(new, uniques=(*new.uniques, Unique((change.column.name,))))
    sources = {**state.sources}
    if change.column.generated is None:
        sources[change.column.name.lower()] = None
    return _State(new, sources, state.renamed)


@_apply.register
def _(change: DropColumn, state: _State) -> _State:
    name = state.table.column(change.name).name.lower()
    sources = {k: v for k, v in state.sources.items() if k != name}
    return _State(_without_column(state.table, name), sources, state.renamed)


@_apply.register
def _(change: RenameTable, state: _State) -> _State:
    return replace(state, table=state.table.renamed(change.new_name))


@_apply.register
def _(change: AddPrimaryKey, state: _State) -> _State:
    table = state.table
    if table.primary_key:
        raise PlanError(f"table {table.name} already has a primary key ({', '.join(table.primary_key)}); drop it first")
    columns = tuple(table.column(c).name for c in change.columns)
    new_columns = tuple(replace(c, nullable=False) if c.name in columns else c for c in table.columns)
    new = replace(table, columns=new_columns, primary_key=columns, primary_key_name=change.name)
    return replace(state, table=replace(new, primary_key_generated_name=None))


@_apply.register
def _(change: AddUnique, state: _State) -> _State:
    table = state.table
    columns = tuple(table.column(c).name for c in change.columns)
    if any(_names(u.columns) == _names(columns) for u in table.uniques):
        raise PlanError(f"table {table.name} already has a unique constraint on ({', '.join(columns)})")
    return replace(state, table=replace(table, uniques=(*table.uniques, Unique(columns, change.name))))


@_apply.register
def _(change: AddCheck, state: _State) -> _State:
    check = Check(change.expression, tuple(sorted(expressions.columns_in(change.expression))), change.name)
    return replace(state, table=replace(state.table, checks=(*state.table.checks, check)))


@_apply.register
def _(change: AddForeignKey, state: _State) -> _State:
    return replace(state, table=replace(state.table, foreign_keys=(*state.table.foreign_keys, change.foreign_key)))


@_apply.register
def _(change: CreateIndex, state: _State) -> _State:
    return replace(state, table=replace(state.table, indexes=(*state.table.indexes, change.index)))


@_apply.register
def _(change: DropIndex, state: _State) -> _State:
    table = state.table
    if not any(i.name.lower() == change.name.lower() for i in table.indexes):
        raise PlanError(f"table {table.name} has no index named {change.name}")
    return replace(state, table=replace(table, indexes=tuple(i for i in table.indexes if i.name != change.name)))


@_apply.register
def _(change: SetTableComment, state: _State) -> _State:
    return replace(state, table=replace(state.table, comment=change.comment))


@_apply.register
def _(change: DropConstraint, state: _State) -> _State:
    table, target = state.table, change.constraint
    if isinstance(target, tuple):
        keyless = replace(table, primary_key=(), primary_key_name=None, primary_key_generated_name=None)
        return replace(state, table=keyless)
    kept = replace(
        table,
        uniques=tuple(u for u in table.uniques if u != target),
        checks=tuple(c for c in table.checks if c != target),
        foreign_keys=tuple(f for f in table.foreign_keys if f != target),
    )
    return replace(state, table=kept)


@_apply.register
def _(change: AlterColumn, state: _State) -> _State:
    old = state.table.column(change.name)
    key = old.name.lower()
    column = _altered(old, change)
    table = replace(state.table, columns=tuple(column if c.name.lower() == key else c for c in state.table.columns))
    altered = _State(table, _converted_sources(state, old.name, change), state.renamed)
    if change.new_name is None or change.new_name == old.name:
        return altered
    return _rename_column(altered, key, change.new_name)


def _altered(column: Column, change: AlterColumn) -> Column:
    """The column with what ``change`` sets (its name aside, which constraints and indexes follow)."""
    if change.type is not None:
        column = replace(column, type=change.type, type_name=None)
    if change.nullable is not None:
        column = replace(column, nullable=change.nullable)
    if not isinstance(change.default, _Keep):
        column = replace(column, default=change.default)
    if not isinstance(change.comment, _Keep):
        column = replace(column, comment=change.comment)
    return column


def _converted_sources(state: _State, name: str, change: AlterColumn) -> dict[str, str | None]:
    """The rebuild's sources once ``change`` gives column ``name`` a new type: its USING expression, else its
    current values cast to the type."""
    sources = dict(state.sources)
    if change.type is None:
        return sources
    source = state.column_source(name)
    if change.using:
        sources[name.lower()] = f"({change.using})"  # also fills a column added in the same change
    elif source is not None:
        sources[name.lower()] = f"CAST({source} AS {change.type})"
    return sources


def _rename_column(state: _State, key: str, new_name: str) -> _State:
    """``state`` with the column ``key`` (lower-cased) renamed, in every constraint and index that uses it."""
    renames = {key: new_name}
    sources = dict(state.sources)
    sources[new_name.lower()] = sources.pop(key)
    original = next((o for o, n in state.renamed.items() if n.lower() == key), key)
    renamed = {**state.renamed, original: new_name}

    def rename(names: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(renames.get(n.lower(), n) for n in names)

    table = state.table
    new = replace(
        table,
        columns=tuple(replace(c, name=new_name) if c.name.lower() == key else c for c in table.columns),
        primary_key=rename(table.primary_key),
        uniques=tuple(replace(u, columns=rename(u.columns)) for u in table.uniques),
        checks=tuple(
            replace(c, expression=expressions.rename_columns(c.expression, renames), columns=rename(c.columns))
            for c in table.checks
        ),
        foreign_keys=tuple(replace(f, columns=rename(f.columns)) for f in table.foreign_keys),
        indexes=tuple(_rename_in_index(i, renames) for i in table.indexes),
    )
    return _State(new, sources, renamed)


# --- choosing native statements ---------------------------------------------------------------------------


def _in_constraint(table: TableDef, column: str) -> list[str]:
    """What ties a column down: constraints and indexes that use it."""
    name = column.lower()
    found = []
    if name in _names(table.primary_key):
        found.append("primary key")
    if any(name in _names(u.columns) for u in table.uniques):
        found.append("unique constraint")
    if any(name in expressions.columns_in(c.expression) for c in table.checks):
        found.append("check constraint")
    if any(name in _names(f.columns) for f in table.foreign_keys):
        found.append("foreign key")
    if any(_index_uses(i, name) for i in table.indexes):
        found.append("index")
    return found


Native = tuple[list[str] | None, str]  # the statements, or None and why DuckDB would refuse


def _alter(table: TableDef) -> str:
    return f"ALTER TABLE {qualified(table.name, table.schema)}"


@singledispatch
def _native(change: object, table: TableDef, blocked: list[str]) -> Native:
    """Native statements for one change on ``table`` as it is, or None and the reason DuckDB would refuse
    (one registration per change type)."""
    raise TypeError(change)


@_native.register
def _(change: AddColumn, table: TableDef, blocked: list[str]) -> Native:
    if change.foreign_key is not None:
        return None, "DuckDB cannot add a column with a foreign key"
    if (not change.column.nullable or change.unique) and blocked:
        return None, f"DuckDB cannot add a NOT NULL or unique column to a table with {blocked[0]}"
    return [f"{_alter(table)} ADD COLUMN {change.column.sql()}" + (" UNIQUE" if change.unique else "")], ""


@_native.register
def _(change: DropColumn, table: TableDef, blocked: list[str]) -> Native:
    if blocked:
        return None, f"DuckDB cannot drop a column of a table with {blocked[0]}"
    tied = _in_constraint(table, change.name)
    if tied:
        return None, f"column {change.name} is used by a {tied[0]}"
    position = table.position(change.name)
    indexed = {c.lower() for c in table.primary_key} | {c.lower() for u in table.uniques for c in u.columns}
    if any(table.position(c) > position for c in indexed):
        return None, "DuckDB cannot drop a column before a key column"
    return [f"{_alter(table)} DROP COLUMN {quote(table.column(change.name).name)}"], ""


@_native.register
def _(change: RenameTable, table: TableDef, blocked: list[str]) -> Native:
    if blocked:
        return None, f"DuckDB cannot rename a table with {blocked[0]}"
    if table.foreign_keys:
        return None, "renaming a table with foreign keys leaves DuckDB's parent tables pointing at the old name"
    return [f"{_alter(table)} RENAME TO {quote(change.new_name)}"], ""


def _add_key(kind: str, columns: tuple[str, ...], table: TableDef, blocked: list[str]) -> Native:
    if blocked:
        return None, f"DuckDB cannot add a key to a table with {blocked[0]}"
    return [f"{_alter(table)} ADD {kind} ({', '.join(quote(table.column(c).name) for c in columns)})"], ""


@_native.register
def _(change: AddPrimaryKey, table: TableDef, blocked: list[str]) -> Native:
    if table.primary_key and not blocked:  # on a blocked table, DuckDB's refusal is the reason given
        return None, "the table already has a primary key"
    return _add_key("PRIMARY KEY", change.columns, table, blocked)


@_native.register
def _(change: AddUnique, table: TableDef, blocked: list[str]) -> Native:
    return _add_key("UNIQUE", change.columns, table, blocked)


@_native.register
def _(change: CreateIndex, table: TableDef, blocked: list[str]) -> Native:
    return [change.index.sql(table.name, table.schema)], ""


@_native.register
def _(change: DropIndex, table: TableDef, blocked: list[str]) -> Native:
    return [f"DROP INDEX {qualified(change.name, table.schema)}"], ""


@_native.register
def _(change: SetTableComment, table: TableDef, blocked: list[str]) -> Native:
    value = "NULL" if change.comment is None else literal(change.comment)
    return [f"COMMENT ON TABLE {qualified(table.name, table.schema)} IS {value}"], ""


@_native.register
def _(change: AddCheck, table: TableDef, blocked: list[str]) -> Native:
    return None, "DuckDB cannot add a CHECK constraint to an existing table"


@_native.register
def _(change: AddForeignKey, table: TableDef, blocked: list[str]) -> Native:
    return None, "DuckDB cannot add a FOREIGN KEY to an existing table"


@_native.register
def _(change: DropConstraint, table: TableDef, blocked: list[str]) -> Native:
    return None, "DuckDB cannot drop a constraint"


@_native.register
def _(change: AlterColumn, table: TableDef, blocked: list[str]) -> Native:
    """Each attribute the change sets, as its own statement; the first DuckDB would refuse stops them all."""
    column = table.column(change.name)
    statements: list[str] = []
    for part in (_native_type, _native_nullable, _native_default, _native_comment, _native_rename):
        native, reason = part(change, column, table, blocked)
        if native is None:
            return None, reason
        statements += native
    return statements, ""


def _native_type(change: AlterColumn, column: Column, table: TableDef, blocked: list[str]) -> Native:
    if change.type is None:
        return [], ""
    tied = _in_constraint(table, column.name)
    if blocked or tied:
        return None, f"DuckDB cannot change the type of a column of a table with {(blocked or tied)[0]}"
    using = f" USING {change.using}" if change.using else ""
    return [f"{_alter(table)} ALTER COLUMN {quote(column.name)} TYPE {change.type}{using}"], ""


def _native_nullable(change: AlterColumn, column: Column, table: TableDef, blocked: list[str]) -> Native:
    if change.nullable is None or change.nullable == column.nullable:
        return [], ""
    if blocked:
        return None, f"DuckDB cannot change NOT NULL on a table with {blocked[0]}"
    return [f"{_alter(table)} ALTER COLUMN {quote(column.name)} {'DROP' if change.nullable else 'SET'} NOT NULL"], ""


def _native_default(change: AlterColumn, column: Column, table: TableDef, blocked: list[str]) -> Native:
    if isinstance(change.default, _Keep):
        return [], ""
    action = "DROP DEFAULT" if change.default is None else f"SET DEFAULT {change.default}"
    return [f"{_alter(table)} ALTER COLUMN {quote(column.name)} {action}"], ""


def _native_comment(change: AlterColumn, column: Column, table: TableDef, blocked: list[str]) -> Native:
    if isinstance(change.comment, _Keep):
        return [], ""
    value = "NULL" if change.comment is None else literal(change.comment)
    return [f"COMMENT ON COLUMN {qualified(table.name, table.schema)}.{quote(column.name)} IS {value}"], ""


def _native_rename(change: AlterColumn, column: Column, table: TableDef, blocked: list[str]) -> Native:
    if change.new_name is None or change.new_name == column.name:
        return [], ""
    if blocked:
        return None, f"DuckDB cannot rename a column of a table with {blocked[0]}"
    if "foreign key" in _in_constraint(table, column.name):
        return None, "DuckDB cannot rename a column used by a foreign key"
    return [f"{_alter(table)} RENAME COLUMN {quote(column.name)} TO {quote(change.new_name)}"], ""


# --- the plan ---------------------------------------------------------------------------------------------


def blockers(conn: Connection, table: TableDef, dropped_index: bool = False) -> list[str]:
    """What makes DuckDB refuse most ALTERs on the table: an index, or a foreign key pointing at it."""
    found = []
    if table.indexes:
        found.append(f"an index ({table.indexes[0].name})")
    elif dropped_index:
        found.append("an index dropped earlier in this transaction (DuckDB keeps it until commit)")
    incoming = catalog.referencing(conn, table.name, table.schema)
    if incoming:
        found.append(f"a foreign key from {incoming[0][0]}")
    return found


def plan(
    conn: Connection, table_name: str, changes: Sequence[Change], schema: str | None = None, dropped_index: bool = False
) -> Plan:
    """Plan ``changes`` to one table: native if DuckDB allows each of them, else one rebuild for all."""
    table = catalog.read_table(conn, table_name, schema)
    blocked = blockers(conn, table, dropped_index)
    state = _State(table, {c.name.lower(): quote(c.name) for c in table.stored_columns()})
    statements: list[str] | None = []
    reasons = []
    for change in changes:
        native, reason = _native(change, state.table, blocked)
        if native is None:
            statements = None
            reasons.append(reason)
        elif statements is not None:
            statements += native
        if isinstance(change, CreateIndex) and not blocked:
            blocked.append(f"an index ({change.index.name})")
        if isinstance(change, DropIndex):
            blocked.append("an index dropped earlier in this transaction (DuckDB keeps it until commit)")
        state = _apply(change, state)
    if statements is not None:
        return Plan(table.name, "native", statements, tables=[state.table])
    return _rebuild(conn, table, state, reasons)


def _dependents(conn: Connection, table: TableDef) -> list[TableDef]:
    """Every table that references ``table`` through a chain of foreign keys, each after the tables it
    references (so they can be created again in this order, and dropped in the reverse)."""
    found: dict[str, TableDef] = {}
    frontier = [table.name]
    while frontier:
        for child, _ in catalog.referencing(conn, frontier.pop(), table.schema):
            if child.lower() not in found and child.lower() != table.name.lower():
                found[child.lower()] = catalog.read_table(conn, child, table.schema)
                frontier.append(child)
    depends_on = {key: [f.ref_table.lower() for f in t.foreign_keys] for key, t in found.items()}
    try:
        return [found[key] for key in graph.ordered(depends_on, name=lambda key: found[key].name)]
    except graph.Cycle as cycle:
        raise PlanError(f"the tables {', '.join(cycle.members)} reference each other in a cycle") from None


def _recreated(dependents: list[TableDef], old: TableDef, state: _State) -> tuple[list[TableDef], list[str]]:
    """The referencing tables as they are created again, and what the rebuild changes in them besides.

    Their foreign keys follow the table's new name and column names. DuckDB requires a foreign key column to
    have exactly its key's type, so a key whose type changes carries the new type to the columns that
    reference it, and on to the columns that reference those (``dependents`` are in that order).
    """
    new_keys: dict[tuple[str, str], Column] = {}
    for column in old.columns:
        new_name = state.renamed.get(column.name.lower(), column.name)
        if state.table.has_column(new_name) and state.table.column(new_name).type_sql() != column.type_sql():
            new_keys[(old.name.lower(), column.name.lower())] = state.table.column(new_name)
    recreated, carried = [], []
    for child in dependents:
        columns = {c.name.lower(): c for c in child.columns}
        for fk in child.foreign_keys:
            for name, ref in zip(fk.columns, fk.ref_columns, strict=True):
                key = new_keys.get((fk.ref_table.lower(), ref.lower()))
                if key is not None and columns[name.lower()].type_sql() != key.type_sql():
                    columns[name.lower()] = replace(columns[name.lower()], type=key.type, type_name=key.type_name)
                    new_keys[(child.name.lower(), name.lower())] = key
                    carried.append(f"{child.name}.{name} becomes {key.type_sql()}, the type of {fk.ref_table}.{ref}")
        recreated.append(_retarget(replace(child, columns=tuple(columns.values())), old, state))
    return recreated, carried


def _retarget(child: TableDef, old: TableDef, state: _State) -> TableDef:
    """A referencing table's definition after its parent was renamed or had referenced columns renamed."""
    foreign_keys = []
    for fk in child.foreign_keys:
        if fk.ref_table.lower() == old.name.lower():
            columns = tuple(state.renamed.get(c.lower(), c) for c in fk.ref_columns)
            fk = replace(fk, ref_table=state.table.name, ref_columns=columns)
        foreign_keys.append(fk)
    return replace(child, foreign_keys=tuple(foreign_keys))


def _rebuild(conn: Connection, old: TableDef, state: _State, reasons: list[str]) -> Plan:
    new = state.table
    if any(fk.ref_table.lower() == old.name.lower() for fk in new.foreign_keys):
        raise PlanError(
            f"table {old.name} references itself; rebuilding such a table is not supported. "
            "Drop the self-referencing foreign key first"
        )
    dependents = _dependents(conn, old)
    _refuse_removing_referenced_columns(dependents, old, state)
    schema = old.schema
    statements = [_count_rows(old, new.name, dependents), *map(_set_aside, dependents)]
    while_all_exist, after_drop = _copy_statements(old, new, state)
    statements += while_all_exist
    statements += [f"DROP TABLE {qualified(t.name, schema)}" for t in [*reversed(dependents), old]]
    statements += after_drop
    recreated, carried = _recreated(dependents, old, state)
    for dependent in recreated:
        statements += _restore(dependent)
    rebuilt = [new, *recreated]
    statements += [*map(_check_row_count, rebuilt), f"DROP TABLE {quote(_COUNTS)}"]
    for table in rebuilt:
        statements += table.index_sql() + table.comment_sql()
    return Plan(old.name, "rebuild", statements, reasons, [t.name for t in rebuilt], carried, rebuilt)


_COUNTS = f"{TEMP_PREFIX}counts"  # the row count of each rebuilt table, by its name after the rebuild


def _count_rows(old: TableDef, new_name: str, dependents: list[TableDef]) -> str:
    """Count the rows of the table and its referencing tables before the rebuild, for ``_check_row_count``."""
    return f"CREATE OR REPLACE TEMP TABLE {quote(_COUNTS)} AS " + " UNION ALL ".join(
        f"SELECT {literal(name)} AS new_name, count(*) AS n FROM {qualified(table.name, old.schema)}"
        for table, name in [(old, new_name), *((d, d.name) for d in dependents)]
    )


def _check_row_count(table: TableDef) -> str:
    """Fail the rebuild when a rebuilt table does not hold as many rows as ``_count_rows`` counted."""
    source = qualified(table.name, table.schema)
    return (
        f"SELECT error('row count of {table.name} changed during its rebuild: ' || c.n || ' before, ' || "
        f"(SELECT count(*) FROM {source}) || ' after') "
        f"FROM {quote(_COUNTS)} c WHERE c.new_name = {literal(table.name)} "
        f"AND c.n <> (SELECT count(*) FROM {source})"
    )


def _kept(table_name: str) -> str:
    """The temporary table that holds a table's rows while it is dropped and created again."""
    return quote(f"{TEMP_PREFIX}keep_{table_name}")


def _set_aside(dependent: TableDef) -> str:
    """Keep a referencing table's rows while it is dropped, so the table it references can be."""
    return f"CREATE TEMP TABLE {_kept(dependent.name)} AS SELECT * FROM {qualified(dependent.name, dependent.schema)}"


def _restore(dependent: TableDef) -> list[str]:
    """Create a referencing table again and put back the rows ``_set_aside`` kept."""
    stored = ", ".join(quote(c.name) for c in dependent.stored_columns())
    return [
        dependent.create_sql(),
        f"INSERT INTO {qualified(dependent.name, dependent.schema)} ({stored}) SELECT {stored} "
        f"FROM {_kept(dependent.name)}",
        f"DROP TABLE {_kept(dependent.name)}",
    ]


def _copy_statements(old: TableDef, new: TableDef, state: _State) -> tuple[list[str], list[str]]:
    """Replace ``old`` by ``new`` holding the same rows, converted: the statements to run while every other
    table is still there (the conversion, so a USING expression may read any table), and those to run once
    the referencing tables and ``old`` are dropped.

    DuckDB keeps a foreign key's parent pointing at the child's old name when the child is renamed (DELETE
    on the parent then fails with "Table with name ... does not exist", and the parent can no longer be
    dropped). So only a table without foreign keys is built under a scratch name and renamed; a table with
    them is created under its final name: directly when that name is free (a renamed table), else from a
    temporary table holding its converted rows (two copies).
    """
    schema = old.schema
    targets = [c for c in new.stored_columns() if state.column_source(c.name) is not None]
    columns = ", ".join(quote(c.name) for c in targets)
    converted = (
        f"SELECT {', '.join(f'{state.column_source(c.name)} AS {quote(c.name)}' for c in targets)} "
        f"FROM {qualified(old.name, schema)}"
    )
    if not new.foreign_keys:
        scratch = f"{TEMP_PREFIX}new_{new.name}"
        before = [new.create_sql(scratch), f"INSERT INTO {qualified(scratch, schema)} ({columns}) {converted}"]
        return before, [f"ALTER TABLE {qualified(scratch, schema)} RENAME TO {quote(new.name)}"]
    if new.name.lower() != old.name.lower():
        return [new.create_sql(), f"INSERT INTO {qualified(new.name, schema)} ({columns}) {converted}"], []
    keep = _kept(old.name)
    return [f"CREATE TEMP TABLE {keep} AS {converted}"], [
        new.create_sql(),
        f"INSERT INTO {qualified(new.name, schema)} ({columns}) SELECT {columns} FROM {keep}",
        f"DROP TABLE {keep}",
    ]


def _refuse_removing_referenced_columns(dependents: list[TableDef], old: TableDef, state: _State) -> None:
    kept = {c.name.lower() for c in state.table.columns} | set(state.renamed)
    for child in dependents:
        for fk in child.foreign_keys:
            gone = [c for c in fk.ref_columns if c.lower() not in kept]
            if fk.ref_table.lower() == old.name.lower() and gone:
                raise PlanError(
                    f"column {old.name}.{gone[0]} is referenced by a foreign key of {child.name} "
                    f"({', '.join(fk.columns)}); drop that foreign key first"
                )


_KINDS = {"primary": "primary key", "unique": "unique constraint", "foreignkey": "foreign key", "check": "check"}


@dataclass(frozen=True)
class _Candidate:
    kind: str
    name: str | None
    columns: tuple[str, ...]
    constraint: Unique | Check | ForeignKey | tuple[str, ...]
    generated_name: str | None

    def describe(self) -> str:
        return f"{self.name} ({_KINDS[self.kind]} on {', '.join(self.columns)})"

    def is_named(self, name: str | None) -> bool:
        known = (n.lower() for n in (self.name, self.generated_name) if n is not None)
        return name is not None and name.lower() in known


def _candidates(table: TableDef) -> list[_Candidate]:
    key = table.primary_key
    found = [_Candidate("primary", table.primary_key_name, key, key, table.primary_key_generated_name)]
    found = found if key else []
    found += [_Candidate("unique", u.name, u.columns, u, u.generated_name) for u in table.uniques]
    found += [_Candidate("foreignkey", f.name, f.columns, f, f.generated_name) for f in table.foreign_keys]
    found += [_Candidate("check", c.name, c.columns, c, c.generated_name) for c in table.checks]
    return found


def find_constraint(table: TableDef, name: str | None, kind: str | None) -> DropConstraint:
    """The constraint ``op.drop_constraint(name, table, type_=kind)`` means, though DuckDB keeps no names.

    Matched, in order: by the name it was created with, where ``constraint_names`` kept it, or by DuckDB's
    generated name (``t_a_b_key``, ``t_x_id_fkey``, ``t_x_check``, ``t_id_pkey``), which revisions written
    before the name was kept use; else, when ``type_`` is given and the table has exactly one constraint of
    that kind, that one. Anything else is refused with the table's constraints listed.
    """
    if kind is not None and kind not in _KINDS:
        raise PlanError(f"unknown constraint type {kind!r}; use one of {', '.join(_KINDS)}")
    of_kind = [c for c in _candidates(table) if kind in (None, c.kind)]
    found = _the_one(of_kind, name, kind)
    if found is not None:
        return DropConstraint(found.constraint)
    listed = "; ".join(c.describe() for c in of_kind) or "none"
    raise PlanError(
        f"table {table.name} has no {_KINDS.get(kind or '', 'constraint')} that matches {name!r} "
        f"(DuckDB keeps no constraint names; it has: {listed}); drop it by one of those names"
    )


def _the_one(candidates: list[_Candidate], name: str | None, kind: str | None) -> _Candidate | None:
    """The one candidate by that name; else, when a kind was given, the only candidate (of that kind)."""
    by_name = [c for c in candidates if c.is_named(name)]
    if len(by_name) == 1:
        return by_name[0]
    if kind is not None and len(candidates) == 1:
        return candidates[0]
    return None
