"""The run's policy: built once from the options, and read by the DuckDB implementation from its context options.

What the policy makes a run do (refuse a step that loses data, accept a changed file) is exercised end to end
in test_data_loss.py and test_history.py; these check the one value both layers read.
"""

from __future__ import annotations

import pytest
from alembic.runtime.migration import MigrationContext

from ccdash_alembic.ddl.impl import DuckDBImpl
from ccdash_alembic.policy import POLICY_OPTION, UNGUARDED, RunPolicy
from ccdash_alembic.runtime import preflight
from ccdash_alembic.runtime.settings import Settings


def _impl(**opts: object) -> DuckDBImpl:
    impl = MigrationContext.configure(dialect_name="duckdb", opts=opts).impl
    assert isinstance(impl, DuckDBImpl)
    return impl


@pytest.mark.parametrize(
    ("backup", "existing", "confirm", "allowed"),
    [
        (True, True, False, True),  # a copy is made before the first step
        (True, False, False, False),  # nothing to copy: no backup, so no loss without confirmation
        (False, True, False, False),  # backups off
        (False, True, True, True),  # confirmed
        (False, False, True, True),
    ],
)
def test_data_loss_is_allowed_by_a_backup_or_a_confirmation(
    backup: bool, existing: bool, confirm: bool, allowed: bool
) -> None:
    rules = preflight.policy(Settings(backup=backup, confirm_data_loss=confirm), existing=existing)
    assert rules.backup == (backup and existing)
    assert rules.data_loss_allowed is allowed
    assert _impl(**{POLICY_OPTION: rules}).data_loss_allowed is allowed


def test_accepting_changed_files_comes_from_the_option() -> None:
    assert preflight.policy(Settings(accept_changed=True), existing=True).accept_changed
    assert not preflight.policy(Settings(), existing=True).accept_changed


def test_without_a_policy_the_implementation_behaves_as_plain_alembic() -> None:
    assert _impl().data_loss_allowed
    assert UNGUARDED.data_loss_allowed


def test_the_policy_cannot_be_changed_once_built() -> None:
    rules = RunPolicy()
    with pytest.raises(AttributeError):
        rules.confirm_data_loss = True  # type: ignore[misc]
