"""What a run may do to the database, decided once from its options before its first step.

The run layer builds one ``RunPolicy`` per database it runs on and hands it to Alembic as the ``POLICY_OPTION``
option of ``context.configure``; the DuckDB implementation reads it from its context options, as it reads
every other option, so the layers share one value instead of one setting the other's attributes. An Alembic
environment that passes no policy (plain Alembic on DuckDB) gets ``UNGUARDED``: Alembic's own behaviour.
"""

from __future__ import annotations

from dataclasses import dataclass

POLICY_OPTION = "ccdash_policy"


@dataclass(frozen=True)
class RunPolicy:
    """The rules a run holds its steps to."""

    # run although an applied revision's file changed since it was applied (the new checksum is recorded)
    accept_changed: bool = False
    # the database is copied before the first step that changes data: backups are on and there is a database
    backup: bool = False
    # a step may drop a table or column holding data (or lose rows) even without that copy
    confirm_data_loss: bool = False

    @property
    def data_loss_allowed(self) -> bool:
        """Whether a step may lose data: it was confirmed, or a copy of the data is made before the first step."""
        return self.confirm_data_loss or self.backup


UNGUARDED = RunPolicy(confirm_data_loss=True)
