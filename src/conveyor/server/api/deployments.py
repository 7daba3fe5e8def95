"""``/api/environments`` and ``/api/versions``: the deployed versions of the code, the
version active in each environment and its history; promotion and rollback.

Reading needs a signed-in caller. Promoting and rolling back need the ``promote``
permission on every job of the versions they change (``execution.promotion`` checks it,
and writes every attempt to the audit log); a refusal is a 403.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from conveyor.definitions.access import AccessList, Permission, parse_access
from conveyor.errors import ConveyorError
from conveyor.execution.promotion import (
    PromotionDeniedError,
    PromotionError,
    promote,
    rollback,
)
from conveyor.server.app import state_of
from conveyor.server.auth import (
    Action,
    access_changes,
    access_list,
    allow,
    client_address,
    granted,
    principal_of,
    require_signed_in,
)
from conveyor.storage.deployments import (
    DeploymentRecord,
    EnvironmentRecord,
    VersionRecord,
    environment_names,
    manifest_diff,
)
from conveyor.storage.instance import Instance

router = APIRouter(tags=["deployments"])
READ = [Depends(allow(Action.READ))]
# Signed in, with the CSRF token from a browser: the permission on each job is checked
# by ``execution.promotion`` against the versions' jobs.
CHANGE = [Depends(allow(Action.LAUNCH))]


class Environment(BaseModel):
    """An environment, in promotion order, and the version active in it."""

    name: str
    position: int = Field(description="0 for the first environment of the promotion order")
    active_version: int | None
    activations: int
    updated_at: float | None
    updated_by: str | None


class Version(BaseModel):
    """A deployed version (``manifest`` only in the answer of one version)."""

    number: int
    hash: str
    size: int
    entry: str
    jobs: list[str]
    diff: dict[str, Any]
    git: dict[str, Any] | None
    requirements_hash: str | None
    created_at: float | None
    created_by: str | None
    message: str | None
    active_in: list[str] = Field(description="the environments where it is active now")
    manifest: dict[str, Any] | None = None


class Deployment(BaseModel):
    """One activation of a version in an environment."""

    id: int
    environment: str
    version: int
    action: str
    from_environment: str | None
    previous_version: int | None
    at: float | None
    by: str | None
    message: str | None


class Diff(BaseModel):
    """The jobs ``to`` adds, changes and removes against ``from``."""

    model_config = ConfigDict(populate_by_name=True)

    from_version: int = Field(alias="from")
    to_version: int = Field(alias="to")
    added: list[str]
    changed: list[str]
    removed: list[str]


class PromoteIn(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    from_env: str = Field(alias="from", description="the environment the version comes from")
    version: int | None = Field(
        None, ge=1, description="a version that was active there (default: the active one)"
    )
    job: str | None = Field(None, description="a job of the version (the whole is promoted)")
    message: str | None = Field(None, max_length=2000)


class RollbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: int | None = Field(None, ge=1, description="default: the version active before")
    message: str | None = Field(None, max_length=2000)


def _stamp(value: Any) -> float | None:
    return None if value is None else float(value.timestamp())


def environment_view(record: EnvironmentRecord, position: int) -> Environment:
    return Environment(
        name=record.name,
        position=position,
        active_version=record.active_version,
        activations=record.activations,
        updated_at=_stamp(record.updated_at),
        updated_by=record.updated_by,
    )


def version_view(
    record: VersionRecord,
    active: dict[str, int | None],
    shown: Callable[[str], bool] = lambda _: True,
    *,
    manifest: bool = False,
) -> Version:
    """The version, leaving out the jobs not ``shown`` (those the caller may not read)."""
    return Version(
        number=record.number,
        hash=record.hash,
        size=record.size,
        entry=record.entry,
        jobs=[j for j in record.jobs if shown(j)],
        diff=_shown_diff(record.diff, shown),
        git=record.git,
        requirements_hash=record.requirements_hash,
        created_at=_stamp(record.created_at),
        created_by=record.created_by,
        message=record.message,
        active_in=[env for env, n in active.items() if n == record.number],
        manifest=_shown_manifest(record.manifest, shown) if manifest else None,
    )


def _shown_diff(diff: dict[str, Any], shown: Callable[[str], bool]) -> dict[str, Any]:
    return {k: [j for j in v if shown(j)] if isinstance(v, list) else v for k, v in diff.items()}


def _shown_manifest(manifest: dict[str, Any], shown: Callable[[str], bool]) -> dict[str, Any]:
    jobs = {n: j for n, j in manifest.get("jobs", {}).items() if shown(n)}
    return {**manifest, "jobs": jobs}


def deployment_view(record: DeploymentRecord) -> Deployment:
    return Deployment(
        id=record.id,
        environment=record.environment,
        version=record.version,
        action=record.action,
        from_environment=record.from_environment,
        previous_version=record.previous_version,
        at=_stamp(record.at),
        by=record.by,
        message=record.message,
    )


def active_versions(instance: Instance) -> dict[str, int | None]:
    """Each environment's active version, in promotion order."""
    return {e.name: e.active_version for e in instance.deployments.environments()}


def known_environment(env: str) -> str:
    """``env``, if it is one of the environments; a 404 naming them otherwise."""
    names = environment_names()
    if env not in names:
        raise HTTPException(404, f"no environment {env!r}: the environments are {', '.join(names)}")
    return env


def version_diff(
    instance: Instance, a: int, b: int, shown: Callable[[str], bool] = lambda _: True
) -> Diff:
    """What version ``b`` adds, changes and removes against version ``a`` (of the jobs
    ``shown``)."""
    before, after = instance.deployments.version(a), instance.deployments.version(b)
    d = _shown_diff(manifest_diff(before.manifest, after.manifest), shown)
    return Diff.model_validate({"from": a, "to": b, **d})


def job_permissions(
    request: Request, versions: Iterable[VersionRecord]
) -> Callable[[str], frozenset[Permission]]:
    """What the caller may do on a job of ``versions`` (by its unscoped name): under the
    access list the job declares in them (the newest that declares one) or, for a job
    that declares none there, in the server's workspace, with an admin's changes either
    way."""
    principal = principal_of(request)
    declared: dict[str, Any] = {}
    for v in sorted(versions, key=lambda v: v.number):
        for name, info in v.manifest.get("jobs", {}).items():
            if isinstance(info, dict) and info.get("access") is not None:
                declared[name] = info["access"]

    def access(name: str) -> AccessList | None:
        if name not in declared:
            return access_list(request, name)
        acl = parse_access(declared[name], f"job {name!r}")
        changes = access_changes(request).get(name)
        return (acl or AccessList({})).with_changes(changes) if changes else acl

    return lambda name: granted(principal, lambda: access(name))


def promote_allowed(request: Request, versions: Iterable[VersionRecord]) -> Callable[[str], bool]:
    """Whether the caller holds ``promote`` on a job of ``versions`` (``job_permissions``)."""
    perms = job_permissions(request, versions)
    return lambda name: Permission.PROMOTE in perms(name)


def readable(request: Request, versions: Iterable[VersionRecord]) -> Callable[[str], bool]:
    """Whether the caller may read a job of ``versions``: what it may not read, a
    version's views leave out (as if the version did not have it)."""
    perms = job_permissions(request, versions)
    return lambda name: Permission.READ in perms(name)


def _involved(instance: Instance, *envs: str, numbers: Iterable[int | None] = ()) -> list[Any]:
    """The versions a promotion or rollback may touch: those active in ``envs`` and
    ``numbers`` (whose jobs' access lists decide)."""
    out = [instance.deployments.active(e) for e in envs]
    for n in numbers:
        if n is not None:
            try:
                out.append(instance.deployments.version(n))
            except ConveyorError:
                continue  # promote() says that the version does not exist
    return [v for v in out if v is not None]


@router.get("/environments", dependencies=READ)
def list_environments(request: Request) -> list[Environment]:
    """The environments in promotion order, each with its active version."""
    records = state_of(request).instance.deployments.environments()
    return [environment_view(r, i) for i, r in enumerate(records)]


@router.get("/environments/{env}/history", dependencies=READ)
def environment_history(request: Request, env: str, limit: int = 100) -> list[Deployment]:
    """Every time a version became active in ``env`` (deploy, promote, rollback), newest
    first."""
    known_environment(env)
    records = state_of(request).instance.deployments.history(env, limit=max(1, min(limit, 1000)))
    return [deployment_view(r) for r in records]


@router.get("/versions", dependencies=READ)
def list_versions(request: Request, environment: str | None = None) -> list[Version]:
    """The versions, newest first; with ``environment``, those that were active in it."""
    instance = state_of(request).instance
    if environment is not None:
        known_environment(environment)
    active = active_versions(instance)
    found = instance.deployments.versions(environment)
    shown = readable(request, found)
    return [version_view(v, active, shown) for v in found]


@router.get("/versions/{number}", dependencies=READ)
def get_version(request: Request, number: int) -> Version:
    """One version, with its manifest (jobs, triggers, graphs) and its diff."""
    instance = state_of(request).instance
    record = instance.deployments.version(number)
    shown = readable(request, [record])
    return version_view(record, active_versions(instance), shown, manifest=True)


@router.get("/versions/{a}/diff/{b}", dependencies=READ)
def diff_versions(request: Request, a: int, b: int) -> Diff:
    """The jobs version ``b`` adds, changes and removes against version ``a``."""
    instance = state_of(request).instance
    shown = readable(request, [instance.deployments.version(a), instance.deployments.version(b)])
    return version_diff(instance, a, b, shown)


@router.post("/environments/{env}/promote", dependencies=CHANGE)
async def promote_to(
    request: Request, env: str, body: Annotated[PromoteIn, Body()]
) -> Deployment | None:
    """Make the version active in ``from`` (or ``version``) active in ``env`` as well;
    null when it is active there already. Needs ``promote`` on every job of the
    version and of the version it replaces."""
    instance = state_of(request).instance
    principal = require_signed_in(request)
    involved = _involved(instance, body.from_env, env, numbers=[body.version])
    allowed = promote_allowed(request, involved)
    shown = readable(request, involved)
    try:
        record = await run_in_threadpool(
            lambda: promote(
                instance,
                env,
                from_env=body.from_env,
                version=body.version,
                by=principal.label,
                allowed=allowed,
                job=body.job,
                message=body.message,
                address=client_address(request),
            )
        )
    except PromotionDeniedError as e:
        raise HTTPException(403, e.said(shown)) from None
    except PromotionError as e:
        raise HTTPException(409, str(e)) from None
    return None if record is None else deployment_view(record)


@router.post("/environments/{env}/rollback", dependencies=CHANGE)
async def rollback_env(
    request: Request, env: str, body: Annotated[RollbackIn, Body()]
) -> Deployment | None:
    """Make the version active in ``env`` before the current one (or ``to``) active
    again; null when it is active already. Needs ``promote`` on the jobs of both."""
    instance = state_of(request).instance
    principal = require_signed_in(request)
    history = instance.deployments.versions(environment=env) if env in environment_names() else []
    allowed = promote_allowed(request, history)
    shown = readable(request, history)
    try:
        record = await run_in_threadpool(
            lambda: rollback(
                instance,
                env,
                to=body.to,
                by=principal.label,
                allowed=allowed,
                message=body.message,
                address=client_address(request),
            )
        )
    except PromotionDeniedError as e:
        raise HTTPException(403, e.said(shown)) from None
    except PromotionError as e:
        raise HTTPException(409, str(e)) from None
    return None if record is None else deployment_view(record)
