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
import sys
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext, MigrationInfo, RevisionStep, StampStep
from alembic.script import Script, ScriptDirectory

from ccdash_alembic import checksum, database, history
from ccdash_alembic.autogen import name_dropped_constraints
from ccdash_alembic.errors import ChecksumMismatch, MigrateError, MigrationFailed, first_line
from ccdash_alembic.impl import SHADOW_OPTION
from ccdash_alembic.plugin import PLUGIN_NAME
from ccdash_alembic.settings import Settings
from ccdash_alembic.shadow import schema_copy

REVISION_ID_FORMAT = "%Y%m%d%H%M%S"


def run(context: EnvironmentContext, target_metadata: sa.MetaData | None = None) -> None:
    """Run the current Alembic command; on a user-facing error, print one line and exit with its code.

    ``context`` is ``alembic.context`` as env.py sees it. Called through Alembic's Python API (no command
    line), errors are raised as ``MigrateError`` subclasses instead.
    """
    config = context.config
    if config.cmd_opts is not None and config.config_file_name:
        # As Alembic's own env.py templates do, but only on the command line: an application calling the
        # Python API keeps its own logging setup.
        logging.config.fileConfig(config.config_file_name, disable_existing_loggers=False)
    try:
        settings = Settings.load(config, context.get_x_argument(as_dictionary=True))
        target = database.resolve(settings)
        _announce(config, f"Database: {target.describe()}")
        runner = _Runner(context, settings, target, target_metadata)
        if context.is_offline_mode():
            runner.offline()
        else:
            runner.online()
    except MigrateError as error:
        options = config.cmd_opts
        if options is None or getattr(options, "raiseerr", False):
            raise
        sys.stderr.write(error.line() + "\n")
        raise SystemExit(int(error.exit_code)) from error


def _announce(config: Config, line: str) -> None:
    if not config.messaging_opts.get("quiet", False):
        sys.stderr.write(line + "\n")


def revision_id_for(create_date: datetime, parents: Iterable[str] = ()) -> str:
    """The id of a new revision: the UTC time it was created, ``YYYYMMDDHHMMSS`` (used by script.py.mako).

    A revision made in the same second as its parent would get the parent's id and break the revision
    graph, so the id is then moved one second past the newest timestamp parent.
    """
    moment = create_date.astimezone(UTC).replace(microsecond=0)
    stamps = [datetime.strptime(p, REVISION_ID_FORMAT).replace(tzinfo=UTC) for p in parents if _is_revision_id(p)]
    if stamps and moment <= max(stamps):
        moment = max(stamps) + timedelta(seconds=1)
    return moment.strftime(REVISION_ID_FORMAT)


def _is_revision_id(text: str) -> bool:
    return len(text) == 14 and text.isdigit()


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
            return self._step.migration_fn(*args, **kw)
        except Exception as error:
            self._runner.failure = _Failure(self._step, time.perf_counter() - start, error)
            raise
        finally:
            self._runner.last_seconds = time.perf_counter() - start


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
        self._tables_ready = False

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
        migration_context = self.context.get_context()
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
        engine = database.create_engine(self.target, self.settings)
        with database.connect(engine, self.target) as connection:
            migration_context = self._configure(connection=connection)
            try:
                with self.context.begin_transaction():
                    self.context.run_migrations()
            except Exception as error:
                if self.failure is None or self.failure.error is not error or isinstance(error, MigrateError):
                    raise  # not a revision's failure, or a refusal: nothing was changed and nothing is recorded
                self._record_failure(connection, migration_context, self.failure)
                raise self._failed(self.failure) from error
            if connection.in_transaction():
                connection.commit()

    def _wrap(
        self, fn: Callable[[tuple[str, ...], MigrationContext], Iterable[RevisionStep | StampStep]]
    ) -> Callable[[tuple[str, ...], MigrationContext], Iterator[Any]]:
        def steps(heads: tuple[str, ...], migration_context: MigrationContext) -> Iterator[Any]:
            planned = list(fn(heads, migration_context))
            if planned and not migration_context.as_sql:
                self._verify_checksums(migration_context, heads)
            for step in planned:
                yield _TimedStep(step, self)

        return steps

    def _verify_checksums(self, migration_context: MigrationContext, heads: tuple[str, ...]) -> None:
        """Refuse to run when an applied revision's file differs from what was applied."""
        assert migration_context.connection is not None
        recorded = history.recorded_checksums(migration_context.connection)
        changed: list[tuple[Script, str, str]] = []
        for script in self.script.revision_map.iterate_revisions(heads, "base"):
            assert isinstance(script, Script)
            old = recorded.get(script.revision)
            new = checksum.revision_checksum(script)
            if old is not None and old != new:
                changed.append((script, old, new))
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
        self._record(ctx, replace(row, note=note, direction=direction or row.direction), heads)

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
            "Nothing of that revision was applied and the database is as it was before it; "
            "fix the revision and run again",
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
