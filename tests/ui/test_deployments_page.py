"""The deployments page in a real browser: environments side by side, history, versions
and their diff; Promote and Rollback only for those allowed; a run's page draws the graph
of the version it ran, not today's."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from conveyor.execution.deploy import deploy
from conveyor.storage.records import RunStatus
from tests.ui.conftest import PASSWORD, Served, Window, open_window

PIPELINE = """
from conveyor import task, workflow

@task
def extract():
    return 1

@task
def {step}(x):
    return x + 1

@workflow(trigger="every:1d")
def pipeline():
    {step}(extract())

@workflow
def report():
    extract()
"""


@pytest.fixture
def login_window(browser: Browser, served_login: Served) -> Iterator[Window]:
    with open_window(browser, served_login.url) as w:
        yield w


def sign_in(w: Window, user: str, then: str) -> None:
    w.go(f"/login?next={then}")
    w.page.fill("#login-username", user)
    w.page.fill("#login-password", PASSWORD)
    w.page.click("#login-submit")
    w.page.wait_for_url(f"{w.base}{then}")


def _deploy_two(served: Served, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Version 1 (pipeline: extract -> old_step) and 2 (extract -> new_step), both
    deployed to dev in turn."""
    monkeypatch.delenv("CONVEYOR_ENVIRONMENTS", raising=False)
    monkeypatch.delenv("CONVEYOR_PROMOTE_REQUIRE_SUCCESS", raising=False)
    for step, message in (("old_step", "first cut"), ("new_step", "rename the step")):
        code = folder / "pipes" / "jobs.py"
        code.parent.mkdir(exist_ok=True)
        code.write_text(textwrap.dedent(PIPELINE.format(step=step)))
        deploy(served.instance, code, "dev", by="dana", message=message)


def test_promote_and_roll_back_from_the_page(
    login_window: Window,
    browser: Browser,
    served_login: Served,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _deploy_two(served_login, tmp_path, monkeypatch)
    store = served_login.instance.deployments
    # An operator (operate, no promote) sees the page without the buttons.
    with open_window(browser, served_login.url) as other:
        sign_in(other, "otto", "/deployments")
        expect(other.page.locator("#env-dev [data-testid=active]")).to_have_text("version 2")
        expect(other.page.locator("[data-testid=promote]")).to_have_count(0)
        expect(other.page.locator("[data-testid=rollback]")).to_have_count(0)
    w = login_window
    sign_in(w, "ada", "/deployments")
    expect(w.page.get_by_role("link", name="Deployments")).to_be_visible()
    w.page.locator("#env-dev [data-testid=promote]").click()
    expect(w.page.locator("#env-pre [data-testid=active]")).to_have_text("version 2")
    w.page.locator("#env-pre [data-testid=promote]").click()
    expect(w.page.locator("#env-prod [data-testid=active]")).to_have_text("version 2")
    w.page.locator("#env-dev [data-testid=rollback]").click()
    expect(w.page.locator("#env-dev [data-testid=active]")).to_have_text("version 1")
    assert [e.active_version for e in store.environments()] == [1, 2, 2]
    expect(w.page.locator("#env-dev tbody tr").first).to_contain_text("rollback (was 2)")
    expect(w.page.locator("#env-prod tbody tr").first).to_contain_text("promote from pre")
    expect(w.page.locator("#version-2")).to_contain_text("rename the step")
    w.page.fill("input[name=a]", "1")
    w.page.fill("input[name=b]", "2")
    w.page.get_by_role("button", name="Diff").click()
    expect(w.page.locator("#diff")).to_contain_text("Version 2 against 1")
    expect(w.page.locator("#diff")).to_contain_text("pipeline")
    w.shot("deployments")
    w.page.get_by_role("link", name="1", exact=True).first.click()
    expect(w.page.locator("h1")).to_have_text("Version 1")
    expect(w.page.locator("#version-jobs")).to_contain_text("pipeline")
    actions = [
        (e.action, (e.detail or {}).get("outcome")) for e in served_login.instance.audit.entries()
    ]
    assert [a for a in actions if a[0] in ("promote", "rollback")] == [
        ("rollback", "done"),
        ("promote", "done"),
        ("promote", "done"),
    ]


def test_a_runs_page_draws_the_graph_of_its_version(
    login_window: Window, served_login: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _deploy_two(served_login, tmp_path, monkeypatch)
    run = served_login.instance.run_store.create(
        job_name="dev.pipeline",
        job_version="v1",
        deployed_version=1,
        environment="dev",
        status=RunStatus.QUEUED,
    )
    served_login.instance.cancel_run(run.id)
    w = login_window
    sign_in(w, "ada", f"/runs/{run.id}")
    expect(w.page.locator("#run-version")).to_have_text("version 1 in dev")
    graph = w.page.locator("section[aria-labelledby=graph-title]")
    expect(graph).to_contain_text("old_step")
    expect(graph).not_to_contain_text("new_step")
