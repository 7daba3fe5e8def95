"""``/api/pools``: concurrency pools, their limits and the runs holding their slots now."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Request
from pydantic import BaseModel, Field

from conveyor.definitions.job import Job
from conveyor.errors import NotFoundError
from conveyor.server.app import state_of
from conveyor.server.auth import Action, allow, audit, hidden_jobs, visible_jobs
from conveyor.storage.instance import Instance

router = APIRouter(prefix="/pools", tags=["pools"])
READ = [Depends(allow(Action.READ))]
# A pool's limit holds for every job that names it: admins set it.
ADMIN = [Depends(allow(Action.ADMIN))]


class Pool(BaseModel):
    """A pool: its limit (null: none set, so no limit), who holds its slots, who uses it."""

    name: str
    limit: int | None
    holders: list[str] = Field(description="ids of the runs holding slots now")
    jobs: list[str] = Field(description="jobs whose runs (or tasks) take a slot")


class LimitIn(BaseModel):
    limit: int = Field(ge=1, description="runs allowed in the pool at once")


def pool_users(jobs: dict[str, Job]) -> dict[str, list[str]]:
    """The jobs that name each pool, on the job or on one of its tasks."""
    users: dict[str, set[str]] = {}
    for job in jobs.values():
        names = {job.pool} if job.pool else set()
        if job.graph is not None:
            names |= {n.task.pool for n in job.graph.nodes.values() if n.task.pool}
        for name in names:
            users.setdefault(name, set()).add(job.name)
    return {k: sorted(v) for k, v in users.items()}


def pool_view(
    instance: Instance,
    name: str,
    limit: int | None,
    users: list[str],
    hidden: frozenset[str] = frozenset(),
) -> Pool:
    """The pool, with the holders that are runs of jobs not in ``hidden``."""
    holders = instance.pool_holders(name)
    if hidden and holders:
        runs = instance.run_store.get_many(holders)
        holders = [h for h in holders if h in runs and runs[h].job_name not in hidden]
    return Pool(name=name, limit=limit, holders=holders, jobs=users)


def pools(
    instance: Instance, jobs: dict[str, Job], hidden: frozenset[str] = frozenset()
) -> list[Pool]:
    """Every pool with a limit or named by one of ``jobs``, by name; the runs of
    ``hidden`` jobs are left out of the holders."""
    limits, users = instance.pool_store.all(), pool_users(jobs)
    return [
        pool_view(instance, n, limits.get(n), users.get(n, []), hidden)
        for n in sorted(set(limits) | set(users))
    ]


@router.get("", dependencies=READ)
def list_pools(request: Request) -> list[Pool]:
    """The pools, with their limits and current holders."""
    return pools(state_of(request).instance, visible_jobs(request), hidden_jobs(request))


@router.get("/{name}", dependencies=READ)
def get_pool(request: Request, name: str) -> Pool:
    """One pool: its limit, and the runs holding its slots now."""
    state = state_of(request)
    users = pool_users(visible_jobs(request)).get(name)
    limit = state.instance.pool_store.get(name)
    if limit is None and users is None:
        raise NotFoundError(
            f"no pool {name!r}: no limit is set for it and no job names it; set one with "
            f"PUT /api/pools/{name}"
        )
    return pool_view(state.instance, name, limit, users or [], hidden_jobs(request))


@router.put("/{name}", dependencies=ADMIN)
def set_pool(request: Request, name: str, body: Annotated[LimitIn, Body()]) -> Pool:
    """Allow at most ``limit`` runs in the pool at once."""
    state = state_of(request)
    state.instance.pool_store.set(name, body.limit)
    audit(request, "pool set", name, limit=body.limit)
    users = pool_users(state.workspace.jobs).get(name, [])
    return pool_view(state.instance, name, body.limit, users)


@router.delete("/{name}", dependencies=ADMIN, status_code=204)
def delete_pool(request: Request, name: str) -> None:
    """Remove the pool's limit: its runs are limited no more."""
    state_of(request).instance.pool_store.delete(name)
    audit(request, "pool delete", name)
