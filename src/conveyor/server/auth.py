"""The one place where a request is allowed or refused.

Every API route and UI page depends on ``allow(action)``; access control
(users, roles, per-job access lists) plugs in here and nowhere else. Today
every request from the server's own pages, or from a client that is not a
browser, is allowed: the server binds 127.0.0.1 by default. What a browser
sends from another site's page to change something is refused, so that a
page elsewhere cannot launch or cancel runs through the user's browser.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from urllib.parse import urlsplit

from fastapi import HTTPException, Request


class Action(StrEnum):
    """What a request does, as an access rule names it."""

    READ = "read"  # see jobs, runs, logs, results, schedules
    LAUNCH = "launch"  # launch, rerun, backfill
    CANCEL = "cancel"  # cancel runs and backfills
    OPERATE = "operate"  # toggle schedules and sensors, set pools, reload code
    WEBHOOK = "webhook"  # call a webhook trigger: meant to come from anywhere


def authorize(request: Request, action: Action, job_name: str | None = None) -> None:
    """Refuse ``request`` (raise ``HTTPException`` 401/403) unless it may do ``action``
    (on job ``job_name`` where it names one)."""
    if action not in (Action.READ, Action.WEBHOOK):
        _refuse_other_sites(request, action)
    request.state.action = action
    request.state.job_name = job_name


def allow(action: Action) -> Callable[[Request], None]:
    """A FastAPI dependency: ``Depends(allow(Action.READ))``; routes that act on one
    job call ``authorize`` again with its name."""

    def dependency(request: Request) -> None:
        authorize(request, action, request.path_params.get("job_name"))

    return dependency


def _refuse_other_sites(request: Request, action: Action) -> None:
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
        f"refused to {action} from another site's page ({origin or site}): use Conveyor's "
        f"own pages at http://{host}, or call the API from a program (no Origin header)",
    )
