"""``ccdash-migrate serve`` on a PostgreSQL database: the page in headless Chromium, and the page while a
migration runs in another process."""

from __future__ import annotations

import json
import time
import urllib.request

import postgres_server
from conftest import Project
from test_web import chromium_page, serving


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.status == 200
        return str(response.read().decode())


def test_status_page_of_a_postgresql_database_in_chromium(project: Project, pg_url: str) -> None:
    """One revision applied, one failed, one pending behind it: the page draws each in its state, names the
    engine, lists the history with the failure, and shows nothing of DuckDB's."""
    project.write_revision(
        "20260101000000", None, "op.create_table('items', sa.Column('id', sa.Integer, primary_key=True))", message="a"
    )
    project.write_revision("20260101000001", "20260101000000", "op.add_column('items', sa.Column('x', sa.Nope))")
    project.write_revision("20260101000002", "20260101000001", message="c")
    assert project.migrate("-x", f"url={pg_url}", "up", pass_db=False).returncode == 6
    with serving(project, pg_url) as url, chromium_page() as page:
        response = page.goto(url)
        assert response is not None and response.status == 200
        states = page.eval_on_selector_all(
            "#graph g.node", "nodes => nodes.map(n => [n.dataset.revision, n.dataset.state])"
        )
        assert states == [
            ["20260101000000", "applied"],
            ["20260101000001", "failed"],
            ["20260101000002", "pending"],
        ]
        assert page.locator("#engine").inner_text().startswith("PostgreSQL 15.")
        assert "Nope" in page.locator("#failure").inner_text()
        assert page.locator("#pending").inner_text().startswith("2 pending")
        rows = page.locator("#history tbody tr")
        assert rows.count() == 2
        assert "failed" in rows.nth(0).inner_text() and "success" in rows.nth(1).inner_text()
        assert page.locator("#timings g.bar").count() == 1
        assert page.locator("#in-use, #migrating").count() == 0 and "DuckDB" not in page.content()


def test_page_names_the_migration_running_and_shows_what_it_committed(
    project: Project, pg_url: str, pg_server: postgres_server.Server
) -> None:
    project.write_revision(
        "20260101000000", None, "op.create_table('items', sa.Column('id', sa.Integer, primary_key=True))", message="a"
    )
    project.write_revision("20260101000001", "20260101000000", postgres_server.GATED, message="gated")
    database = pg_url.rsplit("/", 1)[1]
    with serving(project, pg_url) as url, pg_server.gate(database) as open_gate:
        run = project.start("upgrade", "head", url=pg_url)
        try:
            while run.poll() is None and not pg_server.waiting_at_gate(database):
                time.sleep(0.02)
            data = json.loads(_get(url + "status.json"))
            page = _get(url)
            still_running = run.poll() is None
        finally:
            open_gate()
            out, err = run.communicate(timeout=120)
    assert still_running and run.returncode == 0, out + err
    assert data["migration_running"].startswith(f"alembic pid {run.pid} ")
    assert data["current"] == ["20260101000000"]  # the first revision is committed, the slow one is running
    assert [r["state"] for r in data["revisions"]] == ["applied", "pending"]
    assert 'id="migrating"' in page and f"alembic pid {run.pid} " in page
