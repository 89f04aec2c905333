"""What a DuckDB file's main header says: its storage version and the DuckDB release that created it.

DuckDB 2.x records the catalog name (the file's stem, as it was when the file was written) in the dependencies
of every ``CREATE INDEX``; DuckDB 1.1, inside every CCDash release, then refuses the file under any other name
("dependency ... is in catalog "ccdash", which does not match the catalog "copy""). Files 1.1 wrote, and files
without indexes, open under any name. So the header tells ``status`` and ``validate`` when a database opens in
DuckDB 1.1 only under its current file name. (Measured on 2.0.1: any catalog change made by DuckDB 2.x under
the new name, followed by a checkpoint, writes the new name; a bare ``FORCE CHECKPOINT`` does not.)

The main header names the release that created the file, not the last to write it: a file CCDash (DuckDB 1.1)
created and DuckDB 2.x later changed still says 1.1 there. So a file counts as written by 2.x when its header
says so, or when the caller knows 2.x changed its catalog (a run of this tool records its history there).

The header is read with a plain ``open``, which must never happen in a process that holds DuckDB's lock on the
file (closing that descriptor would drop the lock): callers read it before they connect.

The two database headers that follow the main one (at 4096 and 8192 bytes; the one with the higher iteration is
current) say how many blocks the file had at its last checkpoint and where its free-block list is, which is
what ``shortfall`` needs to tell a file cut short from a whole one by its size alone, whatever the file holds.
Every block DuckDB may read lies below that count and is not on the free list; blocks at the end that are on
it may be gone, since a checkpoint cuts the file after it writes the header. Blocks past the count are not
checked: they hold rows of a transaction that is in the log but not yet checkpointed, or the part of a
checkpoint that failed (a full disk) and that DuckDB writes again from the log. Only the log says which, so a
cut there is not told.
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

_MAGIC = b"DUCK"
_MAGIC_AT = 8  # after the header block's checksum
_VERSION_AT = 12  # uint64 storage version number
_LIBRARY_AT = 52  # after four uint64 flags: the writing library's version, 32 bytes, NUL padded
_LIBRARY_BYTES = 32


@dataclass(frozen=True)
class Header:
    storage_version: int  # 64 for the format DuckDB 1.0 to 1.1 read
    written_by: str  # the release that created the file, e.g. "v2.0.1"; empty for files older than DuckDB 0.10

    @property
    def written_by_major(self) -> int | None:
        digits = self.written_by.lstrip("v").split(".", 1)[0]
        return int(digits) if digits.isdigit() else None


def read(path: Path) -> Header | None:
    """The header of the DuckDB file at ``path``, or None when it is not one (missing, empty, another format)."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(_LIBRARY_AT + _LIBRARY_BYTES)
    except OSError:
        return None
    if len(data) < _LIBRARY_AT + _LIBRARY_BYTES or data[_MAGIC_AT : _MAGIC_AT + 4] != _MAGIC:
        return None
    (version,) = struct.unpack_from("<Q", data, _VERSION_AT)
    library = data[_LIBRARY_AT : _LIBRARY_AT + _LIBRARY_BYTES].split(b"\0", 1)[0].decode("ascii", "replace")
    return Header(storage_version=int(version), written_by=library)


def bound_to_name(header: Header | None, has_indexes: bool, changed_by_duckdb_2: bool) -> bool:
    """Whether DuckDB 1.1 can open the file only under its current name (see the module's docstring):
    it has indexes and DuckDB 2.x created it or changed its catalog."""
    created_by_2 = header is not None and (header.written_by_major or 0) >= 2
    return header is not None and has_indexes and (created_by_2 or changed_by_duckdb_2)


HEADERS_END = 3 * 4096  # the main header and the two database headers; block 0 starts here
_DATABASE_HEADERS = (4096, 8192)
_CHECKSUM = 8  # every header and block starts with its checksum
_FLAGS_AT = 20  # four uint64 flags after the storage version; the first marks an encrypted file
_NO_BLOCK = (1 << 64) - 1  # INVALID_BLOCK, stored unsigned
_BLOCK_SIZES = {1 << n for n in range(14, 19)}  # 16 KiB to 256 KiB, what DuckDB accepts
_METADATA_PER_BLOCK = 64  # a metadata block is cut in 64 parts, each starting with the pointer to the next


@dataclass(frozen=True)
class Shortfall:
    size: int  # bytes the file has
    needed: int  # bytes its headers say it must have


@dataclass(frozen=True)
class _Blocks:
    iteration: int
    free_list: int  # metadata pointer: block id in the low 56 bits, part of the block in the high 8
    block_count: int
    block_size: int  # bytes per block on disk, checksum included

    def end_of(self, block: int) -> int:
        return HEADERS_END + (block + 1) * self.block_size


class _Unknown(Exception):
    """Headers this reader does not understand (damaged, encrypted): DuckDB's open says what is wrong."""


class _Cut(Exception):
    """A block the free list is in lies past the end of the file."""

    def __init__(self, needed: int) -> None:
        self.needed = needed


def shortfall(path: Path, *, lock: bool = True) -> Shortfall | None:
    """Whether the DuckDB file at ``path`` is shorter than its headers say it is; None when it is whole, in use
    by a writer (``lock``: read under a shared lock, as DuckDB's readers take, so no checkpoint runs meanwhile),
    or not a file these headers describe (DuckDB's own open then refuses it in its words).

    Reads the three headers and the free-block list: the same few kilobytes on a file of any size. The caller
    must not hold the file open through DuckDB (see the module's docstring); ``shortfall_in_child`` is for
    one that does."""
    try:
        with open(path, "rb") as handle:
            if lock and not _shared_lock(handle.fileno()):
                return None
            found = _shortfall(handle.fileno())
    except (OSError, _Unknown):
        return None
    return found if found is not None or not _log_pending(path) else _in_child(path, "--log")


def _shared_lock(descriptor: int) -> bool:
    try:
        fcntl.lockf(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EAGAIN):
            return False
        raise
    return True


def _shortfall(descriptor: int) -> Shortfall | None:
    size = os.fstat(descriptor).st_size
    head = os.pread(descriptor, HEADERS_END, 0)
    if head[_MAGIC_AT : _MAGIC_AT + 4] != _MAGIC:
        raise _Unknown
    if len(head) < HEADERS_END:
        return Shortfall(size, HEADERS_END)
    if struct.unpack_from("<Q", head, _FLAGS_AT)[0]:
        raise _Unknown
    first, second = (_database_header(head, at) for at in _DATABASE_HEADERS)
    blocks = first if first.iteration > second.iteration else second  # DuckDB's choice, ties included
    try:
        needed = HEADERS_END + (_last_used(descriptor, blocks) + 1) * blocks.block_size
    except _Cut as cut:
        needed = cut.needed
    return Shortfall(size, needed) if size < needed else None


def _database_header(head: bytes, at: int) -> _Blocks:
    iteration, _meta_block, free_list, block_count, block_size = struct.unpack_from("<5Q", head, at + _CHECKSUM)
    block_size = block_size or 1 << 18  # files older than DuckDB 1.0 leave it 0: the 256 KiB default
    if block_size not in _BLOCK_SIZES or block_count > (1 << 62):
        raise _Unknown
    return _Blocks(iteration, free_list, block_count, block_size)


def _last_used(descriptor: int, blocks: _Blocks) -> int:
    """The highest block below the count that is not free (-1 when there is none)."""
    free = _free_blocks(descriptor, blocks) if blocks.free_list != _NO_BLOCK else set()
    block = blocks.block_count - 1
    while block in free:
        block -= 1
    return block


def _free_blocks(descriptor: int, blocks: _Blocks) -> set[int]:
    """The free list the header points to: a count, then that many block ids, in a chain of metadata parts."""
    chain = _MetadataChain(descriptor, blocks)
    (count,) = struct.unpack("<Q", chain.read(8))
    if count > blocks.block_count:
        raise _Unknown
    return set(struct.unpack(f"<{count}q", chain.read(8 * count)))


class _MetadataChain:
    """DuckDB's metadata reader: each part of a metadata block holds the pointer to the next part, then data."""

    def __init__(self, descriptor: int, blocks: _Blocks) -> None:
        self._descriptor = descriptor
        self._blocks = blocks
        self._part = (blocks.block_size - _CHECKSUM) // _METADATA_PER_BLOCK // 8 * 8
        self._next = blocks.free_list
        self._data = b""

    def read(self, count: int) -> bytes:
        while len(self._data) < count:
            self._data += self._next_part()
        taken, self._data = self._data[:count], self._data[count:]
        return taken

    def _next_part(self) -> bytes:
        if self._next == _NO_BLOCK:
            raise _Unknown  # the chain ends before its data does
        block, index = self._next & ((1 << 56) - 1), self._next >> 56
        if block >= self._blocks.block_count or index >= _METADATA_PER_BLOCK:
            raise _Unknown
        at = HEADERS_END + block * self._blocks.block_size + _CHECKSUM + index * self._part
        part = os.pread(self._descriptor, self._part, at)
        if len(part) < self._part:
            raise _Cut(self._blocks.end_of(block))
        (self._next,) = struct.unpack_from("<Q", part)
        return part[8:]


def _log_pending(path: Path) -> bool:
    try:
        return os.path.getsize(f"{path}.wal") > 0
    except OSError:
        return False


def _log_shortfall(path: Path) -> Shortfall | None:
    """Whether the blocks a pending log's transactions wrote ahead of their commit lie past the file's end.

    The headers cannot tell (those blocks are past their count, or still on their free list), so DuckDB is
    asked: a read-only open replays the log in memory and leaves the file and the log as they are, and each
    table's storage layout then names its highest block. This reads the catalog of every table, so it is
    done only while a log is pending (CCDash stopped before its checkpoint), in a child process: the open and
    close of the file must not happen in a process that holds DuckDB's lock on it."""
    import duckdb

    from ccdash_alembic.ddl import catalog

    try:
        connection = duckdb.connect(
            os.fspath(path),
            read_only=True,
            config={"autoinstall_known_extensions": False, "autoload_known_extensions": False},
        )
    except duckdb.Error:
        return None  # held by a writer, or unreadable: the open that follows says which
    try:
        block = catalog.block_size(connection)
        last = max((catalog.last_block(connection, table) for table in catalog.stored_tables(connection)), default=-1)
    except duckdb.Error:
        return None
    finally:
        connection.close()
    size, needed = os.path.getsize(path), HEADERS_END + (last + 1) * block
    return Shortfall(size, needed) if last >= 0 and size < needed else None


def shortfall_in_child(path: Path) -> Shortfall | None:
    """``shortfall`` read by a child process, for a caller that holds the file open through DuckDB: a
    descriptor the child closes leaves this process's lock alone. No lock is taken: the caller's keeps
    writers out."""
    return _in_child(path, "--headers")


def _in_child(path: Path, what: str) -> Shortfall | None:
    result = subprocess.run(
        [sys.executable, "-I", os.fspath(Path(__file__)), what, os.fspath(path)],
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    numbers = result.stdout.split()
    return Shortfall(int(numbers[0]), int(numbers[1])) if result.returncode == 0 and len(numbers) == 2 else None


if __name__ == "__main__":  # _in_child's child: prints "SIZE NEEDED" for a file cut short
    checked = Path(sys.argv[2])
    found = _log_shortfall(checked) if sys.argv[1] == "--log" else shortfall(checked, lock=False)
    if found is not None:
        print(found.size, found.needed)
