"""The options of a run: from the ``[ccdash_alembic]`` section of ``alembic.ini``, overridden by ``-x name=value``.

The ``Settings`` dataclass is the one list of options (name, default, help, parser), so an unknown ``-x``
name is refused instead of silently ignored, and ``ccdash-migrate options`` prints the same list.
"""

from __future__ import annotations

from argparse import Namespace
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from alembic.config import Config

from ccdash_alembic.errors import UsageError

SECTION = "ccdash_alembic"


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def _option(default: Any, help: str, parse: Callable[[str], Any] = str) -> Any:
    return field(default=default, metadata={"help": help, "parse": parse})


@dataclass(frozen=True)
class Settings:
    """Every option a run understands."""

    db: str | None = _option(None, "path of the DuckDB file (else $CCDASH_DB_PATH, else ~/.ccdash/ccdash.db)")
    url: str | None = _option(None, "SQLAlchemy URL of a DuckDB database, instead of db")
    storage_compatibility: str = _option(
        "v1.0.0", "DuckDB storage version of a newly created file (v1.0.0 is what DuckDB 1.1, in CCDash, reads)"
    )
    memory_limit: str | None = _option(None, "DuckDB memory_limit for the run, e.g. 2GB")
    threads: int | None = _option(None, "DuckDB threads for the run", int)
    temp_directory: str | None = _option(None, "where DuckDB spills data that does not fit in memory")
    lock_timeout: float = _option(
        60.0, "seconds to wait for another process (CCDash, another migration) to release the database", float
    )
    backup: bool = _option(True, "copy the database before an upgrade or downgrade changes it", _bool)
    backup_dir: str | None = _option(None, "where backups go (default: beside the database)")
    backup_keep: int = _option(5, "how many backups of the database to keep (older ones are removed)", int)
    confirm_data_loss: bool = _option(
        False, "let a step drop a table or column that holds data even when no backup was made", _bool
    )
    on_failure: str | None = _option(
        None, "shell command run when a revision fails ($CCDASH_MIGRATE_REVISION, _ERROR, _DATABASE set)"
    )
    accept_changed: bool = _option(
        False, "run although applied revision files changed; records their new checksums in the history", _bool
    )

    @classmethod
    def load(cls, config: Config, x_arguments: Mapping[str, str]) -> Settings:
        """Merge the configuration file's section with ``-x`` arguments, refusing unknown or malformed ones."""
        known = {f.name: f for f in fields(cls)}
        defaults = config.file_config.defaults()  # "here" and the like, which ConfigParser adds to every section
        section = {k: v for k, v in (config.get_section(SECTION) or {}).items() if k not in defaults}
        raw = {**section, **x_arguments}
        values: dict[str, Any] = {}
        for name, text in raw.items():
            if name not in known:
                raise UsageError(
                    f"unknown option {name!r}",
                    f"Known options: {', '.join(sorted(known))} (as -x name=value or in [{SECTION}] of alembic.ini).",
                )
            try:
                values[name] = known[name].metadata["parse"](text)
            except ValueError as exc:
                raise UsageError(f"option {name!r}: {exc}", "Correct the value and run again.") from exc
        return cls(**values)

    @classmethod
    def describe(cls) -> list[tuple[str, str, str]]:
        """``(name, default, help)`` for every option (an empty default where there is none)."""
        return [(f.name, "" if f.default is None else str(f.default), f.metadata["help"]) for f in fields(cls)]


def program_config(config_file: str | Path, options: Mapping[str, object], ini_section: str = "alembic") -> Config:
    """A configuration for running commands from a program (the Python API, a rehearsal): ``options`` set as
    if written in ``[ccdash_alembic]``, nothing printed, logging left to the program, errors raised."""
    config = Config(str(config_file), ini_section=ini_section, cmd_opts=Namespace(x=[], quiet=True, raiseerr=True))
    for name, value in options.items():
        if value is not None:
            text = ("true" if value else "false") if isinstance(value, bool) else str(value)
            config.set_section_option(SECTION, name, text.replace("%", "%%"))
    return config
