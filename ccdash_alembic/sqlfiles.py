"""SQL-file revisions: a ``.py`` stub with ``<id>_<slug>.up.sql`` and ``.down.sql`` beside it.

The stub is an ordinary revision whose ``upgrade()``/``downgrade()`` call ``run_sql_file``, so SQL revisions
go through everything a Python revision does: the transaction per revision, the history (with the SQL text
as what ran), the checksum (which covers the SQL files), ``--sql`` output, rehearsal and validation.

Statements are split by DuckDB's own parser, so a ``;`` inside a string, a comment or a function body is
never taken for the end of a statement. Transaction statements are refused: the revision already runs in
one transaction, and a ``COMMIT`` in the file would make half of it permanent.

``import_directory`` turns a golang-migrate directory (CCDash's old ``backend/migrations``:
``<14-digit timestamp>_<name>.up.sql`` and ``.down.sql``) into such revisions, keeping the timestamps as
revision ids, chained after the current head.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
from alembic import op
from alembic.config import Config
from alembic.script import Script, ScriptDirectory

from ccdash_alembic.checksum import SQL_SUFFIXES, source_path, sql_path
from ccdash_alembic.errors import UsageError
from ccdash_alembic.revision_ids import FORMAT, name_files_by_id

DIRECTIONS = dict(zip(("up", "down"), SQL_SUFFIXES, strict=True))
GOLANG_MIGRATE_FILE = re.compile(r"^(?P<version>\d{14})_(?P<name>[^.]+)\.(?P<direction>up|down)\.sql$")
_STUB_IMPORT = "from ccdash_alembic.sqlfiles import run_sql_file"


def statements(sql: str) -> list[str]:
    """The statements of a SQL text, as DuckDB's parser splits them; raises ``ValueError`` for one that
    manages transactions, and ``duckdb.Error`` for text DuckDB cannot parse."""
    found = []
    for statement in duckdb.extract_statements(sql):
        text = statement.query.strip().rstrip(";").strip()
        if statement.type == duckdb.StatementType.TRANSACTION:
            raise ValueError(
                f"{text!r} manages the transaction, which the revision already runs in; remove it from the file"
            )
        found.append(text)
    return found


def run_sql_file(revision_file: str, direction: str) -> None:
    """Run the revision's SQL file for ``direction`` (``"up"`` or ``"down"``), statement by statement.

    Called from a stub's ``upgrade()``/``downgrade()`` as ``run_sql_file(__file__, "up")``.
    """
    path = sql_path(Path(revision_file), DIRECTIONS[direction])
    if not path.exists():
        raise FileNotFoundError(f"{path.name} does not exist, so this revision cannot run {direction}")
    try:
        found = statements(path.read_text(encoding="utf-8-sig"))
    except (ValueError, duckdb.Error) as error:
        raise ValueError(f"{path.name}: {error}") from error
    op.get_context().impl.run_sql(found)  # type: ignore[attr-defined]


def write_stub(config: Config, revision: str, message: str, head: str = "head") -> Script:
    """Write a SQL revision's ``.py`` stub through Alembic's template (so it is a revision like any other)."""
    name_files_by_id(config)
    script = ScriptDirectory.from_config(config)
    written = script.generate_revision(
        revision,
        message,
        head=head,
        refresh=True,
        imports="\n" + _STUB_IMPORT + "\n",
        upgrades='run_sql_file(__file__, "up")',
        downgrades='run_sql_file(__file__, "down")',
        config=config,
    )
    assert written is not None
    return written


def create(config: Config, revision: str, message: str) -> list[Path]:
    """``ccdash-migrate create --sql``: the stub and two SQL files to fill in."""
    stub = source_path(write_stub(config, revision, message))
    written = [stub]
    for direction, suffix in DIRECTIONS.items():
        path = sql_path(stub, suffix)
        path.write_text(f"-- {message} ({direction})\n-- Statements are split by DuckDB's parser; end each with ;\n")
        written.append(path)
    return written


@dataclass(frozen=True)
class SqlPair:
    """One migration of a golang-migrate directory."""

    version: str
    name: str
    up: Path
    down: Path | None


def scan(directory: Path) -> tuple[list[SqlPair], list[str]]:
    """The migrations of a golang-migrate directory, by version, and the names of ``.sql`` files skipped
    because they do not follow ``<14-digit timestamp>_<name>.up.sql``/``.down.sql``."""
    if not directory.is_dir():
        raise UsageError(f"{directory} is not a directory", "Give the folder that holds the .up.sql/.down.sql files")
    files: dict[str, dict[str, Path]] = {}
    names: dict[str, str] = {}
    skipped = []
    for path in sorted(directory.glob("*.sql")):
        match = GOLANG_MIGRATE_FILE.match(path.name)
        if match is None:
            skipped.append(path.name)
            continue
        files.setdefault(match["version"], {})[match["direction"]] = path
        names[match["version"]] = match["name"]
    pairs = []
    for version in sorted(files):
        if "up" not in files[version]:
            raise UsageError(
                f"{directory} has {files[version]['down'].name} but no {version}_{names[version]}.up.sql",
                "Add the up file or remove the down file, then import again",
            )
        pairs.append(
            SqlPair(version, names[version].replace("_", " "), files[version]["up"], files[version].get("down"))
        )
    return pairs, skipped


def import_directory(config: Config, directory: Path) -> tuple[list[Path], list[str]]:
    """``ccdash-migrate import-sql DIR``: one SQL revision per migration of the directory, in version order,
    chained after the current head. Everything is checked before the first file is written."""
    pairs, skipped = scan(directory)
    if not pairs:
        raise UsageError(f"{directory} holds no <14-digit timestamp>_<name>.up.sql files", "Nothing was imported")
    script = ScriptDirectory.from_config(config)
    existing = {r.revision for r in script.walk_revisions()}
    for pair in pairs:
        _check_version(pair.version)
        if pair.version in existing:
            raise UsageError(
                f"revision {pair.version} exists already, so {pair.up.name} cannot become a revision",
                "Nothing was imported; remove the earlier import or that migration first",
            )
        for path in (pair.up, pair.down):
            if path is not None:
                try:
                    statements(path.read_text(encoding="utf-8-sig"))
                except (ValueError, duckdb.Error) as error:
                    raise UsageError(f"{path.name}: {error}", "Nothing was imported; fix the file first") from error
    heads = script.get_heads()
    if len(heads) > 1:
        raise UsageError(f"the revisions have {len(heads)} heads", "Merge them (alembic merge heads) first")
    written: list[Path] = []
    head = "head"
    for pair in pairs:
        stub = source_path(write_stub(config, pair.version, pair.name, head=head))
        head = pair.version
        written.append(stub)
        for direction, source in (("up", pair.up), ("down", pair.down)):
            if source is not None:
                destination = sql_path(stub, DIRECTIONS[direction])
                shutil.copyfile(source, destination)
                written.append(destination)
    return written, skipped


def _check_version(version: str) -> None:
    try:
        datetime.strptime(version, FORMAT)
    except ValueError as error:
        raise UsageError(f"{version} is not a valid timestamp (YYYYMMDDHHMMSS)", "Nothing was imported") from error
