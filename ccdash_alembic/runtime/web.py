"""``ccdash-migrate serve``: a read-only status page on 127.0.0.1.

The page reads the database through ``state.read`` (open read-only, read, close), so it never holds the file
between reads, and shows "in use" instead of waiting when a migration or CCDash has it. The page is one HTML
document with inline SVG and CSS and no script or external asset (its Content-Security-Policy forbids any);
everything taken from the database or the revision files is HTML-escaped by the template's default filter.

A page left open, or a few clients polling ``/status.json`` back to back, must never keep a migration from the
file. DuckDB's read-only opens take a shared lock, and a migration that finds the file locked sleeps (at most
1 s, see ``database.connect``) and tries again; readers that overlap each other would leave it no gap. So the
server reads one at a time, answers every request from the last read, and reads again only ``FRESH_FOR``
seconds after the last read ended (at once if the file changed since, which only a writer that has finished
can do). Every gap between reads is longer than the migration's longest sleep, so its next try falls in one.
When a read finds the file in use, the next waits ``IN_USE_BACKOFF`` seconds, so the file is left alone while
it changes hands. A PostgreSQL database is read the same way, every ``FRESH_FOR`` seconds, but needs no gaps:
its reads take none of a run's locks (``state.reading``), and the page names the migration running meanwhile.

Connections are served by one event loop: a connection costs no thread while its request arrives, must send
the whole request head within ``REQUEST_TIMEOUT`` seconds (an idle or trickling client is closed), and at most
``MAX_WAITING`` connections wait at once (a new one closes the oldest). Complete requests are answered by
``WORKERS`` threads. Bound to a loopback address, the server answers only requests whose Host is
``127.0.0.1``, ``localhost`` or ``[::1]`` (with any port), so a web page cannot reach it by rebinding its own
name to 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import io
import ipaddress
import json
import os
import re
import socket
import sys
import textwrap
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache, cached_property
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from importlib import resources
from pathlib import Path

from alembic.config import Config
from mako.template import Template

from ccdash_alembic.errors import MigrateError, UsageError
from ccdash_alembic.runtime import database
from ccdash_alembic.runtime import state as states
from ccdash_alembic.runtime.settings import Settings

FRESH_FOR = 2.0  # seconds from the end of one read to the next: more than a waiting migration sleeps
IN_USE_BACKOFF = 5.0  # seconds to leave the file alone after a read found it in use
REQUEST_TIMEOUT = 10.0  # seconds a client has to send its request head, and to take the response
MAX_WAITING = 64  # connections still sending their request, at most
WORKERS = 4  # threads answering complete requests
MAX_HEAD = 16 * 1024  # bytes of request line and headers

_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

# Graph geometry, in SVG units.
ROW = 46
LANE = 28
MARGIN = 24
BAR = 330  # the longest bar of the timing chart
# A revision's label (id, state, name) is never cut: a long name goes on further lines of WRAP characters, each
# LINE lower, and the graph is as wide as its longest label. CHAR bounds one character's advance in the
# labels' 12px monospace font (0.6em in the usual monospace fonts), so the width computed is never short.
WRAP = 72
LINE = 16
CHAR = 7.5


@dataclass(frozen=True)
class Node:
    revision: states.Revision
    x: int
    y: int
    name_lines: tuple[str, ...] = ("",)  # the name, wrapped at WRAP characters

    @property
    def label_prefix(self) -> int:
        """Characters before the name on the label's first line (id, two spaces, state, two spaces), which
        indent its further lines."""
        return len(self.revision.revision) + len(self.revision.state) + 4

    @property
    def label_chars(self) -> int:
        return self.label_prefix + max(len(line) for line in self.name_lines)


def wrap_name(name: str) -> tuple[str, ...]:
    """A revision's name in lines of at most ``WRAP`` characters, broken between words where it can be."""
    return tuple(textwrap.wrap(name, WRAP, break_on_hyphens=False)) or ("",)


def label_width(nodes: list[Node]) -> int:
    """The width the labels need right of the lanes, in SVG units (never less than the page had before)."""
    return max([520, *(round(node.label_chars * CHAR) + MARGIN for node in nodes)])


@dataclass(frozen=True)
class Edge:
    x1: int
    y1: int
    x2: int
    y2: int


def layout(revisions: list[states.Revision]) -> tuple[list[Node], list[Edge], int, int]:
    """Place revisions (base first) one per row; a revision stays in its first parent's lane unless a sibling
    took it, and a branch opens a lane to the right. Returns nodes, edges, width and height."""
    lanes: dict[str, int] = {}
    taken: set[tuple[str, int]] = set()  # (parent, lane) already continued by a child
    nodes: dict[str, Node] = {}
    y = MARGIN
    for revision in revisions:
        lane = _lane(revision.parents[0] if revision.parents else None, lanes, taken)
        lanes[revision.revision] = lane
        lines = wrap_name(revision.name)
        nodes[revision.revision] = Node(revision, MARGIN + lane * LANE, y, lines)
        y += ROW + (len(lines) - 1) * LINE  # a label of several lines pushes the next row down
    edges = [
        Edge(nodes[p].x, nodes[p].y, node.x, node.y)
        for node in nodes.values()
        for p in node.revision.parents
        if p in nodes
    ]
    width = MARGIN * 2 + (max(lanes.values(), default=0) + 1) * LANE
    last = list(nodes.values())[-1] if nodes else None
    height = MARGIN if last is None else last.y + MARGIN + (len(last.name_lines) - 1) * LINE
    return list(nodes.values()), edges, width, max(height, MARGIN * 2)


def _lane(parent: str | None, lanes: dict[str, int], taken: set[tuple[str, int]]) -> int:
    """The lane of a revision whose first parent is ``parent``: that parent's, unless a sibling continued it
    already, then a new lane right of all others. Marks the lane it gives as continued from ``parent``."""
    if parent is None:
        return 0
    lane = lanes.get(parent, 0)
    if (parent, lane) in taken:
        lane = max(lanes.values(), default=0) + 1
    taken.add((parent, lane))
    return lane


def bars(revisions: list[states.Revision]) -> list[tuple[states.Revision, int]]:
    """The timed revisions with their bar's length, the slowest ``BAR`` long (at least 2, to stay visible)."""
    timed = [r for r in revisions if r.execution_time_ms is not None]
    slowest = max((r.execution_time_ms or 0 for r in timed), default=0)
    return [(r, max(2, round(BAR * (r.execution_time_ms or 0) / slowest)) if slowest else 2) for r in timed]


@cache
def _template() -> Template:
    """The page's template, compiled once per process."""
    return Template(
        resources.files("ccdash_alembic.runtime").joinpath("templates/status.html.mako").read_text(encoding="utf-8"),
        default_filters=["str", "h"],
    )


def render(state: states.Status | None, error: str | None = None, read_at: datetime | None = None) -> str:
    """The page: for a status, or for the one-line error that kept it from being read (made at ``read_at``)."""
    nodes, edges, width, height = layout(state.revisions if state else [])
    return str(
        _template().render(
            state=state,
            error=error,
            nodes=nodes,
            edges=edges,
            graph_width=width,
            graph_height=height,
            label_width=label_width(nodes),
            line_height=LINE,
            timed=bars(state.revisions if state else []),
            generated=(read_at or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M:%S UTC"),
        )
    )


@dataclass
class Reading:
    """One read of the database: its status, or the error that kept it from being read."""

    state: states.Status | None
    error: str | None
    at: datetime  # when the read began (UTC)

    @property
    def in_use(self) -> bool:
        return self.state is not None and self.state.in_use_by is not None

    @cached_property
    def html_body(self) -> bytes:
        return render(self.state, self.error, self.at).encode()

    @cached_property
    def json_body(self) -> bytes:
        data = self.state.as_dict() if self.state else {"error": self.error}
        return json.dumps({**data, "read_at": states.plain(self.at.replace(tzinfo=None))}, indent=2).encode()


_Signature = tuple[tuple[int, int, int] | None, ...]


@dataclass
class Reader:
    """The reads of one server: one at a time, each answering every request until the next is due."""

    read: Callable[[], states.Status]
    path: Path | None  # the database file, whose change makes a read due at once
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _last: Reading | None = None
    _signature: _Signature = ()
    _due: float = 0.0

    def get(self) -> Reading:
        """The last reading, or a new one when it is due; a caller arriving during a read waits for it."""
        with self._lock:
            signature = self._file_signature()
            if (
                self._last is None
                or time.monotonic() >= self._due
                or (signature != self._signature and not self._last.in_use)
            ):
                at = datetime.now(UTC)
                try:
                    self._last = Reading(self.read(), None, at)
                except MigrateError as failure:
                    self._last = Reading(None, str(failure), at)
                self._signature = self._file_signature()
                self._due = time.monotonic() + (IN_USE_BACKOFF if self._last.in_use else FRESH_FOR)
            return self._last

    def _file_signature(self) -> _Signature:
        """Identity, size and modification time of the file and its write-ahead log: a read-only open changes
        neither, a writer that committed does."""
        if self.path is None:
            return ()
        found: list[tuple[int, int, int] | None] = []
        for path in (self.path, self.path.with_name(self.path.name + ".wal")):
            try:
                stat = path.stat()
            except OSError:
                found.append(None)
            else:
                found.append((stat.st_ino, stat.st_size, stat.st_mtime_ns))
        return tuple(found)


_LOOPBACK_HOST = re.compile(r"(?:127\.0\.0\.1|localhost|\[::1\])(?::\d{1,5})?", re.IGNORECASE)


class _Handler(BaseHTTPRequestHandler):
    """One request, parsed and answered by http.server from its complete head; the response is collected and
    sent by the event loop. HTTP/1.0: the connection closes after the response."""

    server_version = "ccdash-migrate"

    def __init__(self, site: Site, head: bytes, client_address: tuple[str, int]) -> None:
        # Not BaseRequestHandler.__init__: there is no socket here, only the bytes the loop read.
        self.site = site
        self.client_address = client_address
        self.rfile = io.BytesIO(head)
        self._response = io.BytesIO()
        self.wfile = self._response
        self.handle()

    def response(self) -> bytes:
        return self._response.getvalue()

    def parse_request(self) -> bool:
        if not super().parse_request():
            return False
        if self.site.checks_host:
            hosts = self.headers.get_all("Host") or []
            if len(hosts) != 1:
                self.send_error(HTTPStatus.BAD_REQUEST, "One Host header is required")
                return False
            if not _LOOPBACK_HOST.fullmatch(hosts[0].strip()):
                self.send_error(
                    HTTPStatus.MISDIRECTED_REQUEST,
                    "This server answers only to 127.0.0.1, localhost and [::1]",
                )
                return False
        return True

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path not in ("/", "/status.json"):
            self._send(HTTPStatus.NOT_FOUND, "text/plain; charset=utf-8", b"Not found\n")
            return
        reading = self.site.reader.get()
        code = HTTPStatus.OK if reading.state else HTTPStatus.SERVICE_UNAVAILABLE
        if path == "/status.json":
            self._send(code, "application/json", reading.json_body)
        else:
            self._send(code, "text/html; charset=utf-8", reading.html_body)

    def _send(self, code: HTTPStatus, content_type: str, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def end_headers(self) -> None:
        for name, value in _SECURITY_HEADERS.items():
            self.send_header(name, value)
        super().end_headers()


_TOO_LARGE = (
    b"HTTP/1.0 431 Request Header Fields Too Large\r\nContent-Type: text/plain\r\nContent-Length: 25\r\n"
    b"Connection: close\r\n\r\nRequest head is too large"
)
_INTERNAL_ERROR = (
    b"HTTP/1.0 500 Internal Server Error\r\nContent-Type: text/plain\r\nContent-Length: 22\r\n"
    b"Connection: close\r\n\r\nInternal server error\n"
)


class _HeadTooLarge(Exception):
    pass


@dataclass
class Site:
    """What every request of one server shares."""

    reader: Reader
    checks_host: bool


class StatusServer:
    """The page's server: bound when made (``server_address`` is known at once), serving until interrupted."""

    def __init__(self, site: Site, listening: socket.socket) -> None:
        self.site = site
        self._socket = listening
        name = listening.getsockname()
        self.server_address: tuple[str, int] = (str(name[0]), int(name[1]))
        self._waiting: dict[asyncio.StreamWriter, None] = {}  # oldest first
        self._workers: ThreadPoolExecutor | None = None

    def serve_forever(self) -> None:
        asyncio.run(self._serve())

    def server_close(self) -> None:
        self._socket.close()

    async def _serve(self) -> None:
        with ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="ccdash-status") as self._workers:
            server = await asyncio.start_server(self._connection, sock=self._socket, limit=MAX_HEAD)
            async with server:
                await server.serve_forever()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._waiting) >= MAX_WAITING:
            oldest = next(iter(self._waiting))
            del self._waiting[oldest]
            oldest.transport.abort()
        self._waiting[writer] = None
        try:
            try:
                async with asyncio.timeout(REQUEST_TIMEOUT):
                    head = await _read_head(reader)
            except _HeadTooLarge:
                head = None
            finally:
                self._waiting.pop(writer, None)
            peer = writer.get_extra_info("peername") or ("", 0)
            response = (
                _TOO_LARGE
                if head is None
                else await asyncio.get_running_loop().run_in_executor(self._workers, self._respond, head, peer)
            )
            writer.write(response)
            async with asyncio.timeout(REQUEST_TIMEOUT):
                await writer.drain()
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            pass  # the client was too slow, went away, or was dropped to make room
        finally:
            writer.close()

    def _respond(self, head: bytes, peer: tuple[str, int]) -> bytes:
        try:
            return _Handler(self.site, head, (str(peer[0]), int(peer[1]))).response()
        except Exception:  # a bug: its traceback goes to the log, the client gets a 500
            traceback.print_exc(file=sys.stderr)
            return _INTERNAL_ERROR


async def _read_head(reader: asyncio.StreamReader) -> bytes:
    """The request line and headers, up to the empty line that ends them."""
    head = b""
    while True:
        try:
            line = await reader.readuntil(b"\n")
        except asyncio.LimitOverrunError as error:
            raise _HeadTooLarge from error
        head += line
        if len(head) > MAX_HEAD:
            raise _HeadTooLarge
        if line in (b"\r\n", b"\n") and head != line:
            return head


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket on ``host``:``port`` (0 picks a free port), or a one-line error."""
    try:
        family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        return socket.create_server(address, family=family, backlog=128)
    except OSError as error:
        raise UsageError(
            f"cannot listen on {host}:{port}: {os.strerror(error.errno) if error.errno else error}",
            "Choose another --host or --port",
        ) from error


def make_server(config: Config, settings: Settings, host: str, port: int) -> StatusServer:
    """A server for the page (``/``) and the same status as JSON (``/status.json``); GET only."""
    listening = _listen(host, port)
    address = listening.getsockname()[0]
    target = database.resolve(settings)
    reader = Reader(read=lambda: states.read(config, settings), path=target.path)
    return StatusServer(Site(reader, checks_host=ipaddress.ip_address(address.split("%")[0]).is_loopback), listening)
