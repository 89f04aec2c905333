"""Alembic's dialect suite, every class of it.

Some tests ask for what DuckDB lacks without a suite requirement that says so, or under a class requirement
that would leave the whole class out of the run unreported. Those get the requirement (requirements.py) that
names what DuckDB lacks, here, so that each is reported as skipped with that reason.
"""

import types

from alembic.testing import config
from alembic.testing.suite import *  # noqa: F403
from alembic.testing.suite import AutogenerateFKOptionsTest as _AutogenerateFKOptionsTest
from alembic.testing.suite import AutogenerateIdentityTest as _AutogenerateIdentityTest


def _gate(cls, requirement, *names, **attributes):
    """A subclass of ``cls`` whose named tests (all of them when none is named) are also under
    ``requirement``, with ``attributes`` set on it. The tests are copies, so that the suite's own functions
    are left as they are."""
    gated = getattr(config.requirements, requirement)
    body = dict(attributes)
    for name in names or [name for name in dir(cls) if name.startswith("test_")]:
        test = getattr(cls, name)
        copy = types.FunctionType(test.__code__, test.__globals__, name, test.__defaults__, test.__closure__)
        copy.__dict__.update(vars(test))
        exclusion = copy.__dict__.pop("_sa_exclusion_extend", None)
        body[name] = (gated if exclusion is None else gated + exclusion)(copy)
    return type(cls.__name__, (cls,), body)


AutogenerateFKOptionsTest = _gate(
    _AutogenerateFKOptionsTest,
    "fk_actions",
    "test_nochange_ondelete",
    "test_nochange_onupdate",
    "test_change_ondelete_from_restrict",
    "test_change_onupdate_from_restrict",
)

# Its class requirement would leave it out of the run altogether; each test says why it is skipped instead.
AutogenerateIdentityTest = _gate(_AutogenerateIdentityTest, "identity_columns", __requires__=())
