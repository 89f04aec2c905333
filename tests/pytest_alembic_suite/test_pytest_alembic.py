"""pytest-alembic's four standard tests, on CCDash's migrations (fixtures in conftest.py)."""

from pytest_alembic.tests import (  # noqa: F401  (imported to be collected, as pytest-alembic documents)
    test_model_definitions_match_ddl,
    test_single_head_revision,
    test_up_down_consistency,
    test_upgrade,
)
