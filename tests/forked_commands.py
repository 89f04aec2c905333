"""Runs ``alembic`` and ``ccdash-migrate`` in forked children of one process that has imported them once.

Each command still runs in a process of its own, with its own folder, environment, arguments, standard
streams and exit code, as a fresh ``alembic`` would, so locks, crashes and file handles behave as they do
for an operator. A Python script that drives Alembic itself (``killer.py``) runs the same way. What differs
is only where the child starts: from a parent that has imported Alembic, SQLAlchemy, DuckDB and the package
(about 0.5 s of CPU a start on a two-core machine, and the suite starts commands over a thousand times) and
has never opened a database nor started a thread.

Tests that are about starting itself (installed wheels, entry points, terminals, commands run in the
background to be signalled) start real programs. So does any request whose environment changes how Python
itself starts (a ``PYTHON*`` variable the server was not started with): ``run`` falls back to a real process.

A shell script that calls the commands by name (CI's workflow) reaches the same server through ``on_path``:
programs named ``alembic`` and ``ccdash-migrate`` that forward their arguments, folder and environment to it
and give back the command's output and exit code. They read no standard input.

Run as a script, this file is the server: ``python forked_commands.py SOCKET``. It prints ``ready`` once it
listens, and stops when the process that started it is gone.
"""

from __future__ import annotations

import atexit
import functools
import io
import json
import os
import runpy
import signal
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import traceback
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, NoReturn

BIN = Path(sys.executable).parent
PROGRAMS = ("alembic", "ccdash-migrate")
# Names the socket of a running server to the programs ``on_path`` writes (they run in a shell the test started)
SERVER = "FORKED_COMMANDS_SERVER"
# Variables a fresh interpreter reads before any code runs; the server cannot apply them to a fork.
_STARTUP = (
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONSTARTUP",
    "PYTHONOPTIMIZE",
    "PYTHONSAFEPATH",
    "PYTHONUTF8",
    "PYTHONIOENCODING",
    "PYTHONWARNINGS",
    "PYTHONNOUSERSITE",
    "PYTHONUSERBASE",
    "PYTHONPLATLIBDIR",
)


def _entry_point(program: str) -> Any:
    """The function a console script of this environment calls."""
    (script,) = entry_points(group="console_scripts", name=program)
    return script.load()


def _command_line(program: str, args: list[str]) -> list[str]:
    """What a fresh process would be started with: a console script of this environment, or Python running a
    script (a path ending in ``.py``)."""
    if program.endswith(".py"):
        return [sys.executable, program, *args]
    return [str(BIN / program), *args]


def _run_script(path: str) -> None:
    runpy.run_path(path, run_name="__main__")


def _main(program: str) -> Any:
    """What the process runs: the console script's function, or the script as ``__main__``."""
    if program.endswith(".py"):
        return functools.partial(_run_script, program)
    return _entry_point(program)


def _exit_code(value: object) -> int:
    """What a Python process exits with after ``sys.exit(value)``."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    print(value, file=sys.stderr)
    return 1


def _standard_streams(request: dict[str, Any]) -> None:
    """Point file descriptors 0-2 and ``sys.std*`` where a fresh process run by ``subprocess.run`` would have
    them: stdin empty, stdout and stderr to the files the client reads."""
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
        os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), fd)
    os.closerange(3, 4096)
    sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding="utf-8")
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8")
    sys.stderr = io.TextIOWrapper(
        io.FileIO(2, "w", closefd=False), encoding="utf-8", errors="backslashreplace", line_buffering=True
    )


def _command(request: dict[str, Any]) -> None:
    """The forked child: become the requested command, run it, and exit as its console script would."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    _standard_streams(request)
    command = _command_line(request["program"], request["args"])
    sys.argv = command[1:] if command[0] == sys.executable else command  # as Python sets it for a script
    try:
        code = _exit_code(_main(request["program"])())
    except SystemExit as stop:
        code = _exit_code(stop.code)
    except BaseException:
        traceback.print_exc()
        code = 1
    try:
        threading._shutdown()  # type: ignore[attr-defined]  # what interpreter shutdown does: join threads
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


class _Handler(socketserver.StreamRequestHandler):
    """One request, in a process forked for it: fork the command, say its pid, wait, say how it ended."""

    def handle(self) -> None:
        request = json.loads(self.rfile.readline())
        if _needs_fresh_start(request["env"]):
            self.wfile.write(b"{}\n")  # the client starts a real process
            return
        pid = os.fork()
        if pid == 0:
            _command(request)
        self.wfile.write(json.dumps({"pid": pid}).encode() + b"\n")
        self.wfile.flush()
        _, status = os.waitpid(pid, 0)
        self.wfile.write(json.dumps({"returncode": os.waitstatus_to_exitcode(status)}).encode() + b"\n")


class _Server(socketserver.ForkingMixIn, socketserver.UnixStreamServer):
    def __init__(self, path: str) -> None:
        super().__init__(path, _Handler)
        self.parent = os.getppid()

    def service_actions(self) -> None:
        super().service_actions()
        if os.getppid() != self.parent:
            os._exit(0)  # the tests that started this server are gone


def _serve(path: str) -> None:
    for program in PROGRAMS:
        _entry_point(program)
    import sqlalchemy.dialects.postgresql.psycopg  # noqa: F401  (what a run on PostgreSQL loads: psycopg, libpq)

    import ccdash_alembic.runtime.api  # noqa: F401  (what env.py and the commands import)

    sys.dont_write_bytecode = True
    server = _Server(path)
    print("ready", flush=True)
    server.serve_forever(poll_interval=0.5)


_server: tuple[subprocess.Popen[bytes], str] | None = None
_starting = threading.Lock()


def _socket() -> str:
    """The server of this test process, started on first use (or the one a program of ``on_path`` was given)."""
    global _server
    if SERVER in os.environ:
        return os.environ[SERVER]
    with _starting:
        if _server is None or _server[0].poll() is not None:
            path = os.path.join(tempfile.mkdtemp(prefix="forked-"), "socket")
            process = subprocess.Popen(
                [sys.executable, __file__, path],
                stdout=subprocess.PIPE,
                env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
            )
            assert process.stdout is not None and process.stdout.readline() == b"ready\n"
            atexit.register(process.kill)
            _server = (process, path)
        return _server[1]


def _needs_fresh_start(env: dict[str, str]) -> bool:
    """Whether ``env`` starts Python otherwise than the server's own environment (asked in the server, so a
    program of ``on_path``, whose environment is the request's, gets the same answer as a test)."""
    return any(env.get(name) != os.environ.get(name) for name in _STARTUP)


def run(
    program: str, args: list[str], cwd: Path, env: dict[str, str], timeout: float | None
) -> subprocess.CompletedProcess[str]:
    """Like ``subprocess.run([BIN/program, *args], cwd=..., env=..., capture_output=True, text=True)``, in a
    forked child of the server."""
    command = _command_line(program, args)
    with tempfile.TemporaryDirectory(prefix="forked-run-") as folder:
        out, err = Path(folder, "stdout"), Path(folder, "stderr")
        request = {
            "program": program,
            "args": args,
            "cwd": str(cwd),
            "env": env,
            "stdout": str(out),
            "stderr": str(err),
        }
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            connection.connect(_socket())
            connection.sendall(json.dumps(request).encode() + b"\n")
            replies = connection.makefile("rb")
            started = json.loads(replies.readline())
            if "pid" not in started:
                return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
            pid = started["pid"]
            connection.settimeout(timeout)
            try:
                ended = replies.readline()
            except TimeoutError:
                os.kill(pid, signal.SIGKILL)
                raise subprocess.TimeoutExpired(command, timeout or 0) from None  # only a set timeout expires
        code = json.loads(ended)["returncode"]
        return subprocess.CompletedProcess(
            command, code, out.read_text(encoding="utf-8"), err.read_text(encoding="utf-8", errors="replace")
        )


def on_path(folder: Path, env: dict[str, str]) -> dict[str, str]:
    """``env`` with ``folder`` first on its PATH, holding an ``alembic`` and a ``ccdash-migrate`` that run the
    command in a forked child of this test process's server."""
    for program in PROGRAMS:
        stand_in = folder / program
        stand_in.write_text(
            f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(Path(__file__).parent)!r})\n"
            f"import forked_commands\nforked_commands.forward({program!r})\n"
        )
        stand_in.chmod(0o755)
    return {**env, "PATH": f"{folder}{os.pathsep}{env.get('PATH', '')}", SERVER: _socket()}


def forward(program: str) -> NoReturn:
    """What a program of ``on_path`` does: run ``program`` with this process's arguments, folder and
    environment, write what it wrote, and end as it ended."""
    env = {name: value for name, value in os.environ.items() if name != SERVER}
    done = run(program, sys.argv[1:], Path.cwd(), env, timeout=None)
    sys.stdout.write(done.stdout)
    sys.stderr.write(done.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    if done.returncode < 0:  # killed by a signal: so is this process
        signal.signal(-done.returncode, signal.SIG_DFL)
        os.kill(os.getpid(), -done.returncode)
    sys.exit(done.returncode)


if __name__ == "__main__":
    _serve(sys.argv[1])
