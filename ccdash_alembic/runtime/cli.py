"""``ccdash-migrate``: Alembic's command line, with the commands in ``commands.py`` registered the Alembic way
(``CommandLine.register_command``).

Every Alembic command keeps its name and arguments, except ``history``: here it shows what ran on the
database (``migration_history``), and Alembic's list of revision files is ``revisions``. Options of the added
commands beyond Alembic's own are declared in ``_OPTIONS``. A user-facing error ends the command with its one
line and exit code (``--raiseerr`` shows the traceback instead).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from alembic import util
from alembic.config import CommandLine, Config
from alembic.util import CommandError

from ccdash_alembic import alembic_internals as internals
from ccdash_alembic.ccdash import commands as ccdash_commands
from ccdash_alembic.ccdash import environment
from ccdash_alembic.errors import (
    MISSING_PARENT_WARNING,
    MigrateError,
    user_error,
)
from ccdash_alembic.runtime import commands

_JSON = (("--json",), {"dest": "json_output", "action": "store_true", "help": "print JSON instead of a table"})
_OPTIONS: dict[str, list[tuple[tuple[str, ...], dict[str, Any]]]] = {
    "baseline": [(("--dry-run",), {"action": "store_true", "help": "print what would be done; change nothing"})],
    "backup": [(("--list",), {"dest": "list_only", "action": "store_true", "help": "list the backups"})],
    "restore": [(("backup_name",), {"nargs": "?", "help": "the backup's file name (default: the newest)"})],
    "rehearse": [(("revision",), {"nargs": "?", "default": "head", "help": "revision to rehearse up to"})],
    "repair": [
        (
            ("--clear-failure",),
            {
                "dest": "clear_failure",
                "action": "append",
                "metavar": "REVISION",
                "help": "also clear the unresolved failure of REVISION, whose file is still there (repeatable)",
            },
        )
    ],
    "status": [_JSON],
    "history": [_JSON, (("--slowest",), {"action": "store_true", "help": "slowest steps first"})],
    "validate": [_JSON],
    "create": [
        (("--sql",), {"dest": "sql_files", "action": "store_true", "help": "write .up.sql and .down.sql files too"})
    ],
    "import_sql": [(("directory",), {"help": "folder of <14-digit timestamp>_<name>.up.sql/.down.sql files"})],
    "serve": [
        (("--host",), {"default": "127.0.0.1", "help": "address to listen on (default 127.0.0.1)"}),
        (("--port",), {"type": int, "default": 8765, "help": "port to listen on (default 8765; 0 picks a free one)"}),
    ],
}
COMMANDS: list[Callable[..., None]] = [
    commands.up,
    commands.down,
    commands.create,
    commands.status,
    commands.history,
    commands.revisions,
    commands.validate,
    commands.serve,
    commands.import_sql,
    ccdash_commands.baseline,
    commands.backup,
    commands.restore,
    commands.repair,
    commands.rehearse,
    commands.options,
    environment.config,
]


def parser() -> tuple[CommandLine, argparse.ArgumentParser]:
    cli = CommandLine(prog="ccdash-migrate")
    internals.remove_subcommand(cli.subparsers, "history")  # this tool's history takes its place
    cli.parser.add_argument(
        "-v",
        "--verbose",
        dest="log_verbose",  # not "verbose": Alembic's current, heads and revisions have a -v of their own
        action="store_true",
        help="also log the plan of every table change with its SQL, and Alembic's lines for each step",
    )
    config_option = internals.option_action(cli.parser, "--config")
    if config_option is not None:
        config_option.help = (
            "the alembic.ini to use; default: $ALEMBIC_CONFIG, else ./alembic.ini if there is one, else CCDash's "
            "migrations (ccdash-migrate config prints which)"
        )
    for fn in COMMANDS:
        cli.register_command(fn)
        name = fn.__name__
        subparser = cli.subparsers.choices[name]
        for flags, argument in _OPTIONS.get(name, []):
            subparser.add_argument(*flags, **argument)
        if "_" in name:  # import_sql is typed import-sql
            internals.rename_subcommand(cli.subparsers, name, name.replace("_", "-"))
    return cli, cli.parser


def main(argv: Sequence[str] | None = None) -> None:
    warnings.filterwarnings("ignore", MISSING_PARENT_WARNING, UserWarning)  # the error line names the parent
    _, argument_parser = parser()
    options = argument_parser.parse_args(list(argv) if argv is not None else sys.argv[1:])
    if not hasattr(options, "cmd"):
        argument_parser.error("too few arguments")
    try:  # -c, else $ALEMBIC_CONFIG, else ./alembic.ini, else CCDash's migrations
        chosen = environment.for_command_line(options)
    except MigrateError as error:
        _stop(options, error, error)
    config = Config(file_=chosen.path, ini_section=options.name, cmd_opts=options)
    try:
        _run(config, options)
    except BrokenPipeError:
        _reader_gone()
    except BaseException as error:
        problem = user_error(config, error)
        if problem is not None:
            _stop(options, problem, error)
        if isinstance(error, CommandError) and not options.raiseerr:
            util.err(str(error), **config.messaging_opts)  # Alembic's own FAILED line and exit code
        raise


def _run(config: Config, options: argparse.Namespace) -> None:
    """Alembic's ``CommandLine.run_cmd`` without its handling of ``CommandError``, which ``main`` does."""
    fn, positional, kwarg = options.cmd
    fn(config, *[getattr(options, k, None) for k in positional], **{k: getattr(options, k, None) for k in kwarg})


def _reader_gone() -> NoReturn:
    """The output's reader went away (``status | head -3``): stop quietly, as shell tools do when SIGPIPE ends
    them, rather than with a traceback; what the command did is done. Python would try to flush stdout again at
    exit, so it is pointed at /dev/null first."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    raise SystemExit(128 + signal.SIGPIPE)


def _stop(options: argparse.Namespace, error: MigrateError, cause: BaseException) -> NoReturn:
    if options.raiseerr:
        raise cause
    print(error.line(), file=sys.stderr)
    raise SystemExit(int(error.exit_code)) from cause
