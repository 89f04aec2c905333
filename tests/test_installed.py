"""Installed, it works from anywhere: a wheel built from the repository, in a fresh virtual environment, runs
CCDash's migrations from an empty folder with an empty home, and ``-c`` / ``$ALEMBIC_CONFIG`` / ``./alembic.ini``
choose another environment.

The wheel is built once per test run from a copy of the repository's files (so the build leaves nothing in the
checkout), and installed with its dependencies into a virtual environment under pytest's temporary folder, which
every parallel worker uses (``conftest.built_once``).
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from conftest import REPO, built_once, interruptible

ENVIRONMENT_FILES = ("alembic.ini", "env.py", "script.py.mako")
INSTALLED_FOLDER = "ccdash_alembic/ccdash/migrations"


def _environment_files(root: Path) -> dict[str, bytes]:
    """CCDash's migration environment as the repository has it: relative path -> bytes."""
    files = {name: (root / name).read_bytes() for name in ENVIRONMENT_FILES}
    for path in sorted((root / "versions").iterdir()):
        if path.is_file() and path.suffix in (".py", ".sql"):
            files[f"versions/{path.name}"] = path.read_bytes()
    return files


def _heads() -> list[str]:
    return sorted(ScriptDirectory.from_config(Config(str(REPO / "alembic.ini"))).get_heads())


def _versions(db: Path) -> list[str]:
    connection = duckdb.connect(str(db), read_only=True)
    try:
        return sorted(row[0] for row in connection.execute("SELECT version_num FROM alembic_version").fetchall())
    finally:
        connection.close()


@dataclass
class Installed:
    """A virtual environment with the wheel installed."""

    venv: Path
    wheel: Path

    @property
    def bin(self) -> Path:
        return self.venv / "bin"

    @functools.cached_property
    def ini(self) -> Path:
        """The installed alembic.ini, as the installed package itself reports it."""
        found = subprocess.run(
            [str(self.bin / "python"), "-c", "from ccdash_alembic.ccdash import environment as e; print(e.INSTALLED)"],
            cwd=self.venv,  # not the checkout, whose ccdash_alembic a -c script would import
            capture_output=True,
            text=True,
            check=True,
        )
        return Path(found.stdout.strip())


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    base = built_once(tmp_path_factory, "installed", _build_and_install)
    (wheel,) = (base / "wheels").glob("ccdash_alembic-*.whl")
    return Installed(venv=base / "venv", wheel=wheel)


def _copy_repository(source: Path) -> None:
    """The repository's files, to build from: a build writes into the folder it builds."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)


def _build_and_install(base: Path) -> None:
    """``source/``: a copy of the repository; ``wheels/``: the wheel built from it; ``venv/``: a virtual
    environment with the wheel installed."""
    source = base / "source"
    _copy_repository(source)
    wheels = base / "wheels"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "-w", str(wheels)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    (wheel,) = wheels.glob("ccdash_alembic-*.whl")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    install = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import ccdash_alembic; print(ccdash_alembic.__file__)"],
        cwd=base,
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(where.stdout.strip()).is_relative_to(venv), where.stdout  # the wheel's copy, not the checkout


@dataclass
class Place:
    """An empty folder to run from, and an empty home (so the default database is $HOME/.ccdash/ccdash.db)."""

    folder: Path
    home: Path

    @property
    def default_db(self) -> Path:
        return self.home / ".ccdash" / "ccdash.db"

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("CCDASH_DB_PATH", "ALEMBIC_CONFIG", "PYTHONPATH", "VIRTUAL_ENV")
        }
        env.update(HOME=str(self.home), **extra)
        return env


@pytest.fixture
def place(tmp_path: Path) -> Place:
    (tmp_path / "cwd").mkdir()
    (tmp_path / "home").mkdir()
    return Place(folder=tmp_path / "cwd", home=tmp_path / "home")


def run(
    program: Path, *args: str, cwd: Path, env: dict[str, str], timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(program), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def test_the_wheel_carries_the_repository_environment_and_nothing_else(installed: Installed) -> None:
    """The environment in the wheel is the repository's own files, byte for byte, and only those."""
    with zipfile.ZipFile(installed.wheel) as wheel:
        packed = {
            name.removeprefix(f"{INSTALLED_FOLDER}/"): wheel.read(name)
            for name in wheel.namelist()
            if name.startswith(f"{INSTALLED_FOLDER}/")
        }
    assert packed == _environment_files(REPO)
    # installed, alembic.ini's %(here)s names the installed copy, so its env.py and revisions are the ones run
    ini = installed.ini
    assert ini.is_file() and ini.is_relative_to(installed.venv)
    probe = (
        "import sys\nfrom alembic.config import Config\nfrom alembic.script import ScriptDirectory\n"
        "script = ScriptDirectory.from_config(Config(sys.argv[1]))\n"
        "print(script.dir)\nprint(script.env_py_location)\nprint(*sorted(script.get_heads()))\n"
    )
    found = run(installed.bin / "python", "-c", probe, str(ini), cwd=installed.venv, env=dict(os.environ))
    assert found.returncode == 0, found.stderr
    directory, env_py, heads = found.stdout.splitlines()
    assert Path(directory) == ini.parent and Path(env_py) == ini.parent / "env.py"
    assert heads.split() == _heads()


def test_the_sdist_carries_the_environment(tmp_path: Path) -> None:
    """``python -m build`` makes the wheel from the sdist: the environment must be in it too."""
    source = tmp_path / "source"
    _copy_repository(source)
    built = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys\nfrom setuptools import build_meta\nprint(build_meta.build_sdist(sys.argv[1]))",
            str(tmp_path),
        ],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    (sdist,) = tmp_path.glob("*.tar.gz")
    with tarfile.open(sdist) as archive:
        root = archive.getnames()[0].split("/", 1)[0]
        carried = {}
        for name in _environment_files(REPO):
            member = archive.extractfile(f"{root}/{name}")
            assert member is not None, name
            carried[name] = member.read()
    assert carried == _environment_files(REPO)


def test_commands_from_an_empty_folder_with_an_empty_home(installed: Installed, place: Place) -> None:
    migrate = installed.bin / "ccdash-migrate"
    env = place.env()
    for command in (["up"], ["status"], ["validate"], ["history"]):
        result = run(migrate, *command, cwd=place.folder, env=env)
        assert result.returncode == 0, (command, result.stdout, result.stderr)
        assert f"Configuration: {installed.ini} (from default: CCDash's migrations)" in result.stderr.splitlines()
    assert place.default_db.is_file() and _versions(place.default_db) == _heads()
    status = run(migrate, "status", "--json", cwd=place.folder, env=env)
    state = json.loads(status.stdout)
    assert sorted(state["current"]) == _heads() and state["pending"] == []
    assert list(place.folder.iterdir()) == []  # nothing written where it was run

    db = place.home / "elsewhere" / "other.db"
    for command in (["up"], ["status"], ["validate"], ["history"]):
        result = run(migrate, "-x", f"db={db}", *command, cwd=place.folder, env=env)
        assert result.returncode == 0, (command, result.stdout, result.stderr)
    assert _versions(db) == _heads()
    history = run(migrate, "-x", f"db={db}", "history", "--json", cwd=place.folder, env=env)
    assert {row["version"] for row in json.loads(history.stdout)} >= set(_heads())

    quiet = run(migrate, "-q", "-x", f"db={db}", "status", cwd=place.folder, env=env)
    assert quiet.returncode == 0 and "Configuration:" not in quiet.stderr


def test_serve_from_an_empty_folder_answers(installed: Installed, place: Place) -> None:
    db = place.home / "served.db"
    migrate = installed.bin / "ccdash-migrate"
    assert run(migrate, "-x", f"db={db}", "up", cwd=place.folder, env=place.env()).returncode == 0
    server = subprocess.Popen(
        [str(migrate), "-x", f"db={db}", "serve", "--port", "0"],
        cwd=place.folder,
        env=place.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=interruptible,
    )
    try:
        assert server.stdout is not None
        banner = server.stdout.readline()
        match = re.search(r"at (http://127\.0\.0\.1:\d+/)", banner)
        assert match, banner
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(match.group(1) + "status.json", timeout=60) as response:
            assert response.status == 200
            state = json.loads(response.read())
        assert sorted(state["current"]) == _heads()
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.communicate()
    assert server.returncode == 0


API = """\
import json, sys
import ccdash_alembic
from ccdash_alembic.ccdash import environment
result = ccdash_alembic.upgrade(sys.argv[1])
state = ccdash_alembic.status(sys.argv[1])
print(json.dumps({"after": result.after, "steps": [s.version for s in result.steps], "current": state.current,
                  "pending": state.pending, "default": str(environment.config_file())}))
"""


def test_the_api_needs_no_config_file(installed: Installed, place: Place) -> None:
    db = place.home / "api.db"
    result = run(installed.bin / "python", "-c", API, str(db), cwd=place.folder, env=place.env())
    assert result.returncode == 0, result.stderr
    done = json.loads(result.stdout)
    assert sorted(done["after"]) == sorted(done["current"]) == _heads() and done["pending"] == []
    assert done["steps"] and done["default"] == str(installed.ini)
    assert result.stderr == ""  # the application's output is its own


def test_stock_alembic_with_the_installed_ini(installed: Installed, place: Place) -> None:
    printed = run(installed.bin / "ccdash-migrate", "config", cwd=place.folder, env=place.env())
    assert printed.returncode == 0, printed.stderr
    assert Path(printed.stdout.strip()) == installed.ini
    assert printed.stderr.strip() == f"Configuration: {installed.ini} (from default: CCDash's migrations)"
    db = place.home / "stock.db"
    result = run(
        installed.bin / "alembic", "-c", printed.stdout.strip(), "-x", f"db={db}", "upgrade", "head",
        cwd=place.folder, env=place.env(),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert _versions(db) == _heads()


TINY_ENV = """\
from alembic import context

from ccdash_alembic.runtime.environment import run

run(context)
"""
TINY_REVISION = """\
\"\"\"tiny\"\"\"
import sqlalchemy as sa
from alembic import op

revision = "20250101000001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table("tiny", sa.Column("id", sa.Integer, primary_key=True))


def downgrade():
    op.drop_table("tiny")
"""


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    """A project of one's own: its own env.py and one revision; its alembic.ini."""
    root = tmp_path / "tiny"
    (root / "versions").mkdir(parents=True)
    shutil.copy(REPO / "alembic.ini", root / "alembic.ini")
    (root / "env.py").write_text(TINY_ENV)
    (root / "versions" / "20250101000001_tiny.py").write_text(TINY_REVISION)
    return root / "alembic.ini"


def test_c_then_alembic_config_then_the_folder_then_ccdash(installed: Installed, place: Place, tiny: Path) -> None:
    migrate = installed.bin / "ccdash-migrate"
    missing = str(place.home / "missing.ini")

    def up(db: Path, *args: str, cwd: Path = place.folder, **env: str) -> subprocess.CompletedProcess[str]:
        return run(migrate, "-x", f"db={db}", *args, "up", cwd=cwd, env=place.env(**env))

    by_variable = up(place.home / "a.db", ALEMBIC_CONFIG=str(tiny))
    assert by_variable.returncode == 0, by_variable.stderr
    assert f"Configuration: {tiny} (from $ALEMBIC_CONFIG)" in by_variable.stderr.splitlines()
    assert _versions(place.home / "a.db") == ["20250101000001"]

    by_option = up(place.home / "b.db", "-c", str(tiny), ALEMBIC_CONFIG=missing)  # -c first: the variable unread
    assert by_option.returncode == 0, by_option.stderr
    assert "Configuration:" not in by_option.stderr
    assert _versions(place.home / "b.db") == ["20250101000001"]

    in_the_folder = up(place.home / "c.db", cwd=tiny.parent)
    assert in_the_folder.returncode == 0, in_the_folder.stderr
    assert _versions(place.home / "c.db") == ["20250101000001"]

    variable_over_folder = up(place.home / "d.db", cwd=tiny.parent, ALEMBIC_CONFIG=str(installed.ini))
    assert variable_over_folder.returncode == 0, variable_over_folder.stderr
    assert _versions(place.home / "d.db") == _heads()

    for args, env in (((), {"ALEMBIC_CONFIG": missing}), (("-c", missing), {})):
        refused = up(place.home / "e.db", *args, **env)
        assert refused.returncode == 2, refused.stderr
        assert refused.stderr.strip().splitlines() == [
            f"error: there is no configuration file {missing} (from {'-c' if args else '$ALEMBIC_CONFIG'}). "
            + ("Give the path of an alembic.ini, or leave -c out" if args else "Set it to an alembic.ini, or unset it")
        ]
        assert not (place.home / "e.db").exists()

    for cwd, env, expected in (
        (place.folder, {"ALEMBIC_CONFIG": str(tiny)}, tiny),
        (tiny.parent, {}, tiny),
        (place.folder, {}, installed.ini),
    ):
        printed = run(migrate, "config", cwd=cwd, env=place.env(**env))
        assert printed.returncode == 0 and Path(printed.stdout.strip()) == expected, printed.stderr


def test_writing_commands_refuse_the_installed_revisions(installed: Installed, place: Place) -> None:
    versions = installed.ini.parent / "versions"
    before = sorted(p.name for p in versions.iterdir())
    for command in (["create", "-m", "sneaky"], ["revision", "-m", "sneaky"], ["merge", "heads"]):
        result = run(installed.bin / "ccdash-migrate", *command, cwd=place.folder, env=place.env())
        assert result.returncode == 2, (command, result.stderr)
        assert result.stderr.startswith(f"error: CCDash's installed revisions ({versions}) are part of the package")
    assert sorted(p.name for p in versions.iterdir()) == before
    assert list(place.folder.iterdir()) == []


def test_the_checkout_uses_its_own_environment_from_any_folder(place: Place) -> None:
    """In the development checkout (an editable install) the default is the repository's alembic.ini."""
    printed = run(Path(sys.executable).parent / "ccdash-migrate", "config", cwd=place.folder, env=place.env())
    assert printed.returncode == 0, printed.stderr
    assert Path(printed.stdout.strip()) == REPO / "alembic.ini"


@pytest.fixture
def pipx() -> Iterator[str]:
    found = shutil.which("pipx", path=str(Path(sys.executable).parent)) or shutil.which("pipx")
    if found is None:
        pytest.skip("pipx is not installed")
    yield found


def test_pipx_install(installed: Installed, place: Place, pipx: str, tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "ALEMBIC_CONFIG", "CCDASH_DB_PATH")},
        "PIPX_HOME": str(tmp_path / "pipx"),
        "PIPX_BIN_DIR": str(tmp_path / "pipx-bin"),
    }
    install = subprocess.run(
        [pipx, "install", str(installed.wheel)], env=env, capture_output=True, text=True, timeout=600
    )
    assert install.returncode == 0, install.stderr
    migrate = tmp_path / "pipx-bin" / "ccdash-migrate"
    result = run(migrate, "up", cwd=place.folder, env=place.env())
    assert result.returncode == 0, result.stderr
    assert _versions(place.default_db) == _heads()
