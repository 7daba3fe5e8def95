"""Every page fits a phone's width (390 px): wide tables scroll inside their panel, and
the top bar's links are one row that scrolls."""

from __future__ import annotations

from playwright.sync_api import Browser, expect

from conveyor.server import actions
from tests.ui.conftest import EXPECT_MS, Served, Window
from tests.waiting import wait_until

WIDTH = 390


def test_no_page_is_wider_than_a_phone(browser: Browser, served: Served) -> None:
    run = actions.launch(served.state, "flaky")
    wait_until(lambda: served.instance.run(run.id).status.is_terminal, 60, "the flaky run to end")
    # The overview's daemon table has a row once the daemon has reported.
    wait_until(lambda: served.instance.daemon_status.all(), 30, "the daemon to report")
    context = browser.new_context(
        viewport={"width": WIDTH, "height": 844}, device_scale_factor=2, is_mobile=True
    )
    context.set_default_timeout(EXPECT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        w = Window(page, served.url, errors)
        pages = {
            "/": "overview",
            "/jobs": "jobs",
            "/runs": "runs",
            f"/runs/{run.id}": "run",
            "/schedules": "schedules",
            "/backfills": "backfills",
            "/pools": "pools",
            "/jobs/pipeline": "job",
            "/jobs/pipeline/launch": "launchpad",
        }
        for path, name in pages.items():
            w.go(path)
            expect(page.locator("main")).to_be_visible()
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= WIDTH, f"{path} is {width} px wide"
            # The top bar is one row: the brand and the links side by side.
            bar = page.locator(".topbar").bounding_box()
            assert bar is not None
            assert bar["height"] < 60, (path, bar)
            if name in ("overview", "jobs"):
                w.shot(f"phone-{name}")
        # The jobs' Launch links are on the screen, beside each job's name.
        w.go("/jobs")
        launch = page.locator("#jobs-table").get_by_role("link", name="Launch").first
        expect(launch).to_be_in_viewport()
        box = launch.bounding_box()
        assert box is not None
        assert box["x"] + box["width"] <= WIDTH, box
        w.check()
    finally:
        context.close()
