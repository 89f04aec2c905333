"""The two fixtures pytest-alembic asks a project for, set up the standard way: the migration environment's
``alembic.ini`` (a copy of the repository's, in ``$PYTEST_ALEMBIC_ENVIRONMENT``) and an engine on a new
DuckDB file (in ``$PYTEST_ALEMBIC_DATABASES``, named after the test), or, when ``$PYTEST_ALEMBIC_SERVER``
gives a PostgreSQL server's URL, on a new database of that server named after the test. pytest-alembic hands
the engine to env.py in ``config.attributes["connection"]``; nothing here names a database any other way."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import alembic.config
import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool


@pytest.fixture
def alembic_config() -> alembic.config.Config:
    return alembic.config.Config(str(Path(os.environ["PYTEST_ALEMBIC_ENVIRONMENT"]) / "alembic.ini"))


@pytest.fixture
def alembic_engine(request: pytest.FixtureRequest) -> Iterator[sa.Engine]:
    server = os.environ.get("PYTEST_ALEMBIC_SERVER")
    if server:
        with sa.create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT").connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{request.node.name}"')
        engine = sa.create_engine(f"{server}/{request.node.name}", poolclass=NullPool)
    else:
        path = Path(os.environ["PYTEST_ALEMBIC_DATABASES"]) / f"{request.node.name}.db"
        engine = sa.create_engine(f"duckdb:///{path}")
    try:
        yield engine
    finally:
        engine.dispose()
