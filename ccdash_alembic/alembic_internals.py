"""Every use of an Alembic, SQLAlchemy or argparse internal, in one place.

Each function here leans on a detail the library does not document (a private attribute, the shape of a
private list, the name of one of its functions). Keeping them together means one module to read when a
supported version changes, and ``tests/test_alembic_internals.py`` checks each one against the installed
versions so a change fails loudly there rather than quietly in a migration. The versions they are known to
hold for are ``SUPPORTED_ALEMBIC`` and ``SUPPORTED_SQLALCHEMY``, the ranges pyproject.toml requires.
"""

from __future__ import annotations

import argparse
import inspect
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from alembic.ddl.impl import DefaultImpl
from alembic.operations.batch import BatchOperationsImpl
from alembic.util.sqla_compat import _ensure_scope_for_ddl

# (lowest, first unsupported) versions, as pyproject.toml requires them: alembic>=1.20,<2, sqlalchemy>=2.1,<2.2
SUPPORTED_ALEMBIC: tuple[tuple[int, ...], tuple[int, ...]] = ((1, 20), (2,))
SUPPORTED_SQLALCHEMY: tuple[tuple[int, ...], tuple[int, ...]] = ((2, 1), (2, 2))

if TYPE_CHECKING:  # Alembic loads this package (a plugin of its) while Alembic itself is being imported
    from alembic.runtime.environment import EnvironmentContext
    from alembic.runtime.migration import MigrationContext

    StepsFunction = Callable[[tuple[str, ...], MigrationContext], Iterable[Any]]


# --- Alembic --------------------------------------------------------------------------------------------------


def environment_context(context: object) -> EnvironmentContext | None:
    """The ``EnvironmentContext`` behind what env.py calls ``context``: env.py passes the ``alembic.context``
    module, which forwards methods only; the context itself (and the options its command gave it,
    ``context_opts``) is the module's ``_proxy`` while a command runs, None otherwise."""
    from alembic.runtime.environment import EnvironmentContext

    if isinstance(context, EnvironmentContext):
        return context
    found = getattr(context, "_proxy", None)
    return found if isinstance(found, EnvironmentContext) else None


def wrap_migration_steps(migration_context: MigrationContext, wrap: Callable[[StepsFunction], StepsFunction]) -> None:
    """Replace the function that yields a command's steps with ``wrap(function)``: Alembic offers no hook before
    a step, and that function (``_migrations_fn``, set by ``configure(fn=...)``) is where the steps are chosen.
    Commands that run no steps (``current``, ``check``) have none, and are left as they are."""
    steps = migration_context._migrations_fn
    if steps is not None:
        migration_context._migrations_fn = wrap(steps)


def default_exec(impl: DefaultImpl, construct: Any, *args: Any, **kw: Any) -> Any:
    """Alembic's own ``DefaultImpl._exec``, for an implementation that overrides it: every statement Alembic
    runs or writes (``op.execute``, DDL, ``--sql`` output) passes through that one method, and through no
    public one."""
    return DefaultImpl._exec(impl, construct, *args, **kw)


def in_alembic_check() -> bool:
    """Whether Alembic's ``command.check`` is on the call stack: it runs the revision hooks to plan a revision
    it only compares, and says so nowhere else (it is known by its function's name and file)."""
    command_file = os.path.join("alembic", "command.py")
    frame = inspect.currentframe()
    while frame is not None:
        if frame.f_code.co_name == "check" and frame.f_code.co_filename.endswith(command_file):
            return True
        frame = frame.f_back
    return False


BatchOperation = tuple[str, tuple[Any, ...], dict[str, Any]]  # (DefaultImpl method name, args, kwargs)


@dataclass(frozen=True)
class BatchBlock:
    """What one ``batch_alter_table`` block asked for, handed over whole at its end."""

    table_name: str
    schema: str | None
    recreate: str
    operations: list[BatchOperation]
    partial_reordering: tuple[Any, ...]


_batch_routes: dict[type[DefaultImpl], Callable[[Any, BatchBlock], None]] = {}
_alembic_flush = BatchOperationsImpl.flush


def _routed_flush(batch: BatchOperationsImpl) -> None:
    run = next((run for cls, run in _batch_routes.items() if isinstance(batch.impl, cls)), None)
    if run is None:
        _alembic_flush(batch)
        return
    block = BatchBlock(
        batch.table_name, batch.schema, batch.recreate, list(batch.batch), tuple(batch.partial_reordering or ())
    )
    with _ensure_scope_for_ddl(batch.impl.connection):  # as Alembic's flush: a transaction if none is open
        run(batch.impl, block)


def route_batch_blocks(impl_class: type[DefaultImpl], run: Callable[[Any, BatchBlock], None]) -> None:
    """Make the end of every ``batch_alter_table`` block on an ``impl_class`` connection call ``run(impl, block)``
    instead of Alembic's own flush, whatever its ``recreate``: Alembic asks the implementation only under
    ``recreate="auto"`` (``requires_recreate_in_batch``), and copies the table itself under ``"always"``.

    Relies on ``BatchOperationsImpl.flush`` being what the block calls at its end, on its attributes ``impl``,
    ``table_name``, ``schema``, ``recreate``, ``partial_reordering`` and ``batch`` (the block's operations as
    ``(DefaultImpl method name, args, kwargs)``), and on ``alembic.util.sqla_compat._ensure_scope_for_ddl``.
    Blocks on any other implementation keep Alembic's flush."""
    _batch_routes[impl_class] = run
    BatchOperationsImpl.flush = _routed_flush  # type: ignore[method-assign, assignment]


# --- SQLAlchemy -----------------------------------------------------------------------------------------------


def constraint_wanted(constraint: sa.Constraint, impl: object) -> bool:
    """Whether a constraint is to be created on this database, by its ``_create_rule`` (set by types such as
    ``Boolean(create_constraint=...)`` and ``Enum``, and read the same way by Alembic's own ``add_constraint``)."""
    rule = constraint._create_rule
    return rule is None or bool(rule(impl))


def constraint_name(constraint: sa.Constraint, dialect: sa.Dialect) -> str | None:
    """The name a constraint is created with on ``dialect``: its own, or the one its metadata's naming
    convention gives it (which SQLAlchemy may work out only as the DDL is compiled); None when it has none."""
    if constraint.name is None:
        return None
    name = dialect.identifier_preparer.format_constraint(constraint, _alembic_quote=False)
    return None if name is None else str(name)


def foreign_key_spec(element: sa.ForeignKey) -> Any:
    """What a foreign key was declared to refer to (``"table.column"``, or a ``Column``), as given."""
    return element._colspec


# --- argparse -------------------------------------------------------------------------------------------------


def remove_subcommand(subparsers: argparse._SubParsersAction[Any], name: str) -> None:
    """Drop a subcommand, so one of the same name can take its place: argparse has no public way to remove one
    (its parsers are in ``_name_parser_map``, its help lines in ``_choices_actions``)."""
    subparsers._name_parser_map.pop(name)
    subparsers._choices_actions[:] = [a for a in subparsers._choices_actions if a.dest != name]


def rename_subcommand(subparsers: argparse._SubParsersAction[Any], name: str, typed: str) -> None:
    """Let a subcommand be typed as ``typed`` (``import-sql`` for ``import_sql``), in its usage and help too."""
    subparser = subparsers._name_parser_map.pop(name)
    subparsers._name_parser_map[typed] = subparser
    subparser.prog = subparser.prog.replace(name, typed)
    for action in subparsers._choices_actions:
        if action.dest == name:
            action.dest = action.metavar = typed


def option_action(parser: argparse.ArgumentParser, option: str) -> argparse.Action | None:
    """The action of an option another module added (Alembic's ``--config``), to change its help: argparse
    keeps its actions in the private ``_actions`` list only."""
    return next((a for a in parser._actions if option in a.option_strings), None)
