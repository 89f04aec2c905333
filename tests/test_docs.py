"""The README and docs/ say what is there: every example a page marks is run by a test, every link and path
leads somewhere, the module list is the package's, and the operator's guide names every command, option and exit
code the tool has."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from conftest import BIN, REPO
from docblocks import MARKED, documents

from ccdash_alembic.errors import ExitCode

TESTS = REPO / "tests"
FENCED = re.compile(r"^```.*?^```", re.M | re.S)
LINK = re.compile(r"\]\(([^)\s]+)\)")
CODE_PATH = re.compile(r"`((?:tests|ccdash_alembic|benchmarks|docs|versions)/[\w./-]*)`")


def _prose(path: Path) -> str:
    """A page without its fenced blocks, whose paths are examples (a revision file ``create`` would write)."""
    return FENCED.sub("", path.read_text())


def _anchors(path: Path) -> set[str]:
    """The anchors GitHub gives a page's headings: lower case, punctuation dropped, spaces to hyphens."""
    headings = re.findall(r"^#+ (.+)$", FENCED.sub("", path.read_text()), re.M)
    return {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-") for heading in headings}


def _run(*command: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("ALEMBIC_CONFIG", "CCDASH_DB_PATH")}
    done = subprocess.run(
        [str(BIN / command[0]), *command[1:]], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _subcommands(program: str) -> set[str]:
    """The subcommands a program's ``--help`` usage line lists between braces."""
    usage = re.search(r"\{([\w,-]+)\}", _run(program, "--help"))
    assert usage, program
    return set(usage.group(1).split(","))


def test_every_marked_example_is_read_by_a_test() -> None:
    """A marked block no test reads would be an example nothing runs: it could go stale unseen."""
    sources = {
        path: path.read_text() for path in TESTS.rglob("*.py") if path.name not in ("docblocks.py", "test_docs.py")
    }
    marked = [(page, name) for page in documents() for name, _ in MARKED.findall(page.read_text())]
    assert {name for _, name in marked} >= {"run", "test", "startup", "workflow", "any-project-env"}
    for page, name in marked:
        document = str(page.relative_to(REPO))
        readers = [
            path
            for path, text in sources.items()
            if document in text and re.search(rf"""["']{re.escape(name)}["']""", text)
        ]
        assert readers, f"no test reads the block {name} of {document}"


def test_links_lead_to_a_file_and_a_heading() -> None:
    for page in documents():
        for target in LINK.findall(_prose(page)):
            if re.match(r"[a-z]+:", target):
                continue  # a web address
            file, _, anchor = target.partition("#")
            linked = (page.parent / file).resolve() if file else page
            assert linked.exists(), f"{page.name} links to {target}, which does not exist"
            if anchor:
                assert anchor in _anchors(linked), f"{page.name} links to {target}: no such heading"


def test_paths_named_in_the_text_exist() -> None:
    """Every path the docs name exists, but for what the tests write (listed in .gitignore, such as the status
    page's screenshot folder), which a fresh clone does not have yet."""
    written = {line.strip() for line in (REPO / ".gitignore").read_text().splitlines() if line.startswith("tests/")}
    for page in documents():
        for named in CODE_PATH.findall(_prose(page)):
            if named in written:
                continue
            assert (REPO / named).exists(), f"{page.name} names {named}, which does not exist"


def test_the_module_list_is_the_package_s() -> None:
    """docs/design.md lists each module of ccdash_alembic by its job; a module added, moved or removed must be
    listed there too."""
    tree = (REPO / "docs" / "design.md").read_text().split("\nccdash_alembic/\n", 1)[1].split("\n```", 1)[0]
    listed, folder = set(), ""
    for line in tree.splitlines():
        indent, name = len(line) - len(line.lstrip()), (line.split() or [""])[0]
        if indent == 2 and name.endswith("/"):
            folder = name
        elif indent in (2, 4) and name.endswith(".py"):
            listed.add(("" if indent == 2 else folder) + name)
        elif indent == 0:
            break
    package = REPO / "ccdash_alembic"
    present = {str(p.relative_to(package)) for p in package.rglob("*.py") if p.name != "__init__.py"}
    assert listed == present, f"listed only: {sorted(listed - present)}; not listed: {sorted(present - listed)}"


def test_the_guide_names_every_command_option_and_exit_code() -> None:
    readme = (REPO / "README.md").read_text()
    added = (_subcommands("ccdash-migrate") - _subcommands("alembic")) | {"history"}
    assert {"up", "status", "restore", "repair"} <= added
    for command in added:
        assert f"`{command}" in readme, f"the README does not show the command {command}"
    options = [line.split()[0] for line in _run("ccdash-migrate", "options").splitlines()[1:] if line.strip()]
    assert "lock_timeout" in options
    for option in options:
        assert f"| `{option}` |" in readme, f"the README's options table lacks {option}"
    exit_codes = readme.split("\n## Exit codes\n", 1)[1].split("\n## ", 1)[0]
    for code in ExitCode:
        assert f"\n| {int(code)} |" in exit_codes, f"the README's exit codes lack {int(code)} ({code.name})"
