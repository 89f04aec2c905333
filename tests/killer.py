"""Run the alembic command line in this process, and SIGKILL the process just before its Nth SQL statement.

``python killer.py N ARGS...``: N = 0 counts the statements instead, printing the total on stderr at exit.
A real process killed by the real signal, at a point chosen by statement count so every phase of a run (each
revision's statements, the history writes, the commits' surroundings, the checkpoint) can be hit.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys

import sqlalchemy as sa
from alembic.config import main

target = int(sys.argv[1])
seen = 0


@sa.event.listens_for(sa.engine.Engine, "before_cursor_execute")
def _count(*_: object) -> None:
    global seen
    seen += 1
    if seen == target:
        os.kill(os.getpid(), signal.SIGKILL)


if target == 0:
    atexit.register(lambda: sys.stderr.write(f"statements: {seen}\n"))

main(argv=sys.argv[2:])
