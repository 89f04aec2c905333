"""The options of a run: from the ``[ccdash_alembic]`` section of ``alembic.ini``, overridden by ``-x name=value``.

The ``Settings`` dataclass is the one list of the layer's options (name, default, help, parser); the
application adds its own (``Application.options``). An unknown ``-x`` name is refused instead of silently
ignored, and ``ccdash-migrate options`` prints the same list. The section's ``application`` key names the
application (``package.module:NAME``), which is not an option: it decides which options there are.
"""

from __future__ import annotations

import math
from argparse import Namespace
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import duckdb
from alembic.config import Config

from ccdash_alembic.errors import UsageError, first_line
from ccdash_alembic.runtime import application as applications
from ccdash_alembic.runtime import server_lock
from ccdash_alembic.runtime.application import Application, Option

SECTION = "ccdash_alembic"
OPTION = "ccdash_settings"  # the run's Settings, in the migration context's options, for revisions that need them
# Options that mean something on one engine only (``backup`` itself is refused on PostgreSQL only when true).
DUCKDB_ONLY = ("storage_compatibility", "memory_limit", "threads", "temp_directory", "backup_dir", "backup_keep")
SERVER_ONLY = ("revision_lock_timeout", "revision_statement_timeout", "lock_retries")


def parse_bool(value: str) -> bool:
    """``true``/``false`` (and ``1``/``0``, ``yes``/``no``, ``on``/``off``), for options of either kind."""
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def _whole(least: int, most: int | None = None) -> Callable[[str], int]:
    """A parser of whole numbers from ``least`` up (to ``most``): ``threads=0`` or ``backup_keep=-1`` would
    otherwise reach DuckDB or the backup pruning and fail (or delete every backup) much later, and a huge
    ``threads`` makes DuckDB fail to open the database for want of memory."""

    def parse(value: str) -> int:
        try:
            number = int(value.strip())
        except ValueError:
            raise ValueError(f"expected a whole number, got {value!r}") from None
        if number < least:
            raise ValueError(f"expected {least} or more, got {number}")
        if most is not None and number > most:
            raise ValueError(f"expected at most {most}, got {number}")
        return number

    return parse


def _seconds(value: str) -> float:
    """A number of seconds, 0 or more: ``nan`` and negative waits are refused rather than meaning "no wait"."""
    try:
        number = float(value.strip())
    except ValueError:
        raise ValueError(f"expected a number of seconds, got {value!r}") from None
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"expected a number of seconds, 0 or more, got {value!r}")
    return number


SERVER_LIMIT_SECONDS = server_lock.LONGEST_WAIT_MS // 1000


def _server_seconds(value: str) -> float:
    """A PostgreSQL limit in seconds: 0 or more, and no more than the server takes, so a value it would refuse
    is refused here (exit code 2) rather than failing the first revision."""
    number = _seconds(value)
    if number > SERVER_LIMIT_SECONDS:
        raise ValueError(f"expected at most {SERVER_LIMIT_SECONDS} seconds (PostgreSQL's longest), got {value!r}")
    return number


def _duckdb_setting(setting: str, example: str) -> Callable[[str], str]:
    """A parser that asks DuckDB itself, on a private in-memory database, whether it accepts the value, so a
    value it would refuse is refused before the user's database is opened (and the check follows DuckDB's
    version rather than a copy of its rules)."""

    def parse(value: str) -> str:
        try:
            duckdb.connect(":memory:", config={setting: value}).close()
        except duckdb.Error as exc:
            reason = first_line(exc).split(", valid options are", 1)[0]
            raise ValueError(f"{value!r} is refused by DuckDB ({reason}); for example {example}") from None
        return value

    return parse


def _option(default: Any, help: str, parse: Callable[[str], Any] = str) -> Any:
    return field(default=default, metadata={"help": help, "parse": parse})


@dataclass(frozen=True)
class Settings:
    """Every option a run understands: the layer's, as fields, and the application's, in ``extra``."""

    db: str | None = _option(None, "path of the DuckDB file (else sqlalchemy.url, else the application's default)")
    url: str | None = _option(None, "SQLAlchemy URL of a DuckDB database, instead of db")
    storage_compatibility: str = _option(
        "v1.0.0",
        "DuckDB storage version of a newly created file (v1.0.0 is what DuckDB 1.x reads)",
        _duckdb_setting("storage_compatibility_version", "v1.0.0 or latest"),
    )
    memory_limit: str | None = _option(
        None, "DuckDB memory_limit for the run, e.g. 2GB", _duckdb_setting("memory_limit", "2GB or 50%")
    )
    threads: int | None = _option(None, "DuckDB threads for the run (1 to 1024)", _whole(1, 1024))
    temp_directory: str | None = _option(None, "where DuckDB spills data that does not fit in memory")
    lock_timeout: float = _option(
        60.0,
        "seconds to wait for another process (the application, another migration) to release the database",
        _seconds,
    )
    backup: bool = _option(True, "copy the database before an upgrade or downgrade changes it", parse_bool)
    backup_dir: str | None = _option(None, "where backups go (default: beside the database)")
    backup_keep: int = _option(
        5, "how many backups of the database to keep (older ones are removed; at least 1)", _whole(1)
    )
    confirm_data_loss: bool = _option(
        False, "let a step drop a table or column that holds data even when no backup was made", parse_bool
    )
    on_failure: str | None = _option(
        None, "shell command run when a revision fails ($<prefix>_REVISION, _ERROR, _DATABASE set)"
    )
    accept_changed: bool = _option(
        False, "run although applied revision files changed; records their new checksums in the history", parse_bool
    )
    revision_lock_timeout: float = _option(
        5.0,
        "PostgreSQL: seconds each revision's statements wait for a lock before the revision is retried (0: no limit)",
        _server_seconds,
    )
    revision_statement_timeout: float = _option(
        300.0,
        "PostgreSQL: seconds any one statement of a revision may run before it fails (0: no limit)",
        _server_seconds,
    )
    lock_retries: int = _option(
        3, "PostgreSQL: times a revision that waited too long for a lock is run again before it fails", _whole(0, 100)
    )
    # Not options: the application the run belongs to, and the values of the options it adds.
    application: Application = field(default=applications.GENERIC, compare=False)
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False)
    # Not an option either: the configuration's ``sqlalchemy.url`` (Alembic's place for the database), which
    # database.resolve takes when neither -x db nor -x url is given; None when the file has no such key.
    config_url: str | None = field(default=None, compare=False)
    # The options given (on the command line or in alembic.ini) rather than defaulted: an option of the other
    # engine is refused only when someone asked for it.
    given: frozenset[str] = field(default=frozenset(), compare=False)

    def value(self, option: Option) -> Any:
        """The value of an application's option: as given, else its default (also outside that application's
        runs, where it cannot have been given)."""
        return self.extra.get(option.name, option.default)

    def refuse_other_engine(self, server: bool) -> None:
        """Refuse an option given for the other engine, once the database is known: ignored, it would leave the
        operator believing a limit, a format or a backup applied that did not (``backup=false`` asks for
        nothing, so it is accepted everywhere)."""
        foreign = [name for name in (DUCKDB_ONLY if server else SERVER_ONLY) if name in self.given]
        if server and self.backup and "backup" in self.given:
            foreign.append("backup")
        if not foreign:
            return
        where = "PostgreSQL only, and the database is a DuckDB file"
        todo = f"Remove it (-x {foreign[0]}=... or {foreign[0]} = in [{SECTION}] of alembic.ini)"
        if server:
            where = "DuckDB files only, and the database is on a PostgreSQL server"
            if foreign[0].startswith("backup"):
                todo += "; back a PostgreSQL database up with pg_dump, which this tool does not run"
        raise UsageError(f"option {foreign[0]!r} applies to {where}", todo)

    @classmethod
    def load(cls, config: Config, x_arguments: Mapping[str, str], application: Application | None = None) -> Settings:
        """Merge the configuration file's section with ``-x`` arguments, refusing unknown or malformed ones.
        ``application`` is env.py's (``run(..., application=)``); by default, the one ``alembic.ini`` names."""
        application = application_of(config, application)
        own = {o.name: o.parse for o in application.options}
        known = {**{f.name: f.metadata["parse"] for f in option_fields()}, **own}
        defaults = config.file_config.defaults()  # "here" and the like, which ConfigParser adds to every section
        section = {
            k: v for k, v in (config.get_section(SECTION) or {}).items() if k not in defaults and k != applications.KEY
        }
        values = {
            name: _parse(name, text, known, config, application, from_command_line=name in x_arguments)
            for name, text in {**section, **x_arguments}.items()
        }
        given = frozenset(values)
        extra = {name: values.pop(name) for name in own if name in values}
        url = config.get_main_option("sqlalchemy.url")
        return cls(**values, application=application, extra=extra, config_url=url, given=given)

    @classmethod
    def of(cls, migration_context: Any) -> Settings:
        """The settings of the run ``migration_context`` belongs to (the defaults outside this layer's runs)."""
        found = migration_context.opts.get(OPTION)
        return found if isinstance(found, Settings) else cls()

    @classmethod
    def describe(cls, application: Application = applications.GENERIC) -> list[tuple[str, str, str]]:
        """``(name, default, help)`` for every option of the layer and of ``application`` (an empty default
        where there is none)."""
        prefix = f"${application.hook_prefix}_"
        rows = [
            (f.name, "" if f.default is None else str(f.default), f.metadata["help"].replace("$<prefix>_", prefix))
            for f in option_fields()
        ]
        rows += [(o.name, "" if o.default is None else str(o.default), o.help) for o in application.options]
        return rows


def option_fields() -> list[Any]:
    """The dataclass fields of ``Settings`` that are options (not the application and its values)."""
    return [f for f in fields(Settings) if "parse" in f.metadata]


def application_of(config: Config, given: Application | None = None) -> Application:
    """The run's application: ``given`` (env.py's), else one env.py's ``run()`` left in the configuration's
    attributes, else the one ``alembic.ini`` names (``application = module:NAME``), else the generic one.
    env.py's and the file's must agree: the commands that never run env.py (``status``, ``serve``...) read the
    file, and would otherwise look at another database than ``upgrade``."""
    spec = (config.get_section(SECTION) or {}).get(applications.KEY)
    named = applications.load(spec) if spec else None
    found = given or config.attributes.get(applications.ATTRIBUTE)
    if isinstance(found, Application):
        if named is not None and named != found:
            raise UsageError(
                f"env.py runs the application {found.name!r} but alembic.ini names {spec} ({named.name!r})",
                f"Make the two agree: the application line in [{SECTION}] of alembic.ini, and run() in env.py",
            )
        return found
    return named or applications.GENERIC


def _parse(
    name: str,
    text: str,
    known: Mapping[str, Callable[[str], Any]],
    config: Config,
    application: Application,
    from_command_line: bool,
) -> Any:
    """One option's value, refused when the option is unknown, empty or malformed."""
    if name not in known:
        raise UsageError(
            f"unknown option {name!r}",
            f"Known options: {', '.join(sorted(known))} (as -x name=value or in [{SECTION}] of alembic.ini).",
        )
    if not text.strip():
        fallback = _fallback(config, application)
        # "-x db=$CCDASH_DB" with the variable unset: falling back to the default database would work on a
        # database nobody named
        given = f"-x {name}=" if from_command_line else f"{name} = in [{SECTION}] of alembic.ini"
        raise UsageError(
            f"option {name!r} is empty ({given})",
            "Give a value (an unset shell variable gives an empty one), or leave the option out"
            + (f" to use {fallback}" if name in ("db", "url") and fallback else ""),
        )
    try:
        return known[name](text)
    except ValueError as exc:
        raise UsageError(f"option {name!r}: {exc}", "Correct the value and run again.") from exc


def _fallback(config: Config, application: Application) -> str | None:
    """Where the database is when neither ``-x db`` nor ``-x url`` is given, in words."""
    return "sqlalchemy.url" if config.get_main_option("sqlalchemy.url") else application.fallback()


def program_config(config_file: str | Path, options: Mapping[str, object], ini_section: str = "alembic") -> Config:
    """A configuration for running commands from a program (the Python API, a rehearsal): ``options`` set as
    if written in ``[ccdash_alembic]``, nothing printed, logging left to the program, errors raised."""
    config = Config(str(config_file), ini_section=ini_section, cmd_opts=Namespace(x=[], quiet=True, raiseerr=True))
    for name, value in options.items():
        if value is not None:
            text = ("true" if value else "false") if isinstance(value, bool) else str(value)
            config.set_section_option(SECTION, name, text.replace("%", "%%"))
        elif config.file_config.has_option(SECTION, name):
            config.file_config.remove_option(SECTION, name)  # None: not set, even where the file sets it
    return config
