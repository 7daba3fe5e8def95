"""``/auth/oidc/login`` and ``/auth/oidc/callback``: signing in through the OpenID
provider of ``CONVEYOR_OIDC_*`` (the checks themselves are in ``server.oidc``).

The login page links to ``/auth/oidc/login?next=<path>``, which sends the browser
to the provider; the provider sends it back to ``/auth/oidc/callback``, which
begins a session of the provider's user (made the first time, with the default
role) and goes on to ``next``. A failure goes back to the login page with one
line saying what failed, and leaves an audit entry "login.failed" with the reason.
Both routes are open: whoever calls them is signing in.
"""

from __future__ import annotations

import re
import secrets
import threading
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from conveyor.definitions.access import Role
from conveyor.errors import ConfigError
from conveyor.server.app import state_of
from conveyor.server.auth import audit_as
from conveyor.server.auth_settings import OidcSettings
from conveyor.server.id_token import Identity, LoginError
from conveyor.server.oidc import FAILED_PARAM, PENDING_TTL, OidcClient, safe_next
from conveyor.server.security import secure_request
from conveyor.server.sessions import begin_session
from conveyor.storage.identity import NAME, IdentityStore, User

router = APIRouter()

# The cookie that ties the provider's redirect back to the browser that left: the
# handle of a login in progress (``OidcClient.begin``), sent only to these routes.
COOKIE = "conveyor_oidc"
COOKIE_PATH = "/auth/oidc"
_clients = threading.Lock()
# What a failed sign-in's audit entry says itself, whatever the error's detail.
RESERVED = frozenset({"method", "provider", "reason", "message"})


def _settings(request: Request) -> OidcSettings:
    settings = state_of(request).auth.oidc
    if settings is None:
        raise HTTPException(
            404,
            "single sign-on is not set up on this server: set CONVEYOR_OIDC_ISSUER, "
            "CONVEYOR_OIDC_CLIENT_ID and CONVEYOR_OIDC_CLIENT_SECRET and restart it",
        )
    return settings


def client_of(request: Request, settings: OidcSettings) -> OidcClient:
    """The app's client of its provider (its caches and logins in progress)."""
    with _clients:
        client: OidcClient | None = getattr(request.app.state, "oidc_client", None)
        if client is None or client.settings != settings:
            client = OidcClient(settings)
            request.app.state.oidc_client = client
        return client


@router.get("/auth/oidc/login", name="oidc_login")
def oidc_login(request: Request, next: str = "/") -> Response:
    """Send the browser to the provider to sign in, then back to ``next`` (a path here)."""
    settings = _settings(request)
    try:
        client = client_of(request, settings)
        handle, url = client.begin(str(request.url_for("oidc_callback")), next)
    except ConfigError as e:
        return _failed(request, LoginError("config", str(e)), safe_next(next), settings)
    except LoginError as e:
        return _failed(request, e, safe_next(next), settings)
    response = RedirectResponse(url, status_code=303)
    response.set_cookie(
        COOKIE,
        handle,
        max_age=int(PENDING_TTL),
        path=COOKIE_PATH,
        httponly=True,
        # Lax: the provider's redirect back is a top-level GET, which carries it.
        samesite="lax",
        secure=secure_request(request),
    )
    return response


@router.get("/auth/oidc/callback", name="oidc_callback")
def oidc_callback(
    request: Request,
    state: str = "",
    code: str = "",
    error: str = "",
    error_description: str = "",
) -> Response:
    """The provider's redirect back: sign its user in, or say why not."""
    settings = _settings(request)
    try:
        client = client_of(request, settings)
    except ConfigError as e:
        return _failed(request, LoginError("config", str(e)), "/", settings)
    pending = client.take(request.cookies.get(COOKIE))
    next_path = pending.next if pending is not None else "/"
    actor = "anonymous"
    try:
        if pending is None:
            raise LoginError(
                "state", "no sign-in is in progress in this browser (or it took too long)"
            )
        if error:
            client.check_state(pending, state)
            raise LoginError(
                "denied" if error in ("access_denied", "login_required") else "provider_error",
                "the sign-in provider refused the sign-in",
                error=error[:100],
                description=error_description[:300] or None,
            )
        who = client.finish(pending, state=state, code=code)
        identity = state_of(request).instance.identity
        known = identity.user_by_oidc(who.subject) is not None
        try:
            user = user_for(identity, who, settings.default_role)
        except ConfigError as e:
            raise LoginError("provider_error", f"no user could be made: {e}") from None
        actor = user.name
        if not known:
            audit_as(
                request,
                user.name,
                "user.add",
                user.name,
                role=str(user.role),
                method="oidc",
                subject=who.subject,
            )
        if user.disabled:
            raise LoginError("disabled", f"user {user.name!r} is disabled")
    except LoginError as e:
        return _failed(request, e, next_path, settings, actor)
    response = RedirectResponse(next_path, status_code=303)
    begin_session(request, response, user)
    _drop_cookie(response)
    return response


def _failed(
    request: Request,
    error: LoginError,
    next_path: str,
    settings: OidcSettings,
    actor: str = "anonymous",
) -> Response:
    """Back to the login page with the reason; an audit entry "login.failed"."""
    audit_as(
        request,
        actor,
        "login.failed",
        actor if actor != "anonymous" else None,
        method="oidc",
        provider=settings.issuer,
        reason=error.reason,
        message=str(error),
        **{k: v for k, v in error.detail.items() if v is not None and k not in RESERVED},
    )
    query = urlencode({"next": next_path, FAILED_PARAM: error.reason})
    response = RedirectResponse(f"/login?{query}", status_code=303)
    _drop_cookie(response)
    return response


def _drop_cookie(response: Response) -> None:
    response.delete_cookie(COOKIE, path=COOKIE_PATH, httponly=True, samesite="lax")


# -- the user of a sign-in ----------------------------------------------------------

_NOT_NAME = re.compile(r"[^A-Za-z0-9_.@+-]+")


def name_candidates(identity: Identity) -> list[str]:
    """What to call a new user, best first: preferred_username, email, sub; each
    made into a valid user name."""
    out: list[str] = []
    for claim in ("preferred_username", "email", "sub"):
        value = identity.claims.get(claim) if claim != "sub" else identity.sub
        if not isinstance(value, str):
            continue
        name = _NOT_NAME.sub("-", value.strip())
        name = name.lstrip("_.@+-")[:200]
        if name and NAME.match(name) and name not in out:
            out.append(name)
    return out or ["user"]


def user_for(identity: IdentityStore, who: Identity, role: Role) -> User:
    """The user linked to ``who`` (``oidc_subject``), made the first time.

    A new user gets the first free name of ``name_candidates`` (``alice``,
    then ``alice-2``...), ``role``, the email, and no password. An existing user
    of the same name who is not linked stays apart: a provider saying
    "alice" does not make its user the local alice.
    """
    found = identity.user_by_oidc(who.subject)
    if found is not None:
        return found
    base = name_candidates(who)[0]
    for n in range(1, 1000):
        name = base if n == 1 else f"{base}-{n}"
        if identity.user(name) is not None:
            continue
        try:
            return identity.add_user(name, role, email=who.email, oidc_subject=who.subject)
        except ConfigError:
            # Taken meanwhile by another request: the same person signing in twice
            # at once, or a new user of that name.
            again = identity.user_by_oidc(who.subject)
            if again is not None:
                return again
    return identity.add_user(
        f"{base[:180]}-{secrets.token_hex(4)}", role, email=who.email, oidc_subject=who.subject
    )
