"""The admin pages (users and groups, access lists, the audit log) and the account's
tokens page, in a real browser against a server that asks for logins: what an admin
does there lands in the instance and the audit log; anyone else gets 403."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect

from conveyor.definitions.access import Permission, Role
from tests.ui.conftest import PASSWORD, Served, Window, open_window


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


def actions_of(served: Served) -> list[tuple[str, str, str | None]]:
    """The audit log but logins, oldest first: (actor, action, target)."""
    entries = served.instance.audit.entries()
    return [(e.actor, e.action, e.target) for e in entries if "login" not in e.action][::-1]


def test_an_admin_manages_users_and_groups(login_window: Window, served_login: Served) -> None:
    w, identity = login_window, served_login.instance.identity
    sign_in(w, "ada", "/admin/users")
    expect(w.page.locator("#user-vera")).to_contain_text("viewer")
    # A bad password is refused, saying why; nothing is added.
    w.page.fill("#new-user-name", "bea")
    w.page.fill("#new-user-password", "short12")
    w.page.evaluate("document.querySelector('#new-user-password').removeAttribute('minlength')")
    w.page.click("#add-user button[type=submit]")
    expect(w.page.locator("#admin-problem")).to_contain_text("at least 8 characters")
    assert identity.user("bea") is None
    w.page.fill("#new-user-name", "bea")
    w.page.select_option("#new-user-role", "operator")
    w.page.fill("#new-user-email", "bea@example.com")
    w.page.fill("#new-user-password", "long enough")
    w.page.click("#add-user button[type=submit]")
    expect(w.page.locator("#admin-done")).to_contain_text("user bea added as operator")
    assert identity.check_password("bea", "long enough") is not None
    row = w.page.locator("#user-bea")
    row.locator("select[name=role]").select_option("editor")
    row.locator("form[action$='/role'] button").click()
    expect(w.page.locator("#admin-done")).to_have_text("bea is editor now")
    w.page.locator("#user-bea form[action$='/disable'] button").click()
    expect(w.page.locator("#user-bea")).to_contain_text("disabled")
    assert identity.require_user("bea").disabled
    w.page.locator("#user-bea form[action$='/enable'] button").click()
    expect(w.page.locator("#user-bea")).to_contain_text("active")
    # Groups: add one, a member in and out.
    w.page.fill("#new-group-name", "quants")
    w.page.click("#add-group button[type=submit]")
    group = w.page.locator("#group-quants")
    group.locator("select[name=user]").select_option("bea")
    group.locator("form[action$='/members'] button").click()
    expect(w.page.locator("#user-bea")).to_contain_text("quants")
    assert identity.require_user("bea").groups == ("quants",)
    w.shot("admin-users")
    w.page.locator("#group-quants button[aria-label='take bea out of quants']").click()
    expect(w.page.locator("#admin-done")).to_contain_text("bea is no longer a member of quants")
    # The only enabled admin cannot demote itself.
    w.page.locator("#user-ada select[name=role]").select_option("viewer")
    w.page.locator("#user-ada form[action$='/role'] button").click()
    expect(w.page.locator("#admin-problem")).to_contain_text("ada is the only enabled admin")
    assert identity.require_user("ada").role is Role.ADMIN
    # Remove, behind a second click.
    w.page.locator("#user-bea summary", has_text="Remove").click()
    w.page.locator("#user-bea form[action$='/remove'] button").click()
    expect(w.page.locator("#user-bea")).to_have_count(0)
    assert identity.user("bea") is None
    assert actions_of(served_login) == [
        ("ada", "user add", "bea"),
        ("ada", "user set role", "bea"),
        ("ada", "user disable", "bea"),
        ("ada", "user enable", "bea"),
        ("ada", "group add", "quants"),
        ("ada", "group add member", "quants"),
        ("ada", "group remove member", "quants"),
        ("ada", "user remove", "bea"),
    ]


def test_an_admin_grants_and_undoes_access(
    browser: Browser, login_window: Window, served_login: Served
) -> None:
    w, access = login_window, served_login.instance.access
    served_login.instance.identity.add_group("quants")
    sign_in(w, "ada", "/admin/access")
    expect(w.page.locator("#access-hourly")).to_contain_text("no list")
    w.page.select_option("#grant-job", "hourly")
    w.page.select_option("#grant-principal", "group:quants")
    w.page.check("#grant-form input[value=operate]")
    w.page.click("#grant-form button[type=submit]")
    expect(w.page.locator("#admin-done")).to_have_text("group:quants on hourly: operate, read")
    assert access.changes("hourly") == {
        "group:quants": frozenset({Permission.READ, Permission.OPERATE})
    }
    row = w.page.locator("#access-table tr[data-principal='group:quants']")
    expect(row).to_contain_text("admin")
    # What the grant means: vera (a viewer, not in quants) no longer sees hourly.
    with open_window(browser, served_login.url) as other:
        sign_in(other, "vera", "/jobs")
        expect(other.page.locator("a[href='/jobs/daily']").first).to_be_visible()
        expect(other.page.locator("a[href='/jobs/hourly']")).to_have_count(0)
    w.shot("admin-access")
    row.locator("form[action='/admin/access/revoke'] button").click()
    expect(w.page.locator("#admin-done")).to_contain_text("back to the code's list")
    expect(w.page.locator("#access-hourly")).to_contain_text("no list")
    assert access.all() == {}
    assert actions_of(served_login) == [
        ("ada", "access grant", "hourly"),
        ("ada", "access revoke", "hourly"),
    ]


def test_the_audit_log_page_filters_and_pages(login_window: Window, served_login: Served) -> None:
    w, log = login_window, served_login.instance.audit
    for i in range(60):
        log.append("otto" if i % 2 else "vera", "launch", f"run-{i:02d}", detail={"job": "daily"})
    log.append("ada", "pool set", "db", detail={"limit": 2}, address="10.0.0.7")
    sign_in(w, "ada", "/admin/audit")
    rows = w.page.locator("#audit-table tbody tr")
    expect(rows).to_have_count(50)
    expect(rows.first).to_contain_text("login")  # newest first: ada's own sign-in
    expect(w.page.locator("#audit-table")).to_contain_text("10.0.0.7")
    w.shot("admin-audit")
    w.page.click("#audit-older")
    expect(rows).to_have_count(12)
    expect(rows.last).to_contain_text("run-00")
    w.go("/admin/audit")
    w.page.select_option("#audit-actor", "otto")
    w.page.select_option("#audit-action", "launch")
    w.page.click("#audit-filters button[type=submit]")
    expect(rows).to_have_count(30)
    expect(w.page.locator("#audit-older")).to_have_count(0)
    expect(rows.first).to_contain_text("run-59")


def test_others_may_not_open_or_post_to_the_admin_pages(
    login_window: Window, served_login: Served
) -> None:
    w = login_window
    sign_in(w, "otto", "/jobs")
    expect(w.page.locator(".who a[href='/admin/users']")).to_have_count(0)
    for path in ("/admin/users", "/admin/access", "/admin/audit"):
        response = w.page.goto(w.base + path)
        assert response is not None
        assert response.status == 403
    token = w.page.locator('meta[name="csrf-token"]').get_attribute("content")
    forged = w.page.request.post(
        w.base + "/admin/users",
        form={"csrf_token": token or "", "name": "mallory", "role": "admin"},
    )
    assert forged.status == 403
    assert served_login.instance.identity.user("mallory") is None
    w.errors.clear()  # the browser logs the 403 answers as console errors


def test_a_user_makes_and_revokes_a_token(login_window: Window, served_login: Served) -> None:
    w, identity = login_window, served_login.instance.identity
    sign_in(w, "vera", "/account/tokens")
    expect(w.page.locator("#tokens")).to_contain_text("No tokens yet")
    w.page.fill("#token-name", "laptop")
    w.page.fill("#token-days", "30")
    w.page.click("#create-token button[type=submit]")
    secret = w.page.locator("#token-secret").inner_text().strip()
    assert secret.startswith("cvt_")
    [token] = identity.tokens("vera")
    found = identity.check_token(secret)
    assert found is not None
    assert found.id == token.id
    expect(w.page.locator(f"#token-{token.id}")).to_contain_text("active")
    w.shot("account-tokens")
    # The secret works against the API, and is on no other page.
    me = w.page.request.get(w.base + "/api/me", headers={"Authorization": f"Bearer {secret}"})
    assert me.json()["label"] == f"vera (token {token.id})"
    w.go("/account/tokens")
    assert secret not in w.page.content()
    w.page.locator(f"#token-{token.id} button").click()
    expect(w.page.locator("#account-done")).to_contain_text(f"token {token.id} revoked")
    expect(w.page.locator(f"#token-{token.id}")).to_contain_text("revoked")
    after = w.page.request.get(w.base + "/api/me", headers={"Authorization": f"Bearer {secret}"})
    assert after.status == 401
    assert [a for _, a, _ in actions_of(served_login)] == ["token create", "token revoke"]
    w.errors.clear()  # the refused call's 401


def test_the_pages_without_logins(window: Window, served: Served) -> None:
    """``conveyor dev``: the local admin sees the admin pages, and makes tokens for users."""
    w = window
    served.instance.identity.add_user("bob")
    w.go("/admin/users")
    expect(w.page.locator("#user-bob")).to_contain_text("viewer")
    w.go("/account/tokens")
    w.page.select_option("#token-user", "bob")
    w.page.fill("#token-name", "ci")
    w.page.click("#create-token button[type=submit]")
    expect(w.page.locator("#token-secret")).to_contain_text("cvt_")
    assert [t.user_name for t in served.instance.identity.tokens()] == ["bob"]
    assert [e.actor for e in served.instance.audit.entries()] == ["local admin"]


def test_the_run_page_says_who_started_the_run(window: Window, served: Served) -> None:
    from conveyor.storage.states import RunStatus

    run = served.instance.run_store.create(
        job_name="daily", job_version="v", status=RunStatus.QUEUED, launched_by="ada (token 1a2b)"
    )
    window.go(f"/runs/{run.id}")
    expect(window.page.locator("#run-launched-by")).to_have_text("ada (token 1a2b)")
