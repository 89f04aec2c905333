"""Copy a database file from a child process, never from the process that holds it.

DuckDB's lock on a database file is a POSIX record lock, and POSIX record locks belong to the process: closing
ANY descriptor of the file in that process drops them, while DuckDB's connection stays open and believes it
still holds the file. A backup made with ``shutil.copyfile`` in the migrating process therefore lets CCDash (or
a second migration) open the file in the middle of the run. Descriptors a child process opens and closes do
not touch the parent's locks, so every copy of a database this package makes runs here, in a child: the
parent keeps its connection (and with it the lock) from its first read to its last write.

The child clones the file where the filesystem can share blocks (``FICLONE``: btrfs, XFS, bcachefs; the copy
then costs what changes later, not the file's size) and copies it otherwise. This file is also the child's
script: it is run by path, so the child imports neither this package nor SQLAlchemy, and starts in
milliseconds.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

_FICLONE = 0x40049409  # ioctl number of Linux's FICLONE (_IOW(0x94, 9, int))


def copy(pairs: list[tuple[Path, Path]]) -> str:
    """Copy each ``(source, destination)`` in a child process; a missing source (a write-ahead log that is
    not there) is skipped. Returns how the files were copied: ``clone`` or ``copy``. Raises ``OSError`` with
    the child's reason when a copy fails (a full disk, a folder that is not writable)."""
    arguments = [os.fspath(p) for pair in pairs for p in pair]
    result = subprocess.run(
        [sys.executable, "-I", os.fspath(Path(__file__)), *arguments],
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    if result.returncode != 0:
        reason = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else f"exit {result.returncode}"
        raise OSError(reason)
    return result.stdout.strip() or "copy"


def _copy_one(source: Path, destination: Path) -> str:
    """Clone ``source`` into ``destination`` if the filesystem can, else copy its bytes; then make it durable."""
    with open(source, "rb") as reader, open(destination, "xb") as writer:
        method = "copy"
        try:
            import fcntl

            fcntl.ioctl(writer.fileno(), _FICLONE, reader.fileno())
            method = "clone"
        except (OSError, ImportError):
            shutil.copyfileobj(reader, writer, 1 << 20)
        writer.flush()
        os.fsync(writer.fileno())
    return method


def _main(arguments: list[str]) -> int:
    methods = set()
    for source, destination in zip(arguments[::2], arguments[1::2], strict=True):
        if not os.path.exists(source):
            continue
        try:
            methods.add(_copy_one(Path(source), Path(destination)))
        except OSError as error:
            Path(destination).unlink(missing_ok=True)
            sys.stderr.write(f"cannot copy {source} to {destination}: {error.strerror or error}\n")
            return 1
    sys.stdout.write("copy" if "copy" in methods or not methods else "clone")
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
