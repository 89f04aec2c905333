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

import os
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
from alembic import op
from alembic.config import Config
from alembic.script import Script, ScriptDirectory

from ccdash_alembic.ddl.statements import split
from ccdash_alembic.errors import MigrateError, UsageError, first_line
from ccdash_alembic.runtime import revision_text
from ccdash_alembic.runtime.checksum import SQL_SUFFIXES, source_path, sql_path
from ccdash_alembic.runtime.revision_ids import FORMAT, name_files_by_id

DIRECTIONS = dict(zip(("up", "down"), SQL_SUFFIXES, strict=True))
# Matched against the whole name (fullmatch): "$" would also accept a name that ends in a newline.
GOLANG_MIGRATE_FILE = re.compile(r"(?P<version>\d{14})_(?P<name>[^.]+)\.(?P<direction>up|down)\.sql")
_STUB_IMPORT = "from ccdash_alembic.runtime.sqlfiles import run_sql_file"


def statements(sql: str) -> list[str]:
    """The statements of a SQL text, as DuckDB's parser splits them; raises ``ValueError`` for one that
    manages transactions, and ``duckdb.Error`` for text DuckDB cannot parse."""
    return split(sql)


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
    check_doc(written, message)
    return written


def check_doc(script: Script, message: str) -> None:
    """Refuse a revision Alembic wrote and loaded whose doc is not ``message``: its text did not stay data."""
    if script.doc != message:
        raise MigrateError(
            f"{source_path(script).name} loads with the doc {revision_text.shown(script.doc)}, "
            f"not the message {revision_text.shown(message)}",
            "Check script.py.mako and any post-write hook; the revision was not kept",
        )


@contextmanager
def removed_on_failure(config: Config, revisions: Iterable[str]) -> Iterator[list[Path]]:
    """Files a run writes for ``revisions``, removed again if it fails, so a refusal or an error leaves no
    revision half made (a stub without its SQL files, a file that does not load). The run lists what it
    wrote in the yielded list; files named ``<revision>_*`` that appeared meanwhile are removed too (Alembic
    writes the file before it loads it). An error other than a ``MigrateError`` becomes one."""
    prefixes = tuple(f"{r}_" for r in revisions)

    def made() -> set[Path]:
        script = ScriptDirectory.from_config(config)
        folders = [Path(f) for f in (script.version_locations or [script.versions])]
        return {p for f in folders if f.is_dir() for p in f.iterdir() if p.name.startswith(prefixes)}

    before = made()
    written: list[Path] = []
    try:
        yield written
    except BaseException as error:
        for path in set(written) | (made() - before):
            path.unlink(missing_ok=True)
        if isinstance(error, Exception) and not isinstance(error, MigrateError):
            raise MigrateError(
                f"the revision could not be written: {first_line(error)}", "The revision was not kept"
            ) from error
        raise


def write_new(path: Path, data: bytes) -> None:
    """Write ``path`` through a temporary file beside it, moved into place once complete, so the name never
    holds a partly written file."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # created with the usual permissions
    try:
        with temporary.open("xb") as file:
            file.write(data)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def create(config: Config, revision: str, message: str) -> list[Path]:
    """``ccdash-migrate create --sql``: the stub and two SQL files to fill in (the message, checked by the
    caller, is one line, so it stays inside the files' first comment)."""
    stub = source_path(write_stub(config, revision, message))
    written = [stub]
    for direction, suffix in DIRECTIONS.items():
        path = sql_path(stub, suffix)
        text = f"-- {message} ({direction})\n-- Statements are split by DuckDB's parser; end each with ;\n"
        write_new(path, text.encode("utf-8"))
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
        raise UsageError(
            f"{revision_text.printable(str(directory))} is not a directory",
            "Give the folder that holds the .up.sql/.down.sql files",
        )
    files: dict[str, dict[str, Path]] = {}
    names: dict[str, str] = {}
    messages: dict[str, str] = {}
    skipped = []
    for path in sorted(directory.glob("*.sql")):
        match = GOLANG_MIGRATE_FILE.fullmatch(path.name)
        if match is None:
            skipped.append(path.name)
            continue
        # The name becomes the revision's message: refused here, before anything is written, when it
        # cannot be one (a control character, no letters, letters other than a-z).
        message = revision_text.check_message(
            match["name"].replace("_", " "),
            f"the file name {revision_text.shown(path.name, 200)}",
            "Rename the file to <14-digit timestamp>_<words in a-z, 0-9 and _>.up.sql; nothing was imported",
        )
        files.setdefault(match["version"], {})[match["direction"]] = path
        names[match["version"]] = match["name"]
        messages[match["version"]] = message
    pairs = []
    for version in sorted(files):
        if "up" not in files[version]:
            raise UsageError(
                f"{directory} has {files[version]['down'].name} but no {version}_{names[version]}.up.sql",
                "Add the up file or remove the down file, then import again",
            )
        pairs.append(SqlPair(version, messages[version], files[version]["up"], files[version].get("down")))
    return pairs, skipped


def import_directory(config: Config, directory: Path) -> tuple[list[Path], list[str]]:
    """``ccdash-migrate import-sql DIR``: one SQL revision per migration of the directory, in version order,
    chained after the current head. Everything is checked before the first file is written."""
    pairs, skipped = scan(directory)
    if not pairs:
        raise UsageError(
            f"{revision_text.printable(str(directory))} holds no <14-digit timestamp>_<name>.up.sql files",
            "Nothing was imported",
        )
    script = ScriptDirectory.from_config(config)
    existing = {r.revision for r in script.walk_revisions()}
    for pair in pairs:
        _check_importable(pair, existing)
    heads = script.get_heads()
    if len(heads) > 1:
        raise UsageError(f"the revisions have {len(heads)} heads", "Merge them (alembic merge heads) first")
    head = "head"
    with removed_on_failure(config, [p.version for p in pairs]) as written:
        for pair in pairs:
            stub = source_path(write_stub(config, pair.version, pair.name, head=head))
            head = pair.version
            written.append(stub)
            for direction, source in (("up", pair.up), ("down", pair.down)):
                if source is not None:
                    destination = sql_path(stub, DIRECTIONS[direction])
                    write_new(destination, source.read_bytes())  # byte for byte
                    written.append(destination)
    return written, skipped


def _check_importable(pair: SqlPair, existing: set[str]) -> None:
    """Refuse a migration that cannot become a revision: a bad or taken version, or SQL that does not parse."""
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
                raise UsageError(
                    f"{path.name}: {first_line(error)}", "Nothing was imported; fix the file first"
                ) from error


def _check_version(version: str) -> None:
    try:
        datetime.strptime(version, FORMAT)
    except ValueError as error:
        raise UsageError(f"{version} is not a valid timestamp (YYYYMMDDHHMMSS)", "Nothing was imported") from error
