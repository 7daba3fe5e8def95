"""``/api/backfills``: queue a job's missing intervals or partitions, watch them run,
cancel them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from conveyor.server import actions, run_views
from conveyor.server.app import state_of
from conveyor.server.auth import (
    Action,
    allow,
    audit,
    authorize,
    hidden_jobs,
    job_of,
    may_read,
)
from conveyor.storage.backfills import BackfillRecord
from conveyor.storage.instance import Instance

router = APIRouter(prefix="/backfills", tags=["backfills"])
READ = [Depends(allow(Action.READ))]


class BackfillRequest(BaseModel):
    """What to backfill: the periods of the job's schedule between ``start`` and ``end``
    (ISO dates or times; the job's ``interval=`` when left out), and/or partition keys
    (every key when left out)."""

    job_name: str
    start: str | None = None
    end: str | None = None
    partitions: list[str] | None = None


class Backfill(BaseModel):
    """A backfill: ``requested`` while a run of it has not ended, then ``done``, or
    ``canceled``; ``progress`` counts its runs by status."""

    id: str
    job_name: str
    created_at: datetime
    status: str
    spec: dict[str, Any] = Field(description="what was asked for, and how many runs it made")
    run_count: int
    progress: dict[str, int]


class BackfillDetail(Backfill):
    runs: list[run_views.RunSummary] = Field(description="one per interval and/or partition")


class Canceled(BaseModel):
    backfill_id: str
    status: str
    runs_canceled: int


def backfill_view(instance: Instance, record: BackfillRecord) -> Backfill:
    return Backfill(
        id=record.id,
        job_name=record.job_name,
        created_at=record.created_at,
        status=record.status,
        spec=record.spec,
        run_count=record.run_count,
        progress=instance.backfills.progress(record.id),
    )


def readable_backfills(
    request: Request, job: str | None = None, limit: int = 50
) -> list[BackfillRecord]:
    """The newest ``limit`` backfills (of ``job``) of the jobs the caller may read."""
    instance = state_of(request).instance
    if job is not None and not may_read(request, job):
        return []
    hidden = hidden_jobs(request)
    n = limit
    while True:
        found = instance.backfills.list(job, n)
        kept = [b for b in found if b.job_name not in hidden]
        if len(kept) >= limit or len(found) < n:
            return kept[:limit]
        n *= 4


def backfill_for(
    request: Request, backfill_id: str, action: Action = Action.READ
) -> BackfillRecord:
    """Backfill ``backfill_id``, if the caller may do ``action`` on its job (a backfill of a
    job it may not read is a 404 as if it did not exist)."""
    record = state_of(request).instance.backfills.get(backfill_id)
    authorize(
        request,
        action,
        record.job_name,
        missing=f"no backfill {backfill_id!r}; list them with GET /api/backfills",
    )
    return record


def backfill_detail(instance: Instance, backfill_id: str) -> BackfillDetail:
    """A backfill with each of its runs (``NotFoundError`` if there is no such backfill)."""
    view = backfill_view(instance, instance.backfills.get(backfill_id))
    runs = [run_views.run_summary(r) for r in instance.backfills.runs(backfill_id)]
    return BackfillDetail(**view.model_dump(), runs=runs)


@router.post("", status_code=201, dependencies=[Depends(allow(Action.LAUNCH))])
def create_backfill(request: Request, body: BackfillRequest) -> BackfillDetail:
    """Queue one run per missing period and/or partition key; what a successful run
    covers already is skipped. The daemon starts the runs within the job's concurrency."""
    principal = authorize(request, Action.LAUNCH, body.job_name)
    job_of(request, body.job_name)
    state = state_of(request)
    done = actions.backfill(
        state,
        body.job_name,
        start=body.start,
        end=body.end,
        partitions=body.partitions,
        launched_by=principal.label,
    )
    audit(request, "backfill", done.backfill_id, job=body.job_name)
    return backfill_detail(state.instance, done.backfill_id)


@router.get("", dependencies=READ)
def list_backfills(
    request: Request,
    job: Annotated[str | None, Query(description="only this job's")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> list[Backfill]:
    """Backfills, newest first, with their progress."""
    instance = state_of(request).instance
    return [backfill_view(instance, b) for b in readable_backfills(request, job, limit)]


@router.get("/{backfill_id}", dependencies=READ)
def get_backfill(request: Request, backfill_id: str) -> BackfillDetail:
    """One backfill: its progress, and its runs with their intervals or partitions."""
    return backfill_detail(state_of(request).instance, backfill_for(request, backfill_id).id)


@router.post("/{backfill_id}/cancel", dependencies=[Depends(allow(Action.CANCEL))])
def cancel_backfill(request: Request, backfill_id: str) -> Canceled:
    """Cancel the backfill and its runs that have not ended."""
    instance = state_of(request).instance
    record = backfill_for(request, backfill_id, Action.CANCEL)
    n = instance.backfills.cancel(backfill_id)
    audit(request, "cancel backfill", backfill_id, job=record.job_name, runs_canceled=n)
    return Canceled(
        backfill_id=backfill_id, status=instance.backfills.get(backfill_id).status, runs_canceled=n
    )
