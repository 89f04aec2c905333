"""Backups of the database file, made before a run changes anything, and restoring one.

A backup is taken while this process holds DuckDB's lock on the file (so nothing else writes) and before its
own transaction has committed anything: the file and its write-ahead log then hold exactly the last
committed state. Both are copied, and the copy is checkpointed into one self-contained file in the same
storage format. It is named ``<database file>.<revision>.<UTC time>.backup`` and kept beside the database,
or in ``backup_dir``; the newest ``backup_keep`` are kept.

Restoring refuses while another process has the file open, and replaces it atomically: the backup is copied
to a temporary file in the same folder, and renamed over the database after a leftover write-ahead log (which
belongs to the replaced file, and would otherwise be replayed onto the restored one) is removed.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from ccdash_alembic.database import Target
from ccdash_alembic.errors import Locked, UsageError
from ccdash_alembic.settings import Settings

SUFFIX = ".backup"


def folder(target: Target, settings: Settings) -> Path:
    assert target.path is not None
    return Path(os.path.expanduser(settings.backup_dir)).absolute() if settings.backup_dir else target.path.parent


def backups(target: Target, settings: Settings) -> list[Path]:
    """This database's backups, oldest first."""
    if target.path is None:
        return []
    prefix = target.path.name + "."
    found = [p for p in folder(target, settings).glob(f"{prefix}*{SUFFIX}") if p.is_file()]
    return sorted(found, key=lambda p: (p.stat().st_mtime, p.name))


def create(target: Target, settings: Settings, revision: str) -> Path:
    """Copy the database (whose lock this process holds) into a checkpointed backup file."""
    assert target.path is not None
    destination_folder = folder(target, settings)
    try:
        destination_folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(
            f"cannot create the backup folder {destination_folder}: {exc.strerror}",
            "Set -x backup_dir to a writable folder, or -x backup=false",
        ) from exc
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    destination = destination_folder / f"{target.path.name}.{revision or 'base'}.{stamp}{SUFFIX}"
    partial = destination.with_name(destination.name + ".partial")
    try:
        shutil.copyfile(target.path, partial)
        wal = Path(str(target.path) + ".wal")
        if wal.exists():
            shutil.copyfile(wal, Path(str(partial) + ".wal"))
        connection = duckdb.connect(str(partial))  # replays the copied log, then folds it into the file
        connection.execute("CHECKPOINT")
        connection.close()
        os.replace(partial, destination)
    except (OSError, duckdb.Error) as exc:
        for leftover in (partial, Path(str(partial) + ".wal")):
            leftover.unlink(missing_ok=True)
        raise UsageError(
            f"cannot write the backup {destination}: {exc}",
            "Free space or set -x backup_dir, or run with -x backup=false",
        ) from exc
    _prune(target, settings)
    return destination


def _prune(target: Target, settings: Settings) -> None:
    existing = backups(target, settings)
    for old in existing[: max(0, len(existing) - settings.backup_keep)]:
        old.unlink(missing_ok=True)


def find(target: Target, settings: Settings, name: str | None) -> Path:
    """The backup ``name`` (a file name or path), or the newest."""
    existing = backups(target, settings)
    if name is None:
        if not existing:
            raise UsageError(f"there is no backup of {target.describe()}", "Make one with ccdash-migrate backup")
        return existing[-1]
    candidate = Path(name)
    if not candidate.is_absolute():
        candidate = folder(target, settings) / name
    if not candidate.is_file():
        listed = ", ".join(p.name for p in existing) or "none"
        raise UsageError(f"there is no backup {name}", f"Backups of this database: {listed}")
    return candidate


@contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Hold the same lock DuckDB takes on a database file, refusing at once if a process has it open."""
    with open(path, "r+b") as handle:
        try:
            fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            raise Locked(
                f"{path} is in use by another process", "Stop CCDash (or whatever has it open) and run restore again"
            ) from exc
        yield


def restore(target: Target, source: Path) -> None:
    """Put ``source`` in place of the database, atomically."""
    assert target.path is not None
    descriptor, temporary = tempfile.mkstemp(
        prefix=f".{target.path.name}.", suffix=".restoring", dir=target.path.parent
    )
    os.close(descriptor)
    try:
        shutil.copyfile(source, temporary)
        with open(temporary, "rb") as handle:
            os.fsync(handle.fileno())
        if target.path.exists():
            with exclusive(target.path):
                Path(str(target.path) + ".wal").unlink(missing_ok=True)
                os.replace(temporary, target.path)
        else:
            os.replace(temporary, target.path)
    finally:
        Path(temporary).unlink(missing_ok=True)
