"""``ccdash-migrate serve`` under hostile or heavy use, against a real server process: pollers never keep a
migration from the file, only loopback Host names are answered, idle connections are closed and cost no
thread each."""

from __future__ import annotations

import contextlib
import http.client
import itertools
import json
import os
import re
import select
import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from conftest import BIN, Project, items_revisions

from ccdash_alembic.runtime import web


@dataclass
class Served:
    """A running ``ccdash-migrate serve``."""

    process: subprocess.Popen[str]
    host: str
    port: int

    def sockets(self) -> int:
        """How many sockets the server process has open now."""
        found = 0
        for fd in Path(f"/proc/{self.process.pid}/fd").iterdir():
            with contextlib.suppress(FileNotFoundError):
                found += os.readlink(fd).startswith("socket:")
        return found

    def threads(self) -> int:
        """How many threads the server process has now."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        found = re.search(r"^Threads:\s+(\d+)$", status, re.MULTILINE)
        assert found
        return int(found.group(1))


@contextmanager
def serving(project: Project, *args: str) -> Iterator[Served]:
    """``ccdash-migrate serve --port 0`` as a subprocess; yields it once it listens."""
    server = subprocess.Popen(
        [str(BIN / "ccdash-migrate"), "-x", f"db={project.db}", "serve", "--port", "0", *args],
        cwd=project.root,
        env=project.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        found = re.search(r"http://(.+):(\d+)/", line)
        assert found, line
        yield Served(server, found.group(1).strip("[]"), int(found.group(2)))
    finally:
        server.terminate()
        server.wait(timeout=30)


def request(served: Served, path: str = "/status.json", host: str | None = "default") -> tuple[int, str]:
    """GET ``path`` with the given Host header (``None``: no Host header at all); status code and body."""
    connection = http.client.HTTPConnection(served.host, served.port, timeout=60)
    try:
        connection.putrequest("GET", path, skip_host=True)
        if host is not None:
            connection.putheader("Host", f"127.0.0.1:{served.port}" if host == "default" else host)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def closed_by_peer(sock: socket.socket, timeout: float = 120) -> bool:
    """Whether the server closes ``sock`` (within a generous ``timeout``, which only keeps a broken server from
    hanging the test)."""
    sock.settimeout(timeout)
    try:
        return sock.recv(1024) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


# --- pollers and a migration ---------------------------------------------------------------------------------------


def test_three_pollers_never_keep_a_migration_from_the_file(project: Project) -> None:
    items_revisions(project)
    assert project.migrate("up").returncode == 0
    assert project.alembic("downgrade", "base").returncode == 0
    stop = threading.Event()
    answers: list[int] = []
    failures: list[BaseException] = []

    with serving(project) as served:

        def poll() -> None:
            try:
                while not stop.is_set():
                    answers.append(request(served)[0])
            except BaseException as error:
                failures.append(error)

        pollers = [threading.Thread(target=poll) for _ in range(3)]
        for poller in pollers:
            poller.start()
        try:
            for _ in range(3):
                up = project.migrate("-x", "lock_timeout=5", "up")
                assert up.returncode == 0, up.stderr
                assert project.rows("SELECT version_num FROM alembic_version") == [("20250101000003",)]
                down = project.migrate("-x", "lock_timeout=5", "downgrade", "base")
                assert down.returncode == 0, down.stderr
        finally:
            stop.set()
            for poller in pollers:
                poller.join(timeout=120)
    assert failures == []
    assert len(answers) > 100 and set(answers) <= {200}  # the pollers were answered all along


def test_reads_are_shared_and_spaced(project: Project) -> None:
    """However many requests come, the file is read at most once per ``FRESH_FOR`` seconds while it does not
    change: each answer says when its read began, and distinct reads are at least that far apart."""
    items_revisions(project)
    assert project.migrate("up").returncode == 0
    answers = 0
    reads: set[datetime] = set()
    with serving(project) as served:
        while len(reads) < 3:
            code, body = request(served)
            assert code == 200
            reads.add(datetime.fromisoformat(json.loads(body)["read_at"].rstrip("Z")))
            answers += 1
    times = sorted(reads)
    assert all(later - earlier >= timedelta(seconds=web.FRESH_FOR) for earlier, later in itertools.pairwise(times))
    assert answers > len(reads)


def test_a_change_to_the_file_is_shown_at_once(project: Project) -> None:
    """A finished migration changed the file: the next request reads it again, spacing or not."""
    items_revisions(project)
    with serving(project) as served:
        assert json.loads(request(served)[1])["current"] == []
        assert project.migrate("-x", "lock_timeout=0", "up").returncode == 0
        assert json.loads(request(served)[1])["current"] == ["20250101000003"]


# --- Host header ---------------------------------------------------------------------------------------------------


def test_only_loopback_host_names_are_answered(project: Project) -> None:
    items_revisions(project)
    with serving(project) as served:
        for host in ("127.0.0.1", f"127.0.0.1:{served.port}", "localhost", "LOCALHOST:8765", "[::1]", "[::1]:80"):
            assert request(served, host=host)[0] == 200, host
        for host in (
            "evil.example",
            f"evil.example:{served.port}",
            "127.0.0.1.evil.example",
            "localhost.evil.example",
            "127.0.0.2",
            "localhost:port",
            "",
        ):
            code, body = request(served, host=host)
            assert code == 421, host
            assert "20250101000001" not in body
        assert request(served, host=None)[0] == 400  # no Host at all
        assert request(served, "/", host="evil.example")[0] == 421


# --- idle and slow connections ----------------------------------------------------------------------------------------


def test_idle_connections_take_no_thread_and_do_not_block_a_request(project: Project) -> None:
    items_revisions(project)
    with serving(project) as served, ExitStack() as stack:
        idle = []
        for number in range(50):
            sock = stack.enter_context(socket.create_connection((served.host, served.port), timeout=30))
            if number % 2:
                sock.sendall(b"GET /status.json HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # a request that never ends
            idle.append(sock)
        code, body = request(served)
        assert code == 200 and '"pending"' in body
        assert served.threads() < 20  # not one per connection
        assert all(closed_by_peer(sock) for sock in idle)  # each is closed by the server after its timeout
        assert request(served)[0] == 200


def test_a_trickling_request_is_cut_off(project: Project) -> None:
    """A client sending its request a byte at a time (never idle for long) is closed all the same: the
    timeout covers the whole request, not each read."""
    items_revisions(project)
    with serving(project) as served, socket.create_connection((served.host, served.port), timeout=30) as sock:
        text = b"GET /status.json HTTP/1.1\r\n" + b"X-Padding: " + b"a" * 10_000
        closed = False
        for byte in text:
            try:
                sock.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            readable, _, _ = select.select([sock], [], [], 0.25)
            if readable:
                closed = closed_by_peer(sock, timeout=1)
                break
        assert closed, "the server was still waiting for the request"


def test_a_flood_of_connections_does_not_lock_out_a_client(project: Project) -> None:
    """More connections than the server keeps waiting: the oldest waiting ones are dropped, a new request is
    answered."""
    items_revisions(project)
    with serving(project) as served, ExitStack() as stack:
        assert request(served)[0] == 200
        before = served.sockets()  # the listening socket and the event loop's own
        flood = [
            stack.enter_context(socket.create_connection((served.host, served.port), timeout=30))
            for _ in range(web.MAX_WAITING + 20)
        ]
        assert request(served)[0] == 200  # accepted after every connection of the flood
        assert served.sockets() <= before + web.MAX_WAITING + 1  # the waiting ones, and that request's, at most
        assert closed_by_peer(flood[0])
