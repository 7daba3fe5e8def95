"""``/docs``: the API's schema in Swagger UI, drawn with nothing fetched from the internet."""

from __future__ import annotations

from urllib.parse import urlsplit

from playwright.sync_api import Request, expect

from tests.ui.conftest import EXPECT_MS, Window


def test_the_api_page_draws_offline_from_the_package(window: Window) -> None:
    elsewhere: list[str] = []

    def note(request: Request) -> None:
        if urlsplit(request.url).hostname not in ("127.0.0.1", "localhost"):
            elsewhere.append(request.url)

    window.page.on("request", note)
    window.go("/docs")
    expect(window.page.locator(".swagger-ui .title")).to_contain_text("Conveyor", timeout=EXPECT_MS)
    # the routes are listed, grouped by resource
    expect(window.page.locator(".opblock-tag-section").first).to_be_visible(timeout=EXPECT_MS)
    expect(window.page.get_by_text("/api/runs/{run_id}/rerun")).to_be_visible(timeout=EXPECT_MS)
    assert elsewhere == []
    window.shot("api-docs", full_page=False)
