"""The ``alembic.plugins`` entry point.

Alembic loads every published plugin when it starts, so this is what makes a plain ``alembic`` command find
the DuckDB implementation even in a project whose env.py does not import ``ccdash_alembic``: importing the
package registers the dialect and the implementation.
"""

from alembic.runtime.plugins import Plugin

import ccdash_alembic  # noqa: F401  (registers the DuckDB dialect and Alembic implementation)


def setup(plugin: Plugin) -> None:
    """Nothing to add to autogenerate: the implementation's comparison hooks cover DuckDB."""
