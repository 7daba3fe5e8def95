"""The one place where a request is allowed or refused.

Every API route and UI page depends on ``allow(action)``, and a route that
acts on one job (named in its body, or the job of a run) calls ``authorize``
again with its name. Who is calling is resolved once per request
(``principal_of``): in local mode the single local admin; in login mode the
user of an API token (``Authorization: Bearer cvt_...``) or of a session
cookie, else anonymous.

A job's permissions for a caller: everything for an admin; under the job's
access list (from its code, with an admin's changes applied) what the list
gives the user and their groups; for a job without a list (or a name that is
no longer in the workspace, such as runs of a removed job) what the caller's
instance role gives. A caller that may not read a job gets 404 for it, as for
a job that does not exist; one that may read it but not act on it, 403.

A state-changing request that a browser makes must carry the CSRF token
(``server.security``), and one made by another site's page is refused.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from fastapi import HTTPException, Request
from starlette.requests import HTTPConnection

from conveyor.definitions.access import (
    ALL_PERMISSIONS,
    ROLE_PERMISSIONS,
    AccessList,
    Permission,
    Role,
)
from conveyor.definitions.job import Job
from conveyor.definitions.sensor import Sensor
from conveyor.errors import NotFoundError
from conveyor.storage.access import Changes
from conveyor.storage.records import RunRecord

PrincipalKind = Literal["user", "token", "local", "anonymous"]

SESSION_COOKIE = "conveyor_session"
ROLE_ORDER = (Role.VIEWER, Role.OPERATOR, Role.EDITOR, Role.ADMIN)
HOW_TO_SIGN_IN = (
    "sign in at /login, or send an API token in the header 'Authorization: Bearer cvt_...' "
    "(make one on the page /account/tokens or with `conveyor tokens create`)"
)


class Action(StrEnum):
    """What a request does, as an access rule names it."""

    READ = "read"  # see jobs, runs, logs, results, schedules: read on the job
    LAUNCH = "launch"  # launch, rerun, backfill: operate on the job
    CANCEL = "cancel"  # cancel runs and backfills: operate on the job
    # Switch a job's schedule or sensor (operate on the job); without a job: set
    # pools or reload code (instance role operator or above).
    OPERATE = "operate"
    WRITE = "write"  # change a job's schedule or config defaults: write on the job
    ADMIN = "admin"  # users, groups, access lists, the audit log: admins only
    WEBHOOK = "webhook"  # call a webhook trigger: authenticated by its own secret
    OPEN = "open"  # anyone, signed in or not: the health check


# The permission each action needs on a job.
NEEDS: Mapping[Action, Permission] = {
    Action.READ: Permission.READ,
    Action.LAUNCH: Permission.OPERATE,
    Action.CANCEL: Permission.OPERATE,
    Action.OPERATE: Permission.OPERATE,
    Action.WRITE: Permission.WRITE,
}
# The instance role an action needs when it names no job.
ROLE_NEEDED: Mapping[Action, Role] = {
    Action.OPERATE: Role.OPERATOR,
    Action.WRITE: Role.EDITOR,
    Action.ADMIN: Role.ADMIN,
}
# Methods that change nothing: any other needs the CSRF token when a browser sends it.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a signed-in user, a user's API token, the local admin or nobody."""

    name: str
    kind: PrincipalKind
    role: Role | None
    groups: tuple[str, ...] = ()
    token_id: str | None = None

    @property
    def label(self) -> str:
        """How the audit log and ``runs.launched_by`` name the caller."""
        if self.kind == "token":
            return f"{self.name} (token {self.token_id})"
        if self.kind == "local":
            return "local admin"
        if self.kind == "anonymous":
            return "anonymous"
        return self.name

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN

    @property
    def signed_in(self) -> bool:
        return self.kind != "anonymous"

    def at_least(self, role: Role) -> bool:
        """Whether the caller's instance role is ``role`` or above."""
        return self.role is not None and ROLE_ORDER.index(self.role) >= ROLE_ORDER.index(role)


LOCAL_ADMIN = Principal("local", "local", Role.ADMIN)
ANONYMOUS = Principal("anonymous", "anonymous", None)


def _state(request: HTTPConnection) -> Any:
    return request.app.state.conveyor


def login_required(request: Request) -> bool:
    """Whether the server asks who is calling (login mode), or trusts every caller (local)."""
    return bool(_state(request).auth.login_required)


def principal_of(request: Request) -> Principal:
    """Who is calling, resolved once per request.

    Raises:
        HTTPException: 401 for an API token that is unknown, expired or revoked,
            or whose user is disabled (a token sent is never ignored).
    """
    cached = getattr(request.state, "principal", None)
    if isinstance(cached, Principal):
        return cached
    principal = _resolve(request)
    request.state.principal = principal
    return principal


def _resolve(request: Request) -> Principal:
    state = _state(request)
    if not state.auth.login_required:
        return LOCAL_ADMIN
    identity = state.instance.identity
    header = request.headers.get("authorization", "")
    if header:
        scheme, _, secret = header.partition(" ")
        secret = secret.strip()
        if scheme.lower() != "bearer" or not secret:
            raise HTTPException(
                401,
                "the Authorization header must read 'Bearer cvt_...' (an API token); "
                "make one on the page /account/tokens or with `conveyor tokens create`",
            )
        token = identity.check_token(secret)
        new_one = "make a new one on the page /account/tokens or with `conveyor tokens create`"
        if token is None:
            raise HTTPException(401, f"unknown API token: {new_one}")
        state_of_token = token.state()
        if state_of_token != "active":
            raise HTTPException(401, f"API token {token.id} is {state_of_token}: {new_one}")
        user = identity.user(token.user_name)
        if user is None or user.disabled:
            raise HTTPException(
                401,
                f"API token {token.id} belongs to user {token.user_name!r}, who is "
                f"{'removed' if user is None else 'disabled'}: ask an admin",
            )
        return Principal(user.name, "token", user.role, user.groups, token.id)
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        session = identity.session(cookie)
        if session is not None:
            user = identity.user(session.user_name)
            if user is not None and not user.disabled:
                request.state.session = session
                request.state.session_secret = cookie
                return Principal(user.name, "user", user.role, user.groups)
    return ANONYMOUS


def access_changes(request: HTTPConnection) -> dict[str, Changes]:
    """Every job's access changes by an admin, read once per request."""
    cached = getattr(request.state, "access_changes", None)
    if cached is None:
        cached = _state(request).instance.access.all()
        request.state.access_changes = cached
    changes: dict[str, Changes] = cached
    return changes


def access_list(request: Request, job_name: str) -> AccessList | None:
    """The job's access list as it holds now (its code's, with an admin's changes);
    ``None`` when it has none (the instance roles hold)."""
    holder = _state(request).workspace
    job = holder.jobs.get(job_name)
    declared: AccessList | None = job.access if job is not None else None
    if job is None and holder.workspace is not None:
        # The runs of an interactive job (each start is one) go by the workload's list.
        workload = holder.workspace.workloads.get(job_name)
        declared = workload.access_list if workload is not None else None
    changes = access_changes(request).get(job_name)
    if changes:
        return (declared or AccessList({})).with_changes(changes)
    return declared


def permissions_on(request: Request, job_name: str) -> frozenset[Permission]:
    """What the caller may do on job ``job_name``."""
    principal = principal_of(request)
    return granted(principal, lambda: access_list(request, job_name))


def granted(principal: Principal, access: Callable[[], AccessList | None]) -> frozenset[Permission]:
    """What ``principal`` may do on a job or workload whose access list ``access`` reads
    (only when the caller is neither an admin nor nobody): the list's grants, or the
    instance role's permissions where there is no list."""
    if principal.is_admin:
        return ALL_PERMISSIONS
    if principal.role is None:
        return frozenset()
    acl = access()
    if acl is None:
        return ROLE_PERMISSIONS[principal.role]
    return acl.permissions(principal.name, principal.groups)


def may(request: Request, action: Action, job_name: str) -> bool:
    """Whether the caller may do ``action`` on job ``job_name`` (for templates' buttons)."""
    return NEEDS[action] in permissions_on(request, job_name)


def may_read(request: Request, job_name: str) -> bool:
    return Permission.READ in permissions_on(request, job_name)


def readable_jobs(request: Request) -> frozenset[str] | None:
    """The workspace's jobs the caller may read; ``None``: every job (an admin)."""
    if principal_of(request).is_admin:
        return None
    names = _state(request).workspace.jobs
    return frozenset(n for n in names if may_read(request, n))


def hidden_jobs(request: Request) -> frozenset[str]:
    """The workspace's jobs the caller may not read: what lists of runs leave out
    (runs of a job no longer in the workspace follow the instance role, which reads)."""
    if principal_of(request).is_admin:
        return frozenset()
    return frozenset(n for n in _run_owners(request) if not may_read(request, n))


def _run_owners(request: Request) -> list[str]:
    """What runs belong to in the workspace: its jobs, and its interactive jobs (each
    start is a run)."""
    holder = _state(request).workspace
    names = list(holder.jobs)
    if holder.workspace is not None:
        names += [w.name for w in holder.workspace.workloads.values() if w.kind == "interactive"]
    return names


def require_signed_in(request: Request) -> Principal:
    """The caller; 401 (saying how to sign in) when anonymous."""
    principal = principal_of(request)
    if not principal.signed_in:
        raise HTTPException(401, f"this needs a signed-in user: {HOW_TO_SIGN_IN}")
    return principal


def authorize(
    request: Request, action: Action, job_name: str | None = None, *, missing: str | None = None
) -> Principal:
    """The caller, if it may do ``action`` (on job ``job_name`` where it names one).

    ``missing`` is the 404's message for a job the caller may not read, where the
    request named something else (a run, a sensor): "no run 'abc'", as if it did not
    exist (the job's name is not said either).

    Raises:
        HTTPException: 401 when nobody is signed in; 404 when the caller may not read
            the job (as if it did not exist); 403 when it may read but not do ``action``.
    """
    if action in (Action.WEBHOOK, Action.OPEN):
        return principal_of(request)
    principal = require_signed_in(request)
    if job_name is not None and action != Action.ADMIN:
        perms = permissions_on(request, job_name)
        if Permission.READ not in perms:
            raise HTTPException(404, missing or not_found_message(request, job_name))
        if NEEDS[action] not in perms:
            raise HTTPException(
                403,
                f"{principal.label} may not {action} job {job_name!r}: it needs the "
                f"{NEEDS[action]} permission on it; ask an admin",
            )
        return principal
    needed = ROLE_NEEDED.get(action)
    if needed is not None and not principal.at_least(needed):
        raise HTTPException(
            403,
            f"{principal.label} ({principal.role}) may not do this: it needs the role "
            f"{needed}{' or above' if needed != Role.ADMIN else ''}; ask an admin",
        )
    return principal


def not_found_message(request: Request, job_name: str) -> str:
    """The 404 for a job the caller may not read, or that does not exist: the same,
    naming only the jobs the caller may read."""
    readable = readable_jobs(request)
    names = sorted(_state(request).workspace.jobs if readable is None else readable)
    return f"no job {job_name!r}; the jobs you may read: {', '.join(names) or 'none'}"


def require_job_readable(request: Request, job_name: str) -> None:
    """404 unless the caller may read job ``job_name`` (for routes reached by a run's,
    schedule's or sensor's id, which then name its job)."""
    authorize(request, Action.READ, job_name)


def allow(action: Action, *, on_job: bool = False) -> Callable[[Request], Awaitable[Principal]]:
    """A FastAPI dependency: ``Depends(allow(Action.READ))``.

    With a ``{job_name}`` in the route's path the check is on that job. Without
    one, ``LAUNCH``/``CANCEL`` (and, with ``on_job``, any action of a route that
    finds its job from an id: a sensor's switch) need a signed-in caller here, and
    the route calls ``authorize`` with the job's name; ``OPERATE``/``WRITE``/``ADMIN``
    on no job need the instance role. A request by any method but GET, HEAD and
    OPTIONS also needs the CSRF token (``security.check_csrf``). ``WEBHOOK`` and
    ``OPEN`` let anyone through.
    """

    async def dependency(request: Request) -> Principal:
        from conveyor.server import security

        job_name = request.path_params.get("job_name")
        if action is Action.WEBHOOK:
            # The caller proves the webhook's own secret, which the route checks: a
            # bearer token here is that secret, not an API token to resolve.
            return ANONYMOUS
        if action is Action.OPEN:
            return principal_of(request)
        if request.method not in SAFE_METHODS:
            await security.check_csrf(request)
        if job_name is None and (on_job or action in (Action.LAUNCH, Action.CANCEL)):
            return require_signed_in(request)
        return authorize(request, action, job_name)

    return dependency


def allow_on_job(action: Action) -> Callable[[Request], Awaitable[Principal]]:
    """``allow(action, on_job=True)``: for a job-level action on a route whose job is
    found from an id (a sensor); the route calls ``authorize`` with the job's name."""
    return allow(action, on_job=True)


def client_address(request: Request) -> str | None:
    return request.client.host if request.client is not None else None


def audit(request: Request, action: str, target: str | None = None, **detail: Any) -> None:
    """Append to the audit log: the caller did ``action`` (to ``target``), from its address."""
    principal = getattr(request.state, "principal", None)
    if not isinstance(principal, Principal):
        try:
            principal = principal_of(request)
        except HTTPException:
            principal = ANONYMOUS
    audit_as(request, principal.label, action, target, **detail)


def audit_as(
    request: Request, actor: str, action: str, target: str | None = None, **detail: Any
) -> None:
    """Append to the audit log with an actor named here (a failed login's user name)."""
    _state(request).instance.audit.append(
        actor, action, target, detail=detail or None, address=client_address(request)
    )


def run_for(request: Request, run_id: str, action: Action = Action.READ) -> RunRecord:
    """Run ``run_id`` (its first characters will do), if the caller may do ``action`` on
    its job; a run of a job the caller may not read is a 404 as if it did not exist."""
    from conveyor.server.run_views import resolve_run

    instance = _state(request).instance
    run: RunRecord = instance.run(resolve_run(instance, run_id))
    authorize(
        request,
        action,
        run.job_name,
        missing=f"no run {run_id!r}; list the runs you may read with GET /api/runs",
    )
    return run


def redact_jobs(request: Request, text: str | None) -> str | None:
    """``text`` (an error message), unless it names a job the caller may not read."""
    if text is None:
        return None
    hidden = hidden_jobs(request)
    if any(name in text for name in hidden):
        return "(an error about a job you may not read; an admin sees it)"
    return text


def visible_jobs(request: Request) -> dict[str, Job]:
    """The workspace's jobs the caller may read, by name."""
    jobs: dict[str, Job] = _state(request).workspace.jobs
    readable = readable_jobs(request)
    return jobs if readable is None else {n: j for n, j in jobs.items() if n in readable}


def visible_sensors(request: Request) -> dict[str, Sensor]:
    """The workspace's sensors whose job the caller may read, by name."""
    sensors: dict[str, Sensor] = _state(request).workspace.sensors
    hidden = hidden_jobs(request)
    return {n: s for n, s in sensors.items() if s.job_name not in hidden}


def job_of(request: Request, job_name: str) -> Job:
    """Job ``job_name`` of the workspace, if the caller may read it; ``NotFoundError``
    naming only the jobs it may read otherwise (the workspace's own error names all)."""
    holder = _state(request).workspace
    if holder.workspace is None or principal_of(request).is_admin:
        job: Job = holder.job(job_name)
        return job
    if job_name not in holder.jobs or not may_read(request, job_name):
        raise NotFoundError(not_found_message(request, job_name))
    found: Job = holder.jobs[job_name]
    return found
