"""The commands ``ccdash-migrate`` adds to Alembic's, each a function ``(config, ...)`` as Alembic's own are.

Their options beyond Alembic's are declared in ``cli.py``. Each refusal is a ``MigrateError``, which the
command line turns into one line and an exit code.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import Script, ScriptDirectory
from sqlalchemy.engine import Connection

from ccdash_alembic import output
from ccdash_alembic.errors import (
    ChecksumMismatch,
    Dirty,
    ExitCode,
    InvalidRevisions,
    Locked,
    MigrateError,
    MigrationFailed,
    Pending,
    UsageError,
    at_unknown_revision,
)
from ccdash_alembic.runtime import backup as backups
from ccdash_alembic.runtime import (
    checksum,
    database,
    engines,
    history_queries,
    history_tables,
    revision_text,
    sqlfiles,
    web,
)
from ccdash_alembic.runtime import history as log
from ccdash_alembic.runtime import rehearse as rehearsal
from ccdash_alembic.runtime import state as states
from ccdash_alembic.runtime import validate as validation
from ccdash_alembic.runtime.revision_ids import check_new, name_files_by_id, next_id
from ccdash_alembic.runtime.settings import OPTION as SETTINGS_OPTION
from ccdash_alembic.runtime.settings import Settings


def settings_of(config: Config) -> Settings:
    """The run's options: the configuration file's section and the command line's ``-x``."""
    # as Alembic's get_x_argument reads them: "-x db" without "=" is an empty value (refused), not no value
    x_arguments = dict((a.split("=", 1) if "=" in a else (a, "")) for a in (getattr(config.cmd_opts, "x", None) or []))
    return Settings.load(config, x_arguments)


def open_database(config: Config, read_only: bool) -> tuple[database.Target, Settings, Connection | None]:
    """The run's database, opened (after waiting for its lock), or None when there is no file yet."""
    settings = settings_of(config)
    target = database.resolve(settings)
    output.announce(config, f"Database: {target.describe()}")
    if target.is_new:
        return target, settings, None
    engine = database.read_only_engine(target) if read_only else database.create_engine(target, settings)
    return target, settings, database.connect(engine, target, settings.lock_timeout)


def _refuse_unknown_revision(state: states.Status) -> None:
    """After ``status`` or ``history`` showed what they could: a database at a revision no file has is an error
    (exit code 11), as it is for ``up``, ``down`` and ``validate``."""
    unknown = [r for r in state.current if not state.has_file(r)]
    if unknown:
        raise at_unknown_revision(", ".join(unknown))


def _read(config: Config, settings: Settings, announce: bool = True) -> states.Status:
    """The database's status, refused (exit code 4) while another process holds the file; says which database
    first, as every command that touches one does."""
    if announce:
        output.announce(config, f"Database: {database.resolve(settings).describe()}")
    state = states.read(config, settings)
    if state.in_use_by is not None:
        raise Locked(
            f"{state.database} is in use by {state.in_use_by}, so its state cannot be read now",
            "Run again when it is free",
            state.in_use_by,
        )
    return state


def up(config: Config, sql: bool = False) -> None:
    """Upgrade to the head revision (alembic upgrade head)."""
    command.upgrade(config, "head", sql=sql)


def down(config: Config) -> None:
    """Downgrade by one revision (alembic downgrade -1)."""
    command.downgrade(config, "-1")


def create(config: Config, message: str | None = None, autogenerate: bool = False, sql_files: bool = False) -> None:
    """Write a new revision named after the current time; with --sql, as a stub with .up.sql/.down.sql files.

    The message is data in the file (an escaped docstring, see ``revision_text``): one that cannot be, or
    would not name a valid file, is refused before anything is written, and a revision that is written but
    does not load with the message as its doc is removed again, with everything else this run wrote.
    """
    script = ScriptDirectory.from_config(config)
    message = check_new(script, message)  # the rules stock `alembic revision` follows too (env.py's hook)
    if autogenerate and sql_files:
        raise UsageError("--autogenerate writes Python, not SQL files", "Use one of --autogenerate and --sql")
    revision = next_id(datetime.now(UTC), script.get_heads())
    name_files_by_id(config)
    with sqlfiles.removed_on_failure(config, [revision]) as written:
        if sql_files:
            written += sqlfiles.create(config, revision, message)
        else:
            made = command.revision(config, message, autogenerate=autogenerate, rev_id=revision)
            for made_script in made if isinstance(made, list) else [made]:
                if isinstance(made_script, Script):
                    written.append(checksum.source_path(made_script))
                    sqlfiles.check_doc(made_script, message)
    for path in written:
        print(f"Wrote {path}")


def import_sql(config: Config, directory: str = ".") -> None:
    """Turn a directory of <14-digit timestamp>_<name>.up.sql/.down.sql pairs into revisions after the head."""
    written, skipped = sqlfiles.import_directory(config, Path(directory))
    for path in written:
        print(f"Wrote {path}")
    for name in skipped:
        print(
            f"Skipped {revision_text.printable(name)}: not named <14-digit timestamp>_<name>.up.sql or .down.sql",
            file=sys.stderr,
        )


def status(config: Config, json_output: bool = False) -> None:
    """Show the database's revision, pending revisions, dirty mark, whether its records agree, changed files
    and the last failure."""
    state = _read(config, settings_of(config))
    if json_output:
        output.as_json(state.as_dict())
    else:
        output.fields(_status_fields(state))
        print()
        output.table(
            ["Revision", "State", "Time", "Name"],
            [[r.revision, r.state, _milliseconds(r.execution_time_ms), r.name] for r in state.revisions],
            [r.state for r in state.revisions],
        )
    _refuse_unknown_revision(state)


def _status_fields(state: states.Status) -> list[tuple[str, str, str | None]]:
    """``status``'s lines: each with its value and, when it calls for attention, its state word. What only one
    engine has is shown for that engine alone: a server's version and its running migration, or whether DuckDB
    1.1 opens the file under another name."""
    return [
        ("Database", state.database + ("" if state.exists else " (does not exist yet)"), None),
        *_server_fields(state),
        ("Current", _revisions_line(state, state.current), None),
        ("Head", _revisions_line(state, state.heads), None),
        ("Pending", _listed([r.revision for r in state.pending]), "pending" if state.pending else None),
        ("Dirty", _dirty_line(state), "dirty" if state.dirty else None),
        ("Schema version", _schema_version_line(state), "dirty" if state.version_mismatch else None),
        ("Unrecorded", _unrecorded_line(state), "dirty" if state.unrecorded else None),
        ("Changed files", _listed(state.drift), "drift" if state.drift else None),
        ("Last failure", _last_failure_line(state), "failed" if state.last_failure else None),
        *_file_fields(state),
    ]


def _server_fields(state: states.Status) -> list[tuple[str, str, str | None]]:
    """A server's lines: the engine and its version, and the migration running on it while it was read."""
    if state.engine != engines.POSTGRESQL:
        return []
    running = (
        f"running: {state.migration_running} (what it has committed so far is shown)"
        if state.migration_running
        else "none running"
    )
    return [
        ("Engine", f"PostgreSQL {state.server_version}", None),
        ("Migration", running, "pending" if state.migration_running else None),
    ]


def _listed(items: list[str]) -> str:
    return ", ".join(items) or "none"


def _revisions_line(state: states.Status, revisions: list[str]) -> str:
    """Revision ids with their names; a revision the database names but no file has says so."""
    names = {r.revision: r.name for r in state.revisions}
    return ", ".join(f"{r} ({names.get(r, 'no such revision file')})" for r in revisions) or "none (base)"


def _unrecorded_line(state: states.Status) -> str:
    if not state.unrecorded:
        return "none"
    return ", ".join(state.unrecorded) + " (applied, but no history row records them: ccdash-migrate repair)"


def _file_fields(state: states.Status) -> list[tuple[str, str, str | None]]:
    """A DuckDB file's line: whether DuckDB 1.1 (inside CCDash) opens it under another name."""
    if state.engine != engines.DUCKDB:
        return []
    if state.name_bound:
        return [("DuckDB 1.1", f"opens this file only as {state.name_bound} (DuckDB 2.x wrote its indexes)", "pending")]
    return [("DuckDB 1.1", "opens it under any name", None)]


def _dirty_line(state: states.Status) -> str:
    if not state.dirty:
        return "no"
    return f"yes: {state.dirty[0]} did not finish (since {state.dirty[1]:%Y-%m-%d %H:%M} UTC)"


def _schema_version_line(state: states.Status) -> str:
    if state.version_mismatch:
        return state.version_mismatch
    if state.dirty:
        return "names the revision that left the dirty mark"
    return "agrees with alembic_version" if state.exists else "none (no database yet)"


def _last_failure_line(state: states.Status) -> str:
    failure = state.last_failure
    if failure is None:
        return "none"
    more = len(state.failures) - 1
    return (
        f"{failure.version} at {failure.applied_at:%Y-%m-%d %H:%M:%S} UTC: {failure.error_line}; "
        f"{state.failure_remedy(failure)}" + (f" (and {more} more: ccdash-migrate validate)" if more else "")
    )


def history(config: Config, json_output: bool = False, slowest: bool = False) -> None:
    """Show every recorded step (migration_history), oldest first, or with --slowest the slowest first."""
    state = _read(config, settings_of(config))
    steps = state.history
    if slowest:
        steps = sorted(steps, key=lambda s: -1 if s.execution_time_ms is None else s.execution_time_ms, reverse=True)
    if json_output:
        output.as_json([states.plain(vars(s)) for s in steps])
    elif not steps:
        print("No steps recorded yet", file=sys.stderr)
    else:
        _history_table(steps)
    _refuse_unknown_revision(state)


def _history_table(steps: list[history_tables.Step]) -> None:
    output.table(
        ["Time (UTC)", "Direction", "Revision", "Name", "Duration", "Status", "Checksum"],
        [
            [
                f"{s.applied_at:%Y-%m-%d %H:%M:%S}",
                s.direction,
                s.version,
                s.name,
                _milliseconds(s.execution_time_ms),
                s.status,
                (s.checksum or "")[:12],
            ]
            for s in steps
        ],
        [s.status for s in steps],
    )


def _milliseconds(value: int | None) -> str:
    return "-" if value is None else f"{value:,} ms"


def revisions(
    config: Config, rev_range: str | None = None, verbose: bool = False, indicate_current: bool = False
) -> None:
    """List the revision files (Alembic's history command)."""
    command.history(config, rev_range, verbose=verbose, indicate_current=indicate_current)


def validate(config: Config, json_output: bool = False) -> None:
    """Check revision files, their graph and SQL, and the database's state; the exit code says what was found."""
    findings, revisions_found = validation.check_files(config)
    settings = settings_of(config)
    target = database.resolve(settings)
    output.announce(config, f"Database: {target.describe()}")
    if not target.is_new:
        # Drift is looked for even when the files have problems; the state needs a valid revision graph.
        state = None if findings else _read(config, settings, announce=False)
        with states.reading(target, settings.lock_timeout) as connection:
            findings += validation.check_database(connection, revisions_found)
        findings += validation.state_findings(state) if state else []
    code = validation.exit_code(findings)
    if json_output:
        output.as_json(
            {"revisions": len(revisions_found), "findings": [f.as_dict() for f in findings], "exit_code": int(code)}
        )
    elif findings:
        _findings_table(findings)
    else:
        print(f"{len(revisions_found)} revisions: no findings")
    if code is not ExitCode.OK:
        raise _VALIDATE_ERRORS[code](
            f"{len(findings)} finding{'s' if len(findings) != 1 else ''} (exit code {int(code)})",
            _VALIDATE_TODO[code],
        )


def _findings_table(findings: list[validation.Finding]) -> None:
    """The findings, those that only call for an upgrade or for attention shown as pending, the rest as failed."""
    output.table(
        ["Kind", "Subject", "Finding"],
        [[f.kind, f.subject, f.message] for f in findings],
        ["failed" if f.kind not in ("pending", "order", "note") else "pending" for f in findings],
    )


_VALIDATE_ERRORS: dict[ExitCode, type[MigrateError]] = {
    ExitCode.INVALID_REVISIONS: InvalidRevisions,
    ExitCode.CHECKSUM_MISMATCH: ChecksumMismatch,
    ExitCode.DIRTY: Dirty,
    ExitCode.MIGRATION_FAILED: MigrationFailed,
    ExitCode.PENDING: Pending,
}
_VALIDATE_TODO = {
    ExitCode.INVALID_REVISIONS: "Fix the revision files before the next upgrade",
    ExitCode.CHECKSUM_MISMATCH: "Restore the files as they were applied, or accept them with -x accept_changed=true",
    ExitCode.DIRTY: "Check the database, then run ccdash-migrate repair, or restore a backup",
    ExitCode.MIGRATION_FAILED: "Fix the failed revision and run it again, or clear the failure as the finding says",
    ExitCode.PENDING: "Run ccdash-migrate up",
}


def serve(config: Config, host: str = "127.0.0.1", port: int = 8765) -> None:
    """Serve a read-only status page (revision graph, history, timings) until interrupted."""
    settings = settings_of(config)
    if not 0 <= port <= 65535:  # the socket layer would take 70000 as 4464 and listen there
        raise UsageError(f"--port {port} is not a port number", "Give one from 0 to 65535 (0 picks a free one)")
    server = web.make_server(config, settings, host, port)
    address, bound = str(server.server_address[0]), int(server.server_address[1])
    print(f"Serving the status of {database.resolve(settings).describe()} at http://{address}:{bound}/ (read-only)")
    print("Press Ctrl-C to stop", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def options(config: Config) -> None:
    """List the options a run takes (as -x name=value, or in [ccdash_alembic] of alembic.ini)."""
    described = Settings.describe(settings_of(config).application)
    output.table(["Option", "Default", "Meaning"], [[n, d if d != "None" else "", h] for n, d, h in described])


def backup(config: Config, list_only: bool = False) -> None:
    """Copy the database now (or, with --list, list its backups: that reads only the backup folder)."""
    settings = settings_of(config)
    target = database.resolve(settings)
    if target.server:
        raise backups.server_refusal(target, "backup --list" if list_only else "backup")
    if list_only:
        output.announce(config, f"Database: {target.describe()}")
        for made in backups.backups(target, settings):
            print(made.folder)
        return
    target, settings, connection = open_database(config, read_only=True)
    if connection is None:
        raise UsageError(f"there is no database at {target.describe()}", "Nothing to back up")
    with connection:  # held (read-only: nothing writes) while a child process copies the file
        heads = MigrationContext.configure(connection).get_current_heads()
        identity = history_queries.database_id(connection)
        made = backups.create(target, settings, ",".join(sorted(heads)), identity, kind="manual")
    print(made.folder)


def restore(config: Config, backup_name: str | None = None) -> None:
    """Put a backup of this database (the newest, or BACKUP_NAME) in its place; refused while it is in use.
    The file it replaces is kept as a backup of its own."""
    settings = settings_of(config)
    target = database.resolve(settings)
    if target.server:
        raise backups.server_refusal(target, "restore")
    output.announce(config, f"Database: {target.describe()}")
    if target.path is None:
        raise UsageError("only a database file can be restored", "Use -x db=PATH")
    chosen = backups.find(target, settings, backup_name)
    kept = backups.restore(target, settings, chosen)
    if kept is not None:
        print(f"Kept the replaced file as {kept.folder}")
    print(f"Restored {backups.real_path(target)} from {chosen.folder}")


def repair(config: Config, clear_failure: list[str] | None = None) -> None:
    """Set right what the database's records say is wrong, and record each repair: a dirty mark, a failure whose
    revision file is gone (or one named with --clear-failure), a schema_version that disagrees with
    alembic_version, applied revisions without a history row."""
    target, settings, connection = open_database(config, read_only=False)
    if connection is None:
        print("There is no database; nothing to repair")
        return
    script = ScriptDirectory.from_config(config)
    with connection:
        state = states.read_connection(connection, script, target.describe())
        cleared = _failures_to_clear(state, clear_failure or [])
        if not (state.dirty or cleared or state.unrecorded or state.version_mismatch):
            print("Nothing to repair: the database is not marked dirty and its records agree")
            _print_unresolved(state, cleared)
            return
        done = _repair(connection, settings, script, state, cleared)
        connection.commit()
    for note in done:
        print(note[0].upper() + note[1:])
    _print_unresolved(state, cleared)


def _failures_to_clear(state: states.Status, asked: list[str]) -> list[history_tables.Step]:
    """The failures ``repair`` resolves: those named with --clear-failure (each must be one), and those whose
    revision file is gone."""
    named = list(dict.fromkeys(asked))
    unknown = [r for r in named if r not in {f.version for f in state.failures}]
    if unknown:
        raise UsageError(
            f"revision {unknown[0]} has no unresolved failure to clear",
            "ccdash-migrate validate lists the failures there are; nothing was changed",
        )
    return [f for f in state.failures if f.version in named or not state.has_file(f.version)]


def _repair(
    connection: Connection,
    settings: Settings,
    script: ScriptDirectory,
    state: states.Status,
    cleared: list[history_tables.Step],
) -> list[str]:
    """Make each repair in the open transaction, each with its row; what was done, in words."""
    # the run's settings, so an earlier tool's history is taken over by the application's adopters
    context = MigrationContext.configure(connection, opts={SETTINGS_OPTION: settings})
    log.ensure_tables(context)
    heads = context.get_current_heads()
    done = [_clear_dirty_mark(context, state.dirty, heads)] if state.dirty else []
    done += [_clear_failure(context, failure, state.has_file(failure.version)) for failure in cleared]
    done += [_record_applied(context, script, revision) for revision in state.unrecorded]
    if state.version_mismatch and not state.dirty:
        done.append(_rewrite_schema_version(context, connection, state.version_mismatch, heads))
    return done


def _print_unresolved(state: states.Status, cleared: list[history_tables.Step]) -> None:
    for failure in state.failures:
        if failure not in cleared:
            print(f"Revision {failure.version} failed and is not resolved: {state.failure_remedy(failure)}")


def _clear_dirty_mark(context: MigrationContext, mark: tuple[str, datetime], heads: tuple[str, ...]) -> str:
    version, since = mark
    note = (
        f"cleared the dirty mark of revision {version} (set {since:%Y-%m-%d %H:%M} UTC); the database stays at "
        f"{', '.join(heads) or 'base'}, so {version} counts as not applied (stamp it if its changes are complete)"
    )
    log.clear_dirty(context, heads, note)
    return note


def _clear_failure(context: MigrationContext, failure: history_tables.Step, has_file: bool) -> str:
    """A ``repair`` row after a failed step resolves it: nothing of a failed step was applied, so the revision
    counts as pending (or, its file gone, as nothing at all)."""
    why = "cleared with --clear-failure, so it counts as pending" if has_file else "its revision file no longer exists"
    note = (
        f"cleared the failure of revision {failure.version} (at {failure.applied_at:%Y-%m-%d %H:%M} UTC: "
        f"{failure.error_message}): {why}"
    )
    log.record_only(
        context,
        log.Step(version=failure.version, name=failure.name, direction="repair", status="success", note=note),
    )
    return note


def _record_applied(context: MigrationContext, script: ScriptDirectory, revision: str) -> str:
    """An ``accept`` row for an applied revision no row recorded: its file as it is now is taken as applied,
    so changes from now on are detected."""
    found = script.get_revision(revision)
    assert found is not None
    note = (
        f"recorded revision {revision} as applied: alembic_version has it but no history row did (stamped without "
        "ccdash-migrate, or its rows were deleted); its file's checksum now is taken as the one applied"
    )
    log.record_only(
        context,
        log.Step(
            version=revision,
            name=found.doc,
            direction="accept",
            status="success",
            checksum=checksum.revision_checksum(found),
            note=note,
        ),
    )
    return note


def _rewrite_schema_version(
    context: MigrationContext, connection: Connection, mismatch: str, heads: tuple[str, ...]
) -> str:
    """Rewrite ``schema_version`` from ``alembic_version`` (what Alembic acts on), keeping one row."""
    table = history_tables.schema_version
    rows = connection.execute(table.select().order_by(table.c.updated_at.desc())).all()
    if len(rows) > 1:
        context.execute(table.delete().where(table.c.version != rows[0].version))
    note = f"rewrote schema_version from alembic_version ({mismatch})"
    log.record(
        context,
        log.Step(
            version=",".join(sorted(heads)),
            name="repair of schema_version",
            direction="repair",
            status="success",
            note=note,
        ),
        heads,
    )
    return note


def rehearse(config: Config, revision: str = "head") -> None:
    """Run the pending revisions on a copy of the database and report each one; the database is untouched."""
    settings = settings_of(config)
    target = database.resolve(settings)
    if target.server:
        raise rehearsal.server_refusal(target)
    output.announce(config, f"Database: {target.describe()} (rehearsing on a copy)")
    results = rehearsal.rehearse(config, settings, revision)
    if not results:
        print("Nothing to rehearse: the database is at", revision)
    for result in results:
        _print_rehearsal(result)
    failed = [r for r in results if r.status != "success"]
    refusal = failed[0].refusal if failed else None
    if refusal is not None:  # what up would refuse with, and the same exit code
        raise type(refusal)(f"in the rehearsal of {failed[0].revision}: {refusal.what}", refusal.todo)
    if failed:
        raise MigrationFailed(
            f"revision {failed[0].revision} failed in the rehearsal: {failed[0].error}",
            "The database was not touched; fix the revision before upgrading",
        )


def _print_rehearsal(result: rehearsal.Rehearsal) -> None:
    """Two lines per revision: what ran and how long it took, then its error or the tables it changed."""
    time = f"{result.milliseconds} ms" if result.milliseconds is not None else "-"
    print(f"{result.revision}  {result.status:7}  {time:>9}  {result.name}")
    print(f"    {result.summary()}")
