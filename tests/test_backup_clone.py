"""What a backup costs: a clone where the filesystem shares blocks, a full copy elsewhere, and the one line a
run says when a full copy weighs on it.

The clone tests need a filesystem with reflink: a small XFS image made with ``mkfs.xfs -m reflink=1`` and
mounted through a loop device (root, ``mount``, and xfsprogs: ``apt-get install xfsprogs``); without them they
are skipped, saying which is missing. The full-copy tests mount a small tmpfs (root) for a disk with little
free space, and copy between two filesystems for the path where the kernel cannot copy.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pytest
from conftest import Project, new_project

from ccdash_alembic.errors import ExitCode
from ccdash_alembic.runtime import filecopy

ONE = "20250101000001"
TWO = "20250101000002"


@contextmanager
def _mounted(folder: Path, *arguments: str) -> Iterator[Path]:
    """``mount ARGUMENTS folder`` for the block, or the test is skipped with mount's reason."""
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", *arguments, str(folder)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount here ({mounted.stderr.strip() or 'not root'})")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


@pytest.fixture(scope="module")
def reflink_disk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A folder on a 400 MB XFS with reflink (a sparse image: it takes what is written to it)."""
    if shutil.which("mkfs.xfs") is None or shutil.which("filefrag") is None:
        pytest.skip("mkfs.xfs or filefrag is not installed (apt-get install xfsprogs e2fsprogs): no reflink to test on")
    scratch = tmp_path_factory.mktemp("reflink")
    image = scratch / "xfs.img"
    with open(image, "wb") as handle:
        handle.truncate(400 * 1024 * 1024)
    made = subprocess.run(["mkfs.xfs", "-q", "-m", "reflink=1", str(image)], capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    with _mounted(scratch / "mnt", "-o", "loop", str(image)) as folder:
        yield folder


def _big_then_trivial(project: Project, megabytes: int) -> None:
    """ONE fills a table with about ``megabytes`` MB; TWO changes one row."""
    rows = megabytes * 25_000
    project.write_revision(
        ONE,
        None,
        'op.execute("CREATE TABLE filler AS SELECT range AS id, '
        f'md5(range::VARCHAR) || md5((range * 7)::VARCHAR) AS h FROM range({rows})")',
        message="filler",
    )
    project.write_revision(
        TWO, ONE, "op.execute(\"UPDATE filler SET h = 'changed' WHERE id = 0\")", message="one row", downgrade=""
    )


def _manifest(folder: Path) -> dict[str, object]:
    loaded: dict[str, object] = json.loads((folder / "backup.json").read_text())
    return loaded


def _backup_folders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.name.endswith(".backup"))


def _on(folder: Path, tmp_path: Path, megabytes: int) -> Project:
    """A project whose database is on ``folder``, upgraded to ONE (about ``megabytes`` MB)."""
    project = new_project(tmp_path)
    project.db = folder / "data" / "ccdash.db"
    _big_then_trivial(project, megabytes)
    assert project.alembic("upgrade", ONE).returncode == 0
    return project


def _unshared_bytes(path: Path) -> int:
    """What ``path`` holds in blocks no other file shares (the extent flags ``filefrag`` reads)."""
    os.sync()
    report = subprocess.run(["filefrag", "-v", str(path)], capture_output=True, text=True, check=True).stdout
    found = re.search(r"blocks of (\d+) bytes", report)
    assert found is not None, report
    extents = [line.split(":") for line in report.splitlines() if re.match(r"\s*\d+:", line)]
    return int(found.group(1)) * sum(int(fields[3]) for fields in extents if "shared" not in fields[-1])


def test_a_backup_where_blocks_are_shared_is_a_clone_that_takes_only_what_changed(
    reflink_disk: Path, tmp_path: Path
) -> None:
    project = _on(reflink_disk, tmp_path, 40)
    size = project.db.stat().st_size
    assert size > 20_000_000
    run = project.alembic("upgrade", TWO)
    assert run.returncode == 0, run.stderr
    [made] = _backup_folders(project.db.parent)
    assert _manifest(made)["method"] == "clone"
    assert "Backup cost" not in run.stderr
    assert _unshared_bytes(made / "ccdash.db") < size / 4  # the blocks the run rewrote, not a second copy
    copy = duckdb.connect(str(made / "ccdash.db"), read_only=True)
    assert copy.execute("SELECT h FROM filler WHERE id = 0").fetchone() != ("changed",)
    copy.close()


def test_a_restore_from_a_clone_puts_the_file_back_and_keeps_the_replaced_one_as_a_clone(
    reflink_disk: Path, tmp_path: Path
) -> None:
    project = _on(reflink_disk, tmp_path, 20)
    assert project.alembic("upgrade", TWO).returncode == 0
    restored = project.migrate("restore")
    assert restored.returncode == 0, restored.stderr
    assert project.rows("SELECT version_num FROM alembic_version") == [(ONE,)]
    assert project.rows("SELECT count(*) FROM filler WHERE h = 'changed'") == [(0,)]
    made = {_manifest(folder)["kind"]: folder for folder in _backup_folders(project.db.parent)}
    assert sorted(made) == ["replaced", "run"]
    assert {_manifest(folder)["method"] for folder in made.values()} == {"clone"}
    assert _unshared_bytes(project.db) < project.db.stat().st_size / 4  # it shares the backup's blocks


def test_file_copy_clones_on_one_reflink_filesystem_and_copies_the_bytes_across_two(
    reflink_disk: Path, tmp_path: Path
) -> None:
    source = reflink_disk / "source"
    source.write_bytes(os.urandom(3_000_000))
    assert filecopy.copy([(source, reflink_disk / "clone"), (reflink_disk / "absent", reflink_disk / "x")]) == "clone"
    assert (reflink_disk / "clone").read_bytes() == source.read_bytes()
    assert not (reflink_disk / "x").exists()  # a missing source (no write-ahead log) is skipped
    assert filecopy.copy([(source, tmp_path / "across")]) == "copy"
    assert (tmp_path / "across").read_bytes() == source.read_bytes()


def test_where_the_kernel_cannot_copy_the_bytes_are_copied_here(tmp_path: Path) -> None:
    """From a tmpfs to another filesystem ``copy_file_range`` fails at once (EXDEV), and so does ``FICLONE``:
    the child reads and writes the bytes itself."""
    with _mounted(tmp_path / "small", "-t", "tmpfs", "-o", "size=16M", "tmpfs") as small:
        source = small / "source"
        source.write_bytes(os.urandom(5_000_000))
        assert filecopy.copy([(source, tmp_path / "copy")]) == "copy"
        assert (tmp_path / "copy").read_bytes() == source.read_bytes()


def test_a_full_copy_that_weighs_on_the_disk_says_its_cost_once_and_names_the_cheaper_safety(
    tmp_path: Path,
) -> None:
    """On a 64 MB disk five kept copies of a 9 MB file would take most of the space left: the run says so in
    one line. With ``-x backup=false`` it runs without a copy."""
    with _mounted(tmp_path / "small", "-t", "tmpfs", "-o", "size=64M", "tmpfs") as small:
        project = _on(small, tmp_path, 8)
        run = project.alembic("upgrade", TWO)
        assert run.returncode == 0, run.stderr
        [made] = _backup_folders(project.db.parent)
        assert _manifest(made)["method"] == "copy"
        [note] = [line for line in run.stderr.splitlines() if line.startswith("Backup cost")]
        assert re.fullmatch(
            r"Backup cost: a full copy of [\d.]+ MB in [\d.]+ s \(this filesystem cannot share blocks; 5 kept "
            r"backups take up to [\d.]+ MB, [\d.]+ MB free\)\. Cheaper: -x backup=false, .*",
            note,
        )
        quiet = project.alembic("-x", "backup=false", "downgrade", ONE)
        assert quiet.returncode == 0, quiet.stderr
        assert "Backup" not in quiet.stderr
        assert _backup_folders(project.db.parent) == [made]


def test_without_a_backup_a_step_that_would_lose_data_is_refused_and_rolled_back(tmp_path: Path) -> None:
    """What the cheaper safety keeps: the step's transaction, and the refusal of lost data."""
    project = _on(tmp_path / "disk", tmp_path, 1)
    assert project.alembic("upgrade", TWO).returncode == 0
    project.write_revision("20250101000003", TWO, "op.drop_table('filler')", message="drop", downgrade="")
    refused = project.alembic("-x", "backup=false", "upgrade", "head")
    assert refused.returncode == ExitCode.DATA_LOSS
    assert "this step would lose data" in refused.stderr
    assert project.rows("SELECT version_num FROM alembic_version") == [(TWO,)]
    assert project.rows("SELECT count(*) FROM filler") == [(25_000,)]
