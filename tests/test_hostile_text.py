"""Text never becomes code: messages (``create -m``, ``alembic revision -m``) and imported file names
(``import-sql``) reach revision files as data.

Every hostile text either gives a revision that loads with exactly that text as its doc, or is refused with
one line, exit code 2 and nothing written; the injection payloads never run, neither when the revision is
written nor when ``up``, ``history`` or ``validate`` load it later.
"""

from __future__ import annotations

import ast
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import Project

from ccdash_alembic.errors import ExitCode
from ccdash_alembic.runtime.revision_text import escape

# Run in the project folder, so a payload that escaped would write p.txt there.
PAYLOAD = 'x"""\nopen("p.txt","w").write("ran")\n"""'
ONE_LINE_PAYLOAD = 'x"""; open("p.txt","w").write("ran"); """'

ACCEPTED = [
    ONE_LINE_PAYLOAD,
    'add """ triple double quotes',
    "add ''' triple single quotes",
    'ends in a double quote"',
    "ends in a backslash \\",
    "back\\slash and \\\\ two",
    "unicode escapes \\U0001F600 \\u00e9 \\x41 \\0",
    "named escapes \\N{BULLET} and an open \\N{",
    "mako ${message} ${{x}} <% import os %> <%text> ## not a comment",
    "percent 100% %(rev)s %% %s",
    "emoji 🎉 and “curly quotes”",
    "long " + " ".join(f"word{i}" for i in range(1500)),
]
REFUSED = [
    PAYLOAD,  # newlines
    '"""',  # no letters to name the file with
    "'''",
    "<% %>",
    "tab\there",
    "escape \x1b[31m red",
    "carriage\rreturn",
    "bidi \u202e override",
    "line \u2028 separator",
    "not utf-8 \udcff byte",  # an argument whose bytes are not UTF-8 (passed on as the byte 0xff)
    "café",  # the file's name would not be ASCII
    "add ünïcödé letters",
]

DOCS = """\
import json
from alembic.config import Config
from alembic.script import ScriptDirectory
script = ScriptDirectory.from_config(Config("alembic.ini"))
print(json.dumps({s.revision: s.doc for s in script.walk_revisions()}))
"""


def _docs(project: Project) -> dict[str, str]:
    """Every revision's doc, as Alembic loads it, in another process (which would also run a payload)."""
    loaded = subprocess.run(
        [sys.executable, "-c", DOCS], cwd=project.root, env=project.env(), capture_output=True, text=True, timeout=120
    )
    assert loaded.returncode == 0, loaded.stderr
    return json.loads(loaded.stdout)  # type: ignore[no-any-return]


def _listing(project: Project) -> list[str]:
    return sorted(p.name for p in project.versions.iterdir())


def _assert_refused(result: subprocess.CompletedProcess[str], before: list[str], project: Project) -> None:
    assert result.returncode == ExitCode.USAGE, (result.stdout, result.stderr)
    [line] = [line for line in result.stderr.splitlines() if not line.startswith("Database:")]
    assert line.startswith("error: ") and "Traceback" not in result.stderr
    assert _listing(project) == before  # nothing written, not even a temporary file


def _assert_never_ran(project: Project) -> None:
    assert not (project.root / "p.txt").exists()


def _after(project: Project, messages: list[str]) -> None:
    """The revisions load, run, are recorded under their messages and validate; no payload ran."""
    up = project.migrate("up")
    assert up.returncode == 0, up.stderr
    history = json.loads(project.migrate("history", "--json").stdout)
    assert [step["name"] for step in history] == messages
    assert project.alembic("history", pass_db=False).returncode == 0
    validated = project.migrate("validate")
    assert validated.returncode == 0, validated.stdout + validated.stderr
    _assert_never_ran(project)


def _next_second() -> None:
    """Wait for the clock's next second. Stock ``alembic revision`` names the file after the clock's second
    while the template moves the id past a parent made in the same second, so two revisions within one
    second get a file name and an id that differ, which validate reports; that is not what is tested here."""
    time.sleep(1.02 - time.time() % 1)


COMMANDS = {
    "create": ("ccdash-migrate", ["create"]),
    "create --sql": ("ccdash-migrate", ["create", "--sql"]),
    "alembic revision": ("alembic", ["revision"]),
}


@pytest.mark.parametrize("name", list(COMMANDS))
def test_hostile_messages_are_data_or_refused(project: Project, name: str) -> None:
    program, arguments = COMMANDS[name]
    run = project.migrate if program == "ccdash-migrate" else project.alembic
    for message in REFUSED:
        before = _listing(project)
        _assert_refused(run(*arguments, "-m", message, pass_db=False), before, project)
        _assert_never_ran(project)

    for message in ACCEPTED:
        if program == "alembic":
            _next_second()
        made = run(*arguments, "-m", message, pass_db=False)
        assert made.returncode == 0, (message, made.stdout, made.stderr)
        _assert_never_ran(project)
    stubs = sorted(project.versions.glob("*.py"))
    assert len(stubs) == len(ACCEPTED)
    assert sorted(_docs(project).values()) == sorted(ACCEPTED)  # each doc is its message, exactly
    if name == "create --sql":
        for stub in stubs:
            assert stub.with_name(stub.stem + ".up.sql").exists() and stub.with_name(stub.stem + ".down.sql").exists()
    _after(project, ACCEPTED)


def test_padded_message_keeps_its_words(project: Project) -> None:
    """Alembic's doc drops the spaces around a message; the file is written without them, so doc, file and
    history agree."""
    assert project.migrate("create", "-m", "  padded message  ", pass_db=False).returncode == 0
    assert list(_docs(project).values()) == ["padded message"]


# --- import-sql ---------------------------------------------------------------------------------------------------

# File names that are hostile to a template but make valid messages; the name's "_" become spaces.
IMPORTED = {
    '20250101000001_a"""b': 'a"""b',
    "20250101000002_x\\U0001F600": "x\\U0001F600",
    '20250101000003_it\'s "quoted"': 'it\'s "quoted"',
    "20250101000004_${x} <% y %>": "${x} <% y %>",
    "20250101000005_\\N{BULLET}": "\\N{BULLET}",
    # A payload without a "." (which would end the name): print(1, file=open("p.txt", "w"))
    '20250101000006_x"""; print(1, file=open("p" + chr(46) + "txt", "w")); """': (
        'x"""; print(1, file=open("p" + chr(46) + "txt", "w")); """'
    ),
    "20250101000007_trailing_backslash_\\": "trailing backslash \\",
    "20250101000008__padded_": "padded",  # Alembic's doc has no surrounding spaces, so neither has the message
}


def test_import_writes_hostile_file_names_as_data(project: Project, tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    folder.mkdir()
    for number, name in enumerate(IMPORTED, start=1):
        (folder / f"{name}.up.sql").write_text(f"CREATE TABLE t{number} (id INTEGER);\n")
        (folder / f"{name}.down.sql").write_text(f"DROP TABLE t{number};\n")
    (folder / "notes\n\x1b[2Jfor later.sql").write_text("-- not a migration, so skipped\n")
    result = project.migrate("import-sql", str(folder), pass_db=False)
    assert result.returncode == 0, result.stderr
    _assert_never_ran(project)
    [skipped] = [line for line in result.stderr.splitlines() if "Skipped" in line]
    assert skipped.startswith("Skipped notes\\n\\x1b[2Jfor later.sql:")  # escaped, on its line

    assert _docs(project) == {name[:14]: message for name, message in IMPORTED.items()}
    for stub in project.versions.glob("*.py"):
        [name] = [n for n in IMPORTED if n.startswith(stub.name[:14])]
        for suffix in (".up.sql", ".down.sql"):
            assert stub.with_name(stub.stem + suffix).read_bytes() == (folder / (name + suffix)).read_bytes()
    _after(project, list(IMPORTED.values()))


@pytest.mark.parametrize(
    "name",
    [
        '20250201000001_"""',  # no letters
        "20250201000002_${}",
        "20250201000003_line\nbreak",
        "20250201000004_tab\there",
        "20250201000005_esc\x1b[31m",
        "20250201000006_caf\u00e9",
        "20250201000007_bidi\u202eoverride",
        os.fsdecode(b"20250201000008_not_utf8_\xff"),  # bytes that are not UTF-8, as Python sees them
    ],
)
def test_import_refuses_a_file_name_that_cannot_be_a_message(project: Project, tmp_path: Path, name: str) -> None:
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "20250101000000_good.up.sql").write_text("CREATE TABLE good (id INTEGER);\n")
    (folder / f"{name}.up.sql").write_text("CREATE TABLE bad (id INTEGER);\n")
    before = _listing(project)
    _assert_refused(project.migrate("import-sql", str(folder), pass_db=False), before, project)
    assert project.migrate("validate").returncode == 0


# --- what stands behind the escaping ------------------------------------------------------------------------------


def test_escape_reads_back_as_the_same_text() -> None:
    """Whatever the text, the escaped literal compiles and holds exactly that text."""
    alphabet = ['"', "'", "\\", "N", "U", "u", "x", "{", "}", "$", "%", "<", ">", "\n", "\r", "\t", "\x00", "\x1b"]
    alphabet += ["\u2028", "\u202e", "\udcff", "é", "🎉", " ", "a", "0"]
    chance = random.Random(20250101)
    for _ in range(3000):
        text = "".join(chance.choice(alphabet) for _ in range(chance.randint(0, 12)))
        literal = '"""' + escape(text) + '"""'
        assert ast.literal_eval(literal) == text, literal
        assert "\n" not in literal and "\x00" not in literal


def _template_with(project: Project, old: str, new: str) -> None:
    template = project.root / "script.py.mako"
    text = template.read_text()
    assert text.count(old) == 1
    template.write_text(text.replace(old, new))


def test_a_template_that_lets_text_out_writes_nothing(project: Project) -> None:
    """A project whose template pastes the message in as it is (as it once did) still writes nothing that
    would not compile or whose doc is not the message."""
    _template_with(project, "${revision_text.docstring(message, fields)}", '"""${message}\n"""')
    for message in (ONE_LINE_PAYLOAD, "a \\U b"):
        refused = project.alembic("revision", "-m", message, pass_db=False)
        assert refused.returncode == ExitCode.INTERNAL, refused.stdout + refused.stderr
        [line] = refused.stderr.splitlines()
        assert line.startswith("error: the revision script.py.mako rendered")
        assert _listing(project) == []
        _assert_never_ran(project)


SPOILERS = {
    "syntax": "path.write_text(path.read_text() + '\\ndef (\\n')",
    "docstring": 'path.write_text(\'"""another doc"""\\n\' + path.read_text())',
}


@pytest.mark.parametrize("spoiler", list(SPOILERS))
@pytest.mark.parametrize("sql", [False, True])
def test_a_revision_that_does_not_load_as_written_is_removed(
    project: Project, tmp_path: Path, spoiler: str, sql: bool
) -> None:
    """A post-write hook that spoils the file between Alembic writing and loading it: create removes the
    revision (and its SQL files) and says so in one line."""
    script = tmp_path / "spoil.py"
    script.write_text(f"import sys\nfrom pathlib import Path\npath = Path(sys.argv[1])\n{SPOILERS[spoiler]}\n")
    with (project.root / "alembic.ini").open("a") as ini:
        ini.write(
            "\n[post_write_hooks]\nhooks = spoil\nspoil.type = exec\n"
            f"spoil.executable = {sys.executable}\nspoil.options = {script} REVISION_SCRIPT_FILENAME\n"
        )
    failed = project.migrate("create", *(["--sql"] if sql else []), "-m", "spoiled step", pass_db=False)
    assert failed.returncode == ExitCode.INTERNAL, failed.stdout + failed.stderr
    [line] = failed.stderr.splitlines()
    assert line.startswith("error: ") and line.lower().endswith("the revision was not kept"), line
    assert _listing(project) == []


def test_python_api_refuses_too(project: Project) -> None:
    """Through Alembic's Python API (no command line), a message with a NUL is refused as an exception, and
    nothing is written."""
    code = (
        "from alembic import command\nfrom alembic.config import Config\n"
        "try:\n    command.revision(Config('alembic.ini'), 'nul \\x00 byte')\n"
        "except Exception as error:\n    print(type(error).__name__)\n"
    )
    ran = subprocess.run(
        [sys.executable, "-c", code], cwd=project.root, env=project.env(), capture_output=True, text=True, timeout=120
    )
    # refused by env.py's revision hook, before Alembic renders anything: the layer's own error, not Alembic's
    # "Template rendering failed"
    assert ran.returncode == 0 and ran.stdout.strip().endswith("UsageError"), ran.stdout + ran.stderr
    assert _listing(project) == []
