"""ccdash-alembic: Alembic on DuckDB, for CCDash's database.

Importing the package makes Alembic work on DuckDB: it registers the DuckDB dialect (reflection from DuckDB's
catalog), the Alembic implementation for it, and the operations Alembic lacks (``op.create_sequence``,
``op.execute_in_chunks``...).
"""

from ccdash_alembic import dialect, impl, ops

__version__ = "0.1.0"

__all__ = ["__version__", "dialect", "impl", "ops"]
