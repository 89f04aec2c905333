"""``ccdash-migrate rehearse``: run the pending revisions for real, on a copy, and report what each did.

The database is copied once (when a revision is pending), while this process holds a read-only connection to
it (so nothing writes meanwhile, and nothing is written to it: the file keeps its bytes and its modification
time). The revisions then run one at a time on the copy, through the same machinery as a real upgrade, and for
each the report gives its run time, success or its failure, and what the catalog says it changed, table by
table: rows before and after (``count(*)``, which DuckDB answers from the table's statistics, without reading
it), columns, keys, checks and indexes added, dropped or changed. Rows are not compared one by one: that costs
a scan of every table (and memory in proportion) whatever the revision did. A revision that updates rows in
place therefore shows no change. The copy is thrown away.

Why a copy rather than the revisions run on the file itself in a transaction that is rolled back: DuckDB
writes large appends (every table rebuild) into the database file before commit, so a rolled-back rebuild
still leaves the file changed and larger; with those writes switched off (``enable_optimistic_write``) the
appends are held in memory instead, so a rehearsal would need memory in proportion to the tables it rebuilds
and would not take the time ``up`` takes. A revision that commits its own transaction would commit onto the
real file, found out only afterwards; DuckDB has no savepoints, so several revisions in one transaction are
not the separate transactions ``up`` runs them in; and the file would stay locked (CCDash kept out) for the
whole rehearsal rather than for the copy. A filesystem that shares blocks makes the copy a clone
(``filecopy``), which costs what the revisions change.

A PostgreSQL database is not copied here: a copy of a database on a server is the server's to make
(``CREATE DATABASE copy TEMPLATE db``, or ``pg_dump`` restored into another database), and ``up`` on that copy,
named with ``-x url``, is the rehearsal. ``rehearse`` refuses it and says so (``server_refusal``).
"""

from __future__ import annotations

import shlex
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import Script, ScriptDirectory
from sqlalchemy.engine import URL, Connection

from ccdash_alembic.ddl import catalog, census
from ccdash_alembic.ddl.tabledef import quote
from ccdash_alembic.errors import MigrateError, MigrationFailed, UsageError, first_line
from ccdash_alembic.runtime import database, filecopy
from ccdash_alembic.runtime.backup import server_command
from ccdash_alembic.runtime.settings import Settings, option_fields, program_config


@dataclass(frozen=True)
class Table:
    """What the catalog says of one user table, for comparing two readings."""

    rows: int
    columns: dict[str, str] = field(default_factory=dict)  # name -> type, NOT NULL, default
    constraints: frozenset[str] = frozenset()  # keys and checks, as DuckDB writes them
    indexes: dict[str, str] = field(default_factory=dict)  # name -> CREATE INDEX


Tables = dict[str, Table]  # by name (schema-qualified outside main)


@dataclass(frozen=True)
class TableChange:
    """One table a revision changed: its rows before and after (None: the table was not there) and what
    changed in its schema (``+column note VARCHAR``, ``column n: INTEGER -> BIGINT``, ``-index ix_a``)."""

    table: str
    rows_before: int | None
    rows_after: int | None
    schema: tuple[str, ...] = ()

    def __str__(self) -> str:
        if self.rows_before is None:
            return f"{self.table} created ({self.rows_after} rows)"
        if self.rows_after is None:
            return f"{self.table} dropped ({self.rows_before} rows)"
        rows = (
            f"{self.rows_before} rows"
            if self.rows_before == self.rows_after
            else f"{self.rows_before} -> {self.rows_after} rows"
        )
        return f"{self.table} {rows}" + (f" ({', '.join(self.schema)})" if self.schema else "")


@dataclass
class Rehearsal:
    """One revision as the rehearsal ran it: what ``rehearse`` prints, two lines each."""

    revision: str
    name: str
    status: str = "success"
    milliseconds: int | None = None
    tables: list[TableChange] = field(default_factory=list)  # the tables it changed, by name
    error: str | None = None
    refusal: MigrateError | None = None  # when the failure was a refusal (dirty, data loss...): up's answer too

    def summary(self) -> str:
        """Its error, or the tables it changed, in one line."""
        if self.error:
            return self.error
        return ", ".join(str(change) for change in self.tables) or "no table changed its rows or schema"


@dataclass
class _Reading:
    """The database, or its copy, as a read-only connection found it: its revisions, its tables, and the time
    the history recorded for a revision."""

    heads: tuple[str, ...] = ()
    tables: Tables = field(default_factory=dict)
    milliseconds: int | None = None


def copy_database(
    config: Config, target: database.Target, settings: Settings, destination: Path, revision: str
) -> tuple[_Reading, list[tuple[str, str]]]:
    """The database as it is, and the revisions an upgrade to ``revision`` would run on it; when there are any,
    the file (and its log) copied to ``destination``. All under one read-only connection, so no one writes
    meanwhile; a child process copies the file, since closing a descriptor of it here would drop that
    connection's lock."""
    assert target.path is not None
    engine = database.read_only_engine(target)
    with database.connect(engine, target, settings.lock_timeout) as connection:
        found = _reading(connection)
        upcoming = pending(config, found.heads, revision)
        if upcoming:
            pairs = [(target.path, destination), (Path(f"{target.path}.wal"), Path(f"{destination}.wal"))]
            filecopy.copy(pairs, durable=False)  # thrown away after the rehearsal
    return found, upcoming


def _config_for(config: Config, settings: Settings, copy: Path, existed: bool) -> Config:
    """The same environment and options, pointed at the copy, with errors raised rather than printed.

    The copy is not backed up, but the data-loss guard lets through what ``up`` would let through: ``up``
    makes a backup of an existing database before its first step unless ``-x backup=false``."""
    assert config.config_file_name is not None
    options: dict[str, object] = {
        f.name: getattr(settings, f.name) for f in option_fields() if getattr(settings, f.name) != f.default
    }
    options.update(settings.extra)  # the application's own options
    options.update(
        db=copy,
        url=None,
        backup=False,
        backup_dir=None,
        lock_timeout=0,
        on_failure=None,
        confirm_data_loss=settings.confirm_data_loss or (settings.backup and existed),
    )
    return program_config(config.config_file_name, options, ini_section=config.config_ini_section)


def _read(copy: Path, revision: str) -> _Reading:
    """Read the copy after ``revision`` ran on it, without writing it."""
    target = database.Target(URL.create("duckdb", database=str(copy)), copy, "the rehearsal's copy")
    engine = database.read_only_engine(target)
    try:
        with engine.connect() as connection:
            return _reading(connection, revision)
    finally:
        engine.dispose()


def _reading(connection: Connection, revision: str | None = None) -> _Reading:
    heads = (
        tuple(r[0] for r in connection.exec_driver_sql("SELECT version_num FROM alembic_version"))
        if catalog.has_table(connection, "alembic_version")
        else ()
    )
    return _Reading(heads, tables(connection), _recorded_time(connection, revision) if revision else None)


def tables(connection: Connection) -> Tables:
    """Each user table (the run's own bookkeeping left out, as the data-loss census leaves it out) with its
    row count and schema, from the catalog and one ``count(*)`` per table."""
    rows = {_name(count.schema, count.name): count.rows for count in census.take(connection).values()}
    columns: dict[str, dict[str, str]] = {name: {} for name in rows}
    constraints: dict[str, set[str]] = {name: set() for name in rows}
    indexes: dict[str, dict[str, str]] = {name: {} for name in rows}
    for schema, table, column, definition in catalog.column_definitions(connection):
        columns.get(_name(schema, table), {})[column] = definition
    for schema, table, constraint in catalog.table_constraints(connection):
        constraints.get(_name(schema, table), set()).add(constraint)
    for schema, table, index, statement in catalog.table_indexes(connection):
        indexes.get(_name(schema, table), {})[index] = statement
    return {name: Table(rows[name], columns[name], frozenset(constraints[name]), indexes[name]) for name in rows}


def _name(schema: str, table: str) -> str:
    return table if schema.lower() == census.DEFAULT_SCHEMA else f"{schema}.{table}"


def changes(before: Tables, after: Tables) -> list[TableChange]:
    """The tables created, dropped, or changed in rows or schema between two readings, by name."""
    found = []
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        schema = _schema_changes(old, new) if old is not None and new is not None else ()
        if old is None or new is None or old.rows != new.rows or schema:
            found.append(TableChange(name, old.rows if old else None, new.rows if new else None, schema))
    return found


def _schema_changes(old: Table, new: Table) -> tuple[str, ...]:
    """What changed in one table's columns, keys and checks, and indexes."""
    changed = _named_changes("column", old.columns, new.columns, detailed=True)
    changed += [f"-{c}" for c in sorted(old.constraints - new.constraints)]
    changed += [f"+{c}" for c in sorted(new.constraints - old.constraints)]
    changed += _named_changes("index", old.indexes, new.indexes, detailed=False)
    return tuple(changed)


def _named_changes(kind: str, old: dict[str, str], new: dict[str, str], detailed: bool) -> list[str]:
    """Named things (columns, indexes) dropped, added or redefined; ``detailed``: with their definitions
    (a column's type says what changed, an index's statement only repeats its name and columns)."""
    changed = [f"-{kind} {name}" for name in old if name not in new]
    for name, definition in new.items():
        was = old.get(name)
        if was is None:
            changed.append(f"+{kind} {name} {definition}" if detailed else f"+{kind} {name}")
        elif was != definition:
            changed.append(f"{kind} {name}: {was} -> {definition}" if detailed else f"{kind} {name} changed")
    return changed


def pending(config: Config, heads: tuple[str, ...], destination: str) -> list[tuple[str, str]]:
    """``(revision, name)`` of each revision an upgrade from ``heads`` to ``destination`` would run, in order."""
    script = ScriptDirectory.from_config(config)
    upcoming = script.revision_map.iterate_revisions(destination, heads or "base")
    return [(r.revision, r.doc) for r in reversed(list(upcoming)) if isinstance(r, Script) and r.revision not in heads]


def server_refusal(target: database.Target) -> UsageError:
    """The refusal of a rehearsal on a PostgreSQL database, with the commands that make a copy, upgrade it and
    drop it (the URL and commands carry no password)."""
    given = target.url
    name = str(given.database)
    copy = f"{name}_rehearsal"
    url = URL.create(given.drivername, given.username, None, given.host, given.port, copy, given.query)
    fill = f"{server_command('pg_dump', given, '-Fc', name)} | {server_command('pg_restore', given, '-d', copy)}"
    upgrade = shlex.join(["ccdash-migrate", "-x", f"url={url.render_as_string()}", "up"])
    return UsageError(
        f"ccdash-migrate rehearse copies DuckDB files, and {target.describe()} is a PostgreSQL database",
        f"Rehearse on a copy of it: CREATE DATABASE {quote(copy)} TEMPLATE {quote(name)} (while nothing is "
        f"connected to {name}; else create it empty and fill it: {fill}), then {upgrade}, then DROP DATABASE "
        f"{quote(copy)}",
    )


def rehearse(config: Config, settings: Settings, destination: str = "head") -> list[Rehearsal]:
    """Run the revisions up to ``destination`` on a copy of the database, one by one, stopping at a failure."""
    target = database.resolve(settings)
    with tempfile.TemporaryDirectory(prefix="ccdash-rehearsal-") as folder:
        # the copy keeps the database's file name, so DuckDB 1.1 opens it as it opens the database
        copy = Path(folder) / (target.path.name if target.path is not None else "rehearsal.db")
        existed = target.path is not None and target.path.exists()
        reading, upcoming = (
            copy_database(config, target, settings, copy, destination)
            if existed
            else (_Reading(), pending(config, (), destination))
        )
        rehearsal_config = _config_for(config, settings, copy, existed)
        results = []
        for revision, name in upcoming:
            result = Rehearsal(revision, name)
            results.append(result)
            try:
                command.upgrade(rehearsal_config, revision)
            except Exception as error:  # the rehearsal reports any failure instead of stopping on it
                result.status, result.error = "failed", first_line(error)
                if isinstance(error, MigrateError) and not isinstance(error, MigrationFailed):
                    result.refusal = error
                break
            before, reading = reading, _read(copy, revision)
            result.milliseconds = reading.milliseconds
            result.tables = changes(before.tables, reading.tables)
        return results


def _recorded_time(connection: Connection, revision: str) -> int | None:
    row = connection.exec_driver_sql(
        "SELECT execution_time_ms FROM migration_history WHERE version = ? AND direction IN ('up', 'baseline')"
        " ORDER BY id DESC LIMIT 1",
        (revision,),
    ).fetchone()
    return int(row[0]) if row and row[0] is not None else None
