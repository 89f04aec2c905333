"""What an application built on this layer tells it, and nothing else does.

The DuckDB layer (dialect, implementation, rebuild planner, operations) and the run layer (history,
checksums, lock, backups, validate, status, rehearse, the status page, the commands) work for any Alembic
project on DuckDB. What belongs to one application is gathered in one ``Application``: where its database is
when no one names it, the options only its revisions read, how it takes over the history an earlier tool of
its own left, and the names of the variables its failure hook receives.

A project names its application in ``alembic.ini`` (``application = package.module:NAME`` in the
``[ccdash_alembic]`` section), so every command, including those that never run ``env.py`` (``status``,
``history``, ``serve``), uses the same one; ``env.py`` may also hand it to ``run()``. Without either, the
``GENERIC`` application applies: no default database, so the database is ``sqlalchemy.url`` or ``-x db``/``-x url``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ccdash_alembic.errors import UsageError

if TYPE_CHECKING:
    from alembic.runtime.migration import MigrationContext

KEY = "application"  # the alembic.ini key, in this layer's section, naming the application as module:NAME
ATTRIBUTE = "ccdash_alembic.runtime.application"  # where run() leaves env.py's application in config.attributes

# Takes over a migration_history table an earlier tool left (its column names given) and returns True, or
# returns False when the table is not that tool's; the first adopter to return True wins.
HistoryAdopter = Callable[["MigrationContext", list[str]], bool]


@dataclass(frozen=True)
class Option:
    """An option of the application's own, given like the layer's (``-x name=value`` or in ``alembic.ini``)
    and read by its revisions with ``Settings.of(context).value(option)``."""

    name: str
    default: Any
    help: str
    parse: Callable[[str], Any] = str


@dataclass(frozen=True)
class Application:
    """One application's part of a run; every field has the generic default."""

    name: str = "generic"
    default_database: str | None = None  # the file used when none is named (``~`` expanded); None: one must be
    env_var: str | None = None  # an environment variable naming the database, read before default_database
    options: tuple[Option, ...] = ()
    history_adopters: tuple[HistoryAdopter, ...] = ()
    hook_prefix: str = "MIGRATION"  # on_failure gets $<prefix>_REVISION, $<prefix>_ERROR, $<prefix>_DATABASE

    def fallback(self) -> str | None:
        """Where the database is when no option names it, in words (``$VAR or PATH``), or None."""
        places = [f"${self.env_var}"] if self.env_var else []
        places += [self.default_database] if self.default_database else []
        return " or ".join(places) or None


GENERIC = Application()


def load(spec: str) -> Application:
    """The application ``module:NAME`` names (the ``application`` key of ``alembic.ini``)."""
    module_name, _, attribute = spec.strip().partition(":")
    todo = "Write application = package.module:NAME, naming a ccdash_alembic.runtime.application.Application"
    if not module_name or not attribute:
        raise UsageError(f"application = {spec} is not of the form package.module:NAME", todo)
    try:
        found = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise UsageError(f"application = {spec} cannot be loaded ({error})", todo) from error
    if not isinstance(found, Application):
        raise UsageError(f"application = {spec} is a {type(found).__name__}, not an Application", todo)
    return found
