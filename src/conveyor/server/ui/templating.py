"""Rendering pages: the Jinja2 templates, their filters, and what every page's layout needs.

Times are written as ``<time datetime=...>`` elements holding UTC; ``static/conveyor.js``
shows them in the viewer's zone and keeps UTC in their title. Durations are written
in human units here, once, for every page.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import HTTPException, Request
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape
from starlette.responses import Response

from conveyor.definitions.partitions import partition_label, shown_keys
from conveyor.server.app import state_of

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"

# The pages of the top bar: (path, title).
NAV = (
    ("/", "Overview"),
    ("/jobs", "Jobs"),
    ("/runs", "Runs"),
    ("/schedules", "Schedules"),
    ("/backfills", "Backfills"),
    ("/pools", "Pools"),
    ("/deployments", "Deployments"),
)


def when(value: datetime | float | None, style: str | None = None) -> Markup:
    """A moment as ``<time>``: UTC in the markup, the viewer's zone once the script runs."""
    if value is None:
        return Markup('<span class="muted">\u2013</span>')
    moment = (
        datetime.fromtimestamp(value, UTC) if isinstance(value, int | float) else value
    ).astimezone(UTC)
    iso = moment.isoformat().replace("+00:00", "Z")
    text = moment.strftime("%Y-%m-%d %H:%M:%S UTC")
    data = f' data-style="{escape(style)}"' if style else ""
    return Markup(f'<time datetime="{iso}" title="{text}"{data}>{text}</time>')


def duration(seconds: float | None) -> str:
    """``850 ms``, ``4.2 s``, ``3 m 05 s``, ``2 h 04 m``, ``3 d 02 h``; an en dash for none."""
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return "\u2013"
    s = max(0.0, float(seconds))
    if s < 1:
        return f"{s * 1000:.0f} ms"
    if s < 10:
        return f"{s:.1f} s"
    if s < 60:
        return f"{s:.0f} s"
    m, sec = divmod(round(s), 60)
    if m < 60:
        return f"{m} m {sec:02d} s"
    h, m = divmod(m, 60)
    if h < 24:
        return f"{h} h {m:02d} m"
    d, h = divmod(h, 24)
    return f"{d} d {h:02d} h"


def size(n: float | None) -> str:
    """Bytes in decimal units, as ``memory="256m"`` is written: ``256 MB``."""
    if n is None:
        return "\u2013"
    value = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000:
            return f"{value:.0f} {unit}" if value >= 10 or unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"


def short(run_id: str | None) -> str:
    return (run_id or "")[:8]


templates = Jinja2Templates(directory=str(TEMPLATES))
templates.env.filters.update(
    when=when,
    duration=duration,
    size=size,
    short=short,
    shown_keys=shown_keys,
    partition_label=partition_label,
)
templates.env.globals.update(NAV=NAV)


def render(
    request: Request, name: str, context: dict[str, Any] | None = None, status_code: int = 200
) -> Response:
    """Render template ``name`` with ``context`` and what the layout needs."""
    state = state_of(request)
    ctx: dict[str, Any] = {
        "load_error": state.workspace.error,
        "workspace_name": state.workspace.description,
        "path": request.url.path,
    }
    ctx.update(caller_context(request))
    ctx.update(context or {})
    return templates.TemplateResponse(request, name, ctx, status_code=status_code)


def caller_context(request: Request) -> dict[str, Any]:
    """What every page knows of the caller: who it is (the top bar), the CSRF token its
    forms carry, ``can(action, job_name)`` for its buttons, and a load error only if it
    names no job the caller may not read."""
    from conveyor.server.auth import ANONYMOUS, Action, may, principal_of, redact_jobs
    from conveyor.server.security import csrf_token

    try:
        me = principal_of(request)
    except HTTPException:
        me = ANONYMOUS
    token = csrf_token(request)
    ctx: dict[str, Any] = {
        "me": me,
        "login_mode": state_of(request).auth.login_required,
        "csrf_token": token,
        "csrf_field": Markup('<input type="hidden" name="csrf_token" value="{}">').format(token),
        "can": lambda action, job_name: me.signed_in and may(request, Action(action), job_name),
    }
    error = state_of(request).workspace.error
    if error is not None and me.signed_in:
        said = redact_jobs(request, error.message) or ""
        if said != error.message:
            ctx["load_error"] = replace(error, message=said, traceback="")
    elif error is not None:
        ctx["load_error"] = None
    return ctx


def not_found(request: Request, message: str) -> Response:
    """A page that says what was not found, with a 404."""
    return render(request, "not_found.html", {"message": message}, status_code=404)
