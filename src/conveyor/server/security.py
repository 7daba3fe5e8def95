"""What keeps a browser safe on Conveyor's pages: CSRF tokens and security headers.

A state-changing request that a browser makes carries the CSRF token: forms
in a hidden ``csrf_token`` field, htmx and ``fetch`` in the header
``X-CSRF-Token`` (``conveyor.js`` reads it from ``<meta name="csrf-token">``).
With a session (login mode) the token is the session's own; otherwise (local
mode, or the login form before anyone signs in) it is a random value in the
cookie ``conveyor_csrf`` that the page repeats (a double submit: another
site's page can neither read the cookie nor the page). A request with an API
token (``Authorization: Bearer``), or in local mode one that is plainly not
from a browser (neither ``Origin`` nor ``Sec-Fetch-Site``), needs none.
A browser's request made by another site's page is refused whatever it carries.

``SecurityHeaders`` puts a Content-Security-Policy without inline scripts,
``frame-ancestors 'none'``, ``nosniff`` and a referrer policy on every response.
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from fastapi import HTTPException, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSRF_COOKIE = "conveyor_csrf"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
# Where the state of a request keeps a CSRF cookie value to set on its response.
NEW_CSRF = "new_csrf_cookie"
# The most bytes of a form read for its token (as ui.formdata refuses bigger forms).
MAX_FORM = 1024 * 1024

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        # Inline style attributes (bar widths) and htmx's indicator styles; no scripts.
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


def secure_request(request: Request) -> bool:
    """Whether cookies for ``request`` get ``Secure``: as the auth settings say, else
    when it came over HTTPS (or a proxy in front says so)."""
    setting = request.app.state.conveyor.auth.secure_cookies
    if setting is not None:
        return bool(setting)
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return request.url.scheme == "https" or forwarded == "https"


def csrf_token(request: Request) -> str:
    """The CSRF token the page answering ``request`` repeats in its forms and meta tag."""
    from conveyor.server.auth import principal_of

    try:
        principal_of(request)  # resolves the session, if any
    except HTTPException:
        pass
    session = getattr(request.state, "session", None)
    if session is not None:
        return str(session.csrf)
    value = request.cookies.get(CSRF_COOKIE) or getattr(request.state, NEW_CSRF, None)
    if not value:
        value = secrets.token_urlsafe(32)
        setattr(request.state, NEW_CSRF, value)
        request.state.secure_cookies = secure_request(request)
    return str(value)


def _from_a_browser(request: Request) -> bool:
    """Whether a browser sent ``request``: browsers name the page's origin on a POST
    and say where a request comes from; programs (curl, httpx) do neither."""
    h = request.headers
    return bool(h.get("origin") or h.get("sec-fetch-site"))


async def _sent_token(request: Request) -> str | None:
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        return None
    body = await request.body()  # kept by the request: the route reads it again
    if len(body) > MAX_FORM:
        return None
    sent = [v for k, v in parse_qsl(body.decode("utf-8", "replace")) if k == CSRF_FIELD]
    return sent[-1] if sent else None


async def check_csrf(request: Request) -> None:
    """403 unless a state-changing ``request`` carries the right CSRF token (where it needs
    one) and was not made by another site's page."""
    from conveyor.server.auth import principal_of

    refuse_other_sites(request)
    if request.headers.get("authorization"):
        principal_of(request)  # a bad token is a 401, a good one needs no CSRF token
        return
    principal = principal_of(request)
    session = getattr(request.state, "session", None)
    if session is not None:
        expected: str | None = session.csrf
    elif principal.kind == "local" or not principal.signed_in:
        if not _from_a_browser(request):
            return
        expected = request.cookies.get(CSRF_COOKIE)
    else:  # pragma: no cover - a signed-in user has a session or a token
        return
    sent = await _sent_token(request)
    if not expected or not sent or not secrets.compare_digest(sent, expected):
        raise HTTPException(
            403,
            "the CSRF token is missing or wrong: reload the page and try again (a form "
            "sends it as csrf_token, a script in the header X-CSRF-Token; a program "
            "calling the API sends an API token instead)",
        )


def refuse_other_sites(request: Request) -> None:
    """403 for a browser's request made by another site's page.

    Browsers name the page's origin (``Origin``) on every cross-origin write, and
    say where it comes from (``Sec-Fetch-Site``); clients such as curl or httpx
    send neither, and are let through.
    """
    site = request.headers.get("sec-fetch-site")
    origin = request.headers.get("origin")
    host = request.headers.get("host", "")
    if site in ("same-origin", "none"):  # one of our pages, or typed by the user
        return
    if site is None and origin is None:  # not a browser: curl, a client library, a webhook
        return
    if origin and origin != "null" and urlsplit(origin).netloc == host:
        return
    raise HTTPException(
        403,
        f"refused a request from another site's page ({origin or site}): use Conveyor's "
        f"own pages at http://{host}, or call the API from a program (no Origin header)",
    )


class SecurityHeaders:
    """ASGI middleware: the security headers on every response, and the CSRF cookie
    where a page handed out a new double-submit token."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state: dict[str, Any] = scope.setdefault("state", {})
        secure = scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in HEADERS if k not in present]
                new = state.get(NEW_CSRF)
                if new:
                    cookie = f"{CSRF_COOKIE}={new}; Path=/; HttpOnly; SameSite=Strict"
                    cookie += "; Secure" if secure or state.get("secure_cookies") else ""
                    headers.append((b"set-cookie", cookie.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
