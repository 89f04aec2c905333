"""Copy a database file from a child process, never from the process that holds it.

DuckDB's lock on a database file is a POSIX record lock, and POSIX record locks belong to the process: closing
ANY descriptor of the file in that process drops them, while DuckDB's connection stays open and believes it
still holds the file. A backup made with ``shutil.copyfile`` in the migrating process therefore lets CCDash (or
a second migration) open the file in the middle of the run. Descriptors a child process opens and closes do
not touch the parent's locks, so every copy of a database this package makes runs here, in a child: the
parent keeps its connection (and with it the lock) from its first read to its last write.

The child clones the file where the filesystem can share blocks (Linux's ``FICLONE``, what ``cp
--reflink=always`` does: btrfs, XFS made with reflink, bcachefs; macOS's ``clonefile`` on APFS, not tested
here): the copy is then made in milliseconds whatever the file's size, and takes disk space only for the blocks
either file changes later. Otherwise the kernel copies it (``copy_file_range``: no round trip through this
process, and the filesystems that clone that way, ZFS with block cloning or NFS 4.2, do), else the bytes are
read and written here. This file is also the child's script: it is run by path, so the child imports neither
this package nor SQLAlchemy, and starts in milliseconds.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import BinaryIO

_SCRATCH = "--scratch"  # the child's first argument for a copy that need not reach the disk
_FICLONE = 0x40049409  # ioctl number of Linux's FICLONE (_IOW(0x94, 9, int))
# what copy_file_range fails with, before copying anything, where the kernel cannot copy between these two files
# (another filesystem on older kernels, a filesystem without support): the bytes are then copied here
_NO_KERNEL_COPY = {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP}


def copy(pairs: list[tuple[Path, Path]], durable: bool = True) -> str:
    """Copy each ``(source, destination)`` in a child process; a missing source (a write-ahead log that is
    not there) is skipped. Returns how the files were copied: ``clone`` or ``copy``. Raises ``OSError`` with
    the child's reason when a copy fails (a full disk, a folder that is not writable). ``durable``: each copy
    is flushed to disk before this returns (a backup must survive a crash; a scratch copy that is thrown away
    need not wait for the disk, which on a big file is most of the copy's time)."""
    arguments = [] if durable else [_SCRATCH]
    arguments += [os.fspath(p) for pair in pairs for p in pair]
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


def _copy_one(source: Path, destination: Path, durable: bool) -> str:
    """Clone ``source`` into ``destination`` if the filesystem can, else copy its bytes; then make it durable."""
    cloned = _clonefile(source, destination)
    with open(source, "rb") as reader, open(destination, "r+b" if cloned else "xb") as writer:
        cloned = cloned or _ficlone(reader, writer)
        if not cloned and not _kernel_copy(reader, writer):
            shutil.copyfileobj(reader, writer, 1 << 20)
        writer.flush()
        if durable:
            os.fsync(writer.fileno())
    return "clone" if cloned else "copy"


def _ficlone(reader: BinaryIO, writer: BinaryIO) -> bool:
    """Linux: make ``writer`` share all of ``reader``'s blocks; False where the filesystem cannot."""
    try:
        import fcntl

        fcntl.ioctl(writer.fileno(), _FICLONE, reader.fileno())
    except (OSError, ImportError):
        return False
    return True


def _clonefile(source: Path, destination: Path) -> bool:
    """macOS: create ``destination`` as a clone of ``source`` (APFS); False elsewhere or where it cannot."""
    if sys.platform != "darwin":
        return False
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    return int(libc.clonefile(os.fsencode(source), os.fsencode(destination), 0)) == 0


def _kernel_copy(reader: BinaryIO, writer: BinaryIO) -> bool:
    """Copy with ``copy_file_range``; False, with nothing written, where the kernel cannot copy these files."""
    copy_range = getattr(os, "copy_file_range", None)
    if copy_range is None:
        return False
    size, done = os.fstat(reader.fileno()).st_size, 0
    while done < size:
        try:
            copied = copy_range(reader.fileno(), writer.fileno(), size - done, done, done)
        except OSError as error:
            if done == 0 and error.errno in _NO_KERNEL_COPY:
                return False
            raise
        if copied == 0:  # the end of the file came early: what is there is copied
            break
        done += copied
    return True


def _main(arguments: list[str]) -> int:
    durable = arguments[:1] != [_SCRATCH]
    arguments = arguments if durable else arguments[1:]
    methods = set()
    for source, destination in zip(arguments[::2], arguments[1::2], strict=True):
        if not os.path.exists(source):
            continue
        try:
            methods.add(_copy_one(Path(source), Path(destination), durable))
        except OSError as error:
            Path(destination).unlink(missing_ok=True)
            sys.stderr.write(f"cannot copy {source} to {destination}: {error.strerror or error}\n")
            return 1
    sys.stdout.write("copy" if "copy" in methods or not methods else "clone")
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
