"""The admin pages: users and groups (``/admin/users``), each job's access list
(``/admin/access``) and the audit log (``/admin/audit``). Admins only.

Each form posts to a route here that does what the API's route does (the same
store calls and audit entries), then goes back to its page saying what was done,
or what was wrong and how to fix it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Request
from starlette.responses import RedirectResponse, Response

from conveyor.definitions.access import Permission, parse_permissions
from conveyor.errors import ConveyorError
from conveyor.server.api.access import check_principal, job_access
from conveyor.server.api.audit import audit_page
from conveyor.server.api.users import admin_reader, keep_an_admin, user_out
from conveyor.server.app import state_of
from conveyor.server.auth import Action, allow, audit, principal_of
from conveyor.server.ui.formdata import form_data, form_pairs
from conveyor.server.ui.templating import render

router = APIRouter()
# Pages are read without a CSRF token; every form posts with one (allow checks it).
PAGE = [Depends(allow(Action.READ)), Depends(admin_reader)]
CHANGE = [Depends(allow(Action.ADMIN))]
AUDIT_PAGE = 50


def back(path: str, *, done: str | None = None, problem: str | None = None) -> Response:
    query = {k: v for k, v in (("done", done), ("problem", problem)) if v}
    return RedirectResponse(f"{path}?{urlencode(query)}" if query else path, status_code=303)


def said(error: Exception) -> str:
    if isinstance(error, HTTPException):
        return str(error.detail)
    return str(error)


def messages(request: Request) -> dict[str, Any]:
    return {
        "done": request.query_params.get("done"),
        "problem": request.query_params.get("problem"),
    }


# -- users and groups ------------------------------------------------------------------------


@router.get("/admin/users", dependencies=PAGE)
def users_page(request: Request) -> Response:
    """Every user (role, groups, sign-in, tokens, state) and every group with its members."""
    identity = state_of(request).instance.identity
    active: dict[str, int] = {}
    for t in identity.tokens():
        if t.state() == "active":
            active[t.user_name] = active.get(t.user_name, 0) + 1
    return render(
        request,
        "admin_users.html",
        {
            "users": [user_out(u) for u in identity.users()],
            "groups": identity.groups(),
            "active_tokens": active,
            "roles": ["viewer", "operator", "editor", "admin"],
            **messages(request),
        },
    )


USERS = "/admin/users"


@router.post("/admin/users", dependencies=CHANGE)
async def add_user(request: Request) -> Response:
    form = await form_data(request)
    name = form.get("name", "").strip()
    password = form.get("password") or None
    try:
        user = state_of(request).instance.identity.add_user(
            name,
            form.get("role", "viewer"),
            password=password,
            email=form.get("email", "").strip() or None,
        )
    except ConveyorError as e:
        return back(USERS, problem=said(e))
    audit(request, "user add", user.name, role=user.role.value, password=password is not None)
    how = "may sign in with a password" if password else "signs in through OpenID Connect only"
    return back(USERS, done=f"user {user.name} added as {user.role}: {how}")


@router.post("/admin/users/{name}/role", dependencies=CHANGE)
async def set_role(request: Request, name: str) -> Response:
    role = (await form_data(request)).get("role", "")
    identity = state_of(request).instance.identity
    try:
        before = identity.require_user(name)
        keep_an_admin(request, name, leaving=before.role == "admin" and role != "admin")
        user = identity.set_role(name, role)
    except (ConveyorError, HTTPException) as e:
        return back(USERS, problem=said(e))
    if user.role is not before.role:
        audit(request, "user set role", name, role=user.role.value, was=before.role.value)
    return back(USERS, done=f"{name} is {user.role} now")


@router.post("/admin/users/{name}/password", dependencies=CHANGE)
async def set_password(request: Request, name: str) -> Response:
    form = await form_data(request)
    if form.get("password", "") != form.get("again", ""):
        return back(USERS, problem=f"the two passwords for {name} differ: type the same twice")
    try:
        state_of(request).instance.identity.set_password(name, form.get("password", ""))
    except ConveyorError as e:
        return back(USERS, problem=said(e))
    audit(request, "user set password", name)
    return back(USERS, done=f"{name}'s password is set")


@router.post("/admin/users/{name}/disable", dependencies=CHANGE)
def disable_user(request: Request, name: str) -> Response:
    identity = state_of(request).instance.identity
    try:
        user = identity.require_user(name)
        keep_an_admin(request, name, leaving=user.role == "admin")
        identity.set_disabled(name, True)
    except (ConveyorError, HTTPException) as e:
        return back(USERS, problem=said(e))
    audit(request, "user disable", name)
    return back(USERS, done=f"{name} is disabled: it cannot sign in, and its tokens are refused")


@router.post("/admin/users/{name}/enable", dependencies=CHANGE)
def enable_user(request: Request, name: str) -> Response:
    try:
        state_of(request).instance.identity.set_disabled(name, False)
    except ConveyorError as e:
        return back(USERS, problem=said(e))
    audit(request, "user enable", name)
    return back(USERS, done=f"{name} may sign in again")


@router.post("/admin/users/{name}/remove", dependencies=CHANGE)
def remove_user(request: Request, name: str) -> Response:
    identity = state_of(request).instance.identity
    try:
        user = identity.require_user(name)
        keep_an_admin(request, name, leaving=user.role == "admin")
        identity.remove_user(name)
    except (ConveyorError, HTTPException) as e:
        return back(USERS, problem=said(e))
    audit(request, "user remove", name)
    return back(USERS, done=f"user {name} removed, with its tokens and sessions")


@router.post("/admin/groups", dependencies=CHANGE)
async def add_group(request: Request) -> Response:
    name = (await form_data(request)).get("name", "").strip()
    try:
        state_of(request).instance.identity.add_group(name)
    except ConveyorError as e:
        return back(USERS, problem=said(e))
    audit(request, "group add", name)
    return back(USERS, done=f"group {name} added: access lists name it group:{name}")


@router.post("/admin/groups/{name}/remove", dependencies=CHANGE)
def remove_group(request: Request, name: str) -> Response:
    try:
        state_of(request).instance.identity.remove_group(name)
    except ConveyorError as e:
        return back(USERS, problem=said(e))
    audit(request, "group remove", name)
    return back(USERS, done=f"group {name} removed")


@router.post("/admin/groups/{name}/members", dependencies=CHANGE)
async def add_member(request: Request, name: str) -> Response:
    user = (await form_data(request)).get("user", "")
    try:
        state_of(request).instance.identity.add_member(name, user)
    except ConveyorError as e:
        return back(USERS, problem=said(e))
    audit(request, "group add member", name, user=user)
    return back(USERS, done=f"{user} is a member of {name}")


@router.post("/admin/groups/{name}/members/{user}/remove", dependencies=CHANGE)
def remove_member(request: Request, name: str, user: str) -> Response:
    try:
        state_of(request).instance.identity.remove_member(name, user)
    except ConveyorError as e:
        return back(USERS, problem=said(e))
    audit(request, "group remove member", name, user=user)
    return back(USERS, done=f"{user} is no longer a member of {name}")


# -- access lists ----------------------------------------------------------------------------

ACCESS = "/admin/access"


@router.get("/admin/access", dependencies=PAGE)
def access_page(request: Request) -> Response:
    """Each job's access list as it holds, each grant with its source."""
    state = state_of(request)
    identity = state.instance.identity
    return render(
        request,
        "admin_access.html",
        {
            "jobs": [job_access(request, name) for name in sorted(state.workspace.jobs)],
            "permissions": [p.value for p in Permission],
            "principals": [f"user:{u.name}" for u in identity.users()]
            + [f"group:{g}" for g in identity.groups()],
            **messages(request),
        },
    )


@router.post("/admin/access/grant", dependencies=CHANGE)
async def grant(request: Request) -> Response:
    """Give a principal exactly the ticked permissions on a job (none ticked: take away
    what the code gives it)."""
    pairs = await form_pairs(request)
    form = dict(pairs)
    job_name = form.get("job", "")
    chosen = [v for k, v in pairs if k == "permission"]
    try:
        current = job_access(request, job_name)
        key = check_principal(request, form.get("principal", ""))
        perms = parse_permissions(chosen, "permissions")
        code = next((g.code_permissions for g in current.grants if g.principal == key), None)
        if not perms and code is None:
            return back(
                ACCESS,
                problem=f"tick at least one permission for {key} on {job_name} (the code "
                f"gives it nothing to take away)",
            )
        state_of(request).instance.access.set(job_name, key, perms, by=principal_of(request).label)
    except (ConveyorError, HTTPException) as e:
        return back(ACCESS, problem=said(e))
    names = sorted(p.value for p in perms)
    audit(request, "access grant", job_name, principal=key, permissions=names)
    what = ", ".join(names) if names else "nothing (the code's grant is taken away)"
    return back(ACCESS, done=f"{key} on {job_name}: {what}")


@router.post("/admin/access/revoke", dependencies=CHANGE)
async def revoke(request: Request) -> Response:
    """Undo an admin's grant: the code's list holds for the principal again."""
    form = await form_data(request)
    job_name, key = form.get("job", ""), form.get("principal", "")
    if not state_of(request).instance.access.reset(job_name, key):
        return back(ACCESS, problem=f"{key} has no admin grant on {job_name} to undo")
    audit(request, "access revoke", job_name, principal=key)
    return back(ACCESS, done=f"{key} on {job_name}: back to the code's list")


# -- audit log -------------------------------------------------------------------------------


@router.get("/admin/audit", dependencies=PAGE)
def audit_log_page(
    request: Request,
    actor: str | None = None,
    action: str | None = None,
    before_id: int | None = None,
) -> Response:
    """The audit log, newest first, filtered by actor and action, a page at a time."""
    instance = state_of(request).instance
    page = audit_page(request, actor=actor, action=action, before_id=before_id, limit=AUDIT_PAGE)
    recent = instance.audit.entries(limit=1000)
    return render(
        request,
        "admin_audit.html",
        {
            "page": page,
            "actor": actor or "",
            "action": action or "",
            "before_id": before_id,
            # The choices: who and what the newest entries name, and the filter's own.
            "actors": sorted({e.actor for e in recent} | ({actor} if actor else set())),
            "actions": sorted({e.action for e in recent} | ({action} if action else set())),
            "next_url": None
            if page.next_before_id is None
            else "/admin/audit?"
            + urlencode(
                {
                    k: v
                    for k, v in (
                        ("actor", actor),
                        ("action", action),
                        ("before_id", page.next_before_id),
                    )
                    if v
                }
            ),
        },
    )
