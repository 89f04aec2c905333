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
"""

from __future__ import annotations

import struct
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
