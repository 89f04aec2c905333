"""``ccdash-migrate``: Alembic's command line, preset to this project's configuration, with the commands
Alembic lacks registered the Alembic way (``CommandLine.register_command``).

Each added command is a function ``(config, ...)``; its options beyond Alembic's own are declared in
``_OPTIONS``. A user-facing error ends the command with its one line and exit code (``--raiseerr`` shows
the traceback instead).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import CommandLine, Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

from ccdash_alembic import backup as backups
from ccdash_alembic import database, history
from ccdash_alembic import rehearse as rehearsal
from ccdash_alembic import validate as validation
from ccdash_alembic.ccdash import baseline as ccdash_baseline
from ccdash_alembic.errors import ChecksumMismatch, InvalidRevisions, MigrateError, MigrationFailed, NotCCDash
from ccdash_alembic.settings import Settings


def _settings(config: Config) -> Settings:
    x_arguments = dict(a.split("=", 1) for a in (getattr(config.cmd_opts, "x", None) or []) if "=" in a)
    return Settings.load(config, x_arguments)


def _open(config: Config, read_only: bool) -> tuple[database.Target, Settings, Connection | None]:
    """The run's database, opened (after waiting for its lock), or None when there is no file yet."""
    settings = _settings(config)
    target = database.resolve(settings)
    print(f"Database: {target.describe()}", file=sys.stderr)
    if target.path is not None and not target.path.exists():
        return target, settings, None
    engine = (
        database.create_engine(target, settings)
        if not read_only
        else sa.create_engine(target.url, poolclass=NullPool, connect_args={"read_only": True})
    )
    return target, settings, database.connect(engine, target, settings.lock_timeout)


def baseline(config: Config, dry_run: bool = False) -> None:
    """Adopt an existing CCDash database (or create one): run the baseline revision; with --dry-run, print
    what it would find and do, and change nothing."""
    if not dry_run:
        base = ScriptDirectory.from_config(config).get_base()
        command.upgrade(config, base or "base")
        return
    _, _, connection = _open(config, read_only=True)
    if connection is None:
        finding = ccdash_baseline.plan_for_new_database()
    else:
        with connection:
            finding = ccdash_baseline.plan(connection)
    if finding.refusal:
        raise NotCCDash(f"this database cannot be adopted: {finding.refusal}", "Nothing would be changed")
    print(finding.describe(done=False))
    for statement in finding.statements():
        print(statement.rstrip() + ";")


def backup(config: Config, list_only: bool = False) -> None:
    """Copy the database now (or, with --list, list its backups)."""
    target, settings, connection = _open(config, read_only=True)
    if list_only:
        for path in backups.backups(target, settings):
            print(path)
        return
    if connection is None:
        raise MigrateError(f"there is no database at {target.describe()}", "Nothing to back up")
    with connection:
        heads = MigrationContext.configure(connection).get_current_heads()
        made = backups.create(target, settings, ",".join(sorted(heads)))
    print(made)


def restore(config: Config, backup_name: str | None = None) -> None:
    """Put a backup (the newest, or BACKUP_NAME) in place of the database; refused while it is in use."""
    settings = _settings(config)
    target = database.resolve(settings)
    print(f"Database: {target.describe()}", file=sys.stderr)
    source = backups.find(target, settings, backup_name)
    backups.restore(target, source)
    print(f"Restored {target.path} from {source}")


def repair(config: Config) -> None:
    """Clear the dirty mark a revision that ran outside a transaction left, and record it."""
    _, _, connection = _open(config, read_only=False)
    if connection is None:
        print("There is no database; nothing to repair")
        return
    with connection:
        mark = history.dirty_mark(connection)
        if mark is None:
            print("The database is not marked dirty; nothing to repair")
            return
        context = MigrationContext.configure(connection)
        heads = context.get_current_heads()
        version, since = mark
        note = (
            f"cleared the dirty mark of revision {version} (set {since:%Y-%m-%d %H:%M} UTC); the database stays at "
            f"{', '.join(heads) or 'base'}, so {version} counts as not applied (stamp it if its changes are complete)"
        )
        history.clear_dirty(context, heads, note)
        connection.commit()
    print(note[0].upper() + note[1:])


def validate(config: Config) -> None:
    """Check revision files, their graph and SQL, and (if the database exists) drift and order; exit non-zero
    on any finding."""
    findings, revisions = validation.check_files(config)
    settings = _settings(config)
    target = database.resolve(settings)
    print(f"Database: {target.describe()}", file=sys.stderr)
    if target.path is None or target.path.exists():
        _, _, connection = _open(config, read_only=True)
        if connection is not None:
            with connection:
                findings += validation.check_database(connection, revisions)
    for finding in findings:
        print(f"{finding.kind:9} {finding.subject}: {finding.message}")
    if not findings:
        print(f"{len(revisions)} revisions: no findings")
        return
    if any(f.kind == "checksum" for f in findings):
        raise ChecksumMismatch(
            f"{len(findings)} findings, among them changed applied revisions",
            "Restore the files as they were applied, or accept them with -x accept_changed=true",
        )
    raise InvalidRevisions(f"{len(findings)} findings in the revisions", "Fix them before the next upgrade")


def rehearse(config: Config, revision: str = "head") -> None:
    """Run the pending revisions on a copy of the database and report each one; the database is untouched."""
    settings = _settings(config)
    print(f"Database: {database.resolve(settings).describe()} (rehearsing on a copy)", file=sys.stderr)
    results = rehearsal.rehearse(config, settings, revision)
    if not results:
        print("Nothing to rehearse: the database is at", revision)
    for result in results:
        time = f"{result.milliseconds} ms" if result.milliseconds is not None else "-"
        changed = ", ".join(f"{t} +{g} -{lost}" for t, (g, lost) in result.changes.items()) or "no rows changed"
        print(f"{result.revision}  {result.status:7}  {time:>9}  {result.name}")
        print(f"    {result.error if result.error else changed}")
    failed = [r for r in results if r.status != "success"]
    if failed:
        raise MigrationFailed(
            f"revision {failed[0].revision} failed in the rehearsal: {failed[0].error}",
            "The database was not touched; fix the revision before upgrading",
        )


_OPTIONS: dict[str, list[tuple[tuple[str, ...], dict[str, Any]]]] = {
    "baseline": [(("--dry-run",), {"action": "store_true", "help": "print what would be done; change nothing"})],
    "backup": [(("--list",), {"dest": "list_only", "action": "store_true", "help": "list the backups"})],
    "restore": [(("backup_name",), {"nargs": "?", "help": "the backup's file name (default: the newest)"})],
    "rehearse": [(("revision",), {"nargs": "?", "default": "head", "help": "revision to rehearse up to"})],
}
COMMANDS: list[Callable[..., None]] = [baseline, backup, restore, repair, validate, rehearse]


def main(argv: Sequence[str] | None = None) -> None:
    cli = CommandLine(prog="ccdash-migrate")
    for fn in COMMANDS:
        cli.register_command(fn)
        for flags, argument in _OPTIONS.get(fn.__name__, []):
            cli.subparsers.choices[fn.__name__].add_argument(*flags, **argument)
    options = cli.parser.parse_args(list(argv) if argv is not None else sys.argv[1:])
    if not hasattr(options, "cmd"):
        cli.parser.error("too few arguments")
    config = Config(
        file_=options.config[0] if options.config else "alembic.ini", ini_section=options.name, cmd_opts=options
    )
    try:
        cli.run_cmd(config, options)
    except MigrateError as error:
        if options.raiseerr:
            raise
        print(error.line(), file=sys.stderr)
        raise SystemExit(int(error.exit_code)) from error
