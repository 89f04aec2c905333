"""``ccdash-migrate validate``: everything that can be checked before a run, without changing anything.

- the revision files: each loads, has a unique id, follows ``<14-digit UTC timestamp>_<slug>.py`` with the
  id equal to its timestamp (a file whose id is not a timestamp, made by Alembic's own ``alembic revision`` in
  another project, is named ``<id>_<slug>.py``), and names parents that exist; one head and no cycle;
- SQL-file revisions' ``.up.sql``/``.down.sql``: parsed by DuckDB's parser, with no transaction statements;
- against the database (when it exists): applied revisions whose file changed since (checksums), revisions
  older than the newest applied one that are not applied and do not follow it (merged in out of order), and
  the database's state: a dirty mark, records that disagree (``schema_version`` against ``alembic_version``,
  an applied revision without a history row), unresolved failures, pending revisions.

Revision files are loaded directly (not through Alembic's revision map, which stops at the first problem),
so every finding is reported at once.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

import duckdb
import sqlalchemy as sa
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from ccdash_alembic import graph
from ccdash_alembic.errors import ExitCode
from ccdash_alembic.runtime import checksum, history_queries, sqlfiles
from ccdash_alembic.runtime.state import Status, children_of, reachable

FILE_NAME = re.compile(r"^(?P<id>\d{14})_(?P<slug>[a-z0-9_]+)\.py$")
TIMESTAMP_ID = re.compile(r"^\d{14}$")


@dataclass(frozen=True)
class Finding:
    """One thing ``validate`` found: its kind (which decides the exit code), what it is about, and what it
    means."""

    # "file", "graph", "sql", "checksum", "order", "dirty", "inconsistent", "failed", "pending"; and "note",
    # which is worth knowing but changes no exit code
    kind: str
    subject: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "subject": self.subject, "message": self.message}


@dataclass(frozen=True)
class _Revision:
    path: Path
    revision: str
    parents: tuple[str, ...]
    module: object = None  # the loaded revision, for the checksums it declares equivalent


def revision_files(config: Config) -> list[Path]:
    script = ScriptDirectory.from_config(config)
    found: list[Path] = []
    for folder in script.version_locations or [script.versions]:
        found += sorted(p for p in Path(folder).glob("*.py") if not p.name.startswith("_"))
    return found


def _load(path: Path) -> object:
    spec = importlib.util.spec_from_file_location(f"_ccdash_validate_{abs(hash(path))}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _parents(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)  # type: ignore[attr-defined]


def check_files(config: Config) -> tuple[list[Finding], list[_Revision]]:
    findings: list[Finding] = []
    revisions: list[_Revision] = []
    for path in revision_files(config):
        try:
            module = _load(path)
        except SyntaxError as error:
            findings.append(Finding("file", path.name, f"syntax error at line {error.lineno}: {error.msg}"))
            continue
        except SystemExit as stop:  # its exit code must not pass for validate's
            findings.append(Finding("file", path.name, f"cannot be loaded: it calls sys.exit({stop.code!r})"))
            continue
        except Exception as error:  # a revision file that fails to import is a finding, whatever the reason
            findings.append(Finding("file", path.name, f"cannot be loaded: {type(error).__name__}: {error}"))
            continue
        revision = getattr(module, "revision", None)
        if not isinstance(revision, str):
            findings.append(Finding("file", path.name, "has no revision id"))
            continue
        findings += _name_findings(path, revision)
        revisions.append(_Revision(path, revision, _parents(getattr(module, "down_revision", None)), module))
        findings += _sql_findings(path)
    findings += _graph_findings(revisions)
    return findings, revisions


def _name_findings(path: Path, revision: str) -> list[Finding]:
    """A file name that does not match its revision id: ``<timestamp>_<slug>.py`` for a timestamp id."""
    name = FILE_NAME.match(path.name)
    if name is None and not TIMESTAMP_ID.match(revision):
        # a project with Alembic's own ids (stock ``alembic revision``): named <id>_<slug>.py, as Alembic does
        if path.name.startswith(f"{revision}_"):
            return []
        return [Finding("file", path.name, f"is not named {revision}_<slug>.py")]
    if name is None:
        return [Finding("file", path.name, "is not named <14-digit UTC timestamp>_<slug>.py")]
    if name["id"] != revision:
        return [Finding("file", path.name, f"is named {name['id']} but its revision id is {revision}")]
    return []


def _sql_findings(path: Path) -> list[Finding]:
    findings = []
    for sql in checksum.sql_files(path).values():
        try:
            sqlfiles.statements(sql.read_text(encoding="utf-8-sig"))
        except duckdb.Error as error:
            first = str(error).strip().splitlines()[0]
            findings.append(Finding("sql", sql.name, f"DuckDB cannot parse it: {first}"))
        except ValueError as error:
            findings.append(Finding("sql", sql.name, str(error)))
    return findings


def _graph_findings(revisions: list[_Revision]) -> list[Finding]:
    findings = []
    by_id: dict[str, _Revision] = {}
    for revision in revisions:
        if revision.revision in by_id:
            findings.append(
                Finding(
                    "graph",
                    revision.revision,
                    f"is the id of both {by_id[revision.revision].path.name} and {revision.path.name}",
                )
            )
        by_id.setdefault(revision.revision, revision)
    findings += [
        Finding("graph", revision.revision, f"names a parent {parent} that does not exist")
        for revision in revisions
        for parent in revision.parents
        if parent not in by_id
    ]
    heads = _heads(by_id, revisions)
    if len(heads) > 1:
        findings.append(Finding("graph", ", ".join(heads), f"{len(heads)} heads; merge them into one"))
    cycle = _in_cycles(by_id)
    if cycle:
        findings.append(Finding("graph", ", ".join(cycle), "these revisions form a cycle"))
    return findings


def _heads(by_id: dict[str, _Revision], revisions: list[_Revision]) -> list[str]:
    """The revision ids no revision names as its parent, sorted."""
    children = {p for r in revisions for p in r.parents}
    return sorted(r for r in by_id if r not in children)


def _in_cycles(by_id: dict[str, _Revision]) -> list[str]:
    """Revisions on a cycle (or after one): what remains when revisions are taken base first. A revision
    that names itself as its parent is a cycle too (``graph.ordered`` lets a node depend on itself)."""
    try:
        graph.ordered({r: rev.parents for r, rev in by_id.items()})
        stuck: set[str] = set()
    except graph.Cycle as cycle:
        stuck = set(cycle.members)
    looped = {r for r, rev in by_id.items() if r in rev.parents}
    return sorted(stuck | looped | _descendants(looped, list(by_id.values())))


def check_database(connection: Connection, revisions: list[_Revision]) -> list[Finding]:
    """Drift and order against what the database says is applied (with the graph read from the files, so a
    broken graph elsewhere does not hide drift)."""
    if not sa.inspect(connection).has_table("alembic_version"):
        return []
    heads = [r[0] for r in connection.exec_driver_sql("SELECT version_num FROM alembic_version")]
    by_id = {r.revision: r for r in revisions}
    applied = reachable([h for h in heads if h in by_id], {r: rev.parents for r, rev in by_id.items()}) & set(by_id)
    findings = [Finding("graph", h, "is applied but no revision file has that id") for h in heads if h not in by_id]
    findings += _checksum_findings(connection, applied, by_id)
    return findings + _order_findings(applied, revisions)


def _checksum_findings(connection: Connection, applied: set[str], by_id: dict[str, _Revision]) -> list[Finding]:
    """Applied revisions whose file no longer has the checksum recorded when it was applied."""
    recorded = history_queries.recorded_checksums(connection)
    return [
        Finding("checksum", r, f"{by_id[r].path.name} changed after it was applied")
        for r in sorted(applied)
        if recorded.get(r) is not None
        and not checksum.matches(recorded[r], checksum.file_checksum(by_id[r].path), by_id[r].module)
    ]


def _order_findings(applied: set[str], revisions: list[_Revision]) -> list[Finding]:
    """Revisions older than the newest applied one that are neither applied nor after it in the graph: an
    upgrade would run them after newer ones (merged in out of order)."""
    descendants = _descendants(applied, revisions)
    newest = max(applied, default="")
    return [
        Finding(
            "order",
            r.revision,
            f"is older than the newest applied revision {newest}, is not applied, and does not follow it",
        )
        for r in revisions
        if r.revision not in applied and r.revision not in descendants and r.revision < newest
    ]


def _descendants(revisions_of: set[str], revisions: list[_Revision]) -> set[str]:
    """Revisions that come after any of ``revisions_of`` in the graph: these run next, in graph order,
    whatever their timestamps (an imported directory keeps its older ones)."""
    children = children_of((r.revision, r.parents) for r in revisions)
    return reachable([c for r in revisions_of for c in children.get(r, [])], children)


def state_findings(state: Status) -> list[Finding]:
    """What the database's state asks of an operator: a dirty mark, records that disagree, unresolved
    failures, pending revisions. Each finding says what resolves it."""
    findings = []
    if state.dirty is not None:
        version, since = state.dirty
        findings.append(Finding("dirty", version, f"left the database marked dirty (since {since:%Y-%m-%d %H:%M} UTC)"))
    if state.version_mismatch is not None:
        findings.append(
            Finding(
                "inconsistent",
                "schema_version",
                f"{state.version_mismatch}; ccdash-migrate repair rewrites schema_version from alembic_version "
                "(if alembic_version is what is wrong, ccdash-migrate stamp the right revision instead)",
            )
        )
    findings += [
        Finding(
            "inconsistent",
            revision,
            "is applied (alembic_version) but no history row records it, so changes to its file cannot be "
            "detected; ccdash-migrate repair records it with its file's checksum now",
        )
        for revision in state.unrecorded
    ]
    findings += [
        Finding(
            "failed",
            failure.version,
            f"failed at {failure.applied_at:%Y-%m-%d %H:%M} UTC: {failure.error_line}; "
            + state.failure_remedy(failure),
        )
        for failure in state.failures
    ]
    if state.exists and state.in_use_by is None:
        findings += [Finding("pending", r.revision, f"is not applied ({r.name})") for r in state.pending]
    if state.migration_running is not None:
        findings.append(
            Finding(
                "note",
                "migration",
                f"{state.migration_running} is migrating the database: what it has not committed yet is not "
                "seen, so validate again when it has finished",
            )
        )
    if state.name_bound is not None:
        findings.append(
            Finding(
                "note",
                state.name_bound,
                f"DuckDB 1.1 opens this file only under the name {state.name_bound}: DuckDB 2.x "
                "wrote its indexes; keep that name when copying or moving it (backups do)",
            )
        )
    return findings


# What ``validate`` exits with, most urgent finding first: a CI job can tell the cases apart.
EXIT_CODES = [
    ({"checksum"}, ExitCode.CHECKSUM_MISMATCH),
    ({"file", "graph", "sql"}, ExitCode.INVALID_REVISIONS),
    ({"dirty", "inconsistent"}, ExitCode.DIRTY),  # both: check the database, then ccdash-migrate repair
    ({"failed"}, ExitCode.MIGRATION_FAILED),
    ({"pending", "order"}, ExitCode.PENDING),
]


def exit_code(findings: list[Finding]) -> ExitCode:
    kinds = {f.kind for f in findings}
    return next((code for group, code in EXIT_CODES if kinds & group), ExitCode.OK)
