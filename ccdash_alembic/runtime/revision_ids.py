"""Revision ids: the UTC time a revision was created, ``YYYYMMDDHHMMSS``, which is also its file name's prefix.

The file is named by the id (``file_template = %(rev)s_%(slug)s``), never by the clock a second time, so the
two cannot disagree. The id is chosen before Alembic names the file: by ``ccdash-migrate create`` and
``import-sql`` (which keeps the timestamps an earlier tool's files already carry), and for the stock
``alembic revision`` by ``process_revision_directives``, which env.py's run installs (``alembic.ini`` sets
``revision_environment``, so Alembic runs env.py for every new revision; no database is opened for it).
``script.py.mako`` writes the id it is given.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from alembic.config import Config
from alembic.operations.ops import MigrationScript
from alembic.script import ScriptDirectory

from ccdash_alembic import alembic_internals as internals
from ccdash_alembic.errors import UsageError
from ccdash_alembic.runtime import revision_text

FORMAT = "%Y%m%d%H%M%S"
_FILE_NAME = re.compile(r"^\d{14}_(?P<slug>[a-z0-9_]+)\.py$")  # as validate reads a revision file's name


def is_revision_id(text: object) -> bool:
    return isinstance(text, str) and len(text) == 14 and text.isdigit()


def next_id(create_date: datetime, parents: Iterable[str] = ()) -> str:
    """The id of a revision created at ``create_date`` after ``parents``.

    A revision made in the same second as its parent would get the parent's id and break the revision
    graph, so the id is then moved one second past the newest timestamp parent.
    """
    moment = create_date.astimezone(UTC).replace(microsecond=0)
    stamps = [datetime.strptime(p, FORMAT).replace(tzinfo=UTC) for p in parents if is_revision_id(p)]
    if stamps and moment <= max(stamps):
        moment = max(stamps) + timedelta(seconds=1)
    return moment.strftime(FORMAT)


def check_new(script: ScriptDirectory, message: str | None) -> str:
    """The message of a new revision, checked as for every revision file (``revision_text.check_message``),
    and refused when its slug is that of an existing revision: two files would differ by their ids only.
    Returns the message as the file will hold it."""
    checked = revision_text.check_message(message or "")
    slug = revision_text.slug(checked, script.truncate_slug_length)
    for folder in script.version_locations or [script.versions]:
        for path in sorted(Path(folder).glob("*.py")):
            found = _FILE_NAME.match(path.name)
            if found and found["slug"] == slug:
                raise UsageError(
                    f"a revision named {slug!r} exists already ({path.name})",
                    "Use a message that says how this revision differs; nothing was written",
                )
    return checked


def process_revision_directives(context: Any, revision: object, directives: list[Any]) -> None:
    """Alembic's hook before a new revision is written (``alembic revision``, with or without
    ``--autogenerate``): refuse a message ``create`` would refuse, and give each new revision a timestamp id
    (one it was given is kept), which its file is then named by. A refusal comes before Alembic writes."""
    script: ScriptDirectory = context.script
    taken: list[str] = []
    for directive in directives:
        if not isinstance(directive, MigrationScript):
            continue
        if not internals.in_alembic_check():  # alembic check runs this hook too, with no message and no file to write
            check_new(script, directive.message)
        if not is_revision_id(directive.rev_id):
            directive.rev_id = next_id(datetime.now(UTC), [*_parents(script, directive.head), *taken])
        taken.append(str(directive.rev_id))


def _parents(script: ScriptDirectory, head: str | None) -> list[str]:
    """The ids a new revision based on ``head`` will follow (all heads when ``head`` does not resolve: Alembic
    then refuses the revision itself, with its own message)."""
    try:
        return [r.revision for r in script.get_revisions(head or "head") if r is not None]
    except Exception:
        return list(script.get_heads())


def name_files_by_id(config: Config) -> None:
    """Make new revision files ``<revision id>_<slug>.py`` for this run, rather than the clock's time again
    (``alembic.ini``'s ``file_template``), so name and id agree even when the id is not the current second."""
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
