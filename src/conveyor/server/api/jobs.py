"""``/api/jobs``: the workspace's jobs, their graphs, config schemas and triggers."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request
from pydantic import BaseModel

from conveyor.server import actions, job_views
from conveyor.server.app import state_of
from conveyor.server.auth import Action, allow, job_of, visible_jobs, visible_sensors

router = APIRouter(prefix="/jobs", tags=["jobs"], dependencies=[Depends(allow(Action.READ))])


class ConfigCheck(BaseModel):
    """A run config that fits the job, as a run would record it."""

    valid: bool
    run_config: dict[str, Any]


@router.get("")
def list_jobs(
    request: Request,
    q: Annotated[str | None, Query(description="text in the name or description")] = None,
    tag: Annotated[list[str] | None, Query(description="KEY or KEY=VALUE; all must match")] = None,
) -> list[job_views.JobSummary]:
    """The jobs of the workspace, by name, with their last run and recent durations."""
    return job_views.job_summaries(
        state_of(request).instance,
        visible_jobs(request),
        q,
        tag,
        visible_sensors(request).values(),
    )


@router.get("/{job_name}")
def get_job(request: Request, job_name: str) -> job_views.JobDetail:
    """One job: its graph, config schema, triggers with next fire times, and chains."""
    state = state_of(request)
    job = job_of(request, job_name)
    ws = state.workspace.workspace
    place = ws.places.get(job.name) if ws is not None else None
    return job_views.job_detail(
        state.instance, visible_jobs(request), job, place, state.workspace.sensors.values()
    )


@router.get("/{job_name}/graph")
def get_graph(request: Request, job_name: str) -> job_views.JobGraph:
    """The job's task graph, each task with its retry, timeout, cpu, memory and pool."""
    return job_views.job_graph(job_of(request, job_name))


@router.get("/{job_name}/config-schema")
def get_config_schema(request: Request, job_name: str) -> dict[str, Any]:
    """The JSON schema of the job's run config (what the launchpad's form is made from)."""
    return job_views.config_schema(job_of(request, job_name))


@router.get("/{job_name}/triggers")
def get_triggers(
    request: Request,
    job_name: str,
    count: Annotated[int, Query(ge=1, le=100, description="next fire times to show")] = 3,
) -> list[job_views.TriggerView]:
    """The job's triggers, with the next fire times of its timed one, and the sensors
    that ask for its runs."""
    state = state_of(request)
    return job_views.trigger_views(
        job_of(request, job_name), count=count, sensors=state.workspace.sensors.values()
    )


@router.post("/{job_name}/config-check")
def check_config(
    request: Request,
    job_name: str,
    run_config: Annotated[dict[str, Any], Body(description="the run config to check")],
) -> ConfigCheck:
    """Check a run config without launching anything: 422 naming the field path if it
    does not fit (the launchpad calls this as the user types)."""
    job = job_of(request, job_name)
    return ConfigCheck(valid=True, run_config=actions.validate(job, run_config))
