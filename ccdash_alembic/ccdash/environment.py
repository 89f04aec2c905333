"""Where CCDash's migration environment is, and which ``alembic.ini`` a ``ccdash-migrate`` run uses.

CCDash's environment (``alembic.ini``, ``env.py``, ``script.py.mako``, ``versions/``) is edited at the root of
the repository. A wheel carries that same folder as ``ccdash_alembic/ccdash/migrations`` (pyproject.toml maps
it there; nothing is copied by hand), so an installed package finds it beside this module. A checkout (an
editable install) has no such folder and uses the root itself. ``alembic.ini`` names everything else relative
to itself (``%(here)s``), so either copy runs its own ``env.py`` and revisions.

``ccdash-migrate`` takes ``-c PATH``, else ``$ALEMBIC_CONFIG``, else ``./alembic.ini`` (a project of one's
own, as Alembic does), else CCDash's environment: so the command works from any folder once installed, and
still runs the project of the folder one is in.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from alembic.config import Config

from ccdash_alembic.errors import UsageError

_HERE = Path(__file__).resolve().parent
INSTALLED = _HERE / "migrations" / "alembic.ini"  # in an installed wheel
CHECKOUT = _HERE.parents[1] / "alembic.ini"  # in the repository (an editable install)

# Commands that write revision files: in the installed copy they would change the package in place (and be
# left behind, or lost, by the next pip install).
WRITING = frozenset({"revision", "create", "import_sql", "merge", "edit"})
# Alembic's commands that make a new environment or need none: they keep Alembic's default, ./alembic.ini.
OWN_DEFAULT = frozenset({"init", "list_templates"})


def config_file() -> Path:
    """CCDash's ``alembic.ini``: the installed copy, else the checkout's (else the installed path, which an
    error then names)."""
    for candidate in (INSTALLED, CHECKOUT):
        if candidate.is_file():
            return candidate
    return INSTALLED


@dataclass(frozen=True)
class Choice:
    """The ``alembic.ini`` a run uses and why."""

    path: str
    source: str  # "-c", "$ALEMBIC_CONFIG", "the current folder" or "default"

    @property
    def is_default(self) -> bool:
        return self.source == "default"

    def line(self) -> str:
        """One line for stderr, in the manner of the ``Database:`` line."""
        why = "default: CCDash's migrations" if self.is_default else self.source
        return f"Configuration: {self.path} (from {why})"


def choose(
    given: str | None, command: str, environ: Mapping[str, str] = os.environ, folder: Path | None = None
) -> Choice:
    """The configuration of a ``ccdash-migrate`` run of ``command``: ``given`` (``-c``), else
    ``$ALEMBIC_CONFIG``, else ``./alembic.ini`` if ``folder`` (the current one) has it, else CCDash's
    environment. A file named by ``-c`` or ``$ALEMBIC_CONFIG`` must exist: Alembic would otherwise read an empty
    configuration and fail with "No 'script_location' key found"."""
    from_environment = environ.get("ALEMBIC_CONFIG") or None
    if command in OWN_DEFAULT:  # init writes the file it is given; Alembic's own default is kept
        if given is not None:
            return Choice(given, "-c")
        if from_environment is not None:
            return Choice(from_environment, "$ALEMBIC_CONFIG")
        return Choice("alembic.ini", "the current folder")
    named = _named(given, from_environment)
    if named is not None:
        return named
    if ((folder or Path.cwd()) / "alembic.ini").is_file():
        return Choice("alembic.ini", "the current folder")
    return _ccdash_default(command)


def _named(given: str | None, from_environment: str | None) -> Choice | None:
    """The file named by ``-c``, else by ``$ALEMBIC_CONFIG``, which must exist; None when neither names one."""
    for path, source, todo in (
        (given, "-c", "Give the path of an alembic.ini, or leave -c out"),
        (from_environment, "$ALEMBIC_CONFIG", "Set it to an alembic.ini, or unset it"),
    ):
        if path is not None:
            if not Path(path).is_file():
                raise UsageError(f"there is no configuration file {path} (from {source})", todo)
            return Choice(path, source)
    return None


def _ccdash_default(command: str) -> Choice:
    """CCDash's own environment, which must be there, and which an installed copy keeps read-only."""
    chosen = config_file()
    if not chosen.is_file():
        raise UsageError(
            f"CCDash's migrations are not installed ({chosen} is missing)",
            "Reinstall ccdash-alembic, or pass -c the path of an alembic.ini",
        )
    if command in WRITING and chosen == INSTALLED:
        raise UsageError(
            f"CCDash's installed revisions ({chosen.parent / 'versions'}) are part of the package and are not "
            "written to",
            "Write revisions in a checkout of ccdash-alembic, or pass -c the alembic.ini of a project of your own",
        )
    return Choice(str(chosen), "default")


def for_command_line(options: argparse.Namespace) -> Choice:
    """``choose`` for parsed ``ccdash-migrate`` arguments; says on stderr which file was taken when it was not
    named on the command line nor found in the current folder (``--quiet`` leaves the line out)."""
    fn = options.cmd[0]
    choice = choose(options.config[0] if options.config else None, fn.__name__)
    implicit = fn.__name__ not in OWN_DEFAULT and choice.source in ("$ALEMBIC_CONFIG", "default")
    if (implicit or fn is config) and not options.quiet:
        print(choice.line(), file=sys.stderr)
    return choice


def config(config: Config) -> None:
    """Print the path of the alembic.ini ccdash-migrate uses here (-c, else $ALEMBIC_CONFIG, else
    ./alembic.ini, else CCDash's installed migrations), e.g. for alembic -c "$(ccdash-migrate config)"."""
    assert config.config_file_name is not None
    print(Path(config.config_file_name).resolve())
