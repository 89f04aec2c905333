"""Rehearsal benchmark: ``ccdash-migrate rehearse`` of one trivial revision against ``ccdash-migrate current``.

For each CCDash database of ``benchmarks/ccdash_data.py`` (469 MB and 2.8 GB by default, at head), a scratch
project (the repository's ``alembic.ini``, ``env.py`` and ``versions/``, plus one pending revision whose
upgrade is ``op.execute("SELECT 1")``) runs, each in a fresh process and in alternating order:

  current   ``ccdash-migrate -x db=FILE current``: opening the file and reading its revision (the baseline);
  rehearse  ``ccdash-migrate -x db=FILE rehearse``: the pending revision run on a copy, and its report;
  copy      one copy of the file by the package's own copier (``runtime/filecopy.py``), the copy the
            rehearsal is allowed on top of three times ``current``.

Reported, median of ``--repeat`` runs: wall time, the peak resident memory of the command (the largest
``ru_maxrss`` of the process and the children it waited for, from ``wait4``), the most the temporary folder
held during a rehearsal (the rehearsal's copy lives there: ``TMPDIR`` points into the scratch folder), the
ratio of the rehearsal to ``current``, and the target: ``3 x current + copy`` and 500 MiB. The database itself
is never written: its size and modification time are checked after every rehearsal.

Run:  .venv/bin/python benchmarks/rehearse.py [--size 469 --size 2800] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
BIN = Path(sys.executable).parent
sys.path.insert(0, str(HERE))

from ccdash_data import database  # noqa: E402  (CCDash databases of a given size)

REVISION = '''"""select one"""
from alembic import op

revision = "29990101000000"
down_revision = {head!r}
branch_labels = None
depends_on = None


def upgrade():
    op.execute("SELECT 1")


def downgrade():
    pass
'''


def project(folder: Path) -> Path:
    """A copy of the repository's environment and revisions, plus the pending ``SELECT 1`` revision."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    root = folder / "project"
    root.mkdir()
    for name in ("alembic.ini", "env.py", "script.py.mako"):
        shutil.copy(REPO / name, root / name)
    shutil.copytree(REPO / "versions", root / "versions", ignore=shutil.ignore_patterns("__pycache__"))
    config = Config(str(root / "alembic.ini"))
    config.set_main_option("script_location", str(root))
    head = ScriptDirectory.from_config(config).get_current_head()
    (root / "versions" / "29990101000000_select_one.py").write_text(REVISION.format(head=head))
    return root


def _folder_bytes(folder: Path) -> int:
    total = 0
    for path in folder.rglob("*"):
        try:
            total += path.stat().st_size if path.is_file() else 0
        except FileNotFoundError:  # removed while it was counted
            continue
    return total


def run(command: list[str], cwd: Path, env: dict[str, str], watch: Path | None = None) -> dict[str, Any]:
    """One fresh process: wall seconds, peak resident MiB (``wait4``), and the most ``watch`` held."""
    most = [0]
    done = threading.Event()

    def poll() -> None:
        while watch is not None and not done.wait(0.1):
            most[0] = max(most[0], _folder_bytes(watch))

    watcher = threading.Thread(target=poll, daemon=True)
    watcher.start()
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        child = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)  # the child's own rusage, its peak memory included
        seconds = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        done.set()
        watcher.join()
        out.seek(0)
        err.seek(0)
        printed, complained = out.read().decode(), err.read().decode()
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(command)} exited {child.returncode}:\n{complained[-3000:]}{printed}")
    return {"seconds": seconds, "mib": usage.ru_maxrss / 1024, "temp_mib": most[0] / 2**20, "out": printed}


def measure(db: Path, root: Path, scratch: Path, repeat: int) -> dict[str, float]:
    """Medians over ``repeat`` rounds of the three runs, order alternated."""
    temp = scratch / "tmp"
    temp.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "CCDASH_DB_PATH"}
    env.update(HOME=str(scratch), TMPDIR=str(temp))
    migrate = [str(BIN / "ccdash-migrate"), "-x", f"db={db}"]
    copier = [
        sys.executable,
        "-c",
        "import sys; from ccdash_alembic.runtime import filecopy; "
        "from pathlib import Path; print(filecopy.copy([(Path(sys.argv[1]), Path(sys.argv[2]))]))",
    ]
    runs: dict[str, list[dict[str, Any]]] = {"current": [], "rehearse": [], "copy": []}
    stamp = db.stat().st_size, db.stat().st_mtime_ns
    for attempt in range(repeat):
        order = ["current", "rehearse", "copy"]
        for kind in order if attempt % 2 == 0 else order[::-1]:
            if kind == "copy":
                result = run([*copier, str(db), str(temp / "copy.db")], root, env)
                (temp / "copy.db").unlink()
            else:
                result = run([*migrate, kind], root, env, watch=temp if kind == "rehearse" else None)
            runs[kind].append(result)
        if "29990101000000  success" not in runs["rehearse"][-1]["out"]:
            raise SystemExit(f"the rehearsal did not succeed:\n{runs['rehearse'][-1]['out']}")
        if (db.stat().st_size, db.stat().st_mtime_ns) != stamp:
            raise SystemExit(f"the rehearsal changed {db}")
    return _medians(runs)


def _medians(runs: dict[str, list[dict[str, Any]]]) -> dict[str, float]:
    """``<kind>_<measure>``: the median of each measure of each kind of run."""
    return {
        f"{kind}_{key}": statistics.median(r[key] for r in results)
        for kind, results in runs.items()
        for key in ("seconds", "mib", "temp_mib")
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--size", type=int, action="append", help="database size in MB (default: 469 and 2800)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sizes = args.size or [469, 2800]

    with tempfile.TemporaryDirectory(prefix="ccdash-bench-rehearse-") as folder:
        scratch = Path(folder)
        root = project(scratch)
        print(f"one pending SELECT 1 revision, median of {args.repeat}, fresh process per run")
        print(
            f"{'file MB':>8} {'current s':>10} {'rehearse s':>11} {'ratio':>6} {'copy s':>7} {'target s':>9} "
            f"{'current MiB':>12} {'rehearse MiB':>13} {'temp MiB':>9}"
        )
        for size in sizes:
            db = database(size)
            m = measure(db, root, scratch, args.repeat)
            target = 3 * m["current_seconds"] + m["copy_seconds"]
            verdict = "ok" if m["rehearse_seconds"] <= target and m["rehearse_mib"] < 500 else "OVER"
            print(
                f"{db.stat().st_size / 1e6:8.0f} {m['current_seconds']:10.2f} {m['rehearse_seconds']:11.2f} "
                f"{m['rehearse_seconds'] / m['current_seconds']:6.1f} {m['copy_seconds']:7.2f} {target:9.2f} "
                f"{m['current_mib']:12.0f} {m['rehearse_mib']:13.0f} {m['rehearse_temp_mib']:9.0f}  {verdict}"
            )
        print("target: rehearse s <= 3 x current s + copy s, rehearse MiB < 500")


if __name__ == "__main__":
    main()
