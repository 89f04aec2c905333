"""The checks before a run's first step, and the rule on data loss its steps are held to.

A run that moves the database first refuses a database marked dirty, then (once Alembic has chosen the
steps) an applied revision whose file changed, then a database it could not write, then copies the database
(``backup``). Which of these it may pass is its ``RunPolicy``, built once from the options here and handed
to the DuckDB implementation through ``context.configure`` (see ``ccdash_alembic.policy``).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext, RevisionStep, StampStep
from alembic.script import Script, ScriptDirectory

from ccdash_alembic.errors import ChecksumMismatch, DataLossRefused, Dirty
from ccdash_alembic.policy import RunPolicy
from ccdash_alembic.runtime import backup, checksum, database, history_queries
from ccdash_alembic.runtime.settings import Settings


def policy(settings: Settings, existing: bool) -> RunPolicy:
    """The run's rules; ``existing``: there is a database with something in it, which a backup would copy."""
    return RunPolicy(
        accept_changed=settings.accept_changed,
        backup=settings.backup and existing,
        confirm_data_loss=settings.confirm_data_loss,
    )


def mutates(migration_context: MigrationContext) -> bool:
    """Whether the command moves the database (upgrade, downgrade, stamp), as opposed to reading it
    (``current``) or comparing it with the model (``check``, ``revision --autogenerate``)."""
    opts = migration_context.opts
    return opts.get("destination_rev") is not None and not opts.get("dont_mutate")


def refuse_when_dirty(connection: sa.Connection) -> None:
    """A revision that ran outside a transaction and did not finish left the dirty mark: someone looks first."""
    dirty = history_queries.dirty_mark(connection)
    if dirty is not None:
        version, since = dirty
        raise Dirty(
            f"the database is marked dirty: revision {version} ran outside a transaction and did not finish "
            f"(since {since:%Y-%m-%d %H:%M} UTC)",
            "Check the database, then run ccdash-migrate repair to clear the mark, "
            "or restore a backup (ccdash-migrate restore; pg_restore on PostgreSQL)",
        )


def changed_revisions(
    connection: sa.Connection, script: ScriptDirectory, heads: tuple[str, ...], rules: RunPolicy
) -> list[tuple[Script, str, str]]:
    """The applied revisions whose file differs from what was applied, ``(script, old, new checksum)``: refused
    unless the policy accepts them (and the run records that it did)."""
    changed = history_queries.changed_revisions(connection, script, heads)
    if changed and not rules.accept_changed:
        first, _, _ = changed[0]
        more = f" (and {len(changed) - 1} more)" if len(changed) > 1 else ""
        raise ChecksumMismatch(
            f"revision {first.revision} was changed after it was applied: {checksum.source_path(first)}{more}",
            "Restore the file as it was applied, or run again with -x accept_changed=true to accept the change.",
        )
    return changed


def back_up(
    target: database.Target,
    settings: Settings,
    rules: RunPolicy,
    connection: sa.Connection,
    heads: tuple[str, ...],
    planned: Sequence[RevisionStep | StampStep],
) -> backup.Backup | None:
    """Copy the database before the first step that changes more than the version tables, as the policy says;
    refuse first a database this process could not write, since the copy goes beside it too."""
    database.refuse_unwritable(target)
    if not rules.backup or all(step.info.is_stamp for step in planned):
        return None
    return backup.create(target, settings, ",".join(sorted(heads)), history_queries.database_id(connection))


def data_loss_note(losses: list[str], rules: RunPolicy, backed_up: bool) -> str | None:
    """Stop a step that lost data while the policy does not allow it (its transaction then rolls back); when
    it is allowed, the words for the step's history note: what was lost and why that was allowed."""
    if not losses:
        return None
    if not rules.data_loss_allowed:
        raise DataLossRefused(
            "this step would lose data: " + "; ".join(losses),
            "Run again with -x confirm_data_loss=true, or with backups on (the default) so a copy is made first",
        )
    why = "a backup was made before this run" if backed_up else "-x confirm_data_loss=true"
    return f"data lost ({why}): " + "; ".join(losses)
