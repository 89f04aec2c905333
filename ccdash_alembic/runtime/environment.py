"""What ``env.py`` calls: one function that runs any Alembic command against the resolved DuckDB database.

Per run it:

1. reads the options (``settings``) and resolves the database (``database``), and says which one it is;
2. builds the run's rules from the options (``preflight.policy``) and hands them to Alembic's context;
3. runs each revision in its own transaction (``transaction_per_migration``);
4. before the first step, runs the checks of ``preflight`` (dirty mark, changed revision files, a file it
   could not write) and makes the backup;
5. times and records every step (``recorder``) in ``migration_history`` and ``schema_version`` inside that
   step's transaction;
6. when a revision raises, lets its transaction roll back, then records the failure in a transaction of its
   own and stops with one line naming the revision and the cause.

This module is the orchestration: the order of those, and what stops a run.

In ``--sql`` mode the same steps are rendered as a script, history statements included.
"""

from __future__ import annotations

import contextlib
import logging.config
import os
import re
import subprocess
import sys
import warnings
from collections.abc import Iterator
from typing import Any

import duckdb
import sqlalchemy as sa
from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext, RevisionStep, StampStep
from alembic.script import ScriptDirectory

from ccdash_alembic import alembic_internals as internals
from ccdash_alembic import output
from ccdash_alembic.ddl import statements
from ccdash_alembic.ddl.autogen import name_dropped_constraints
from ccdash_alembic.ddl.impl import SHADOW_OPTION, DuckDBImpl
from ccdash_alembic.ddl.plugin import PLUGIN_NAME
from ccdash_alembic.ddl.rebuild import PlanError
from ccdash_alembic.ddl.shadow import copied_versions, schema_copy
from ccdash_alembic.errors import (
    MISSING_PARENT_WARNING,
    MigrateError,
    MigrationFailed,
    UsageError,
    interrupted,
    user_error,
)
from ccdash_alembic.policy import POLICY_OPTION
from ccdash_alembic.runtime import (
    backup,
    database,
    engines,
    history,
    preflight,
    revision_ids,
    server_drops,
    step_limits,
)
from ccdash_alembic.runtime.application import ATTRIBUTE as APPLICATION
from ccdash_alembic.runtime.application import Application
from ccdash_alembic.runtime.history_tables import OWN_TABLES
from ccdash_alembic.runtime.recorder import Failure, Recorder, RunReport, is_transactional
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
    _configure_logging(config)
    try:
        settings = Settings.load(config, context.get_x_argument(as_dictionary=True), application)
        if _writes_a_revision_only(context):
            _write_revision(context, target_metadata)
            return
        handed = config.attributes.get(database.HANDED_OVER)
        if handed is None:
            target = database.resolve(settings)
        else:
            target = database.handed_over(handed)
            settings.refuse_other_engine(target.server)
        output.announce(config, f"Database: {target.describe()}")
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


def _configure_logging(config: Config) -> None:
    """As Alembic's own env.py templates do, but only on the command line (and not with --quiet): an
    application calling the Python API keeps its own logging setup."""
    if config.cmd_opts is not None and not getattr(config.cmd_opts, "quiet", False) and config.config_file_name:
        logging.config.fileConfig(config.config_file_name, disable_existing_loggers=False)
        if getattr(config.cmd_opts, "log_verbose", False):  # ccdash-migrate -v
            output.verbose_logging()


def _writes_a_revision_only(context: EnvironmentContext) -> bool:
    """``alembic revision`` without ``--autogenerate``, or ``alembic merge`` (which run env.py because
    alembic.ini sets ``revision_environment``, so a new revision's id is chosen here): they need no database,
    so none is opened. Alembic passes ``template_args`` for these, and a ``revision_context`` for the first."""
    environment = internals.environment_context(context)
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


REPORT = "ccdash_alembic.report"


class EndedItsTransaction(RuntimeError):
    """A transactional revision committed (or rolled back) the transaction this layer opened for it."""


class _TimedStep:
    """A migration step whose ``migration_fn`` is run under the run's rules, timed and recorded."""

    def __init__(self, step: RevisionStep | StampStep, runner: _Runner) -> None:
        self._step = step
        self._runner = runner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._step, name)

    def __str__(self) -> str:
        return str(self._step)

    def migration_fn(self, *args: Any, **kw: Any) -> Any:
        recorder = self._runner.recorder
        recorder.start(self._step)
        context = self._runner.migration_context
        transaction = None
        try:
            if is_transactional(self._step):
                transaction = _transaction_id(context)
                result = self._in_transaction(context, transaction, *args, **kw)
            else:
                result = self._runner.run_outside_transaction(self._step, *args, **kw)
            self._runner.refuse_data_loss()
            recorder.ran()
            return result
        except Exception as error:
            recorder.fail(error, isinstance(error, EndedItsTransaction) or _ended_since(context, transaction))
            raise
        except SystemExit as stop:
            # sys.exit() in a revision fails that revision, rather than ending the run as if all had gone well
            failed = RuntimeError(f"the revision called sys.exit({stop.code!r})")
            recorder.fail(failed)
            raise failed from stop
        except KeyboardInterrupt:
            # Ctrl-C stops the run; the step's transaction rolls back and the interruption is recorded as its failure
            recorder.fail(RuntimeError("interrupted (SIGINT)"))
            raise
        except BaseException as other:  # GeneratorExit, a bare BaseException: the revision failed, not the run
            failed = RuntimeError(f"the revision raised {type(other).__name__}: {other}")
            recorder.fail(failed)
            raise failed from other
        finally:
            recorder.stop()

    def _in_transaction(
        self, context: MigrationContext, transaction: tuple[object, int] | None, *args: Any, **kw: Any
    ) -> Any:
        """The revision's code in the step's transaction, under the run's limits (``step_limits``: on PostgreSQL
        retried from a savepoint while it times out waiting for a lock), then checked to still be in it."""
        impl = _duckdb_impl(context)
        if impl is not None:
            impl.start_census()  # rows per table before the revision's code, for data_loss_note

        def code() -> Any:
            with _refusing_transaction_statements(context):
                return self._step.migration_fn(*args, **kw)

        try:
            result = step_limits.in_transaction(context, self._runner.settings, code)
        except sa.exc.DBAPIError as error:
            # PostgreSQL: the savepoint the revision ran from is gone, so the transaction it lived in was ended
            # by the revision itself (a COMMIT through the driver's own connection or cursor)
            if getattr(error.orig, "sqlstate", None) == SAVEPOINT_GONE:
                raise _ended_its_transaction() from error
            raise
        if _ended_since(context, transaction):
            raise _ended_its_transaction()
        return result


def _ended_its_transaction() -> EndedItsTransaction:
    return EndedItsTransaction(
        "the revision ended its own transaction (a COMMIT or ROLLBACK, or connection.commit()), "
        "so what it did before that is committed and nothing after it was checked"
    )


_TRANSACTION_WORD = re.compile(r"\b(begin|start|commit|end|rollback|abort|savepoint|release|prepare)\b", re.IGNORECASE)
# A statement that begins (after comments) with a word that manages transactions, for text DuckDB's parser
# cannot read: PostgreSQL's own forms (COMMIT AND CHAIN, SAVEPOINT, PREPARE TRANSACTION, ...).
_LEADING_TRANSACTION_WORD = re.compile(
    r"^\s*(?:(?:--[^\n]*(?:\n|$)|/\*.*?\*/)\s*)*"
    r"(begin|start\s+transaction|commit|end|rollback|abort|savepoint|release|prepare\s+transaction)\b",
    re.IGNORECASE | re.DOTALL,
)
SAVEPOINT_GONE = "3B001"  # PostgreSQL's SQLSTATE for a savepoint that no longer exists


def _refuse_transaction_statement(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
    """Refuse a ``COMMIT``/``ROLLBACK``/``BEGIN`` a revision sends through the driver itself (say
    ``exec_driver_sql("COMMIT")``) before DuckDB runs it: run, it would commit half the revision, and what follows
    would run in autocommit, past every check. (``op.execute`` refuses the same text; this is for what skips it.)"""
    if _TRANSACTION_WORD.search(statement):
        try:
            statements.split(statement)
        except duckdb.Error:  # text DuckDB cannot parse: the database says what is wrong when it runs it, unless
            if _LEADING_TRANSACTION_WORD.match(statement):
                raise statements.TransactionStatement(
                    f"{statement.strip()[:60]!r} manages the transaction, which the revision already runs in; remove it"
                ) from None


@contextlib.contextmanager
def _refusing_transaction_statements(migration_context: MigrationContext) -> Iterator[None]:
    connection = migration_context.connection
    if connection is None or migration_context.as_sql:  # a script: nothing runs here
        yield
        return
    sa.event.listen(connection, "before_cursor_execute", _refuse_transaction_statement)
    try:
        yield
    finally:
        sa.event.remove(connection, "before_cursor_execute", _refuse_transaction_statement)


def _duckdb_impl(migration_context: MigrationContext) -> DuckDBImpl | None:
    """The DuckDB implementation the run's steps go through; None on PostgreSQL, where Alembic's own does the
    work (its ALTER needs no rebuild, so there is no copy to count rows of)."""
    impl = migration_context.impl
    return impl if isinstance(impl, DuckDBImpl) else None


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


class _Runner:
    """One run: opens what the command runs on, hands the steps to Alembic wrapped in the checks before the
    first one (``preflight``) and the recording of each (``recorder``), and turns what stops it into one error."""

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
        self.report = RunReport(target.describe())
        self.recorder = Recorder(self.report)
        self.policy = preflight.policy(settings, existing=False)
        self.changed = False
        self.existed = False
        self._backup: backup.Backup | None = None
        self._outside_transaction_started = False  # a non-transactional step commits as it goes
        self._callers_transaction = False  # the steps run in a transaction the calling program opened

    def _configure(self, **kw: Any) -> MigrationContext:
        self.policy = preflight.policy(self.settings, existing=self.existed)
        self.context.configure(
            target_metadata=self.target_metadata,
            transaction_per_migration=True,
            on_version_apply=self.recorder.on_version_apply,
            include_object=_include_object,
            compare_type=True,
            compare_server_default=True,
            autogenerate_plugins=["alembic.autogenerate.*", PLUGIN_NAME],
            process_revision_directives=_revision_directives,
            **{  # type: ignore[arg-type]
                SETTINGS_OPTION: self.settings,
                POLICY_OPTION: self.policy,
                history.NOTES_OPTION: history.Notes(),
            },
            **kw,
        )
        migration_context = self.migration_context = self.context.get_context()
        # The steps are wrapped to time each revision and to know which one failed.
        internals.wrap_migration_steps(migration_context, self._wrap)
        if not engines.is_duckdb(migration_context):  # DuckDB's implementation guards its own drops
            server_drops.guard(migration_context, self.policy)
        return migration_context

    def offline(self) -> None:
        # The script starts at base (an empty database) unless a start revision is given (``X:head``), in
        # which case the database file is taken to be at that revision and its schema is the starting point.
        start = self.context.get_starting_revision_argument()
        if self.handed is not None and start is not None:
            raise UsageError(
                "a --sql script from a start revision reads the schema from the database file, which the "
                "connection handed over in config.attributes may hold open in this process",
                "Write the script from base, or without a connection in config.attributes",
            )
        if self.target.server:
            self._offline_server()
            return
        shadow = schema_copy(None if start is None else self.target.path)
        try:
            if start is not None:
                self._refuse_another_start(shadow, start)
            self._configure(url=self.target.url, literal_binds=True, **{SHADOW_OPTION: shadow})
            with self.context.begin_transaction():
                self.context.run_migrations()
        except PlanError as refused:
            # online, the step's failure says this; a script has no step that ran, only the plan it cannot make
            raise MigrationFailed(
                f"the --sql script cannot be written: {refused}", "Fix the revision; nothing was written to run"
            ) from refused
        finally:
            shadow.close()

    def _offline_server(self) -> None:
        """A ``--sql`` script for PostgreSQL, rendered by Alembic's own implementation: the server's ALTER does
        every change in place, so no plan needs the schema, and a start revision is taken as given."""
        self._configure(url=self.target.url, literal_binds=True)
        with self.context.begin_transaction():
            self.context.run_migrations()

    def _refuse_another_start(self, shadow: sa.Connection, start: str | tuple[str, ...]) -> None:
        """Each statement of the script is planned against the file's schema, so the file must be at the
        script's start revision: from anywhere else the plans would be made against the wrong tables."""
        wanted = {s.revision for s in self.context.script.get_revisions(start) if s is not None}
        at = copied_versions(shadow)
        if at != wanted:
            raise UsageError(
                f"a --sql script from {start} plans against the database's schema, but the database is at "
                f"{', '.join(sorted(at)) or 'base'}",
                "Start the script at the revision the database is at, or pass -x db= a database at the start",
            )

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
                    if not preflight.mutates(self._configure(connection=connection)):
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
        this layer's is made and the file is not opened again, so nothing waits for the caller's own lock. On
        PostgreSQL the run's lock is taken on it for the run (``database.handed_connection``)."""
        callers_transaction = isinstance(handed, sa.Connection) and handed.in_transaction()
        with database.handed_connection(handed, self.target, self.settings.lock_timeout) as connection:
            self.existed = self.target.path is not None and database.holds_tables(connection)
            self._run_on(connection, callers_transaction=callers_transaction)

    def _run_on(self, connection: sa.Connection, callers_transaction: bool = False) -> None:
        """Run the command on an open connection; ``callers_transaction``: the steps run in a transaction the
        caller opened, which is left to the caller to commit (Alembic then runs them all in it)."""
        self._callers_transaction = callers_transaction
        migration_context = self._configure(connection=connection)
        try:
            if preflight.mutates(migration_context):
                # before Alembic's own first write (``stamp --purge`` empties alembic_version first thing)
                preflight.refuse_when_dirty(connection)  # at head too: the mark means "look first"
                if migration_context.purge:
                    self.script.get_revisions(migration_context.opts["destination_rev"])
            with self.context.begin_transaction():
                self.context.run_migrations()
        except Exception as error:
            failed = self._stopped_by(connection, migration_context, error)
            if failed is None:
                raise  # not a revision's failure, or a refusal: nothing was changed and nothing is recorded
            raise failed from error
        except KeyboardInterrupt as interrupt:
            raise self._interruption(connection, migration_context) from interrupt
        if connection.in_transaction() and not callers_transaction:
            connection.commit()
        self.report.after = tuple(migration_context.get_current_heads())
        if self.changed and not callers_transaction:
            self._checkpoint(connection)

    def _stopped_by(
        self, connection: sa.Connection, migration_context: MigrationContext, error: Exception
    ) -> MigrateError | None:
        """What the run ends with when ``error`` stopped it: a revision's failure, recorded; an interruption;
        or None when the error itself is to be raised (a refusal, or not a revision's failure)."""
        if _is_interrupt(error):  # DuckDB stopped a statement for Ctrl-C
            return self._interruption(connection, migration_context)
        self.recorder.commit_failed(error)  # the step ran but its commit failed: that step failed
        self._discard_unused_backup()
        failure = self.recorder.failure
        if failure is None or failure.error is not error or isinstance(error, MigrateError):
            if (
                not self.report.steps
                and not self._outside_transaction_started
                and self.handed is None
                and not self.target.server
            ):
                # nothing was committed: closing must not fold a pending write-ahead log into the file
                connection.exec_driver_sql("PRAGMA disable_checkpoint_on_shutdown")
            return None
        with contextlib.suppress(sa.exc.SQLAlchemyError):  # a full disk: reported, but not recorded
            self._record_failure(connection, migration_context)
        failed = failure.as_error()
        self._run_failure_hook(failure, failed)
        return failed

    def _record_failure(self, connection: sa.Connection, migration_context: MigrationContext) -> None:
        """Record the failed step in a transaction of its own, except in a transaction the calling program
        opened: that is the program's to commit or roll back (recording would end it, and with it the program's
        own work), and the program gets the error."""
        if not self._callers_transaction:
            self.recorder.record_failure(connection, migration_context)

    def _checkpoint(self, connection: sa.Connection) -> None:
        """Leave the file holding the whole result: no write-ahead log to replay (a server keeps its own)."""
        if self.target.server:
            return
        try:
            connection.exec_driver_sql("CHECKPOINT")
        except sa.exc.DBAPIError:
            connection.invalidate()  # DuckDB gave the database up (a full disk): closing must not reset it
            raise

    def _interruption(self, connection: sa.Connection, migration_context: MigrationContext) -> MigrateError:
        """Ctrl-C: the running step rolls back and is recorded as interrupted; the run ends (exit code 130)."""
        self._discard_unused_backup()
        stopped = self.recorder.interrupted()
        if stopped is None:
            return interrupted()  # between steps: every step so far committed
        with contextlib.suppress(sa.exc.SQLAlchemyError, KeyboardInterrupt):
            self._record_failure(connection, migration_context)
        how = (
            "its statements before the interruption stay applied and the database is marked dirty"
            if not is_transactional(stopped.step) or stopped.committed_part
            else "its transaction was rolled back"
        )
        return interrupted(f" during revision {stopped.step.info.up_revision_id or '?'}: {how}")

    def _discard_unused_backup(self) -> None:
        """A run that stops before its first step commits leaves the database as it was: its backup would be
        a copy of an unchanged file (and, for a refused file, a file left beside it), so it goes."""
        failure = self.recorder.failure
        committed = self._outside_transaction_started or (failure is not None and failure.committed_part)
        if self._backup is not None and not self.report.steps and not committed:
            backup.discard(self._backup)
            self.report.backup = self._backup = None

    def _run_failure_hook(self, failure: Failure, failed: MigrationFailed) -> None:
        """Run the configured ``on_failure`` command, so operators can wire alerts."""
        if not self.settings.on_failure:
            return
        prefix = self.settings.application.hook_prefix  # the application's names for them
        environment = {
            **os.environ,
            f"{prefix}_REVISION": failure.step.info.up_revision_id or "",
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
            self.recorder.ensure_tables(context)
            history.mark_dirty(context, step.info.up_revision_id or "")
            return step_limits.outside_transaction(context, self.settings, lambda: step.migration_fn(*args, **kw))

    def refuse_data_loss(self) -> None:
        """Hold the step that just ran to the policy on data loss (``preflight.data_loss_note``)."""
        impl = _duckdb_impl(self.migration_context)
        losses = impl.take_data_losses() if impl is not None else []
        note = preflight.data_loss_note(losses, self.policy, backed_up=self.report.backup is not None)
        if note is not None:
            self.recorder.note(self.migration_context, note)

    def _wrap(self, fn: internals.StepsFunction) -> internals.StepsFunction:
        def steps(heads: tuple[str, ...], migration_context: MigrationContext) -> Iterator[Any]:
            planned = list(fn(heads, migration_context))
            self.report.before = self.report.after = tuple(heads)
            if migration_context.as_sql:
                yield from (_TimedStep(step, self) for step in planned)
                return
            if not planned:
                return
            self._before_first_step(migration_context, heads, planned)
            with output.progress("Migrating", len(planned)) as advance:
                for step in planned:
                    advance(str(step), 0)
                    recorded = len(self.report.steps)
                    yield _TimedStep(step, self)
                    # back here once the step's transaction has committed: say what it did, in one line
                    for row in self.report.steps[recorded:]:
                        line = output.step_line(row.direction, row.version, row.name, row.execution_time_ms)
                        output.announce(self.context.config, line)
                    advance(str(step), 1)

        return steps

    def _before_first_step(
        self, migration_context: MigrationContext, heads: tuple[str, ...], planned: list[RevisionStep | StampStep]
    ) -> None:
        """The checks of ``preflight``, in the first step's transaction: changed files (accepted ones recorded
        there), a file this process could not write, then the backup."""
        connection = migration_context.connection
        assert connection is not None
        changed = preflight.changed_revisions(connection, self.script, heads, self.policy)
        self.recorder.accepted(migration_context, changed, heads)
        self.changed = True
        self._backup = preflight.back_up(self.target, self.settings, self.policy, connection, heads, planned)
        if self._backup is not None:
            self.report.backup = self._backup.folder
            output.announce(self.context.config, f"Backup: {self._backup.folder}")
            note = backup.cost_note(self._backup, self.settings)
            if note is not None:
                output.announce(self.context.config, note)


def _include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """Leave this layer's own tables out of autogenerate."""
    return not (type_ == "table" and name in OWN_TABLES)
