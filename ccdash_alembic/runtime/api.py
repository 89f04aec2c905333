"""The Python API: what CCDash's start-up calls before it opens the database itself.

``upgrade()`` runs exactly what ``ccdash-migrate up`` runs (lock wait, checksums, backup, history, one
transaction per revision) and returns what it did; ``status()`` reads the state without changing anything.
Refusals and failures raise the ``MigrateError`` subclasses of ``ccdash_alembic.errors``; nothing is printed
and logging is left to the application.

Two processes starting at once are safe: the second waits for DuckDB's lock on the file (up to
``lock_timeout`` seconds), then finds the revisions applied and does nothing. ``db_path`` may also be a URL:
``postgresql+psycopg://USER@HOST/DATABASE`` migrates a PostgreSQL database, where the second process waits
for the server's advisory lock instead, and ``status()`` reads while a migration runs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.util import CommandError

from ccdash_alembic.ccdash import environment
from ccdash_alembic.errors import UsageError
from ccdash_alembic.runtime import state
from ccdash_alembic.runtime.environment import REPORT
from ccdash_alembic.runtime.history import Step
from ccdash_alembic.runtime.recorder import RunReport
from ccdash_alembic.runtime.settings import Settings, program_config


@dataclass(frozen=True)
class UpgradeResult:
    """What an ``upgrade()`` did."""

    database: str
    before: tuple[str, ...]  # the revision(s) the database was at; () for a new database
    after: tuple[str, ...]  # and is at now
    steps: list[Step]  # the steps that ran, as recorded in migration_history
    backup: Path | None  # the copy made before the first step, if one was made

    @property
    def changed(self) -> bool:
        return bool(self.steps)


def upgrade(
    db_path: str | os.PathLike[str] | None = None,
    revision: str = "head",
    *,
    config_file: str | os.PathLike[str] | None = None,
    lock_timeout: float | None = None,
    backup: bool | None = None,
    **options: object,
) -> UpgradeResult:
    """Upgrade the database at ``db_path`` (a path or a URL; default: ``$CCDASH_DB_PATH``, else
    ``~/.ccdash/ccdash.db``) to ``revision``. ``options`` are any of ``ccdash-migrate options``
    (``backup_dir=``, ``memory_limit=``...). ``config_file`` is an ``alembic.ini``; by default CCDash's
    migrations, as installed with this package."""
    config = _config(db_path, config_file, {"lock_timeout": lock_timeout, "backup": backup, **options})
    try:
        command.upgrade(config, revision)
    except CommandError as error:
        raise UsageError(str(error), "Check the revision and the configuration") from error
    report: RunReport = config.attributes[REPORT]
    return UpgradeResult(report.database, report.before, report.after, list(report.steps), report.backup)


def status(
    db_path: str | os.PathLike[str] | None = None, *, config_file: str | os.PathLike[str] | None = None
) -> state.Status:
    """The database's state: current and pending revisions, dirty mark, changed files, last failure, history.
    Never waits for the file: while another process holds it, ``Status.in_use_by`` names that process."""
    config = _config(db_path, config_file, {})
    return state.read(config, Settings.load(config, {}))


def _config(
    db_path: str | os.PathLike[str] | None, config_file: str | os.PathLike[str] | None, options: dict[str, object]
) -> Config:
    ini = Path(config_file) if config_file is not None else environment.config_file()
    if not ini.is_file():
        raise UsageError(f"there is no configuration file {ini}", "Pass config_file= the path of alembic.ini")
    return program_config(ini, {**_database_option(db_path), **options})


def _database_option(db_path: str | os.PathLike[str] | None) -> dict[str, object]:
    """The option that names the database: a string with ``://`` is a URL (``-x url``), anything else a path
    (``-x db``); a path object never is a URL, since it folds ``//``."""
    if isinstance(db_path, str) and "://" in db_path:
        return {"url": db_path}
    return {"db": os.fspath(db_path) if db_path is not None else None}
