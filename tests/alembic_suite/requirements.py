"""What DuckDB supports, for Alembic's dialect suite. Every closed requirement says why."""

from alembic.testing import exclusions
from alembic.testing.requirements import SuiteRequirements


class DuckDBRequirements(SuiteRequirements):
    @property
    def computed_columns(self):
        """DuckDB has generated columns (VIRTUAL only)."""
        return exclusions.open()

    @property
    def identity_columns(self):
        """DuckDB has no GENERATED ... AS IDENTITY; autoincrement keys are sequence defaults instead."""
        return exclusions.closed()

    @property
    def identity_columns_alter(self):
        """No identity columns in DuckDB (see identity_columns)."""
        return exclusions.closed()

    @property
    def foreign_key_name_reflection(self):
        """DuckDB keeps no constraint names: it reports generated ones (t_col_fkey) whatever the DDL said."""
        return exclusions.closed()

    @property
    def reflects_pk_names(self):
        """DuckDB keeps no constraint names (see foreign_key_name_reflection)."""
        return exclusions.closed()

    @property
    def fk_ondelete_is_reflected(self):
        """DuckDB does not keep a foreign key's ON DELETE action (NO ACTION is the only one it has)."""
        return exclusions.closed()

    @property
    def fk_onupdate_is_reflected(self):
        """DuckDB does not keep a foreign key's ON UPDATE action (NO ACTION is the only one it has)."""
        return exclusions.closed()

    @property
    def fk_initially(self):
        """DuckDB constraints cannot be INITIALLY DEFERRED / IMMEDIATE."""
        return exclusions.closed()

    @property
    def fk_deferrable(self):
        """DuckDB constraints cannot be DEFERRABLE."""
        return exclusions.closed()

    @property
    def autocommit_isolation(self):
        """The dialect's AUTOCOMMIT level begins no transaction, so each statement commits on its own."""
        return exclusions.open()

    @property
    def autoincrement_on_composite_pk(self):
        """As in SQLAlchemy, autoincrement belongs to a single-column integer key; DuckDB adds nothing."""
        return exclusions.closed()
