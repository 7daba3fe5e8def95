"""Reading a task's logs while it runs, cancelling a run, and rerunning a failed run from
its failure, all from the run page."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from conveyor.server import actions
from tests.ui.conftest import Served, Window
from tests.waiting import wait_until


def test_logs_stream_while_the_task_runs_then_cancel(window: Window, served: Served) -> None:
    page = window.page
    run = actions.launch(served.state, "chatty", {"tasks": {"chatter": {"config": {"every": 0.2}}}})
    wait_until(
        lambda: served.instance.run(run.id).status == "running", 60, "the chatty run to start"
    )
    window.go(f"/runs/{run.id}?task=chatter")
    logs = page.locator("#log-view")
    expect(logs).to_contain_text("line 2")
    expect(page.locator("#run-status")).to_have_text("running")
    # New lines arrive without a reload while the task still runs.
    page.evaluate("window.stillHere = true")
    expect(logs).to_contain_text("line 12")
    expect(page.locator("#run-status")).to_have_text("running")
    assert page.evaluate("window.stillHere") is True
    window.shot("run-logs-live")

    page.get_by_role("button", name="Cancel").click()
    expect(page.locator("#run-status")).to_have_text(re.compile("cancel"))
    expect(page.locator("#run-status")).to_have_text("canceled")
    expect(page.get_by_role("button", name="Cancel")).to_have_count(0)
    expect(page.locator('.graph g.node[data-id="chatter"]')).to_have_class(re.compile("s-canceled"))
    assert served.instance.run(run.id).status == "canceled"
    window.shot("run-canceled")


def test_rerun_a_failed_run_from_its_failure(window: Window, served: Served) -> None:
    page = window.page
    run = actions.launch(served.state, "flaky")
    wait_until(lambda: served.instance.run(run.id).status.is_terminal, 60, "the flaky run to end")
    window.go(f"/runs/{run.id}")
    expect(page.locator("#run-status")).to_have_text("failure")
    # The page opens on the failed task: its error and traceback show.
    expect(page.locator("#run-tasks")).to_contain_text("the input file is not there yet")
    expect(page.locator('.graph g.node[data-id="fragile"]')).to_have_class(re.compile("s-failure"))
    window.shot("run-failed")

    (served.marks / "fixed").touch()
    page.get_by_role("button", name="Rerun from failure").click()
    expect(page).not_to_have_url(re.compile(run.id))
    expect(page.locator("#run-status")).to_have_text("success", timeout=60_000)
    # The task that had succeeded was reused, not run again.
    expect(page.locator('.graph g.node[data-id="prepare"]')).to_have_class(re.compile("s-reused"))
    expect(page.locator('.graph g.node[data-id="fragile"]')).to_have_class(re.compile("s-success"))
    expect(page.locator("main")).to_contain_text(run.id[:8])
    window.shot("run-rerun")
