"""Alembic's dialect suite.

The tests skipped below ask for what DuckDB cannot do but are gated by no requirement that says so (or by
one that also gates tests DuckDB passes), so they are skipped one by one, each with its reason.
"""

from alembic.testing.suite import *  # noqa: F403
from alembic.testing.suite import AutogenerateFKOptionsTest as _AutogenerateFKOptionsTest
from alembic.testing.suite import AutogenerateForeignKeysTest as _AutogenerateForeignKeysTest
from sqlalchemy.testing import skip


class AutogenerateFKOptionsTest(_AutogenerateFKOptionsTest):
    @skip("duckdb", "DuckDB rejects ON DELETE CASCADE: its foreign keys have no actions but NO ACTION")
    def test_nochange_ondelete(self):
        pass

    @skip("duckdb", "DuckDB rejects ON UPDATE CASCADE: its foreign keys have no actions but NO ACTION")
    def test_nochange_onupdate(self):
        pass

    @skip("duckdb", "changes a foreign key to ON DELETE CASCADE, which DuckDB rejects")
    def test_change_ondelete_from_restrict(self):
        pass

    @skip("duckdb", "changes a foreign key to ON UPDATE CASCADE, which DuckDB rejects")
    def test_change_onupdate_from_restrict(self):
        pass


class AutogenerateForeignKeysTest(_AutogenerateForeignKeysTest):
    @skip("duckdb", "expects the foreign key name fk_test_name back; DuckDB keeps no constraint names")
    def test_remove_composite_fk(self):
        pass
