"""The launchpad's editor scaffold, its partition message, and a failed run opened in the
launchpad, its config fixed, and rerun from its failure."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from conveyor.server import actions
from tests.ui.conftest import Served, Window
from tests.waiting import wait_until


def test_the_editor_scaffolds_the_jobs_own_defaults(window: Window) -> None:
    page = window.page
    editor = page.locator("#config-editor")
    window.go("/jobs/pipeline/launch")
    placeholder = editor.get_attribute("placeholder") or ""
    assert "rows: 10" in placeholder, placeholder
    assert "label: demo" in placeholder, placeholder
    window.go("/jobs/flaky/launch")
    assert editor.get_attribute("placeholder") == "# this job takes no config"
    window.go("/jobs/regional/launch")
    placeholder = editor.get_attribute("placeholder") or ""
    assert "note:" in placeholder, placeholder
    assert "extract" not in placeholder, placeholder


def test_a_partitioned_launchpad_asks_for_a_partition_in_its_own_words(window: Window) -> None:
    page = window.page
    window.go("/jobs/regional/launch")
    result = page.locator("#check-result")
    # Nothing typed yet: no error.
    expect(page.locator("#config-editor")).to_be_visible()
    expect(result).to_have_text("")
    window.shot("launchpad-partition-fresh")
    page.get_by_role("button", name="Launch run").click()
    expect(page).to_have_url(re.compile(r"/jobs/regional/launch$"))
    expect(result).to_contain_text("pick a partition")
    expect(result).not_to_contain_text("run()")
    expect(result).not_to_contain_text("--partition")


def test_a_run_that_failed_on_its_config_is_fixed_and_rerun_from_the_launchpad(
    window: Window, served: Served
) -> None:
    page = window.page
    run = actions.launch(served.state, "ratio", tags={"owner": "me"})
    wait_until(lambda: served.instance.run(run.id).status.is_terminal, 60, "the ratio run to end")
    window.go(f"/runs/{run.id}")
    expect(page.locator("#run-status")).to_have_text("failure")
    page.get_by_role("link", name="Open in launchpad").click()
    expect(page).to_have_url(re.compile(rf"/jobs/ratio/launch\?from={run.id}$"))
    expect(page.locator("#from-run")).to_contain_text(run.id[:8])
    expect(page.locator("#tags-input")).to_have_value("owner=me")
    field = page.locator("#f-tasks--divide--config--by-input")
    field.fill("2")
    expect(page.locator("#config-editor")).to_have_value(re.compile(r"by: 2"))
    expect(page.locator("#check-result")).to_contain_text("valid")
    window.shot("launchpad-from-run")
    page.get_by_role("button", name="Rerun from failure with this config").click()
    expect(page).to_have_url(re.compile(r"/runs/[0-9a-f]{32}$"))
    assert run.id not in page.url
    expect(page.locator("#run-status")).to_have_text("success", timeout=60_000)
    graph = page.locator(".graph svg")
    expect(graph.locator('g.node[data-id="numerator"]')).to_have_class(re.compile("s-reused"))
    expect(graph.locator('g.node[data-id="divide"]')).to_have_class(re.compile("s-success"))
    # The reused task is listed first (the plan's order), with no tries of its own.
    rows = page.locator("#run-tasks tbody tr")
    expect(rows.locator("td:first-child")).to_have_text(["numerator", "divide"])
    expect(rows.nth(0).locator("td.tries")).to_have_text("\N{EN DASH}")
    expect(rows.nth(1).locator("td.tries")).to_have_text("1")
    expect(page.locator(".gantt .row")).to_have_count(2)
    keys = page.locator(".gantt .row").evaluate_all("rs => rs.map(r => r.dataset.task)")
    assert keys == ["numerator", "divide"], keys
    new = served.instance.run(page.url.rsplit("/", 1)[1])
    assert new.parent_run_id == run.id
    assert new.run_config == {"tasks": {"divide": {"config": {"by": 2}}}}
    window.shot("run-rerun-from-launchpad")


def test_backticks_in_descriptions_read_as_code(window: Window) -> None:
    page = window.page
    window.go("/jobs/pipeline/launch")
    # The config's description: "How many rows `extract` makes, and what to call them."
    expect(page.locator("#config-form code")).to_have_text("extract")
    expect(page.locator("#config-form")).not_to_contain_text("`")
    window.go("/jobs/ratio")
    # A task's description: "Divides by its config's `by`: 0 (the default) fails."
    expect(page.locator("main td .small code")).to_have_text("by")
    expect(page.locator("main")).not_to_contain_text("`by`")
