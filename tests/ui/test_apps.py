"""The example Dash, Streamlit and Panel apps render in Chromium under their base path, with
their callback or WebSocket traffic working, each started by the command Conveyor builds for it.

They are reached directly here (as the proxy will forward them: full path, prefix
included); the proxy's own tests cover what it adds.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from conveyor.definitions.workloads import App
from conveyor.execution.app_launch import app_command
from tests.execution.test_app_launch import EXAMPLES, answer, free_port, running
from tests.ui.conftest import BROWSER_TEST_TIMEOUT, CHROMIUM, Window, open_window

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(BROWSER_TEST_TIMEOUT),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}"),
]


@contextmanager
def app_page(browser: Browser, app: App, tmp_path: Path) -> Iterator[Window]:
    """``app`` served from examples/ on a free port, and a browser page on its base path."""
    port = free_port()
    base = f"/apps/{app.name}"
    launch = app_command(app, port, base, sys.executable, root=EXAMPLES)
    log = tmp_path / f"{app.name}.log"
    with running(launch, EXAMPLES, log) as proc:
        answer(proc, log, f"http://127.0.0.1:{port}{launch.health or base + '/'}")
        with open_window(browser, f"http://127.0.0.1:{port}{base}") as window:
            window.go("/")
            yield window


def test_dash_dashboard_renders_and_its_callback_runs(browser: Browser, tmp_path: Path) -> None:
    with app_page(browser, App("dash-dashboard", "apps.dash_dashboard:app"), tmp_path) as w:
        expect(w.page.get_by_role("heading", name="Run durations")).to_be_visible()
        # The first callback ran (through /apps/dash-dashboard/_dash-update-component).
        expect(w.page.get_by_text("Total: 140 minutes")).to_be_visible()
        w.page.locator(".rc-slider-dot").nth(4).click()
        expect(w.page.get_by_text("Total: 350 minutes")).to_be_visible()
        expect(w.page.locator(".js-plotly-plot .bars path").first).to_be_attached()
        w.shot("apps-dash")


def test_streamlit_dashboard_renders_over_its_websocket(browser: Browser, tmp_path: Path) -> None:
    app = App("streamlit-dashboard", "apps/streamlit_dashboard.py")
    with app_page(browser, app, tmp_path) as w:
        # Everything a Streamlit page shows comes over its WebSocket.
        expect(w.page.get_by_role("heading", name="Run durations")).to_be_visible()
        expect(w.page.get_by_text("Total: 140 minutes")).to_be_visible()
        slider = w.page.get_by_role("slider")
        slider.focus()
        slider.press("End")
        expect(w.page.get_by_text("Total: 350 minutes")).to_be_visible()
        expect(w.page.get_by_text("Signed in as anonymous")).to_be_visible()
        expect(
            w.page.locator(
                "[data-testid=stVegaLiteChart] canvas, [data-testid=stVegaLiteChart] svg"
            ).first
        ).to_be_visible()
        # Its status widget shows while the script reruns.
        expect(w.page.get_by_test_id("stStatusWidget")).to_have_count(0)
        w.shot("apps-streamlit")


def test_panel_app_renders_over_its_websocket(browser: Browser, tmp_path: Path) -> None:
    with app_page(browser, App("panel-app", "apps/panel_app.py"), tmp_path) as w:
        expect(w.page.get_by_text("Total: 140 minutes")).to_be_visible()
        slider = w.page.locator(".noUi-handle").first
        slider.focus()
        slider.press("End")
        expect(w.page.get_by_text("Total: 350 minutes")).to_be_visible()
        w.shot("apps-panel")
