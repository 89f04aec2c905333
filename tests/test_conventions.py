"""Alembic's conventions: a connection handed over in ``config.attributes``, ``sqlalchemy.url``, the order in
which the database is chosen, and revision files whose name and id agree however they are made."""

from __future__ import annotations

import re
from argparse import Namespace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from conftest import Project, hold, items_revisions, locked_from_outside

from ccdash_alembic.errors import DataLossRefused, ExitCode


@pytest.fixture(autouse=True)
def _no_real_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process runs see a HOME of their own and no $CCDASH_DB_PATH: a run that ignored the connection it
    was handed would otherwise migrate the real default database."""
    (tmp_path / "process-home").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "process-home"))
    monkeypatch.delenv("CCDASH_DB_PATH", raising=False)


def _config(project: Project, *x: str) -> Config:
    """The project's configuration as a program builds it (Alembic's Python API), with ``-x`` arguments."""
    config = Config(str(project.root / "alembic.ini"))
    config.cmd_opts = Namespace(x=list(x), quiet=True, raiseerr=True)
    return config


def _database_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("Database: ")]
    assert len(lines) == 1, stderr
    return lines[0]


def _set_url(project: Project, value: str) -> None:
    """Write ``sqlalchemy.url = value`` into the project's [alembic] section."""
    ini = project.root / "alembic.ini"
    ini.write_text(ini.read_text().replace("[alembic]\n", f"[alembic]\nsqlalchemy.url = {value}\n", 1))


def test_a_file_connection_handed_over_is_used_and_keeps_its_lock(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    items_revisions(project)
    monkeypatch.setenv("HOME", str(project.home))
    monkeypatch.delenv("CCDASH_DB_PATH", raising=False)
    project.db.parent.mkdir(parents=True)
    engine = sa.create_engine(f"duckdb:///{project.db}")
    with engine.connect() as connection:
        config = _config(project)
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
        # the run used this connection: it sees the result, and the lock it holds was never dropped (opening
        # the file a second time in this process, then closing it, would have released it)
        assert connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == "20250101000003"
        assert connection.exec_driver_sql("SELECT count(*) FROM migration_history").scalar() == 3
        assert locked_from_outside(project.db)
        connection.exec_driver_sql("INSERT INTO items (id, name) VALUES (1, 'kept')")
        connection.commit()
        # a downgrade that drops a column holding data: the path was learned from the connection, so a
        # backup is made (by a child process) and the step is allowed
        command.downgrade(config, "20250101000001")
        assert locked_from_outside(project.db)
        assert connection.exec_driver_sql("SELECT count(*) FROM items").scalar() == 1
    engine.dispose()
    report = config.attributes["ccdash_alembic.report"]
    assert report.backup is not None and report.backup.parent == project.db.parent and report.backup.is_dir()
    assert not (project.home / ".ccdash").exists()


def test_a_connection_in_the_callers_transaction_is_left_to_the_caller(project: Project) -> None:
    items_revisions(project, count=1)
    engine = sa.create_engine("duckdb:///:memory:", poolclass=sa.pool.StaticPool)
    with engine.connect() as connection:
        transaction = connection.begin()  # Alembic's cookbook: the caller's transaction
        config = _config(project)
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
        assert transaction.is_active and connection.in_transaction()
        assert connection.exec_driver_sql("SELECT count(*) FROM items").scalar() == 0  # made, in its transaction
        transaction.rollback()
        # rolled back by the caller, so the run committed nothing of its own
        assert (
            connection.exec_driver_sql("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'items'").scalar() == 0
        )


def test_an_in_memory_connection_gets_no_backup_so_data_loss_asks(project: Project) -> None:
    items_revisions(project, count=2)
    engine = sa.create_engine("duckdb:///:memory:", poolclass=sa.pool.StaticPool)
    with engine.connect() as connection:
        config = _config(project)
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
        connection.exec_driver_sql("INSERT INTO items VALUES (1, 'precious')")
        connection.commit()
        with pytest.raises(DataLossRefused):
            command.downgrade(config, "20250101000001")
        assert connection.exec_driver_sql("SELECT name FROM items").scalar() == "precious"
        confirmed = _config(project, "confirm_data_loss=true")
        confirmed.attributes["connection"] = connection
        command.downgrade(confirmed, "20250101000001")
        assert connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == "20250101000001"
        assert confirmed.attributes["ccdash_alembic.report"].backup is None


def test_the_handed_over_connection_comes_before_x_db(project: Project, tmp_path: Path) -> None:
    items_revisions(project, count=1)
    named = tmp_path / "named.db"
    engine = sa.create_engine("duckdb:///:memory:", poolclass=sa.pool.StaticPool)
    with engine.connect() as connection:
        config = _config(project, f"db={named}")
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
        assert connection.exec_driver_sql("SELECT count(*) FROM alembic_version").scalar() == 1
    assert not named.exists()


def test_something_else_handed_over_is_refused(project: Project) -> None:
    items_revisions(project, count=1)
    config = _config(project)
    config.attributes["connection"] = "duckdb:///x.db"
    with pytest.raises(Exception, match="not a SQLAlchemy connection"):
        command.upgrade(config, "head")


def test_sqlalchemy_url_is_honoured_and_the_order_holds(project: Project, tmp_path: Path) -> None:
    items_revisions(project, count=1)
    _set_url(project, "duckdb:///%(here)s/from_ini.db")
    from_ini = project.root / "from_ini.db"
    from_env = tmp_path / "env.db"
    env = project.env(CCDASH_DB_PATH=str(from_env))

    # -x db, then sqlalchemy.url, then $CCDASH_DB_PATH, then the default
    named = tmp_path / "named.db"
    result = project.alembic("upgrade", "head", db=named, env=env)
    assert result.returncode == 0, result.stderr
    assert _database_line(result.stderr) == f"Database: {named} (from -x db)"
    result = project.alembic("upgrade", "head", pass_db=False, env=env)
    assert result.returncode == 0, result.stderr
    assert _database_line(result.stderr) == f"Database: {from_ini} (from sqlalchemy.url)"
    assert from_ini.exists() and not from_env.exists()
    status = project.migrate("status", pass_db=False, env=env)  # a command that never runs env.py agrees
    assert status.returncode == 0, status.stderr
    assert _database_line(status.stderr) == f"Database: {from_ini} (from sqlalchemy.url)"

    ini = project.root / "alembic.ini"
    ini.write_text(re.sub(r"sqlalchemy\.url = .*\n", "", ini.read_text()))
    result = project.alembic("upgrade", "head", pass_db=False, env=env)
    assert _database_line(result.stderr) == f"Database: {from_env} (from CCDASH_DB_PATH)"
    result = project.alembic("upgrade", "head", pass_db=False)
    assert _database_line(result.stderr) == f"Database: {project.home / '.ccdash' / 'ccdash.db'} (from default)"


@pytest.mark.parametrize("value", ["", "   "])
def test_an_empty_sqlalchemy_url_is_refused(project: Project, value: str) -> None:
    items_revisions(project, count=1)
    _set_url(project, value)
    for run in (project.alembic, project.migrate):
        result = run("upgrade", "head", pass_db=False)
        assert result.returncode == ExitCode.USAGE, result.stderr
        assert "sqlalchemy.url is empty" in result.stderr and "Traceback" not in result.stderr
    assert not (project.home / ".ccdash").exists()


def test_sqlalchemy_url_that_is_not_a_duckdb_file_is_refused(project: Project) -> None:
    items_revisions(project, count=1)
    for value in ("driver://user:pass@localhost/dbname", "duckdb:///:memory:", "sqlite:///x.db"):
        ini = project.root / "alembic.ini"
        ini.write_text(re.sub(r"sqlalchemy\.url = .*\n", "", ini.read_text()))
        _set_url(project, value)
        result = project.alembic("upgrade", "head", pass_db=False)
        assert result.returncode == ExitCode.USAGE, (value, result.stderr)
    assert not (project.home / ".ccdash").exists()


def _revision_files(project: Project) -> dict[str, str]:
    """File name -> the revision id written in it, for every revision file."""
    found = {}
    for path in sorted(project.versions.glob("*.py")):
        match = re.search(r"^revision: str = '(\d+|[0-9a-f]+)'$", path.read_text(), re.M) or re.search(
            r"^revision = '(\w+)'$", path.read_text(), re.M
        )
        assert match, path
        found[path.name] = match[1]
    return found


def test_stock_revisions_in_the_same_second_agree_with_their_files(project: Project) -> None:
    # a parent from later than now: each new revision must move past it as one made in its second would
    parent = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y%m%d%H%M%S")
    project.write_revision(parent, None, message="later")
    for message in ("first", "second"):
        result = project.alembic("revision", "-m", message, pass_db=False)
        assert result.returncode == 0, result.stderr
    stamp = datetime.strptime(parent, "%Y%m%d%H%M%S")
    first, second = ((stamp + timedelta(seconds=n)).strftime("%Y%m%d%H%M%S") for n in (1, 2))
    files = _revision_files(project)
    assert files[f"{first}_first.py"] == first and files[f"{second}_second.py"] == second
    # two more at once, as fast as the clock allows: whatever seconds they get, names and ids agree
    for message in ("third", "fourth"):
        assert project.alembic("revision", "-m", message, pass_db=False).returncode == 0
    assert project.migrate("create", "-m", "fifth").returncode == 0
    for name, revision in _revision_files(project).items():
        assert name.startswith(revision + "_"), (name, revision)
    result = project.migrate("validate")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "args",
    [["-m", "step"], ["-m", "Step!"], ["-m", ""], [], ["-m", "café"], ["-m", "a\nb"], ["-m", "a\tb"]],
)
def test_stock_revision_refuses_what_create_refuses_and_writes_nothing(project: Project, args: list[str]) -> None:
    project.write_revision("20250101000001", None, message="step")
    before = sorted(p.name for p in project.root.rglob("*"))
    stock = project.alembic("revision", *args, pass_db=False)
    create = project.migrate("create", *args, pass_db=False)
    assert stock.returncode == create.returncode == ExitCode.USAGE, (stock.stderr, create.stderr)
    assert "Traceback" not in stock.stderr + create.stderr
    assert sorted(p.name for p in project.root.rglob("*")) == before


def test_a_new_revision_opens_no_database(project: Project) -> None:
    items_revisions(project, count=1)
    assert project.alembic("upgrade", "head").returncode == 0
    holder = hold(project.db)
    try:
        result = project.alembic("-x", "lock_timeout=0", "revision", "-m", "while held")
        assert result.returncode == 0, result.stderr
        assert "Database:" not in result.stderr
        merged = project.alembic("-x", "lock_timeout=0", "merge", "heads", "-m", "merge")
        assert merged.returncode == 0, merged.stderr
    finally:
        holder.kill()
        holder.wait()
    for name, revision in _revision_files(project).items():
        assert name.startswith(revision + "_"), (name, revision)


def test_autogenerate_names_its_file_by_the_id_it_chose(project: Project) -> None:
    project.write_revision("20250101000001", None, message="empty")
    assert project.alembic("upgrade", "head").returncode == 0
    result = project.alembic("revision", "--autogenerate", "-m", "the model")
    assert result.returncode == 0, result.stderr
    made = [n for n in _revision_files(project) if n.endswith("_the_model.py")]
    assert len(made) == 1 and _revision_files(project)[made[0]] == made[0].split("_", 1)[0]


def test_the_default_database_is_untouched_by_a_handed_over_engine(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    items_revisions(project)
    monkeypatch.setenv("HOME", str(project.home))
    monkeypatch.delenv("CCDASH_DB_PATH", raising=False)
    canary = project.home / ".ccdash" / "ccdash.db"
    canary.parent.mkdir(parents=True)
    writer = duckdb.connect(str(canary))
    writer.execute("CREATE TABLE kept AS SELECT 'by hand' AS note")
    writer.close()
    before = canary.read_bytes()
    engine = sa.create_engine(f"duckdb:///{tmp_path / 'temporary.db'}")
    config = _config(project)
    config.attributes["connection"] = engine  # as pytest-alembic hands it over
    command.upgrade(config, "head")
    command.downgrade(config, "base")
    command.upgrade(config, "head")
    engine.dispose()
    assert canary.read_bytes() == before
    assert sorted(p.name for p in canary.parent.iterdir()) == ["ccdash.db"]
