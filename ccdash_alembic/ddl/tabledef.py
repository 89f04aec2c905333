"""A table as DuckDB's catalog describes it, and the SQL that creates it again.

The rebuild planner reads a table into these plain dataclasses, changes them, and renders new DDL. Types,
defaults and expressions are kept exactly as DuckDB spells them, so a rebuilt table is the same table in
everything the change did not touch (column order, defaults, NOT NULL, generated columns, constraints,
indexes, comments). Identifiers are always quoted when rendered, so names that need quoting (mixed case,
spaces, reserved words) survive.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def qualified(name: str, schema: str | None) -> str:
    return f"{quote(schema)}.{quote(name)}" if schema else quote(name)


def primary_key_sql(columns: tuple[str, ...]) -> str:
    return f"PRIMARY KEY ({', '.join(map(quote, columns))})"


@dataclass(frozen=True)
class Column:
    """``type`` is DuckDB's spelling of the type; ``type_name`` the user-defined type (a named ENUM) it is,
    which DuckDB's catalog shows only by its labels."""

    name: str
    type: str
    nullable: bool = True
    default: str | None = None
    generated: str | None = None  # expression of a VIRTUAL generated column
    comment: str | None = None
    type_name: str | None = None

    def type_sql(self) -> str:
        return quote(self.type_name) if self.type_name else self.type

    def sql(self) -> str:
        parts = [quote(self.name), self.type_sql()]
        if self.generated is not None:
            parts.append(f"GENERATED ALWAYS AS ({self.generated}) VIRTUAL")
        elif self.default is not None:
            parts.append(f"DEFAULT {self.default}")
        if not self.nullable:
            parts.append("NOT NULL")
        return " ".join(parts)


@dataclass(frozen=True)
class ForeignKey:
    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...]
    # ``name``: the name the constraint was created with when ``constraint_names`` knows it, else DuckDB's own;
    # ``generated_name``: DuckDB's own (``<table>_<columns>_fkey``), as read (None until the catalog has it).
    # The same holds for ``Unique``, ``Check`` and ``TableDef.primary_key_name``.
    name: str | None = None
    generated_name: str | None = field(default=None, compare=False)

    def sql(self) -> str:
        cols = ", ".join(map(quote, self.columns))
        refs = ", ".join(map(quote, self.ref_columns))
        return f"FOREIGN KEY ({cols}) REFERENCES {quote(self.ref_table)} ({refs})"


@dataclass(frozen=True)
class Unique:
    columns: tuple[str, ...]
    name: str | None = None
    generated_name: str | None = field(default=None, compare=False)

    def sql(self) -> str:
        return f"UNIQUE ({', '.join(map(quote, self.columns))})"


@dataclass(frozen=True)
class Check:
    expression: str
    columns: tuple[str, ...] = ()
    name: str | None = None
    generated_name: str | None = field(default=None, compare=False)

    def sql(self) -> str:
        return f"CHECK ({self.expression})"


@dataclass(frozen=True)
class Index:
    """An explicit index. ``elements`` is the SQL of each indexed element (a quoted column or an expression);
    ``columns`` the column each element names, or None for an expression."""

    name: str
    elements: tuple[str, ...]
    columns: tuple[str | None, ...]
    unique: bool = False

    def sql(self, table: str, schema: str | None) -> str:
        unique = "UNIQUE " if self.unique else ""
        return f"CREATE {unique}INDEX {quote(self.name)} ON {qualified(table, schema)} ({', '.join(self.elements)})"


@dataclass(frozen=True)
class TableDef:
    name: str
    schema: str | None
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()
    primary_key_name: str | None = None
    primary_key_generated_name: str | None = None
    uniques: tuple[Unique, ...] = ()
    checks: tuple[Check, ...] = ()
    foreign_keys: tuple[ForeignKey, ...] = ()
    indexes: tuple[Index, ...] = ()
    comment: str | None = None

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name.lower() == name.lower():
                return column
        raise KeyError(name)

    def has_column(self, name: str) -> bool:
        return any(c.name.lower() == name.lower() for c in self.columns)

    def position(self, name: str) -> int:
        return [c.name.lower() for c in self.columns].index(name.lower())

    def renamed(self, name: str) -> TableDef:
        return replace(self, name=name)

    def create_sql(self, name: str | None = None) -> str:
        """``CREATE TABLE`` with every column and constraint; indexes and comments are separate statements."""
        parts = [c.sql() for c in self.columns]
        if self.primary_key:
            parts.append(primary_key_sql(self.primary_key))
        parts += [u.sql() for u in self.uniques]
        parts += [c.sql() for c in self.checks]
        parts += [f.sql() for f in self.foreign_keys]
        body = ",\n    ".join(parts)
        return f"CREATE TABLE {qualified(name or self.name, self.schema)} (\n    {body}\n)"

    def index_sql(self) -> list[str]:
        return [index.sql(self.name, self.schema) for index in self.indexes]

    def comment_sql(self) -> list[str]:
        table = qualified(self.name, self.schema)
        statements = [f"COMMENT ON TABLE {table} IS {literal(self.comment)}"] if self.comment is not None else []
        statements += [
            f"COMMENT ON COLUMN {table}.{quote(c.name)} IS {literal(c.comment)}"
            for c in self.columns
            if c.comment is not None
        ]
        return statements

    def stored_columns(self) -> list[Column]:
        """Columns that hold data (generated columns are computed, never copied)."""
        return [c for c in self.columns if c.generated is None]
