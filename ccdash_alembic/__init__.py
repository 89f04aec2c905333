"""ccdash-alembic: Alembic on DuckDB, for CCDash's database.

Importing the package makes Alembic work on DuckDB: it registers the DuckDB dialect (reflection from DuckDB's
catalog), the Alembic implementation for it, and the operations Alembic lacks (``op.create_sequence``,
``op.execute_in_chunks``...). ``upgrade()`` and ``status()`` are the Python API (``runtime/api.py``).
"""

import importlib
from typing import TYPE_CHECKING

from ccdash_alembic.ddl import dialect, impl, ops

if TYPE_CHECKING:
    from ccdash_alembic.runtime.api import UpgradeResult, status, upgrade

__version__ = "0.1.0"

__all__ = ["UpgradeResult", "__version__", "dialect", "impl", "ops", "status", "upgrade"]
_API = frozenset({"UpgradeResult", "status", "upgrade"})
# Modules applied revisions import by these names (``from ccdash_alembic import catalog, history``): a revision
# file cannot change once applied (its checksum is recorded), so the names stay where revisions found them.
_REVISION_IMPORTS = {"catalog": "ccdash_alembic.ddl.catalog", "history": "ccdash_alembic.runtime.history"}


def __getattr__(name: str) -> object:
    """The API is imported on first use: Alembic imports this package (its plugin) while Alembic itself is
    still being imported, before the commands the API calls exist."""
    if name in _API:
        from ccdash_alembic.runtime import api

        return getattr(api, name)
    if name in _REVISION_IMPORTS:
        return importlib.import_module(_REVISION_IMPORTS[name])
    raise AttributeError(f"module 'ccdash_alembic' has no attribute {name!r}")
