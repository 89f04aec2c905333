"""The commands ``ccdash-migrate`` adds to Alembic's, each a function ``(config, ...)`` as Alembic's own are.

Their options beyond Alembic's are declared in ``cli.py``. Each refusal is a ``MigrateError``, which the
command line turns into one line and an exit code.
"""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import Script, ScriptDirectory
from sqlalchemy.engine import Connection

from ccdash_alembic import backup as backups
from ccdash_alembic import checksum, database, output, sqlfiles, web
from ccdash_alembic import history as log
from ccdash_alembic import rehearse as rehearsal
from ccdash_alembic import state as states
from ccdash_alembic import validate as validation
from ccdash_alembic.ccdash import baseline as ccdash_baseline
from ccdash_alembic.ccdash.recognise import for_empty_database
from ccdash_alembic.errors import (
    ChecksumMismatch,
    Dirty,
    ExitCode,
    InvalidRevisions,
    Locked,
    MigrateError,
    MigrationFailed,
    NotCCDash,
    Pending,
    UsageError,
)
from ccdash_alembic.revision_ids import name_files_by_id, next_id
from ccdash_alembic.settings import Settings


def settings_of(config: Config) -> Settings:
    """The run's options: the configuration file's section and the command line's ``-x``."""
    x_arguments = dict(a.split("=", 1) for a in (getattr(config.cmd_opts, "x", None) or []) if "=" in a)
    return Settings.load(config, x_arguments)


def _open(config: Config, read_only: bool) -> tuple[database.Target, Settings, Connection | None]:
    """The run's database, opened (after waiting for its lock), or None when there is no file yet."""
    settings = settings_of(config)
    target = database.resolve(settings)
    print(f"Database: {target.describe()}", file=sys.stderr)
    if target.is_new:
        return target, settings, None
    engine = database.read_only_engine(target) if read_only else database.create_engine(target, settings)
    return target, settings, database.connect(engine, target, settings.lock_timeout)


def _read(config: Config, settings: Settings) -> states.Status:
    """The database's status, refused (exit code 4) while another process holds the file."""
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
    """Write a new revision named after the current time; with --sql, as a stub with .up.sql/.down.sql files."""
    script = ScriptDirectory.from_config(config)
    slug = _slug(message or "", script.truncate_slug_length)
    if not slug:
        raise UsageError(
            f"the message {message or ''!r} has no letters or digits to name the file with",
            'Say what the revision does, e.g. -m "add user preferences"',
        )
    if not re.fullmatch(r"[a-z0-9_]+", slug):
        raise UsageError(
            f"the message {message!r} would name the file {slug!r}, which has characters other than a-z, 0-9 and _",
            "Write the message in ASCII letters and digits",
        )
    clash = [
        p.name
        for p in validation.revision_files(config)
        if (m := validation.FILE_NAME.match(p.name)) and m["slug"] == slug
    ]
    if clash:
        raise UsageError(
            f"a revision named {slug!r} exists already ({clash[0]})",
            "Use a message that says how this revision differs",
        )
    if autogenerate and sql_files:
        raise UsageError("--autogenerate writes Python, not SQL files", "Use one of --autogenerate and --sql")
    revision = next_id(datetime.now(UTC), script.get_heads())
    name_files_by_id(config)
    if sql_files:
        written = sqlfiles.create(config, revision, message or "")
    else:
        made = command.revision(config, message, autogenerate=autogenerate, rev_id=revision)
        written = [checksum.source_path(made)] if isinstance(made, Script) else []
    for path in written:
        print(f"Wrote {path}")


def _slug(message: str, truncate: int) -> str:
    """The file name slug Alembic makes of a message (its words, joined by ``_``, lower case, truncated)."""
    slug = "_".join(re.findall(r"\w+", message)).lower()
    if len(slug) > truncate:
        slug = slug[:truncate].rsplit("_", 1)[0] + "_"
    return slug


def import_sql(config: Config, directory: str = ".") -> None:
    """Turn a directory of <14-digit timestamp>_<name>.up.sql/.down.sql pairs into revisions after the head."""
    written, skipped = sqlfiles.import_directory(config, Path(directory))
    for path in written:
        print(f"Wrote {path}")
    for name in skipped:
        print(f"Skipped {name}: not named <14-digit timestamp>_<name>.up.sql or .down.sql", file=sys.stderr)


def status(config: Config, json_output: bool = False) -> None:
    """Show the database's revision, pending revisions, dirty mark, changed files and last failure."""
    state = _read(config, settings_of(config))
    if json_output:
        output.as_json(state.as_dict())
        return
    names = {r.revision: r.name for r in state.revisions}

    def described(revisions: list[str]) -> str:
        return ", ".join(f"{r} ({names.get(r, 'no such revision file')})" for r in revisions) or "none (base)"

    dirty = f"yes: {state.dirty[0]} did not finish (since {state.dirty[1]:%Y-%m-%d %H:%M} UTC)" if state.dirty else "no"
    failure = state.last_failure
    output.fields(
        [
            ("Database", state.database + ("" if state.exists else " (does not exist yet)"), None),
            ("Current", described(state.current), None),
            ("Head", described(state.heads), None),
            ("Pending", ", ".join(r.revision for r in state.pending) or "none", "pending" if state.pending else None),
            ("Dirty", dirty, "dirty" if state.dirty else None),
            ("Changed files", ", ".join(state.drift) or "none", "drift" if state.drift else None),
            (
                "Last failure",
                f"{failure.version} at {failure.applied_at:%Y-%m-%d %H:%M:%S} UTC: {failure.error_message}"
                if failure
                else "none",
                "failed" if failure else None,
            ),
        ]
    )
    print()
    output.table(
        ["Revision", "State", "Time", "Name"],
        [[r.revision, r.state, _milliseconds(r.execution_time_ms), r.name] for r in state.revisions],
        [r.state for r in state.revisions],
    )


def history(config: Config, json_output: bool = False, slowest: bool = False) -> None:
    """Show every recorded step (migration_history), oldest first, or with --slowest the slowest first."""
    steps = _read(config, settings_of(config)).history
    if slowest:
        steps = sorted(steps, key=lambda s: -1 if s.execution_time_ms is None else s.execution_time_ms, reverse=True)
    if json_output:
        output.as_json([states.plain(vars(s)) for s in steps])
        return
    if not steps:
        print("No steps recorded yet", file=sys.stderr)
        return
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
    print(f"Database: {target.describe()}", file=sys.stderr)
    if not target.is_new:
        # Drift is looked for even when the files have problems; the state needs a valid revision graph.
        state = None if findings else _read(config, settings)
        with database.connect(database.read_only_engine(target), target, settings.lock_timeout) as connection:
            findings += validation.check_database(connection, revisions_found)
        findings += validation.state_findings(state) if state else []
    code = validation.exit_code(findings)
    if json_output:
        output.as_json(
            {"revisions": len(revisions_found), "findings": [f.as_dict() for f in findings], "exit_code": int(code)}
        )
    elif findings:
        output.table(
            ["Kind", "Subject", "Finding"],
            [[f.kind, f.subject, f.message] for f in findings],
            ["failed" if f.kind not in ("pending", "order") else "pending" for f in findings],
        )
    else:
        print(f"{len(revisions_found)} revisions: no findings")
    if code is not ExitCode.OK:
        raise _VALIDATE_ERRORS[code](
            f"{len(findings)} finding{'s' if len(findings) != 1 else ''} (exit code {int(code)})",
            _VALIDATE_TODO[code],
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
    ExitCode.MIGRATION_FAILED: "Fix the failed revision and run it again",
    ExitCode.PENDING: "Run ccdash-migrate up",
}


def serve(config: Config, host: str = "127.0.0.1", port: int = 8765) -> None:
    """Serve a read-only status page (revision graph, history, timings) until interrupted."""
    settings = settings_of(config)
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
    output.table(
        ["Option", "Default", "Meaning"], [[n, d if d != "None" else "", h] for n, d, h in Settings.describe()]
    )


def baseline(config: Config, dry_run: bool = False) -> None:
    """Adopt an existing CCDash database (or create one): run the baseline revision; with --dry-run, print
    what it would find and do, and change nothing."""
    if not dry_run:
        base = ScriptDirectory.from_config(config).get_base()
        command.upgrade(config, base or "base")
        return
    _, _, connection = _open(config, read_only=True)
    if connection is None:
        finding = for_empty_database()
    else:
        with connection:
            finding = ccdash_baseline.plan(connection)
    if finding.refusal:
        raise NotCCDash(f"this database cannot be adopted: {finding.refusal}", "Nothing would be changed")
    print(finding.describe(done=False))
    for statement in finding.statements():
        print(statement.rstrip() + ";")


def backup(config: Config, list_only: bool = False) -> None:
    """Copy the database now (or, with --list, list its backups)."""
    target, settings, connection = _open(config, read_only=True)
    if list_only:
        for path in backups.backups(target, settings):
            print(path)
        return
    if connection is None:
        raise MigrateError(f"there is no database at {target.describe()}", "Nothing to back up")
    with connection:
        heads = MigrationContext.configure(connection).get_current_heads()
        made = backups.create(target, settings, ",".join(sorted(heads)))
    print(made)


def restore(config: Config, backup_name: str | None = None) -> None:
    """Put a backup (the newest, or BACKUP_NAME) in place of the database; refused while it is in use."""
    settings = settings_of(config)
    target = database.resolve(settings)
    print(f"Database: {target.describe()}", file=sys.stderr)
    source = backups.find(target, settings, backup_name)
    backups.restore(target, source)
    print(f"Restored {target.path} from {source}")


def repair(config: Config) -> None:
    """Clear the dirty mark a revision that ran outside a transaction left, and record it."""
    _, _, connection = _open(config, read_only=False)
    if connection is None:
        print("There is no database; nothing to repair")
        return
    with connection:
        mark = log.dirty_mark(connection)
        if mark is None:
            print("The database is not marked dirty; nothing to repair")
            return
        context = MigrationContext.configure(connection)
        heads = context.get_current_heads()
        version, since = mark
        note = (
            f"cleared the dirty mark of revision {version} (set {since:%Y-%m-%d %H:%M} UTC); the database stays at "
            f"{', '.join(heads) or 'base'}, so {version} counts as not applied (stamp it if its changes are complete)"
        )
        log.clear_dirty(context, heads, note)
        connection.commit()
    print(note[0].upper() + note[1:])


def rehearse(config: Config, revision: str = "head") -> None:
    """Run the pending revisions on a copy of the database and report each one; the database is untouched."""
    settings = settings_of(config)
    print(f"Database: {database.resolve(settings).describe()} (rehearsing on a copy)", file=sys.stderr)
    results = rehearsal.rehearse(config, settings, revision)
    if not results:
        print("Nothing to rehearse: the database is at", revision)
    for result in results:
        time = f"{result.milliseconds} ms" if result.milliseconds is not None else "-"
        changed = ", ".join(f"{t} +{g} -{lost}" for t, (g, lost) in result.changes.items()) or "no rows changed"
        print(f"{result.revision}  {result.status:7}  {time:>9}  {result.name}")
        print(f"    {result.error if result.error else changed}")
    failed = [r for r in results if r.status != "success"]
    if failed:
        raise MigrationFailed(
            f"revision {failed[0].revision} failed in the rehearsal: {failed[0].error}",
            "The database was not touched; fix the revision before upgrading",
        )
