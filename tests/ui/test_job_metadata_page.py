"""A job's page in Chromium shows Dagster's job metadata (links for URLs), owners and run
tags, and the API's job endpoint returns them; the workspace is a file with a
``Definitions`` object, loaded as ``conveyor dev`` loads it."""

from __future__ import annotations

import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, expect

from conveyor.server.app import create_app
from conveyor.server.runner import bound_url, make_server
from conveyor.server.state import ServerState, WorkspaceHolder
from conveyor.storage.instance import Instance
from conveyor.workspace import load_file
from tests.ui.conftest import BROWSER_TEST_TIMEOUT, CHROMIUM, open_window
from tests.waiting import wait_until

WORKSPACE = """
from conveyor import Definitions, task, workflow


@task
def my_op():
    return "result"


@workflow(
    tags={"team": "data-platform", "priority": "high"},
    run_tags={"cost_center": "analytics"},
    metadata={
        "owner": "data-team@company.com",
        "slack_channel": "https://slack.com/archives/C123",
        "rows_per_day": 120000,
    },
    owners=["team:data-platform", "alice@company.com", "bob"],
)
def tagged_job():
    \"\"\"Loads the daily events.\"\"\"
    my_op()


defs = Definitions(jobs=[tagged_job])
"""


@pytest.fixture
def page_url(tmp_path: Path) -> Iterator[str]:
    """The UI (local mode) on a free loopback port over a workspace with a Definitions."""
    path = tmp_path / "tagged_ws.py"
    path.write_text(textwrap.dedent(WORKSPACE))
    instance = Instance.at(tmp_path / "home")
    holder = WorkspaceHolder(lambda: load_file(path), str(path))
    assert holder.reload() is None
    server = make_server(create_app(ServerState(instance, holder)), "127.0.0.1", 0)
    serving = threading.Thread(target=server.run, name="ui-test-server", daemon=True)
    serving.start()
    try:
        url = wait_until(lambda: bound_url(server, "127.0.0.1"), 30, "the UI server to listen")
        assert url is not None
        yield url
    finally:
        server.should_exit = True
        serving.join(30)
        instance.close()


@pytest.fixture
def chromium() -> None:
    """Skip, before the browser is launched, where there is no Chromium."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")


def test_the_api_and_the_page_carry_them(page_url: str) -> None:
    detail = httpx.get(f"{page_url}/api/jobs/tagged_job", timeout=30).json()
    assert detail["owners"] == ["team:data-platform", "alice@company.com", "bob"]
    assert detail["metadata"]["rows_per_day"] == 120000
    assert detail["run_tags"] == {"cost_center": "analytics"}
    assert detail["tags"] == {"team": "data-platform", "priority": "high"}
    html = httpx.get(f"{page_url}/jobs/tagged_job", timeout=30).text
    assert '<a href="https://slack.com/archives/C123" rel="noopener noreferrer">' in html
    assert '<a href="mailto:alice@company.com">alice@company.com</a>' in html


@pytest.mark.slow
@pytest.mark.timeout(BROWSER_TEST_TIMEOUT)
def test_the_job_page_shows_metadata_owners_and_run_tags(
    page_url: str, chromium: None, browser: Browser
) -> None:
    with open_window(browser, page_url) as w:
        w.go("/jobs/tagged_job")
        panel = w.page.get_by_test_id("metadata")
        link = panel.get_by_role("link", name="https://slack.com/archives/C123")
        expect(link).to_have_attribute("href", "https://slack.com/archives/C123")
        expect(panel).to_contain_text("data-team@company.com")
        expect(panel).to_contain_text("120000")
        owners = w.page.get_by_test_id("owners")
        expect(owners).to_contain_text("team:data-platform")
        expect(owners.get_by_role("link", name="alice@company.com")).to_have_attribute(
            "href", "mailto:alice@company.com"
        )
        expect(owners).to_contain_text("bob")
        expect(w.page.get_by_test_id("run-tags")).to_have_text("cost_center=analytics")
        w.shot("job-metadata")
