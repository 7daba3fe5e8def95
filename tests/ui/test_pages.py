"""The lists and pages around runs: jobs (search, job page), runs (filters, counts,
pages by cursor), the load-error banner, and the run page on a phone."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Browser, expect

from conveyor.server import actions
from conveyor.workspace import load_file
from tests.ui.conftest import EXPECT_MS, Served, Window
from tests.waiting import wait_until


def _ended(served: Served, run_id: str) -> bool:
    return served.instance.run(run_id).status.is_terminal


def test_jobs_list_search_and_job_page(window: Window, served: Served) -> None:
    page = window.page
    run = actions.launch(served.state, "pipeline")
    wait_until(lambda: _ended(served, run.id), 90, "the pipeline run to end")
    window.go("/jobs")
    rows = page.locator("#jobs-table tbody tr")
    every = len(served.state.workspace.jobs)
    expect(rows).to_have_count(every)
    # Keyboard focus shows.
    page.keyboard.press("Tab")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("", "none"), outline
    page.get_by_role("searchbox").fill("pipe")
    expect(rows).to_have_count(1)
    expect(page).to_have_url(re.compile(r"/jobs\?q=pipe"))
    expect(rows.first.locator("svg.spark rect")).to_have_count(1)
    expect(rows.first.locator(".badge")).to_have_text("success")
    page.get_by_role("searchbox").fill("")
    expect(rows).to_have_count(every)
    window.shot("jobs")

    page.get_by_role("link", name="pipeline", exact=True).click()
    expect(page).to_have_url(re.compile(r"/jobs/pipeline$"))
    graph = page.locator(".graph svg")
    expect(graph.locator("g.node")).to_have_count(5)
    expect(graph.locator('g.node[data-id="clean"] text.sub')).to_contain_text("retry 1")
    expect(graph.locator("path.edge")).to_have_count(5)
    expect(page.locator("main")).to_contain_text(run.id[:8])
    window.shot("job-page")
    page.go_back()
    expect(page).to_have_url(re.compile(r"/jobs"))


def test_runs_list_filters_counts_and_cursor_pages(window: Window, served: Served) -> None:
    page = window.page
    launched = [actions.launch(served.state, "flaky") for _ in range(3)]
    launched.append(actions.launch(served.state, "hourly", tags={"team": "risk"}))
    wait_until(lambda: all(_ended(served, r.id) for r in launched), 90, "the runs to end")
    window.go("/runs?limit=2")
    table = page.locator("main table.data tbody tr")
    expect(table).to_have_count(2)
    expect(page.locator(".counts")).to_contain_text("all 4")
    expect(page.locator(".counts")).to_contain_text("failure 3")
    page.get_by_role("link", name="Older").click()
    expect(table).to_have_count(2)
    expect(page.get_by_role("link", name="Older")).to_have_count(0)
    page.go_back()
    expect(table).to_have_count(2)

    window.go("/runs")
    page.get_by_label("Status", exact=True).select_option("success")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"status=success"))
    expect(table).to_have_count(1)
    expect(table.first).to_contain_text("hourly")
    window.go("/runs?job=flaky")
    expect(table).to_have_count(3)
    window.shot("runs")

    window.go("/runs")
    page.get_by_label("Tag", exact=True).fill("team=risk")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"tag=team%3Drisk"))
    expect(table).to_have_count(1)
    expect(table.first).to_contain_text("hourly")
    expect(page.locator(".counts")).to_contain_text("all 1")
    window.go("/runs?trigger=manual&job=flaky")
    expect(table).to_have_count(3)
    window.go("/runs?tag=no-equals-sign")
    expect(page.get_by_role("alert")).to_contain_text("is not KEY=VALUE; write it as team=risk")
    expect(table).to_have_count(4)
    # A status that is none: said, not silently dropped.
    window.go("/runs?status=done")
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("no status 'done'; statuses: queued")
    expect(alert).to_contain_text("success")
    expect(table).to_have_count(4)


def test_a_workspace_that_fails_to_load_shows_its_traceback(
    window: Window, served: Served, tmp_path: Path
) -> None:
    page = window.page
    broken = tmp_path / "broken.py"
    broken.write_text("from conveyor import job\n\n@job\ndef oops(:\n    pass\n")
    served.state.workspace.loader = lambda: load_file(broken)
    assert served.state.workspace.reload() is not None
    for path in ("/", "/jobs", "/runs"):
        window.go(path)
        banner = page.locator("#load-error")
        expect(banner).to_contain_text("failed to load")
        expect(banner).to_contain_text("SyntaxError")
    page.locator("#load-error summary").click()
    expect(page.locator("#load-error pre")).to_contain_text("broken.py")
    # The jobs of the last good load stay.
    expect(page.get_by_role("link", name="pipeline")).to_have_count(0)
    window.go("/jobs")
    expect(page.locator("#jobs-table tbody tr")).to_have_count(len(served.state.workspace.jobs))
    page.locator("#load-error summary").click()
    window.shot("load-error")


def test_the_run_page_on_a_phone(browser: Browser, served: Served) -> None:
    run = actions.launch(served.state, "pipeline")
    wait_until(lambda: _ended(served, run.id), 90, "the pipeline run to end")
    context = browser.new_context(
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
        timezone_id="Asia/Tokyo",
    )
    context.set_default_timeout(EXPECT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        w = Window(page, served.url, errors)
        w.go(f"/runs/{run.id}")
        expect(page.locator("#run-status")).to_have_text("success")
        expect(page.locator(".graph svg g.node")).to_have_count(5)
        # Times read in the viewer's zone (UTC+9 here), with UTC on hover.
        created = page.locator(".pagehead time").first
        utc = created.get_attribute("title") or ""
        assert utc.endswith(" UTC"), utc
        hour = (int(utc[11:13]) + 9) % 24
        assert created.inner_text().startswith(f"{hour:02d}:") or f" {hour:02d}:" in (
            created.inner_text()
        ), (created.inner_text(), utc)
        # Nothing is wider than the screen: the page does not scroll sideways.
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        w.shot("run-page-phone")
        w.check()
    finally:
        context.close()


def test_pools_show_their_limits_and_users(window: Window, served: Served) -> None:
    page = window.page
    served.instance.pool_store.set("warehouse", 2)
    window.go("/pools")
    row = page.locator("#pool-warehouse")
    expect(row).to_contain_text("2")
    expect(row.get_by_role("link", name="pipeline")).to_be_visible()
    expect(row).to_contain_text("0 of 2")
    window.shot("pools")
