"""What state the database is in: one read of it, shared by ``ccdash-migrate status``, ``history`` and
``validate``, the Python API and the web page.

The database is opened read-only, read, and closed at once, so a status page left open never keeps a
migration waiting for more than one read; when another process holds the file, the status says which one
instead of waiting for it.

The read also checks that the database's records agree with each other rather than assuming it: that
``schema_version`` names what ``alembic_version`` does (someone may have run SQL by hand, or an older tool),
and that every applied revision has a history row recording it (plain Alembic, or a hand-written
``INSERT INTO alembic_version``, stamps without one; rows may have been deleted). Without such a row the
revision's file cannot be checked for changes, so both are reported, and ``ccdash-migrate repair`` sets them
right.

On PostgreSQL the read takes no lock of the run's (``server_lock``): it reads in one read-only REPEATABLE READ
transaction, so every table is read as of one moment (a revision committed between two reads would otherwise
show ``schema_version`` and ``alembic_version`` disagreeing) and a run's uncommitted revision is invisible
rather than waited for. Whoever holds the run's lock meanwhile is named as a migration that is running.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from alembic.config import Config
from alembic.script import Script, ScriptDirectory
from sqlalchemy.engine import Connection

from ccdash_alembic.ddl import catalog, fileheader
from ccdash_alembic.errors import Locked
from ccdash_alembic.runtime import database, engines, history_queries, server_lock
from ccdash_alembic.runtime.history_tables import VERSION_TABLE, Step, schema_version
from ccdash_alembic.runtime.settings import Settings


@dataclass(frozen=True)
class Revision:
    """A revision file and its state on this database."""

    revision: str
    name: str
    parents: tuple[str, ...]
    state: str  # "applied", "pending", or "failed" (not applied, and its last attempt failed)
    execution_time_ms: int | None  # of the upgrade (or adoption) that applied it, while it is applied


@dataclass
class Status:
    database: str
    exists: bool
    in_use_by: str | None = None  # the program holding the file when it could not be read
    engine: str = engines.DUCKDB  # or engines.POSTGRESQL
    server_version: str | None = None  # a server's version (PostgreSQL's ``server_version``)
    migration_running: str | None = None  # the run holding a server's lock while it was read (it was read anyway)
    current: list[str] = field(default_factory=list)
    heads: list[str] = field(default_factory=list)
    revisions: list[Revision] = field(default_factory=list)  # base first
    dirty: tuple[str, datetime] | None = None  # the revision that left the mark, and since when
    drift: list[str] = field(default_factory=list)  # applied revisions whose file changed since
    last_failure: Step | None = None  # the newest of ``failures``
    failures: list[Step] = field(default_factory=list)  # failed steps no later step of their revision resolved
    schema_version: str | None = None  # what schema_version says is applied (None: it has no row)
    version_mismatch: str | None = None  # how schema_version disagrees with alembic_version, if it does
    unrecorded: list[str] = field(default_factory=list)  # applied revisions no history row records as applied
    # The one file name DuckDB 1.1 (inside CCDash) opens the file under, when it has one (see fileheader).
    name_bound: str | None = None
    history: list[Step] = field(default_factory=list)  # oldest first

    @property
    def pending(self) -> list[Revision]:
        return [r for r in self.revisions if r.state != "applied"]

    def has_file(self, revision: str) -> bool:
        """Whether ``revision`` is among the revision files."""
        return any(r.revision == revision for r in self.revisions)

    def failure_remedy(self, failure: Step) -> str:
        """What clears an unresolved failure: status, validate and the page all say the same."""
        if not self.has_file(failure.version):
            return "its revision file no longer exists: clear the failure with ccdash-migrate repair"
        return (
            "fix the revision and run ccdash-migrate up, or give it up with "
            f"ccdash-migrate repair --clear-failure {failure.version}"
        )

    def as_dict(self) -> dict[str, Any]:
        """Plain data for ``status --json`` (without the history, which ``history --json`` gives)."""
        data = asdict(self)
        del data["history"]
        data["pending"] = [r.revision for r in self.pending]
        data["dirty"] = {"revision": self.dirty[0], "since": self.dirty[1]} if self.dirty else None
        return {k: plain(v) for k, v in data.items()}


def plain(value: Any) -> Any:
    """JSON-ready data: datetimes (naive UTC, as stored) become ISO 8601 strings with a ``Z``."""
    if isinstance(value, datetime):
        return value.isoformat() + "Z"
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def read(config: Config, settings: Settings) -> Status:
    """The status of the configured database against the configured revisions; never waits for the file, nor
    for a server's run."""
    target = database.resolve(settings)
    status = Status(database=target.describe(), exists=not target.is_new, engine=target.url.get_backend_name())
    script = ScriptDirectory.from_config(config)
    if target.server:
        with reading(target) as connection:
            status.server_version = str(connection.exec_driver_sql("SHOW server_version").scalar_one())
            status.migration_running = _running_migration(connection)
            _read_database(connection, script, status)
    elif status.exists:
        _read_file(target, script, status)
    _read_revisions(script, status)
    return status


def _read_file(target: database.Target, script: ScriptDirectory, status: Status) -> None:
    """A DuckDB file's state, or who holds the file when it cannot be opened now."""
    header = fileheader.read(target.path) if target.path is not None else None  # before the lock is held
    try:
        with reading(target) as connection:
            _read_database(connection, script, status)
            if target.path is not None and fileheader.bound_to_name(
                header,
                bool(catalog.index_names(connection)),
                changed_by_duckdb_2=history_queries.is_ours(connection),
            ):
                status.name_bound = target.path.name
    except Locked as locked:
        status.in_use_by = locked.holder


@contextmanager
def reading(target: database.Target, lock_timeout: float = 0.0) -> Iterator[Connection]:
    """A read-only connection for reading the state: a DuckDB file opened read-only (waiting up to
    ``lock_timeout`` while a writer has it); on a server, one snapshot, without the run's lock, which a reader
    must never take (a run would wait for it), and so without waiting for a run that holds it."""
    if not target.server:
        with database.connect(database.read_only_engine(target), target, lock_timeout) as connection:
            yield connection
        return
    engine = database.read_only_engine(target).execution_options(isolation_level="REPEATABLE READ")
    with database.connect_server(engine, target) as connection:
        yield connection


def _running_migration(connection: Connection) -> str | None:
    """The run that holds the server's lock for this database now, described (None: no run)."""
    found = server_lock.holder(connection, server_lock.key(connection))
    return found.describe() if found else None


def read_connection(connection: Connection, script: ScriptDirectory, description: str) -> Status:
    """The status read through a connection the caller holds (``repair`` reads what it then sets right in the
    same transaction)."""
    status = Status(database=description, exists=True, engine=engines.name_of(connection))
    _read_database(connection, script, status)
    _read_revisions(script, status)
    return status


def _read_database(connection: Connection, script: ScriptDirectory, status: Status) -> None:
    if sa.inspect(connection).has_table("alembic_version"):
        status.current = sorted(r[0] for r in connection.exec_driver_sql("SELECT version_num FROM alembic_version"))
    if not history_queries.is_ours(connection):
        if status.current:
            status.version_mismatch = (
                f"alembic_version says {_shown(status.current)}, but the database has no schema_version or "
                "migration_history of ccdash-migrate (its revisions were applied or stamped without it)"
            )
        return
    status.history = history_queries.steps(connection)
    status.dirty = history_queries.dirty_mark(connection)
    known = _known(script, status.current)
    status.drift = [r.revision for r, _, _ in history_queries.changed_revisions(connection, script, known)]
    status.failures = unresolved_failures(status.history)
    status.last_failure = status.failures[-1] if status.failures else None
    if status.dirty is None:
        status.schema_version, status.version_mismatch = _schema_version(connection, status.current)


def _known(script: ScriptDirectory, revisions: list[str]) -> list[str]:
    """The revisions that have a file (an applied revision whose file is gone is a finding of validate, and
    must not stop a status from being read)."""
    ids = {s.revision for s in script.walk_revisions()} if revisions else set()
    return [r for r in revisions if r in ids]


def _shown(heads: list[str]) -> str:
    return ", ".join(heads) or "base"


def _schema_version(connection: Connection, current: list[str]) -> tuple[str | None, str | None]:
    """What ``schema_version`` says, and how that disagrees with ``alembic_version`` (None when it agrees)."""
    if not sa.inspect(connection).has_table(VERSION_TABLE):
        return None, f"there is no schema_version table, but alembic_version says {_shown(current)}"
    versions = [r[0] for r in connection.execute(sa.select(schema_version.c.version))]
    if len(versions) != 1:
        return None, _row_count_mismatch(versions, current)
    said = sorted(v for v in versions[0].split(",") if v)
    if said == current:
        return versions[0], None
    return versions[0], f"schema_version says {_shown(said)}, but alembic_version says {_shown(current)}"


def _row_count_mismatch(versions: list[str], current: list[str]) -> str | None:
    """How a ``schema_version`` without exactly one row disagrees (an empty one agrees with an empty
    ``alembic_version``)."""
    if not versions:
        return f"schema_version has no row, but alembic_version says {_shown(current)}" if current else None
    listed = "; ".join(v or "base" for v in versions)
    return f"schema_version has {len(versions)} rows ({listed}) instead of one"


def unresolved_failures(steps: list[Step]) -> list[Step]:
    """Failed steps that are their revision's latest step (any later step, a success, a downgrade or a repair,
    resolves them), oldest first."""
    latest = {step.version: step for step in steps}
    return [step for step in steps if step.status == "failed" and latest[step.version] is step]


def last_failure(steps: list[Step]) -> Step | None:
    """The newest unresolved failure."""
    failures = unresolved_failures(steps)
    return failures[-1] if failures else None


def unrecorded(script: ScriptDirectory, applied: set[str], steps: list[Step]) -> list[str]:
    """Applied revisions that no history row records as applied, base first.

    The rows are replayed in order: ``up``, ``baseline`` and ``import`` rows record their revision as applied,
    and ``accept`` rows (only an applied revision's file is accepted) do too; a downgrade takes it away; a stamp
    records its destinations with everything below them and takes away what is above them.
    """
    parents = {s.revision: _parents(s.down_revision) for s in script.walk_revisions() if isinstance(s, Script)}
    children = children_of(parents.items())
    recorded: set[str] = set()
    for step in steps:
        recorded = _replayed(recorded, step, parents, children)
    return [s.revision for s in reversed(list(script.walk_revisions())) if s.revision in applied - recorded]


def _replayed(
    recorded: set[str], step: Step, parents: Mapping[str, list[str]], children: Mapping[str, list[str]]
) -> set[str]:
    """The revisions history records as applied, after one more history row."""
    if step.direction == "down" and step.status == "rolled_back":
        return recorded - {step.version}
    if step.status != "success":
        return recorded
    if step.direction == "stamp":
        destinations = [v for v in step.version.split(",") if v]
        return (recorded - reachable(destinations, children)) | reachable(destinations, parents)
    if step.direction in ("up", "baseline", "import", "accept"):
        return recorded | {step.version}
    return recorded


def children_of(parents: Iterable[tuple[str, Iterable[str]]]) -> dict[str, list[str]]:
    """Each revision's children, from ``(revision, its parents)`` pairs."""
    children: dict[str, list[str]] = {}
    for revision, its_parents in parents:
        for parent in its_parents:
            children.setdefault(parent, []).append(revision)
    return children


def reachable(start: Iterable[str], edges: Mapping[str, Iterable[str]]) -> set[str]:
    """``start`` and everything reachable from it along ``edges`` (a revision's parents, or its children)."""
    found: set[str] = set()
    waiting = list(start)
    while waiting:
        current = waiting.pop()
        if current not in found:
            found.add(current)
            waiting += edges.get(current, [])
    return found


def _read_revisions(script: ScriptDirectory, status: Status) -> None:
    status.heads = sorted(script.get_heads())
    applied = {
        r.revision
        for r in script.revision_map.iterate_revisions(tuple(_known(script, status.current)), "base")
        if isinstance(r, Script)
    }
    if status.exists and status.in_use_by is None:
        status.unrecorded = unrecorded(script, applied, status.history)
    unresolved, times = _outcomes(status.history)
    for revision in reversed(list(script.walk_revisions())):
        state = (
            "applied" if revision.revision in applied else "failed" if unresolved.get(revision.revision) else "pending"
        )
        status.revisions.append(
            Revision(
                revision.revision,
                revision.doc,
                tuple(_parents(revision.down_revision)),
                state,
                times.get(revision.revision) if state == "applied" else None,
            )
        )


def _outcomes(steps: list[Step]) -> tuple[dict[str, bool], dict[str, int | None]]:
    """Per revision: whether its latest step failed, and the run time of its latest successful up or
    baseline step."""
    unresolved: dict[str, bool] = {}
    times: dict[str, int | None] = {}
    for step in steps:
        unresolved[step.version] = step.status == "failed"
        if step.direction in ("up", "baseline") and step.status == "success":
            times[step.version] = step.execution_time_ms
    return unresolved, times


def _parents(down_revision: str | tuple[str, ...] | list[str] | None) -> list[str]:
    if down_revision is None:
        return []
    return [down_revision] if isinstance(down_revision, str) else list(down_revision)
