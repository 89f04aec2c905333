"""Errors a user can cause, each with one line to print and its own exit code.

Commands end on these with ``error: <what happened>. <what to do>`` and the code below, without a traceback
(``alembic --raiseerr`` shows one). Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import os
import traceback
from enum import IntEnum
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alembic.config import Config


class ExitCode(IntEnum):
    """Exit codes of ``alembic`` and ``ccdash-migrate`` runs that stop on a user-facing error. Codes not listed
    (7) are left to the application, for refusals of its own (``MigrateError`` subclasses with that code)."""

    OK = 0
    INTERNAL = 1
    USAGE = 2
    DATABASE_UNUSABLE = 3
    LOCKED = 4
    CHECKSUM_MISMATCH = 5
    MIGRATION_FAILED = 6
    DIRTY = 8
    DATA_LOSS = 9
    PENDING = 10
    INVALID_REVISIONS = 11
    INTERRUPTED = 130  # 128 + SIGINT, as shells report a program Ctrl-C stopped


class MigrateError(Exception):
    """A refusal or failure explained in one line: what happened, then what to do."""

    exit_code: int = ExitCode.INTERNAL

    def __init__(self, what: str, todo: str) -> None:
        super().__init__(f"{what.rstrip('.')}. {todo}")
        self.what = what
        self.todo = todo

    def line(self) -> str:
        return f"error: {self}"


class UsageError(MigrateError):
    exit_code = ExitCode.USAGE


class DatabaseUnusable(MigrateError):
    exit_code = ExitCode.DATABASE_UNUSABLE


class ChecksumMismatch(MigrateError):
    exit_code = ExitCode.CHECKSUM_MISMATCH


class MigrationFailed(MigrateError):
    exit_code = ExitCode.MIGRATION_FAILED


class Locked(MigrateError):
    exit_code = ExitCode.LOCKED

    def __init__(self, what: str, todo: str, holder: str = "another process") -> None:
        super().__init__(what, todo)
        self.holder = holder  # "program (PID n)", for a status that reports the file in use


class Pending(MigrateError):
    exit_code = ExitCode.PENDING


class Dirty(MigrateError):
    exit_code = ExitCode.DIRTY


class DataLossRefused(MigrateError):
    exit_code = ExitCode.DATA_LOSS


class HistoryConflict(MigrateError):
    exit_code = ExitCode.DATABASE_UNUSABLE


class InvalidRevisions(MigrateError):
    exit_code = ExitCode.INVALID_REVISIONS


class Interrupted(MigrateError):
    exit_code = ExitCode.INTERRUPTED


def interrupted(during: str = "") -> Interrupted:
    """Ctrl-C (SIGINT): what a stopped command says, wherever it was stopped."""
    return Interrupted(
        f"interrupted (SIGINT){during}",
        "Run ccdash-migrate status to see where the database is, and run the command again to go on",
    )


def first_line(error: BaseException) -> str:
    """The first non-empty line of an exception's text (DuckDB adds ``LINE 1: ...`` context below it)."""
    text = str(getattr(error, "orig", None) or error).strip()
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return type(error).__name__


def revision_problem(config: Config, error: BaseException) -> MigrateError | None:
    """The one-line error for an exception Alembic raised because of the revision files, or None for any other.

    Alembic loads every revision file and builds their graph before it runs or reads anything, and a problem
    there surfaces as whatever the file or the graph raised (a SyntaxError, an ImportError, a KeyError for a
    missing parent, a CycleDetected, a "Can't locate revision" for a database at a revision no file has), with
    a traceback or a FAILED line depending on the command. Every command (``status``, ``history``, ``up``,
    ``down``, ``validate``, Alembic's own) gives this one line and exit code 11 instead.
    """
    from alembic.script.revision import ResolutionError

    causes = _causes(error)
    in_a_file = _file_problem(config, causes)
    if in_a_file is not None:
        return InvalidRevisions(in_a_file, _FIX_REVISIONS)
    unresolved = next((c for c in causes if isinstance(c, ResolutionError)), None)
    if unresolved is None and not _graph_failed(causes):
        return None
    finding = _graph_finding(config)
    if finding is not None:
        return InvalidRevisions(f"the revision files are invalid: {finding}", _FIX_REVISIONS)
    if unresolved is not None:
        if unresolved.argument not in _database_versions(config):
            return None  # a revision the user asked for: Alembic's own error (exit code 255) says it
        return at_unknown_revision(str(unresolved.argument))
    return InvalidRevisions(f"the revision files are invalid: {first_line(error)}", _FIX_REVISIONS)


_FIX_REVISIONS = "Fix the revision files (ccdash-migrate validate lists every problem); nothing was changed"


def _graph_failed(causes: list[BaseException]) -> bool:
    """Whether one of the causes is Alembic failing to build the revision graph: a cycle, a loop, several heads
    where one is needed, or the KeyError its revision map raises for a missing parent."""
    from alembic.script.revision import (
        CycleDetected,
        DependencyCycleDetected,
        DependencyLoopDetected,
        LoopDetected,
        MultipleHeads,
    )

    graph = (CycleDetected, DependencyCycleDetected, LoopDetected, DependencyLoopDetected, MultipleHeads)
    return any(isinstance(c, graph) or (isinstance(c, KeyError) and _raised_in_revision_map(c)) for c in causes)


def _file_problem(config: Config, causes: list[BaseException]) -> str | None:
    """What is wrong with one revision file, when one of the causes is its syntax or raised while it loaded."""
    for cause in causes:
        if isinstance(cause, SyntaxError) and cause.filename and _in_versions(config, cause.filename):
            return f"revision file {cause.filename} has a syntax error at line {cause.lineno}: {cause.msg}"
        loading = _revision_file_frame(config, cause)
        if loading is not None:
            return f"revision file {loading} cannot be loaded: {type(cause).__name__}: {first_line(cause)}"
    return None


def user_error(config: Config, error: BaseException) -> MigrateError | None:
    """The one-line error for whatever stopped a command, or None when it is a bug (its traceback stays):
    a refusal, Ctrl-C, a revision file that exits or does not load, a broken graph, a write the disk refused.
    The command line and env.py both answer with it, so Alembic's commands and this tool's say the same."""
    if isinstance(error, MigrateError):
        return error
    if isinstance(error, KeyboardInterrupt):
        return interrupted()
    if isinstance(error, SystemExit):
        return exit_in_revision_file(config, error)
    if isinstance(error, Exception):
        return revision_problem(config, error) or write_failure(error) or server_refusal(error)
    return None


INSUFFICIENT_PRIVILEGE = "42501"  # PostgreSQL's SQLSTATE for a user who may not do what was asked


def server_refusal(error: Exception) -> MigrateError | None:
    """A database server's refusal of the run's own reads and writes (not a revision's: that is the revision's
    failure), e.g. a user who may not create the history tables or read ``alembic_version``: one line, exit
    code 3, rather than a traceback."""
    if getattr(getattr(error, "orig", None), "sqlstate", None) != INSUFFICIENT_PRIVILEGE:
        return None
    return DatabaseUnusable(
        f"the server refused this user: {first_line(error)}",
        "Run as a user who may create and change tables in the database's schema, or grant this one that; "
        "nothing was changed",
    )


def exit_in_revision_file(config: Config, stop: SystemExit) -> MigrateError | None:
    """A revision file that calls ``sys.exit`` while Alembic loads it: that file is invalid (exit code 11), and
    its exit code must not pass for the command's."""
    loading = _revision_file_frame(config, stop)
    if loading is None:
        return None
    return InvalidRevisions(
        f"revision file {loading} cannot be loaded: it calls sys.exit({stop.code!r})",
        "Fix the revision files (ccdash-migrate validate lists every problem); nothing was changed",
    )


def at_unknown_revision(revision: str) -> InvalidRevisions:
    """The database names a revision no file has (its file was deleted, or the wrong -x db / -c was given)."""
    return InvalidRevisions(
        f"the database is at revision {revision}, which no revision file has",
        "Restore that revision's file, or give the database and the configuration (-x db, -c) that belong "
        "together; nothing was changed",
    )


# Alembic warns, on stderr, about a revision naming a parent that does not exist before it fails on it; the
# error line says the same, so commands silence the warning (``warnings.filterwarnings``) to keep to one line.
MISSING_PARENT_WARNING = r"Revision \S+ referenced from .* is not present"


def _causes(error: BaseException) -> list[BaseException]:
    """The exception and those it was raised from or while handling, outermost first."""
    found: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in found:
        found.append(current)
        current = current.__cause__ or current.__context__
    return found


def _version_folders(config: Config) -> list[Path]:
    from alembic.script import ScriptDirectory

    try:
        script = ScriptDirectory.from_config(config)
    except Exception:  # no script location: nothing to attribute the error to
        return []
    return [Path(folder).resolve() for folder in (script.version_locations or [script.versions])]


def _in_versions(config: Config, filename: str) -> bool:
    path = Path(filename).resolve()
    return any(path.is_relative_to(folder) for folder in _version_folders(config))


def _revision_file_frame(config: Config, error: BaseException) -> str | None:
    """The revision file whose top-level code raised ``error`` while Alembic loaded it, if one did."""
    frames = [frame for frame, _ in traceback.walk_tb(error.__traceback__)]
    if not any(frame.f_code.co_name == "load_module_py" for frame in frames):
        return None
    for frame in frames:
        if frame.f_code.co_name == "<module>" and _in_versions(config, frame.f_code.co_filename):
            return frame.f_code.co_filename
    return None


def _raised_in_revision_map(error: BaseException) -> bool:
    """A KeyError from Alembic's revision map: a revision names a parent that does not exist."""
    return any(
        frame.f_code.co_filename.endswith(os.path.join("alembic", "script", "revision.py"))
        for frame, _ in traceback.walk_tb(error.__traceback__)
    )


def _graph_finding(config: Config) -> str | None:
    """What ``validate`` says is wrong with the revision graph, in its words (the first finding)."""
    from ccdash_alembic.runtime import validate

    try:
        findings, _ = validate.check_files(config)
    except Exception:  # the explanation must not fail in its turn; the caller falls back to the error itself
        return None
    for finding in findings:
        if finding.kind == "graph":
            return f"{finding.subject}: {finding.message}"
    return None


def _database_versions(config: Config) -> set[str]:
    """The revisions the run's database says it is at (none when it cannot be read), to tell a revision no file
    has that the database names from one the user asked for."""
    from ccdash_alembic.runtime import database
    from ccdash_alembic.runtime.settings import Settings

    given = getattr(config.cmd_opts, "x", None) or []
    try:
        settings = Settings.load(config, dict((a.split("=", 1) if "=" in a else (a, "")) for a in given))
        target = database.resolve(settings)
        if target.is_new:
            return set()
        with database.connect(database.read_only_engine(target), target) as connection:
            return {str(row[0]) for row in connection.exec_driver_sql("SELECT version_num FROM alembic_version")}
    except Exception:  # an unreadable database names no revision
        return set()


# What DuckDB says when the file system refuses a write: a full disk, a file-size limit, a file or folder it may
# not write, and the state it is left in after a failed checkpoint.
_WRITE_FAILURES = ("No space left on device", "File too large", "Could not write file", "Failed to create checkpoint")


def write_failure(error: BaseException) -> MigrateError | None:
    """The one-line error for a write to the database file that failed outside a revision (its checkpoint, or
    the final commit), or None. What was committed before it is durable: DuckDB keeps it in the file's
    write-ahead log and replays it when it next opens the file."""
    for cause in _causes(error):
        for line in str(getattr(cause, "orig", None) or cause).splitlines():
            if any(marker in line for marker in _WRITE_FAILURES):
                return DatabaseUnusable(
                    f"writing the database failed: {line.strip()}",
                    "Free space (or raise the file-size limit), then run ccdash-migrate status; what was committed "
                    "before the failure is kept, in the file or in its log (.wal), which DuckDB replays",
                )
    return None
