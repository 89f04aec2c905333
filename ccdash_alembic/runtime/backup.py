"""Backups of the database file, made before a run changes anything, and restoring one.

A backup is a folder ``<database file name>.<revision>.<UTC time>.backup`` (beside the database, or in
``backup_dir``) holding a copy of the database under the database's own file name, and ``backup.json``, which
says whose copy it is. The file name matters: DuckDB 2.x records the catalog name (the file's stem) in index
dependencies, and DuckDB 1.1, inside every CCDash release, refuses a file whose name differs ("Cross catalog
dependencies are not supported"); a copy under the same name opens where it lies.

Copies are made by a child process (``filecopy``): this process may hold DuckDB's lock on the database, and
closing any descriptor of the file here would drop that lock. The copy is taken while the lock is held and
before this run has committed anything, so the file and its write-ahead log hold the last committed state; a
copied log is then checkpointed into the copy, so the backup is one self-contained file. The newest
``backup_keep`` backups are kept, and the one a run has just made is never among those removed.

Where the filesystem shares blocks, the copy is a clone: it costs the same on any size of file and takes space
only as the database changes. Elsewhere it is a full copy, whose time and space grow with the file; when that
cost weighs on a run, the run says so in one line (``cost_note``) and names the cheaper safety.

A database is identified by the ``database_id`` this layer keeps in ``schema_version`` (a copy carries it, and
``backup.json`` repeats it). ``restore`` puts back only a backup of this database: same id, or, where the
database or the backup has no id yet (a file never migrated, a file too damaged to read), a backup made of
this very path. It refuses while another process has the file open, keeps the file it replaces as a backup of
its own, replaces the file a symbolic link points to (not the link), and swaps the file in atomically, after
removing a leftover write-ahead log that belongs to the replaced file.

A PostgreSQL database is no file: the server's own tools back it up consistently while it is in use, so
``backup`` and ``restore`` refuse it and give the ``pg_dump`` or ``pg_restore`` command for that database
(``server_refusal``), never with its password (libpq reads that from ``~/.pgpass`` or ``PGPASSWORD``).
"""

from __future__ import annotations

import fcntl
import json
import os
import shlex
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import duckdb
from sqlalchemy.engine import URL

from ccdash_alembic.ddl import catalog
from ccdash_alembic.errors import DatabaseUnusable, Locked, UsageError
from ccdash_alembic.runtime import filecopy
from ccdash_alembic.runtime.database import SAFE_OPEN, Target
from ccdash_alembic.runtime.history_tables import VERSION_TABLE
from ccdash_alembic.runtime.settings import Settings

SUFFIX = ".backup"
MANIFEST = "backup.json"
# A full copy of at least this size that took at least this long is worth a line: a run with a trivial
# revision takes about a second. (On a smaller file the time is mostly the copying process's start.)
NOTE_BYTES, NOTE_SECONDS = 100_000_000, 1.0
REPLACED = "before-restore"  # the revision part of the name of the copy a restore keeps of the file it replaced


@dataclass(frozen=True)
class Backup:
    """A backup folder and what its manifest says."""

    folder: Path
    database: str  # the database's real path when the copy was made
    name: str  # the file name the database was opened under (a symbolic link's), which the copy keeps
    database_id: str | None
    revision: str
    created_at: str  # ISO 8601, UTC
    method: str  # "clone" (blocks shared with the database) or "copy"
    seconds: float = 0.0  # how long making it took (0 for a backup read from its folder)

    @property
    def file(self) -> Path:
        """The copy of the database, under the database's file name."""
        return self.folder / self.name


def server_command(program: str, url: URL, *arguments: str) -> str:
    """A PostgreSQL client program's command line for the database ``url`` names: its host, port and user,
    without the password, quoted for a POSIX shell."""
    host = url.host or url.query.get("host")
    connection = [("-h", host), ("-p", url.port), ("-U", url.username)]
    return shlex.join([program, *[str(w) for flag, value in connection if value for w in (flag, value)], *arguments])


def server_refusal(target: Target, command: str) -> UsageError:
    """The refusal of ``backup`` or ``restore`` (``command``) on a PostgreSQL database, with the command to use."""
    name = str(target.url.database)
    dump = f"{name}.dump"
    todo = (
        f"Restore a pg_dump file with pg_restore while the application is stopped: "
        f"{server_command('pg_restore', target.url, '--clean', '--if-exists', '-d', name, dump)}"
        if command == "restore"
        else f"Back it up with pg_dump: {server_command('pg_dump', target.url, '-Fc', '-f', dump, name)}"
    )
    return UsageError(
        f"ccdash-migrate {command} works on DuckDB files, and {target.describe()} is a PostgreSQL database", todo
    )


def folder(target: Target, settings: Settings) -> Path:
    assert target.path is not None
    return Path(os.path.expanduser(settings.backup_dir)).absolute() if settings.backup_dir else target.path.parent


def real_path(target: Target) -> Path:
    """The file the database path names, through any symbolic links: what a restore must replace."""
    assert target.path is not None
    return Path(os.path.realpath(target.path))


def backups(target: Target, settings: Settings) -> list[Backup]:
    """This database's backups (folders with a readable manifest), oldest first."""
    if target.path is None:
        return []
    found = []
    for candidate in folder(target, settings).glob(f"{target.path.name}.*{SUFFIX}"):
        loaded = _load(candidate)
        if loaded is not None:
            found.append(loaded)
    return sorted(found, key=lambda b: (b.created_at, b.folder.name))


def _load(candidate: Path) -> Backup | None:
    try:
        manifest = json.loads((candidate / MANIFEST).read_text(encoding="utf-8"))
        found = Backup(
            folder=candidate,
            database=str(manifest["database"]),
            name=Path(str(manifest.get("file") or Path(str(manifest["database"])).name)).name,
            database_id=manifest.get("database_id"),
            revision=str(manifest.get("revision", "")),
            created_at=str(manifest["created_at"]),
            method=str(manifest.get("method", "copy")),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return found if found.file.is_file() else None


def create(
    target: Target,
    settings: Settings,
    revision: str,
    database_id: str | None,
    kind: str = "run",
    checkpoint: bool = True,
) -> Backup:
    """Copy the database (which this process may hold open) into a new backup folder, and prune old ones.

    ``kind`` is ``run`` (before a run's first step), ``manual`` (``ccdash-migrate backup``) or ``replaced``
    (the file a restore replaces: kept as it is, write-ahead log beside it, since it may be too damaged to
    open)."""
    assert target.path is not None
    source = real_path(target)
    destination_folder = folder(target, settings)
    now = datetime.now(UTC)
    name = f"{target.path.name}.{revision or 'base'}.{now:%Y%m%dT%H%M%S.%fZ}{SUFFIX}"
    destination = destination_folder / name
    partial = destination_folder / f".{name}.partial"
    copy = partial / target.path.name
    try:
        partial.mkdir(parents=True)
        started = time.monotonic()
        method = filecopy.copy([(source, copy), (Path(f"{source}.wal"), Path(f"{copy}.wal"))])
        if checkpoint and Path(f"{copy}.wal").exists():
            _checkpoint(copy)
        made = Backup(
            destination,
            str(source),
            target.path.name,
            database_id,
            revision,
            now.isoformat(),
            method,
            time.monotonic() - started,
        )
        _write_manifest(partial, made, kind)
        os.replace(partial, destination)
    except (OSError, duckdb.Error) as exc:
        shutil.rmtree(partial, ignore_errors=True)
        raise UsageError(
            f"cannot write the backup {destination}: {getattr(exc, 'strerror', None) or exc}",
            "Free space or set -x backup_dir, or run with -x backup=false",
        ) from exc
    if kind != "replaced":  # a restore removes no backup, not even the one it restores
        _prune(target, settings, keep=made)
    return made


def cost_note(made: Backup, settings: Settings) -> str | None:
    """One line on what a full copy of this database costs, when it weighs on a run: a big file took
    ``NOTE_SECONDS`` or more, or the ``backup_keep`` copies would take half the space left. A clone costs
    nothing worth saying."""
    if made.method == "clone":
        return None
    size = made.file.stat().st_size
    kept, free = size * settings.backup_keep, shutil.disk_usage(made.folder).free
    slow = size >= NOTE_BYTES and made.seconds >= NOTE_SECONDS
    if not slow and kept * 2 < free:
        return None
    return (
        f"Backup cost: a full copy of {_size(size)} in {made.seconds:.1f} s (this filesystem cannot share "
        f"blocks; {settings.backup_keep} kept backups take up to {_size(kept)}, {_size(free)} free). Cheaper: "
        "-x backup=false, where each revision still runs in one transaction and a step that would lose data "
        "is refused"
    )


def _size(count: int) -> str:
    """Bytes in decimal units, as disks are sold and ``df -H`` counts."""
    amount, unit = float(count), "bytes"
    for larger in ("kB", "MB", "GB", "TB"):
        if amount < 1000:
            break
        amount, unit = amount / 1000, larger
    return f"{amount:.0f} {unit}" if unit == "bytes" else f"{amount:.1f} {unit}"


def _write_manifest(into: Path, made: Backup, kind: str) -> None:
    from ccdash_alembic import __version__

    manifest = {
        "database": made.database,
        "file": made.name,
        "database_id": made.database_id,
        "revision": made.revision,
        "created_at": made.created_at,
        "method": made.method,
        "kind": kind,
        "tool_version": __version__,
    }
    (into / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def _checkpoint(copy: Path) -> None:
    """Fold a copied write-ahead log into the copy, so the backup is one file (a different file from the
    database, so opening and closing it here is safe)."""
    connection = duckdb.connect(str(copy), config=dict(SAFE_OPEN))
    try:
        connection.execute("CHECKPOINT")
    finally:
        connection.close()


def discard(made: Backup) -> None:
    """Remove a backup a run made when the run changed nothing after all (a refusal, a first step that failed)."""
    shutil.rmtree(made.folder, ignore_errors=True)


def _prune(target: Target, settings: Settings, keep: Backup) -> None:
    others = [b for b in backups(target, settings) if b.folder != keep.folder]
    for old in others[: max(0, len(others) - (settings.backup_keep - 1))]:
        shutil.rmtree(old.folder, ignore_errors=True)


def find(target: Target, settings: Settings, name: str | None) -> Backup:
    """The backup ``name`` (a backup folder's name or path, or the copy inside it), or the newest."""
    existing = backups(target, settings)
    if name is None:
        if not existing:
            raise UsageError(f"there is no backup of {target.describe()}", "Make one with ccdash-migrate backup")
        return existing[-1]
    candidate = Path(os.path.expanduser(name))
    if not candidate.is_absolute():
        candidate = folder(target, settings) / name
    if candidate.is_file() and (candidate.parent / MANIFEST).is_file():
        candidate = candidate.parent
    found = _load(candidate) if candidate.is_dir() else None
    if found is None:
        listed = ", ".join(b.folder.name for b in existing) or "none"
        raise UsageError(
            f"{name} is not a backup made by ccdash-migrate (a folder with {MANIFEST} and the database copy)",
            f"Backups of this database: {listed}",
        )
    return found


def database_id_of(path: Path) -> str | None:
    """The ``database_id`` a database file holds, or None when it has none; raises ``duckdb.Error`` when the
    file is not a readable DuckDB database (and ``Locked``-worthy errors when another process holds it)."""
    connection = duckdb.connect(str(path), read_only=True, config=dict(SAFE_OPEN))
    try:
        if "database_id" not in catalog.column_names(connection, VERSION_TABLE):
            return None
        row = connection.execute(f"SELECT max(database_id) FROM {VERSION_TABLE}").fetchone()
        return str(row[0]) if row and row[0] is not None else None
    finally:
        connection.close()


def _readable_id(path: Path) -> str | None:
    """The id of a copy of the database, or None when it has none or is too damaged to read (restoring is how
    a damaged file is repaired)."""
    try:
        return database_id_of(path)
    except duckdb.Error:
        return None


def _verify_identity(chosen: Backup, backup_id: str | None, current_id: str | None, real: Path) -> None:
    """Refuse a backup that is not of this database."""
    if backup_id is not None and current_id is not None:
        if backup_id == current_id:
            return
        raise UsageError(
            f"the backup {chosen.folder.name} is of another database (id {backup_id}, this one is {current_id})",
            "Restore a backup of this database (ccdash-migrate backup --list)",
        )
    if chosen.database != str(real):
        raise UsageError(
            f"the backup {chosen.folder.name} was made of {chosen.database}, not of {real}, and "
            "no database id proves it belongs to this database",
            "Restore a backup of this database (ccdash-migrate backup --list)",
        )


@contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Hold the same lock DuckDB takes on a database file, refusing at once if a process has it open.

    The lock lives as long as this one descriptor: nothing else in this process may open the file meanwhile
    (copies of it are made by a child process)."""
    with open(path, "r+b") as handle:
        try:
            fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            raise Locked(
                f"{path} is in use by another process", "Stop the program that has it open and run restore again"
            ) from exc
        yield


def restore(target: Target, settings: Settings, chosen: Backup) -> Backup | None:
    """Put the backup in place of the database, atomically, waiting up to ``lock_timeout`` seconds while
    another process has it open; returns the backup kept of the replaced file."""
    deadline = time.monotonic() + settings.lock_timeout
    delay = 0.05
    while True:
        try:
            return _restore(target, settings, chosen)
        except Locked:
            if time.monotonic() >= deadline:
                raise
            time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 2, 1.0)


def _restore(target: Target, settings: Settings, chosen: Backup) -> Backup | None:
    real = real_path(target)
    try:
        backup_id = database_id_of(chosen.file)
    except duckdb.Error as exc:
        raise DatabaseUnusable(
            f"the backup {chosen.folder} is not a readable DuckDB database ({str(exc).splitlines()[0]})",
            "Choose another backup (ccdash-migrate backup --list)",
        ) from exc
    temporary = real.parent / f".{real.name}.{os.getpid()}.restoring"
    temporary.unlink(missing_ok=True)
    try:
        filecopy.copy([(chosen.file, temporary)])
        if not real.exists():
            _verify_identity(chosen, backup_id, None, real)
            Path(f"{real}.wal").unlink(missing_ok=True)
            os.replace(temporary, real)
            return None
        # From the lock to the swap no other process can open the database, and nothing here opens it: the
        # file replaced is copied by a child process, and its id is read from that copy.
        with exclusive(real):
            kept = create(target, settings, REPLACED, None, kind="replaced", checkpoint=False)
            current_id = _readable_id(kept.file)
            try:
                _verify_identity(chosen, backup_id, current_id, real)
            except UsageError:
                discard(kept)
                raise
            kept = replace(kept, database_id=current_id)
            _write_manifest(kept.folder, kept, "replaced")
            Path(f"{real}.wal").unlink(missing_ok=True)
            os.replace(temporary, real)
            return kept
    except OSError as exc:
        raise UsageError(
            f"cannot restore {real} from {chosen.folder}: {exc.strerror or exc}", "Free space and run again"
        ) from exc
    finally:
        temporary.unlink(missing_ok=True)
