"""CCDash as an application of the run layer: what it adds to a run that any other project would not have.

CCDash's ``alembic.ini`` names it (``application = ccdash_alembic.ccdash.application:CCDASH``) and its
``env.py`` passes it to ``run()``, so its database is ``$CCDASH_DB_PATH``, else ``~/.ccdash/ccdash.db``, when
no option names one; ``-x downgrade_adopted=true`` is the one option only its baseline reads; the Go
``migrate`` tool's history is taken over; and the ``on_failure`` command gets ``$CCDASH_MIGRATE_*`` variables.
Its own exit code (7, a file that is not CCDash's) is in ``ccdash_alembic.ccdash.errors``.
"""

from __future__ import annotations

from ccdash_alembic.ccdash import gohistory
from ccdash_alembic.runtime.application import Application, Option
from ccdash_alembic.runtime.settings import parse_bool

ENV_VAR = "CCDASH_DB_PATH"
DEFAULT_PATH = "~/.ccdash/ccdash.db"

DOWNGRADE_ADOPTED = Option(
    "downgrade_adopted",
    False,
    "let a downgrade of the baseline drop the tables of a database the baseline adopted (it did not create them)",
    parse_bool,
)

CCDASH = Application(
    name="CCDash",
    default_database=DEFAULT_PATH,
    env_var=ENV_VAR,
    options=(DOWNGRADE_ADOPTED,),
    history_adopters=(gohistory.adopt,),
    hook_prefix="CCDASH_MIGRATE",
)
