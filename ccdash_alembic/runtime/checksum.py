"""Checksums and recorded sources of revision files.

A revision's checksum is SHA-256 over its normalised source (UTF-8 BOM stripped, CRLF and CR folded to LF),
followed by its SQL files (``<stem>.up.sql``, ``<stem>.down.sql``) where it has them, each framed by its
role, so an edit that only changes line endings or moves text between files is told apart correctly.
"""

from __future__ import annotations

import hashlib
import inspect
from pathlib import Path

from alembic.script import Script

SQL_SUFFIXES = (".up.sql", ".down.sql")


def normalize(data: bytes) -> bytes:
    """Source bytes as they would be on any platform: no BOM, LF line endings."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")


def source_path(script: Script | Path) -> Path:
    """The ``.py`` file of a revision (Alembic may have loaded it from a ``.pyc``)."""
    path = Path(script.path) if isinstance(script, Script) else script
    if path.suffix == ".pyc":
        path = path.with_suffix(".py")
    return path


def sql_path(script: Script | Path, suffix: str) -> Path:
    """Where a revision's SQL file with ``suffix`` (``.up.sql``, ``.down.sql``) is: beside its ``.py`` file."""
    source = source_path(script)
    return source.with_name(source.name[: -len(source.suffix)] + suffix)


def sql_files(script: Script | Path) -> dict[str, Path]:
    """The SQL files beside a revision, by suffix, for revisions written as ``.up.sql``/``.down.sql``."""
    return {suffix: path for suffix in SQL_SUFFIXES if (path := sql_path(script, suffix)).exists()}


# A revision's module may list the checksums of its earlier, shipped versions that did the same on every
# database they ran on (a file changed to run on another engine too, say): a database that applied one of those
# is not told its file changed. Listing them is a deliberate, reviewed act, as accepting a change is.
EARLIER_CHECKSUMS = "earlier_checksums"


def matches(recorded: str, now: str, module: object) -> bool:
    """Whether a revision file whose checksum is ``now`` is the one applied with ``recorded``: the same, or an
    earlier version its module declares equivalent (``earlier_checksums``)."""
    return recorded == now or recorded in tuple(getattr(module, EARLIER_CHECKSUMS, ()))


def revision_checksum(script: Script) -> str:
    return file_checksum(source_path(script))


def file_checksum(source: Path) -> str:
    """The checksum of the revision whose ``.py`` file is ``source``."""
    digest = hashlib.sha256()
    digest.update(normalize(source.read_bytes()))
    for suffix, path in sorted(sql_files(source).items()):
        digest.update(b"\n--" + suffix.encode() + b"\n")
        digest.update(normalize(path.read_bytes()))
    return digest.hexdigest()


def recorded_sources(script: Script) -> tuple[str, str]:
    """What ran, for the history: the SQL files' text, else the source of ``upgrade()``/``downgrade()``."""
    files = sql_files(script)
    if files:
        return tuple(  # type: ignore[return-value]
            normalize(files[s].read_bytes()).decode() if s in files else "" for s in SQL_SUFFIXES
        )
    module = script.module
    return _function_source(module, "upgrade"), _function_source(module, "downgrade")


def _function_source(module: object, name: str) -> str:
    function = getattr(module, name, None)
    if function is None:
        return ""
    try:
        return inspect.getsource(function)
    except (OSError, TypeError):
        return ""
