"""Signing in through OpenID Connect in a real browser: the login page's button, the
provider (``tests/oidc_provider.py``) and back, signed in, on the page asked for."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect

from conveyor.server.app import create_app
from conveyor.server.auth_settings import AuthSettings, OidcSettings
from conveyor.server.runner import bound_url, make_server
from conveyor.server.state import ServerState, WorkspaceHolder
from conveyor.storage.instance import Instance
from conveyor.workspace import load_file
from tests.oidc_provider import OidcProvider, serving
from tests.ui.conftest import BROWSER_TEST_TIMEOUT, CHROMIUM, EXPECT_MS, SCREENSHOTS, WORKSPACE
from tests.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(BROWSER_TEST_TIMEOUT)]


@pytest.fixture
def idp() -> Iterator[OidcProvider]:
    with serving() as provider:
        yield provider


@pytest.fixture
def conveyor_url(idp: OidcProvider, tmp_path: Path) -> Iterator[tuple[str, Instance]]:
    """Conveyor in login mode with ``idp`` as its provider, on tests/ui/workspace.py."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    instance = Instance.at(tmp_path / "home")
    holder = WorkspaceHolder(lambda: load_file(WORKSPACE), str(WORKSPACE))
    assert holder.reload() is None
    oidc = OidcSettings(idp.issuer, idp.client_id, idp.client_secret, name="Test IdP")
    state = ServerState(instance, holder, auth=AuthSettings("login", oidc))
    server = make_server(create_app(state), "127.0.0.1", 0)
    thread = threading.Thread(target=server.run, name="oidc-ui-conveyor", daemon=True)
    thread.start()
    try:
        url = wait_until(lambda: bound_url(server, "127.0.0.1"), 30, "Conveyor to listen")
        assert url is not None
        yield url, instance
    finally:
        server.should_exit = True
        thread.join(30)
        instance.close()


@pytest.fixture
def page(conveyor_url: tuple[str, Instance], browser: Browser) -> Iterator[Page]:
    """A browser page; ``conveyor_url`` first, which skips without Chromium."""
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    context.set_default_timeout(EXPECT_MS)
    page = context.new_page()
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(f"console: {message.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    try:
        yield page
        assert not errors, "browser errors:\n" + "\n".join(errors)
    finally:
        context.close()


def test_sign_in_through_the_provider(
    page: Page, conveyor_url: tuple[str, Instance], idp: OidcProvider
) -> None:
    url, instance = conveyor_url
    page.goto(f"{url}/jobs")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Fjobs$"))
    button = page.locator("#login-oidc")
    expect(button).to_have_text("Sign in with Test IdP")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "login-oidc.png"), full_page=True)
    button.click()
    expect(page).to_have_url(f"{url}/jobs")
    expect(page.locator("body")).to_contain_text("alice")
    assert "/authorize" in idp.seen
    user = instance.identity.user("alice")
    assert user is not None
    assert user.oidc_subject == f"{idp.issuer}|u-1001"
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["conveyor_session"]["httpOnly"]
    assert cookies["conveyor_session"]["sameSite"] == "Lax"
    assert "conveyor_oidc" not in cookies


def test_a_token_for_another_application_is_refused(
    page: Page, conveyor_url: tuple[str, Instance], idp: OidcProvider
) -> None:
    url, instance = conveyor_url
    idp.fault = "audience"
    page.goto(f"{url}/login?next=%2Fjobs")
    page.locator("#login-oidc").click()
    problem = page.locator("#login-problem")
    expect(problem).to_have_text(
        "Sign-in with Test IdP failed: the identity token was issued for another application."
    )
    page.screenshot(path=str(SCREENSHOTS / "login-oidc-refused.png"), full_page=True)
    assert "conveyor_session" not in {c["name"] for c in page.context.cookies()}
    [entry] = instance.audit.entries(action="login.failed")
    assert entry.detail is not None
    assert entry.detail["reason"] == "audience"
