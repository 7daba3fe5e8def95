"""``/api/jobs/{job_name}/access``: a job's access list as it holds, each grant with where it
comes from (the job's code, or an admin); admins change it per principal.

An admin's grant replaces what the code gives that principal, until it is
deleted (the code's list holds again). Granting on a job whose code declares
no list gives it one: from then on only its principals (and admins) may act.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from conveyor.definitions.access import (
    GROUP_PREFIX,
    USER_PREFIX,
    Permission,
    parse_permissions,
    principal_key,
)
from conveyor.errors import ConfigError, NotFoundError
from conveyor.server.app import state_of
from conveyor.server.auth import Action, allow, audit, not_found_message, principal_of
from conveyor.storage.access import effective

router = APIRouter(prefix="/jobs", tags=["access"])
READ = [Depends(allow(Action.READ))]
ADMIN = [Depends(allow(Action.ADMIN))]


class Grant(BaseModel):
    """One principal on the list: what it may do, and where that comes from."""

    principal: str = Field(description="user:NAME or group:NAME")
    permissions: list[Permission] = Field(description="empty: an admin took the code's away")
    source: Literal["code", "admin"]
    code_permissions: list[Permission] | None = Field(
        description="what the job's code gives it (null: the code does not list it)"
    )


class JobAccess(BaseModel):
    """A job's access list as it holds now."""

    job_name: str
    has_list: bool = Field(
        description="false: no list, so each user's instance role says what it may do"
    )
    grants: list[Grant]


class GrantIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    permissions: list[str] = Field(
        description="of read, operate, write, promote, access; [] takes away the code's grant"
    )


def job_access(request: Request, job_name: str) -> JobAccess:
    """The job's list (code with an admin's changes); 404 unless the job is loaded."""
    state = state_of(request)
    job = state.workspace.jobs.get(job_name)
    if job is None:
        raise HTTPException(404, not_found_message(request, job_name))
    grants = effective(job.access, state.instance.access.changes(job_name))
    return JobAccess(
        job_name=job_name,
        has_list=grants is not None,
        grants=[
            Grant(
                principal=g.principal,
                permissions=sorted(g.permissions),
                source=g.source,
                code_permissions=sorted(g.code) if g.code is not None else None,
            )
            for g in grants or []
        ],
    )


def check_principal(request: Request, name: str) -> str:
    """``user:NAME``/``group:NAME`` of an existing user or group (422 / 404 otherwise)."""
    key = principal_key(name, "principal")
    identity = state_of(request).instance.identity
    if key.startswith(USER_PREFIX) and identity.user(key[len(USER_PREFIX) :]) is None:
        raise NotFoundError(f"no user {key[len(USER_PREFIX) :]!r}; list them with GET /api/users")
    if key.startswith(GROUP_PREFIX) and key[len(GROUP_PREFIX) :] not in identity.groups():
        raise NotFoundError(
            f"no group {key[len(GROUP_PREFIX) :]!r}; list them with GET /api/groups"
        )
    return key


@router.get("/{job_name}/access", dependencies=READ)
def get_access(request: Request, job_name: str) -> JobAccess:
    """Who may do what to the job: each grant, from the code or an admin."""
    return job_access(request, job_name)


@router.put("/{job_name}/access/{principal}", dependencies=ADMIN)
def grant(
    request: Request, job_name: str, principal: str, body: Annotated[GrantIn, Body()]
) -> JobAccess:
    """Give ``principal`` (``alice``, ``user:alice``, ``group:quants``) exactly these
    permissions on the job, in place of what the code gives it."""
    before = job_access(request, job_name)
    key = check_principal(request, principal)
    perms = parse_permissions(body.permissions, "permissions")
    code = next((g.code_permissions for g in before.grants if g.principal == key), None)
    if not perms and code is None:
        raise ConfigError(
            f"permissions: [] takes away what the code gives, and the code of {job_name!r} "
            f"gives {key} nothing; to undo an admin's grant, DELETE "
            f"/api/jobs/{job_name}/access/{key}"
        )
    state_of(request).instance.access.set(job_name, key, perms, by=principal_of(request).label)
    audit(request, "access grant", job_name, principal=key, permissions=sorted(perms))
    return job_access(request, job_name)


@router.delete("/{job_name}/access/{principal}", dependencies=ADMIN)
def revoke(request: Request, job_name: str, principal: str) -> JobAccess:
    """Undo an admin's grant to ``principal``: the code's list holds for it again."""
    key = principal_key(principal, "principal")
    if not state_of(request).instance.access.reset(job_name, key):
        raise NotFoundError(
            f"{key} has no admin grant on {job_name!r} to undo; to take away what the "
            f'code gives, PUT /api/jobs/{job_name}/access/{key} {{"permissions": []}}'
        )
    audit(request, "access revoke", job_name, principal=key)
    return job_access(request, job_name)
