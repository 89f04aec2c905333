"""Wires SQLAlchemy's pytest plugin to DuckDB, as external dialects (sqlalchemy-cockroachdb) do."""

import pytest
from sqlalchemy.testing import provision

import ccdash_alembic  # noqa: F401  (registers the dialect and the Alembic implementation)

pytest.register_assert_rewrite("sqlalchemy.testing.assertions")


@provision.generate_driver_url.for_db("duckdb")
def _duckdb_url(url, driver, query_str):
    """duckdb-engine has one driver; the URL is used as given."""
    return url


from sqlalchemy.testing.plugin.pytestplugin import *  # noqa: E402,F403
