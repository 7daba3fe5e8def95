"""Backfills: start one for a job (a span of its intervals, some or all of its partitions),
watch its progress run by run, and cancel it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from conveyor.definitions.job import Job
from conveyor.errors import ConveyorError, NotFoundError
from conveyor.server import actions, run_views
from conveyor.server.app import state_of
from conveyor.server.auth import Action, allow, authorize
from conveyor.server.state import ServerState
from conveyor.server.ui.formdata import form_pairs
from conveyor.server.ui.templating import not_found, render

router = APIRouter()

LISTED = 50
STATUSES = ("success", "failure", "canceled", "running", "starting", "canceling", "queued")


def backfillable(jobs: dict[str, Job]) -> list[Job]:
    """The jobs a backfill can run: those with a schedule (intervals) or partitions."""
    return [
        jobs[n]
        for n in sorted(jobs)
        if jobs[n].timed_trigger is not None or jobs[n].partitions is not None
    ]


def _list_context(state: ServerState) -> dict[str, Any]:
    records = state.instance.backfills.list(limit=LISTED)
    return {
        "backfills": records,
        "progress": {b.id: state.instance.backfills.progress(b.id) for b in records},
        "jobs": backfillable(state.workspace.jobs),
        "statuses": STATUSES,
    }


@router.get("/backfills", dependencies=[Depends(allow(Action.READ))])
def backfills_page(request: Request, job: str | None = None) -> Response:
    """The backfills, newest first, and the form that starts one."""
    state = state_of(request)
    context = _list_context(state)
    context.update(form={"job": job or ""}, problem=None)
    return render(request, "backfills.html", context)


@router.post("/backfills", dependencies=[Depends(allow(Action.LAUNCH))])
async def start_backfill(request: Request) -> Response:
    """Queue a backfill and show it; the form again, saying what is wrong, if it cannot."""
    state = state_of(request)
    pairs = await form_pairs(request)
    form = dict(pairs)
    keys = [v for k, v in pairs if k == "partition" and v]
    job_name = form.get("job", "")
    authorize(request, Action.LAUNCH, job_name or None)
    try:
        done = await run_in_threadpool(
            lambda: actions.backfill(
                state,
                job_name,
                start=form.get("start") or None,
                end=form.get("end") or None,
                partitions=keys or None,
            )
        )
    except ConveyorError as e:
        context = await run_in_threadpool(_list_context, state)
        context.update(form=form, problem=str(e), keys=keys)
        return render(request, "backfills.html", context)
    return RedirectResponse(f"/backfills/{done.backfill_id}", status_code=303)


@router.get("/backfills/{backfill_id}", dependencies=[Depends(allow(Action.READ))])
def backfill_page(request: Request, backfill_id: str) -> Response:
    """One backfill: its progress per interval or partition, and its runs."""
    state = state_of(request)
    try:
        record = state.instance.backfills.get(backfill_id)
    except NotFoundError as e:
        return not_found(request, str(e))
    runs = [run_views.run_summary(r) for r in state.instance.backfills.runs(record.id)]
    progress = state.instance.backfills.progress(record.id)
    return render(
        request,
        "backfill.html",
        {"backfill": record, "runs": runs, "progress": progress, "statuses": STATUSES},
    )


@router.post("/backfills/{backfill_id}/cancel", dependencies=[Depends(allow(Action.CANCEL))])
def cancel_backfill(request: Request, backfill_id: str) -> Response:
    """Cancel the backfill's runs that have not ended, then show it."""
    state = state_of(request)
    try:
        record = state.instance.backfills.get(backfill_id)
    except NotFoundError as e:
        return not_found(request, str(e))
    authorize(request, Action.CANCEL, record.job_name)
    state.instance.backfills.cancel(record.id)
    return RedirectResponse(f"/backfills/{record.id}", status_code=303)
