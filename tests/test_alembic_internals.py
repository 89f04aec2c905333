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
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from conftest import REPO

from ccdash_alembic import alembic_internals as internals

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
