"""Subgraphs in the graph view (collapsed into one box, expanded on click, on the job page
and the run page) and the launchpad's first values: a job's ``config=`` defaults, and the
simplified schema of a ``ConfigMapping``."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

import tests.ui.conftest as ui
from conveyor.server.auth_settings import AuthSettings
from tests.ui.conftest import Served, Window, open_window, serve

WORKSPACE = Path(__file__).with_name("subgraph_workspace.py")


@pytest.fixture
def sub_window(
    browser: Browser, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Window, Served]]:
    """A page on the UI serving ``subgraph_workspace.py``."""
    monkeypatch.setattr(ui, "WORKSPACE", WORKSPACE)
    with (
        serve(tmp_path, monkeypatch, AuthSettings()) as served,
        open_window(browser, served.url) as w,
    ):
        yield w, served


def test_subgraphs_collapse_and_expand(sub_window: tuple[Window, Served]) -> None:
    window, _ = sub_window
    page = window.page
    window.go("/jobs/warehouse")
    graph = page.locator(".graph svg")
    ingest = graph.locator('g.node.collapsed[data-id="ingest"]')
    expect(ingest).to_contain_text("ingest")
    expect(ingest).to_contain_text("2 tasks")
    expect(graph.locator('g.node.collapsed[data-id="enrich"]')).to_contain_text("2 tasks")
    expect(graph.locator('g.node[data-id="publish"]')).to_be_visible()
    expect(graph.locator('g.node[data-id="ingest.extract"]')).to_have_count(0)
    # Edges go to the boxes: ingest -> enrich -> publish, ingest_2 -> publish.
    expect(graph.locator("path.edge")).to_have_count(3)
    window.shot("graph-subgraph")

    page.locator('g.subgraph:has(g[data-id="ingest"])').click()
    frame = graph.locator('g.frame[data-frame="ingest"]')
    expect(frame).to_contain_text("ingest")
    expect(graph.locator('g.node[data-id="ingest.extract"]')).to_contain_text("extract")
    expect(graph.locator('g.node[data-id="ingest.clean"]')).to_be_visible()
    expect(graph.locator('g.node.collapsed[data-id="ingest_2"]')).to_be_visible()
    expect(graph.locator("path.edge")).to_have_count(4)
    window.shot("graph-subgraph-expanded")

    frame.locator("text").click()
    expect(graph.locator('g.node.collapsed[data-id="ingest"]')).to_be_visible()
    expect(graph.locator('g.node[data-id="ingest.extract"]')).to_have_count(0)


def test_run_page_subgraph_state_and_expansion(sub_window: tuple[Window, Served]) -> None:
    window, _ = sub_window
    page = window.page
    window.go("/jobs/warehouse/launch")
    # The subgraph's default reaches the form under its dotted key.
    expect(page.locator("#f-tasks--ingest_extract--config--rows-input")).to_have_value("3")
    page.get_by_role("button", name="Launch run").click()
    expect(page).to_have_url(re.compile(r"/runs/[0-9a-f]{32}$"))
    expect(page.locator("#run-status")).to_have_text("success", timeout=60_000)
    graph = page.locator(".graph svg")
    enrich = graph.locator('g.node.collapsed[data-id="enrich"]')
    expect(enrich).to_have_class(re.compile("s-success"))
    expect(enrich).to_contain_text("2 ran")
    page.locator('g.subgraph:has(g[data-id="enrich"])').click()
    inner = graph.locator('g.node[data-id="enrich.double_2"]')
    expect(inner).to_have_class(re.compile("s-success"))
    window.shot("run-graph-subgraph-expanded")
    # A task picked on the run page opens the subgraphs it is in.
    run_id = page.url.rsplit("/", 1)[1]
    window.go(f"/runs/{run_id}?task=ingest_2.clean")
    picked = graph.locator('g.node.selected[data-id="ingest_2.clean"]')
    expect(picked).to_be_visible()
    expect(graph.locator('g.node.collapsed[data-id="ingest"]')).to_be_visible()


def test_launchpad_shows_config_defaults(sub_window: tuple[Window, Served]) -> None:
    window, served = sub_window
    page = window.page
    window.go("/jobs/defaults/launch")
    rows = page.locator("#f-tasks--extract--config--rows-input")
    expect(rows).to_have_value("7")
    expect(page.locator("#config-editor")).to_have_value(re.compile(r"rows: 7"))
    window.shot("launchpad-defaults")
    rows.fill("4")
    expect(page.locator("#check-result")).to_contain_text("valid")
    page.get_by_role("button", name="Launch run").click()
    expect(page).to_have_url(re.compile(r"/runs/[0-9a-f]{32}$"))
    expect(page.locator("#run-status")).to_have_text("success", timeout=60_000)
    run_id = page.url.rsplit("/", 1)[1]
    assert served.instance.run(run_id).run_config == {"tasks": {"extract": {"config": {"rows": 4}}}}


def test_launchpad_of_a_config_mapping(sub_window: tuple[Window, Served]) -> None:
    window, served = sub_window
    page = window.page
    window.go("/jobs/mapped/launch")
    field = page.locator("#f-how_many-input")
    expect(field).to_be_visible()
    expect(page.locator("#config-form")).not_to_contain_text("rows")
    field.fill("many")
    expect(page.locator("#err-f-how_many")).to_contain_text("valid integer")
    field.fill("5")
    expect(page.locator("#check-result")).to_contain_text("valid")
    page.get_by_role("button", name="Launch run").click()
    expect(page).to_have_url(re.compile(r"/runs/[0-9a-f]{32}$"))
    expect(page.locator("#run-status")).to_have_text("success", timeout=60_000)
    run_id = page.url.rsplit("/", 1)[1]
    assert served.instance.run(run_id).run_config == {"how_many": 5}
