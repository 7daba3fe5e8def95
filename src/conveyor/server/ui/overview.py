"""The overview: runs in progress, recent failures, what runs in the next 24 hours, and
whether the scheduler daemon is alive."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from conveyor.definitions.job import Job
from conveyor.server import job_views, run_views
from conveyor.server.app import state_of
from conveyor.server.auth import Action, allow, hidden_jobs, redact_jobs, visible_jobs
from conveyor.server.ui.templating import render
from conveyor.storage.run_queries import RunFilter

router = APIRouter(dependencies=[Depends(allow(Action.READ))])

ACTIVE = ("queued", "starting", "running", "canceling")
HORIZON = timedelta(hours=24)
# The most triggers listed as upcoming, and the ticks counted per trigger (hourly: 24).
UPCOMING = 30
PER_TRIGGER = 25
# A daemon not heard from for this long (seconds) is shown as stale.
STALE_AFTER = 30.0


@dataclass(frozen=True, slots=True)
class Upcoming:
    """A timed trigger's ticks in the next 24 hours: the first ones, and how many."""

    job_name: str
    trigger: str
    times: list[datetime]
    count: int


def upcoming(
    jobs: dict[str, Job], off: set[tuple[str, str]], now: datetime | None = None
) -> list[Upcoming]:
    """The timed triggers that are on and due in the next 24 hours, soonest first."""
    start = now or datetime.now(UTC)
    found: list[Upcoming] = []
    for job in jobs.values():
        for trigger in job.triggers:
            if not trigger.is_timed or (job.name, str(trigger)) in off:
                continue
            times = [
                at
                for at in job_views.next_fire_times(job, trigger, start, PER_TRIGGER)
                if at - start <= HORIZON
            ]
            if times:
                found.append(Upcoming(job.name, str(trigger), times[:3], len(times)))
    return sorted(found, key=lambda u: (u.times[0], u.job_name))[:UPCOMING]


@router.get("/")
def overview(request: Request) -> Response:
    """What is running, what failed, what runs next, and the daemon's health."""
    state = state_of(request)
    instance = state.instance
    hidden = tuple(sorted(hidden_jobs(request)))
    active = instance.query_runs(RunFilter(statuses=ACTIVE, hidden_jobs=hidden), limit=25)
    failed = instance.query_runs(RunFilter(statuses=("failure",), hidden_jobs=hidden), limit=10)
    daemons = [
        replace(d, last_error=redact_jobs(request, d.last_error))
        for d in instance.daemon_status.all()
    ]
    jobs = visible_jobs(request)
    return render(
        request,
        "overview.html",
        {
            "active": [run_views.run_summary(r) for r in active.runs],
            "more_active": active.next_cursor is not None,
            "failed": [run_views.run_summary(r) for r in failed.runs],
            "upcoming": upcoming(jobs, instance.trigger_states.disabled()),
            "daemons": daemons,
            "now": time.time(),
            "stale_after": STALE_AFTER,
            "processes": state.processes,
            "jobs": len(jobs),
            "loaded_at": state.workspace.loaded_at,
        },
    )
