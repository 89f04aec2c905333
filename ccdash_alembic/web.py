"""``ccdash-migrate serve``: a read-only status page on 127.0.0.1.

Each request reads the database afresh through ``status.read`` (open read-only, read, close), so the page never
holds the file between requests, and shows "in use" instead of waiting when a migration or CCDash has it.
The page is one HTML document with inline SVG and CSS and no script or external asset (its
Content-Security-Policy forbids any); everything taken from the database or the revision files is
HTML-escaped by the template's default filter.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources

from alembic.config import Config
from mako.template import Template

from ccdash_alembic import state as states
from ccdash_alembic.errors import MigrateError
from ccdash_alembic.settings import Settings

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


@dataclass(frozen=True)
class Node:
    revision: states.Revision
    x: int
    y: int


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
    for row, revision in enumerate(revisions):
        parent = revision.parents[0] if revision.parents else None
        lane = lanes.get(parent, 0) if parent is not None else 0
        if parent is not None and (parent, lane) in taken:
            lane = max(lanes.values(), default=0) + 1
        if parent is not None:
            taken.add((parent, lane))
        lanes[revision.revision] = lane
        nodes[revision.revision] = Node(revision, MARGIN + lane * LANE, MARGIN + row * ROW)
    edges = [
        Edge(nodes[p].x, nodes[p].y, node.x, node.y)
        for node in nodes.values()
        for p in node.revision.parents
        if p in nodes
    ]
    width = MARGIN * 2 + (max(lanes.values(), default=0) + 1) * LANE
    height = MARGIN * 2 + max(len(revisions) - 1, 0) * ROW
    return list(nodes.values()), edges, width, height


def bars(revisions: list[states.Revision]) -> list[tuple[states.Revision, int]]:
    """The timed revisions with their bar's length, the slowest ``BAR`` long (at least 2, to stay visible)."""
    timed = [r for r in revisions if r.execution_time_ms is not None]
    slowest = max((r.execution_time_ms or 0 for r in timed), default=0)
    return [(r, max(2, round(BAR * (r.execution_time_ms or 0) / slowest)) if slowest else 2) for r in timed]


@cache
def _template() -> Template:
    """The page's template, compiled once per process."""
    return Template(
        resources.files("ccdash_alembic").joinpath("templates/status.html.mako").read_text(encoding="utf-8"),
        default_filters=["str", "h"],
    )


def render(state: states.Status | None, error: str | None = None) -> str:
    """The page: for a status, or for the one-line error that kept it from being read."""
    nodes, edges, width, height = layout(state.revisions if state else [])
    return str(
        _template().render(
            state=state,
            error=error,
            nodes=nodes,
            edges=edges,
            graph_width=width,
            graph_height=height,
            timed=bars(state.revisions if state else []),
            generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        )
    )


def make_server(config: Config, settings: Settings, host: str, port: int) -> ThreadingHTTPServer:
    """A server for the page (``/``) and the same status as JSON (``/status.json``); GET only."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "ccdash-migrate"

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path not in ("/", "/status.json"):
                self._send(HTTPStatus.NOT_FOUND, "text/plain; charset=utf-8", b"Not found\n")
                return
            try:
                state, error = states.read(config, settings), None
            except MigrateError as failure:
                state, error = None, str(failure)
            if path == "/status.json":
                body = json.dumps(state.as_dict() if state else {"error": error}, indent=2).encode()
                self._send(HTTPStatus.OK if state else HTTPStatus.SERVICE_UNAVAILABLE, "application/json", body)
                return
            code = HTTPStatus.OK if state else HTTPStatus.SERVICE_UNAVAILABLE
            self._send(code, "text/html; charset=utf-8", render(state, error).encode())

        def _send(self, code: HTTPStatus, content_type: str, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in _SECURITY_HEADERS.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

    return ThreadingHTTPServer((host, port), Handler)
