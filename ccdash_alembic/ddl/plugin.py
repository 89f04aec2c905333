"""The ``alembic.plugins`` entry point.

Alembic loads every published plugin when it starts, so this is what makes a plain ``alembic`` command find
the DuckDB implementation even in a project whose env.py does not import ``ccdash_alembic``: importing the
package registers the dialect, the implementation and the extra operations.

The autogenerate comparison of CHECK constraints is registered under the plugin name ``ccdash_alembic``;
autogenerate uses it when the environment asks for it (``autogenerate_plugins=["alembic.autogenerate.*",
"ccdash_alembic"]``), as this project's environment does.
"""

from alembic.runtime.plugins import Plugin

import ccdash_alembic  # noqa: F401  (registers the DuckDB dialect, implementation and operations)
from ccdash_alembic.ddl.autogen import compare_check_constraints

PLUGIN_NAME = "ccdash_alembic"


def setup(plugin: Plugin) -> None:
    plugin.add_autogenerate_comparator(compare_check_constraints, "table", "checkconstraints")
