"""Starting a backfill from the backfills page and watching its progress."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from playwright.sync_api import expect

from conveyor.server import actions
from tests.ui.conftest import Served, Window
from tests.waiting import wait_until


def test_start_a_backfill_and_see_its_progress(window: Window, served: Served) -> None:
    page = window.page
    today = datetime.now(UTC).date()
    window.go("/backfills")
    page.get_by_label("Job").select_option("daily")
    expect(page).to_have_url(re.compile(r"/backfills\?job=daily"))
    page.get_by_label("From (UTC)").fill((today - timedelta(days=4)).isoformat())
    page.get_by_label("To (UTC)").fill(today.isoformat())
    page.get_by_role("button", name="Start backfill").click()

    expect(page).to_have_url(re.compile(r"/backfills/[0-9a-f]{32}$"))
    cells = page.locator(".cells a")
    expect(cells).to_have_count(4)
    expect(page.locator("#backfill-status")).to_have_text("done", timeout=90_000)
    expect(page.locator(".cells a.s-success")).to_have_count(4)
    expect(page.locator("#backfill-done")).to_have_text("4 of 4 succeeded")
    window.shot("backfill")

    window.go("/backfills")
    expect(page.locator("main table.data tbody tr")).to_have_count(1)
    expect(page.locator("main table.data")).to_contain_text("4 / 4")
    window.shot("backfills")


def test_cancel_a_backfill_that_is_under_way(window: Window, served: Served) -> None:
    page = window.page
    today = datetime.now(UTC).date()
    window.go("/backfills?job=daily")
    page.get_by_label("From (UTC)").fill((today - timedelta(days=40)).isoformat())
    page.get_by_label("To (UTC)").fill(today.isoformat())
    page.get_by_role("button", name="Start backfill").click()
    expect(page.locator(".cells a")).to_have_count(40)
    page.get_by_role("button", name="Cancel backfill").click()
    expect(page.locator("#backfill-status")).to_have_text("canceled")
    expect(page.locator(".cells a.s-canceled").first).to_be_visible()
    # Nothing of it is left to run.
    expect(page.locator(".cells a.s-queued")).to_have_count(0)
    window.shot("backfill-canceled")


def test_a_partition_backfill_names_what_it_skipped_and_counts_it(
    window: Window, served: Served
) -> None:
    page = window.page
    earlier = actions.launch(served.state, "regional", partition="eu")
    wait_until(lambda: served.instance.run(earlier.id).status.is_terminal, 60, "the eu run")
    window.go("/backfills?job=regional")
    page.get_by_role("button", name="Start backfill").click()
    expect(page).to_have_url(re.compile(r"/backfills/[0-9a-f]{32}$"))
    expect(page.locator("#backfill-status")).to_have_text("done", timeout=90_000)
    # All three partitions count: the one an earlier run covered among them.
    expect(page.locator("#backfill-done")).to_have_text("3 of 3 succeeded (1 before this backfill)")
    skipped = page.locator("#backfill-skipped li")
    expect(skipped).to_have_count(1)
    expect(skipped).to_contain_text("eu")
    expect(skipped).to_contain_text("done already")
    expect(skipped.get_by_role("link")).to_have_text(earlier.id[:8])
    # A partitioned job without a schedule has no Interval column.
    runs = page.locator("main table.data")
    expect(runs.locator("thead th")).to_have_text(["Partition", "Status", "Run", "Duration"])
    window.shot("backfill-partitions")
    window.go("/backfills")
    span = page.locator("main table.data tbody tr td.span").first
    expect(span).to_have_text("3 partitions")
