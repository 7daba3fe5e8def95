"""``/api/runs``: runs listed and filtered, one run with its tasks and events, and the
actions on runs: launch, cancel, rerun."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from conveyor.errors import ConfigError
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
    principal_of,
    run_for,
)
from conveyor.storage.run_queries import MAX_LIMIT, RunFilter

router = APIRouter(prefix="/runs", tags=["runs"])

READ = [Depends(allow(Action.READ))]


class IntervalIn(BaseModel):
    """The span of time a run processes, ``[start, end)``: ISO dates or datetimes (UTC
    unless they say)."""

    start: str
    end: str


class LaunchRequest(BaseModel):
    """A run to launch."""

    job_name: str = Field(description="the job to run")
    run_config: dict[str, Any] = Field(
        default_factory=dict,
        description="{'tasks': {key: {'config': {...}}}, 'config': {...}, 'resources': {...}}",
    )
    tags: dict[str, str] = Field(default_factory=dict)
    partition: str | None = Field(None, description="a key of the job's partitions")
    interval: IntervalIn | None = None
    selection: list[str] | None = Field(
        None, description="tasks to run, in selection syntax ('*t', 't+', ...)"
    )


class RerunRequest(BaseModel):
    """How to run a run again."""

    full: bool = Field(False, description="run every task again, reusing nothing")
    run_config: dict[str, Any] | None = Field(
        None, description="new config in place of the run's; tasks it changes run again"
    )


class Canceled(BaseModel):
    run_id: str
    status: str


class RunList(BaseModel):
    """One page of runs, newest first."""

    runs: list[run_views.RunSummary]
    next_cursor: str | None = Field(description="pass as cursor for the next page; null: last")


def _epoch(value: datetime | None) -> float | None:
    if value is None:
        return None
    return (value if value.tzinfo is not None else value.replace(tzinfo=UTC)).timestamp()


def run_filter(
    request: Request,
    job: Annotated[list[str] | None, Query(description="job names; any matches")] = None,
    status: Annotated[list[str] | None, Query(description="statuses; any matches")] = None,
    tag: Annotated[list[str] | None, Query(description="KEY=VALUE; all must match")] = None,
    trigger: Annotated[
        str | None, Query(description="what made the run: manual, every:1h...")
    ] = None,
    created_after: Annotated[
        datetime | None, Query(description="ISO time, UTC unless it says")
    ] = None,
    created_before: datetime | None = None,
    started_after: datetime | None = None,
    started_before: datetime | None = None,
) -> RunFilter:
    """The ``RunFilter`` of a request's query (the runs list and its counts share it)."""
    tags = []
    for t in tag or []:
        key, eq, value = t.partition("=")
        if not eq or not key:
            raise ConfigError(f"tag={t!r}: give tags as KEY=VALUE, e.g. tag=team=data")
        tags.append((key, value))
    bounds = {
        "created": (_epoch(created_after), _epoch(created_before)),
        "started": (_epoch(started_after), _epoch(started_before)),
    }
    for name, (after, before) in bounds.items():
        if after is not None and before is not None and not after < before:
            raise ConfigError(
                f"{name}_after must be before {name}_before, or the range holds no run; "
                f"swap them or widen the range"
            )
    return RunFilter(
        hidden_jobs=tuple(sorted(hidden_jobs(request))),
        job_names=tuple(job or ()),
        statuses=tuple(status or ()),
        tags=tuple(tags),
        trigger=trigger,
        created_after=bounds["created"][0],
        created_before=bounds["created"][1],
        started_after=bounds["started"][0],
        started_before=bounds["started"][1],
    )


@router.get("", dependencies=READ)
def list_runs(
    request: Request,
    filter: Annotated[RunFilter, Depends(run_filter)],
    cursor: Annotated[str | None, Query(description="next_cursor of the page before")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
) -> RunList:
    """Runs newest first, filtered by job, status, tags, trigger and time, a page at a time."""
    page = state_of(request).instance.query_runs(filter, limit=limit, cursor=cursor)
    return RunList(runs=[run_views.run_summary(r) for r in page.runs], next_cursor=page.next_cursor)


@router.get("/counts", dependencies=READ)
def count_runs(
    request: Request, filter: Annotated[RunFilter, Depends(run_filter)]
) -> dict[str, int]:
    """How many runs matching the filters are in each status."""
    return state_of(request).instance.run_status_counts(filter)


@router.post("", status_code=201, dependencies=[Depends(allow(Action.LAUNCH))])
def launch_run(request: Request, body: LaunchRequest) -> run_views.RunSummary:
    """Queue a run of a job; the daemon starts it. The config is checked first: 422
    naming the field path (``tasks.extract.config.limit: ...``), and nothing is recorded."""
    principal = authorize(request, Action.LAUNCH, body.job_name)
    job_of(request, body.job_name)
    run = actions.launch(
        state_of(request),
        body.job_name,
        body.run_config,
        tags=body.tags,
        partition=body.partition,
        interval=(body.interval.start, body.interval.end) if body.interval else None,
        selection=body.selection,
        launched_by=principal.label,
    )
    audit(request, "launch", run.id, job=run.job_name)
    return run_views.run_summary(run)


@router.get("/{run_id}", dependencies=READ)
def get_run(request: Request, run_id: str) -> run_views.RunDetail:
    """One run (its id or first characters): tasks with attempts and errors, config,
    tags, trigger, parent and child runs."""
    detail = run_views.run_detail(state_of(request).instance, run_for(request, run_id).id)
    return readable_detail(request, detail)


def readable_detail(request: Request, detail: run_views.RunDetail) -> run_views.RunDetail:
    """``detail`` without the parent and child runs (of other jobs, by chains) the caller
    may not read."""
    parent = detail.parent
    if parent is not None and not may_read(request, parent.job_name):
        parent = None
    children = [c for c in detail.children if may_read(request, c.job_name)]
    return detail.model_copy(update={"parent": parent, "children": children})


@router.get("/{run_id}/tasks", dependencies=READ)
def get_tasks(request: Request, run_id: str) -> list[run_views.TaskRun]:
    """The run's tasks in the order they started, each with its attempts."""
    return run_views.task_runs(state_of(request).instance, run_for(request, run_id).id)


@router.get("/{run_id}/events", dependencies=READ)
def get_events(
    request: Request,
    run_id: str,
    kind: Annotated[list[str] | None, Query(description="only events of these kinds")] = None,
) -> list[run_views.Event]:
    """What happened in the run, oldest first: failures, retries, hook errors..."""
    return run_views.run_events(state_of(request).instance, run_for(request, run_id).id, kind)


@router.post("/{run_id}/cancel", dependencies=[Depends(allow(Action.CANCEL))])
def cancel_run(request: Request, run_id: str) -> Canceled:
    """Ask the run to stop: a queued run ends ``canceled`` at once, a running one goes
    ``canceling`` until its process has stopped its tasks. An ended run stays as it is."""
    run = run_for(request, run_id, Action.CANCEL)
    status = actions.cancel(state_of(request), run.id)
    audit(request, "cancel", run.id, job=run.job_name)
    return Canceled(run_id=run.id, status=str(status))


@router.post("/{run_id}/rerun", status_code=201, dependencies=[Depends(allow(Action.LAUNCH))])
def rerun_run(
    request: Request, run_id: str, body: RerunRequest | None = None
) -> run_views.RunSummary:
    """Queue the run again, from failure (its succeeded tasks reused) or in full,
    optionally with new config. 409 if it has not ended, or if it succeeded and there
    is nothing to rerun from failure."""
    state = state_of(request)
    ask = body or RerunRequest()
    old = run_for(request, run_id, Action.LAUNCH)
    job_of(request, old.job_name)
    run = actions.rerun(
        state,
        old.id,
        full=ask.full,
        run_config=ask.run_config,
        launched_by=principal_of(request).label,
    )
    audit(request, "rerun", run.id, job=run.job_name, of=old.id, full=ask.full)
    return run_views.run_summary(run)
