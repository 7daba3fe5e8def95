"""A 100,000-line log stays readable: the run page shows its last page, and earlier pages
load by byte offset, one at a time."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from conveyor.server import actions
from conveyor.server.ui.logs import PAGE, page_before
from tests.ui.conftest import Served, Window
from tests.waiting import wait_until


def test_a_page_starts_on_a_line_and_a_live_page_ends_on_one() -> None:
    data = b"".join(b"line %05d\n" % i for i in range(20_000))
    last = page_before(data, len(data), True)
    assert last.end == len(data)
    assert last.start > 0
    assert data[last.start - 1 : last.start] == b"\n"
    assert last.end - last.start <= PAGE
    before = page_before(data, last.start, True)
    assert before.end == last.start
    assert before.text.endswith("\n")
    live = page_before(data + b"partial", len(data) + 7, False)
    assert live.end == len(data)
    assert "partial" not in live.text
    first = page_before(data, 100, True)
    assert first.start == 0
    assert first.text.startswith("line 00000")


def test_a_long_log_reads_a_page_at_a_time(window: Window, served: Served) -> None:
    page = window.page
    run = actions.launch(served.state, "loud")
    wait_until(lambda: served.instance.run(run.id).status.is_terminal, 120, "the loud run")
    assert served.instance.run(run.id).status == "success"
    window.go(f"/runs/{run.id}?task=shout")
    logs = page.locator("#log-view")
    pages = logs.locator(".chunk")
    expect(pages).to_have_count(1)
    # The last page only: its last line, none from the start. (Checked in the page, so
    # that a failure does not print 100,000 lines.)
    assert page.evaluate("document.querySelector('#log-view').innerText.length") < 2 * PAGE
    assert _has(page, "row 099999")
    assert not _has(page, "row 000000 ")
    older = logs.locator(".chunk").first
    page.get_by_role("button", name="Earlier lines").click()
    expect(pages).to_have_count(2)
    expect(logs.get_by_role("button", name="Earlier lines")).to_have_count(1)
    first = older.inner_text().split("\n", 1)[0]
    assert first.startswith("row 09"), first
    assert first < "row 098740", first
    assert _has(page, "row 099999")
    window.shot("run-logs-long", full_page=False)


def _has(page: Page, text: str) -> bool:
    found: bool = page.evaluate(
        "t => document.querySelector('#log-view').innerText.includes(t)", text
    )
    return found
