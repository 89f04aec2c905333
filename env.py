"""CCDash's migration environment. All the work is done by ccdash_alembic.runtime.environment."""

from alembic import context

from ccdash_alembic.ccdash.application import CCDASH
from ccdash_alembic.ccdash.model import metadata
from ccdash_alembic.runtime.environment import run

run(context, metadata, application=CCDASH)
