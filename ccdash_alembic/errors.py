"""Errors a user can cause, each with one line to print and its own exit code.

Commands end on these with ``error: <what happened>. <what to do>`` and the code below, without a traceback
(``alembic --raiseerr`` shows one). Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Exit codes of ``alembic`` and ``ccdash-migrate`` runs that stop on a user-facing error."""

    OK = 0
    INTERNAL = 1
    USAGE = 2
    DATABASE_UNUSABLE = 3
    LOCKED = 4
    CHECKSUM_MISMATCH = 5
    MIGRATION_FAILED = 6
    NOT_CCDASH = 7
    DIRTY = 8
    DATA_LOSS = 9
    PENDING = 10
    INVALID_REVISIONS = 11


class MigrateError(Exception):
    """A refusal or failure explained in one line: what happened, then what to do."""

    exit_code = ExitCode.INTERNAL

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


class NotCCDash(MigrateError):
    exit_code = ExitCode.NOT_CCDASH


def first_line(error: BaseException) -> str:
    """The first non-empty line of an exception's text (DuckDB adds ``LINE 1: ...`` context below it)."""
    text = str(getattr(error, "orig", None) or error).strip()
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return type(error).__name__
