"""Revision ids: the UTC time a revision was created, ``YYYYMMDDHHMMSS``, which is also its file name's prefix.

Used by ``script.py.mako`` (for ``alembic revision``), ``ccdash-migrate create`` and ``import-sql`` (which keeps
the timestamps an earlier tool's files already carry).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from alembic.config import Config

FORMAT = "%Y%m%d%H%M%S"


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


def for_template(up_revision: str, create_date: datetime, parents: Iterable[str]) -> str:
    """The id ``script.py.mako`` writes: the one asked for when it is a timestamp (``create``, ``import-sql``,
    ``--rev-id``), else a new one (stock ``alembic revision``, which passes a random hex id)."""
    return up_revision if is_revision_id(up_revision) else next_id(create_date, parents)


def name_files_by_id(config: Config) -> None:
    """Make new revision files ``<revision id>_<slug>.py`` for this run, rather than the clock's time again
    (``alembic.ini``'s ``file_template``), so name and id agree even when the id is not the current second."""
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
