"""``/login`` and ``/logout``: signing in with a password (or through the OpenID
provider, whose button the login page shows), and signing out.

Failed logins are limited per user name and per client address: after
``MAX_FAILURES`` within ``WINDOW`` seconds, either refuses further tries with
429 and ``Retry-After`` until the oldest failure is that old. The counts live
in the server's memory: a restart, or another server process, starts afresh.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from conveyor.server.app import state_of
from conveyor.server.auth import audit_as, client_address, principal_of
from conveyor.server.security import check_csrf
from conveyor.server.sessions import begin_session, end_session
from conveyor.server.ui.formdata import form_data
from conveyor.server.ui.templating import render

router = APIRouter()

MAX_FAILURES = 5
WINDOW = 300.0


@dataclass
class LoginLimiter:
    """Failed logins per key (``user:NAME``, ``address:IP``) within the last ``window`` s."""

    limit: int = MAX_FAILURES
    window: float = WINDOW
    _failures: dict[str, deque[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        return times

    def wait(self, keys: list[str], now: float | None = None) -> float:
        """Seconds until any of ``keys`` may try again (0: now)."""
        at = time.time() if now is None else now
        with self._lock:
            waits = [
                times[0] + self.window - at
                for times in (self._recent(k, at) for k in keys)
                if len(times) >= self.limit
            ]
        return max(waits, default=0.0)

    def failed(self, keys: list[str], now: float | None = None) -> None:
        at = time.time() if now is None else now
        with self._lock:
            for key in keys:
                self._recent(key, at).append(at)
            if len(self._failures) > 100_000:  # a flood of made-up names: forget the idle
                for key in [k for k, v in self._failures.items() if not v]:
                    del self._failures[key]

    def forget(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)


_limiters = threading.Lock()


def limiter_of(request: Request) -> LoginLimiter:
    """The app's limiter of failed logins."""
    with _limiters:
        limiter: LoginLimiter | None = getattr(request.app.state, "login_limiter", None)
        if limiter is None:
            limiter = LoginLimiter()
            request.app.state.login_limiter = limiter
        return limiter


def safe_next(value: str | None) -> str:
    """A path on this site to go to after signing in, else ``/``."""
    from conveyor.server.oidc import safe_next as checked

    return checked(value)


def _page(
    request: Request,
    next_path: str,
    *,
    problem: str | None = None,
    name: str = "",
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    oidc = state_of(request).auth.oidc
    failed = request.query_params.get("oidc_failed")
    if problem is None and failed and oidc is not None:
        from conveyor.server.oidc import failure_line

        problem = failure_line(failed, oidc.name)
    response = render(
        request,
        "login.html",
        {
            "next": next_path,
            "problem": problem,
            "name": name,
            "oidc": oidc,
            "oidc_url": f"/auth/oidc/login?next={quote(next_path, safe='')}",
        },
        status_code=status_code,
    )
    response.headers.update(headers or {})
    return response


@router.get("/login")
def login_page(request: Request, next: str = "/") -> Response:
    """The sign-in form (and the single sign-on button, when the server has one)."""
    target = safe_next(next)
    if not state_of(request).auth.login_required:
        return RedirectResponse(target, status_code=303)
    if principal_of(request).signed_in:
        return RedirectResponse(target, status_code=303)
    return _page(request, target)


@router.post("/login")
async def login(request: Request) -> Response:
    """Check the user name and password: a new session and on to ``next``; the form
    again with 401 if they are wrong, 429 after too many failures."""
    await check_csrf(request)
    form = await form_data(request)
    target = safe_next(form.get("next"))
    if not state_of(request).auth.login_required:
        return RedirectResponse(target, status_code=303)
    name = form.get("username", "").strip()
    password = form.get("password", "")
    keys = [f"address:{client_address(request)}"] + ([f"user:{name}"] if name else [])
    limiter = limiter_of(request)
    wait = limiter.wait(keys)
    if wait > 0:
        audit_as(request, name or "anonymous", "login.failed", name or None, reason="throttled")
        return _page(
            request,
            target,
            problem=f"Too many failed sign-ins: try again in {int(wait) + 1} seconds.",
            name=name,
            status_code=429,
            headers={"Retry-After": str(int(wait) + 1)},
        )
    identity = state_of(request).instance.identity
    user = (
        await run_in_threadpool(identity.check_password, name, password)
        if name and password
        else None
    )
    if user is None:
        limiter.failed(keys)
        audit_as(request, name or "anonymous", "login.failed", name or None, method="password")
        return _page(
            request,
            target,
            problem="Wrong user name or password (or the user is disabled).",
            name=name,
            status_code=401,
        )
    limiter.forget(f"user:{name}")
    response = RedirectResponse(target, status_code=303)
    begin_session(request, response, user)
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    """End the session and go to the login page."""
    await check_csrf(request)
    if not state_of(request).auth.login_required:
        return RedirectResponse("/", status_code=303)
    response = RedirectResponse("/login", status_code=303)
    end_session(request, response)
    return response
