"""The step recorder: how long each step took, which step failed and how, and the history row each one leaves.

The run (``environment``) tells the recorder when a step starts, when its code has run and when it failed;
the recorder keeps the run's ``RunReport`` and writes the rows of ``migration_history`` and ``schema_version``
inside the step's own transaction, so a row exists exactly when its step committed. A failure is written
after the step's transaction rolled back, in a transaction of its own.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext, MigrationInfo, RevisionStep, StampStep
from alembic.script import Script

from ccdash_alembic.errors import MigrationFailed, first_line
from ccdash_alembic.runtime import checksum, history

Step = RevisionStep | StampStep


@dataclass
class RunReport:
    """What a run did, left in ``config.attributes[environment.REPORT]`` for a caller of Alembic's Python API."""

    database: str
    before: tuple[str, ...] = ()  # the heads the database was at
    after: tuple[str, ...] = ()  # and is at now
    backup: Path | None = None
    steps: list[history.Step] = field(default_factory=list)


def is_transactional(step: Step) -> bool:
    """A revision declares ``transactional = False`` for statements that must commit as they go."""
    module = getattr(getattr(step, "revision", None), "module", None)
    return getattr(module, "transactional", True) is not False


@dataclass
class Failure:
    """A step that failed: how long it ran, what it raised, and whether part of it is committed regardless."""

    step: Step
    seconds: float
    error: Exception
    committed_part: bool = False  # the revision ended its own transaction: what it did before is committed

    def as_error(self) -> MigrationFailed:
        """The one-line error for the run: which step failed, why, and what became of its changes."""
        info = self.step.info
        revision = info.up_revision_id or "?"
        name = info.up_revision.doc if isinstance(info.up_revision, Script) else ""
        direction = "upgrade" if info.is_upgrade else "downgrade"
        what = f"{direction} of revision {revision}{f' ({name})' if name else ''} failed: {first_line(self.error)}"
        if self.committed_part:
            return MigrationFailed(
                what,
                "It had ended its own transaction before, so what it did until then is committed and the database "
                "is marked dirty; check it, then run ccdash-migrate repair, or restore a backup "
                "(ccdash-migrate restore; pg_restore on PostgreSQL)",
            )
        if not is_transactional(self.step):
            return MigrationFailed(
                what,
                "It ran outside a transaction, so the statements before the failing one stay applied and the "
                "database is marked dirty; check it, then run ccdash-migrate repair, or restore a backup "
                "(ccdash-migrate restore; pg_restore on PostgreSQL)",
            )
        # an error that knows its remedy (a limit of step_limits) says it; any other is the revision's to fix
        todo = getattr(self.error, "todo", None) or "fix the revision and run again"
        return MigrationFailed(
            what, f"Nothing of that step was applied and the database is as it was before it; {todo}"
        )


class Recorder:
    """Times the steps of one run and records them; ``on_version_apply`` is Alembic's hook after each step."""

    def __init__(self, report: RunReport) -> None:
        self.report = report
        self.failure: Failure | None = None
        self.uncommitted: Step | None = None  # a step that ran and is not committed yet
        self.last_seconds: float | None = None  # how long the last step's code ran
        self._step: Step | None = None
        self._started = 0.0
        self._tables_ready = False  # the history tables exist in the open transaction

    # --- timing -----------------------------------------------------------------------------------------------

    def start(self, step: Step) -> None:
        """A step's code is about to run; the step before it has committed."""
        self._step, self._started, self.uncommitted = step, time.perf_counter(), None

    def ran(self) -> None:
        """The step's code returned; its transaction is not committed yet."""
        self.uncommitted = self._step

    def fail(self, error: Exception, committed_part: bool = False) -> None:
        """The step's code raised ``error`` (or what the run makes of it)."""
        assert self._step is not None
        self.failure = Failure(self._step, time.perf_counter() - self._started, error, committed_part)

    def stop(self) -> None:
        self.last_seconds = time.perf_counter() - self._started

    def commit_failed(self, error: Exception) -> bool:
        """Whether ``error`` is the commit of a step that ran (a full disk, a file-size limit): then that step
        failed, and its history row, which went with the commit, leaves the report."""
        if self.failure is not None or self.uncommitted is None or not isinstance(error, sa.exc.DBAPIError):
            return False
        self.failure = Failure(self.uncommitted, self.last_seconds or 0.0, error)
        self.report.steps = self.report.steps[:-1]
        return True

    def interrupted(self) -> Failure | None:
        """Ctrl-C: the running step, if one was running, failed by the interruption."""
        if self.failure is not None:
            self.failure = replace(self.failure, error=RuntimeError("interrupted (SIGINT)"))
        return self.failure

    # --- rows ---------------------------------------------------------------------------------------------------

    def ensure_tables(self, ctx: MigrationContext) -> None:
        """Create the history tables (in the open transaction) before the first row written in it."""
        if not self._tables_ready:
            history.ensure_tables(ctx)
            self._tables_ready = True

    def on_version_apply(
        self, ctx: MigrationContext, step: MigrationInfo, heads: Collection[Any], run_args: Mapping[str, Any]
    ) -> None:
        """Alembic's hook once a step's code ran, still in its transaction: the step's row, with its note."""
        seconds = None if ctx.as_sql else self.last_seconds
        row = step_row(step, "success", seconds)
        note, direction = history.take_annotation(ctx)
        row = replace(row, note=note, direction=direction or row.direction)
        self._record(ctx, row, heads)
        self.report.steps.append(row)

    def note(self, ctx: MigrationContext, text: str) -> None:
        """Add ``text`` to the note of the running step's row."""
        note, direction = history.take_annotation(ctx)
        history.annotate(ctx, f"{note}; {text}" if note else text, direction)

    def accepted(self, ctx: MigrationContext, changed: Iterable[tuple[Script, str, str]], heads: Iterable[str]) -> None:
        """An ``accept`` row for each applied revision whose file changed, run on with ``-x accept_changed``."""
        heads = list(heads)
        for script, old, new in changed:
            row = history.Step(
                version=script.revision,
                name=script.doc,
                direction="accept",
                status="success",
                checksum=new,
                error_message=f"file changed after it was applied (checksum {old} -> {new}); "
                "accepted with -x accept_changed=true",
            )
            self._record(ctx, row, heads)

    def record_failure(self, connection: sa.Connection, ctx: MigrationContext) -> None:
        """Write the failed step in a transaction of its own, after the step's own was rolled back; a step that
        committed part of itself also leaves the dirty mark, so nothing runs on until someone has looked."""
        failure = self.failure
        assert failure is not None
        if connection.in_transaction():
            connection.rollback()
        self._tables_ready = False
        with connection.begin():
            heads = ctx.get_current_heads()
            self._record(ctx, step_row(failure.step.info, "failed", failure.seconds, error=failure.error), heads)
            if failure.committed_part:
                history.mark_dirty(ctx, failure.step.info.up_revision_id or "")

    def _record(self, ctx: MigrationContext, step: history.Step, heads: Iterable[str]) -> None:
        self.ensure_tables(ctx)
        history.record(ctx, step, heads)


def step_row(info: MigrationInfo, status: str, seconds: float | None, error: Exception | None = None) -> history.Step:
    """The history row for a step that ran (``status`` success) or failed."""
    if info.is_stamp:
        return _stamp_row(info, status)
    script = info.up_revision
    assert isinstance(script, Script)
    up, down = checksum.recorded_sources(script)
    if status == "success" and not info.is_upgrade:
        status = "rolled_back"
    return history.Step(
        version=script.revision,
        name=script.doc,
        direction="up" if info.is_upgrade else "down",
        status=status,
        execution_time_ms=None if seconds is None else round(seconds * 1000),
        checksum=checksum.revision_checksum(script),
        up_script=up,
        down_script=down,
        error_message=str(error) if error is not None else None,
    )


def _stamp_row(info: MigrationInfo, status: str) -> history.Step:
    """A stamp's row: the revisions it moved the database to, and the checksum when it names one."""
    scripts = [info.revision_map.get_revision(r) for r in info.destination_revision_ids]
    return history.Step(
        version=",".join(info.destination_revision_ids),
        name="; ".join(s.doc for s in scripts if isinstance(s, Script)) or "base",
        direction="stamp",
        status=status,
        checksum=checksum.revision_checksum(scripts[0])
        if len(scripts) == 1 and isinstance(scripts[0], Script)
        else None,
    )
