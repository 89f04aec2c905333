"""CCDash's own exit code: a database the baseline cannot adopt.

The run layer's codes (``ccdash_alembic.errors.ExitCode``) leave 7 to the application; CCDash uses it for a
file that is not a CCDash database, so a start-up script can tell "this is someone else's file" from a failed
migration.
"""

from __future__ import annotations

from ccdash_alembic.errors import MigrateError

NOT_CCDASH = 7


class NotCCDash(MigrateError):
    """The database is not a CCDash database the baseline can adopt; nothing was changed."""

    exit_code = NOT_CCDASH
