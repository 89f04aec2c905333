"""What DuckDB supports, for Alembic's dialect suite.

A requirement is closed only for what DuckDB itself lacks, and its reason (what pytest prints for every test
it skips) names that. Left open: foreign keys declared RESTRICT or NO ACTION (``fk_onupdate``,
``fk_ondelete_restrict``, ...), which DuckDB accepts, and VIRTUAL computed columns (``computed_columns``).
"""

from alembic.testing import exclusions
from alembic.testing.requirements import SuiteRequirements

NO_FK_ACTIONS = (
    "DuckDB foreign keys have no ON DELETE / ON UPDATE actions: it refuses CASCADE, SET NULL and SET DEFAULT,"
    " and keeps RESTRICT as NO ACTION"
)
NO_IDENTITY = "DuckDB has no GENERATED ... AS IDENTITY columns (autoincrement keys are sequence defaults instead)"
NO_DEFERRABLE = "DuckDB constraints cannot be DEFERRABLE nor INITIALLY DEFERRED / IMMEDIATE"


class DuckDBRequirements(SuiteRequirements):
    @property
    def computed_columns(self):
        """DuckDB has generated columns (VIRTUAL only; the dialect refuses ``persisted=True``)."""
        return exclusions.open()

    @property
    def identity_columns(self):
        return exclusions.closed(NO_IDENTITY)

    @property
    def identity_columns_alter(self):
        return exclusions.closed(NO_IDENTITY)

    @property
    def reflects_pk_names(self):
        """DuckDB forgets constraint names; the layer keeps the names it creates them with (primary keys too)
        and reflection reports them (``ccdash_alembic/ddl/constraint_names.py``)."""
        return exclusions.open()

    @property
    def fk_actions(self):
        """Foreign keys with CASCADE, SET NULL or SET DEFAULT (no suite requirement says so; test_suite.py
        applies this one to the tests that use them)."""
        return exclusions.closed(NO_FK_ACTIONS)

    @property
    def fk_ondelete_is_reflected(self):
        return exclusions.closed(NO_FK_ACTIONS)

    @property
    def fk_onupdate_is_reflected(self):
        return exclusions.closed(NO_FK_ACTIONS)

    @property
    def fk_initially(self):
        return exclusions.closed(NO_DEFERRABLE)

    @property
    def fk_deferrable(self):
        return exclusions.closed(NO_DEFERRABLE)

    @property
    def fk_deferrable_is_reflected(self):
        return exclusions.closed(NO_DEFERRABLE)

    @property
    def autocommit_isolation(self):
        """The dialect's AUTOCOMMIT level begins no transaction, so each statement commits on its own."""
        return exclusions.open()

    @property
    def autoincrement_on_composite_pk(self):
        """An explicit ``autoincrement=True`` column in a composite key gets its sequence default like a
        single-column key."""
        return exclusions.open()
