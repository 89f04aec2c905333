"""A database file cut short is refused before DuckDB opens it, from its headers and its size alone, and every
whole file passes: files written by DuckDB 2.x and by DuckDB 1.1.3 (inside every CCDash release), cut inside
their headers, in the middle, by one byte, and by exactly their last block when that block holds an index or
metadata rather than table data (which a check of the tables' data blocks cannot see).
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import duckdb
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from conftest import Project, digest, error_line, locked_from_outside, repo_alembic
from test_ccdash_adoption import fixtures as fixtures  # the generation files, built once per run

from ccdash_alembic.errors import DatabaseUnusable, ExitCode

HEADERS = 3 * 4096
BLOCK = 262144

# Run by DuckDB 2.x and by DuckDB 1.1.3: ``python -c BUILD FOLDER``.
BUILD = """
import duckdb, shutil, sys
folder = sys.argv[1]

def new(name):
    return duckdb.connect(f"{folder}/{name}.db")

# an index written by the last checkpoint, after the table's data: the file's last block is the index's
con = new("index_last")
con.execute("CREATE TABLE t AS SELECT i, md5(i::VARCHAR) AS s FROM range(200000) r(i)")
con.execute("CHECKPOINT")
con.execute("CREATE INDEX t_s ON t (s)")
con.close()

# many tables created after the data: the catalog outgrows its metadata block, and the new one comes last
con = new("metadata_last")
con.execute("CREATE TABLE t AS SELECT i, md5(i::VARCHAR) AS s FROM range(200000) r(i)")
con.execute("CHECKPOINT")
for k in range(300):
    con.execute(f"CREATE TABLE x{k} (a INTEGER, b VARCHAR)")
con.close()

# a table at the end of the file dropped: its blocks are free, and the file is cut after the header that
# still counts them
con = new("free_tail")
con.execute("CREATE TABLE kept AS SELECT i FROM range(1000) r(i)")
con.execute("CHECKPOINT")
con.execute("CREATE TABLE dropped AS SELECT i, md5(i::VARCHAR) AS s FROM range(1000000) r(i)")
con.execute("CHECKPOINT")
con.execute("DROP TABLE dropped")
con.close()

# rows deleted from a table after a checkpoint
con = new("deleted")
con.execute("CREATE TABLE t AS SELECT i, md5(i::VARCHAR) AS s FROM range(1000000) r(i)")
con.execute("CHECKPOINT")
con.execute("DELETE FROM t WHERE i % 3 = 0")
con.close()

# a copy taken while a writer had rows in its log only (some written to the file ahead of a checkpoint)
con = duckdb.connect(f"{folder}/writing.db", config={"checkpoint_threshold": "1TB"})
con.execute("CREATE TABLE t AS SELECT i FROM range(1000) r(i)")
con.execute("CHECKPOINT")
con.execute("CREATE TABLE logged AS SELECT i, md5(i::VARCHAR) AS s FROM range(500000) r(i)")
con.execute("INSERT INTO t SELECT range FROM range(10)")
shutil.copyfile(f"{folder}/writing.db", f"{folder}/with_log.db")
shutil.copyfile(f"{folder}/writing.db.wal", f"{folder}/with_log.db.wal")
con.close()
"""

VERSIONS = ["2.x", "1.1.3"]
CUT = ["index_last", "metadata_last"]
WHOLE = ["index_last", "metadata_last", "free_tail", "deleted"]


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory, duckdb11_python: Path) -> Path:
    folder = tmp_path_factory.mktemp("made")
    for version, python in zip(VERSIONS, [Path(sys.executable), duckdb11_python], strict=True):
        (folder / version).mkdir()
        subprocess.run([str(python), "-c", BUILD, str(folder / version)], check=True, timeout=600)
    return folder


def _cut_points(size: int) -> dict[str, int]:
    return {
        "inside the main header": 100,
        "inside the first database header": 5000,
        "inside the second database header": 9000,
        "after the headers": HEADERS,
        "in the middle": size // 2,
        "by the last block": size - BLOCK,
        "by one byte": size - 1,
    }


def _last_block_holds(path: Path) -> str:
    """What the last block of a file fresh from a checkpoint holds, as DuckDB lists its blocks."""
    blocks, rest = divmod(path.stat().st_size - HEADERS, BLOCK)
    assert rest == 0
    last = blocks - 1
    connection = duckdb.connect(str(path), read_only=True)
    try:
        metadata = {row[0] for row in connection.execute("SELECT block_id FROM pragma_metadata_info()").fetchall()}
        data: set[int] = set()
        for (table,) in connection.execute("SELECT table_name FROM duckdb_tables()").fetchall():
            data |= {
                row[0] for row in connection.execute(f"SELECT block_id FROM pragma_storage_info('{table}')").fetchall()
            }
        indexes = connection.execute("SELECT count(*) FROM duckdb_indexes()").fetchone()
    finally:
        connection.close()
    if last in metadata:
        return "metadata"
    if last in data:
        return "data"
    return "index" if indexes and indexes[0] else "unknown"


def _cut(source: Path, destination: Path, size: int) -> Path:
    destination.parent.mkdir(parents=True, exist_ok=True)
    with open(source, "rb") as reader:
        destination.write_bytes(reader.read(size))
    return destination


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(("name", "holds"), [("index_last", "index"), ("metadata_last", "metadata")])
def test_the_files_cut_by_their_last_block_end_with_an_index_or_metadata(
    made: Path, version: str, name: str, holds: str
) -> None:
    assert _last_block_holds(made / version / f"{name}.db") == holds


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name", CUT)
@pytest.mark.parametrize("where", list(_cut_points(BLOCK * 10)))
def test_a_cut_file_is_refused_in_one_line_and_left_as_it_is(
    made: Path, tmp_path: Path, version: str, name: str, where: str
) -> None:
    source = made / version / f"{name}.db"
    size = _cut_points(source.stat().st_size)[where]
    cut = _cut(source, tmp_path / "data" / "cut.db", size)
    before = digest(cut)
    commands = [("ccdash-migrate", "current"), ("ccdash-migrate", "status")]
    if where in ("by the last block", "by one byte"):
        commands.append(("alembic", "upgrade", "head"))
    for program, *args in commands:
        result = repo_alembic(*args, db=cut, command=program)
        assert result.returncode == ExitCode.DATABASE_UNUSABLE, result.stderr
        line = error_line(result)
        assert f"{cut} (from -x db) is truncated: it has {size} bytes" in line, line
        assert "Traceback" not in result.stderr
    assert digest(cut) == before
    assert sorted(p.name for p in cut.parent.iterdir()) == ["cut.db"]  # no log, no backup beside it


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name", WHOLE)
def test_a_whole_file_passes(made: Path, tmp_path: Path, version: str, name: str) -> None:
    path = tmp_path / f"{name}.db"
    shutil.copyfile(made / version / f"{name}.db", path)
    result = repo_alembic("current", db=path, command="ccdash-migrate")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("version", VERSIONS)
def test_a_file_whose_header_counts_blocks_a_checkpoint_cut_off_passes(made: Path, version: str) -> None:
    """The header written before the file is cut to its last used block still counts the freed blocks after
    it: the file is whole although it is shorter than that count of blocks."""
    path = made / version / "free_tail.db"
    with open(path, "rb") as reader:
        head = reader.read(HEADERS)
    headers = [struct.unpack_from("<Q5Q", head, at + 8) for at in (4096, 8192)]
    _, _, _, block_count, block_size, _ = max(headers, key=lambda h: h[0])
    assert path.stat().st_size < HEADERS + block_count * block_size
    result = repo_alembic("current", db=path, command="ccdash-migrate")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("version", VERSIONS)
def test_a_file_with_a_pending_log_passes_and_keeps_the_logged_rows(made: Path, tmp_path: Path, version: str) -> None:
    for suffix in ("", ".wal"):
        shutil.copyfile(made / version / f"with_log.db{suffix}", tmp_path / f"with_log.db{suffix}")
    path = tmp_path / "with_log.db"
    result = repo_alembic("current", db=path, command="ccdash-migrate")
    assert result.returncode == 0, result.stderr
    connection = duckdb.connect(str(path), read_only=True)
    try:
        assert connection.execute("SELECT count(*) FROM t").fetchone() == (1010,)
        assert connection.execute("SELECT count(*) FROM logged").fetchone() == (500000,)
    finally:
        connection.close()


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("where", ["by its last block", "at a block's end halfway"])
def test_a_file_with_a_pending_log_cut_at_a_block_s_end_is_refused(
    made: Path, tmp_path: Path, version: str, where: str
) -> None:
    """The rows a logged transaction wrote ahead of its commit lie in blocks the headers do not count (or
    count as free); a cut there, at a block's end, is told by DuckDB's read-only replay of the log. Opened for
    writing, the file would be checkpointed over the missing blocks: corrupt, and its backup with it."""
    source = made / version / "with_log.db"
    blocks = (source.stat().st_size - HEADERS) // BLOCK
    size = HEADERS + (blocks - 1 if where == "by its last block" else blocks // 2) * BLOCK
    cut = _cut(source, tmp_path / "cut.db", size)
    shutil.copyfile(f"{source}.wal", f"{cut}.wal")
    before = digest(cut), digest(Path(f"{cut}.wal"))
    for args in (["current"], ["-x", "backup=false", "up"], ["backup"]):
        result = repo_alembic(*args, db=cut, command="ccdash-migrate")
        assert result.returncode == ExitCode.DATABASE_UNUSABLE, (args, result.stderr)
        assert f"is truncated: it has {size} bytes" in error_line(result)
        assert (digest(cut), digest(Path(f"{cut}.wal"))) == before


@pytest.mark.xdist_group("ccdash-generations")
def test_every_ccdash_generation_passes(fixtures: Path, tmp_path: Path) -> None:
    files = sorted(fixtures.glob("*.db"))
    assert files
    for source in files:
        path = tmp_path / source.name
        shutil.copyfile(source, path)
        result = repo_alembic("current", db=path, command="ccdash-migrate")
        assert result.returncode == 0, (source.name, result.stderr)
        path.unlink()


def test_a_cut_file_handed_over_on_a_connection_is_refused(made: Path, project: Project) -> None:
    """A program's own connection holds the file: the headers are read by a child process, so the lock that
    connection holds stays (closing a descriptor of the file here would drop it)."""
    source = made / "2.x" / "index_last.db"
    cut = _cut(source, project.db, source.stat().st_size - BLOCK)
    before = digest(cut)
    engine = sa.create_engine(f"duckdb:///{cut}")
    config = Config(str(project.root / "alembic.ini"))
    config.cmd_opts = Namespace(x=[], quiet=True, raiseerr=True)
    try:
        with engine.connect() as connection:
            config.attributes["connection"] = connection
            with pytest.raises(DatabaseUnusable, match="is truncated"):
                command.current(config)
            assert locked_from_outside(cut)
    finally:
        engine.dispose()
    assert digest(cut) == before
    assert not os.path.exists(f"{cut}.wal")
