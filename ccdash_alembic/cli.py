"""``ccdash-migrate``: Alembic's command line, preset to this project's configuration."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from alembic.config import CommandLine


def main(argv: Sequence[str] | None = None) -> None:
    CommandLine(prog="ccdash-migrate").main(argv=list(argv) if argv is not None else sys.argv[1:])
