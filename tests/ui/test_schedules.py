"""Switching a schedule off and on from the schedules page, and what the overview shows."""

from __future__ import annotations

from playwright.sync_api import expect

from conveyor.server import actions
from tests.ui.conftest import Served, Window
from tests.waiting import wait_until


def test_toggle_a_schedule_and_see_its_next_ticks_change(window: Window, served: Served) -> None:
    page = window.page
    window.go("/schedules")
    hourly = page.locator("#schedule-hourly")
    upcoming = hourly.locator(".next-ticks time")
    expect(upcoming).to_have_count(3)
    expect(hourly.locator("[data-testid=state]")).to_have_text("on")

    hourly.get_by_role("button", name="Switch off").click()
    expect(hourly.locator("[data-testid=state]")).to_have_text("off")
    expect(upcoming).to_have_count(0)
    expect(hourly.locator(".next-ticks")).to_contain_text("switched off")
    assert not served.instance.trigger_states.is_enabled("hourly", "every:1h")
    window.shot("schedules-off")

    # Off, it is not among what runs next on the overview.
    window.go("/")
    expect(page.locator("main")).to_contain_text("Next 24 hours")
    expect(page.get_by_role("link", name="daily", exact=True).first).to_be_visible()
    expect(page.locator("main").get_by_text("every:1h")).to_have_count(0)

    window.go("/schedules")
    hourly.get_by_role("button", name="Switch on").click()
    expect(hourly.locator("[data-testid=state]")).to_have_text("on")
    expect(upcoming).to_have_count(3)
    assert served.instance.trigger_states.is_enabled("hourly", "every:1h")
    window.shot("schedules")

    # A sensor switches off and on the same way.
    inbox = page.locator("#sensor-inbox")
    expect(inbox).to_contain_text("hourly")
    inbox.get_by_role("button", name="Switch off").click()
    expect(inbox.locator("[data-testid=state]")).to_have_text("off")
    assert not served.instance.trigger_states.is_enabled("inbox", "sensor:inbox")
    inbox.get_by_role("button", name="Switch on").click()
    expect(inbox.locator("[data-testid=state]")).to_have_text("on")

    window.go("/")
    expect(page.locator("main").get_by_text("every:1h").first).to_be_visible()


def test_the_overview_shows_what_runs_failed_and_comes_next(window: Window, served: Served) -> None:
    page = window.page
    failed = actions.launch(served.state, "flaky")
    wait_until(lambda: served.instance.run(failed.id).status.is_terminal, 60, "the flaky run")
    running = actions.launch(served.state, "chatty")
    wait_until(
        lambda: served.instance.run(running.id).status == "running", 60, "the chatty run to start"
    )
    window.go("/")
    live = page.locator("#overview-live")
    expect(live.get_by_role("link", name=running.id[:8])).to_be_visible()
    expect(live.get_by_role("link", name=failed.id[:8])).to_be_visible()
    expect(live).to_contain_text("the input file is not there yet")
    expect(live).to_contain_text("alive")
    window.shot("overview")
    actions.cancel(served.state, running.id)
    # The list follows without a reload: the canceled run leaves it.
    expect(live.get_by_role("link", name=running.id[:8])).to_have_count(0)
