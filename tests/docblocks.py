"""The examples the documentation shows, read from the file that shows them, so that tests run them as written.

A block is marked by an HTML comment on the line before its fence, which Markdown does not display::

    <!-- name -->
    ```sh
    ...
    ```

``tests/test_docs.py`` checks that a test reads every marked block of the README and ``docs/``.
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MARKED = re.compile(r"^<!-- ([\w-]+) -->\n```(\w+)\n", re.M)


def documents() -> list[Path]:
    """The README and every page under ``docs/``: where an operator or a developer reads an example."""
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def block(document: str, name: str, language: str) -> str:
    """The text of the block marked ``name`` in ``document`` (a path from the repository's root), up to its
    closing fence; a missing or repeated marker fails the test that wanted it, naming the document."""
    text = (REPO / document).read_text()
    opening = f"<!-- {name} -->\n```{language}\n"
    found = text.count(opening)
    assert found == 1, f"{document} has {found} blocks marked {name} ({language}), not one"
    return text.split(opening, 1)[1].split("```", 1)[0]
