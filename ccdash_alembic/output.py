"""How commands print: aligned, coloured tables on a terminal; plain aligned text when piped; JSON on request.

Piped output has no colour codes and no box characters, and is never cut to a terminal's width, so
``grep`` and ``awk`` see whole values.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

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


@contextmanager
def progress(label: str, total: int) -> Iterator[Callable[[str, int], None]]:
    """A progress bar on stderr while long work runs (only on a terminal); yields ``advance(description,
    steps)``: what is being done now, and how many units just finished."""
    console = Console(stderr=True)
    with Progress(
        TextColumn(f"[bold]{label}[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal or not sys.stderr.isatty(),
    ) as bar:
        task = bar.add_task("", total=total)

        def advance(description: str, steps: int) -> None:
            bar.update(task, advance=steps, description=description)

        yield advance
