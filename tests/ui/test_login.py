"""Signing in and out in a real browser, what a viewer sees and may not do, CSRF tokens,
and the security headers of the pages. Each action leaves an audit entry naming who."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect

from tests.ui.conftest import PASSWORD, Served, Window, open_window
from tests.waiting import wait_until


@pytest.fixture
def login_window(browser: Browser, served_login: Served) -> Iterator[Window]:
    with open_window(browser, served_login.url) as w:
        yield w


def sign_in(w: Window, user: str, password: str = PASSWORD, *, start: str = "/runs") -> None:
    w.go(start)
    expect(w.page).to_have_url(f"{w.base}/login?next={start.replace('/', '%2F')}")
    w.page.fill("#login-username", user)
    w.page.fill("#login-password", password)
    w.page.click("#login-submit")


def csrf_of(w: Window) -> str:
    token = w.page.locator('meta[name="csrf-token"]').get_attribute("content")
    assert token
    return token


def test_log_in_and_out(login_window: Window, served_login: Served) -> None:
    w = login_window
    w.go("/runs")
    expect(w.page.locator("#login-username")).to_be_visible()
    expect(w.page.locator("nav[aria-label=pages]")).to_have_count(0)
    w.shot("login")
    sign_in(w, "ada", "not the password")
    expect(w.page.locator("#login-problem")).to_contain_text("Wrong user name or password")
    # The refused login answered 401, which the browser logs: expected here, and only here.
    assert [e for e in w.errors if "401" not in e] == []
    w.errors.clear()
    w.page.fill("#login-password", PASSWORD)
    w.page.click("#login-submit")
    expect(w.page).to_have_url(f"{w.base}/runs")
    expect(w.page.locator("#me-name")).to_have_text("ada")
    expect(w.page.locator("#me-role")).to_have_text("admin")
    expect(w.page.locator(".who a[href='/admin/users']")).to_be_visible()
    expect(w.page.locator(".who a[href='/account/tokens']")).to_be_visible()
    w.shot("signed-in")
    w.page.click("#logout")
    expect(w.page).to_have_url(f"{w.base}/login")
    w.go("/jobs")
    expect(w.page).to_have_url(f"{w.base}/login?next=%2Fjobs")
    audit = served_login.instance.audit
    assert [(e.actor, e.target) for e in audit.entries(action="login.failed")] == [("ada", "ada")]
    assert [e.actor for e in audit.entries(action="login")] == ["ada"]
    assert [e.actor for e in audit.entries(action="logout")] == ["ada"]
    assert all(e.address == "127.0.0.1" for e in audit.entries())


def test_a_viewer_sees_no_launch_button_and_a_forged_launch_is_refused(
    login_window: Window, served_login: Served
) -> None:
    w = login_window
    sign_in(w, "vera", start="/jobs")
    expect(w.page).to_have_url(f"{w.base}/jobs")
    expect(w.page.locator("a[href='/jobs/pipeline']")).to_be_visible()
    expect(w.page.locator("a[href$='/launch']")).to_have_count(0)
    w.go("/jobs/pipeline")
    expect(w.page.locator("a[href='/jobs/pipeline/launch']")).to_have_count(0)
    w.go("/jobs/pipeline/launch")
    expect(w.page.locator("#no-launch")).to_be_visible()
    expect(w.page.locator("#launch-button")).to_have_count(0)
    w.go("/schedules")
    expect(w.page.locator("form[action$='/switch']")).to_have_count(0)
    w.shot("viewer-launchpad")
    token = csrf_of(w)
    # Forged: the form's fields with the right CSRF token; the role is what refuses it.
    forged = w.page.request.post(
        f"{w.base}/jobs/pipeline/launch",
        form={"csrf_token": token, "source": "form"},
        headers={"Origin": w.base},
    )
    assert forged.status == 403
    api = w.page.request.post(
        f"{w.base}/api/runs",
        data={"job_name": "pipeline"},
        headers={"Origin": w.base, "X-CSRF-Token": token},
    )
    assert api.status == 403
    assert "needs the operate permission" in api.json()["error"]
    assert served_login.instance.runs("pipeline", limit=5) == []


def test_an_operator_launches_and_cancels_with_the_token_and_is_audited(
    login_window: Window, served_login: Served
) -> None:
    w = login_window
    sign_in(w, "otto", start="/jobs/pipeline/launch")
    expect(w.page).to_have_url(f"{w.base}/jobs/pipeline/launch")
    # A state-changing request without the CSRF token is refused; the page's own carry it.
    bare = w.page.request.post(
        f"{w.base}/api/runs", data={"job_name": "pipeline"}, headers={"Origin": w.base}
    )
    assert bare.status == 403
    assert "CSRF token" in bare.json()["error"]
    bare_form = w.page.request.post(
        f"{w.base}/schedules/hourly/switch", form={"enabled": "off"}, headers={"Origin": w.base}
    )
    assert bare_form.status == 403
    w.page.click("#launch-button")
    expect(w.page).to_have_url(re.compile(r"/runs/[0-9a-f]{32}$"))
    run_id = w.page.url.rsplit("/", 1)[-1]
    expect(w.page.locator("#run-launched-by")).to_have_text("otto")
    assert served_login.instance.run(run_id).launched_by == "otto"
    audit = served_login.instance.audit
    assert [(e.actor, e.target) for e in audit.entries(action="launch")] == [("otto", run_id)]
    w.page.locator("#run-head button.danger").click()
    wait_until(lambda: served_login.instance.run(run_id).status.is_terminal, 120, "the run to end")
    assert [(e.actor, e.target) for e in audit.entries(action="cancel")] == [("otto", run_id)]


def test_a_state_changing_request_without_the_token_is_refused_without_login(
    window: Window, served: Served
) -> None:
    window.go("/schedules")
    token = csrf_of(window)
    bare = window.page.request.post(
        f"{window.base}/schedules/hourly/switch",
        form={"enabled": "off"},
        headers={"Origin": window.base},
    )
    assert bare.status == 403
    with_token = window.page.request.post(
        f"{window.base}/schedules/hourly/switch",
        form={"enabled": "off", "csrf_token": token},
        headers={"Origin": window.base},
        max_redirects=0,
    )
    assert with_token.status == 303
    # The page's own switch, through the browser: it carries the token.
    window.go("/schedules")
    expect(window.page.locator("#schedule-hourly [data-testid=state]")).to_have_text("off")
    window.page.locator("#schedule-hourly button[type=submit]").click()
    expect(window.page.locator("#schedule-hourly [data-testid=state]")).to_have_text("on")
    entries = served.instance.audit.entries(action="switch schedule")
    assert [(e.actor, e.target) for e in entries] == [("local admin", "hourly")] * 2


@pytest.mark.parametrize("path", ["/", "/login", "/docs"])
def test_the_pages_carry_the_security_headers(
    login_window: Window, served_login: Served, path: str
) -> None:
    response = login_window.page.goto(login_window.base + path)
    assert response is not None
    headers = response.headers
    assert "script-src 'self'" in headers["content-security-policy"]
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "same-origin"
