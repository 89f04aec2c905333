"""The internals of Alembic, SQLAlchemy and argparse this package leans on, checked against the installed versions.

``ccdash_alembic/alembic_internals.py`` is the one module allowed to touch them. Each test here runs one of its
functions on the real libraries, so a release that renames or reshapes the detail fails here, by name, rather
than in a user's migration; and a scan keeps every other module from reaching into them directly.
"""

from __future__ import annotations

import argparse
import ast
import re
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import alembic
import alembic.context
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import CommandLine, Config
from alembic.ddl.impl import DefaultImpl
from alembic.operations import Operations
from alembic.operations.batch import BatchOperationsImpl
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import sqla_compat
from conftest import REPO

from ccdash_alembic import alembic_internals as internals
from ccdash_alembic.ddl import catalog
from ccdash_alembic.ddl.impl import DuckDBImpl
from ccdash_alembic.ddl.rebuild import PlanError

PACKAGE = REPO / "ccdash_alembic"
INTERNALS = PACKAGE / "alembic_internals.py"
# Underscore names that are documented public API, not internals: os._exit, and SQLAlchemy's Row._mapping
# (Row's public names start with "_" so as not to clash with column names).
DOCUMENTED = {"_exit", "_mapping"}


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def _required_range(distribution: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """``(lowest, first unsupported)`` of a ``name>=a,<b`` dependency in pyproject.toml."""
    dependencies = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    spec = next(d for d in dependencies if re.match(rf"{distribution}\s*[<>=]", d))
    found = re.fullmatch(rf"{distribution}\s*>=\s*([\d.]+)\s*,\s*<\s*([\d.]+)", spec.strip())
    assert found, f"{spec!r}: expected {distribution}>=LOW,<HIGH"
    return _version(found.group(1)), _version(found.group(2))


@pytest.mark.parametrize(
    ("distribution", "declared", "installed"),
    [
        ("alembic", internals.SUPPORTED_ALEMBIC, alembic.__version__),
        ("sqlalchemy", internals.SUPPORTED_SQLALCHEMY, sa.__version__),
    ],
)
def test_the_installed_version_is_one_the_internals_are_known_for(
    distribution: str, declared: tuple[tuple[int, ...], tuple[int, ...]], installed: str
) -> None:
    assert _required_range(distribution) == declared, "pyproject.toml and alembic_internals disagree"
    low, high = declared
    assert low <= _version(installed) < high, f"{distribution} {installed} is outside {declared}"


# --- Alembic --------------------------------------------------------------------------------------------------


def _script_directory(tmp_path: Path, env_py: str) -> Config:
    """A migration environment with no revisions, whose env.py is ``env_py``."""
    (tmp_path / "versions").mkdir()
    (tmp_path / "env.py").write_text(env_py)
    (tmp_path / "script.py.mako").write_text("")
    config = Config()
    config.set_main_option("script_location", str(tmp_path))
    return config


def test_environment_context_is_the_one_behind_the_alembic_context_module(tmp_path: Path) -> None:
    config = _script_directory(tmp_path, "")
    environment = EnvironmentContext(config, ScriptDirectory.from_config(config))
    assert internals.environment_context(alembic.context) is None  # no command is running
    with environment:
        assert internals.environment_context(alembic.context) is environment
    assert internals.environment_context(environment) is environment


def test_the_steps_function_is_wrapped_and_the_wrapper_chooses_the_steps() -> None:
    seen: list[tuple[str, ...]] = []

    def steps(heads: tuple[str, ...], context: MigrationContext) -> Iterable[Any]:
        raise AssertionError("the wrapper decides; the original is not called")

    def wrap(original: Any) -> Any:
        assert original is steps

        def chosen(heads: tuple[str, ...], context: MigrationContext) -> list[Any]:
            seen.append(tuple(heads))
            return []

        return chosen

    engine = sa.create_engine("sqlite://")
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"fn": steps})
        internals.wrap_migration_steps(context, wrap)
        context.run_migrations()
        assert seen == [()]  # an empty database is at no revision

        plain = MigrationContext.configure(connection)  # a command that runs no steps
        internals.wrap_migration_steps(plain, lambda original: pytest.fail("nothing to wrap"))


def test_every_statement_alembic_runs_passes_through_exec_and_default_exec_runs_it() -> None:
    passed: list[str] = []

    class Watching(DefaultImpl):
        def _exec(self, construct: Any, *args: Any, **kw: Any) -> Any:
            passed.append(type(construct).__name__)
            return internals.default_exec(self, construct, *args, **kw)

    engine = sa.create_engine("sqlite://")
    with engine.begin() as connection:
        impl = Watching(connection.dialect, connection, False, None, None, {})
        impl.create_table(sa.Table("t", sa.MetaData(), sa.Column("id", sa.Integer)))
        impl.add_column("t", sa.Column("name", sa.String))
        impl.execute("INSERT INTO t VALUES (1, 'a')")
        assert connection.exec_driver_sql("SELECT id, name FROM t").all() == [(1, "a")]
    assert passed == ["CreateTable", "AddColumn", "str"]  # op.execute hands its text over as it is


_CHECK_ENV = """
from pathlib import Path

import sqlalchemy as sa
from alembic import context

from ccdash_alembic import alembic_internals

with Path(context.config.get_main_option("record")).open("a") as record:
    record.write(f"{alembic_internals.in_alembic_check()}\\n")
with sa.create_engine("sqlite://").connect() as connection:
    context.configure(connection=connection, target_metadata=sa.MetaData())
    with context.begin_transaction():
        context.run_migrations()
"""


def test_alembic_check_is_told_apart_from_other_commands(tmp_path: Path) -> None:
    config = _script_directory(tmp_path, _CHECK_ENV)
    record = tmp_path / "record.txt"
    config.set_main_option("record", str(record))
    command.check(config)
    command.current(config)
    assert record.read_text().split() == ["True", "False"]
    assert not internals.in_alembic_check()


def _item_table(connection: sa.Connection) -> Operations:
    """Operations on a connection holding ``item`` (two rows) and ``tag``, which references it."""
    connection.exec_driver_sql("CREATE TABLE item (id INTEGER PRIMARY KEY, name VARCHAR, n INTEGER)")
    connection.exec_driver_sql("INSERT INTO item VALUES (1, 'a', 10), (2, 'b', 20)")
    connection.exec_driver_sql("CREATE TABLE tag (item_id INTEGER REFERENCES item (id), label VARCHAR)")
    connection.exec_driver_sql("INSERT INTO tag VALUES (1, 'x')")
    return Operations(MigrationContext.configure(connection))


def test_the_routed_flush_replaces_alembics_own() -> None:
    alembic_flush = internals._alembic_flush
    assert (alembic_flush.__module__, alembic_flush.__qualname__) == (
        "alembic.operations.batch",
        "BatchOperationsImpl.flush",
    )
    assert BatchOperationsImpl.flush is internals._routed_flush  # installed when the DuckDB implementation loads


def test_a_batch_block_ends_in_flush_holding_what_the_route_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    flushed: list[BatchOperationsImpl] = []
    seen: dict[str, Any] = {}
    routed = BatchOperationsImpl.flush

    def watching(batch: BatchOperationsImpl) -> None:
        flushed.append(batch)
        seen.update(
            impl=batch.impl,
            table_name=batch.table_name,
            schema=batch.schema,
            recreate=batch.recreate,
            partial_reordering=batch.partial_reordering,
            batch=list(batch.batch),
        )
        routed(batch)

    monkeypatch.setattr(BatchOperationsImpl, "flush", watching)
    engine = sa.create_engine("duckdb:///:memory:")
    with engine.begin() as connection:
        op = _item_table(connection)
        assert isinstance(op.impl, DuckDBImpl)
        with op.batch_alter_table("item", schema="main", recreate="always") as batch_op:
            batch_op.add_column(sa.Column("note", sa.String))
            batch_op.alter_column("n", type_=sa.BigInteger)
            batch_op.drop_column("name")
            assert flushed == []  # the block only collects its operations...
            assert "note" not in [c.name for c in catalog.read_table(connection, "item").columns]
        assert len(flushed) == 1  # ...and its end flushes them, once
        assert seen["impl"] is op.impl
        assert (seen["table_name"], seen["schema"], seen["recreate"]) == ("item", "main", "always")
        assert not seen["partial_reordering"]
        assert [name for name, _, _ in seen["batch"]] == ["add_column", "alter_column", "drop_column"]
        for name, args, kw in seen["batch"]:
            assert callable(getattr(DefaultImpl, name)), name  # the implementation method that runs it
            assert isinstance(args, tuple) and args[0] == "item" and isinstance(kw, dict)
            assert kw["schema"] == "main"
        assert seen["batch"][0][1][1].name == "note" and seen["batch"][1][1][1] == "n"
        assert seen["batch"][1][2]["type_"] is not None

        # the route took the block to the planner: Alembic's own copy would have failed on the referenced table
        table = catalog.read_table(connection, "item")
        assert [(c.name, c.type) for c in table.columns] == [("id", "INTEGER"), ("n", "BIGINT"), ("note", "VARCHAR")]
        assert connection.exec_driver_sql("SELECT id, n FROM item ORDER BY id").all() == [(1, 10), (2, 20)]
        assert connection.exec_driver_sql("SELECT item_id, label FROM tag").all() == [(1, "x")]


def test_a_batch_blocks_partial_reordering_reaches_the_route() -> None:
    engine = sa.create_engine("duckdb:///:memory:")
    with engine.begin() as connection:
        op = _item_table(connection)
        reordered = op.batch_alter_table("item", recreate="always", partial_reordering=[("n", "name")])
        with pytest.raises(PlanError, match="cannot reorder columns"), reordered as batch_op:
            batch_op.add_column(sa.Column("note", sa.String))


def test_ensure_scope_for_ddl_opens_a_transaction_only_when_none_is_open() -> None:
    scope = sqla_compat._ensure_scope_for_ddl
    assert scope is internals._ensure_scope_for_ddl
    engine = sa.create_engine("duckdb:///:memory:")
    with engine.connect() as connection:
        assert not connection.in_transaction()
        with scope(connection):
            assert connection.in_transaction()
            connection.exec_driver_sql("CREATE TABLE t (id INTEGER)")
        assert not connection.in_transaction()  # committed at the end of the scope
        with connection.begin() as outer:
            with scope(connection):
                assert connection.in_transaction()
                connection.exec_driver_sql("INSERT INTO t VALUES (1)")
            assert connection.in_transaction()  # the caller's transaction goes on
            outer.rollback()
        assert connection.exec_driver_sql("SELECT count(*) FROM t").scalar() == 0
    with scope(None):  # --sql mode: no connection
        pass


def test_a_duckdb_batch_block_outside_a_transaction_runs_in_one_of_its_own() -> None:
    engine = sa.create_engine("duckdb:///:memory:")
    with engine.connect() as connection:
        op = _item_table(connection)
        connection.commit()
        with op.batch_alter_table("item") as batch_op:
            batch_op.alter_column("n", type_=sa.BigInteger)
        assert not connection.in_transaction()  # begun and committed by the block's end, as Alembic's flush does
        assert [c.type for c in catalog.read_table(connection, "item").columns] == ["INTEGER", "VARCHAR", "BIGINT"]


def test_a_batch_block_on_another_database_keeps_alembics_own_flush() -> None:
    statements: list[str] = []
    engine = sa.create_engine("sqlite://")
    sa.event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE item (id INTEGER PRIMARY KEY, name VARCHAR, n INTEGER)")
        connection.exec_driver_sql("INSERT INTO item VALUES (1, 'a', 10), (2, 'b', 20)")
        op = Operations(MigrationContext.configure(connection))
        assert not isinstance(op.impl, DuckDBImpl)
        with op.batch_alter_table("item", recreate="always") as batch_op:
            batch_op.drop_column("name")
        assert any(re.match(r"\s*CREATE TABLE _alembic_tmp_item\b", s) for s in statements)  # Alembic's copy
        assert any(re.match(r"\s*ALTER TABLE _alembic_tmp_item RENAME TO item\b", s) for s in statements)
        assert connection.exec_driver_sql("SELECT * FROM item ORDER BY id").all() == [(1, 10), (2, 20)]


# --- SQLAlchemy -----------------------------------------------------------------------------------------------


def test_a_constraint_is_wanted_by_its_create_rule() -> None:
    table = sa.Table(
        "t",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("flag", sa.Boolean(create_constraint=True)),
    )
    checks = [c for c in table.constraints if isinstance(c, sa.CheckConstraint)]
    assert len(checks) == 1  # the rule-bound CHECK (flag IN (0, 1)) a Boolean makes
    duckdb_impl = MigrationContext.configure(dialect_name="duckdb").impl
    sqlite_impl = MigrationContext.configure(dialect_name="sqlite").impl
    assert not internals.constraint_wanted(checks[0], duckdb_impl)  # DuckDB has a BOOLEAN type
    assert internals.constraint_wanted(checks[0], sqlite_impl)  # SQLite needs the CHECK
    assert table.primary_key is not None
    assert internals.constraint_wanted(table.primary_key, duckdb_impl)  # no rule: always


def test_a_foreign_key_spec_is_what_it_was_declared_with() -> None:
    parent = sa.Table("parent", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True))
    by_name = sa.ForeignKey("parent.id")
    by_column = sa.ForeignKey(parent.c.id)
    assert internals.foreign_key_spec(by_name) == "parent.id"
    assert internals.foreign_key_spec(by_column) is parent.c.id


# --- argparse -------------------------------------------------------------------------------------------------


def _help(parser: argparse.ArgumentParser) -> str:
    return parser.format_help()


def test_a_subcommand_is_removed_from_parsing_and_help() -> None:
    cli = CommandLine(prog="tool")
    assert re.search(r"^\s+history\b", _help(cli.parser), re.MULTILINE)
    internals.remove_subcommand(cli.subparsers, "history")
    assert not re.search(r"^\s+history\b", _help(cli.parser), re.MULTILINE)
    with pytest.raises(SystemExit):
        cli.parser.parse_args(["history"])
    assert cli.parser.parse_args(["current"]).cmd  # the others stay


def test_a_subcommand_is_renamed_in_parsing_usage_and_help() -> None:
    cli = CommandLine(prog="tool")
    internals.rename_subcommand(cli.subparsers, "list_templates", "list-templates")
    assert cli.parser.parse_args(["list-templates"]).cmd
    with pytest.raises(SystemExit):
        cli.parser.parse_args(["list_templates"])
    help_text = _help(cli.parser)
    assert re.search(r"^\s+list-templates\b", help_text, re.MULTILINE)
    assert "list_templates" not in help_text
    assert cli.subparsers.choices["list-templates"].prog == "tool list-templates"


def test_an_option_action_is_found_by_its_flag() -> None:
    cli = CommandLine(prog="tool")
    action = internals.option_action(cli.parser, "--config")
    assert action is not None and action.dest == "config" and "-c" in action.option_strings
    action.help = "where the settings are"
    assert "where the settings are" in _help(cli.parser)
    assert internals.option_action(cli.parser, "--no-such-option") is None


# --- nowhere else -------------------------------------------------------------------------------------------


def private_uses(source: str, where: str) -> list[str]:
    """Every ``x._name`` (``x`` not ``self`` or ``cls``) and every ``getattr(x, "_name")`` in a module's source,
    dunders aside: the ways code reaches a private attribute of another library's object."""
    found = []
    for node in ast.walk(ast.parse(source, where)):
        name = None
        if isinstance(node, ast.Attribute):
            if not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
                name = node.attr
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "setattr", "hasattr", "delattr")
            and len(node.args) > 1
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
        ):
            name = node.args[1].value
        if name and name.startswith("_") and not name.startswith("__") and name not in DOCUMENTED:
            found.append(f"{where}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_private_internals_are_used_in_alembic_internals_only() -> None:
    outside = [
        use
        for path in sorted(PACKAGE.rglob("*.py"))
        if path != INTERNALS
        for use in private_uses(path.read_text(), str(path.relative_to(REPO)))
    ]
    assert outside == [], "move these into ccdash_alembic/alembic_internals.py:\n" + "\n".join(outside)


def test_the_scan_finds_each_way_of_reaching_a_private_attribute() -> None:
    source = (
        "def f(parser, context, os):\n"
        "    parser._actions\n"
        "    getattr(context, '_proxy', None)\n"
        "    super()._exec(1)\n"
        "    self._mine, cls._ours, parser.__class__, getattr(context, 'public'), os._exit(0), row._mapping\n"
    )
    uses = [use.split(": ", 1)[1] for use in private_uses(source, "sample.py")]
    assert uses == ["parser._actions", "getattr(context, '_proxy', None)", "super()._exec"]
