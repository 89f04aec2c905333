"""Backup benchmark: what the copy before a run costs, in time and disk, by file size and by filesystem.

A run applies one trivial revision (``SELECT 1``, after CCDash's head) to a CCDash database of each
``--size`` (``benchmarks/ccdash_data.py``: ``database(12)`` is about 20 MB, ``database(2800)`` about 2.8 GB),
as ``alembic -x db=FILE -x backup=... upgrade head`` in a fresh process:

- ``backup=false``: no copy, the baseline (and the cheaper safety: each revision in one transaction, a step
  that would lose data refused);
- ``backup=true``: a copy first, which on the scratch folder's filesystem (ext4 here) is a full copy.

Both run on the scratch folder's filesystem and, with ``--reflink DIR`` (a folder on a filesystem that shares
blocks: XFS with reflink, btrfs), there too, where the copy is a clone. Before each timed run the revision is
taken back (``downgrade -1``, not timed) and the previous run's backups are removed. Reported per case: the
median wall time of ``--repeat`` runs (the four cases alternated), its ratio to ``backup=false`` on the same
file and filesystem; the free space the run took (the backup kept; the run itself takes some, so compare with
the ``backup=false`` row; on a disk other processes write to, their writes count too); what ``du`` says the
backup holds (a clone counts its full size there, though it shares its blocks); and whether the run printed
its ``Backup cost`` line (printed below the table).

A reflink filesystem for ``--reflink`` (root; xfsprogs):
    truncate -s 8G /tmp/xfs.img && mkfs.xfs -q -m reflink=1 /tmp/xfs.img
    mkdir -p /tmp/xfs && mount -o loop /tmp/xfs.img /tmp/xfs        (afterwards: umount /tmp/xfs)

Run:  .venv/bin/python benchmarks/backup.py [--size 12 --size 2800] [--repeat 3] [--reflink /tmp/xfs]
      [--scratch DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
BIN = Path(sys.executable).parent
sys.path.insert(0, str(HERE))

from ccdash_data import database  # noqa: E402  (the shared CCDash databases)

TRIVIAL = "20991231000000"
REVISION = '''"""a trivial step"""

from alembic import op

revision = {revision!r}
down_revision = {parent!r}
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("SELECT 1")


def downgrade() -> None:
    pass
'''


@dataclass
class Measured:
    seconds: float
    taken: int  # bytes of free space the run took, median
    du: int  # bytes allocated to the backup's files, as du counts them, median
    note: str  # the "Backup cost" line the run printed, if any


def project(root: Path) -> Path:
    """CCDash's environment and revisions, plus the trivial one after its head."""
    root.mkdir()
    for name in ("alembic.ini", "env.py", "script.py.mako"):
        shutil.copy(REPO / name, root / name)
    shutil.copytree(REPO / "versions", root / "versions", ignore=shutil.ignore_patterns("__pycache__"))
    head = ScriptDirectory.from_config(Config(str(REPO / "alembic.ini"))).get_current_head()
    (root / "versions" / f"{TRIVIAL}_trivial.py").write_text(REVISION.format(revision=TRIVIAL, parent=head))
    return root


def alembic(root: Path, db: Path, *arguments: str) -> tuple[float, str]:
    """Wall time and stderr of one fresh ``alembic`` process; a failure stops the benchmark."""
    environment = {k: v for k, v in os.environ.items() if k not in ("CCDASH_DB_PATH", "ALEMBIC_CONFIG")}
    started = time.perf_counter()
    result = subprocess.run(
        [str(BIN / "alembic"), "-x", f"db={db}", *arguments], cwd=root, env=environment, capture_output=True, text=True
    )
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"alembic {' '.join(arguments)} on {db} failed:\n{result.stderr[-3000:]}")
    return seconds, result.stderr


def backups_of(db: Path) -> list[Path]:
    return list(db.parent.glob(f"{db.name}.*.backup"))


def one_run(root: Path, db: Path, backup: bool) -> Measured:
    alembic(root, db, "-x", "backup=false", "downgrade", "-1")
    for made in backups_of(db):
        shutil.rmtree(made)
    os.sync()
    free = shutil.disk_usage(db.parent).free
    seconds, stderr = alembic(root, db, "-x", f"backup={str(backup).lower()}", "upgrade", "head")
    os.sync()
    taken = free - shutil.disk_usage(db.parent).free
    du = sum(f.stat().st_blocks * 512 for made in backups_of(db) for f in made.iterdir())
    notes = [line for line in stderr.splitlines() if line.startswith("Backup cost")]
    return Measured(seconds, taken, du, notes[0] if notes else "")


def measure(root: Path, cases: dict[str, tuple[Path, bool]], repeat: int) -> dict[str, Measured]:
    """Each case ``repeat`` times, the order reversed every other round."""
    runs: dict[str, list[Measured]] = {name: [] for name in cases}
    for attempt in range(repeat):
        order = list(cases.items()) if attempt % 2 == 0 else list(reversed(cases.items()))
        for name, (db, backup) in order:
            runs[name].append(one_run(root, db, backup))
    return {name: median_of(done) for name, done in runs.items()}


def median_of(done: list[Measured]) -> Measured:
    return Measured(
        statistics.median(r.seconds for r in done),
        int(statistics.median(r.taken for r in done)),
        int(statistics.median(r.du for r in done)),
        next((r.note for r in done if r.note), ""),
    )


def placed(source: Path, folder: Path) -> Path:
    """A copy of ``source`` in its own folder under ``folder``."""
    db = folder / f"{source.stem}-{os.getpid()}" / "ccdash.db"
    db.parent.mkdir(parents=True)
    shutil.copyfile(source, db)
    return db


def gigabytes(count: int) -> str:
    return f"{count / 1e9:.2f}"


def measure_size(root: Path, scratch: Path, size: int, reflink: Path | None, repeat: int) -> dict[str, Measured]:
    """The cases on a copy of the ``size`` MB database in ``scratch`` (and in ``reflink``), copies removed after."""
    source = database(size)
    db = placed(source, scratch)
    cases = {"scratch: backup=false": (db, False), "scratch: backup=true": (db, True)}
    if reflink:
        cloning = placed(source, reflink)
        cases.update({"reflink: backup=false": (cloning, False), "reflink: backup=true": (cloning, True)})
    copies = {copy for copy, _ in cases.values()}
    try:
        for copy in copies:  # at the trivial revision, which every run takes back first
            alembic(root, copy, "-x", "backup=false", "upgrade", "head")
        return measure(root, cases, repeat)
    finally:
        for copy in copies:
            shutil.rmtree(copy.parent)


def report(results: dict[int, dict[str, Measured]], repeat: int) -> None:
    print(f"one trivial revision, alembic upgrade head, median of {repeat}, a fresh process per run")
    print(f"{'file GB':>8} {'case':24} {'seconds':>8} {'ratio':>6} {'free GB taken':>14} {'backup du GB':>13}  note")
    for size, cases in results.items():
        for name, result in cases.items():
            baseline = cases[name.replace("backup=true", "backup=false")].seconds
            print(
                f"{gigabytes(size):>8} {name:24} {result.seconds:8.2f} {result.seconds / baseline:6.2f} "
                f"{gigabytes(result.taken):>14} {gigabytes(result.du):>13}  {'yes' if result.note else ''}"
            )
    for size, cases in results.items():
        for name, result in cases.items():
            if result.note:
                print(f"{gigabytes(size)} GB, {name}: {result.note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, action="append", help="megabytes (default: 12 and 2800)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--reflink", type=Path, help="a folder on a filesystem with reflink")
    parser.add_argument("--scratch", type=Path, help="where the full-copy runs go (default: the temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ccdash-bench-backup-", dir=args.scratch) as folder:
        scratch = Path(folder)
        root = project(scratch / "project")
        results = {
            database(size).stat().st_size: measure_size(root, scratch, size, args.reflink, args.repeat)
            for size in args.size or [12, 2800]
        }
    report(results, args.repeat)


if __name__ == "__main__":
    main()
