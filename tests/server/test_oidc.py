"""Signing in through OpenID Connect: Conveyor in login mode and the test provider
(``tests/oidc_provider.py``), each a uvicorn server on 127.0.0.1, with the browser's
redirects followed by hand across the two."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from conveyor.definitions.access import Role
from conveyor.errors import ConfigError
from conveyor.server.app import create_app
from conveyor.server.auth_settings import AuthSettings, OidcSettings
from conveyor.server.id_token import Identity, LoginError, check_claims
from conveyor.server.oidc import FAILED_PARAM, OidcClient, failure_line, pkce_challenge, safe_next
from conveyor.server.runner import bound_url, make_server
from conveyor.server.state import ServerState, WorkspaceHolder
from conveyor.server.ui.oidc import name_candidates
from conveyor.storage.instance import Instance
from conveyor.workspace import Workspace
from tests.oidc_provider import ALL_FAULTS, Fault, OidcProvider, serving
from tests.waiting import wait_until

pytestmark = pytest.mark.timeout(120)


@dataclass
class Served:
    """Conveyor under test: its URL, instance, and a client with a cookie jar (the browser)."""

    url: str
    instance: Instance
    state: ServerState
    http: httpx.Client


@pytest.fixture(scope="module")
def provider() -> Iterator[OidcProvider]:
    with serving() as p:
        yield p


@pytest.fixture
def idp(provider: OidcProvider) -> OidcProvider:
    provider.reset()
    return provider


def settings_of(idp: OidcProvider, **changes: Any) -> OidcSettings:
    values: dict[str, Any] = {
        "issuer": idp.issuer,
        "client_id": idp.client_id,
        "client_secret": idp.client_secret,
        "name": "Test IdP",
    }
    values.update(changes)
    return OidcSettings(**values)


@contextmanager
def serve(instance: Instance, oidc: OidcSettings | None) -> Iterator[Served]:
    holder = WorkspaceHolder(lambda: Workspace({}, {"file": "none"}), "no workspace")
    assert holder.reload() is None
    state = ServerState(instance, holder, auth=AuthSettings("login", oidc))
    server = make_server(create_app(state), "127.0.0.1", 0)
    thread = threading.Thread(target=server.run, name="oidc-test-conveyor", daemon=True)
    thread.start()
    try:
        url = wait_until(lambda: bound_url(server, "127.0.0.1"), 30, "Conveyor to listen")
        assert url is not None
        with httpx.Client(timeout=30) as http:
            yield Served(url, instance, state, http)
    finally:
        server.should_exit = True
        thread.join(30)


@pytest.fixture
def conveyor(idp: OidcProvider, tmp_path: Path) -> Iterator[Served]:
    instance = Instance.at(tmp_path / "home")
    try:
        with serve(instance, settings_of(idp)) as served:
            yield served
    finally:
        instance.close()


@dataclass
class Hops:
    """The answers of one sign-in: to Conveyor's login route, the provider's
    authorize, and Conveyor's callback."""

    login: httpx.Response
    authorize: httpx.Response | None
    callback: httpx.Response | None

    @property
    def last(self) -> httpx.Response:
        return self.callback or self.authorize or self.login


def sign_in(c: Served, next_path: str = "/", *, mangle: Any = None) -> Hops:
    """Sign in as a browser would, following each redirect by hand; ``mangle`` may
    change the callback URL before it is followed."""
    login = c.http.get(f"{c.url}/auth/oidc/login", params={"next": next_path})
    if login.status_code != 303 or urlsplit(login.headers["location"]).path == "/login":
        return Hops(login, None, None)
    authorize = c.http.get(login.headers["location"])
    assert authorize.status_code == 302, authorize.text
    back = authorize.headers["location"]
    assert back.startswith(f"{c.url}/auth/oidc/callback?")
    if mangle is not None:
        back = mangle(back)
    return Hops(login, authorize, c.http.get(back))


def failed_reason(response: httpx.Response) -> str:
    """The reason the login page is told, from a redirect to it."""
    assert response.status_code == 303, response.text
    location = urlsplit(response.headers["location"])
    assert location.path == "/login"
    assert not location.netloc
    return parse_qs(location.query)[FAILED_PARAM][0]


def me(c: Served) -> httpx.Response:
    return c.http.get(f"{c.url}/api/me")


def failures(instance: Instance) -> list[dict[str, Any]]:
    return [e.detail or {} for e in instance.audit.entries(action="login.failed")]


# -- the flow ------------------------------------------------------------------------


def test_login_makes_the_user_and_a_session(idp: OidcProvider, durable: Instance) -> None:
    """Acceptance 5: on SQLite and on PostgreSQL."""
    with serve(durable, settings_of(idp)) as c:
        check_first_login(c, idp)


def check_first_login(c: Served, idp: OidcProvider) -> None:
    assert me(c).status_code == 401
    hops = sign_in(c, "/runs?status=failed")
    # To the provider: the code flow with PKCE, a state and a nonce.
    to_provider = urlsplit(hops.login.headers["location"])
    assert f"{to_provider.scheme}://{to_provider.netloc}" == idp.issuer
    asked = {k: v[0] for k, v in parse_qs(to_provider.query).items()}
    assert asked["response_type"] == "code"
    assert asked["client_id"] == idp.client_id
    assert asked["redirect_uri"] == f"{c.url}/auth/oidc/callback"
    assert asked["code_challenge_method"] == "S256"
    assert len(asked["state"]) >= 32
    assert len(asked["nonce"]) >= 32
    assert "openid" in asked["scope"].split()
    cookie = hops.login.headers["set-cookie"].lower()
    assert cookie.startswith("conveyor_oidc=")
    for attribute in ("httponly", "samesite=lax", "path=/auth/oidc", "max-age=600"):
        assert attribute in cookie
    # Back: a session, and on to where the user was going.
    assert hops.callback is not None
    assert hops.callback.status_code == 303, hops.callback.text
    assert hops.callback.headers["location"] == "/runs?status=failed"
    assert "conveyor_session=" in hops.callback.headers["set-cookie"]
    answer = me(c)
    assert answer.status_code == 200, answer.text
    assert answer.json()["name"] == "alice"
    assert answer.json()["kind"] == "user"
    assert answer.json()["role"] == "viewer"
    user = c.instance.identity.user("alice")
    assert user is not None
    assert user.oidc_subject == f"{idp.issuer}|u-1001"
    assert user.email == "alice@example.org"
    assert not user.has_password
    assert idp.client_auth == ["client_secret_basic"]
    logins = c.instance.audit.entries(action="login")
    assert [(e.actor, e.target) for e in logins] == [("alice", "alice")]
    assert logins[0].address == "127.0.0.1"
    added = c.instance.audit.entries(action="user.add")
    assert [(e.actor, (e.detail or {}).get("method")) for e in added] == [("alice", "oidc")]
    assert failures(c.instance) == []


def test_second_login_is_the_same_user(conveyor: Served, idp: OidcProvider) -> None:
    assert sign_in(conveyor).last.status_code == 303
    conveyor.instance.identity.set_role("alice", Role.OPERATOR)
    idp.user["preferred_username"] = "alice.renamed"  # the name at the provider changed
    conveyor.http.cookies.clear()
    assert sign_in(conveyor).last.headers["location"] == "/"
    assert me(conveyor).json()["name"] == "alice"
    assert me(conveyor).json()["role"] == "operator"
    assert [u.name for u in conveyor.instance.identity.users()] == ["alice"]
    # The discovery document is fetched once, the keys once.
    assert idp.seen.count("/.well-known/openid-configuration") == 1
    assert idp.seen.count("/jwks") == 1


def test_a_local_user_of_the_same_name_stays_apart(conveyor: Served, idp: OidcProvider) -> None:
    conveyor.instance.identity.add_user("alice", Role.ADMIN, password="local-password")
    assert sign_in(conveyor).last.status_code == 303
    assert me(conveyor).json()["name"] == "alice-2"
    assert me(conveyor).json()["role"] == "viewer"
    local = conveyor.instance.identity.user("alice")
    assert local is not None
    assert local.oidc_subject is None


def test_new_users_get_the_default_role(idp: OidcProvider, tmp_path: Path) -> None:
    instance = Instance.at(tmp_path / "home")
    try:
        with serve(instance, settings_of(idp, default_role=Role.OPERATOR)) as c:
            sign_in(c)
            assert me(c).json()["role"] == "operator"
    finally:
        instance.close()


def test_names_from_email_then_sub(conveyor: Served, idp: OidcProvider) -> None:
    idp.user = {"sub": "u-2", "email": "bob smith@example.org"}
    sign_in(conveyor)
    assert me(conveyor).json()["name"] == "bob-smith@example.org"
    conveyor.http.cookies.clear()
    idp.user = {"sub": "auth0|c3"}
    sign_in(conveyor)
    assert me(conveyor).json()["name"] == "auth0-c3"


def test_keys_are_fetched_again_when_the_provider_rotates_them(
    conveyor: Served, idp: OidcProvider
) -> None:
    sign_in(conveyor)
    idp.rotate_key()
    conveyor.http.cookies.clear()
    hops = sign_in(conveyor)
    assert hops.last.headers["location"] == "/", hops.last.headers["location"]
    assert me(conveyor).json()["name"] == "alice"
    assert idp.seen.count("/jwks") == 2


def test_client_secret_post_when_the_provider_wants_it(conveyor: Served, idp: OidcProvider) -> None:
    idp.auth_methods = ("client_secret_post",)
    assert sign_in(conveyor).last.headers["location"] == "/"
    assert idp.client_auth == ["client_secret_post"]


# -- refusals ------------------------------------------------------------------------

REASONS: dict[Fault, str] = {
    "audience": "audience",
    "azp": "azp",
    "signature": "signature",
    "unknown_key": "unknown_key",
    "expired": "expired",
    "future": "not_yet_valid",
    "nonce": "nonce",
    "issuer": "issuer",
    "no_nonce": "nonce",
    "alg_none": "malformed",
}


@pytest.mark.parametrize("fault", ALL_FAULTS)
def test_a_wrong_id_token_is_refused(conveyor: Served, idp: OidcProvider, fault: Fault) -> None:
    idp.fault = fault
    hops = sign_in(conveyor, "/jobs")
    assert failed_reason(hops.last) == REASONS[fault]
    assert "next=%2Fjobs" in hops.last.headers["location"]
    assert "conveyor_session" not in hops.last.headers.get("set-cookie", "")
    assert me(conveyor).status_code == 401
    assert conveyor.instance.identity.users() == []
    [entry] = conveyor.instance.audit.entries(action="login.failed")
    assert entry.actor == "anonymous"
    assert entry.address == "127.0.0.1"
    assert entry.detail is not None
    assert entry.detail["reason"] == REASONS[fault]
    assert entry.detail["method"] == "oidc"
    assert entry.detail["provider"] == idp.issuer
    assert failure_line(REASONS[fault], "Test IdP")


def test_the_login_page_offers_the_provider_and_says_why_it_failed(
    conveyor: Served, idp: OidcProvider
) -> None:
    page = conveyor.http.get(f"{conveyor.url}/login", params={"next": "/jobs"})
    assert 'href="/auth/oidc/login?next=%2Fjobs"' in page.text
    assert "Sign in with Test IdP" in page.text
    idp.fault = "audience"
    refused = sign_in(conveyor, "/jobs").last
    page = conveyor.http.get(f"{conveyor.url}{refused.headers['location']}")
    line = failure_line("audience", "Test IdP")
    assert line is not None
    assert line in page.text
    # A made-up reason shows nothing.
    page = conveyor.http.get(f"{conveyor.url}/login", params={FAILED_PARAM: "you were hacked"})
    assert "you were hacked" not in page.text


def test_a_state_not_from_this_browser_is_refused(conveyor: Served, idp: OidcProvider) -> None:
    def other_state(url: str) -> str:
        return url.replace("state=", "state=x")

    hops = sign_in(conveyor, mangle=other_state)
    assert failed_reason(hops.last) == "state"
    assert me(conveyor).status_code == 401
    # The provider's code was never used.
    assert "/token" not in idp.seen


def test_a_state_of_any_characters_is_refused_not_a_crash(conveyor: Served) -> None:
    hops = sign_in(conveyor, mangle=lambda url: url.replace("state=", "state=%C3%A9%00"))
    assert failed_reason(hops.last) == "state"


def test_a_callback_works_once(conveyor: Served) -> None:
    hops = sign_in(conveyor)
    assert hops.authorize is not None
    back = hops.authorize.headers["location"]
    # Replayed, even with the login's cookie again: the login was used up.
    conveyor.http.cookies.clear()
    conveyor.http.cookies.set("conveyor_oidc", hops.login.cookies["conveyor_oidc"])
    again = conveyor.http.get(back)
    assert failed_reason(again) == "state"


def test_a_callback_without_the_cookie_is_refused(conveyor: Served) -> None:
    login = conveyor.http.get(f"{conveyor.url}/auth/oidc/login")
    authorize = conveyor.http.get(login.headers["location"])
    fresh = httpx.get(authorize.headers["location"], timeout=30)  # another browser
    assert failed_reason(fresh) == "state"
    assert [d["reason"] for d in failures(conveyor.instance)] == ["state"]


def test_a_wrong_client_secret_is_refused(idp: OidcProvider, tmp_path: Path) -> None:
    instance = Instance.at(tmp_path / "home")
    try:
        with serve(instance, settings_of(idp, client_secret="not-the-secret")) as c:
            assert failed_reason(sign_in(c).last) == "token_exchange"
            [detail] = failures(instance)
            assert detail["error"] == "invalid_client"
            assert detail["status"] == 401
    finally:
        instance.close()


def test_the_user_saying_no_at_the_provider(conveyor: Served, idp: OidcProvider) -> None:
    idp.deny = True
    assert failed_reason(sign_in(conveyor).last) == "denied"
    [detail] = failures(conveyor.instance)
    assert detail["error"] == "access_denied"
    # An error answer not to this browser's sign-in is not taken for one.
    hops = sign_in(conveyor, mangle=lambda url: url.replace("state=", "state=x"))
    assert failed_reason(hops.last) == "state"


def test_a_disabled_user_is_refused(conveyor: Served) -> None:
    sign_in(conveyor)
    conveyor.instance.identity.set_disabled("alice", True)
    assert me(conveyor).status_code == 401
    conveyor.http.cookies.clear()
    assert failed_reason(sign_in(conveyor).last) == "disabled"
    assert me(conveyor).status_code == 401
    [entry] = conveyor.instance.audit.entries(action="login.failed")
    assert entry.actor == "alice"
    assert entry.target == "alice"


def test_a_provider_that_does_not_answer(tmp_path: Path) -> None:
    with serving() as gone:
        settings = settings_of(gone)
    instance = Instance.at(tmp_path / "home")
    try:
        with serve(instance, settings) as c:
            hops = sign_in(c, "/jobs")
            assert failed_reason(hops.last) == "unreachable"
            assert "next=%2Fjobs" in hops.last.headers["location"]
            [detail] = failures(instance)
            assert detail["url"] == f"{settings.issuer}/.well-known/openid-configuration"
    finally:
        instance.close()


@pytest.mark.parametrize(
    "asked", ["https://evil.example/x", "//evil.example/x", "/\\evil.example", "runs", ""]
)
def test_next_stays_on_this_site(conveyor: Served, asked: str) -> None:
    assert sign_in(conveyor, asked).last.headers["location"] == "/"


def test_without_oidc_settings_the_routes_say_how(tmp_path: Path) -> None:
    instance = Instance.at(tmp_path / "home")
    try:
        with serve(instance, None) as c:
            for path in ("/auth/oidc/login", "/auth/oidc/callback?code=x&state=y"):
                answer = c.http.get(f"{c.url}{path}")
                assert answer.status_code == 404, answer.text
                assert "CONVEYOR_OIDC_ISSUER" in answer.text
    finally:
        instance.close()


# -- the parts -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/runs?x=1#top", "/runs?x=1#top"),
        ("/", "/"),
        (None, "/"),
        ("", "/"),
        ("runs", "/"),
        ("http://evil.example/", "/"),
        ("//evil.example", "/"),
        ("/\\evil.example", "/"),
        ("/a\\b", "/"),
        ("/a\nLocation: x", "/"),
        ("/a\x7f", "/"),
        ("javascript:alert(1)", "/"),
    ],
)
def test_safe_next(value: str | None, expected: str) -> None:
    assert safe_next(value) == expected


def test_pkce_challenge_of_rfc_7636() -> None:
    # RFC 7636, appendix B.
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert pkce_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_name_candidates() -> None:
    def names(**claims: Any) -> list[str]:
        return name_candidates(Identity("https://idp", claims.get("sub", "s"), claims))

    assert names(preferred_username="Al Ice", email="a@x.org", sub="s1") == [
        "Al-Ice",
        "a@x.org",
        "s1",
    ]
    assert names(preferred_username="__x", sub="s") == ["x", "s"]
    assert names(preferred_username="???", sub="|||") == ["user"]
    assert names(preferred_username=5, sub="s") == ["s"]
    assert len(names(preferred_username="a" * 400)[0]) == 200


def test_failure_lines_are_fixed_texts() -> None:
    assert failure_line("audience", "Okta") == (
        "Sign-in with Okta failed: the identity token was issued for another application."
    )
    assert failure_line("unreachable", "Okta") == (
        "Sign-in with Okta failed: Okta does not answer; try again later."
    )
    assert failure_line("<script>", "Okta") is None
    assert failure_line(None) is None


def test_plain_http_only_to_loopback() -> None:
    for issuer in ("http://idp.example.org", "ftp://127.0.0.1", "https://", "idp.example.org"):
        with pytest.raises(ConfigError, match="https"):
            OidcClient(OidcSettings(issuer, "id", "secret"))
    for issuer in ("https://idp.example.org", "http://127.0.0.1:9", "http://[::1]:9"):
        OidcClient(OidcSettings(issuer, "id", "secret"))


# The time on the clock of the ID token checks.
NOW = 1_800_000_000


@pytest.fixture
def checker(idp: OidcProvider) -> OidcClient:
    return OidcClient(settings_of(idp), clock=lambda: NOW)


def claims_of(idp: OidcProvider, **changes: Any) -> dict[str, Any]:
    now = NOW
    claims: dict[str, Any] = {
        "iss": idp.issuer,
        "sub": "u-1",
        "aud": idp.client_id,
        "exp": now + 60,
        "iat": now,
        "nonce": "n",
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"aud": ["another-app"]}, "audience"),
        ({"aud": None}, "audience"),
        ({"aud": 5}, "audience"),
        ({"aud": ["conveyor-test", "another-app"]}, "azp"),  # several: azp required
        ({"azp": "another-app"}, "azp"),
        ({"iss": None}, "issuer"),
        ({"iss": "http://127.0.0.1:1"}, "issuer"),
        ({"exp": None}, "malformed"),
        ({"exp": "soon"}, "malformed"),
        ({"exp": True}, "malformed"),
        ({"iat": None}, "malformed"),
        ({"exp": NOW - 61}, "expired"),
        ({"iat": NOW + 600}, "not_yet_valid"),
        ({"nbf": NOW + 600}, "not_yet_valid"),
        ({"nbf": "later"}, "not_yet_valid"),
        ({"nonce": "m"}, "nonce"),
        ({"nonce": None}, "nonce"),
        ({"nonce": 1}, "nonce"),
        ({"sub": None}, "malformed"),
        ({"sub": ""}, "malformed"),
        ({"sub": "x" * 256}, "malformed"),
    ],
)
def test_claims_refused(idp: OidcProvider, changes: dict[str, Any], reason: str) -> None:
    claims = claims_of(idp, **changes)
    with pytest.raises(LoginError) as caught:
        check_claims(claims, issuer=idp.issuer, client_id=idp.client_id, nonce="n", now=NOW)
    assert caught.value.reason == reason


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"aud": ["conveyor-test", "another-app"], "azp": "conveyor-test"},
        {"azp": "conveyor-test"},
        {"exp": NOW - 30},  # within the leeway
        {"nbf": NOW + 30},
    ],
)
def test_claims_accepted(idp: OidcProvider, changes: dict[str, Any]) -> None:
    claims = claims_of(idp, **changes)
    who = check_claims(claims, issuer=idp.issuer, client_id=idp.client_id, nonce="n", now=NOW)
    assert who.subject == f"{idp.issuer}|u-1"


@pytest.mark.parametrize(
    ("changes", "body"),
    [
        ({"issuer": "https://other-provider.example"}, None),
        ({"issuer": None}, None),
        ({"token_endpoint": None}, None),
        ({"jwks_uri": "file:///etc/passwd"}, None),
        ({"authorization_endpoint": 5}, None),
        ({"id_token_signing_alg_values_supported": ["HS256", "none"]}, None),
        ({}, b"<html>not json</html>"),
        ({}, b"[1, 2]"),
    ],
)
def test_a_discovery_document_that_will_not_do(
    idp: OidcProvider, changes: dict[str, Any], body: bytes | None
) -> None:
    idp.discovery_changes = changes
    idp.discovery_body = body
    with pytest.raises(LoginError) as caught:
        OidcClient(settings_of(idp)).begin("http://127.0.0.1:1/auth/oidc/callback", "/")
    assert caught.value.reason == "provider_error"
    assert failure_line(caught.value.reason)


def test_the_discovery_document_is_fetched_again_after_an_hour(idp: OidcProvider) -> None:
    now = [float(NOW)]
    client = OidcClient(settings_of(idp), clock=lambda: now[0])
    assert client.metadata().issuer == idp.issuer
    now[0] += 3599
    client.metadata()
    assert idp.seen.count("/.well-known/openid-configuration") == 1
    now[0] += 2
    client.metadata()
    assert idp.seen.count("/.well-known/openid-configuration") == 2


def test_a_login_left_too_long_is_gone(idp: OidcProvider) -> None:
    now = [float(NOW)]
    client = OidcClient(settings_of(idp), clock=lambda: now[0])
    handle, _ = client.begin("http://127.0.0.1:1/auth/oidc/callback", "/jobs")
    kept, _ = client.begin("http://127.0.0.1:1/auth/oidc/callback", "/jobs")
    now[0] += 601
    assert client.take(handle) is None
    assert client.take(kept) is None
    assert client.take("") is None
    assert client.take(None) is None


@pytest.mark.parametrize("token", ["", "a.b", "a.b.c", "x" * 100, "e30.e30.e30"])
def test_unreadable_id_tokens(checker: OidcClient, token: str) -> None:
    with pytest.raises(LoginError) as caught:
        checker.validate(token, "n")
    assert caught.value.reason in ("malformed", "unknown_key")
