"""The deployments page: each environment side by side with its active version and
history, the versions with their diffs, and the Promote and Rollback buttons for those
who hold ``promote`` on the jobs they would change. Built on the API's functions."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from conveyor.definitions.job import Job
from conveyor.errors import ConveyorError
from conveyor.execution.environments import version_workspace
from conveyor.execution.promotion import PromotionDeniedError, promote, rollback
from conveyor.server.api.deployments import (
    active_versions,
    promote_allowed,
    readable,
    version_diff,
    version_view,
)
from conveyor.server.app import state_of
from conveyor.server.auth import Action, allow, client_address, principal_of
from conveyor.server.state import ServerState
from conveyor.server.ui.formdata import form_data
from conveyor.server.ui.templating import not_found, render
from conveyor.storage.deployments import environment_names

router = APIRouter()
READ = [Depends(allow(Action.READ))]
# Signed in and the CSRF token; the permission on each job is checked by promotion.
CHANGE = [Depends(allow(Action.LAUNCH))]
# Activations shown per environment.
HISTORY = 15


def run_job(
    state: ServerState, job_name: str, version: int | None, environment: str | None
) -> Job | None:
    """The job a run ran: of the deployed version it was pinned to (its graph as that
    version drew it, not today's), else of the server's workspace; ``None`` when neither
    has it (a version whose archive is gone)."""
    if version is None:
        found: Job | None = state.workspace.jobs.get(job_name)
        return found
    try:
        workspace = version_workspace(state.instance, version)
    except ConveyorError:
        return None
    name = job_name.removeprefix(f"{environment}.") if environment else job_name
    return workspace.jobs.get(name)


def _can(request: Request, allowed: Any, jobs: set[str]) -> bool:
    return principal_of(request).signed_in and all(allowed(j) for j in jobs)


@router.get("/deployments", dependencies=READ)
def deployments_page(
    request: Request, a: int | None = None, b: int | None = None, problem: str | None = None
) -> Response:
    """Every environment with its active version, history and buttons; every version."""
    instance = state_of(request).instance
    store = instance.deployments
    envs = store.environments()
    versions = store.versions()
    shown = readable(request, versions)
    allowed = promote_allowed(request, versions)
    active = active_versions(instance)
    by_number = {v.number: v for v in versions}
    columns: list[dict[str, Any]] = []
    for i, env in enumerate(envs):
        current = by_number.get(env.active_version) if env.active_version else None
        ran = list(dict.fromkeys(r.version for r in store.history(env.name, limit=1000)))
        earlier = [n for n in ran if n != env.active_version]
        nxt = envs[i + 1].name if i + 1 < len(envs) else None
        target = by_number.get(active.get(nxt) or 0) if nxt else None
        jobs = set(current.jobs if current else ()) | set(target.jobs if target else ())
        rollback_jobs = set(current.jobs if current else ()) | {
            j for n in earlier for j in by_number[n].jobs if n in by_number
        }
        columns.append(
            {
                "env": env,
                "version": version_view(current, active, shown) if current else None,
                "history": store.history(env.name, limit=HISTORY),
                "next": nxt,
                "earlier": earlier,
                "can_promote": bool(nxt and current) and _can(request, allowed, jobs),
                "can_rollback": bool(current and earlier) and _can(request, allowed, rollback_jobs),
            }
        )
    diff = None
    if a is not None and b is not None:
        try:
            diff = version_diff(instance, a, b, shown)
        except ConveyorError as e:
            problem = str(e)
    return render(
        request,
        "deployments.html",
        {
            "columns": columns,
            "versions": [version_view(v, active, shown) for v in versions],
            "diff": diff,
            "a": a,
            "b": b,
            "problem": problem,
        },
    )


@router.get("/deployments/versions/{number}", dependencies=READ)
def version_page(request: Request, number: int) -> Response:
    """One version: its jobs, its diff against the version before, git commit, message."""
    instance = state_of(request).instance
    try:
        record = instance.deployments.version(number)
    except ConveyorError as e:
        return not_found(request, str(e))
    shown = readable(request, [record])
    view = version_view(record, active_versions(instance), shown, manifest=True)
    history = [r for r in instance.deployments.history(limit=1000) if r.version == number]
    return render(
        request,
        "deployments.html",
        {"version": view, "version_history": history, "columns": None, "problem": None},
    )


def _back(problem: str | None = None) -> RedirectResponse:
    query = f"?{urlencode({'problem': problem})}" if problem else ""
    return RedirectResponse(f"/deployments{query}", status_code=303)


def _number(text: str | None, what: str) -> int | None:
    if not text:
        return None
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"{what} {text!r} is not a version number (1, 2, ...)")
    return int(text)


@router.post("/deployments/promote", dependencies=CHANGE)
async def promote_form(request: Request) -> Response:
    """Promote (the form's ``from``, ``to`` and optional ``version``), then show the page;
    a refusal is a 403 page, another problem is said on the page."""
    instance = state_of(request).instance
    form = await form_data(request)
    from_env, to_env = form.get("from", ""), form.get("to", "")
    try:
        number = _number(form.get("version"), "version")
    except ValueError as e:
        return _back(str(e))
    allowed = promote_allowed(request, instance.deployments.versions())
    label = principal_of(request).label
    try:
        await run_in_threadpool(
            lambda: promote(
                instance,
                to_env,
                from_env=from_env,
                version=number,
                by=label,
                allowed=allowed,
                message=form.get("message") or None,
                address=client_address(request),
            )
        )
    except PromotionDeniedError as e:
        said = e.said(readable(request, instance.deployments.versions()))
        return render(request, "not_found.html", {"message": said, "title": "Not allowed"}, 403)
    except ConveyorError as e:
        return _back(str(e))
    return _back()


@router.post("/deployments/rollback", dependencies=CHANGE)
async def rollback_form(request: Request) -> Response:
    """Roll the form's ``env`` back (to ``to``, or the version before), then show the page."""
    instance = state_of(request).instance
    form = await form_data(request)
    env = form.get("env", "")
    try:
        number = _number(form.get("to"), "to")
    except ValueError as e:
        return _back(str(e))
    known = env in environment_names()
    allowed = promote_allowed(request, instance.deployments.versions(env) if known else [])
    label = principal_of(request).label
    try:
        await run_in_threadpool(
            lambda: rollback(
                instance,
                env,
                to=number,
                by=label,
                allowed=allowed,
                address=client_address(request),
            )
        )
    except PromotionDeniedError as e:
        said = e.said(readable(request, instance.deployments.versions()))
        return render(request, "not_found.html", {"message": said, "title": "Not allowed"}, 403)
    except ConveyorError as e:
        return _back(str(e))
    return _back()
