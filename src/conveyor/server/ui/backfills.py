"""Backfills: start one for a job (a span of its intervals, some or all of its partitions),
watch its progress run by run, and cancel it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from conveyor.definitions.job import Job
from conveyor.errors import ConveyorError, NotFoundError
from conveyor.server import actions, run_views
from conveyor.server.api.backfills import backfill_for, readable_backfills
from conveyor.server.app import state_of
from conveyor.server.auth import Action, allow, audit, authorize, job_of, may, visible_jobs
from conveyor.server.state import ServerState
from conveyor.server.ui.formdata import form_pairs
from conveyor.server.ui.templating import not_found, render
from conveyor.storage.backfills import BackfillRecord
from conveyor.storage.records import RunRecord

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


# Of the runs that may cover what a backfill skipped, the newest this many are looked at.
COVERING_RUNS = 1000


@dataclass(frozen=True, slots=True)
class Skipped:
    """An interval or partition the backfill did not queue, and the run that covers it
    (None when it cannot be found any more)."""

    what: str
    run: RunRecord | None

    @property
    def reason(self) -> str:
        if self.run is None:
            return "covered already"
        status = str(self.run.status)
        return "done already" if status == "success" else f"already {status}"


def _label(start: datetime | None, end: datetime | None, key: str | None) -> str:
    parts = []
    if start is not None and end is not None:
        parts.append(f"{start:%Y-%m-%d %H:%M} → {end:%Y-%m-%d %H:%M} UTC")
    if key is not None:
        parts.append(key)
    return " · ".join(parts)


def skipped_items(
    state: ServerState, record: BackfillRecord, runs: list[RunRecord]
) -> list[Skipped]:
    """What the backfill skipped (asked for, but a run covered it already or was queued for
    it), each with the run covering it; empty when its job is not loaded any more."""
    from conveyor.scheduler.backfill import intervals_between

    spec = record.spec
    job = state.workspace.jobs.get(record.job_name)
    if job is None or not spec.get("skipped"):
        return []
    keys: list[str | None] = [None]
    if spec.get("partitions"):
        keys = list(spec["partitions"])
    elif job.partitions is not None and spec.get("partition_count"):
        keys = list(job.partitions)
    spans: list[tuple[datetime | None, datetime | None]] = [(None, None)]
    if spec.get("start") and spec.get("end"):
        try:
            found = intervals_between(
                job, datetime.fromisoformat(spec["start"]), datetime.fromisoformat(spec["end"])
            )
        except ConveyorError:
            return []
        spans = [(i.start, i.end) for i in found]

    def stamp(moment: datetime | None) -> float | None:
        return None if moment is None else round(moment.timestamp(), 3)

    mine = {(stamp(r.interval_start), r.partition_key) for r in runs}
    others = [
        r
        for r in state.instance.run_store.list(job_name=job.name, limit=COVERING_RUNS)
        if r.id not in {m.id for m in runs}
    ]
    rank = {"success": 0, "running": 1, "starting": 1, "queued": 2}
    out: list[Skipped] = []
    for key in keys:
        for start, end in spans:
            if (stamp(start), key) in mine:
                continue
            covering = [
                r
                for r in others
                if r.partition_key == key
                and stamp(r.interval_start) == stamp(start)
                and str(r.status) in rank
            ]
            covering.sort(key=lambda r: rank[str(r.status)])
            out.append(Skipped(_label(start, end, key), covering[0] if covering else None))
    return out


def _list_context(request: Request, state: ServerState) -> dict[str, Any]:
    records = readable_backfills(request, limit=LISTED)
    launchable = {n: j for n, j in visible_jobs(request).items() if may(request, Action.LAUNCH, n)}
    return {
        "backfills": records,
        "progress": {b.id: state.instance.backfills.progress(b.id) for b in records},
        "jobs": backfillable(launchable),
        "statuses": STATUSES,
    }


@router.get("/backfills", dependencies=[Depends(allow(Action.READ))])
def backfills_page(request: Request, job: str | None = None) -> Response:
    """The backfills, newest first, and the form that starts one."""
    state = state_of(request)
    context = _list_context(request, state)
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
    label = authorize(request, Action.LAUNCH, job_name or None).label
    try:
        job_of(request, job_name)
        done = await run_in_threadpool(
            lambda: actions.backfill(
                state,
                job_name,
                start=form.get("start") or None,
                end=form.get("end") or None,
                partitions=keys or None,
                launched_by=label,
            )
        )
    except ConveyorError as e:
        context = await run_in_threadpool(_list_context, request, state)
        context.update(form=form, problem=str(e), keys=keys)
        return render(request, "backfills.html", context)
    audit(request, "backfill", done.backfill_id, job=job_name)
    return RedirectResponse(f"/backfills/{done.backfill_id}", status_code=303)


@router.get("/backfills/{backfill_id}", dependencies=[Depends(allow(Action.READ))])
def backfill_page(request: Request, backfill_id: str) -> Response:
    """One backfill: its progress per interval or partition, and its runs."""
    state = state_of(request)
    try:
        record = backfill_for(request, backfill_id)
    except NotFoundError as e:
        return not_found(request, str(e))
    records = state.instance.backfills.runs(record.id)
    runs = [run_views.run_summary(r) for r in records]
    progress = state.instance.backfills.progress(record.id)
    skipped = skipped_items(state, record, records)
    return render(
        request,
        "backfill.html",
        {
            "backfill": record,
            "runs": runs,
            "progress": progress,
            "statuses": STATUSES,
            "skipped": skipped,
            # Everything it was asked for: what it queued and what it skipped.
            "total": record.run_count + int(record.spec.get("skipped") or 0),
            "done_before": sum(
                1 for s in skipped if s.run is not None and s.reason == "done already"
            ),
            "has_interval": any(r.interval_start is not None for r in runs),
            "can_cancel": may(request, Action.CANCEL, record.job_name),
        },
    )


@router.post("/backfills/{backfill_id}/cancel", dependencies=[Depends(allow(Action.CANCEL))])
def cancel_backfill(request: Request, backfill_id: str) -> Response:
    """Cancel the backfill's runs that have not ended, then show it."""
    state = state_of(request)
    try:
        record = backfill_for(request, backfill_id, Action.CANCEL)
    except NotFoundError as e:
        return not_found(request, str(e))
    n = state.instance.backfills.cancel(record.id)
    audit(request, "cancel backfill", record.id, job=record.job_name, runs_canceled=n)
    return RedirectResponse(f"/backfills/{record.id}", status_code=303)
