"""Browser sessions: begun at login (password or OpenID Connect), ended at logout.

The cookie ``conveyor_session`` holds the session's secret (the database
keeps only its SHA-256): HttpOnly, SameSite=Lax, and Secure over HTTPS (or as
``AuthSettings.secure_cookies`` says). A login ends the session the browser
carried, so a session fixed by someone else before the login is worthless.
"""

from __future__ import annotations

from fastapi import Request, Response

from conveyor.server.auth import SESSION_COOKIE, Principal, audit, client_address
from conveyor.server.security import secure_request
from conveyor.storage.identity import User


def begin_session(request: Request, response: Response, user: User) -> None:
    """Sign ``user`` in: a new session in the cookie of ``response`` (the one the request
    carried ends), and an audit entry "login"."""
    identity = request.app.state.conveyor.instance.identity
    old = request.cookies.get(SESSION_COOKIE)
    if old:
        identity.end_session(old)
    secret, session = identity.create_session(user.name, address=client_address(request))
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        max_age=max(1, int(session.expires_at - session.created_at)),
        path="/",
        httponly=True,
        samesite="lax",
        secure=secure_request(request),
    )
    request.state.principal = Principal(user.name, "user", user.role, user.groups)
    request.state.session = session
    request.state.session_secret = secret
    audit(request, "login", user.name)


def end_session(request: Request, response: Response) -> None:
    """Sign the caller out: its session ends, the cookie goes, and an audit entry "logout"."""
    secret = request.cookies.get(SESSION_COOKIE)
    if secret:
        if getattr(request.state, "session", None) is not None:
            audit(request, "logout")
        request.app.state.conveyor.instance.identity.end_session(secret)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")
