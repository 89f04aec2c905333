'''Text that becomes part of a revision file (its message, the ids in its docstring) is written as data.

A message reaches a revision file from ``-m`` (``alembic revision``, ``ccdash-migrate create``) or from a file
name (``ccdash-migrate import-sql``). Pasted into the file as it is, a ``"""`` would end the docstring and
whatever followed would run at once (Alembic imports a revision as soon as it writes it) and at every later
load, while a ``\\U`` or ``\\N{`` would leave a file Python cannot compile. So:

- the docstring is built here as an escaped literal (``docstring``), which no text can end early;
- a message is refused when it holds a control or invisible format character (it must stay one line, in
  the file, in the history and in every error that quotes it) or would not name a valid revision file;
- ``script.py.mako`` hands its rendered text to ``checked``, which compiles it and compares its docstring
  with the message before Alembic opens the destination file: a refusal leaves nothing behind.
'''

from __future__ import annotations

import ast
import os
import re
import sys
import unicodedata
from collections.abc import Callable, Mapping
from typing import NoReturn

from alembic.config import Config

from ccdash_alembic.errors import MigrateError, UsageError

# Control characters (newline, tab, NUL, ESC...), invisible format characters (bidirectional overrides,
# zero-width characters), lone surrogates (bytes of a file name or argument that are not UTF-8) and the
# line and paragraph separators: none can stay on one line, or be read for what it is.
REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_WORDS = re.compile(r"\w+")  # Alembic makes a file name's slug of the message's words
_SLUG = re.compile(r"[a-z0-9_]+")  # what validate accepts in a revision file's name


def slug(message: str, truncate: int | None = None) -> str:
    """The file name slug Alembic makes of a message (its words, joined by ``_``, lower case, truncated)."""
    made = "_".join(_WORDS.findall(message)).lower()
    if truncate is not None and len(made) > truncate:
        made = made[:truncate].rsplit("_", 1)[0] + "_"
    return made


def shown(text: str, limit: int = 80) -> str:
    """``text`` quoted for a one-line error: escaped (a control character in an error would break its line
    or drive the terminal) and cut to ``limit`` characters."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + "..."


def printable(text: str) -> str:
    """``text`` (a path, say) for a one-line message: as it is, except characters that do not print as
    themselves, which are written as escapes."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def check_message(message: str, subject: str | None = None, fix: str | None = None) -> str:
    """The message a revision file will carry (without surrounding spaces, which Alembic's ``Script.doc``
    drops), or a ``UsageError`` when it cannot be one: it must be one line without control or invisible
    characters, and its slug must name a file ``validate`` accepts. ``subject`` and ``fix`` say where it
    came from and what to do, in the error (by default: ``-m``)."""
    subject = subject or f"the message {shown(message)}"
    for position, character in enumerate(message, start=1):
        if unicodedata.category(character) in REFUSED_CATEGORIES:
            raise UsageError(
                f"{subject} has the control character U+{ord(character):04X} (character {position})",
                fix or "Give a message of one line without control characters; nothing was written",
            )
    made = slug(message)
    if not made:
        raise UsageError(
            f"{subject} has no letters or digits to name the file with",
            fix or 'Say what the revision does, e.g. -m "add user preferences"; nothing was written',
        )
    if not _SLUG.fullmatch(made):
        raise UsageError(
            f"{subject} would name the file {shown(made)}, which has characters other than a-z, 0-9 and _",
            fix or "Write the message in ASCII letters and digits; nothing was written",
        )
    return message.strip()


def escape(text: str) -> str:
    """``text`` as the inside of a ``\"\"\"`` string literal that reads back as exactly ``text``: backslashes
    and double quotes escaped (so no ``\\U``, ``\\N{`` or ``\"\"\"`` in the text means anything to Python),
    characters that do not print as themselves written as escapes, everything else as it is."""
    written = []
    for character in text:
        if character in '\\"':
            written.append("\\" + character)
        elif character.isprintable():
            written.append(character)
        else:
            written.append(character.encode("unicode_escape").decode("ascii"))
    return "".join(written)


def docstring(message: str, fields: Mapping[str, object]) -> str:
    """A revision's docstring as a Python literal: the message, a blank line, then ``name: value`` lines
    (revision id, parents, date). Alembic shows the first paragraph as the revision's ``doc``."""
    lines = [message.strip(), "", *(f"{name}: {value}" for name, value in fields.items())]
    return '"""' + "\n".join(escape(line) for line in lines) + '\n"""'


def checked(render: Callable[[], str], message: str, config: Config | None) -> str:
    """The revision file ``script.py.mako`` rendered, called by the template itself: the message is checked
    first, then the text is compiled (never run) and its docstring compared with the message. On a refusal
    the command stops before Alembic writes anything (see ``_refuse``)."""
    try:
        expected = check_message(message)
        text = render()
        _check_source(text, expected, _encoding(config))
    except MigrateError as error:
        _refuse(error, config)
    return text


def _encoding(config: Config | None) -> str:
    if config is None:
        return "utf-8"
    return config.get_alembic_option("output_encoding", "utf-8") or "utf-8"


def _check_source(text: str, message: str, encoding: str) -> None:
    """Refuse a rendered revision that does not compile, or whose docstring's first paragraph (what Alembic
    shows as its ``doc``) is not ``message``."""
    try:
        source = text.encode(encoding)
    except UnicodeEncodeError as error:
        raise UsageError(
            f"the message {shown(message)} cannot be written in {encoding}, the revision files' encoding",
            "Use characters that encoding has; nothing was written",
        ) from error
    try:
        tree = ast.parse(source, "<revision>")
        compile(tree, "<revision>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as error:
        where = f" at line {error.lineno}" if isinstance(error, SyntaxError) else ""
        raise MigrateError(
            f"the revision script.py.mako rendered does not compile ({getattr(error, 'msg', error)}{where})",
            "Fix the template; nothing was written",
        ) from error
    found = ast.get_docstring(tree, clean=False)
    if found is None or re.split("\n\n", found.strip())[0] != message:
        raise MigrateError(
            f"the revision script.py.mako rendered does not begin with a docstring holding the message "
            f"{shown(message)}",
            "Make the template start with ${revision_text.docstring(...)}; nothing was written",
        )


def _refuse(error: MigrateError, config: Config | None) -> NoReturn:
    """Stop rendering with ``error``.

    Alembic catches every exception a template raises (``SystemExit`` included) and replaces it with
    "Template rendering failed" and a traceback file. From Python (no command line, or ``--raiseerr``) the
    error is raised all the same, and is in that file; on the command line the process ends here with the
    error's one line and exit code, which is safe because nothing has been written yet: Alembic renders the
    whole file before it opens the destination, and no database is open while a revision is generated.
    """
    options = None if config is None else config.cmd_opts
    if options is None or getattr(options, "raiseerr", False):
        raise error
    if not (config is not None and config.messaging_opts.get("quiet", False)):
        sys.stdout.write("  FAILED\n")  # ends Alembic's "Generating <path> ..." line
    sys.stdout.flush()
    sys.stderr.write(error.line() + "\n")
    sys.stderr.flush()
    os._exit(int(error.exit_code))
