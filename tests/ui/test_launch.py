"""Launching from the launchpad, and watching the run finish live on its page."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.ui.conftest import Window

ROWS = "#f-tasks--extract--config--rows-input"
ROWS_ERROR = "#err-f-tasks--extract--config--rows"


def test_launch_with_config_after_a_field_error(window: Window) -> None:
    page = window.page
    window.go("/jobs/pipeline/launch")
    expect(page.locator("#config-form")).to_contain_text("rows")

    page.locator(ROWS).fill("many")
    expect(page.locator(ROWS_ERROR)).to_contain_text("valid integer")
    expect(page.locator("#check-result")).to_contain_text("1 problem")
    window.shot("launchpad-error")

    page.locator(ROWS).fill("20")
    expect(page.locator(ROWS_ERROR)).to_be_empty()
    expect(page.locator("#check-result")).to_contain_text("valid")
    # The editor shows what the form holds.
    expect(page.locator("#config-editor")).to_have_value(re.compile(r"rows: 20"))
    window.shot("launchpad")

    page.get_by_role("button", name="Launch run").click()
    expect(page).to_have_url(re.compile(r"/runs/[0-9a-f]{32}$"))
    # The page is never reloaded from here on: this mark would be gone.
    page.evaluate("window.stillHere = true")

    graph = page.locator(".graph svg")
    expect(graph.locator('g.node[data-id="publish"]')).to_have_class(re.compile("s-pending"))
    expect(graph.locator('g.node[data-id="extract"]')).to_have_class(
        re.compile("s-running|s-success")
    )
    expect(page.locator("#run-status")).to_have_text("success", timeout=60_000)
    expect(graph.locator('g.node[data-id="publish"]')).to_have_class(re.compile("s-success"))
    # The timeline shows both attempts of the task that was retried.
    expect(page.locator('.gantt .row[data-task="clean"] .bar')).to_have_count(2)
    # The retried attempt is drawn red, and the box says it took two tries, uncut.
    expect(page.locator('.gantt .row[data-task="clean"] .bar.s-failure')).to_have_count(1)
    clean_line = graph.locator('g.node[data-id="clean"] text.sub')
    expect(clean_line).to_contain_text("try 2")
    assert "\u2026" not in (clean_line.text_content() or "")
    expect(page.locator('.gantt .row[data-task="publish"] .bar.s-success')).to_have_count(1)
    assert page.evaluate("window.stillHere") is True
    expect(page.locator("#run-tasks")).to_contain_text("the source was busy")
    window.shot("run-page")


def test_launch_a_partition_with_config_typed_in_the_editor(window: Window) -> None:
    page = window.page
    window.go("/jobs/regional/launch")
    editor = page.locator("#config-editor")
    editor.fill("config:\n  note: from the editor\n")
    # The form follows the editor.
    expect(page.locator("#f-config--note-input")).to_have_value("from the editor")
    expect(page.locator("#check-result")).to_contain_text("partition")
    page.get_by_role("button", name="Launch run").click()
    # Without a partition the launch is refused, and says why; nothing was queued.
    expect(page).to_have_url(re.compile(r"/jobs/regional/launch$"))
    expect(page.locator("#check-result")).to_contain_text("partition")
    expect(editor).to_have_value(re.compile("from the editor"))

    page.get_by_label("partition").select_option("eu")
    expect(page.locator("#check-result")).to_contain_text("valid")
    window.shot("launchpad-partition")
    page.get_by_role("button", name="Launch run").click()
    expect(page).to_have_url(re.compile(r"/runs/[0-9a-f]{32}$"))
    expect(page.locator("#run-status")).to_have_text("success", timeout=60_000)
    expect(page.locator("main")).to_contain_text("Partition")
    expect(page.locator("main")).to_contain_text("eu")


def test_a_job_body_shows_the_tasks_it_made_as_they_ran(window: Window) -> None:
    page = window.page
    window.go("/jobs/fan/launch")
    page.get_by_role("button", name="Launch run").click()
    expect(page.locator("#run-status")).to_have_text("success", timeout=60_000)
    nodes = page.locator(".graph svg g.node")
    expect(nodes).to_have_count(5)
    window.shot("run-page-dynamic")
    keys = nodes.evaluate_all("ns => ns.map(n => n.dataset.id)")
    assert len([k for k in keys if k.startswith("score")]) == 4, keys
    expect(page.locator(".graph svg path.edge")).to_have_count(4)
