"""``ccdash-migrate serve``: the read-only status page, over HTTP and in headless Chromium."""

from __future__ import annotations

import re
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from conftest import BIN, REPO, Project, hold

from ccdash_alembic.runtime import web
from ccdash_alembic.runtime.history_tables import Step
from ccdash_alembic.runtime.state import Revision, Status

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = REPO / "tests" / "screenshots"


@contextmanager
def serving(project: Project, url: str | None = None) -> Iterator[str]:
    """``ccdash-migrate serve`` of the project's file (or the database ``url``) on a free port; yields its address."""
    target = f"url={url}" if url else f"db={project.db}"
    server = subprocess.Popen(
        [str(BIN / "ccdash-migrate"), "-x", target, "serve", "--port", "0"],
        cwd=project.root,
        env=project.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        found = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
        assert found, line + (server.stderr.read() if server.stderr else "")
        yield found.group(1)
    finally:
        server.terminate()
        server.wait(timeout=10)


@contextmanager
def chromium_page() -> Iterator[Any]:
    """A page of the system's Chromium (Playwright drives it; no browser is downloaded), 1280 pixels wide,
    closed with its browser at the end."""
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.exists(), "install Chromium first: apt-get install chromium (the README's test command does)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        try:
            yield browser.new_page(viewport={"width": 1280, "height": 900})
        finally:
            browser.close()


def _get(url: str, method: str = "GET") -> tuple[int, dict[str, str], str]:
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode()


def _applied_failed_pending(project: Project) -> None:
    """One revision applied, one whose upgrade failed, one pending behind it."""
    project.write_revision(
        "20250101000001",
        None,
        "import time\ntime.sleep(0.3)\nop.create_table('items', sa.Column('id', sa.Integer, primary_key=True))",
        message="create items",
    )
    project.write_revision(
        "20250101000002", "20250101000001", "raise RuntimeError('no such column: <b>colour</b>')", message="add colour"
    )
    project.write_revision("20250101000003", "20250101000002", message="add size")
    assert project.alembic("upgrade", "head").returncode != 0


def test_everything_from_the_database_is_escaped() -> None:
    hostile = "<script>alert('x')</script>"
    step = Step(
        id=1,
        applied_at=datetime(2026, 1, 1),
        direction="up",
        version="20250101000001",
        name=hostile,
        execution_time_ms=5,
        status="failed",
        checksum="ab" * 32,
        error_message=hostile,
    )
    state = Status(
        database=f"/tmp/{hostile}.db",
        exists=True,
        current=[],
        heads=["20250101000001"],
        revisions=[Revision("20250101000001", hostile, (), "failed", None)],
        last_failure=step,
        history=[step],
    )
    page = web.render(state)
    assert "<script" not in page
    assert page.count("&lt;script&gt;") >= 5  # database, graph, history name and error, failure callout
    assert "<script" not in web.render(None, error=hostile)


def test_graph_layout_gives_a_branch_its_own_lane() -> None:
    revisions = [
        Revision("a", "a", (), "applied", 1),
        Revision("b", "b", ("a",), "applied", 1),
        Revision("c", "c", ("a",), "pending", None),
        Revision("d", "d", ("b", "c"), "pending", None),
    ]
    nodes, edges, width, height = web.layout(revisions)
    lanes = {n.revision.revision: n.x for n in nodes}
    assert lanes["a"] == lanes["b"] == lanes["d"] != lanes["c"]
    assert len(edges) == 4 and width > web.LANE * 2 and height == web.MARGIN * 2 + 3 * web.ROW


def test_server_is_read_only_and_does_not_hold_the_file(project: Project) -> None:
    _applied_failed_pending(project)
    with serving(project) as url:
        code, headers, page = _get(url)
        assert code == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
        assert "default-src 'none'" in headers["Content-Security-Policy"]
        assert 'id="failure"' in page and "&lt;b&gt;colour&lt;/b&gt;" in page
        assert re.search(r"<(script|link|img)\b", page) is None  # no script, no external asset
        code, _, data = _get(url + "status.json")
        assert code == 200 and '"pending": [\n    "20250101000002",\n    "20250101000003"\n  ]' in data
        assert _get(url, "POST")[0] == 501 and _get(url, "DELETE")[0] == 501
        assert _get(url + "nothing")[0] == 404

        # Between requests the file is free: a migration can take it at once, even with no lock wait.
        fixed = project.versions / "20250101000002_add_colour.py"
        fixed.write_text(fixed.read_text().replace("raise RuntimeError('no such column: <b>colour</b>')", "pass"))
        assert project.alembic("-x", "lock_timeout=0", "upgrade", "head").returncode == 0
        assert 'id="up-to-date"' in _get(url)[2]


def test_page_says_when_the_database_is_in_use(project: Project) -> None:
    _applied_failed_pending(project)
    holder = hold(project.db)
    try:
        with serving(project) as url:
            code, _, page = _get(url)
    finally:
        holder.kill()
        holder.wait()
    assert code == 200
    assert 'id="in-use"' in page and f"(PID {holder.pid})" in page
    assert page.count('class="node"') == 3  # the revision files are still shown


def test_status_page_in_chromium(project: Project) -> None:
    """The page loads in a real browser, shows the pending and the failed revision, draws the graph and the
    timing chart; the screenshot is kept in tests/screenshots/."""
    _applied_failed_pending(project)
    SCREENSHOTS.mkdir(exist_ok=True)
    shot = SCREENSHOTS / "status-page.png"
    shot.unlink(missing_ok=True)
    with serving(project) as url, chromium_page() as page:
        failed_requests: list[str] = []
        page.on("requestfailed", lambda request: failed_requests.append(request.url))
        response = page.goto(url)
        assert response is not None and response.status == 200
        assert page.title() == "CCDash migrations"

        states = page.eval_on_selector_all(
            "#graph g.node", "nodes => nodes.map(n => [n.dataset.revision, n.dataset.state])"
        )
        assert states == [
            ["20250101000001", "applied"],
            ["20250101000002", "failed"],
            ["20250101000003", "pending"],
        ]
        graph = page.locator("#graph").bounding_box()
        assert graph is not None and graph["width"] > 200 and graph["height"] > 80
        assert page.locator("#graph circle").count() == 3 and page.locator("#graph line").count() == 2
        colours = page.eval_on_selector_all("#graph circle", "cs => cs.map(c => getComputedStyle(c).fill)")
        assert len(set(colours)) == 3  # applied, failed and pending are told apart

        assert page.locator("#failure").is_visible()
        assert "no such column: <b>colour</b>" in page.locator("#failure").inner_text()
        assert page.locator("#pending").inner_text().startswith("2 pending")
        bar = page.locator('#timings g.bar[data-revision="20250101000001"] rect').bounding_box()
        assert bar is not None and bar["width"] > 100  # the only timed revision has the longest bar
        rows = page.locator("#history tbody tr")
        assert rows.count() == 2 and "failed" in rows.nth(0).inner_text()
        assert failed_requests == []
        page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000


LONG_NAMES = {
    "20250101000001": "link every session to its project, then add the foreign key sessions.project_id -> projects.id",
    "20250101000002": "move legacy messages.session_window_id links to session_window_messages and keep every "
    "message of every window, including the ones written by CCDash releases before 0.5 that had no window at all",
    "20250101000003": "backfill_the_token_counters_of_every_message_from_the_raw_usage_json_written_by_the_collector_"
    "in_one_single_pass",
}
LONG_ERROR = "could not read " + "/home/someone/.ccdash/exports/" + "window" * 30 + ".json"


def _long_names(project: Project) -> None:
    """Revisions named as CCDash's are, and longer: two applied, one failed with a long unbroken error."""
    first, second, third = LONG_NAMES
    project.write_revision(first, None, "op.create_table('items', sa.Column('id', sa.Integer))", message="a")
    project.write_revision(second, first, message="b")
    project.write_revision(third, second, f"raise RuntimeError({LONG_ERROR!r})", message="c")
    for revision, name in LONG_NAMES.items():
        path = next(project.versions.glob(f"{revision}_*.py"))
        text = path.read_text()
        path.write_text(text.replace(text.split("\n", 1)[0], f'"""{name}"""', 1))
    assert project.alembic("upgrade", "head").returncode != 0


def test_long_names_fit_a_1280_pixel_window(project: Project) -> None:
    """Long revision names are drawn whole in the graph (wrapped onto further lines, inside the SVG), and the
    page, its history table included, fits a 1280-pixel window: nothing scrolls sideways, no cell overflows."""
    _long_names(project)
    SCREENSHOTS.mkdir(exist_ok=True)
    shot = SCREENSHOTS / "status-page-long-names.png"
    shot.unlink(missing_ok=True)
    with serving(project) as url, chromium_page() as page:
        response = page.goto(url)
        assert response is not None and response.status == 200
        viewport = page.evaluate("() => [window.innerWidth, document.documentElement.scrollWidth]")
        assert viewport[1] <= viewport[0] == 1280, viewport  # no horizontal scroll

        # Every label ends inside the SVG, and each node's labels together hold its whole name.
        overhang = page.eval_on_selector_all(
            "#graph text.label",
            "ts => ts.map(t => t.getBBox().x + t.getBBox().width - t.ownerSVGElement.width.baseVal.value)",
        )
        assert overhang and max(overhang) <= 0, overhang
        labels = page.eval_on_selector_all(
            "#graph g.node",
            "gs => gs.map(g => [g.dataset.revision, [...g.querySelectorAll('text.label')]"
            ".map(t => t.textContent.trim()).join(' ')])",
        )
        for revision, text in labels:  # every character of the name, in order (lines break anywhere)
            assert "".join(LONG_NAMES[revision].split()) in "".join(text.split()), (revision, text)
        graph = page.locator("#graph").bounding_box()
        assert graph is not None and graph["x"] + graph["width"] <= 1280

        table = page.locator("#history").bounding_box()
        assert table is not None and table["x"] + table["width"] <= 1280
        spilling = page.eval_on_selector_all(
            "#history td", "cells => cells.filter(c => c.scrollWidth > c.clientWidth).map(c => c.textContent)"
        )
        assert spilling == []
        assert LONG_ERROR in page.locator("#history").inner_text().replace("\n", "")
        page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
