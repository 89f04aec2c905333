"""What ``env.py`` calls: one function that runs any Alembic command against the resolved DuckDB database.

Per run it:

1. reads the options (``settings``) and resolves the database (``database``), and says which one it is;
2. runs each revision in its own transaction (``transaction_per_migration``), timing the revision itself;
3. before the first step, compares the checksums of applied revisions with their files and refuses a changed
   one (unless ``-x accept_changed=true``, which is recorded);
4. records every step in ``migration_history`` and ``schema_version`` inside that step's transaction;
5. when a revision raises, lets its transaction roll back, then records the failure in a transaction of its
   own and stops with one line naming the revision and the cause.

In ``--sql`` mode the same steps are rendered as a script, history statements included.
"""

from __future__ import annotations

import logging.config
import os
import subprocess
import sys
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext, MigrationInfo, RevisionStep, StampStep
from alembic.script import Script, ScriptDirectory

from ccdash_alembic import backup, checksum, database, history, output
from ccdash_alembic.autogen import name_dropped_constraints
from ccdash_alembic.errors import (
    ChecksumMismatch,
    DataLossRefused,
    Dirty,
    MigrateError,
    MigrationFailed,
    UsageError,
    first_line,
)
from ccdash_alembic.impl import SHADOW_OPTION
from ccdash_alembic.plugin import PLUGIN_NAME
from ccdash_alembic.settings import Settings
from ccdash_alembic.shadow import schema_copy


def run(context: EnvironmentContext, target_metadata: sa.MetaData | None = None) -> None:
    """Run the current Alembic command; on a user-facing error, print one line and exit with its code.

    ``context`` is ``alembic.context`` as env.py sees it. Called through Alembic's Python API (no command
    line), errors are raised as ``MigrateError`` subclasses instead.
    """
    config = context.config
    if config.cmd_opts is not None and not getattr(config.cmd_opts, "quiet", False) and config.config_file_name:
        # As Alembic's own env.py templates do, but only on the command line (and not with --quiet): an
        # application calling the Python API keeps its own logging setup.
        logging.config.fileConfig(config.config_file_name, disable_existing_loggers=False)
    try:
        settings = Settings.load(config, context.get_x_argument(as_dictionary=True))
        target = database.resolve(settings)
        _announce(config, f"Database: {target.describe()}")
        runner = _Runner(context, settings, target, target_metadata)
        config.attributes[REPORT] = runner.report
        if context.is_offline_mode():
            runner.offline()
        else:
            runner.online()
    except SyntaxError as error:
        _stop(
            config,
            UsageError(
                f"revision file {error.filename} has a syntax error at line {error.lineno}: {error.msg}",
                "Fix the file and run again; nothing was changed",
            ),
            error,
        )
    except MigrateError as error:
        _stop(config, error, error)


def _stop(config: Config, error: MigrateError, cause: BaseException) -> None:
    """On the command line: one line and the error's exit code. Through the Python API: raise."""
    options = config.cmd_opts
    if options is None or getattr(options, "raiseerr", False):
        raise error from (cause if cause is not error else None)
    sys.stderr.write(error.line() + "\n")
    raise SystemExit(int(error.exit_code)) from cause


def _announce(config: Config, line: str) -> None:
    if not config.messaging_opts.get("quiet", False):
        sys.stderr.write(line + "\n")


REPORT = "ccdash_alembic.report"


@dataclass
class RunReport:
    """What a run did, left in ``config.attributes[REPORT]`` for a caller of Alembic's Python API."""

    database: str
    before: tuple[str, ...] = ()  # the heads the database was at
    after: tuple[str, ...] = ()  # and is at now
    backup: Path | None = None
    steps: list[history.Step] = field(default_factory=list)


@dataclass
class _Failure:
    step: RevisionStep | StampStep
    seconds: float
    error: Exception


class _TimedStep:
    """A migration step whose ``migration_fn`` is timed, and noted when it raises."""

    def __init__(self, step: RevisionStep | StampStep, runner: _Runner) -> None:
        self._step = step
        self._runner = runner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._step, name)

    def __str__(self) -> str:
        return str(self._step)

    def migration_fn(self, *args: Any, **kw: Any) -> Any:
        start = time.perf_counter()
        try:
            if _is_transactional(self._step):
                result = self._step.migration_fn(*args, **kw)
            else:
                result = self._runner.run_outside_transaction(self._step, *args, **kw)
            self._runner.refuse_data_loss()
            return result
        except Exception as error:
            self._runner.failure = _Failure(self._step, time.perf_counter() - start, error)
            raise
        finally:
            self._runner.last_seconds = time.perf_counter() - start


def _is_transactional(step: RevisionStep | StampStep) -> bool:
    """A revision declares ``transactional = False`` for statements that must commit as they go."""
    module = getattr(getattr(step, "revision", None), "module", None)
    return getattr(module, "transactional", True) is not False


class _Runner:
    def __init__(
        self,
        context: EnvironmentContext,
        settings: Settings,
        target: database.Target,
        target_metadata: sa.MetaData | None,
    ) -> None:
        self.context = context
        self.settings = settings
        self.target = target
        self.target_metadata = target_metadata
        self.script: ScriptDirectory = context.script
        self.failure: _Failure | None = None
        self.last_seconds: float | None = None
        self.changed = False
        self.existed = False
        self._tables_ready = False
        self.report = RunReport(target.describe())

    def _configure(self, **kw: Any) -> MigrationContext:
        self.context.configure(
            target_metadata=self.target_metadata,
            transaction_per_migration=True,
            on_version_apply=self._on_version_apply,
            include_object=_include_object,
            compare_type=True,
            compare_server_default=True,
            autogenerate_plugins=["alembic.autogenerate.*", PLUGIN_NAME],
            process_revision_directives=name_dropped_constraints,
            **kw,
        )
        migration_context = self.migration_context = self.context.get_context()
        # The steps are wrapped to time each revision and to know which one failed; Alembic offers no hook
        # before a step, and its step function is only reachable on the migration context.
        if migration_context._migrations_fn is not None:
            migration_context._migrations_fn = self._wrap(migration_context._migrations_fn)
        return migration_context

    def offline(self) -> None:
        # The script starts at base (an empty database) unless a start revision is given (``X:head``), in
        # which case the database file is taken to be at that revision and its schema is the starting point.
        starts_at_base = self.context.get_starting_revision_argument() is None
        shadow = schema_copy(None if starts_at_base else self.target.path)
        try:
            self._configure(url=self.target.url, literal_binds=True, **{SHADOW_OPTION: shadow})
            with self.context.begin_transaction():
                self.context.run_migrations()
        finally:
            shadow.close()

    def online(self) -> None:
        self.existed = self.target.path is not None and not self.target.is_new
        engine = database.create_engine(self.target, self.settings)
        with database.connect(engine, self.target, self.settings.lock_timeout) as connection:
            migration_context = self._configure(connection=connection)
            try:
                with self.context.begin_transaction():
                    self.context.run_migrations()
            except Exception as error:
                if self.failure is None or self.failure.error is not error or isinstance(error, MigrateError):
                    raise  # not a revision's failure, or a refusal: nothing was changed and nothing is recorded
                self._record_failure(connection, migration_context, self.failure)
                failed = self._failed(self.failure)
                self._run_failure_hook(failed)
                raise failed from error
            if connection.in_transaction():
                connection.commit()
            self.report.after = tuple(migration_context.get_current_heads())
            if self.changed:
                connection.exec_driver_sql("CHECKPOINT")  # the file alone holds the result; no log to replay

    def _run_failure_hook(self, failed: MigrationFailed) -> None:
        """Run the configured ``on_failure`` command, so operators can wire alerts."""
        if not self.settings.on_failure or self.failure is None:
            return
        environment = {
            **os.environ,
            "CCDASH_MIGRATE_REVISION": self.failure.step.info.up_revision_id or "",
            "CCDASH_MIGRATE_ERROR": failed.what,
            "CCDASH_MIGRATE_DATABASE": str(self.target.path or self.target.url),
        }
        result = subprocess.run(self.settings.on_failure, shell=True, env=environment, check=False)
        if result.returncode != 0:
            sys.stderr.write(f"warning: the on_failure command exited with code {result.returncode}\n")

    def run_outside_transaction(self, step: RevisionStep | StampStep, *args: Any, **kw: Any) -> Any:
        """Run a non-transactional revision: each statement commits as it goes, with the database marked
        dirty (naming the revision) until the step is recorded, so a failure or a crash is noticed."""
        context = self.migration_context
        with context.autocommit_block():
            history.ensure_tables(context)
            self._tables_ready = True
            history.mark_dirty(context, step.info.up_revision_id or "")
            return step.migration_fn(*args, **kw)

    def refuse_data_loss(self) -> None:
        """Stop the step (rolling it back) if it dropped data while that is not allowed."""
        impl: Any = self.migration_context.impl
        losses = impl.take_data_losses()
        if losses:
            raise DataLossRefused(
                "this step would drop data: " + "; ".join(losses),
                "Run again with -x confirm_data_loss=true, or with backups on (the default) so a copy is made first",
            )

    def _wrap(
        self, fn: Callable[[tuple[str, ...], MigrationContext], Iterable[RevisionStep | StampStep]]
    ) -> Callable[[tuple[str, ...], MigrationContext], Iterator[Any]]:
        def steps(heads: tuple[str, ...], migration_context: MigrationContext) -> Iterator[Any]:
            planned = list(fn(heads, migration_context))
            self.report.before = self.report.after = tuple(heads)
            if not planned or migration_context.as_sql:
                yield from (_TimedStep(step, self) for step in planned)
                return
            self._refuse_when_dirty(migration_context)
            self._verify_checksums(migration_context, heads)
            self._back_up(migration_context, heads, planned)
            with output.progress("Migrating", len(planned)) as advance:
                for step in planned:
                    advance(str(step), 0)
                    yield _TimedStep(step, self)
                    advance(str(step), 1)

        return steps

    def _refuse_when_dirty(self, migration_context: MigrationContext) -> None:
        assert migration_context.connection is not None
        dirty = history.dirty_mark(migration_context.connection)
        if dirty is not None:
            version, since = dirty
            raise Dirty(
                f"the database is marked dirty: revision {version} ran outside a transaction and did not finish "
                f"(since {since:%Y-%m-%d %H:%M} UTC)",
                "Check the database, then run ccdash-migrate repair to clear the mark, "
                "or restore a backup with ccdash-migrate restore",
            )

    def _back_up(
        self, migration_context: MigrationContext, heads: tuple[str, ...], planned: list[RevisionStep | StampStep]
    ) -> None:
        """Copy the database before the first step that changes more than the version tables."""
        impl: Any = migration_context.impl
        impl.data_loss_allowed = self.settings.confirm_data_loss
        self.changed = True
        changes_data = any(not step.info.is_stamp for step in planned)
        if changes_data and self.settings.backup and self.existed:
            made = self.report.backup = backup.create(self.target, self.settings, ",".join(sorted(heads)))
            _announce(self.context.config, f"Backup: {made}")
            impl.data_loss_allowed = True

    def _verify_checksums(self, migration_context: MigrationContext, heads: tuple[str, ...]) -> None:
        """Refuse to run when an applied revision's file differs from what was applied."""
        assert migration_context.connection is not None
        changed = history.changed_revisions(migration_context.connection, self.script, heads)
        if not changed:
            return
        if not self.settings.accept_changed:
            script, _, _ = changed[0]
            more = f" (and {len(changed) - 1} more)" if len(changed) > 1 else ""
            raise ChecksumMismatch(
                f"revision {script.revision} was changed after it was applied: {checksum.source_path(script)}{more}",
                "Restore the file as it was applied, or run again with -x accept_changed=true to accept the change.",
            )
        for script, old, new in changed:
            self._record(
                migration_context,
                history.Step(
                    version=script.revision,
                    name=script.doc,
                    direction="accept",
                    status="success",
                    checksum=new,
                    error_message=f"file changed after it was applied (checksum {old} -> {new}); "
                    "accepted with -x accept_changed=true",
                ),
                heads,
            )

    def _on_version_apply(
        self, ctx: MigrationContext, step: MigrationInfo, heads: Collection[Any], run_args: Mapping[str, Any]
    ) -> None:
        seconds = None if ctx.as_sql else self.last_seconds
        row = _step_row(step, "success", seconds)
        note, direction = history.take_annotation(ctx)
        row = replace(row, note=note, direction=direction or row.direction)
        self._record(ctx, row, heads)
        self.report.steps.append(row)

    def _record(self, ctx: MigrationContext, step: history.Step, heads: Iterable[str]) -> None:
        if not self._tables_ready:
            history.ensure_tables(ctx)
            self._tables_ready = True
        history.record(ctx, step, heads)

    def _record_failure(
        self, connection: sa.Connection, migration_context: MigrationContext, failure: _Failure
    ) -> None:
        """Write the failed step in a transaction of its own, after the step's own was rolled back."""
        if connection.in_transaction():
            connection.rollback()
        self._tables_ready = False
        with connection.begin():
            heads = migration_context.get_current_heads()
            row = _step_row(failure.step.info, "failed", failure.seconds, error=failure.error)
            self._record(migration_context, row, heads)

    def _failed(self, failure: _Failure) -> MigrationFailed:
        info = failure.step.info
        revision = info.up_revision_id or "?"
        name = info.up_revision.doc if isinstance(info.up_revision, Script) else ""
        direction = "upgrade" if info.is_upgrade else "downgrade"
        return MigrationFailed(
            f"{direction} of revision {revision}{f' ({name})' if name else ''} failed: {first_line(failure.error)}",
            "Nothing of that step was applied and the database is as it was before it; fix the revision and run again",
        )


def _step_row(info: MigrationInfo, status: str, seconds: float | None, error: Exception | None = None) -> history.Step:
    """The history row for a step that ran (``status`` success) or failed."""
    elapsed = None if seconds is None else round(seconds * 1000)
    if info.is_stamp:
        destinations = ",".join(info.destination_revision_ids)
        scripts = [info.revision_map.get_revision(r) for r in info.destination_revision_ids]
        return history.Step(
            version=destinations,
            name="; ".join(s.doc for s in scripts if isinstance(s, Script)) or "base",
            direction="stamp",
            status=status,
            checksum=checksum.revision_checksum(scripts[0])
            if len(scripts) == 1 and isinstance(scripts[0], Script)
            else None,
        )
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
        execution_time_ms=elapsed,
        checksum=checksum.revision_checksum(script),
        up_script=up,
        down_script=down,
        error_message=str(error) if error is not None else None,
    )


def _include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """Leave this layer's own tables out of autogenerate."""
    return not (type_ == "table" and name in history.OWN_TABLES)
