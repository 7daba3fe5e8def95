"""Who is calling, and what a browser must send: sessions, login and logout, the login
rate limit, CSRF tokens, API tokens, security headers, and ``conveyor server`` refusing
an open address without access control. (Who may call each API route: ``test_matrix.py``.)
"""

from __future__ import annotations

import re
import textwrap
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from conveyor.server.app import create_app
from conveyor.server.auth_settings import AuthSettings
from conveyor.server.state import ServerState, WorkspaceHolder
from conveyor.server.ui.login import MAX_FAILURES, LoginLimiter
from conveyor.storage.instance import Instance
from conveyor.workspace import load_file

with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)
    from fastapi.testclient import TestClient

WORKSPACE = """
from conveyor import sensor, task, workflow

@task
def one():
    return 1

@workflow(trigger="every:1h")
def guarded():
    one()

@sensor(job=guarded, interval="1h")
def watcher(context):
    return None
"""
PASSWORD = "a long password"
BROWSER = {"sec-fetch-site": "same-origin", "origin": "http://testserver"}


def _client(tmp_path: Path, auth: AuthSettings) -> Iterator[TestClient]:
    path = tmp_path / "guarded.py"
    path.write_text(textwrap.dedent(WORKSPACE))
    holder = WorkspaceHolder(lambda: load_file(path), str(path))
    assert holder.reload() is None
    instance = Instance.at(tmp_path / "home")
    with TestClient(create_app(ServerState(instance, holder, auth=auth))) as client:
        yield client
    instance.close()


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    """Local mode: no login, as ``conveyor dev`` serves."""
    yield from _client(tmp_path, AuthSettings())


@pytest.fixture
def login(tmp_path: Path) -> Iterator[TestClient]:
    """Login mode, with the users alice (operator) and root (admin)."""
    for client in _client(tmp_path, AuthSettings(mode="login")):
        identity = client.app.state.conveyor.instance.identity  # type: ignore[attr-defined]
        identity.add_user("alice", "operator", password=PASSWORD)
        identity.add_user("root", "admin", password=PASSWORD)
        yield client


def _instance(client: TestClient) -> Instance:
    instance: Instance = client.app.state.conveyor.instance  # type: ignore[attr-defined]
    return instance


def _meta_token(html: str) -> str:
    found = re.search(r'<meta name="csrf-token" content="([^"]+)">', html)
    assert found, html[:500]
    return found.group(1)


def _sign_in(client: TestClient, user: str = "alice", password: str = PASSWORD) -> str:
    """Sign in through the login form; the CSRF token of the session."""
    token = _meta_token(client.get("/login").text)
    answer = client.post(
        "/login",
        data={"username": user, "password": password, "csrf_token": token, "next": "/jobs"},
        headers=BROWSER,
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/jobs"
    return _meta_token(client.get("/jobs").text)


# -- local mode ------------------------------------------------------------------------------


def _launch(client: TestClient, headers: dict[str, str]) -> int:
    return int(client.post("/api/runs", json={"job_name": "guarded"}, headers=headers).status_code)


def test_programs_and_our_own_pages_with_the_token_may_launch(client: TestClient) -> None:
    assert _launch(client, {}) == 201  # curl, httpx: no Origin, no Sec-Fetch-Site
    token = _meta_token(client.get("/").text)
    assert _launch(client, {**BROWSER, "x-csrf-token": token}) == 201
    assert client.get("/api/me").json()["label"] == "local admin"


def test_a_browsers_write_without_the_csrf_token_is_refused(client: TestClient) -> None:
    client.get("/")  # the page sets the token's cookie
    refused = client.post("/api/runs", json={"job_name": "guarded"}, headers=BROWSER)
    assert refused.status_code == 403
    assert "CSRF token" in refused.json()["error"]
    wrong = {**BROWSER, "x-csrf-token": "not-the-token"}
    assert _launch(client, wrong) == 403
    assert _launch(client, {"origin": "http://testserver"}) == 403  # an older browser
    form = client.post("/schedules/guarded/switch", data={"enabled": "off"}, headers=BROWSER)
    assert form.status_code == 403
    assert client.get("/api/runs").json()["runs"] == []


@pytest.mark.parametrize(
    "headers",
    [
        {"sec-fetch-site": "cross-site", "origin": "https://evil.example"},
        # localhost on another port is the same site, but not the same origin
        {"sec-fetch-site": "same-site", "origin": "http://testserver:8080"},
        {"origin": "https://evil.example"},
        {"sec-fetch-site": "cross-site", "origin": "null"},
    ],
)
def test_another_sites_page_may_not_launch_cancel_or_switch(
    client: TestClient, headers: dict[str, str]
) -> None:
    token = _meta_token(client.get("/").text)
    refused = client.post(
        "/api/runs", json={"job_name": "guarded"}, headers={**headers, "x-csrf-token": token}
    )
    assert refused.status_code == 403
    assert "from another site's page" in refused.json()["error"]
    assert "call the API from a program" in refused.json()["error"]
    assert client.get("/api/runs").json()["runs"] == []  # nothing was recorded
    assert client.post("/api/schedules/guarded/off", headers=headers).status_code == 403


def test_reading_is_allowed_from_anywhere(client: TestClient) -> None:
    headers = {"sec-fetch-site": "cross-site", "origin": "https://elsewhere.example"}
    assert client.get("/api/jobs", headers=headers).status_code == 200


def test_the_forms_carry_the_token_and_the_local_admin_is_shown(client: TestClient) -> None:
    page = client.get("/schedules")
    token = _meta_token(page.text)
    assert f'name="csrf_token" value="{token}"' in page.text
    assert "local admin" in page.text
    cookie = page.headers["set-cookie"]
    assert "conveyor_csrf=" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    switched = client.post(
        "/schedules/guarded/switch",
        data={"enabled": "off", "csrf_token": token},
        headers=BROWSER,
        follow_redirects=False,
    )
    assert switched.status_code == 303
    entry = _instance(client).audit.entries(action="switch schedule")[0]
    assert (entry.actor, entry.target) == ("local admin", "guarded")


@pytest.mark.parametrize("path", ["/", "/jobs", "/api/jobs", "/static/conveyor.js", "/docs"])
def test_every_answer_carries_the_security_headers(client: TestClient, path: str) -> None:
    headers = client.get(path).headers
    csp = headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "same-origin"


def test_pages_have_no_inline_script(client: TestClient) -> None:
    for path in ("/", "/jobs", "/jobs/guarded", "/runs", "/schedules", "/docs", "/pools"):
        html = client.get(path).text
        for tag in re.findall(r"<script\b[^>]*>", html):
            assert "src=" in tag or 'type="application/json"' in tag, (path, tag)
        assert not re.search(r"\son[a-z]+=", html), path


# -- login mode ------------------------------------------------------------------------------


def test_nobody_signed_in_gets_401_from_the_api_and_the_login_page_from_the_ui(
    login: TestClient,
) -> None:
    answer = login.get("/api/jobs")
    assert answer.status_code == 401
    assert "sign in at /login" in answer.json()["error"]
    assert "conveyor tokens create" in answer.json()["error"]
    page = login.get("/runs?job=guarded", follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"] == "/login?next=%2Fruns%3Fjob%3Dguarded"
    htmx = login.get("/runs", headers={"hx-request": "true"}, follow_redirects=False)
    assert htmx.status_code == 401
    assert htmx.headers["hx-redirect"].startswith("/login")
    form = login.get("/login")
    assert form.status_code == 200
    assert 'name="password"' in form.text
    assert "guarded" not in form.text  # no job, no workspace path before signing in
    health = login.get("/api/health")
    assert health.json() == {"status": "ok"}


def test_login_and_logout_with_a_rotated_httponly_session(login: TestClient) -> None:
    identity = _instance(login).identity
    planted, _ = identity.create_session("alice")  # as if fixed by someone else
    login.cookies.set("conveyor_session", planted, domain="testserver.local")
    token = _meta_token(login.get("/login").text)
    answer = login.post(
        "/login",
        data={"username": "alice", "password": PASSWORD, "csrf_token": token, "next": "/runs"},
        headers=BROWSER,
        follow_redirects=False,
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/runs"
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith("conveyor_session=")
    assert planted not in cookie
    assert identity.session(planted) is None  # the session it carried ended
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Secure" not in cookie
    me = login.get("/api/me").json()
    assert (me["name"], me["kind"], me["role"]) == ("alice", "user", "operator")
    page = login.get("/runs").text
    assert 'id="me-name">alice<' in page
    assert 'id="logout"' in page
    assert "/admin/users" not in page  # not an admin
    csrf = _meta_token(page)
    out = login.post("/logout", data={"csrf_token": csrf}, headers=BROWSER, follow_redirects=False)
    assert out.status_code == 303
    assert out.headers["location"] == "/login"
    assert login.get("/api/me").status_code == 401
    audit = _instance(login).audit
    assert [e.actor for e in audit.entries(action="login")] == ["alice"]
    assert [e.actor for e in audit.entries(action="logout")] == ["alice"]


def test_a_session_must_send_its_csrf_token_to_change_anything(login: TestClient) -> None:
    csrf = _sign_in(login)
    refused = login.post("/api/runs", json={"job_name": "guarded"}, headers=BROWSER)
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["error"]
    # Without browser headers too: a session cookie always needs the token.
    assert login.post("/api/runs", json={"job_name": "guarded"}).status_code == 403
    ok = login.post(
        "/api/runs", json={"job_name": "guarded"}, headers={**BROWSER, "x-csrf-token": csrf}
    )
    assert ok.status_code == 201
    assert ok.json()["launched_by"] == "alice"
    form = login.post(
        "/schedules/guarded/switch",
        data={"enabled": "off", "csrf_token": csrf},
        headers=BROWSER,
        follow_redirects=False,
    )
    assert form.status_code == 303
    forged = login.post("/schedules/guarded/switch", data={"enabled": "on"}, headers=BROWSER)
    assert forged.status_code == 403


def test_wrong_passwords_are_refused_then_throttled_per_user_and_address(
    login: TestClient,
) -> None:
    token = _meta_token(login.get("/login").text)

    def attempt(user: str, password: str) -> int:
        answer = login.post(
            "/login",
            data={"username": user, "password": password, "csrf_token": token},
            headers=BROWSER,
            follow_redirects=False,
        )
        return int(answer.status_code)

    for _ in range(MAX_FAILURES):
        assert attempt("alice", "wrong password") == 401
    throttled = login.post(
        "/login",
        data={"username": "alice", "password": PASSWORD, "csrf_token": token},
        headers=BROWSER,
    )
    assert throttled.status_code == 429
    assert int(throttled.headers["retry-after"]) > 0
    assert "Too many failed sign-ins" in throttled.text
    # The address is throttled too: another user from it waits as well.
    assert attempt("root", PASSWORD) == 429
    failed = _instance(login).audit.entries(action="login.failed")
    assert len(failed) == MAX_FAILURES + 2
    assert {e.actor for e in failed} == {"alice", "root"}
    assert "wrong" not in repr([e.detail for e in failed])  # no password in the log


def test_the_limiter_forgets_failures_after_its_window() -> None:
    limiter = LoginLimiter(limit=2, window=60)
    keys = ["user:a", "address:1.2.3.4"]
    limiter.failed(keys, now=100)
    assert limiter.wait(keys, now=101) == 0
    limiter.failed(keys, now=110)
    assert limiter.wait(keys, now=111) == pytest.approx(49)
    assert limiter.wait(["user:b"], now=111) == 0
    assert limiter.wait(keys, now=160.5) == 0


def test_a_login_without_the_csrf_cookie_from_a_browser_is_refused(login: TestClient) -> None:
    answer = login.post("/login", data={"username": "alice", "password": PASSWORD}, headers=BROWSER)
    assert answer.status_code == 403


@pytest.mark.parametrize(
    "next_path", ["https://evil.example/", "//evil.example/x", "/\\evil.example"]
)
def test_login_goes_on_to_a_path_of_this_site_only(login: TestClient, next_path: str) -> None:
    token = _meta_token(login.get("/login").text)
    answer = login.post(
        "/login",
        data={"username": "alice", "password": PASSWORD, "csrf_token": token, "next": next_path},
        headers=BROWSER,
        follow_redirects=False,
    )
    assert answer.headers["location"] == "/"


def test_session_cookie_is_secure_behind_https(login: TestClient) -> None:
    token = _meta_token(login.get("/login").text)
    answer = login.post(
        "/login",
        data={"username": "alice", "password": PASSWORD, "csrf_token": token},
        headers={**BROWSER, "x-forwarded-proto": "https"},
        follow_redirects=False,
    )
    assert "Secure" in answer.headers["set-cookie"]


def test_api_tokens_say_why_they_are_refused(login: TestClient) -> None:
    identity = _instance(login).identity
    _, good = identity.create_token("alice", "ci")
    me = login.get("/api/me", headers={"Authorization": f"Bearer {good}"}).json()
    assert me["kind"] == "token"
    assert me["label"] == f"alice (token {me['token_id']})"
    revoked, secret = identity.create_token("alice", "old")
    identity.revoke_token(revoked.id)
    answer = login.get("/api/me", headers={"Authorization": f"Bearer {secret}"})
    assert answer.status_code == 401
    assert "revoked" in answer.json()["error"]
    unknown = login.get("/api/me", headers={"Authorization": "Bearer cvt_0000_nope"})
    assert unknown.status_code == 401
    assert "unknown" in unknown.json()["error"]
    assert "conveyor tokens create" in unknown.json()["error"]
    bad = login.get("/api/me", headers={"Authorization": "Basic abc"})
    assert bad.status_code == 401
    assert "Bearer" in bad.json()["error"]
    empty = login.get("/api/me", headers={"Authorization": "Bearer "})
    assert empty.status_code == 401
    identity.set_disabled("alice", True)
    disabled = login.get("/api/me", headers={"Authorization": f"Bearer {good}"})
    assert disabled.status_code == 401
    assert "disabled" in disabled.json()["error"]
    # A token needs no CSRF token.
    _, root = identity.create_token("root", "ci")
    made = login.post(
        "/api/runs", json={"job_name": "guarded"}, headers={"Authorization": f"Bearer {root}"}
    )
    assert made.status_code == 201


def test_each_action_leaves_one_audit_entry_naming_who(login: TestClient) -> None:
    identity = _instance(login).identity
    token, secret = identity.create_token("root", "ci")
    who = f"root (token {token.id})"
    auth = {"Authorization": f"Bearer {secret}"}

    def call(method: str, url: str, body: Any = None) -> Any:
        answer = login.request(method, url, json=body, headers=auth)
        assert answer.status_code < 300, answer.text
        return answer.json() if answer.content else None

    run = call("POST", "/api/runs", {"job_name": "guarded"})["id"]
    call("POST", f"/api/runs/{run}/cancel")
    again = call("POST", f"/api/runs/{run}/rerun", {"full": True})["id"]
    backfill = call(
        "POST",
        "/api/backfills",
        {"job_name": "guarded", "start": "2026-01-01T00:00", "end": "2026-01-01T02:00"},
    )["id"]
    call("POST", f"/api/backfills/{backfill}/cancel")
    call("POST", "/api/schedules/guarded/off")
    call("POST", "/api/sensors/watcher/off")
    call("PUT", "/api/sensors/watcher/cursor", {"cursor": "c1"})
    call("PUT", "/api/pools/db", {"limit": 2})
    call("DELETE", "/api/pools/db")
    call("POST", "/api/workspace/reload")
    expected = {
        "launch": run,
        "cancel": run,
        "rerun": again,
        "backfill": backfill,
        "cancel backfill": backfill,
        "switch schedule": "guarded",
        "switch sensor": "watcher",
        "set sensor cursor": "watcher",
        "pool set": "db",
        "pool delete": "db",
        "code reload": None,
    }
    audit = _instance(login).audit
    for action, target in expected.items():
        entries = audit.entries(action=action)
        assert len(entries) == 1, (action, entries)
        assert entries[0].actor == who
        assert entries[0].address == "testclient"
        if target is not None:
            assert entries[0].target == target
    assert _instance(login).run(again).launched_by == who


def test_a_disabled_users_session_ends(login: TestClient) -> None:
    _sign_in(login)
    assert login.get("/api/me").status_code == 200
    _instance(login).identity.set_disabled("alice", True)
    assert login.get("/api/me").status_code == 401


def test_the_login_page_offers_single_sign_on_when_set_up(tmp_path: Path) -> None:
    from conveyor.server.auth_settings import OidcSettings

    oidc = OidcSettings("http://127.0.0.1:1", "conveyor", "secret", name="Acme SSO")
    for client in _client(tmp_path, AuthSettings(mode="login", oidc=oidc)):
        page = client.get("/login?next=/runs").text
        assert "Sign in with Acme SSO" in page
        assert 'href="/auth/oidc/login?next=%2Fruns"' in page


# -- conveyor server -------------------------------------------------------------------------


def test_server_refuses_an_open_address_without_access_control(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from conveyor.cli.main import cli

    monkeypatch.setenv("CONVEYOR_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CONVEYOR_OIDC_ISSUER", raising=False)
    Instance.at(tmp_path / "home").close()
    path = tmp_path / "guarded.py"
    path.write_text(textwrap.dedent(WORKSPACE))
    result = CliRunner().invoke(cli, ["server", str(path), "--host", "0.0.0.0"])
    assert result.exit_code == 2, result.output
    assert "conveyor users add NAME --role admin" in result.output
    assert "CONVEYOR_OIDC_ISSUER" in result.output
    dev = CliRunner().invoke(cli, ["dev", str(path), "--host", "0.0.0.0"])
    assert dev.exit_code == 2
    assert "refusing to serve 0.0.0.0" in dev.output


def test_auth_settings_of_the_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import click

    from conveyor.cli.serve import auth_settings, is_loopback
    from conveyor.errors import ConfigError

    assert is_loopback("127.0.0.1")
    assert is_loopback("::1")
    assert is_loopback("localhost")
    assert not is_loopback("0.0.0.0")
    assert not is_loopback("example.com")
    assert not is_loopback("192.168.1.4")
    monkeypatch.delenv("CONVEYOR_OIDC_ISSUER", raising=False)
    instance = Instance.at(tmp_path / "home")
    try:
        assert auth_settings(instance, "127.0.0.1").mode == "local"
        with pytest.raises(click.exceptions.Exit):
            auth_settings(instance, "0.0.0.0")
        instance.identity.add_user("boss", "admin", password=PASSWORD)
        assert auth_settings(instance, "0.0.0.0").mode == "login"
        assert auth_settings(instance, "127.0.0.1").mode == "login"
        monkeypatch.setenv("CONVEYOR_OIDC_ISSUER", "https://id.example")
        with pytest.raises(ConfigError, match="CONVEYOR_OIDC_CLIENT_ID"):
            auth_settings(instance, "0.0.0.0")
        # an issuer over plain http is refused at start, not at the first sign-in
        monkeypatch.setenv("CONVEYOR_OIDC_ISSUER", "http://id.example")
        monkeypatch.setenv("CONVEYOR_OIDC_CLIENT_ID", "conveyor")
        monkeypatch.setenv("CONVEYOR_OIDC_CLIENT_SECRET", "s3cret")
        with pytest.raises(ConfigError, match="https"):
            auth_settings(instance, "0.0.0.0")
    finally:
        instance.close()
