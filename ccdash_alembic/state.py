"""What state the database is in: one read of it, shared by ``ccdash-migrate status``, ``history`` and
``validate``, the Python API and the web page.

The database is opened read-only, read, and closed at once, so a status page left open never keeps a
migration waiting for more than one read; when another process holds the file, the status says which one
instead of waiting for it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from alembic.config import Config
from alembic.script import Script, ScriptDirectory
from sqlalchemy.engine import Connection

from ccdash_alembic import database, history
from ccdash_alembic.errors import Locked
from ccdash_alembic.settings import Settings


@dataclass(frozen=True)
class Step:
    """One row of ``migration_history``."""

    id: int
    applied_at: datetime
    direction: str
    version: str
    name: str
    execution_time_ms: int | None
    status: str
    checksum: str | None
    error_message: str | None
    note: str | None


_STEP_COLUMNS = [history.migration_history.c[name] for name in Step.__dataclass_fields__]


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
    current: list[str] = field(default_factory=list)
    heads: list[str] = field(default_factory=list)
    revisions: list[Revision] = field(default_factory=list)  # base first
    dirty: tuple[str, datetime] | None = None  # the revision that left the mark, and since when
    drift: list[str] = field(default_factory=list)  # applied revisions whose file changed since
    last_failure: Step | None = None  # the newest failed step not followed by a success of its revision
    history: list[Step] = field(default_factory=list)  # oldest first

    @property
    def pending(self) -> list[Revision]:
        return [r for r in self.revisions if r.state != "applied"]

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
    """The status of the configured database against the configured revisions; never waits for the file."""
    target = database.resolve(settings)
    status = Status(database=target.describe(), exists=not target.is_new)
    script = ScriptDirectory.from_config(config)
    if status.exists:
        try:
            with database.connect(database.read_only_engine(target), target) as connection:
                _read_database(connection, script, status)
        except Locked as locked:
            status.in_use_by = locked.holder
    _read_revisions(script, status)
    return status


def _read_database(connection: Connection, script: ScriptDirectory, status: Status) -> None:
    if sa.inspect(connection).has_table("alembic_version"):
        status.current = sorted(r[0] for r in connection.exec_driver_sql("SELECT version_num FROM alembic_version"))
    if not history.is_ours(connection):
        return
    rows = connection.execute(sa.select(*_STEP_COLUMNS).order_by(history.migration_history.c.id))
    status.history = [Step(*row) for row in rows]
    status.dirty = history.dirty_mark(connection)
    status.drift = [r.revision for r, _, _ in history.changed_revisions(connection, script, status.current)]
    status.last_failure = last_failure(status.history)


def last_failure(steps: list[Step]) -> Step | None:
    """The newest failed step whose revision has not succeeded since (a later success resolves it)."""
    succeeded: set[str] = set()
    for step in reversed(steps):
        if step.status == "failed" and step.version not in succeeded:
            return step
        if step.status == "success":
            succeeded.add(step.version)
    return None


def _read_revisions(script: ScriptDirectory, status: Status) -> None:
    status.heads = sorted(script.get_heads())
    applied = {
        r.revision
        for r in script.revision_map.iterate_revisions(tuple(status.current), "base")
        if isinstance(r, Script)
    }
    unresolved: dict[str, bool] = {}  # revision -> its latest step failed
    times: dict[str, int | None] = {}
    for step in status.history:
        unresolved[step.version] = step.status == "failed"
        if step.direction in ("up", "baseline") and step.status == "success":
            times[step.version] = step.execution_time_ms
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


def _parents(down_revision: str | tuple[str, ...] | list[str] | None) -> list[str]:
    if down_revision is None:
        return []
    return [down_revision] if isinstance(down_revision, str) else list(down_revision)
