"""``ccdash-migrate``: Alembic's command line, preset to this project's configuration, with the commands
Alembic lacks registered the Alembic way (``CommandLine.register_command``)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import command
from alembic.config import CommandLine, Config
from alembic.script import ScriptDirectory
from sqlalchemy.pool import NullPool

from ccdash_alembic import database
from ccdash_alembic.ccdash import baseline as ccdash_baseline
from ccdash_alembic.errors import MigrateError, NotCCDash
from ccdash_alembic.settings import Settings


def _settings(config: Config) -> Settings:
    x_arguments = dict(a.split("=", 1) for a in (getattr(config.cmd_opts, "x", None) or []) if "=" in a)
    return Settings.load(config, x_arguments)


def baseline(config: Config, dry_run: bool = False) -> None:
    """Adopt an existing CCDash database (or create one): run the baseline revision; with --dry-run, print
    what it would find and do, and change nothing."""
    if not dry_run:
        base = ScriptDirectory.from_config(config).get_base()
        command.upgrade(config, base or "base")
        return
    target = database.resolve(_settings(config))
    print(f"Database: {target.describe()}", file=sys.stderr)
    if target.path is not None and not target.path.exists():
        finding = ccdash_baseline.plan_for_new_database()
    else:
        engine = sa.create_engine(target.url, poolclass=NullPool, connect_args={"read_only": True})
        with database.connect(engine, target) as connection:
            finding = ccdash_baseline.plan(connection)
    if finding.refusal:
        raise NotCCDash(f"this database cannot be adopted: {finding.refusal}", "Nothing would be changed")
    print(finding.describe(done=False))
    for statement in finding.statements():
        print(statement.rstrip() + ";")


def main(argv: Sequence[str] | None = None) -> None:
    cli = CommandLine(prog="ccdash-migrate")
    cli.register_command(baseline)
    cli.subparsers.choices["baseline"].add_argument(
        "--dry-run", action="store_true", help="print what the baseline would find and do; change nothing"
    )
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
