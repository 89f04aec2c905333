"""The command ``ccdash-migrate`` has for CCDash alone: ``baseline``, which adopts an existing CCDash file."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from ccdash_alembic.ccdash import baseline as ccdash_baseline
from ccdash_alembic.ccdash import server_schema
from ccdash_alembic.ccdash.errors import NotCCDash
from ccdash_alembic.ccdash.recognise import Recognition, for_empty_database
from ccdash_alembic.runtime import engines
from ccdash_alembic.runtime.commands import open_database


def baseline(config: Config, dry_run: bool = False) -> None:
    """Adopt an existing CCDash database (or create one): run the baseline revision; with --dry-run, print
    what it would find and do, and change nothing."""
    if not dry_run:
        base = ScriptDirectory.from_config(config).get_base()
        command.upgrade(config, base or "base")
        return
    _, _, connection = open_database(config, read_only=True)
    if connection is None:
        finding, statements = for_empty_database(), for_empty_database().statements()
    else:
        with connection:
            finding, statements = _planned(connection)
    if finding.refusal:
        raise NotCCDash(f"this database cannot be adopted: {finding.refusal}", "Nothing would be changed")
    print(finding.describe(done=False))
    for statement in statements:
        print(statement.rstrip() + ";")


def _planned(connection: Connection) -> tuple[Recognition, list[str]]:
    """What the baseline would find, and the statements it would run: CCDash's own start-up statements on
    DuckDB, the model's DDL on PostgreSQL (``server_schema``)."""
    finding = ccdash_baseline.plan(connection)
    if engines.is_duckdb(connection):
        return finding, finding.statements()
    return finding, server_schema.statements(connection.dialect)
