"""ccdash-alembic: Alembic on DuckDB, for CCDash's database.

Importing the package makes Alembic work on DuckDB: it registers the DuckDB dialect (reflection from DuckDB's
catalog) and the Alembic implementation for it.
"""

from ccdash_alembic import dialect, impl

__version__ = "0.1.0"

__all__ = ["__version__", "dialect", "impl"]
