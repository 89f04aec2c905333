"""Alembic on DuckDB for a project that is not CCDash: one made with the stock ``alembic init``.

The page ``docs/duckdb-layer.md`` ("Alembic on DuckDB in your own project") is run as written (its blocks are
read from it between ``<!-- any-project-... -->`` markers): first with the stock ``env.py`` untouched (rebuilding
operations up and down, every row kept), then with the one call that adds this tool's history, checksums,
lock, backups and guards. Nothing of CCDash (its default database, its variable, its option, its hook
names, its Go tool's history) reaches such a project.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import textwrap
from pathlib import Path

import duckdb
import forked_commands
import pytest
from conftest import BIN, REPO, hold, snapshot
from docblocks import block

from ccdash_alembic.errors import ExitCode

GUIDE = "docs/duckdb-layer.md"
STOCK_ENDING = "if context.is_offline_mode():\n    run_migrations_offline()\nelse:\n    run_migrations_online()\n"
CCDASH = "ccdash_alembic.ccdash.application:CCDASH"

TABLES = '''\
"""tables"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "parents",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("code", sa.Integer, nullable=False),
        sa.Column("note", sa.String),
    )
    op.create_index("ix_parents_code", "parents", ["code"])
    op.create_table(
        "children",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("parent_id", sa.Integer, sa.ForeignKey("parents.id")),
        sa.Column("other", sa.Integer),
    )
    op.create_table("others", sa.Column("id", sa.Integer, primary_key=True))
    op.execute("INSERT INTO parents VALUES (1, 10, 'a'), (2, 20, 'b'), (3, 2147483647, NULL)")
    op.execute("INSERT INTO others VALUES (5), (6)")
    op.execute("INSERT INTO children VALUES (1, 1, 5), (2, 2, 6), (3, 1, NULL), (4, 3, 5)")


def downgrade():
    op.drop_table("children")
    op.drop_table("others")
    op.drop_table("parents")
'''

REBUILDS = '''\
"""rebuilds"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    op.alter_column("parents", "code", type_=sa.BigInteger)  # indexed, and children reference parents
    op.create_foreign_key("fk_children_other", "children", "others", ["other"], ["id"])
    op.drop_column("parents", "note")  # a column of a referenced table


def downgrade():
    op.add_column("parents", sa.Column("note", sa.String))
    op.drop_constraint("children_other_id_fkey", "children", type_="foreignkey")
    op.alter_column("parents", "code", type_=sa.Integer)
'''

# What DuckDB itself says to each change of REBUILDS on the database at 0001: this layer is what makes them work.
NATIVE = {
    "ALTER TABLE parents ALTER code TYPE BIGINT": "index depends on it",
    "ALTER TABLE children ADD FOREIGN KEY (other) REFERENCES others(id)": "No support for adding FOREIGN_KEY",
    "ALTER TABLE parents DROP COLUMN note": "entries that depend on it",
}


def environment(home: Path, **extra: str) -> dict[str, str]:
    """This virtual environment's commands first on PATH, an empty HOME, and no CCDash variable unless given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CCDASH_") and k != "ALEMBIC_CONFIG"}
    env.update(PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", HOME=str(home), PYTHONDONTWRITEBYTECODE="1", **extra)
    return env


def sh(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-e", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False
    )


def init_project(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """The guide's first block, run in a new folder: a stock ``alembic init`` project on ``app.db``."""
    root, home = tmp_path / "project", tmp_path / "home"
    root.mkdir()
    home.mkdir()
    env = environment(home)
    done = sh(block(GUIDE, "any-project-init", "sh"), root, env)
    assert done.returncode == 0, done.stderr
    assert "sqlalchemy.url = duckdb:///app.db\n" in (root / "alembic.ini").read_text()
    return root, env


def write_revisions(root: Path, *texts: str) -> None:
    for number, text in enumerate(texts, start=1):
        (root / "migrations" / "versions" / f"{number:04d}_step.py").write_text(text)


def use_run(root: Path) -> None:
    """The guide's env.py call in place of the stock ending."""
    env_py = root / "migrations" / "env.py"
    text = env_py.read_text()
    assert text.endswith(STOCK_ENDING)
    env_py.write_text(text[: -len(STOCK_ENDING)] + block(GUIDE, "any-project-env", "python"))


def run(command: list[str], root: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    if command[0] in ("alembic", "ccdash-migrate"):
        return forked_commands.run(command[0], command[1:], cwd=root, env=env, timeout=600)
    return subprocess.run(
        [str(BIN / command[0]), *command[1:]], cwd=root, env=env, capture_output=True, text=True, timeout=600
    )


def rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    connection = duckdb.connect(str(db), read_only=True)
    try:
        return connection.execute(sql).fetchall()
    finally:
        connection.close()


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_stock_env_py_runs_rebuilds_up_and_down_keeping_every_row(tmp_path: Path) -> None:
    root, env = init_project(tmp_path)
    env_py = (root / "migrations" / "env.py").read_text()
    # the stock template, untouched: its own engine (engine_from_config, NullPool), nothing of this package
    assert "engine_from_config(" in env_py and "poolclass=pool.NullPool" in env_py and "ccdash" not in env_py
    write_revisions(root, TABLES, REBUILDS)
    db = root / "app.db"

    first = run(["alembic", "upgrade", "0001"], root, env)
    assert first.returncode == 0, first.stderr
    before = snapshot(db)
    for statement, refusal in NATIVE.items():  # plain DuckDB refuses each change on this file
        copy = tmp_path / "native.db"
        shutil.copy(db, copy)
        connection = duckdb.connect(str(copy))
        with pytest.raises(duckdb.Error, match=refusal):
            connection.execute(statement)
        connection.close()

    up = run(["alembic", "upgrade", "head"], root, env)
    assert up.returncode == 0, up.stderr
    assert "Traceback" not in up.stderr
    assert rows(db, "SELECT data_type FROM duckdb_columns() WHERE table_name = 'parents' AND column_name = 'code'") == [
        ("BIGINT",)
    ]
    assert rows(db, "SELECT index_name FROM duckdb_indexes() WHERE table_name = 'parents'") == [("ix_parents_code",)]
    assert rows(db, "SELECT * FROM parents ORDER BY id") == [(1, 10), (2, 20), (3, 2147483647)]
    assert rows(db, "SELECT * FROM children ORDER BY id") == [(1, 1, 5), (2, 2, 6), (3, 1, None), (4, 3, 5)]
    constraints = rows(db, "SELECT constraint_text FROM duckdb_constraints() WHERE table_name = 'children'")
    assert any("REFERENCES" in text and "others" in text for (text,) in constraints)
    connection = duckdb.connect(str(db))
    with pytest.raises(duckdb.ConstraintException):  # the new foreign key holds
        connection.execute("INSERT INTO children VALUES (9, 1, 999)")
    connection.close()

    down = run(["alembic", "downgrade", "0001"], root, env)
    assert down.returncode == 0, down.stderr
    after = snapshot(db)
    # everything as it was at 0001, but the dropped column's values, which the downgrade cannot bring back
    assert after.pop("rows:parents") == [(1, 10, None), (2, 20, None), (3, 2147483647, None)]
    before.pop("rows:parents")
    assert after == before


def test_the_documented_run_adds_history_checksums_lock_and_backups(tmp_path: Path) -> None:
    root, env = init_project(tmp_path)
    use_run(root)
    write_revisions(root, TABLES)
    db = root / "app.db"

    said = {}
    for line in block(GUIDE, "any-project-use", "sh").splitlines():
        if line.strip():
            result = sh(line, root, env)
            assert result.returncode == 0, (line, result.stderr)
            said[line.split()[-1]] = result.stdout + result.stderr
    assert str(db) in said["status"] and "Traceback" not in "".join(said.values())
    assert "0001" in said["history"]

    # the next revision drops a column holding data: allowed because a backup of the file is made first
    write_revisions(root, TABLES, REBUILDS)
    up = run(["ccdash-migrate", "up"], root, env)
    assert up.returncode == 0, up.stderr
    listed = run(["ccdash-migrate", "backup", "--list"], root, env)
    assert listed.returncode == 0, listed.stderr
    [backup] = listed.stdout.split()
    assert Path(backup).parent == root and Path(backup).is_dir()
    history = rows(db, "SELECT version, direction, status, checksum IS NOT NULL FROM migration_history ORDER BY id")
    assert history == [("0001", "up", "success", True), ("0002", "up", "success", True)]
    assert rows(db, "SELECT version, dirty FROM schema_version") == [("0002", False)]
    assert rows(db, "SELECT count(*) FROM children") == [(4,)]
    down = run(["ccdash-migrate", "down"], root, env)
    assert down.returncode == 0, down.stderr

    # the lock: another process holds the file
    holder = hold(db)
    try:
        locked = run(["ccdash-migrate", "-x", "lock_timeout=0", "up"], root, env)
    finally:
        holder.kill()
        holder.wait()
    assert locked.returncode == ExitCode.LOCKED, locked.stderr
    assert f"PID {holder.pid}" in locked.stderr

    # checksums: an applied revision's file edited afterwards stops the run, and the stock command alike
    applied = root / "migrations" / "versions" / "0001_step.py"
    applied.write_text(applied.read_text() + "# edited\n")
    digest = sha(db)
    for command in (["ccdash-migrate", "validate"], ["alembic", "upgrade", "head"]):
        changed = run(command, root, env)
        assert changed.returncode == ExitCode.CHECKSUM_MISMATCH, (command, changed.stderr)
        assert "0001" in changed.stdout + changed.stderr
    assert sha(db) == digest


def test_a_project_without_a_database_is_refused_not_given_ccdash_s(tmp_path: Path) -> None:
    root, env = init_project(tmp_path)
    use_run(root)
    write_revisions(root, TABLES)
    ini = root / "alembic.ini"
    ini.write_text(ini.read_text().replace("sqlalchemy.url = duckdb:///app.db\n", ""))
    canary = tmp_path / "canary.db"
    for extra in ({}, {"CCDASH_DB_PATH": str(canary)}):
        for command in (["ccdash-migrate", "status"], ["alembic", "upgrade", "head"], ["ccdash-migrate", "up"]):
            refused = run(command, root, {**env, **extra})
            assert refused.returncode == ExitCode.USAGE, (command, refused.stderr)
            assert "no database was given" in refused.stderr and "sqlalchemy.url" in refused.stderr
    assert not canary.exists()
    assert list(Path(env["HOME"]).iterdir()) == []  # no ~/.ccdash
    assert not (root / "app.db").exists()


def test_options_and_failure_hook_are_the_application_s(tmp_path: Path) -> None:
    root, env = init_project(tmp_path)
    use_run(root)
    failing = TABLES.replace(
        "def upgrade():\n", "def upgrade():\n    op.execute(\"SELECT error('planned failure')\")\n", 1
    )
    write_revisions(root, failing)

    generic = run(["ccdash-migrate", "options"], root, env)
    assert generic.returncode == 0, generic.stderr
    assert "downgrade_adopted" not in generic.stdout and "$MIGRATION_REVISION" in generic.stdout
    assert "CCDASH" not in generic.stdout
    unknown = run(["ccdash-migrate", "-x", "downgrade_adopted=true", "status"], root, env)
    assert unknown.returncode == ExitCode.USAGE and "unknown option 'downgrade_adopted'" in unknown.stderr

    ccdash = run(["ccdash-migrate", "options"], REPO, env)
    assert ccdash.returncode == 0, ccdash.stderr
    assert "downgrade_adopted" in ccdash.stdout and "$CCDASH_MIGRATE_REVISION" in ccdash.stdout

    report = tmp_path / "hook.txt"
    failed = run(["ccdash-migrate", "-x", f"on_failure=env > {report}", "up"], root, env)
    assert failed.returncode == ExitCode.MIGRATION_FAILED, failed.stderr
    variables = dict(line.split("=", 1) for line in report.read_text().splitlines() if "=" in line)
    assert variables["MIGRATION_REVISION"] == "0001"
    assert "planned failure" in variables["MIGRATION_ERROR"]
    assert variables["MIGRATION_DATABASE"] == str(root / "app.db")
    assert not any(name.startswith("CCDASH_") for name in variables)


GO_TOOL_HISTORY = (
    "CREATE TABLE migration_history (id INTEGER PRIMARY KEY, version VARCHAR, name VARCHAR, applied_at TIMESTAMP, "
    "status VARCHAR)",
    "INSERT INTO migration_history VALUES (1, '20250801000000', 'initial', TIMESTAMP '2025-08-01 00:00:00', 'success')",
    "CHECKPOINT",
)


def test_an_earlier_tool_s_history_is_refused_unless_the_application_adopts_it(tmp_path: Path) -> None:
    root, env = init_project(tmp_path)
    use_run(root)
    write_revisions(root, TABLES)
    db = root / "app.db"
    connection = duckdb.connect(str(db))
    for statement in GO_TOOL_HISTORY:
        connection.execute(statement)
    connection.close()
    digest = sha(db)

    refused = run(["ccdash-migrate", "-x", "backup=false", "up"], root, env)
    assert refused.returncode == ExitCode.DATABASE_UNUSABLE, refused.stderr
    assert "migration_history table this tool did not make" in refused.stderr
    assert sha(db) == digest

    # the same file, in a project that names CCDash's application: CCDash's adopter takes the rows over
    ini = root / "alembic.ini"
    ini.write_text(ini.read_text() + f"\n[ccdash_alembic]\napplication = {CCDASH}\n")
    adopted = run(["ccdash-migrate", "-x", "backup=false", "up"], root, env)
    assert adopted.returncode == 0, adopted.stderr
    assert rows(db, "SELECT version, direction FROM migration_history ORDER BY id") == [
        ("20250801000000", "import"),
        ("0001", "up"),
    ]


@pytest.mark.parametrize(
    ("line", "env_py_application", "words"),
    [
        ("application = nowhere.at_all:APP", None, "cannot be loaded"),
        ("application = ccdash_alembic.errors:ExitCode", None, "not an Application"),
        ("application = ccdash_alembic.runtime.application", None, "package.module:NAME"),
        ("application = ccdash_alembic.runtime.application:GENERIC", "CCDASH", "Make the two agree"),
    ],
)
def test_a_wrong_application_is_refused_before_the_database_is_opened(
    tmp_path: Path, line: str, env_py_application: str | None, words: str
) -> None:
    root, env = init_project(tmp_path)
    use_run(root)
    if env_py_application:
        env_py = root / "migrations" / "env.py"
        text = env_py.read_text().replace(
            "run(context, target_metadata)",
            textwrap.dedent(
                f"""\
                from ccdash_alembic.ccdash.application import {env_py_application}

                run(context, target_metadata, application={env_py_application})"""
            ),
        )
        env_py.write_text(text)
    write_revisions(root, TABLES)
    ini = root / "alembic.ini"
    ini.write_text(ini.read_text() + f"\n[ccdash_alembic]\n{line}\n")
    refused = run(["alembic", "upgrade", "head"], root, env)
    assert refused.returncode == ExitCode.USAGE, refused.stderr
    assert words in refused.stderr and "Traceback" not in refused.stderr
    assert not (root / "app.db").exists()
