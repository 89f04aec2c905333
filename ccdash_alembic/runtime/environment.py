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

import contextlib
import logging.config
import os
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import duckdb
import sqlalchemy as sa
from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext, MigrationInfo, RevisionStep, StampStep
from alembic.script import Script, ScriptDirectory

from ccdash_alembic import output
from ccdash_alembic.ddl.autogen import name_dropped_constraints
from ccdash_alembic.ddl.impl import SHADOW_OPTION
from ccdash_alembic.ddl.plugin import PLUGIN_NAME
from ccdash_alembic.ddl.shadow import schema_copy
from ccdash_alembic.errors import (
    MISSING_PARENT_WARNING,
    ChecksumMismatch,
    DataLossRefused,
    Dirty,
    MigrateError,
    MigrationFailed,
    UsageError,
    first_line,
    interrupted,
    user_error,
)
from ccdash_alembic.runtime import backup, checksum, database, history, revision_ids
from ccdash_alembic.runtime.application import ATTRIBUTE as APPLICATION
from ccdash_alembic.runtime.application import Application
from ccdash_alembic.runtime.settings import OPTION as SETTINGS_OPTION
from ccdash_alembic.runtime.settings import Settings


def run(
    context: EnvironmentContext, target_metadata: sa.MetaData | None = None, application: Application | None = None
) -> None:
    """Run the current Alembic command; on a user-facing error, print one line and exit with its code.

    ``context`` is ``alembic.context`` as env.py sees it. Called through Alembic's Python API (no command
    line), errors are raised as ``MigrateError`` subclasses instead. ``application`` is the project's
    (default: the one ``alembic.ini`` names, else the generic one: see ``ccdash_alembic.runtime.application``).
    """
    config = context.config
    if application is not None:
        config.attributes[APPLICATION] = application
    warnings.filterwarnings("ignore", MISSING_PARENT_WARNING, UserWarning)  # the error line names the parent
    if config.cmd_opts is not None and not getattr(config.cmd_opts, "quiet", False) and config.config_file_name:
        # As Alembic's own env.py templates do, but only on the command line (and not with --quiet): an
        # application calling the Python API keeps its own logging setup.
        logging.config.fileConfig(config.config_file_name, disable_existing_loggers=False)
        if getattr(config.cmd_opts, "log_verbose", False):  # ccdash-migrate -v
            output.verbose_logging()
    try:
        settings = Settings.load(config, context.get_x_argument(as_dictionary=True), application)
        if _writes_a_revision_only(context):
            _write_revision(context, target_metadata)
            return
        handed = config.attributes.get(database.HANDED_OVER)
        target = database.resolve(settings) if handed is None else database.handed_over(handed)
        _announce(config, f"Database: {target.describe()}")
        runner = _Runner(context, settings, target, target_metadata, handed)
        config.attributes[REPORT] = runner.report
        if context.is_offline_mode():
            runner.offline()
        else:
            runner.online()
    except BaseException as error:
        problem = user_error(config, error)
        if problem is None:
            raise
        _stop(config, problem, error)


def _writes_a_revision_only(context: EnvironmentContext) -> bool:
    """``alembic revision`` without ``--autogenerate``, or ``alembic merge`` (which run env.py because
    alembic.ini sets ``revision_environment``, so a new revision's id is chosen here): they need no database,
    so none is opened. Alembic passes ``template_args`` for these, and a ``revision_context`` for the first."""
    # env.py passes the alembic.context module, which forwards methods and class attributes only; the
    # EnvironmentContext behind it (and the options the command gave it) is its _proxy
    environment = context if isinstance(context, EnvironmentContext) else getattr(context, "_proxy", None)
    opts: dict[str, Any] = getattr(environment, "context_opts", None) or {}
    revision_context = opts.get("revision_context")
    if revision_context is None:
        return "template_args" in opts
    return not revision_context.command_args.get("autogenerate")


def _write_revision(context: EnvironmentContext, target_metadata: sa.MetaData | None) -> None:
    """Let Alembic make the revision's directives on an empty in-memory database, choosing its id and checking
    its message (``revision_ids.process_revision_directives``) before anything is written."""
    empty = sa.create_engine("duckdb:///:memory:", connect_args={"config": dict(database.SAFE_OPEN)})
    announcer = logging.getLogger("alembic.runtime.migration")
    announcer.disabled = True  # its "Context impl" lines: no database is used
    try:
        with empty.connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                process_revision_directives=revision_ids.process_revision_directives,
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        announcer.disabled = False
        empty.dispose()


def _revision_directives(context: MigrationContext, revision: Any, directives: list[Any]) -> None:
    """Autogenerate's fixes of the directives, then the revision's id and message rules."""
    name_dropped_constraints(context, revision, directives)
    revision_ids.process_revision_directives(context, revision, directives)


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
    committed_part: bool = False  # the revision ended its own transaction: what it did before is committed


class EndedItsTransaction(RuntimeError):
    """A transactional revision committed (or rolled back) the transaction this layer opened for it."""


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
        self._runner.uncommitted = None  # the step before this one committed
        context = self._runner.migration_context
        transaction = None
        try:
            if _is_transactional(self._step):
                impl: Any = context.impl
                impl.start_census()  # rows per table before the revision's code, for refuse_data_loss
                transaction = _transaction_id(context)
                result = self._step.migration_fn(*args, **kw)
                if _ended_since(context, transaction):
                    raise EndedItsTransaction(
                        "the revision ended its own transaction (a COMMIT or ROLLBACK, or connection.commit()), "
                        "so what it did before that is committed and nothing after it was checked"
                    )
            else:
                result = self._runner.run_outside_transaction(self._step, *args, **kw)
            self._runner.refuse_data_loss()
            self._runner.uncommitted = self._step
            return result
        except Exception as error:
            ended = isinstance(error, EndedItsTransaction) or _ended_since(context, transaction)
            self._runner.failure = _Failure(self._step, time.perf_counter() - start, error, committed_part=ended)
            raise
        except SystemExit as stop:
            # sys.exit() in a revision fails that revision, rather than ending the run as if all had gone well
            failed = RuntimeError(f"the revision called sys.exit({stop.code!r})")
            self._runner.failure = _Failure(self._step, time.perf_counter() - start, failed)
            raise failed from stop
        except KeyboardInterrupt:
            # Ctrl-C stops the run; the step's transaction rolls back and the interruption is recorded as its failure
            stopped = RuntimeError("interrupted (SIGINT)")
            self._runner.failure = _Failure(self._step, time.perf_counter() - start, stopped)
            raise
        except BaseException as other:  # GeneratorExit, a bare BaseException: the revision failed, not the run
            failed = RuntimeError(f"the revision raised {type(other).__name__}: {other}")
            self._runner.failure = _Failure(self._step, time.perf_counter() - start, failed)
            raise failed from other
        finally:
            self._runner.last_seconds = time.perf_counter() - start


def _transaction_id(migration_context: MigrationContext) -> tuple[object, int] | None:
    """The open transaction, as SQLAlchemy and DuckDB know it: either changes when a revision commits or rolls
    back on its own (``connection.commit()`` ends SQLAlchemy's; a raw ``COMMIT`` only DuckDB's)."""
    connection = migration_context.connection
    if connection is None or migration_context.as_sql:
        return None
    return connection.get_transaction(), int(connection.exec_driver_sql("SELECT txid_current()").scalar() or 0)


def _is_interrupt(error: BaseException) -> bool:
    """DuckDB's answer to Ctrl-C during a statement ("Query interrupted"), however SQLAlchemy wrapped it."""
    cause = getattr(error, "orig", None) or error
    return isinstance(cause, duckdb.InterruptException) or "Query interrupted" in str(cause)


def _ended_since(migration_context: MigrationContext, transaction: tuple[object, int] | None) -> bool:
    """Whether the transaction a step started in is gone (the revision committed or rolled it back itself).
    After a failed statement DuckDB refuses every query of the transaction it failed in; that transaction is
    the step's own unless SQLAlchemy's changed."""
    if transaction is None or migration_context.connection is None:
        return False
    if migration_context.connection.get_transaction() is not transaction[0]:
        return True
    try:
        return _transaction_id(migration_context) != transaction
    except sa.exc.DBAPIError:
        return False


def _mutates(migration_context: MigrationContext) -> bool:
    """Whether the command moves the database (upgrade, downgrade, stamp), as opposed to reading it
    (``current``) or comparing it with the model (``check``, ``revision --autogenerate``)."""
    opts = migration_context.opts
    return opts.get("destination_rev") is not None and not opts.get("dont_mutate")


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
        handed: sa.Connection | sa.Engine | None = None,
    ) -> None:
        self.context = context
        self.handed = handed  # a connection or engine the caller put in config.attributes: used as given
        self.settings = settings
        self.target = target
        self.target_metadata = target_metadata
        self.script: ScriptDirectory = context.script
        self.failure: _Failure | None = None
        self.uncommitted: RevisionStep | StampStep | None = None  # a step that ran and is not committed yet
        self.last_seconds: float | None = None
        self.changed = False
        self.existed = False
        self._backup: backup.Backup | None = None
        self._outside_transaction_started = False  # a non-transactional step commits as it goes
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
            process_revision_directives=_revision_directives,
            **{SETTINGS_OPTION: self.settings},  # type: ignore[arg-type]
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
        if self.handed is not None and not starts_at_base:
            raise UsageError(
                "a --sql script from a start revision reads the schema from the database file, which the "
                "connection handed over in config.attributes may hold open in this process",
                "Write the script from base, or without a connection in config.attributes",
            )
        shadow = schema_copy(None if starts_at_base else self.target.path)
        try:
            self._configure(url=self.target.url, literal_binds=True, **{SHADOW_OPTION: shadow})
            with self.context.begin_transaction():
                self.context.run_migrations()
        finally:
            shadow.close()

    def online(self) -> None:
        self.existed = self.target.path is not None and not self.target.is_new
        if self.handed is not None:
            self._online_handed(self.handed)
            return
        if self.target.path is not None and not self.existed:
            # A file that is not there is an empty database: `alembic current`, `check` and autogenerate read
            # an empty one in memory, and neither the file nor its folder is created.
            empty = sa.create_engine("duckdb:///:memory:", connect_args={"config": dict(database.SAFE_OPEN)})
            announcer = logging.getLogger("alembic.runtime.migration")
            announcer.disabled = True  # its "Context impl" lines, said once below for the file itself
            try:
                with empty.connect() as connection:
                    if not _mutates(self._configure(connection=connection)):
                        with self.context.begin_transaction():
                            self.context.run_migrations()
                        return
            finally:
                announcer.disabled = False
        engine = database.create_engine(self.target, self.settings)
        with database.connect(engine, self.target, self.settings.lock_timeout) as connection:
            self._run_on(connection)

    def _online_handed(self, handed: sa.Connection | sa.Engine) -> None:
        """Run on what the caller handed over: a connection as it is (in the caller's transaction, if one is
        open: the caller commits it), an engine through a connection of its own, closed after. No engine of
        this layer's is made and the file is not opened again, so nothing waits for the caller's own lock."""
        if isinstance(handed, sa.Engine):
            with database.connect(handed, self.target, self.settings.lock_timeout) as connection:
                self.existed = self.target.path is not None and database.holds_tables(connection)
                self._run_on(connection)
            return
        database.verify(handed, self.target)
        self.existed = self.target.path is not None and database.holds_tables(handed)
        self._run_on(handed, callers_transaction=handed.in_transaction())

    def _run_on(self, connection: sa.Connection, callers_transaction: bool = False) -> None:
        """Run the command on an open connection; ``callers_transaction``: the steps run in a transaction the
        caller opened, which is left to the caller to commit (Alembic then runs them all in it)."""
        migration_context = self._configure(connection=connection)
        try:
            if _mutates(migration_context):
                # before Alembic's own first write (``stamp --purge`` empties alembic_version first thing)
                self._refuse_when_dirty(migration_context)  # at head too: the mark means "look first"
                if migration_context.purge:
                    self.script.get_revisions(migration_context.opts["destination_rev"])
            with self.context.begin_transaction():
                self.context.run_migrations()
        except Exception as error:
            if _is_interrupt(error):  # DuckDB stopped a statement for Ctrl-C
                raise self._interruption(connection, migration_context) from error
            if self.failure is None and self.uncommitted is not None and isinstance(error, sa.exc.DBAPIError):
                # the step ran but its commit failed (a full disk, a file-size limit): that step failed
                self.failure = _Failure(self.uncommitted, self.last_seconds or 0.0, error)
                self.report.steps = self.report.steps[:-1]  # its history row went with the commit
            self._discard_unused_backup()
            if self.failure is None or self.failure.error is not error or isinstance(error, MigrateError):
                if not self.report.steps and not self._outside_transaction_started and self.handed is None:
                    # nothing was committed: closing must not fold a pending write-ahead log into the file
                    connection.exec_driver_sql("PRAGMA disable_checkpoint_on_shutdown")
                raise  # not a revision's failure, or a refusal: nothing was changed and nothing is recorded
            with contextlib.suppress(sa.exc.SQLAlchemyError):  # a full disk: reported, but not recorded
                self._record_failure(connection, migration_context, self.failure)
            failed = self._failed(self.failure)
            self._run_failure_hook(failed)
            raise failed from error
        except KeyboardInterrupt as interrupt:
            raise self._interruption(connection, migration_context) from interrupt
        if connection.in_transaction() and not callers_transaction:
            connection.commit()
        self.report.after = tuple(migration_context.get_current_heads())
        if self.changed and not callers_transaction:
            try:
                connection.exec_driver_sql("CHECKPOINT")  # the file alone holds the result; no log to replay
            except sa.exc.DBAPIError:
                connection.invalidate()  # DuckDB gave the database up (a full disk): closing must not reset it
                raise

    def _interruption(self, connection: sa.Connection, migration_context: MigrationContext) -> MigrateError:
        """Ctrl-C: the running step rolls back and is recorded as interrupted; the run ends (exit code 130)."""
        self._discard_unused_backup()
        if self.failure is None:
            return interrupted()  # between steps: every step so far committed
        stopped = self.failure = replace(self.failure, error=RuntimeError("interrupted (SIGINT)"))
        with contextlib.suppress(sa.exc.SQLAlchemyError, KeyboardInterrupt):
            self._record_failure(connection, migration_context, stopped)
        how = (
            "its statements before the interruption stay applied and the database is marked dirty"
            if not _is_transactional(stopped.step) or stopped.committed_part
            else "its transaction was rolled back"
        )
        return interrupted(f" during revision {stopped.step.info.up_revision_id or '?'}: {how}")

    def _discard_unused_backup(self) -> None:
        """A run that stops before its first step commits leaves the database as it was: its backup would be
        a copy of an unchanged file (and, for a refused file, a file left beside it), so it goes."""
        committed = self._outside_transaction_started or (self.failure is not None and self.failure.committed_part)
        if self._backup is not None and not self.report.steps and not committed:
            backup.discard(self._backup)
            self.report.backup = self._backup = None

    def _run_failure_hook(self, failed: MigrationFailed) -> None:
        """Run the configured ``on_failure`` command, so operators can wire alerts."""
        if not self.settings.on_failure or self.failure is None:
            return
        prefix = self.settings.application.hook_prefix  # the application's names for them
        environment = {
            **os.environ,
            f"{prefix}_REVISION": self.failure.step.info.up_revision_id or "",
            f"{prefix}_ERROR": failed.what,
            f"{prefix}_DATABASE": str(self.target.path or self.target.url),
        }
        result = subprocess.run(self.settings.on_failure, shell=True, env=environment, check=False)
        if result.returncode != 0:
            sys.stderr.write(f"warning: the on_failure command exited with code {result.returncode}\n")

    def run_outside_transaction(self, step: RevisionStep | StampStep, *args: Any, **kw: Any) -> Any:
        """Run a non-transactional revision: each statement commits as it goes, with the database marked
        dirty (naming the revision) until the step is recorded, so a failure or a crash is noticed."""
        context = self.migration_context
        self._outside_transaction_started = True
        with context.autocommit_block():
            history.ensure_tables(context)
            self._tables_ready = True
            history.mark_dirty(context, step.info.up_revision_id or "")
            return step.migration_fn(*args, **kw)

    def refuse_data_loss(self) -> None:
        """Stop the step (rolling it back) if it dropped data or lost rows while that is not allowed; when it
        is allowed, say in the step's history note what was lost and why that was allowed."""
        impl: Any = self.migration_context.impl
        losses = impl.take_data_losses()
        if losses and not impl.data_loss_allowed:
            raise DataLossRefused(
                "this step would lose data: " + "; ".join(losses),
                "Run again with -x confirm_data_loss=true, or with backups on (the default) so a copy is made first",
            )
        if losses:
            why = "a backup was made before this run" if self.report.backup else "-x confirm_data_loss=true"
            note, direction = history.take_annotation(self.migration_context)
            lost = f"data lost ({why}): " + "; ".join(losses)
            history.annotate(self.migration_context, f"{note}; {lost}" if note else lost, direction)

    def _wrap(
        self, fn: Callable[[tuple[str, ...], MigrationContext], Iterable[RevisionStep | StampStep]]
    ) -> Callable[[tuple[str, ...], MigrationContext], Iterator[Any]]:
        def steps(heads: tuple[str, ...], migration_context: MigrationContext) -> Iterator[Any]:
            planned = list(fn(heads, migration_context))
            self.report.before = self.report.after = tuple(heads)
            if migration_context.as_sql:
                yield from (_TimedStep(step, self) for step in planned)
                return
            if not planned:
                return
            self._verify_checksums(migration_context, heads)
            database.refuse_unwritable(self.target)  # before the backup, which goes beside the database too
            self._back_up(migration_context, heads, planned)
            with output.progress("Migrating", len(planned)) as advance:
                for step in planned:
                    advance(str(step), 0)
                    recorded = len(self.report.steps)
                    yield _TimedStep(step, self)
                    # back here once the step's transaction has committed: say what it did, in one line
                    for row in self.report.steps[recorded:]:
                        line = output.step_line(row.direction, row.version, row.name, row.execution_time_ms)
                        _announce(self.context.config, line)
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
            assert migration_context.connection is not None
            identity = history.database_id(migration_context.connection)
            self._backup = backup.create(self.target, self.settings, ",".join(sorted(heads)), identity)
            self.report.backup = self._backup.folder
            _announce(self.context.config, f"Backup: {self._backup.folder}")
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
        """Write the failed step in a transaction of its own, after the step's own was rolled back; a step that
        committed part of itself also leaves the dirty mark, so nothing runs on until someone has looked."""
        if connection.in_transaction():
            connection.rollback()
        self._tables_ready = False
        with connection.begin():
            heads = migration_context.get_current_heads()
            row = _step_row(failure.step.info, "failed", failure.seconds, error=failure.error)
            self._record(migration_context, row, heads)
            if failure.committed_part:
                history.mark_dirty(migration_context, failure.step.info.up_revision_id or "")

    def _failed(self, failure: _Failure) -> MigrationFailed:
        info = failure.step.info
        revision = info.up_revision_id or "?"
        name = info.up_revision.doc if isinstance(info.up_revision, Script) else ""
        direction = "upgrade" if info.is_upgrade else "downgrade"
        what = f"{direction} of revision {revision}{f' ({name})' if name else ''} failed: {first_line(failure.error)}"
        if failure.committed_part:
            return MigrationFailed(
                what,
                "It had ended its own transaction before, so what it did until then is committed and the database "
                "is marked dirty; check it, then run ccdash-migrate repair, or ccdash-migrate restore",
            )
        if not _is_transactional(failure.step):
            return MigrationFailed(
                what,
                "It ran outside a transaction, so the statements before the failing one stay applied and the "
                "database is marked dirty; check it, then run ccdash-migrate repair, or ccdash-migrate restore",
            )
        return MigrationFailed(
            what,
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
