"""``/api/schedules``: the jobs' timed triggers (``schedule``, ``every:``, ``once:``):
switched on and off, their next fire times, and the ticks they fired.

A job has at most one timed trigger, so a schedule is named by its job.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from conveyor.definitions.job import Job
from conveyor.definitions.triggers import Trigger
from conveyor.errors import NotFoundError
from conveyor.server import job_views
from conveyor.server.app import state_of
from conveyor.server.auth import Action, allow, audit, job_of, visible_jobs
from conveyor.storage.instance import Instance

router = APIRouter(prefix="/schedules", tags=["schedules"])
READ = [Depends(allow(Action.READ))]
OPERATE = [Depends(allow(Action.OPERATE))]
# The most ticks one history page shows.
MAX_TICKS = 1000


class Tick(BaseModel):
    """One firing of a trigger, with the run it queued."""

    key: str
    job_name: str
    trigger: str
    tick_at: datetime = Field(description="when it was due")
    created_at: datetime = Field(description="when it was recorded")
    run_id: str | None
    run_status: str | None


class Schedule(BaseModel):
    """A job's timed trigger, whether it is on, and when it fires next."""

    job_name: str
    trigger: str
    type: str
    description: str
    timezone: str | None
    enabled: bool
    next_fire_times: list[datetime] = Field(description="empty while it is off")
    last_tick_at: datetime | None


class UpcomingTick(BaseModel):
    job_name: str
    trigger: str
    at: datetime


def tick_history(instance: Instance, job_name: str, trigger: str, limit: int = 50) -> list[Tick]:
    """The newest ``limit`` ticks of ``job_name``'s ``trigger`` (a sensor's is
    ``sensor:<name>``), newest first, with their runs' statuses now."""
    rows = instance.tick_store.newest(job_name, trigger, limit)
    runs = instance.run_store.get_many([r["run_id"] for r in rows if r["run_id"]])
    return [
        Tick(
            key=r["key"],
            job_name=r["job_name"],
            trigger=r["trigger"],
            tick_at=datetime.fromtimestamp(r["tick_at"], UTC),
            created_at=datetime.fromtimestamp(r["created_at"], UTC),
            run_id=r["run_id"],
            run_status=str(runs[r["run_id"]].status) if r["run_id"] in runs else None,
        )
        for r in rows
    ]


def timed_trigger(job: Job) -> Trigger:
    """The job's timed trigger; ``NotFoundError`` saying so if it has none."""
    trigger = next((t for t in job.triggers if t.is_timed), None)
    if trigger is None:
        raise NotFoundError(
            f"job {job.name!r} has no schedule, every: or once: trigger; its triggers: "
            f"{', '.join(str(t) for t in job.triggers) or 'none'}"
        )
    return trigger


def schedule_view(
    instance: Instance, job: Job, disabled: set[tuple[str, str]], count: int = job_views.NEXT_TIMES
) -> Schedule:
    trigger = timed_trigger(job)
    enabled = (job.name, str(trigger)) not in disabled
    last = instance.tick_store.last(job.name, str(trigger))
    return Schedule(
        job_name=job.name,
        trigger=str(trigger),
        type=trigger.type,
        description=job_views.describe_trigger(trigger),
        timezone=trigger.timezone if trigger.type == "schedule" else "UTC",
        enabled=enabled,
        next_fire_times=job_views.next_fire_times(job, trigger, datetime.now(UTC), count)
        if enabled
        else [],
        last_tick_at=None if last is None else datetime.fromtimestamp(last, UTC),
    )


def schedules(instance: Instance, jobs: dict[str, Job]) -> list[Schedule]:
    """Every job's timed trigger, by job name."""
    disabled = instance.trigger_states.disabled()
    return [
        schedule_view(instance, jobs[name], disabled)
        for name in sorted(jobs)
        if any(t.is_timed for t in jobs[name].triggers)
    ]


def upcoming(instance: Instance, jobs: dict[str, Job], hours: float = 24) -> list[UpcomingTick]:
    """What runs next: the ticks of the timed triggers that are on, due within ``hours``,
    soonest first (at most 1000)."""
    disabled = instance.trigger_states.disabled()
    now = datetime.now(UTC)
    until = now + timedelta(hours=hours)
    out: list[UpcomingTick] = []
    for job in jobs.values():
        for t in job.triggers:
            if not t.is_timed or (job.name, str(t)) in disabled:
                continue
            for at in job_views.next_fire_times(job, t, now, MAX_TICKS):
                if at > until:
                    break
                out.append(UpcomingTick(job_name=job.name, trigger=str(t), at=at))
    return sorted(out, key=lambda u: (u.at, u.job_name))[:MAX_TICKS]


@router.get("", dependencies=READ)
def list_schedules(request: Request) -> list[Schedule]:
    """The timed triggers of the workspace's jobs, on or off, with their next fire times."""
    return schedules(state_of(request).instance, visible_jobs(request))


@router.get("/upcoming", dependencies=READ)
def list_upcoming(
    request: Request,
    hours: Annotated[float, Query(gt=0, le=24 * 31, description="how far ahead to look")] = 24,
) -> list[UpcomingTick]:
    """What runs next: the ticks due within ``hours``, soonest first."""
    return upcoming(state_of(request).instance, visible_jobs(request), hours)


@router.get("/{job_name}", dependencies=READ)
def get_schedule(
    request: Request,
    job_name: str,
    count: Annotated[int, Query(ge=1, le=100, description="next fire times to show")] = 3,
) -> Schedule:
    """The job's timed trigger: on or off, its next fire times and its last tick."""
    state = state_of(request)
    job = job_of(request, job_name)
    return schedule_view(state.instance, job, state.instance.trigger_states.disabled(), count)


def _switch(request: Request, job_name: str, enabled: bool) -> Schedule:
    state = state_of(request)
    job = job_of(request, job_name)
    trigger = str(timed_trigger(job))
    state.instance.trigger_states.set_enabled(job.name, trigger, enabled)
    audit(request, "switch schedule", job.name, trigger=trigger, enabled=enabled)
    return schedule_view(state.instance, job, state.instance.trigger_states.disabled())


@router.post("/{job_name}/on", dependencies=OPERATE)
def switch_on(request: Request, job_name: str) -> Schedule:
    """Switch the schedule on: it fires from now on (the ticks missed while off are not
    fired)."""
    return _switch(request, job_name, True)


@router.post("/{job_name}/off", dependencies=OPERATE)
def switch_off(request: Request, job_name: str) -> Schedule:
    """Switch the schedule off: the daemon fires none of its ticks until it is on again."""
    return _switch(request, job_name, False)


@router.get("/{job_name}/ticks", dependencies=READ)
def get_ticks(
    request: Request,
    job_name: str,
    limit: Annotated[int, Query(ge=1, le=MAX_TICKS)] = 50,
) -> list[Tick]:
    """The schedule's ticks, newest first, with the runs they queued."""
    state = state_of(request)
    job = job_of(request, job_name)
    return tick_history(state.instance, job.name, str(timed_trigger(job)), limit)
