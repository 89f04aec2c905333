"""``ccdash-migrate rehearse``: run the pending revisions for real, on a copy, and report what each did.

The database is copied while this process holds a read-only connection to it (so nothing writes meanwhile,
and nothing is written to it: the file keeps its bytes and its modification time). The revisions then run
one at a time on the copy, through the same machinery as a real upgrade, and for each the report gives its
run time, the rows each table gained and lost (compared with the copy as it was before that revision), and
whether it succeeded. The copy is thrown away.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
from alembic import command
from alembic.config import Config
from alembic.script import Script, ScriptDirectory

from ccdash_alembic.ddl import catalog
from ccdash_alembic.ddl.tabledef import literal, quote
from ccdash_alembic.errors import MigrateError, MigrationFailed, first_line
from ccdash_alembic.runtime import database, filecopy
from ccdash_alembic.runtime.history_tables import OWN_TABLES
from ccdash_alembic.runtime.settings import Settings, option_fields, program_config


@dataclass
class Rehearsal:
    revision: str
    name: str
    status: str = "success"
    milliseconds: int | None = None
    changes: dict[str, tuple[int, int]] = field(default_factory=dict)  # table -> (rows gained, rows lost)
    error: str | None = None
    refusal: MigrateError | None = None  # when the failure was a refusal (dirty, data loss...): up's answer too


def copy_database(target: database.Target, settings: Settings, destination: Path) -> None:
    """Copy the file (and its log) while holding a read-only connection, so no one writes meanwhile; a child
    process copies it, since closing a descriptor of the file here would drop that connection's lock."""
    assert target.path is not None
    engine = database.read_only_engine(target)
    with database.connect(engine, target, settings.lock_timeout):
        filecopy.copy([(target.path, destination), (Path(f"{target.path}.wal"), Path(f"{destination}.wal"))])


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


def pending(config: Config, copy: Path, destination: str) -> list[tuple[str, str]]:
    """``(revision, name)`` of each revision an upgrade to ``destination`` would run, in order."""
    connection = duckdb.connect(str(copy), read_only=True, config=dict(database.SAFE_OPEN))
    try:
        heads = (
            tuple(r[0] for r in connection.execute("SELECT version_num FROM alembic_version").fetchall())
            if catalog.has_table(connection, "alembic_version")
            else ()
        )
    finally:
        connection.close()
    script = ScriptDirectory.from_config(config)
    upcoming = script.revision_map.iterate_revisions(destination, heads or "base")
    return [(r.revision, r.doc) for r in reversed(list(upcoming)) if isinstance(r, Script) and r.revision not in heads]


def _tables(connection: duckdb.DuckDBPyConnection, database_name: str) -> dict[str, list[str]]:
    tables: dict[str, list[str]] = {}
    for table, column in catalog.columns_of_database(connection, database_name):
        if table not in OWN_TABLES:
            tables.setdefault(table, []).append(column)
    return tables


def changes(before: Path, after: Path) -> dict[str, tuple[int, int]]:
    """Rows each table gained and lost between two copies (an updated row counts as one lost, one gained)."""
    connection = duckdb.connect(str(after), read_only=True, config=dict(database.SAFE_OPEN))
    try:
        connection.execute(f"ATTACH {literal(str(before))} AS before (READ_ONLY)")
        name = connection.execute("SELECT current_database()").fetchone()
        now, then = _tables(connection, str(name[0]) if name else ""), _tables(connection, "before")
        result = {}
        for table in sorted(set(now) | set(then)):
            gained, lost = _table_change(connection, table, now.get(table), then.get(table))
            if gained or lost:
                result[table] = (int(gained), int(lost))
        return result
    finally:
        connection.close()


def _table_change(
    connection: duckdb.DuckDBPyConnection, table: str, now: list[str] | None, then: list[str] | None
) -> tuple[int, int]:
    """Rows ``table`` gained and lost: all of its rows when it was created or dropped, else the rows (over the
    columns both copies have) that one copy has more of than the other."""
    if then is None:
        counted = connection.execute(f"SELECT count(*) FROM {quote(table)}").fetchone()
        return (counted[0] if counted else 0), 0
    if now is None:
        counted = connection.execute(f"SELECT count(*) FROM before.{quote(table)}").fetchone()
        return 0, (counted[0] if counted else 0)
    columns = ", ".join(quote(c) for c in now if c in then) or "1"
    new = f"SELECT {columns} FROM {quote(table)}"
    old = f"SELECT {columns} FROM before.{quote(table)}"
    counts = connection.execute(
        f"SELECT (SELECT count(*) FROM ({new} EXCEPT ALL {old})), (SELECT count(*) FROM ({old} EXCEPT ALL {new}))"
    ).fetchone()
    return counts if counts else (0, 0)


def rehearse(config: Config, settings: Settings, destination: str = "head") -> list[Rehearsal]:
    """Run the revisions up to ``destination`` on a copy of the database, one by one, stopping at a failure."""
    target = database.resolve(settings)
    with tempfile.TemporaryDirectory(prefix="ccdash-rehearsal-") as folder:
        # the copy keeps the database's file name, so DuckDB 1.1 opens it as it opens the database
        name = target.path.name if target.path is not None else "rehearsal.db"
        (Path(folder) / "before").mkdir()
        copy, before = Path(folder) / name, Path(folder) / "before" / name
        existed = target.path is not None and target.path.exists()
        if existed:
            copy_database(target, settings, copy)
        connection = duckdb.connect(str(copy), config=dict(database.SAFE_OPEN))  # a new database if there is none
        connection.execute("CHECKPOINT")  # folds a copied log into the file, so copies of the file are whole
        connection.close()
        rehearsal_config = _config_for(config, settings, copy, existed)
        results = []
        for revision, name in pending(config, copy, destination):
            shutil.copyfile(copy, before)
            result = Rehearsal(revision, name)
            results.append(result)
            try:
                command.upgrade(rehearsal_config, revision)
            except Exception as error:  # the rehearsal reports any failure instead of stopping on it
                result.status, result.error = "failed", first_line(error)
                if isinstance(error, MigrateError) and not isinstance(error, MigrationFailed):
                    result.refusal = error
                break
            result.milliseconds = _recorded_time(copy, revision)
            result.changes = changes(before, copy)
        return results


def _recorded_time(copy: Path, revision: str) -> int | None:
    connection = duckdb.connect(str(copy), read_only=True, config=dict(database.SAFE_OPEN))
    try:
        row = connection.execute(
            "SELECT execution_time_ms FROM migration_history WHERE version = ? AND direction IN ('up', 'baseline')"
            " ORDER BY id DESC LIMIT 1",
            [revision],
        ).fetchone()
        return int(row[0]) if row and row[0] is not None else None
    finally:
        connection.close()
