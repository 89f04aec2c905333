"""How commands print: aligned, coloured tables on a terminal; plain aligned text when piped; JSON on request.

Piped output has no colour codes and no box characters, and is never cut to a terminal's width, so
``grep`` and ``awk`` see whole values.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn
from rich.table import Column, Table


def announce(config: Any, line: str) -> None:
    """A line on stderr that says what a command works on (``Database:``, ``Backup:``, a step), which ``-q``
    (Alembic's ``quiet`` messaging option on ``config``) leaves out; errors are printed whatever it says."""
    if not config.messaging_opts.get("quiet", False):
        sys.stderr.write(line + "\n")


# Styles of the words a status or a history shows, on a terminal.
STYLES = {
    "applied": "green",
    "success": "green",
    "pending": "yellow",
    "rolled_back": "yellow",
    "failed": "bold red",
    "dirty": "bold red",
    "drift": "bold red",
}


def is_terminal() -> bool:
    return sys.stdout.isatty()


def _console() -> Console:
    return Console(highlight=False)


def table(columns: Sequence[str], rows: Sequence[Sequence[str]], states: Sequence[str | None] = ()) -> None:
    """Print rows under column headings; ``states`` gives each row's state word (a key of ``STYLES``), which
    colours it on a terminal."""
    if is_terminal():
        rendered = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False)
        for name in columns:
            rendered.add_column(name, overflow="fold")
        for index, row in enumerate(rows):
            rendered.add_row(*row, style=STYLES.get(states[index] or "") if index < len(states) else None)
        _console().print(rendered)
        return
    widths = [max([len(name), *(len(row[i]) for row in rows)]) for i, name in enumerate(columns)]
    for row in [list(columns), *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def fields(pairs: Sequence[tuple[str, str, str | None]]) -> None:
    """Print ``label  value`` lines, labels aligned; the third item is the value's state word (``STYLES``)."""
    width = max(len(label) for label, _, _ in pairs)
    if is_terminal():
        console = _console()
        for label, value, style in pairs:
            console.print(f"[bold]{label.ljust(width)}[/]  ", end="")
            console.print(value, style=STYLES.get(style or ""), markup=False)
        return
    for label, value, _ in pairs:
        print(f"{label.ljust(width)}  {value}")


def as_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


# What a step that ran did, in the line said for it: "Applied 20261127020000 add user_preferences table (14 ms)".
_DONE = {"up": "Applied", "down": "Reverted", "stamp": "Stamped", "baseline": "Adopted"}


def step_line(direction: str, version: str, name: str | None, milliseconds: int | None) -> str:
    """The one line said for each step of a run (``direction`` as ``migration_history`` records it), so the
    default output of an upgrade is a line per revision rather than the SQL of every plan."""
    took = "" if milliseconds is None else f" ({milliseconds:,} ms)"
    return f"{_DONE.get(direction, direction.capitalize())} {version}{f' {name}' if name else ''}{took}"


def verbose_logging() -> None:
    """``ccdash-migrate -v``: the plan of every table change with its SQL (logger ``ccdash_alembic`` at DEBUG)
    and Alembic's own lines of a run (``alembic.runtime.migration`` at INFO), whatever alembic.ini set."""
    for name, level in (("ccdash_alembic", logging.DEBUG), ("alembic.runtime.migration", logging.INFO)):
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() > level:
            logger.setLevel(level)
        if not logger.hasHandlers():  # an alembic.ini without a handler: the lines still go to stderr
            logger.addHandler(logging.StreamHandler())


_live: Progress | None = None  # the bar on screen now, if any


@contextmanager
def progress(label: str, total: int) -> Iterator[Callable[[str, int], None]]:
    """A progress bar on stderr while long work runs (only on a terminal); yields ``advance(description,
    steps)``: what is being done now, and how many units just finished.

    A bar started while another is on screen (a chunked data migration inside the revisions' bar) is a second
    line of the same display: a terminal has one live display. While the bar is live, everything written to
    stderr or stdout, log records included, is printed above it rather than into it."""
    global _live
    if _live is not None:
        outer = _live
        task = outer.add_task("", total=total, label=escape(label))
        try:
            yield _advancing(outer, task)
        finally:
            outer.refresh()  # its last state is drawn once, however fast it went
            outer.remove_task(task)
        return
    console = Console(stderr=True)
    shown = console.is_terminal and sys.stderr.isatty()
    with Progress(
        TextColumn("[bold]{task.fields[label]}[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        # what runs now: text, never markup (revision names); cut short rather than squeezing the bar
        TextColumn("{task.description}", markup=False, table_column=Column(max_width=72, no_wrap=True)),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not shown,
    ) as bar:
        _live = bar if shown else None
        try:
            with _logging_above_bar():
                yield _advancing(bar, bar.add_task("", total=total, label=escape(label)))
        finally:
            _live = None


def _advancing(bar: Progress, task: TaskID) -> Callable[[str, int], None]:
    def advance(description: str, steps: int) -> None:
        bar.update(task, advance=steps, description=description)

    return advance


@contextmanager
def _logging_above_bar() -> Iterator[None]:
    """Point logging's stream handlers at the live display while it shows.

    A live bar replaces ``sys.stdout``/``sys.stderr`` with proxies that print above the bar, but a handler
    configured earlier (alembic.ini's ``args = (sys.stderr,)``) holds the real stream and would write into the
    bar's line. Each handler holding a proxied stream writes to its proxy until the bar ends."""
    proxies = {
        id(proxied): stream
        for stream in (sys.stdout, sys.stderr)
        if (proxied := getattr(stream, "rich_proxied_file", None)) is not None
    }
    swapped = [
        (handler, handler.setStream(proxies[id(handler.stream)]))
        for handler in _stream_handlers()
        if id(handler.stream) in proxies
    ]
    try:
        yield
    finally:
        for handler, stream in swapped:
            handler.setStream(stream)


def _stream_handlers() -> list[logging.StreamHandler[Any]]:
    """Every stream handler of every logger, each once (one handler may serve several loggers)."""
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    handlers = {id(h): h for lg in loggers if isinstance(lg, logging.Logger) for h in lg.handlers}
    return [h for h in handlers.values() if isinstance(h, logging.StreamHandler)]
